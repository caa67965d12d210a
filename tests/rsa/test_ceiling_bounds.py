"""Noise-ceiling bounds against scipy, the leave-one-out ceiling and the Algonauts formula;
MDS of RDMs; the known-results checks on synthetic scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainalign.errors import InputError
from brainalign.rsa import (
    algonauts_score,
    compute_rdm,
    noise_ceiling,
    noise_ceiling_bounds,
    objects92_known_results,
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


def _scores(it_animacy, evc_animacy, layers_evc, layers_it):
    rows, subj = [], []
    for roi, v in (("IT", it_animacy), ("EVC", evc_animacy)):
        rows.append(
            dict(
                dataset="cichy92",
                roi=roi,
                model="animacy",
                layer="",
                method="spearman",
                score=np.mean(v),
                ci_low=0,
                ci_high=1,
                p_zero=0.001,
            )
        )
        subj += [
            dict(
                dataset="cichy92",
                roi=roi,
                model="animacy",
                layer="",
                method="spearman",
                subject=f"s{i}",
                score=x,
            )
            for i, x in enumerate(v)
        ]
    for roi, prof in (("EVC", layers_evc), ("IT", layers_it)):
        rows += [
            dict(
                dataset="cichy92",
                roi=roi,
                model="efficientnet-lite0",
                layer=f"l{i}",
                method="spearman",
                score=x,
                ci_low=0,
                ci_high=1,
                p_zero=0.5,
            )
            for i, x in enumerate(prof)
        ]
    rows.append(
        dict(
            dataset="kriegeskorte92",
            roi="IT",
            model="animacy",
            layer="",
            method="spearman",
            score=0.3,
            ci_low=0.1,
            ci_high=0.5,
            p_zero=0.2,
        )
    )
    return pd.DataFrame(rows), pd.DataFrame(subj)


def test_known_results_report_pass_fail_and_not_applicable():
    rng = np.random.default_rng(0)
    scores, subj = _scores(
        0.3 + 0.02 * rng.standard_normal(8),
        0.02 * rng.standard_normal(8),
        [0.1, 0.3, 0.2],
        [0.1, 0.2, 0.4],
    )
    X = rng.standard_normal((10, 4))
    rdms = {("kriegeskorte92", "IT"): compute_rdm(X), ("cichy92", "IT"): compute_rdm(X + 0.3)}
    ids = {"kriegeskorte92": list("abcdefghij"), "cichy92": list("abcdefghij")}
    known = objects92_known_results(scores, subj, rdms, ids, n_permutations=200).set_index("check")
    status = {c: str(v) for c, v in known["passed"].items()}
    assert status == {
        "animacy_it_gt_evc": "True",
        "animacy_human_it": "False",  # p against 0 is 0.2
        "animacy_human_it_published": "None",  # no published animacy RDM in these scores
        "human_it_agrees": "True",
        "efficientnet_evc_before_it": "True",
    }
    # the IT profile peaking first fails the layer-order claim
    scores2, subj2 = _scores(
        np.full(8, 0.3),
        np.full(8, 0.1) + 0.01 * rng.standard_normal(8),
        [0.1, 0.2, 0.4],
        [0.4, 0.2, 0.1],
    )
    known2 = objects92_known_results(scores2, subj2, {}, {}, n_permutations=100).set_index("check")
    assert str(known2.loc["efficientnet_evc_before_it", "passed"]) == "False"
    assert known2.loc["human_it_agrees", "passed"] is None
