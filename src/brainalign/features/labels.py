"""Features of stimuli that have object labels rather than captions (e.g. the 92-object set).

* Caption embeddings from **label templates**: each label is cleaned (a numbering suffix such as
  ``_3`` dropped, underscores to spaces) and put into several sentence templates ("a photo of
  a pine cone."); the captions of a stimulus are its filled templates, so the registered caption
  spaces (``mpnet``, ``minilm``, ``st:<model>``) embed each one and average them per stimulus.
  :func:`label_stimuli` builds those :class:`~brainalign.datasets.Stimuli` from an RDM data set
  (or takes the captions of its table when it has some).
* **Category** one-hot (the registered ``multihot`` space on the data set's ``category`` column)
  and **animacy** (``animacy``: animate / inanimate, from an ``animate`` column or from the
  category names, :func:`is_animate_category`).
* **Word vectors of the labels** (``glove_labels``): the mean GloVe vector of a label's words.

>>> label_captions(["pine cone", "hand_3"], ["a photo of {a_label}."])
[['a photo of a pine cone.'], ['a photo of a hand.']]
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np

from brainalign.errors import InputError
from brainalign.features.spaces import register_feature_space
from brainalign.features.words import WordVectors, load_word_vectors

#: the default caption templates (``{label}``: the cleaned label, ``{a_label}``: with "a"/"an")
DEFAULT_TEMPLATES = (
    "a photo of {a_label}.",
    "a picture of {a_label}.",
    "an image of {a_label}.",
    "a photo of the {label}.",
)
_SUFFIX = re.compile(r"[ _]+\d+$")
_FIELDS = {"label", "a_label"}

#: words that make a category name inanimate (checked first) or animate
INANIMATE_WORDS = frozenset(
    "inanimate object objects artifact artifacts artefact artefacts artificial manmade man-made "
    "tool tools vehicle vehicles building buildings scene scenes place places food fruit fruits "
    "vegetable vegetables plant plants furniture".split()
)
ANIMATE_WORDS = frozenset(
    "animate human humans person persons people face faces body bodies bodypart bodyparts "
    "animal animals nonhuman monkey monkeys ape apes mammal mammals bird birds fish insect "
    "insects reptile reptiles".split()
)


def clean_label(label: str) -> str:
    """A label as words: numbering suffix dropped, underscores as spaces (``"human face_3"`` →
    ``"human face"``)."""
    text = _SUFFIX.sub("", str(label).strip())
    return " ".join(text.replace("_", " ").split())


def indefinite_article(phrase: str) -> str:
    """``"an"`` before a vowel letter, else ``"a"`` (a spelling rule, not a phonetic one)."""
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def _check_templates(templates: Sequence[str]) -> list[str]:
    if isinstance(templates, str) or not templates:
        raise InputError(
            f"templates: expected a non-empty list of strings such as {DEFAULT_TEMPLATES[0]!r}, "
            f"got {templates!r}"
        )
    out = []
    for t in templates:
        fields = {f for _, f, _, _ in string.Formatter().parse(str(t)) if f is not None}
        if not fields or fields - _FIELDS:
            raise InputError(
                f"templates: {t!r} must use {{label}} or {{a_label}} and no other field "
                f"(found {sorted(fields) or 'none'})"
            )
        out.append(str(t))
    return out


def label_captions(
    labels: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES
) -> list[list[str]]:
    """One caption per template for every label (labels cleaned by :func:`clean_label`).

    Parameters
    ----------
    labels : list of str
    templates : list of str
        Format strings with ``{label}`` and/or ``{a_label}`` (the label after "a" or "an").

    Returns
    -------
    list of list of str
        ``captions[i][k]`` is template ``k`` filled with label ``i``.
    """
    templates = _check_templates(templates)
    out = []
    for raw in labels:
        label = clean_label(raw)
        if not label:
            raise InputError(f"labels: {raw!r} is empty once cleaned")
        a_label = f"{indefinite_article(label)} {label}"
        out.append([t.format(label=label, a_label=a_label) for t in templates])
    return out


def label_stimuli(dataset, captions: str = "auto", templates: Sequence[str] = DEFAULT_TEMPLATES):
    """The stimuli of an RDM data set with the captions the caption feature spaces embed.

    Parameters
    ----------
    dataset : brainalign.datasets.rdms.RdmDataset
    captions : {"auto", "templates", "table"}
        ``templates``: :func:`label_captions` of the labels; ``table``: the ``caption_<k>``
        columns (an error without any); ``auto``: the table's captions when it has some, else
        templates.
    templates : list of str

    Returns
    -------
    brainalign.datasets.Stimuli
        ``metadata["captions_from"]`` says which was used.
    """
    if captions not in ("auto", "templates", "table"):
        raise InputError(f"captions: expected 'auto', 'templates' or 'table', got {captions!r}")
    use_table = captions == "table" or (captions == "auto" and dataset.captions is not None)
    caps = None if use_table else label_captions(dataset.labels, templates)
    stim = dataset.to_stimuli(caps)
    stim.metadata["captions_from"] = "table" if use_table else "templates"
    return stim


def is_animate_category(name: str) -> bool | None:
    """Whether a category name means animate things: False when a word of it is in
    :data:`INANIMATE_WORDS` (e.g. "natural inanimate"), True when one is in
    :data:`ANIMATE_WORDS` (e.g. "nonhuman face"), None when neither."""
    words = set(re.split(r"[^a-z-]+", str(name).lower())) - {""}
    if words & INANIMATE_WORDS:
        return False
    if words & ANIMATE_WORDS:
        return True
    return None


def animacy(stimuli) -> np.ndarray:
    """Per stimulus True (animate) or False, from ``metadata["animate"]`` (the table's
    ``animate`` column) or else from the category names (:func:`is_animate_category`)."""
    flags = stimuli.metadata.get("animate")
    if flags is not None:
        return np.array([str(f) == "1" for f in flags])
    if stimuli.categories is None:
        raise InputError(
            "animacy: the stimuli have neither an 'animate' column nor categories; add one of "
            "them to stimuli.tsv"
        )
    names = list(stimuli.category_names)
    known = {n: is_animate_category(n) for n in names}
    unknown = [n for n, v in known.items() if v is None]
    if unknown:
        raise InputError(
            f"animacy: cannot tell whether categories {unknown} are animate; add an 'animate' "
            "column (0/1) to stimuli.tsv"
        )
    cats = np.asarray(stimuli.categories) > 0
    flag_of = np.array([known[n] for n in names])
    return np.array([bool(flag_of[row].any()) for row in cats])


def split_compound(word: str, vocabulary, min_part: int = 3) -> list[str]:
    """``word`` if it is in ``vocabulary``, else its split into two in-vocabulary parts of at
    least ``min_part`` letters (the most balanced one, e.g. "musicassette" → "music",
    "cassette"; a letter shared at the joint is tried too), else ``[word]``."""
    if word in vocabulary:
        return [word]
    best = None
    for i in range(min_part, len(word) - min_part + 1):
        for left, right in ((word[:i], word[i:]), (word[:i], word[i - 1 :])):
            if len(right) >= min_part and left in vocabulary and right in vocabulary:
                score = min(len(left), len(right))
                if best is None or score > best[0]:
                    best = (score, [left, right])
    return best[1] if best else [word]


def label_word_vectors(labels: Sequence[str], vectors: WordVectors | None = None) -> np.ndarray:
    """Mean word vector of each cleaned label's words.

    A word missing from the vectors is split into two known words when it can be
    (:func:`split_compound`), else skipped; a label none of whose words is known raises
    InputError naming it.
    """
    wv = vectors if isinstance(vectors, WordVectors) else load_word_vectors(vectors)
    out = []
    for raw in labels:
        words = [p for w in clean_label(raw).lower().split() for p in split_compound(w, wv)]
        vec, n = wv.mean(words)
        if vec is None:
            raise InputError(
                f"labels: no word of {raw!r} is in the word vectors {wv.identity}; rename it or "
                "use other vectors"
            )
        out.append(vec)
    return np.stack(out).astype(np.float32)


@register_feature_space(
    "animacy",
    description="animate / inanimate one-hot (from categories or an animate column)",
    cache=False,
    needs=("animacy",),
)
def _animacy(stimuli):
    flags = animacy(stimuli)
    return np.stack([flags, ~flags], axis=1).astype(np.float32)


@register_feature_space(
    "glove_labels", description="mean GloVe vector of each stimulus label's words", cache=False
)
def _glove_labels(stimuli, vectors=None):
    labels = stimuli.metadata.get("labels")
    if labels is None:
        raise InputError(
            "glove_labels: the stimuli carry no labels (metadata['labels']); build them from an "
            "RDM data set with brainalign.features.label_stimuli"
        )
    return label_word_vectors(labels, vectors)


__all__ = [
    "ANIMATE_WORDS",
    "DEFAULT_TEMPLATES",
    "INANIMATE_WORDS",
    "animacy",
    "clean_label",
    "indefinite_article",
    "is_animate_category",
    "label_captions",
    "label_stimuli",
    "label_word_vectors",
    "split_compound",
]
