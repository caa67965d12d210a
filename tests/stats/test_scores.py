"""group_model_scores and group_map against plain references written here (scipy, numpy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from brainalign.errors import InputError
from brainalign.stats import group_map, group_model_scores


def _scores(rng, subjects=(1, 2, 3, 4, 5), rois=("early", "ventral"), models=("a", "b", "c")):
    rows = [
        {"subject": s, "roi": roi, "model": m, "r": float(rng.normal(0.2, 0.1))}
        for s in subjects
        for roi in rois
        for m in models
    ]
    return pd.DataFrame(rows)


def test_group_table_matches_scipy_on_raw_scores():
    rng = np.random.default_rng(0)
    scores = _scores(rng)
    res = group_model_scores(scores)
    assert res.value == "r" and res.table["r_norm"].isna().all()
    for _, row in res.group.iterrows():
        x = scores[(scores.roi == row.roi) & (scores.model == row.model)]["r"].to_numpy()
        t, p = sps.ttest_1samp(x, 0.0)
        assert row["mean"] == pytest.approx(x.mean(), abs=1e-12)
        assert row["sem"] == pytest.approx(sps.sem(x), abs=1e-12)
        assert row["t"] == pytest.approx(t, rel=1e-10) and row["p"] == pytest.approx(p, rel=1e-8)
    # rank 1 is the best mean in each ROI
    for _, g in res.group.groupby("roi"):
        assert g.sort_values("mean", ascending=False)["rank"].tolist() == [1, 2, 3]


def test_ceilings_normalise_and_instances_average_first():
    rng = np.random.default_rng(1)
    scores = _scores(rng, models=("a",))
    seeds = scores.assign(model="net", instance="seed0")
    seeds2 = scores.assign(model="net", instance="seed1", r=scores["r"] + 0.1)
    ceilings = pd.DataFrame(
        [
            {"subject": s, "roi": roi, "ceiling": 0.5 + 0.1 * s}
            for s in range(1, 6)
            for roi in ("early", "ventral")
        ]
    )
    res = group_model_scores(pd.concat([scores, seeds, seeds2]), ceilings)
    assert res.value == "r_norm"
    net = res.table[res.table.model == "net"].set_index(["subject", "roi"])
    a = res.table[res.table.model == "a"].set_index(["subject", "roi"])
    np.testing.assert_allclose(net["r"], a["r"] + 0.05, atol=1e-12)
    np.testing.assert_allclose(net["r_norm"], net["r"] / net["ceiling"], atol=1e-12)
    assert set(res.group.model) == {"a", "net"}


def test_pairwise_comparisons_are_paired_t_with_fdr():
    rng = np.random.default_rng(2)
    scores = _scores(rng)
    res = group_model_scores(scores, comparison_rois=["ventral"], fdr_q=0.05)
    pairs = res.pairwise
    assert set(pairs.roi) == {"ventral"} and len(pairs) == 3
    v = scores[scores.roi == "ventral"].pivot(index="subject", columns="model", values="r")
    for _, row in pairs.iterrows():
        t, p = sps.ttest_rel(v[row.model_a], v[row.model_b])
        assert row.t == pytest.approx(t, rel=1e-10) and row.p == pytest.approx(p, rel=1e-8)
    q = sps.false_discovery_control(pairs.p.to_numpy(), method="bh")
    np.testing.assert_allclose(pairs.q, q, rtol=1e-10)


def test_bad_tables_are_named():
    with pytest.raises(InputError, match="scores: missing column"):
        group_model_scores(pd.DataFrame({"subject": [1], "roi": ["a"]}))
    with pytest.raises(InputError, match="test:"):
        group_model_scores(_scores(np.random.default_rng(0)), test="welch")


def test_group_map_is_one_sample_t_and_bh_fdr():
    rng = np.random.default_rng(3)
    R = rng.normal(0.1, 0.2, size=(6, 50))
    R[:, 0] = np.nan
    g = group_map(R, fdr_q=0.1)
    t, p = sps.ttest_1samp(R[:, 1:], 0.0)
    np.testing.assert_allclose(g["t"][1:], t, rtol=1e-5)
    np.testing.assert_allclose(g["p"][1:], p, rtol=1e-8)
    np.testing.assert_allclose(g["mean"][1:], R[:, 1:].mean(0), rtol=1e-6)
    assert np.isnan(g["mean"][0]) and not g["significant"][0]
    reject = sps.false_discovery_control(p, method="bh") <= 0.1
    np.testing.assert_array_equal(g["significant"][1:], reject)


def test_paper_error_bars_are_sd_ddof0_over_sqrt_n():
    scores = _scores(np.random.default_rng(5))
    res = group_model_scores(scores, error="paper")
    for _, row in res.group.iterrows():
        x = scores[(scores.roi == row.roi) & (scores.model == row.model)]["r"].to_numpy()
        assert row.sd0_sqrt_n == pytest.approx(x.std(ddof=0) / np.sqrt(len(x)), abs=1e-12)
        assert row["sem"] == pytest.approx(sps.sem(x), abs=1e-12)
    assert "sd0_sqrt_n" not in group_model_scores(scores).group
