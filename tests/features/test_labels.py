"""Features of labelled stimuli: label templates, animacy from categories, word vectors of
labels, and the registered spaces on an RDM data set."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.datasets import load_rdm_dataset
from brainalign.errors import InputError
from brainalign.features import (
    feature_space,
    label_captions,
    label_stimuli,
    label_word_vectors,
)
from brainalign.features.labels import (
    DEFAULT_TEMPLATES,
    animacy,
    clean_label,
    is_animate_category,
    split_compound,
)
from brainalign.features.words import WordVectors
from tests.datasets.rdm_folder import LABELS, write_by_hand


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels") / "tiny"
    write_by_hand(root)
    return load_rdm_dataset(root)


def test_labels_are_cleaned_and_put_into_templates():
    assert clean_label("human face_3") == "human face"
    assert clean_label("pine_cone") == "pine cone" and clean_label(" hand_12 ") == "hand"
    caps = label_captions(["apple", "human face_3"], ["a photo of {a_label}.", "the {label}"])
    assert caps == [
        ["a photo of an apple.", "the apple"],
        ["a photo of a human face.", "the human face"],
    ]
    assert len(label_captions(["ear"])[0]) == len(DEFAULT_TEMPLATES)
    for bad in ("no field", "a {thing}", []):
        with pytest.raises(InputError, match="templates"):
            label_captions(["ear"], bad if isinstance(bad, list) else [bad])


def test_animacy_from_category_names_and_from_a_column(tiny):
    assert is_animate_category("nonhuman face") is True
    assert is_animate_category("natural inanimate") is False
    assert (
        is_animate_category("human bodypart") is True and is_animate_category("furniture") is False
    )
    assert is_animate_category("thing") is None
    stim = tiny.to_stimuli([[x] for x in LABELS])
    assert animacy(stim).tolist() == [True, True, True, False, False, False]
    stim.metadata["animate"] = ["0", "1", "0", "1", "0", "1"]
    assert animacy(stim).tolist() == [False, True, False, True, False, True]
    stim.metadata.pop("animate")
    stim.category_names = ["animal", "thing", "plant", "fruit"]
    with pytest.raises(InputError, match=r"\['thing'\].*animate' column"):
        animacy(stim)


def test_word_vectors_of_labels_split_unknown_compounds():
    words = ["music", "cassette", "pine", "cone", "dog"]
    wv = WordVectors(words, np.eye(5, dtype=np.float32), "toy")
    assert split_compound("musicassette", wv) == ["music", "cassette"]
    assert split_compound("dog", wv) == ["dog"] and split_compound("xyzzyq", wv) == ["xyzzyq"]
    X = label_word_vectors(["musicassette", "pine cone_2", "dog"], wv)
    np.testing.assert_allclose(X[0], [0.5, 0.5, 0, 0, 0])
    np.testing.assert_allclose(X[1], [0, 0, 0.5, 0.5, 0])
    with pytest.raises(InputError, match="'zebra'"):
        label_word_vectors(["zebra"], wv)


def test_label_spaces_on_an_rdm_data_set(tiny):
    stim = label_stimuli(tiny)  # no caption columns: templates
    assert stim.metadata["captions_from"] == "templates"
    assert stim.captions[4][0] == "a photo of a pine cone."
    X = feature_space("animacy", stim).X
    assert X.shape == (6, 2) and X[:, 0].tolist() == [1, 1, 1, 0, 0, 0]
    assert feature_space("multihot", stim).X.shape == (6, 4)
    assert stim.captions[0] == stim.captions[1]  # cat_1 and cat_2: the same captions
    glove = feature_space("glove_labels", stim).X
    assert glove.shape == (6, 50) and np.isfinite(glove).all()
    with pytest.raises(InputError, match="no caption_"):
        label_stimuli(tiny, captions="table")
