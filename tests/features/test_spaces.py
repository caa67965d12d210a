"""Every registered feature space on real COCO captions, with spot checks against references."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from brainalign.datasets import Stimuli
from brainalign.errors import InputError, ModelNotFoundError
from brainalign.features import (
    FeatureSpace,
    caption_embeddings,
    category_label,
    embed_texts,
    feature_space,
    feature_space_defaults,
    list_feature_spaces,
    load_word_vectors,
    register_feature_space,
    scramble_captions,
    tokenize,
)
from brainalign.features.spaces import _REGISTRY

PAPER_SPACES = [
    "mpnet",
    "mpnet_category_all",
    "multihot",
    "glove_categories",
    "fasttext_categories",
    "mpnet_nouns",
    "mpnet_verbs",
    "mpnet_adjectives",
    "mpnet_adverbs",
    "mpnet_prepositions",
    "mpnetWordAvg_all",
    "glove_all",
    "fasttext_all",
    "mpnet_scrambled",
    "minilm",
]


@pytest.fixture(scope="session")
def user_vectors(tmp_path_factory, coco_stimuli):
    """A user's word-vector file in fastText .vec format (real GloVe rows for the COCO words)."""
    wv = load_word_vectors()
    words = {
        w.lower()
        for caps in tokenize([c for cs in coco_stimuli.captions for c in cs])
        for w in caps
    }
    for name in coco_stimuli.category_names:
        words |= set(category_label(name).split("-")) | {category_label(name)}
    words |= {"something", "baseball", "bat", "glove", "tennis", "racket"}
    words = sorted(w for w in words if w in wv)
    path = tmp_path_factory.mktemp("vectors") / "user.vec"
    lines = [f"{len(words)} {wv.dim}"] + [
        w + " " + " ".join(f"{x:.5f}" for x in wv[w]) for w in words
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_paper_spaces_registered():
    assert set(PAPER_SPACES) <= set(list_feature_spaces())


@pytest.mark.parametrize("name", PAPER_SPACES)
def test_every_space_on_real_captions(name, coco_stimuli, mpnet, user_vectors):
    options = {"vectors": user_vectors} if name.startswith("fasttext") else {}
    if name.startswith("mpnet"):
        options["encoder"] = mpnet
    fs = feature_space(name, coco_stimuli, **options)
    dims = {"multihot": 80, "minilm": 384, "glove_categories": 50, "glove_all": 50}
    expected = dims.get(name, 50 if name.startswith("fasttext") else 768)
    assert isinstance(fs, FeatureSpace) and fs.name == name
    assert fs.X.shape == (len(coco_stimuli), expected) and fs.X.dtype == np.float32
    assert np.isfinite(fs.X).all()
    np.testing.assert_array_equal(fs.image_ids, coco_stimuli.image_ids)
    assert np.linalg.matrix_rank(fs.X) > 1  # images differ


def test_mpnet_space_is_caption_embeddings(coco_stimuli, mpnet):
    fs = feature_space("mpnet", coco_stimuli, encoder=mpnet)
    np.testing.assert_allclose(fs.X, caption_embeddings(coco_stimuli.captions, mpnet), atol=1e-6)


def test_multihot_matches_coco_instances(coco_stimuli, coco_instances):
    fs = feature_space("multihot", coco_stimuli)
    names = {c["id"]: c["name"] for c in coco_instances["categories"]}
    for row, image_id in zip(fs.X, coco_stimuli.image_ids, strict=True):
        present = {
            names[a["category_id"]]
            for a in coco_instances["annotations"]
            if a["image_id"] == image_id
        }
        assert {coco_stimuli.category_names[j] for j in np.flatnonzero(row)} == present


def test_category_spaces_follow_the_paper(coco_stimuli, mpnet):
    cats = coco_stimuli.categories
    labels = [category_label(n) for n in coco_stimuli.category_names]
    strings = [" ".join(labels[j] for j in np.flatnonzero(r)) or "something" for r in cats]
    fs = feature_space("mpnet_category_all", coco_stimuli, encoder=mpnet)
    np.testing.assert_allclose(fs.X, mpnet.encode(strings), atol=1e-5)
    wv = load_word_vectors()
    glove = feature_space("glove_categories", coco_stimuli).X
    for i, r in enumerate(cats):
        ref = np.mean(
            [wv.category_vector(coco_stimuli.category_names[j]) for j in np.flatnonzero(r)], axis=0
        )
        np.testing.assert_allclose(glove[i], ref, atol=1e-5)


def test_glove_all_skips_unknown_tokens(coco_stimuli):
    wv = load_word_vectors()
    X = feature_space("glove_all", coco_stimuli).X
    toks = [t for caps in tokenize(coco_stimuli.captions[0]) for t in caps]
    ref = np.mean([wv[t] for t in toks if t in wv], axis=0)
    np.testing.assert_allclose(X[0], ref, atol=1e-5)


def test_noun_variants(coco_stimuli, mpnet):
    from brainalign.features.spaces import tagged_captions
    from brainalign.features.words import words_of_class

    words = feature_space("mpnet_nouns", coco_stimuli, encoder=mpnet).X
    joined = feature_space("mpnet_nouns", coco_stimuli, encoder=mpnet, variant="joined").X
    assert not np.allclose(words, joined)
    tagged = tagged_captions(coco_stimuli)[0]
    nouns = [w for cap in tagged for w in words_of_class(cap, "nouns")]
    ref = embed_texts(nouns, mpnet).astype(np.float64).mean(0)  # every occurrence counts
    np.testing.assert_allclose(words[0], ref, atol=1e-5)
    strings = [" ".join(words_of_class(cap, "nouns")) for cap in tagged]
    np.testing.assert_allclose(joined[0], embed_texts(strings, mpnet).mean(0), atol=1e-5)
    with pytest.raises(InputError, match="variant"):
        feature_space("mpnet_verbs", coco_stimuli, encoder=mpnet, variant="sentences")


def test_scrambling_keeps_words_and_is_seeded(coco_stimuli):
    a = scramble_captions(coco_stimuli.captions, random_state=1)
    b = scramble_captions(coco_stimuli.captions, random_state=1)
    c = scramble_captions(coco_stimuli.captions, random_state=2)
    assert a == b and a != c
    tokens = scramble_captions(coco_stimuli.captions, random_state=1, return_tokens=True)
    for orig, scr, toks in zip(coco_stimuli.captions, a, tokens, strict=True):
        for o, s, t in zip(orig, scr, toks, strict=True):
            assert Counter(t) == Counter(tokenize([o])[0])  # the same tokens, reordered
            assert Counter(re.findall(r"\w+", o)) == Counter(re.findall(r"\w+", s))
            assert not re.search(r" [.,!?;:]", s)  # rejoined without spaces before punctuation
    assert (
        sum(
            o != s
            for orig, scr in zip(coco_stimuli.captions, a, strict=True)
            for o, s in zip(orig, scr, strict=True)
        )
        > 15
    )


def test_sentence_encoder_prefix(coco_stimuli):
    fs = feature_space("st:all-MiniLM-L6-v2", coco_stimuli)
    np.testing.assert_allclose(fs.X, feature_space("minilm", coco_stimuli).X, atol=1e-6)


def test_cache_serves_second_call_and_new_inputs_recompute(coco_stimuli, monkeypatch, tmp_path):
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path))
    calls = []

    @register_feature_space("n_captions_test", description="captions per image")
    def n_captions(stimuli, scale=1.0):
        calls.append(1)
        return np.array([[len(c) * scale] for c in stimuli.captions])

    try:
        a = feature_space("n_captions_test", coco_stimuli)
        b = feature_space("n_captions_test", coco_stimuli)
        assert len(calls) == 1
        np.testing.assert_array_equal(a.X, b.X)
        feature_space("n_captions_test", coco_stimuli, scale=2.0)
        feature_space("n_captions_test", coco_stimuli.subset(coco_stimuli.image_ids[:3]))
        assert len(calls) == 3
        with pytest.raises(InputError, match="already registered"):
            register_feature_space("n_captions_test", n_captions)
        register_feature_space("n_captions_test", n_captions, replace=True)
        with pytest.raises(InputError, match="unknown option"):
            feature_space("n_captions_test", coco_stimuli, sclae=2)
    finally:
        _REGISTRY.pop("n_captions_test", None)


