"""The virtual NSD's truth check: oracle scores from the planted signal, rank agreement and the
best-model test (no hand-written expectations)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.spatial.distance import pdist

from brainalign.datasets import load_nsd, virtual_planted_signal
from brainalign.pipeline.truth import (
    best_model_check,
    ground_truth,
    oracle_scores,
    oracle_separates,
    spearman_ci,
    truth_check,
)
from brainalign.rsa import make_subsets


def test_oracle_score_is_a_plain_rsa_of_the_planted_patterns(virtual_nsd_root):
    """The oracle equals a direct recomputation: mean over the subsets of Pearson r between the
    correlation-distance RDMs of the planted patterns and of the model's features."""
    sub = load_nsd(virtual_nsd_root, 2, verbose=False)
    with np.load(virtual_nsd_root / "virtual_truth.npz") as z:
        pos = np.searchsorted(z["nsd_ids"], sub.image_ids)
        models = {name: z[f"representation_{name}"][pos] for name in ("objects", "events")}
    models["noise"] = np.random.default_rng(0).standard_normal((len(sub.image_ids), 20))
    subsets = make_subsets(len(sub.image_ids), 40, random_state=1)
    keep = np.ones(int(np.sum(sub.rois["ventral"])), bool)
    keep[::7] = False  # units the measurement dropped are dropped here too
    got = oracle_scores(
        virtual_nsd_root, 2, sub.image_ids, models, {"ventral": keep, "early": None},
        subsets=subsets,
    )  # fmt: skip
    for roi, units in (("ventral", keep), ("early", slice(None))):
        X = virtual_planted_signal(virtual_nsd_root, 2, sub.image_ids, roi)[:, units]
        for name, F in models.items():
            want = np.mean(
                [
                    np.corrcoef(pdist(X[g], "correlation"), pdist(F[g], "correlation"))[0, 1]
                    for g in subsets
                ]
            )
            assert got.loc[roi, name] == pytest.approx(want, abs=2e-5)  # float32 products
    # the representation planted in a ROI is the best model of its noiseless responses
    assert got.loc["ventral"].idxmax() == "objects"
    assert abs(got.loc["ventral", "noise"]) < 0.05
    full = oracle_scores(virtual_nsd_root, 2, sub.image_ids, models, {"ventral": keep})
    X = virtual_planted_signal(virtual_nsd_root, 2, sub.image_ids, "ventral")[:, keep]
    want = np.corrcoef(pdist(X, "correlation"), pdist(models["objects"], "correlation"))[0, 1]
    assert full.loc["ventral", "objects"] == pytest.approx(want, abs=2e-5)


def _subjects(means, n=8, sd=0.01, seed=0):
    """(n, n_models) per-subject scores around ``means``."""
    rng = np.random.default_rng(seed)
    return np.asarray(means)[None] + sd * rng.standard_normal((n, len(means)))


def test_spearman_point_estimate_and_interval():
    m, o = _subjects([0.1, 0.3, 0.2, 0.5], seed=1), _subjects([0.2, 0.4, 0.3, 0.6], seed=2)
    rho, low, high = spearman_ci(m, o)
    assert rho == pytest.approx(sps.spearmanr(m.mean(0), o.mean(0)).statistic)
    assert rho == 1.0 and low <= rho <= high and low > 0.5
    # unrelated orders: the interval covers 0
    rho, low, high = spearman_ci(_subjects([0.1, 0.1, 0.1, 0.1], sd=0.05), o)
    assert low < 0 < high


