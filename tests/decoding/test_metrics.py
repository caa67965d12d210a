"""Decoding metrics against hand-computed values and plain reference loops."""

import numpy as np
import pytest

from brainalign.decoding import (
    bleu,
    caption_consistency,
    caption_scores,
    cider_d,
    embedding_similarity,
    human_ceiling,
    identification_accuracy,
    identification_from_similarity,
    prediction_scores,
    rouge_l,
    tokenize,
)
from brainalign.errors import InputError


def test_tokenize():
    assert tokenize("A dog, running!  On the BEACH.") == [
        "a",
        "dog",
        "running",
        "on",
        "the",
        "beach",
    ]


def test_bleu_hand_computed():
    out = bleu(["the cat sat on the mat"], [["the cat is on the mat"]])
    # 1-grams 5/6, 2-grams 3/5, 3-grams 1/4, 4-grams 0/3; equal lengths → no brevity penalty
    assert out["bleu1"] == pytest.approx(5 / 6)
    assert out["bleu2"] == pytest.approx(np.sqrt(5 / 6 * 3 / 5))
    assert out["bleu3"] == pytest.approx((5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))
    assert out["bleu4"] == 0.0
    # brevity penalty: candidate of 2 words, closest reference of 4 words
    bp = bleu(["a dog"], [["a dog runs fast", "a big brown dog runs"]])
    assert bp["bleu1"] == pytest.approx(np.exp(1 - 4 / 2))
    # clipping: "the the the" against "the cat" matches only once
    assert bleu(["the the the"], [["the cat"]])["bleu1"] == pytest.approx(
        1 / 3
    )  # longer than the reference: no penalty


def test_rouge_l_hand_computed():
    # LCS "the cat on the mat" = 5; P = R = 5/6 → F = 5/6
    assert rouge_l(["the cat sat on the mat"], [["the cat is on the mat"]]) == pytest.approx(5 / 6)
    # P = 2/2, R = 2/4, β = 1.2: F = (1 + 1.44)·1·0.5 / (0.5 + 1.44·1)
    assert rouge_l(["a dog"], [["a big dog runs"]]) == pytest.approx(2.44 * 0.5 / (0.5 + 1.44))
    # best precision and recall over references
    assert rouge_l(["a dog"], [["a cat", "a dog"]]) == pytest.approx(1.0)


def test_cider_d_hand_computed():
    # two images; idf(a) = 0, so only "dog"/"a dog" carry weight: cosine 1 for n = 1, 2 and
    # 0 for n = 3, 4 → mean 0.5, ×10 = 5
    refs = [["a dog"], ["a cat"]]
    assert cider_d(["a dog", "a cat"], refs) == pytest.approx(5.0)
    # first candidate shares only "a" (weight 0) → 0; mean (0 + 5) / 2
    assert cider_d(["a cat", "a cat"], refs) == pytest.approx(2.5)
    # length penalty exp(-δ²/2σ²) with δ = 1: "a dog dog" vs "a dog" changes tf too, so use the
    # n-gram-free part: identical n-grams but longer → smaller than perfect
    assert cider_d(["a dog dog", "a cat"], refs) < 5.0


def test_caption_scores_and_human_ceiling():
    refs = [
        ["a man riding a horse", "a person on a horse", "a rider on a brown horse"],
        ["a plate of pasta", "spaghetti on a white plate", "a dish of pasta with sauce"],
    ]
    perfect = caption_scores([r[0] for r in refs], refs)
    assert perfect["bleu1"] == pytest.approx(1.0) and perfect["rouge_l"] == pytest.approx(1.0)
    ceiling = human_ceiling(refs)
    manual = np.mean(
        [
            caption_scores([r[k] for r in refs], [r[:k] + r[k + 1 :] for r in refs])["cider_d"]
            for k in range(3)
        ]
    )
    assert ceiling["cider_d"] == pytest.approx(manual)
    assert 0 < ceiling["bleu1"] < 1
    with pytest.raises(InputError, match="at least 2 captions"):
        human_ceiling([["only one"]])
    with pytest.raises(InputError, match="reference lists"):
        bleu(["a", "b"], [["a"]])


