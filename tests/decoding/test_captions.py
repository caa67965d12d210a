"""decode_captions: the one path from brain to captions (pipeline stage and CLI alike)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from brainalign.decoding import CaptionBank, caption_sources, decode_captions, decode_subject
from brainalign.errors import InputError


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    n, dim, n_units = 60, 8, 40
    E = rng.normal(size=(n, dim)).astype(np.float32)
    W = rng.normal(size=(dim, n_units))
    betas = (E @ W + 0.5 * rng.normal(size=(n, n_units))).astype(np.float32)
    ids = np.arange(100, 100 + n)
    sub = SimpleNamespace(
        betas=betas,
        image_ids=ids,
        shared=np.arange(n) < 12,
        n_images=n,
        n_units=n_units,
        rois={"early": np.ones(n_units, bool)},
    )
    captions = [[f"image {i} caption {k}" for k in range(2)] for i in ids]
    flat = [c for cs in captions for c in cs]
    bank_E = np.repeat(E, 2, axis=0) + 0.05 * rng.normal(size=(2 * n, dim))
    extra = rng.normal(size=(5, dim))
    bank = CaptionBank.from_embeddings(
        np.vstack([bank_E, extra]), flat + [f"extra {k}" for k in range(5)], "toy"
    )
    return sub, E, bank, captions


def test_sources_name_each_caption_image_or_minus_one(problem):
    sub, _, bank, captions = problem
    src = caption_sources(bank.captions, sub.image_ids, captions)
    np.testing.assert_array_equal(src[:4], [100, 100, 101, 101])
    assert (src[-5:] == -1).all()


def test_never_retrieves_the_test_images_captions_and_matches_brute_force(problem):
    sub, E, bank, captions = problem
    src = caption_sources(bank.captions, sub.image_ids, captions)
    out = decode_captions(sub, E, bank, src, rois=["early"], k=3, alphas=[1.0, 10.0])
    res = out.decoding
    ref = decode_subject(sub, E, rois=["early"], alphas=[1.0, 10.0])
    np.testing.assert_array_equal(res.predicted, ref.predicted)
    test_ids = set(res.test_ids.tolist())
    assert not any(int(src[i]) in test_ids for i in out.top_idx.ravel())
    assert all(int(src[i]) in set(res.train_ids.tolist()) for i in out.train_idx)
    # brute force: cosine against every allowed caption
    B = np.asarray(bank.embeddings, np.float64)
    B /= np.linalg.norm(B, axis=1, keepdims=True)
    P = res.predicted / np.linalg.norm(res.predicted, axis=1, keepdims=True)
    S = P @ B.T
    S[:, np.isin(src, res.test_ids)] = -np.inf
    np.testing.assert_array_equal(out.top_idx[:, 0], S.argmax(1))
    np.testing.assert_allclose(out.top_sim[:, 0], S.max(1), atol=1e-5)


def test_source_ids_must_match_the_bank(problem):
    sub, E, bank, _ = problem
    with pytest.raises(InputError, match="source_ids"):
        decode_captions(sub, E, bank, np.zeros(3, int))


def test_caption_ceiling_is_caption_consistency_of_the_encoded_captions():
    from brainalign.decoding import caption_ceiling, caption_consistency

    rng = np.random.default_rng(4)
    vectors = {f"c{i}": rng.normal(size=6) for i in range(7)}
    encoder = SimpleNamespace(encode=lambda texts: np.stack([vectors[t] for t in texts]))
    per_image = [["c0", "c1", "c2"], ["c3", "c4"], ["c5", "c6", "c0"]]
    expected = caption_consistency([np.stack([vectors[c] for c in cs]) for cs in per_image])
    np.testing.assert_allclose(caption_ceiling(per_image, encoder), expected["per_image"])