def test_feature_space_defaults_are_the_builders():
    @register_feature_space("defaults_test")
    def build(stimuli, vectors, tagger="nltk", scale=2.0):
        return np.zeros((len(stimuli.captions), 1))

    try:
        assert feature_space_defaults("defaults_test") == {"tagger": "nltk", "scale": 2.0}
    finally:
        _REGISTRY.pop("defaults_test", None)
    assert feature_space_defaults("multihot") == {"columns": "categories"}
    assert feature_space_defaults("no_such_space") == {}


def test_bad_inputs(coco_stimuli):
    with pytest.raises(InputError, match=r"unknown feature space 'mpnett'.*mpnet_nouns"):
        feature_space("mpnett", coco_stimuli)
    with pytest.raises(ModelNotFoundError, match="fastText vectors"):
        feature_space("fasttext_all", coco_stimuli)
    with pytest.raises(InputError, match="Stimuli"):
        feature_space("mpnet", [["a caption"]])
    no_cats = Stimuli(image_ids=[1, 2], captions=[["A dog."], ["A cat."]])
    with pytest.raises(InputError, match="categories"):
        feature_space("multihot", no_cats)
    empty = Stimuli(image_ids=[1, 2], captions=[["A dog."], []])
    with pytest.raises(InputError, match="no captions"):
        feature_space("glove_all", empty)
    with pytest.raises(InputError, match="random_state"):
        feature_space("mpnet_scrambled", coco_stimuli, random_state=np.random.default_rng(0))
