"""Named feature spaces: the paper's caption embedding and its control models (paper_methods §6).

Every space is one function ``build(stimuli, **options) -> (n_images, d) array`` in a registry, so
``feature_space("mpnet_nouns", stim)`` is one call and a user adds a space with one decorator::

    @register_feature_space("caption_length", description="number of words per image")
    def caption_length(stimuli):
        return np.array([[sum(len(c.split()) for c in caps)] for caps in stimuli.captions])

Finished spaces are cached on disk under a hash of the space name, its options (with the identity of
the encoder / word vectors) and the stimuli's ids, captions and categories.
"""

from __future__ import annotations

import inspect
import os
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainalign.datasets.base import Stimuli
from brainalign.errors import InputError, ModelNotFoundError
from brainalign.features.cache import FeatureSpaceCache
from brainalign.features.sentence import (
    SentenceEncoder,
    _check_captions,
    _verify_folder,
    caption_embeddings,
    embed_texts,
    resolve_model,
)
from brainalign.features.words import (
    FIX_RULES,
    LOOKUPS,
    POS_FALLBACK,
    POS_TAGS,
    TAGGERS,
    WordVectors,
    category_label,
    load_word_vectors,
    pos_tag,
    tokenize,
    word_fixer,
    words_of_class,
)
from brainalign.utils import check_random_state, hash_array, hash_json

SENTENCE_PREFIX = "st:"
_NOT_KEYED = ("device", "verbose")  # they change where and how loudly, not what is computed
FASTTEXT_ENV = "BRAINALIGN_FASTTEXT_VECTORS"


@dataclass
class FeatureSpace:
    """One feature matrix with the ids of its rows.

    Attributes
    ----------
    name : str
        Registry name (e.g. ``"mpnet"``).
    X : (n_images, d) float32
    image_ids : (n_images,) int64
        Row ids (the stimuli's ``image_ids``).
    params : dict
        Options used, the encoder / word-vector identity and the cache key.
    """

    name: str
    X: np.ndarray
    image_ids: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape


@dataclass(frozen=True)
class _Entry:
    func: Callable
    description: str
    cache: bool
    needs: tuple[str, ...] = ()


_REGISTRY: dict[str, _Entry] = {}


