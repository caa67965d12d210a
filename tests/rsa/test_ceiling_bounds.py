"""Noise-ceiling bounds against scipy, the leave-one-out ceiling and the Algonauts formula;
MDS of RDMs (the known-results checks: tests/rsa/test_known_results.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from brainalign.errors import InputError
from brainalign.rsa import (
    algonauts_score,
    compute_rdm,
    noise_ceiling,
    noise_ceiling_bounds,
    rdm_mds,
)
from brainalign.rsa.rdm import squareform_rdm


@pytest.fixture(scope="module")
def rdms():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((15, 6))
    return np.stack([compute_rdm(X + 0.7 * rng.standard_normal(X.shape)) for _ in range(5)])


def test_bounds_follow_their_definition(rdms):
    nc = noise_ceiling_bounds(rdms, method="spearman", pool="mean")
    mean_all = rdms.mean(0)
    upper = [stats.spearmanr(r, mean_all).statistic for r in rdms]
    lower = [
        stats.spearmanr(r, np.delete(rdms, s, axis=0).mean(0)).statistic for s, r in enumerate(rdms)
    ]
    np.testing.assert_allclose(nc.upper, upper, atol=1e-12)
    np.testing.assert_allclose(nc.lower, lower, atol=1e-12)
    assert nc.upper_r2 == pytest.approx(np.mean(np.square(upper)))
    assert nc.lower_mean < nc.upper_mean
    # Pearson lower bound = the paper's leave-one-subject-out ceiling
    np.testing.assert_allclose(
        noise_ceiling_bounds(rdms, "pearson").lower, noise_ceiling(rdms), atol=1e-12
    )
    # square input gives the same
    sq = squareform_rdm(rdms)
    np.testing.assert_allclose(noise_ceiling_bounds(sq, "spearman").upper, upper, atol=1e-12)


def test_algonauts_score(rdms):
    model = rdms[0] + 0.1
    expected = np.mean([stats.spearmanr(model, r).statistic ** 2 for r in rdms])
    assert algonauts_score(model, rdms) == pytest.approx(expected)


def test_bad_input(rdms):
    with pytest.raises(InputError, match=">= 2 subjects"):
        noise_ceiling_bounds(rdms[:1])
    with pytest.raises(InputError, match="pool"):
        noise_ceiling_bounds(rdms, pool="median")
    bad = rdms.copy()
    bad[0, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        noise_ceiling_bounds(bad)


@pytest.mark.parametrize("method", ["classical", "metric"])
def test_mds_recovers_a_planar_configuration(method):
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((12, 2))
    rdm = compute_rdm(Y, metric="euclidean")
    X, stress = rdm_mds(rdm, method=method)
    assert X.shape == (12, 2) and stress < 1e-3
    np.testing.assert_allclose(compute_rdm(X, metric="euclidean"), rdm, atol=1e-3)
