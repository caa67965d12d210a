"""Across-subject helpers: common shared images, ROI noise ceilings, centre values to volumes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from brainalign.errors import DataFormatError
from brainalign.rsa import centres_to_volume, common_shared_images, roi_noise_ceilings


def _subject(rng, ids, shared_ids, n_units=30):
    ids = np.asarray(sorted(ids))
    rois = {"a": np.arange(n_units) < 15, "b": np.arange(n_units) >= 10}
    return SimpleNamespace(
        betas=rng.normal(size=(len(ids), n_units)).astype(np.float32),
        image_ids=ids,
        shared=np.isin(ids, shared_ids),
        rois=rois,
    )


def test_ceiling_is_each_subject_against_the_mean_of_the_others():
    rng = np.random.default_rng(0)
    shared = np.arange(0, 40, 2)
    subs = [_subject(rng, np.r_[shared, 100 + 10 * k + np.arange(5)], shared) for k in range(4)]
    # one subject missed two of the shared images: they leave the common set
    subs[3] = _subject(rng, np.r_[shared[2:], 200 + np.arange(5)], shared)
    common = common_shared_images(subs)
    np.testing.assert_array_equal(common, shared[2:])
    res = roi_noise_ceilings(subs, ["a", "b"])
    assert res["ceiling"].shape == (4, 2)
    for j, roi in enumerate(["a", "b"]):
        rdms = []
        for s in subs:
            rows = np.searchsorted(s.image_ids, common)
            rdms.append(pdist(s.betas[rows][:, s.rois[roi]].astype(np.float64), "correlation"))
        rdms = np.array(rdms)
        for i in range(4):
            others = np.delete(rdms, i, axis=0).mean(0)
            expected = np.corrcoef(rdms[i], others)[0, 1]
            assert res["ceiling"][i, j] == pytest.approx(expected, abs=1e-6)


def test_too_few_common_images_is_an_error():
    rng = np.random.default_rng(1)
    subs = [_subject(rng, [1, 2, 3], [1, 2]), _subject(rng, [1, 2, 3], [1, 2])]
    with pytest.raises(DataFormatError, match="only 2 shared images"):
        roi_noise_ceilings(subs, ["a"])


def test_centres_to_volume_places_values_and_zeroes_the_rest():
    mask = np.zeros((3, 4, 5), bool)
    mask[1, 1:3, 1:4] = True
    centres = np.array([0, 2, 5])
    values = np.array([0.5, np.nan, -0.25])
    vol = centres_to_volume(values, mask, centres)
    voxels = np.flatnonzero(mask)[centres]
    np.testing.assert_array_equal(vol.ravel()[voxels], [0.5, 0.0, -0.25])
    assert np.count_nonzero(vol) == 2
    with pytest.raises(DataFormatError, match="2 searchlight values for 3 centres"):
        centres_to_volume(values[:2], mask, centres)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_roi_rsa_with_other_rdm_metrics_matches_scipy(metric):
    from scipy.stats import pearsonr, spearmanr

    from brainalign.rsa import roi_rsa

    rng = np.random.default_rng(7)
    betas = rng.normal(size=(30, 40))
    X = rng.normal(size=(30, 6))
    rois = {"a": np.arange(40) < 20, "b": np.arange(40) >= 15}
    subsets = rng.permutation(30).reshape(3, 10)
    got = roi_rsa(betas, {"m": X}, rois, subsets=subsets, method="spearman", metric=metric)
    for roi, mask in rois.items():
        expected = np.mean(
            [spearmanr(pdist(betas[g][:, mask], metric), pdist(X[g], metric))[0] for g in subsets]
        )
        assert got.loc[roi, "m"] == pytest.approx(expected, abs=1e-10)
    full = roi_rsa(betas, {"m": X}, rois, sampling="full", metric=metric)
    r = pearsonr(pdist(betas[:, rois["a"]], metric), pdist(X, metric))[0]
    assert full.loc["a", "m"] == pytest.approx(r, abs=1e-10)
    # the correlation metric keeps the RDM-free path: same as explicit correlation RDMs
    corr = roi_rsa(betas, {"m": X}, rois, sampling="full")
    r = pearsonr(pdist(betas[:, rois["a"]], "correlation"), pdist(X, "correlation"))[0]
    assert corr.loc["a", "m"] == pytest.approx(r, abs=1e-8)