def test_best_model_same_tie_and_reversal():
    models = ["a", "b", "c"]
    oracle = _subjects([0.5, 0.48, 0.1])
    same = best_model_check(_subjects([0.4, 0.3, 0.1], seed=3), oracle, models)
    assert same["measured_best"] == same["oracle_best"] == "a" and same["best_ok"]
    measured = _subjects([0.4, 0.4, 0.1], seed=4)
    measured[:, 1] = measured[:, 0] + [0.02, -0.01, 0.03, -0.02, 0.01, 0.0, 0.02, -0.01]
    tie = best_model_check(measured, oracle, models)
    assert tie["measured_best"] == "b" and tie["oracle_best"] == "a"
    assert tie["best_p"] >= 0.05 and tie["best_ok"]
    measured = _subjects([0.3, 0.5, 0.1], seed=5)
    rev = best_model_check(measured, oracle, models)
    t, p = sps.ttest_rel(measured[:, 1], measured[:, 0])
    assert rev["best_t"] == pytest.approx(t) and rev["best_p"] == pytest.approx(p)
    assert rev["best_diff"] == pytest.approx((measured[:, 1] - measured[:, 0]).mean())
    assert not rev["best_ok"]


def _wide(X, models):
    return pd.DataFrame(X, index=pd.Index(range(1, len(X) + 1), name="subject"), columns=models)


def test_truth_check_agreement_and_why():
    models = ["a", "b", "c", "d"]
    oracle = _wide(_subjects([0.5, 0.3, 0.2, 0.0]), models)
    good = truth_check(_wide(_subjects([0.45, 0.3, 0.15, 0.01], seed=1), models), oracle)
    assert good["agreement"] == "yes" and good["rank_check"] == "ok"
    bad = truth_check(_wide(_subjects([0.2, 0.5, 0.3, 0.0], seed=2), models), oracle)
    assert bad["agreement"] == "no" and not bad["best_ok"]
    assert "significant reversal" in bad["why"] and "b" in bad["why"]
    # an oracle that does not tell its models apart: ranks are not a test ("untested"), a tie agrees
    flat = _wide(_subjects([0.03, 0.02, 0.03, 0.02], sd=0.03, seed=3), models)
    res = truth_check(_wide(_subjects([0.05, 0.04, 0.05, 0.06], sd=0.03, seed=4), models), flat)
    assert not oracle_separates(flat.to_numpy())[0]
    assert res["rank_check"] == "untested" and res["agreement"] == "yes"
    # a model missing for one subject leaves that subject out, not the ROI
    m = _wide(_subjects([0.45, 0.3, 0.15, 0.01], seed=1), models)
    m.iloc[0, 2] = np.nan
    assert truth_check(m, oracle)["n_subjects"] == 7


def _plan(kind="virtual"):
    return SimpleNamespace(config=SimpleNamespace(data=SimpleNamespace(kind=kind)))


def test_ground_truth_rows_and_scatter_table():
    models = ["mpnet", "multihot", "net_mpnet"]
    rows, oracle = [], []
    for roi, means in (("ventral", [0.3, 0.6, 0.2]), ("lateral", [0.5, 0.2, 0.4])):
        X = _subjects(means, n=6)
        for s in range(6):
            for j, m in enumerate(models):
                rows.append(
                    {"subject": s + 1, "roi": roi, "model": m, "r": X[s, j], "r_norm": X[s, j] * 2}
                )
                oracle.append({"subject": s + 1, "roi": roi, "model": m, "oracle": X[s, j] + 0.05})
    truth = {
        "truth_rois": {
            "ventral": {"representations": {"objects": 1.0}},
            "lateral": {"representations": {"events": 1.0}},
            "early": {"representations": {"lowlevel": 1.0}},  # not measured: no row
        }
    }
    got, scores = ground_truth(_plan(), truth, pd.DataFrame(rows), pd.DataFrame(oracle))
    by = {r["roi"]: r for r in got}
    assert set(by) == {"ventral", "lateral"}
    assert by["ventral"]["planted"] == "objects (1)" and by["ventral"]["oracle_best"] == "multihot"
    assert all(r["agreement"] == "yes" for r in got)
    v = scores[(scores.roi == "ventral") & (scores.model == "multihot")].iloc[0]
    table = pd.DataFrame(rows)
    sel = (table.roi == "ventral") & (table.model == "multihot")
    assert v["value"] == "r_norm" and v["measured"] == pytest.approx(
        table.loc[sel, "r_norm"].mean()
    )
    assert v["oracle"] == pytest.approx(table.loc[sel, "r"].mean() + 0.05)
    # no truth outside the virtual NSD
    assert ground_truth(_plan("nsd"), truth, pd.DataFrame(rows), pd.DataFrame(oracle))[0] == []


