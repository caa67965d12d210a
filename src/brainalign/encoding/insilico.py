"""In-silico selectivity: sentences → embeddings → predicted maps per subject → paired group t-map
(paper §4, Fig. 2a).

Each sentence set is embedded, its embeddings averaged into one vector, and every subject's fitted
encoding model predicts all units from that vector. The contrast ``a − b`` is taken per subject and
tested across subjects with a two-tailed one-sample t-test (the paper thresholds p < 0.05 without
FDR).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from brainalign.errors import InputError

#: Stand-in sentences of the kind the paper used (five per category), written for brainalign;
#: the paper's own sets are in the authors' code (``sentences_zoo``): read them with
#: :func:`read_sentence_sets`.
DEFAULT_SENTENCES: dict[str, list[str]] = {
    "people": [
        "A bearded man smiling at the camera.",
        "A young woman laughing with her friends.",
        "An old man with glasses looking to the side.",
        "A little girl with curly hair making a funny face.",
        "Two people posing together for a portrait.",
    ],
    "places": [
        "Houses along a quiet street.",
        "A wide city square surrounded by tall buildings.",
        "An empty hallway with doors on both sides.",
        "A mountain valley with a small village below.",
        "A row of shops on a busy downtown road.",
    ],
    "food": [
        "A plate of spaghetti with tomato sauce.",
        "A bowl of fresh fruit on a table.",
        "A slice of pizza with melted cheese.",
        "A sandwich and some fries on a white plate.",
        "A chocolate cake cut into pieces.",
    ],
}

#: The contrasts of paper Fig. 2a.
PAPER_CONTRASTS: tuple[tuple[str, str], ...] = (("people", "places"), ("food", "people"))


@dataclass
class ContrastResult:
    """A group in-silico contrast.

    Attributes
    ----------
    t, p : (n_units,) float64
        Two-tailed one-sample t statistic and p-value of the per-subject differences.
    differences : (n_subjects, n_units) float32
        Predicted ``a − b`` per subject.
    mean : (n_units,) float32
        Mean difference over subjects.
    name : str
    """

    t: np.ndarray
    p: np.ndarray
    differences: np.ndarray
    mean: np.ndarray
    name: str = ""

    def significant(self, p_threshold: float = 0.05) -> np.ndarray:
        """Units with p < ``p_threshold`` (uncorrected, as in the paper); NaN p never is.

        (A significance level is ``p_threshold`` throughout brainalign: ``alpha`` is the ridge
        penalty.)"""
        return np.nan_to_num(self.p, nan=1.0) < p_threshold


def sentence_vector(sentences, encoder) -> np.ndarray:
    """Mean embedding (d,) of a sentence list (or of a named set in :data:`DEFAULT_SENTENCES`)."""
    if isinstance(sentences, str):
        if sentences not in DEFAULT_SENTENCES:
            raise InputError(
                f"sentences={sentences!r}: not a built-in set ({sorted(DEFAULT_SENTENCES)}); pass a "
                "list of sentences instead"
            )
        sentences = DEFAULT_SENTENCES[sentences]
    sentences = list(sentences)
    if not sentences or not all(isinstance(s, str) and s.strip() for s in sentences):
        raise InputError("sentences: expected a non-empty list of non-empty strings")
    if not hasattr(encoder, "encode"):
        raise InputError(
            f"encoder: expected an object with .encode(list[str]), got {type(encoder).__name__}"
        )
    E = np.asarray(encoder.encode(sentences), dtype=np.float64)
    return E.mean(0).astype(np.float32)


def predict_maps(models: Sequence, vector) -> np.ndarray:
    """Predicted response of every unit, per subject model, to one embedding: (n_subjects, n_units)."""
    v = np.asarray(vector, dtype=np.float32)
    if v.ndim != 1:
        raise InputError(f"vector: expected a 1-D embedding, got shape {v.shape}")
    out = []
    for k, m in enumerate(models):
        if not hasattr(m, "predict"):
            raise InputError(f"models[{k}]: expected a fitted encoder with .predict")
        out.append(np.asarray(m.predict(v[None]), dtype=np.float32).reshape(-1))
    sizes = {o.shape for o in out}
    if len(sizes) != 1:
        raise InputError(
            f"models: predictions differ in size across subjects ({sorted(sizes)}); use a common surface"
        )
    return np.stack(out)


def insilico_contrast(
    models: Sequence, a, b, encoder=None, name: str | None = None
) -> ContrastResult:
    """Paired group contrast ``a − b`` of predicted maps across subjects.

    Parameters
    ----------
    models : sequence of fitted encoders (one per subject, same units)
        E.g. ``EncodingMap.model`` of each subject.
    a, b : str, list of str, or (d,) array
        A built-in set name (``"people"``, ``"places"``, ``"food"``), user sentences (need
        ``encoder``), or an embedding vector.
    encoder : object with ``.encode``, optional
        The sentence encoder the models were trained on (e.g. MPNet).

    Returns
    -------
    ContrastResult
    """
    if len(models) < 2:
        raise InputError(f"models: a group t-test needs at least 2 subjects, got {len(models)}")
    va = _as_vector(a, encoder, "a")
    vb = _as_vector(b, encoder, "b")
    diff = predict_maps(models, va) - predict_maps(models, vb)
    with np.errstate(invalid="ignore", divide="ignore"):
        t, p = stats.ttest_1samp(diff.astype(np.float64), 0.0, axis=0)
    label = name or f"{a if isinstance(a, str) else 'a'} − {b if isinstance(b, str) else 'b'}"
    return ContrastResult(
        t=np.asarray(t), p=np.asarray(p), differences=diff, mean=diff.mean(0), name=label
    )


def paper_contrasts(
    models: Sequence, encoder, sentences: Mapping[str, Sequence[str]] | None = None
) -> dict[str, ContrastResult]:
    """The paper's Fig. 2a contrasts (people − places, food − people).

    ``sentences``: category → sentences (e.g. the paper's, from :func:`read_sentence_sets`);
    default :data:`DEFAULT_SENTENCES`.
    """
    sets = DEFAULT_SENTENCES if sentences is None else sentences
    vectors = {
        k: sentence_vector(sets[k], encoder) for k in {c for p in PAPER_CONTRASTS for c in p}
    }
    return {
        f"{x}-{y}": insilico_contrast(models, vectors[x], vectors[y], name=f"{x} − {y}")
        for x, y in PAPER_CONTRASTS
    }


def read_sentence_sets(path) -> dict[str, list[str]]:
    """Sentence sets from a file: category → sentences.

    Parameters
    ----------
    path : path
        JSON: an object mapping each category to a list of sentences (keys starting with ``_``,
        e.g. ``_source``, are notes and skipped), as the paper's ``sentences_zoo``; or TSV: two
        tab-separated columns ``category`` and ``sentence`` with that header, one sentence a row.

    Raises
    ------
    InputError
        Naming the file and what is wrong with it.
    """
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: sentence file does not exist")
    text = path.read_text(encoding="utf-8")
    sets: dict[str, list[str]] = {}
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object mapping categories to sentences")
        for key, value in data.items():
            if str(key).startswith("_"):
                continue
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{path}: {key!r} must map to a list of sentences")
            sets[str(key)] = list(value)
    else:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines or lines[0].split("\t")[:2] != ["category", "sentence"]:
            raise InputError(
                f"{path}: expected a tab-separated header 'category<TAB>sentence' (or a .json file)"
            )
        for i, line in enumerate(lines[1:], start=2):
            parts = line.split("\t")
            if len(parts) != 2 or not parts[1].strip():
                raise InputError(f"{path}: line {i}: expected 'category<TAB>sentence'")
            sets.setdefault(parts[0].strip(), []).append(parts[1].strip())
    empty = [k for k, v in sets.items() if not v or not all(s.strip() for s in v)]
    if not sets or empty:
        raise InputError(f"{path}: no sentences for {empty or 'any category'}")
    return sets


def _as_vector(x, encoder, name):
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x
    if isinstance(x, (str, Sequence)) and not isinstance(x, Mapping):
        if encoder is None:
            raise InputError(
                f"{name}: sentences need an encoder= to embed them (or pass an embedding)"
            )
        return sentence_vector(x, encoder)
    raise InputError(f"{name}: expected a set name, a list of sentences or an embedding vector")
