"""decode_captions: the one path from brain to captions (pipeline stage and CLI alike)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from brainalign.decoding import (
    CaptionBank,
    CaptionSources,
    bank_captions,
    caption_sources,
    decode_captions,
    decode_subject,
)
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


def test_sources_name_each_captions_images(problem):
    sub, _, bank, captions = problem
    src = caption_sources(bank.captions, sub.image_ids, captions)
    assert src.n_captions == len(bank)
    np.testing.assert_array_equal(src.rows[:4], [0, 1, 2, 3])
    np.testing.assert_array_equal(src.image_ids[:4], [100, 100, 101, 101])
    assert not np.isin(src.rows, np.arange(len(bank) - 5, len(bank))).any()  # the extras
    np.testing.assert_array_equal(np.flatnonzero(src.of([101])), [2, 3])


def test_never_retrieves_the_test_images_captions_and_matches_brute_force(problem):
    sub, E, bank, captions = problem
    src = caption_sources(bank.captions, sub.image_ids, captions)
    out = decode_captions(sub, E, bank, src, rois=["early"], k=3, alphas=[1.0, 10.0])
    res = out.decoding
    ref = decode_subject(sub, E, rois=["early"], alphas=[1.0, 10.0])
    np.testing.assert_array_equal(res.predicted, ref.predicted)
    of_test = src.of(res.test_ids)
    assert of_test.sum() == 2 * len(res.test_ids) and not of_test[out.top_idx.ravel()].any()
    assert src.of(res.train_ids)[out.train_idx].all()
    # brute force: cosine against every allowed caption
    B = np.asarray(bank.embeddings, np.float64)
    B /= np.linalg.norm(B, axis=1, keepdims=True)
    P = res.predicted / np.linalg.norm(res.predicted, axis=1, keepdims=True)
    S = P @ B.T
    S[:, of_test] = -np.inf
    np.testing.assert_array_equal(out.top_idx[:, 0], S.argmax(1))
    np.testing.assert_allclose(out.top_sim[:, 0], S.max(1), atol=1e-5)
    # one image id per caption (-1 for none) decodes the same
    flat = np.full(len(bank), -1)
    flat[src.rows] = src.image_ids
    again = decode_captions(sub, E, bank, flat, rois=["early"], k=3, alphas=[1.0, 10.0])
    np.testing.assert_array_equal(again.top_idx, out.top_idx)


def test_a_test_images_caption_is_never_retrieved_when_another_image_has_it_too(problem):
    """COCO has identical captions for different images: a test image's caption string stays
    out of the search wherever it comes from, another (training) image or the corpus."""
    sub, E, _, captions = problem
    captions = [list(c) for c in captions]
    test_pos, train_pos = np.flatnonzero(sub.shared), np.flatnonzero(~sub.shared)
    dup = "A dog on a red couch."
    captions[train_pos[0]][0] = dup  # a training image's caption ...
    captions[test_pos[0]][1] = "  A dog on a  red couch.\n"  # ... a test image's, spaced apart
    flat = [c for cs in captions for c in cs]
    rng = np.random.default_rng(1)
    # the bank puts the duplicated string where any decoded embedding finds it first: a copy of
    # every prediction near it, in the images' captions and in a corpus entry
    bank_E = rng.normal(size=(len(flat) + 1, E.shape[1]))
    ref = decode_subject(sub, E, rois=["early"], alphas=[1.0, 10.0])
    pull = ref.predicted.mean(0)
    dup_rows = [j for j, c in enumerate(flat) if " ".join(c.split()) == dup] + [len(flat)]
    bank_E[dup_rows] = pull + 1e-3 * rng.normal(size=(len(dup_rows), E.shape[1]))
    bank = CaptionBank.from_embeddings(bank_E, [*flat, dup], "toy")
    src = caption_sources(bank.captions, sub.image_ids, captions)
    assert set(np.flatnonzero(src.of([sub.image_ids[test_pos[0]]]))) >= set(dup_rows)
    out = decode_captions(sub, E, bank, src, rois=["early"], k=5, alphas=[1.0, 10.0])
    retrieved = {bank.captions[j] for j in out.top_idx.ravel()}
    assert dup not in retrieved
    # without the test image the string is found: the bank does pull the predictions there
    alone = caption_sources(
        bank.captions, sub.image_ids[train_pos], [captions[i] for i in train_pos]
    )
    leaky = decode_captions(sub, E, bank, alone, rois=["early"], k=5, alphas=[1.0, 10.0])
    assert dup in {bank.captions[j] for j in leaky.top_idx.ravel()}


def test_bank_captions_are_the_data_sets_own_by_default(tmp_path):
    per_image = [["a b", "c d"], ["e f"]]
    assert bank_captions(per_image) == ["a b", "c d", "e f"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("x y\n\nx y\nz\n")
    assert bank_captions(per_image, corpus) == ["x y", "z"]


def test_sources_must_match_the_bank(problem):
    sub, E, bank, _ = problem
    with pytest.raises(InputError, match="sources: made for a bank of 3 captions"):
        decode_captions(sub, E, bank, np.zeros(3, int))
    with pytest.raises(InputError, match="source_ids: expected one integer image id"):
        decode_captions(sub, E, bank, np.zeros(len(bank)))
    with pytest.raises(InputError, match="captions_per_image: expected one list"):
        caption_sources(bank.captions, sub.image_ids, [["a"]])
    assert isinstance(caption_sources([], [], []), CaptionSources)


def test_caption_ceiling_is_caption_consistency_of_the_encoded_captions():
    from brainalign.decoding import caption_ceiling, caption_consistency

    rng = np.random.default_rng(4)
    vectors = {f"c{i}": rng.normal(size=6) for i in range(7)}
    encoder = SimpleNamespace(encode=lambda texts: np.stack([vectors[t] for t in texts]))
    per_image = [["c0", "c1", "c2"], ["c3", "c4"], ["c5", "c6", "c0"]]
    expected = caption_consistency([np.stack([vectors[c] for c in cs]) for cs in per_image])
    np.testing.assert_allclose(caption_ceiling(per_image, encoder), expected["per_image"])
