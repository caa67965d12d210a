"""evaluate_rois against evaluate_models ROI by ROI, the Algonauts score (signed and unsigned)
against scipy, and compact_rdms's exact float32."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from brainalign.errors import InputError
from brainalign.rsa import _weighted as weighted
from brainalign.rsa import (
    algonauts_r2,
    algonauts_score,
    compact_rdms,
    compute_rdm,
    evaluate_models,
    evaluate_rois,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((14, 5))
    rois = {
        roi: np.stack([compute_rdm(X + s * rng.standard_normal(X.shape)) for _ in range(4)])
        for roi, s in (("EVC", 0.5), ("IT", 1.0))
    }
    models = np.stack([compute_rdm(X + 0.8 * rng.standard_normal(X.shape)) for _ in range(3)])
    return rois, models


def test_algonauts_r2_is_the_mean_squared_spearman_and_keeps_the_sign_when_asked(data):
    rois, models = data
    D = rois["IT"]
    r = np.array([[stats.spearmanr(m, d).statistic for d in D] for m in models])
    np.testing.assert_allclose(algonauts_r2(r), (r**2).mean(1), rtol=1e-15)
    assert algonauts_score(models[0], D) == pytest.approx((r[0] ** 2).mean(), rel=1e-12)
    # a model anti-correlated with every subject: the published score cannot tell; the signed
    # score is its negative
    anti = -r
    assert algonauts_r2(anti) == pytest.approx(algonauts_r2(r))
    np.testing.assert_allclose(algonauts_r2(anti, signed=True), -algonauts_r2(r), rtol=1e-15)
    mixed = np.array([0.5, -0.5, 0.2])
    assert algonauts_r2(mixed, signed=True) == pytest.approx(0.04 / 3)
    with pytest.raises(InputError, match="subject_scores"):
        algonauts_r2(np.zeros((2, 0)))


def test_evaluate_rois_lays_out_evaluate_models_roi_by_roi(data):
    rois, models = data
    keys = [
        {"model": "a", "layer": ""},
        {"model": "net", "layer": "l1"},
        {"model": "net", "layer": "l2"},
    ]
    subjects = ["s1", "s2", "s3", "s4"]
    res = evaluate_rois(
        models,
        ((roi, subjects, D) for roi, D in rois.items()),
        "spearman",
        model_keys=keys,
        n_bootstrap=40,
        random_state=3,
    )
    assert res.rois == ["EVC", "IT"]
    for k, (roi, D) in enumerate(rois.items()):
        ev = evaluate_models(models, D, "spearman", n_bootstrap=40, random_state=3)
        rows = [r for r in res.scores if r["roi"] == roi]
        assert [(r["model"], r["layer"]) for r in rows] == [(x["model"], x["layer"]) for x in keys]
        low, high = ev.ci(0.95)
        np.testing.assert_array_equal([r["score"] for r in rows], ev.mean)
        np.testing.assert_array_equal([r["ci_low"] for r in rows], low)
        np.testing.assert_array_equal([r["ci_high"] for r in rows], high)
        np.testing.assert_array_equal([r["p_zero"] for r in rows], ev.p_zero())
        np.testing.assert_array_equal([r["p_noise"] for r in rows], ev.p_noise())
        r = np.array([[stats.spearmanr(m, d).statistic for d in D] for m in models])
        np.testing.assert_allclose([x["algonauts_r2"] for x in rows], (r**2).mean(1), rtol=1e-12)
        np.testing.assert_allclose(
            [x["algonauts_r2_signed"] for x in rows], (np.sign(r) * r**2).mean(1), rtol=1e-12
        )
        assert [x["n_negative"] for x in rows] == list((r < 0).sum(1))
        assert all(x["n_stimuli"] == 14 and x["n_subjects"] == 4 for x in rows)
        subj = [x for x in res.subject_scores if x["roi"] == roi]
        assert [x["subject"] for x in subj] == subjects * 3
        np.testing.assert_array_equal([x["score"] for x in subj], ev.scores.ravel())
        ceil = res.ceilings[k]
        assert (ceil["roi"], ceil["lower"], ceil["upper"]) == (
            roi,
            ev.ceiling.lower_mean,
            ev.ceiling.upper_mean,
        )
        pairs = [x for x in res.pairwise if x["roi"] == roi]
        table = ev.pairwise_table()
        assert [(x["layer_a"], x["layer_b"]) for x in pairs] == [
            ("", "l1"),
            ("", "l2"),
            ("l1", "l2"),
        ]
        assert list(pairs[0])[:6] == ["method", "roi", "model_a", "layer_a", "model_b", "layer_b"]
        np.testing.assert_array_equal([x["diff"] for x in pairs], table["diff"])
        np.testing.assert_array_equal([x["p"] for x in pairs], table["p"])
        np.testing.assert_array_equal(res.group_rdms[k], D.mean(0))


def test_evaluate_rois_pearson_rows_carry_no_algonauts_score_and_keys_must_match(data):
    rois, models = data
    res = evaluate_rois(models, [("IT", range(4), rois["IT"])], "pearson", bootstrap="none")
    assert "algonauts_r2" not in res.scores[0]
    assert [r["model"] for r in res.scores] == ["model_0", "model_1", "model_2"]
    assert res.scores[0]["n_bootstrap"] == 0 and res.scores[0]["dof"] == 3
    with pytest.raises(InputError, match="model_keys"):
        evaluate_rois(models, [], model_keys=[{"model": "a"}])
    with pytest.raises(InputError, match="models"):
        evaluate_rois(models[0], [])


def test_compact_rdms_keeps_exact_float32_for_long_spearman_only(monkeypatch):
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 10)
    rng = np.random.default_rng(0)
    exact = rng.random((2, 45)).astype(np.float32).astype(np.float64)
    out = compact_rdms(exact, "spearman")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, exact)
    inexact = exact.copy()
    inexact[1, 44] += 1e-12
    assert compact_rdms(inexact, "spearman") is inexact
    assert compact_rdms(exact, "pearson") is exact
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 1000)  # short RDMs stay as they are
    assert compact_rdms(exact, "spearman") is exact
