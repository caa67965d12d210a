"""Word vectors, part-of-speech tags and the paper's category-name fixes."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from brainalign.errors import DataFormatError, InputError, ModelNotFoundError
from brainalign.features import (
    CATEGORY_FIXES,
    category_label,
    category_words,
    load_word_vectors,
    pos_tag,
)
from brainalign.features.words import POS_TAGS, tokenize, words_of_class


def test_nouns_of_the_surf_caption():
    (tagged,) = pos_tag(["A man riding a wave on top of a surfboard."])
    nouns = words_of_class(tagged, "nouns")
    assert {"man", "wave", "surfboard"} <= set(nouns)
    assert "riding" in words_of_class(tagged, "verbs")
    assert "on" in words_of_class(tagged, "prepositions")
    assert "a" not in nouns


def test_pos_classes_use_penn_tags():
    (tagged,) = pos_tag(["Two small dogs are playing happily in the snow."])
    tags = dict(tagged)
    assert tags["dogs"] == "NNS" and tags["small"] in POS_TAGS["adjectives"]
    assert tags["happily"] in POS_TAGS["adverbs"] and tags["are"] in POS_TAGS["verbs"]
    assert words_of_class(tagged, "adjectives") == ["small"]
    with pytest.raises(InputError, match="word_class"):
        words_of_class(tagged, "pronouns")


def test_category_fixes():
    assert category_label("fire hydrant") == "fireplug"
    assert category_label("sports ball") == "ball"
    assert category_label("potted plant") == "houseplant"
    assert category_label("hair drier") == "hairdryer"
    assert category_label("traffic light") == "traffic-light"
    assert category_words("baseball bat") == ("baseball", "bat")
    assert category_words("Tennis-racket") == ("tennis", "racket")
    assert category_words("dog") == ("dog",)
    assert len(CATEGORY_FIXES) == 10


def test_glove_default_covers_coco_categories(coco_stimuli):
    wv = load_word_vectors()
    assert wv.dim == 50 and len(wv) == 400_000
    assert load_word_vectors() is wv  # loaded once per process
    for name in coco_stimuli.category_names:
        v = wv.category_vector(name)
        assert v.shape == (50,) and np.isfinite(v).all()
    np.testing.assert_allclose(
        wv.category_vector("baseball bat"),
        (wv["baseball"].astype(np.float64) + wv["bat"]) / 2,
        atol=1e-6,
    )

    def cos(a, b):
        return float(wv[a] @ wv[b] / np.linalg.norm(wv[a]) / np.linalg.norm(wv[b]))

    assert cos("cat", "dog") > cos("cat", "table") + 0.2


@pytest.fixture
def small_table():
    rng = np.random.default_rng(3)
    words = ["the", "dog", "runs", "New York", "café"]
    return words, rng.standard_normal((len(words), 6)).astype(np.float32)


def _write_text(path, words, vecs, header):
    lines = [f"{len(words)} {vecs.shape[1]}"] if header else []
    lines += [w + " " + " ".join(f"{x:.6f}" for x in v) for w, v in zip(words, vecs, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("header", [False, True], ids=["glove-text", "word2vec-text"])
def test_text_word_vectors(tmp_path, small_table, header):
    words, vecs = small_table
    path = tmp_path / ("vecs.vec" if header else "glove.txt")
    _write_text(path, words, vecs, header)
    wv = load_word_vectors(path)
    assert wv.words == words and wv.dim == 6
    np.testing.assert_allclose(wv["New York"], vecs[3], atol=1e-6)  # spaces inside a GloVe word
    np.testing.assert_allclose(wv["Dog"], vecs[1], atol=1e-6)  # lower-case fallback
    mean, n = wv.mean(["dog", "runs", "unknownword"])
    assert n == 2
    np.testing.assert_allclose(mean, vecs[1:3].mean(0), atol=1e-6)


def test_word2vec_binary(tmp_path, small_table):
    words, vecs = small_table
    path = tmp_path / "vectors.bin"
    with open(path, "wb") as f:
        f.write(f"{len(words)} {vecs.shape[1]}\n".encode())
        for w, v in zip(words, vecs, strict=True):
            f.write(w.replace(" ", "_").encode() + b" " + v.astype("<f4").tobytes() + b"\n")
    wv = load_word_vectors(path)
    np.testing.assert_array_equal(wv["café"], vecs[4])
    np.testing.assert_array_equal(np.asarray(wv.vectors), vecs)


def test_bad_word_vector_files(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_word_vectors(tmp_path / "missing.vec")
    native = tmp_path / "cc.en.300.bin"
    native.write_bytes(struct.pack("<i", 793712314) + b"\x00" * 64)
    with pytest.raises(InputError, match="native fastText"):
        load_word_vectors(native)
    broken = tmp_path / "broken.txt"
    broken.write_text("dog 0.1 0.2 0.3\ncat 0.1 zero 0.3\n")
    with pytest.raises(DataFormatError, match="line 2"):
        load_word_vectors(broken)


def test_tokenize_keeps_punctuation():
    assert tokenize(["A dog, running."]) == [["A", "dog", ",", "running", "."]]