def test_identification_two_way_and_all_way_reference(rng):
    target = rng.standard_normal((30, 16))
    pred = target + 1.5 * rng.standard_normal((30, 16))
    res2 = identification_accuracy(pred, target, n_way=2, top=1)
    C = np.corrcoef(pred, target)[:30, 30:]
    pairwise = np.mean([C[i, i] > C[i, j] for i in range(30) for j in range(30) if j != i])
    assert res2["top1"] == pytest.approx(pairwise)
    assert res2["chance_top1"] == 0.5
    resall = identification_accuracy(pred, target, n_way="all", top=(1, 5))
    assert resall["top1"] == pytest.approx(np.mean(C.argmax(1) == np.arange(30)))
    ranks = (C > np.diag(C)[:, None]).sum(1)
    assert resall["top5"] == pytest.approx(np.mean(ranks < 5))
    assert resall["chance_top5"] == pytest.approx(5 / 30)


def test_identification_from_reused_similarities(rng):
    """One similarity matrix serves every n_way (the response decoding's reuse): the same
    accuracies as from the embeddings, and the matrix is numpy's correlations / cosines."""
    target = rng.standard_normal((25, 12))
    pred = target + rng.standard_normal((25, 12))
    S = embedding_similarity(pred, target)
    np.testing.assert_allclose(S, np.corrcoef(pred, target)[:25, 25:], atol=1e-12)
    cos = embedding_similarity(pred, target, "cosine")
    norms = np.linalg.norm(pred, axis=1)[:, None] * np.linalg.norm(target, axis=1)
    np.testing.assert_allclose(cos, pred @ target.T / norms, atol=1e-12)
    for n_way in (2, 7, "all"):
        got = identification_from_similarity(S, n_way, (1, 3))
        expected = identification_accuracy(pred, target, n_way, (1, 3))
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value)
    with pytest.raises(InputError, match="S: expected a square"):
        identification_from_similarity(S[:, :5])


def test_identification_n_way_matches_sampling(rng):
    target = rng.standard_normal((60, 8))
    pred = target + 2.0 * rng.standard_normal((60, 8))
    exact = identification_accuracy(pred, target, n_way=10, top=(1, 3), metric="cosine")
    Pn = pred / np.linalg.norm(pred, axis=1, keepdims=True)
    Tn = target / np.linalg.norm(target, axis=1, keepdims=True)
    S = Pn @ Tn.T
    hits1 = hits3 = 0
    draws = 3000
    for _ in range(draws):
        i = rng.integers(60)
        others = rng.choice(np.delete(np.arange(60), i), 9, replace=False)
        better = (S[i, others] > S[i, i]).sum()
        hits1 += better < 1
        hits3 += better < 3
    assert exact["top1"] == pytest.approx(hits1 / draws, abs=0.03)
    assert exact["top3"] == pytest.approx(hits3 / draws, abs=0.03)
    with pytest.raises(InputError, match="n_way"):
        identification_accuracy(pred, target, n_way=100)


def test_caption_consistency_every_caption(rng):
    per_image = [rng.standard_normal((5, 12)), rng.standard_normal((6, 12))]
    res = caption_consistency(per_image)
    for E, r in zip(per_image, res["per_caption"], strict=True):
        assert len(r) == len(E)  # every caption, not only the fifth (the paper's bug)
        for c in range(len(E)):
            others = np.delete(E, c, axis=0).mean(0)
            assert r[c] == pytest.approx(np.corrcoef(E[c], others)[0, 1])
    assert res["mean"] == pytest.approx(np.mean([r.mean() for r in res["per_caption"]]))
    with pytest.raises(InputError, match="n_captions"):
        caption_consistency([rng.standard_normal((1, 12))])


def test_prediction_scores(rng):
    a, b = rng.standard_normal((4, 9)), rng.standard_normal((4, 9))
    np.testing.assert_allclose(
        prediction_scores(a, b), [np.corrcoef(a[i], b[i])[0, 1] for i in range(4)]
    )
