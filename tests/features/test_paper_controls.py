"""The paper's controls that brainalign offers besides its defaults: the word-vector noun/verb
spaces, NLTK's tagger, and the 91-column COCO multi-hot (paper_methods.md §6)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from brainalign.datasets.coco import COCO_91
from brainalign.errors import InputError, ModelNotFoundError
from brainalign.features import feature_space, load_word_vectors
from brainalign.features.words import POS_FALLBACK, pos_tag, words_of_class

from .test_spaces import user_vectors  # noqa: F401  (the session fixture)


@pytest.fixture
def fake_nltk(monkeypatch):
    """An ``nltk`` whose tokenizer splits on spaces and whose tagger calls capitalised words
    NN and words ending in -ing VBG (everything else DT): enough to tell taggers apart."""
    calls = []

    def word_tokenize(text):
        return text.replace(".", " .").split()

    def tag(tokens):
        calls.append(tokens)
        return [
            (t, "NN" if t[:1].isupper() else "VBG" if t.endswith("ing") else "DT") for t in tokens
        ]

    module = types.ModuleType("nltk")
    module.word_tokenize, module.pos_tag = word_tokenize, tag
    monkeypatch.setitem(sys.modules, "nltk", module)
    return calls


def test_nltk_tagger_is_used_when_asked(fake_nltk):
    tagged = pos_tag(["A Dog running home."], tagger="nltk")
    assert tagged == [[("A", "NN"), ("Dog", "NN"), ("running", "VBG"), ("home", "DT"), (".", "DT")]]
    assert words_of_class(tagged[0], "verbs") == ["running"] and len(fake_nltk) == 1


def test_nltk_missing_or_without_data_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nltk", None)
    with pytest.raises(ModelNotFoundError, match="tagger='nltk' needs NLTK"):
        pos_tag(["a dog"], tagger="nltk")
    module = types.ModuleType("nltk")

    def missing(text):
        raise LookupError("Resource punkt_tab not found.")

    module.word_tokenize, module.pos_tag = missing, missing
    monkeypatch.setitem(sys.modules, "nltk", module)
    with pytest.raises(ModelNotFoundError, match="NLTK's data is missing"):
        pos_tag(["a dog"], tagger="nltk")
    with pytest.raises(InputError, match="tagger: expected one of"):
        pos_tag(["a dog"], tagger="stanza")


def test_word_vector_noun_and_verb_spaces_follow_the_tagger(coco_stimuli, fake_nltk):
    wv = load_word_vectors()
    fs = feature_space("glove_verbs", coco_stimuli, tagger="nltk", cache=False)
    # the fake tagger's verbs are the -ing words: check one image by hand
    caps = coco_stimuli.captions[0]
    words = [t for c in caps for t in c.replace(".", " .").split() if t.endswith("ing")]
    vec, n = wv.mean(words)
    expected = vec if n else wv[POS_FALLBACK["verbs"]]
    np.testing.assert_allclose(fs.X[0], expected, rtol=1e-5, atol=1e-6)
    assert fs.X.shape == (len(coco_stimuli), wv.dim)


def test_fasttext_nouns_need_the_users_file(coco_stimuli, user_vectors):  # noqa: F811
    with pytest.raises(ModelNotFoundError, match="crawl-300d-2M.vec"):
        feature_space("fasttext_nouns", coco_stimuli, cache=False)
    fs = feature_space("fasttext_nouns", coco_stimuli, vectors=user_vectors, cache=False)
    assert fs.X.shape[0] == len(coco_stimuli) and np.isfinite(fs.X).all()


def test_multihot_with_the_papers_91_coco_columns(coco_stimuli):
    plain = feature_space("multihot", coco_stimuli)
    paper = feature_space("multihot", coco_stimuli, columns="coco91")
    assert paper.X.shape == (len(coco_stimuli), 91) and len(COCO_91) == 91
    cols = [COCO_91.index(n) for n in coco_stimuli.category_names]
    np.testing.assert_array_equal(paper.X[:, cols], plain.X)
    never = [COCO_91.index(n) for n in ("street sign", "hat", "hair brush")]
    assert not paper.X[:, never].any()
    with pytest.raises(InputError, match="columns: expected"):
        feature_space("multihot", coco_stimuli, columns="coco80")