def register_feature_space(
    name: str,
    func: Callable | None = None,
    *,
    description: str = "",
    cache: bool = True,
    replace: bool = False,
    needs: tuple[str, ...] = (),
):
    """Register ``func(stimuli, **options) -> (n_images, d) array`` under ``name``.

    Use as a decorator (``@register_feature_space("name")``) or a call
    (``register_feature_space("name", func)``). ``cache=False`` skips the on-disk cache (for spaces
    that are cheaper to rebuild than to read). Registering an existing name needs ``replace=True``.
    ``needs`` names what the stimuli must carry (``"categories"``, ``"labels"``): a study
    checks it against its data before any work (:func:`feature_space_needs`).
    """
    if not isinstance(name, str) or not name or name.startswith(SENTENCE_PREFIX):
        raise InputError(
            f"name: expected a non-empty space name not starting with {SENTENCE_PREFIX!r}, got {name!r}"
        )

    def decorator(f: Callable) -> Callable:
        if not callable(f):
            raise InputError(
                f"func: expected a callable building the space {name!r}, got {type(f).__name__}"
            )
        if name in _REGISTRY and not replace:
            raise InputError(
                f"feature space {name!r} is already registered; pass replace=True to override it"
            )
        doc = description or (f.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = _Entry(f, doc, cache, tuple(needs))
        return f

    return decorator if func is None else decorator(func)


def feature_space_needs(name: str) -> tuple[str, ...]:
    """What the stimuli must carry for the space ``name`` (its registration's ``needs``)."""
    entry = _REGISTRY.get(name)
    return entry.needs if entry is not None else ()


def list_feature_spaces() -> list[str]:
    """Names of the registered feature spaces (``"st:<model>"`` also works for any sentence encoder)."""
    return sorted(_REGISTRY)


def feature_space_options(name: str) -> list[str]:
    """Option names the builder of ``name`` accepts (besides ``stimuli``)."""
    entry = (
        _REGISTRY["sentence_encoder"] if name.startswith(SENTENCE_PREFIX) else _REGISTRY.get(name)
    )
    if entry is None:
        raise InputError(
            f"unknown feature space {name!r}; available: {', '.join(list_feature_spaces())}"
        )
    return list(inspect.signature(entry.func).parameters)[1:]


def feature_space_defaults(name: str) -> dict[str, Any]:
    """The options of the builder of ``name`` that have a default, with their defaults (empty
    for a name no builder is registered under), so a text about the options a run used reads
    the defaults from the builder instead of restating them."""
    entry = (
        _REGISTRY["sentence_encoder"] if name.startswith(SENTENCE_PREFIX) else _REGISTRY.get(name)
    )
    if entry is None:
        return {}
    params = list(inspect.signature(entry.func).parameters.values())[1:]
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def describe_feature_spaces() -> dict[str, str]:
    """``{name: one-line description}`` of the registered spaces."""
    return {k: _REGISTRY[k].description for k in sorted(_REGISTRY)}


# --------------------------------------------------------------------------------------------
# cache keys
# --------------------------------------------------------------------------------------------
def _encoder_identity(encoder) -> str:
    if isinstance(encoder, SentenceEncoder):
        return encoder.identity
    location, expected = resolve_model(encoder)
    if isinstance(location, Path):
        return f"{Path(str(encoder)).name}@{_verify_folder(location, expected)[:16]}"
    return str(location)


def _option_key(key: str, value):
    if isinstance(value, SentenceEncoder):
        return value.identity
    if isinstance(value, WordVectors):
        return value.identity
    if key == "encoder" and isinstance(value, str | os.PathLike):
        return _encoder_identity(value)
    if isinstance(value, str | os.PathLike) and key == "vectors" and Path(value).exists():
        st = Path(value).stat()
        return f"{Path(value).resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if isinstance(value, np.random.Generator):
        raise InputError(
            "random_state: give an int seed for a cached feature space (a Generator cannot be a cache key)"
        )
    return value


def _stimuli_key(stimuli: Stimuli) -> dict:
    cats = None if stimuli.categories is None else hash_array(np.asarray(stimuli.categories))
    return {
        "ids": hash_array(stimuli.image_ids),
        "captions": hash_json(stimuli.captions),
        "categories": cats,
        "category_names": list(stimuli.category_names),
    }


# --------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------
def feature_space(name: str, stimuli: Stimuli, cache: bool = True, **options) -> FeatureSpace:
    """Build (or read from the cache) the feature space ``name`` for ``stimuli``.

    Parameters
    ----------
    name : str
        A registered name (see ``list_feature_spaces()``), or ``"st:<model>"`` for the mean caption
        embedding of any sentence-transformers model (name or local folder).
    stimuli : brainalign.datasets.Stimuli
    cache : bool
        Read and write the on-disk feature-space cache.
    **options
        Passed to the space's builder (e.g. ``encoder=``, ``device=``, ``variant=``, ``vectors=``,
        ``random_state=``).

    Returns
    -------
    FeatureSpace
        ``X`` is (n_images, d) float32 with rows in the order of ``stimuli.image_ids``.
    """
    if not isinstance(name, str):
        raise InputError(f"name: expected a feature-space name (str), got {type(name).__name__}")
    if name.startswith(SENTENCE_PREFIX):
        model = name[len(SENTENCE_PREFIX) :]
        if not model:
            raise InputError(f"name: {name!r} names no model; use e.g. 'st:all-MiniLM-L6-v2'")
        options = {"encoder": model, **options}
        entry = _REGISTRY["sentence_encoder"]
    elif name in _REGISTRY:
        entry = _REGISTRY[name]
    else:
        raise InputError(
            f"unknown feature space {name!r}; available: {', '.join(list_feature_spaces())} "
            f"(or '{SENTENCE_PREFIX}<sentence-transformers model>')"
        )
    if not isinstance(stimuli, Stimuli):
        raise InputError(
            f"stimuli: expected brainalign.datasets.Stimuli, got {type(stimuli).__name__}; "
            "load it with brainalign.datasets.load_stimuli(root)"
        )
    verbose = options.pop("verbose", None)
    signature = inspect.signature(entry.func)
    unknown = [k for k in options if k not in signature.parameters]
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        allowed = [k for k in list(signature.parameters)[1:] if k != "verbose"]
        raise InputError(f"feature space {name!r}: unknown option(s) {unknown}; it takes {allowed}")
    # defaults join the key too, so the identity of a default encoder or word table is part of it
    defaults = {
        k: p.default
        for k, p in list(signature.parameters.items())[1:]
        if p.default is not inspect.Parameter.empty and k not in _NOT_KEYED
    }
    given = {k: v for k, v in options.items() if k not in _NOT_KEYED}
    params = {k: _option_key(k, v) for k, v in sorted({**defaults, **given}.items())}
    key = hash_json({"space": name, "options": params, "stimuli": _stimuli_key(stimuli)})[:24]
    store = FeatureSpaceCache()
    if cache and entry.cache:
        hit = store.load(name.replace("/", "_").replace(":", "_"), key)
        if hit is not None:
            X, meta = hit
            return FeatureSpace(
                name, X, stimuli.image_ids.copy(), {**meta.get("params", {}), "cache_key": key}
            )
    if verbose is not None and "verbose" in signature.parameters:
        options["verbose"] = verbose
    X = np.asarray(entry.func(stimuli, **options), dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != len(stimuli):
        raise InputError(
            f"feature space {name!r}: its builder returned shape {X.shape}; expected "
            f"({len(stimuli)}, d), one row per image"
        )
    if cache and entry.cache:
        store.save(
            name.replace("/", "_").replace(":", "_"), key, X, {"name": name, "params": params}
        )
    return FeatureSpace(name, X, stimuli.image_ids.copy(), {**params, "cache_key": key})


# --------------------------------------------------------------------------------------------
# helpers shared by the builders
# --------------------------------------------------------------------------------------------
def _encoder(encoder, device: str) -> SentenceEncoder:
    if isinstance(encoder, SentenceEncoder):
        return encoder
    return SentenceEncoder(encoder, device=device)


def _captions(stimuli: Stimuli) -> list[list[str]]:
    return _check_captions(stimuli.captions)


def _mean_of_words(
    words_per_image: list[list[str]], encoder: SentenceEncoder, fallback: str, verbose=None
):
    """Each word embedded alone (cached), averaged per image over all its word occurrences."""
    filled = [w if w else [fallback] for w in words_per_image]
    return caption_embeddings(filled, encoder, verbose=verbose)


_TAG_CACHE: dict[str, list[list[list[tuple[str, str]]]]] = {}


def tagged_captions(stimuli: Stimuli, tagger: str = "spacy") -> list[list[list[tuple[str, str]]]]:
    """``(token, Penn tag)`` pairs per caption per image (memoised in this process)."""
    captions = _captions(stimuli)
    key = hash_json([tagger, captions])
    if key not in _TAG_CACHE:
        flat = pos_tag([c for caps in captions for c in caps], tagger=tagger)
        out, i = [], 0
        for caps in captions:
            out.append(flat[i : i + len(caps)])
            i += len(caps)
        if len(_TAG_CACHE) > 8:
            _TAG_CACHE.clear()
        _TAG_CACHE[key] = out
    return _TAG_CACHE[key]


def _categories(stimuli: Stimuli) -> tuple[np.ndarray, list[str]]:
    if stimuli.categories is None:
        raise InputError(
            "stimuli.categories is None: category models (multihot, *_categories, "
            "mpnet_category_all) need a category per stimulus: in an RDM data set folder, a "
            "'category' column in stimuli.tsv (docs/datasets.md); for NSD or COCO images, the COCO "
            "instance annotations; or drop these models from [features] spaces"
        )
    cats = np.asarray(stimuli.categories)
    if cats.ndim != 2 or cats.shape[1] != len(stimuli.category_names):
        raise InputError(
            f"stimuli.categories: expected (n_images, {len(stimuli.category_names)}) multi-hot "
            f"(one column per category name), got {cats.shape}"
        )
    return cats, list(stimuli.category_names)


def _word_vectors(vectors, space: str) -> WordVectors:
    if isinstance(vectors, WordVectors):
        return vectors
    return load_word_vectors(vectors)


def _fasttext_vectors(vectors) -> WordVectors:
    vectors = vectors or os.environ.get(FASTTEXT_ENV)
    if vectors is None:
        raise ModelNotFoundError(
            "fastText vectors are not available offline: pass vectors='path/to/crawl-300d-2M.vec' "
            f"(the paper's file, from fasttext.cc) or set ${FASTTEXT_ENV} to it"
        )
    return _word_vectors(vectors, "fasttext")


def _is_punct(token: str) -> bool:
    return all(ch in string.punctuation for ch in token)


def _join_tokens(tokens: list[str]) -> str:
    """Join tokens with spaces, but none before punctuation ("a dog , ." → "a dog,.")."""
    out = ""
    for t in tokens:
        out = t if not out else (out + t if _is_punct(t) else f"{out} {t}")
    return out


# --------------------------------------------------------------------------------------------
# the paper's spaces
# --------------------------------------------------------------------------------------------
@register_feature_space(
    "mpnet", description="MPNet embedding of each caption, mean over the image's captions (768-d)"
)
def _mpnet(stimuli, encoder="all-mpnet-base-v2", device="cpu", verbose=None):
    return caption_embeddings(_captions(stimuli), _encoder(encoder, device), verbose=verbose)


@register_feature_space(
    "sentence_encoder",
    description="any sentence-transformers model (encoder=name or folder), mean over captions",
)
def _sentence_encoder(stimuli, encoder=None, device="cpu", verbose=None):
    if encoder is None:
        raise InputError(
            "sentence_encoder: give encoder='<model name or folder>' (or use the name 'st:<model>')"
        )
    return caption_embeddings(_captions(stimuli), _encoder(encoder, device), verbose=verbose)


@register_feature_space(
    "minilm", description="all-MiniLM-L6-v2 caption embeddings, mean over captions (384-d)"
)
def _minilm(stimuli, device="cpu", verbose=None):
    return caption_embeddings(
        _captions(stimuli), _encoder("all-MiniLM-L6-v2", device), verbose=verbose
    )


@register_feature_space(
    "mpnet_category_all",
    description="the image's COCO category names joined into one string, embedded once with MPNet",
    needs=("categories",),
)
def _mpnet_category_all(
    stimuli, encoder="all-mpnet-base-v2", device="cpu", empty="something", verbose=None
):
    cats, names = _categories(stimuli)
    labels = [category_label(n) for n in names]
    texts = [" ".join(labels[j] for j in np.flatnonzero(row)) or empty for row in cats]
    return embed_texts(texts, _encoder(encoder, device), verbose=verbose)


@register_feature_space(
    "multihot",
    description="multi-hot category vector; columns='coco91' for the paper's 91 COCO ids",
    cache=False,
    needs=("categories",),
)
def _multihot(stimuli, columns="categories"):
    cats, names = _categories(stimuli)
    present = (np.asarray(cats) > 0).astype(np.float32)
    if columns == "categories":
        return present
    if columns == "coco91":
        from brainalign.datasets.coco import COCO_91, coco91_columns

        out = np.zeros((len(present), len(COCO_91)), dtype=np.float32)
        out[:, coco91_columns(names)] = present
        return out
    raise InputError(
        f"columns: expected 'categories' (one column per category of the data) or 'coco91' "
        f"(the paper's 91 COCO category ids), got {columns!r}"
    )


def _category_vectors(stimuli, wv: WordVectors, empty: str) -> np.ndarray:
    cats, names = _categories(stimuli)
    table = (
        np.stack([wv.category_vector(n) for n in names])
        if names
        else np.zeros((0, wv.dim), np.float32)
    )
    empty_vec = wv[empty]
    out = np.empty((len(cats), wv.dim), dtype=np.float32)
    for i, row in enumerate(cats):
        on = np.flatnonzero(row)
        out[i] = table[on].astype(np.float64).mean(0) if len(on) else empty_vec
    return out


@register_feature_space(
    "glove_categories",
    description="mean GloVe vector of the image's category names (paper's name fixes)",
    needs=("categories",),
)
def _glove_categories(stimuli, vectors=None, empty="something"):
    return _category_vectors(stimuli, _word_vectors(vectors, "glove"), empty)


@register_feature_space(
    "fasttext_categories",
    description="mean fastText vector of the image's category names (needs vectors=)",
    needs=("categories",),
)
def _fasttext_categories(stimuli, vectors=None, empty="something"):
    return _category_vectors(stimuli, _fasttext_vectors(vectors), empty)


def _check_word_options(tagger=None, fixes=None, lookup=None) -> None:
    """Refuse an unknown tagger, spelling-fix rule or word look-up, naming the choices."""
    if tagger is not None and tagger not in TAGGERS:
        raise InputError(f"tagger: expected one of {TAGGERS}, got {tagger!r}")
    if fixes is not None and not isinstance(fixes, dict) and fixes not in FIX_RULES:
        raise InputError(f"fixes: expected one of {FIX_RULES} or a dict, got {fixes!r}")
    if lookup is not None and lookup not in LOOKUPS:
        raise InputError(f"lookup: expected one of {LOOKUPS}, got {lookup!r}")


def _pos_space(word_class: str):
    def build(
        stimuli,
        variant="words",
        encoder="all-mpnet-base-v2",
        device="cpu",
        fallback=None,
        tagger="spacy",
        fixes="all",
        verbose=None,
    ):
        _check_word_options(tagger, fixes)
        fallback = POS_FALLBACK[word_class] if fallback is None else fallback
        tagged = tagged_captions(stimuli, tagger)
        enc = _encoder(encoder, device)
        if variant == "words":
            words = [
                [w for cap in caps for w in words_of_class(cap, word_class, fixes)]
                for caps in tagged
            ]
            return _mean_of_words(words, enc, fallback, verbose=verbose)
        if variant == "joined":
            joined = [
                [" ".join(words_of_class(cap, word_class, fixes)) or fallback for cap in caps]
                for caps in tagged
            ]
            return caption_embeddings(joined, enc, verbose=verbose)
        raise InputError(
            f"variant: expected 'words' (each {word_class[:-1]} embedded alone, mean over all; the paper's "
            f"final code) or 'joined' (the caption's {word_class} joined, embedded, mean over captions), "
            f"got {variant!r}"
        )

    build.__doc__ = (
        f"MPNet on the {word_class} ({'/'.join(POS_TAGS[word_class])}) of the captions; "
        "variant='words' | 'joined'; tagger='spacy' | 'nltk'; fixes='all' | 'paper' | 'none'"
    )
    return build


for _cls in POS_TAGS:
    register_feature_space(f"mpnet_{_cls}", _pos_space(_cls))


def _word_vector_pos_space(word_class: str, kind: str):
    """Mean word vector of every ``word_class`` word of all captions (the paper's code)."""

    def build(stimuli, vectors=None, empty=None, tagger="spacy", fixes="all", lookup="lower"):
        _check_word_options(tagger, fixes, lookup)
        wv = _fasttext_vectors(vectors) if kind == "fasttext" else _word_vectors(vectors, kind)
        empty = POS_FALLBACK[word_class] if empty is None else empty
        out = np.empty((len(stimuli), wv.dim), dtype=np.float32)
        for i, caps in enumerate(tagged_captions(stimuli, tagger)):
            words = [w for cap in caps for w in words_of_class(cap, word_class, fixes)]
            vec, _ = wv.mean(words, lookup)  # out-of-vocabulary words are skipped
            out[i] = vec if vec is not None else wv[empty]
        return out

    build.__doc__ = (
        f"mean {kind} vector of the {word_class} ({'/'.join(POS_TAGS[word_class])}) of all "
        "captions; tagger='spacy' | 'nltk'; fixes='all' | 'paper' | 'none'; "
        "lookup='lower' | 'exact'"
    )
    return build


for _kind in ("glove", "fasttext"):
    for _cls in ("nouns", "verbs"):
        register_feature_space(f"{_kind}_{_cls}", _word_vector_pos_space(_cls, _kind))


def all_tokens(stimuli: Stimuli, tagger: str = "spacy", fixes="all") -> list[list[str]]:
    """Every token of all of each image's captions (the ``_all`` spaces' words): tokenised by
    ``tagger``'s tokenizer (spaCy, or NLTK's ``word_tokenize`` as the paper), spelling-fixed by
    the rule ``fixes`` (:data:`~brainalign.features.words.FIX_RULES`)."""
    _check_word_options(tagger, fixes)
    captions = _captions(stimuli)
    flat = tokenize([c for caps in captions for c in caps], tagger=tagger)
    fix = word_fixer(fixes, "all")
    out, i = [], 0
    for caps in captions:
        out.append([fix(w) for toks in flat[i : i + len(caps)] for w in toks])
        i += len(caps)
    return out


@register_feature_space(
    "mpnetWordAvg_all",
    description="every token of all captions embedded alone with MPNet, then averaged",
)
def _mpnet_word_avg_all(
    stimuli, encoder="all-mpnet-base-v2", device="cpu", tagger="spacy", fixes="all", verbose=None
):
    return _mean_of_words(
        all_tokens(stimuli, tagger, fixes), _encoder(encoder, device), "something", verbose=verbose
    )


def _word_vector_average(
    stimuli, wv: WordVectors, empty: str, tagger: str, fixes, lookup: str
) -> np.ndarray:
    _check_word_options(lookup=lookup)
    out = np.empty((len(stimuli), wv.dim), dtype=np.float32)
    for i, toks in enumerate(all_tokens(stimuli, tagger, fixes)):
        vec, _ = wv.mean(toks, lookup)  # out-of-vocabulary tokens are skipped, as in the paper
        out[i] = vec if vec is not None else wv[empty]
    return out


@register_feature_space(
    "glove_all", description="mean GloVe vector of every token of all captions (OOV skipped)"
)
def _glove_all(
    stimuli, vectors=None, empty="something", tagger="spacy", fixes="all", lookup="lower"
):
    return _word_vector_average(
        stimuli, _word_vectors(vectors, "glove"), empty, tagger, fixes, lookup
    )


@register_feature_space(
    "fasttext_all",
    description="mean fastText vector of every token of all captions (needs vectors=)",
)
def _fasttext_all(
    stimuli, vectors=None, empty="something", tagger="spacy", fixes="all", lookup="lower"
):
    return _word_vector_average(stimuli, _fasttext_vectors(vectors), empty, tagger, fixes, lookup)


def scramble_captions(
    captions_per_image, random_state=0, return_tokens: bool = False, tagger: str = "spacy"
) -> list[list]:
    """Each caption's tokens in a random order, rejoined without spaces before punctuation.

    Seeded: the same ``random_state`` gives the same captions. ``return_tokens=True`` returns the
    shuffled token lists instead of the joined strings. ``tagger``: whose tokenizer (spaCy, or
    NLTK's ``word_tokenize`` as the paper).
    """
    rng = check_random_state(random_state)
    captions = _check_captions(captions_per_image)
    flat = tokenize([c for caps in captions for c in caps], tagger=tagger)
    out, i = [], 0
    for caps in captions:
        scrambled = []
        for toks in flat[i : i + len(caps)]:
            toks = list(toks)
            rng.shuffle(toks)
            scrambled.append(toks if return_tokens else _join_tokens(toks))
        out.append(scrambled)
        i += len(caps)
    return out


@register_feature_space(
    "mpnet_scrambled", description="MPNet on captions with their words randomly shuffled (seeded)"
)
def _mpnet_scrambled(
    stimuli, random_state=0, encoder="all-mpnet-base-v2", device="cpu", tagger="spacy", verbose=None
):
    if not isinstance(random_state, int | np.integer):
        raise InputError(f"random_state: expected an int seed, got {type(random_state).__name__}")
    return caption_embeddings(
        scramble_captions(stimuli.captions, random_state, tagger=tagger),
        _encoder(encoder, device),
        verbose=verbose,
    )


__all__ = [
    "FeatureSpace",
    "all_tokens",
    "describe_feature_spaces",
    "feature_space",
    "feature_space_needs",
    "feature_space_defaults",
    "feature_space_options",
    "list_feature_spaces",
    "register_feature_space",
    "scramble_captions",
    "tagged_captions",
]
