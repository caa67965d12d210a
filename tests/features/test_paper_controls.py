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


# ------------------------------------------------------------------- the paper's controls
def _all_words(stim, tokenizer, fix=lambda w: w):
    return [[fix(t) for c in caps for t in tokenizer(c)] for caps in stim.captions]


def test_all_word_spaces_follow_the_tagger(coco_stimuli, fake_nltk):
    """The ``_all`` spaces tokenise with the chosen tagger's tokenizer (the paper: NLTK's
    word_tokenize), not always spaCy's."""
    from brainalign.features.spaces import all_tokens

    wv = load_word_vectors()
    words = _all_words(coco_stimuli, lambda c: c.replace(".", " .").split())
    assert all_tokens(coco_stimuli, tagger="nltk", fixes="none") == words
    assert all_tokens(coco_stimuli, tagger="spacy", fixes="none") != words
    fs = feature_space("glove_all", coco_stimuli, tagger="nltk", fixes="none", cache=False)
    for i in range(len(coco_stimuli)):
        np.testing.assert_allclose(fs.X[i], wv.mean(words[i])[0], rtol=1e-5, atol=1e-6)


def test_out_of_vocabulary_words_are_skipped_as_written_not_lower_cased(coco_stimuli, fake_nltk):
    from brainalign.features import WordVectors

    wv = WordVectors(["dog", "a", "Cat"], np.eye(3, dtype=np.float32), identity="toy")
    assert wv.row("Dog") == 0 and wv.row("Dog", lookup="exact") is None
    assert wv.row("Cat", lookup="exact") == 2 and wv.row("cat", lookup="exact") is None
    vec, n = wv.mean(["A", "dog", "Dog", "zebra"], lookup="exact")
    assert n == 1 and vec.tolist() == [1, 0, 0]
    with pytest.raises(InputError, match="lookup: expected one of"):
        wv.row("dog", lookup="fold")
    # the word spaces: a capitalised token missing from the (uncased) GloVe 6B is skipped
    glove = load_word_vectors()
    words = _all_words(coco_stimuli, lambda c: c.replace(".", " .").split())
    exact = feature_space(
        "glove_all", coco_stimuli, tagger="nltk", fixes="none", lookup="exact", cache=False
    )
    lower = feature_space("glove_all", coco_stimuli, tagger="nltk", fixes="none", cache=False)
    for i, toks in enumerate(words):
        kept = [t for t in toks if t in glove.index]
        assert len(kept) < len(toks)  # each image has a capitalised first word
        np.testing.assert_allclose(exact.X[i], glove.mean(kept)[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(exact.X, lower.X)


def test_the_papers_spelling_fixes_as_its_code_applies_them():
    from brainalign.features.words import PAPER_WORD_FIXES, WORD_FIXES, word_fixer

    # every correction of the authors' verb_adjustments, none of its "no embedding" markers
    assert len(PAPER_WORD_FIXES) == 134 and not any("_" in v for v in PAPER_WORD_FIXES.values())
    assert PAPER_WORD_FIXES["kitboarding"] == "kite-surfing"
    assert PAPER_WORD_FIXES["PIcked"] == "picked" and PAPER_WORD_FIXES["payign"] == "paying"
    assert all(WORD_FIXES[k.lower()] == v for k, v in PAPER_WORD_FIXES.items())
    tagged = [("A", "DT"), ("man", "NN"), ("standng", "VBG"), ("GRazing", "VBG"), ("ridng", "VBG")]
    tagged += [("wlaks", "NNS")]
    # the paper: verbs only, with their case; its list has no "ridng"
    assert words_of_class(tagged, "verbs", "paper") == ["standing", "grazing", "ridng"]
    assert words_of_class(tagged, "nouns", "paper") == ["man", "wlaks"]
    # brainalign: every class, any case, and a few more typos
    assert words_of_class(tagged, "verbs", "all") == ["standing", "grazing", "riding"]
    assert words_of_class(tagged, "nouns", "all") == ["man", "walks"]
    assert words_of_class(tagged, "verbs", "none") == ["standng", "GRazing", "ridng"]
    fix = word_fixer("paper", "all")  # every token of the _all spaces
    assert [fix(w) for w in ("wlaks", "Wlaks", "grazzing")] == ["walks", "Wlaks", "grazing"]
    with pytest.raises(InputError, match="fixes: expected one of"):
        words_of_class(tagged, "verbs", "some")


def test_paper_fixes_reach_the_all_word_spaces(coco_stimuli, fake_nltk):
    from brainalign.datasets import Stimuli
    from brainalign.features.spaces import all_tokens

    stim = Stimuli(
        image_ids=np.arange(2),
        captions=[["A man wlaks home.", "Two dogs grazzing ."], ["A Wlaks sign."]],
    )
    assert all_tokens(stim, tagger="nltk", fixes="paper") == [
        ["A", "man", "walks", "home", ".", "Two", "dogs", "grazing", "."],
        ["A", "Wlaks", "sign", "."],
    ]
    assert all_tokens(stim, tagger="nltk", fixes="all")[1] == ["A", "walks", "sign", "."]
    with pytest.raises(InputError, match="tagger: expected one of"):
        feature_space("glove_all", stim, tagger="stanza", cache=False)