def test_scatter_figure_has_a_panel_per_roi(tmp_path):
    from brainalign.report.truth_plots import truth_scatter_figure

    scores = pd.DataFrame(
        {
            "roi": ["a", "a", "b", "b"],
            "model": ["x", "y", "x", "y"],
            "value": "r_norm",
            "measured": [0.1, 0.2, 0.3, 0.1],
            "measured_sem": 0.01,
            "oracle": [0.1, 0.25, 0.2, 0.1],
            "oracle_sem": 0.01,
        }
    )
    checks = pd.DataFrame(
        {
            "roi": ["a", "b"],
            "measured_best": ["y", "x"],
            "oracle_best": ["y", "x"],
            "rank_rho": [1.0, 1.0],
            "rank_ci_low": [1.0, 1.0],
            "rank_ci_high": [1.0, 1.0],
            "agreement": ["yes", "yes"],
        }
    )
    fig = truth_scatter_figure(scores, checks)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 2 and titles[0].startswith("a: ρ = 1.00")


def _by_subject(values: dict) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.Index(range(1, 9), name="subject"))


def test_contrast_check_directions_and_agreement():
    from brainalign.pipeline.truth import contrast_check

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 8)
    oracle = _by_subject({"a": 0.30 + noise, "b": 0.10 + noise, "c": 0.10 + noise[::-1]})
    # measured in the predicted direction: agrees
    same = contrast_check(_by_subject({"a": 0.2 + noise, "b": 0.05 + noise}), oracle, "a", "b")
    assert same["predicted"] == same["measured"] == "a > b" and same["agreement"] == "yes"
    assert same["oracle_diff"] == pytest.approx(0.2) and same["n_subjects"] == 8
    # the opposite, significantly: reversed
    rev = contrast_check(_by_subject({"a": 0.05 + noise, "b": 0.2 + noise}), oracle, "a", "b")
    assert rev["measured"] == "b > a" and rev["agreement"] == "reversed"
    # a predicted difference lost in noise: not detected
    x = rng.normal(0, 0.1, 8)
    flat = _by_subject({"a": x, "b": x[::-1]})  # differences that sum to 0
    miss = contrast_check(flat, oracle, "a", "b")
    assert miss["measured"] == "no difference" and miss["agreement"] == "not detected"
    # no predicted difference (b and c carry the same truth) but a measured one: unexpected
    une = contrast_check(_by_subject({"b": 0.2 + noise, "c": 0.05 + noise}), oracle, "b", "c")
    assert une["predicted"] == "no difference" and une["agreement"] == "unexpected"
    # a model the run did not score: no row
    assert contrast_check(flat, oracle, "a", "zzz") == {}


def test_contrast_truth_one_row_per_roi_and_scored_pair():
    from brainalign.pipeline.truth import contrast_truth

    rng = np.random.default_rng(1)
    rows, orows = [], []
    for roi, sign in (("ventral", -1), ("lateral", 1)):
        for s in range(1, 7):
            e = rng.normal(0, 0.01)
            for model, v in (("net_mpnet", 0.2 * sign), ("mpnet", 0.0)):
                rows.append(
                    {"subject": s, "roi": roi, "model": model, "r": v + e, "r_norm": np.nan}
                )
                orows.append({"subject": s, "roi": roi, "model": model, "oracle": v + e})
    t = contrast_truth(
        pd.DataFrame(rows), pd.DataFrame(orows), [("net_mpnet", "mpnet"), ("net_mpnet", "x")]
    )
    assert list(t["roi"]) == ["ventral", "lateral"] and set(t["b"]) == {"mpnet"}
    assert list(t["predicted"]) == ["mpnet > net_mpnet", "net_mpnet > mpnet"]
    assert (t["agreement"] == "yes").all() and (t["value"] == "r").all()
