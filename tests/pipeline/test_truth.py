"""The virtual NSD's truth check: expected models per planted representation, runner-up, margin."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from brainalign.pipeline.analysis import ModelRef
from brainalign.pipeline.truth import ground_truth
from brainalign.stats import group_model_scores


def _plan():
    models = [
        ModelRef("mpnet", None),
        ModelRef("multihot", None),
        ModelRef("net_mpnet", None, instance="seed0", vision=True),
        ModelRef("efficientnet-lite0", None, vision=True),
    ]
    return SimpleNamespace(
        config=SimpleNamespace(data=SimpleNamespace(kind="virtual")), models=models
    )


def _scores(means: dict, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            {"subject": s, "roi": roi, "model": m, "r": mu + 0.01 * rng.normal()}
            for roi, ms in means.items()
            for m, mu in ms.items()
            for s in range(1, n + 1)
        ]
    )


TRUTH = {
    "truth_rois": {
        "early": {"representations": {"lowlevel": 1.0}},
        "lateral": {"representations": {"events": 1.0}},
        "ventral": {"representations": {"objects": 1.0}},
    }
}


def test_leaked_network_winning_events_is_a_disagreement_with_its_margin():
    scores = _scores(
        {
            "early": {"efficientnet-lite0": 0.4, "net_mpnet": 0.3, "mpnet": 0.1, "multihot": 0.1},
            "lateral": {
                "net_mpnet": 0.5,
                "mpnet": 0.45,
                "multihot": 0.1,
                "efficientnet-lite0": 0.2,
            },
            "ventral": {"multihot": 0.6, "mpnet": 0.3, "net_mpnet": 0.2, "efficientnet-lite0": 0.1},
        }
    )
    res = group_model_scores(scores)
    rows = {r["roi"]: r for r in ground_truth(_plan(), TRUTH, res.group, res.table)}
    assert rows["early"]["agreement"] == "yes" and rows["early"]["expected"] == "efficientnet-lite0"
    assert rows["ventral"]["agreement"] == "yes"
    lateral = rows["lateral"]
    assert lateral["best_feature_space"] == "net_mpnet" and lateral["agreement"] == "no"
    assert lateral["runner_up"] == "mpnet"
    wide = scores[scores.roi == "lateral"].pivot(index="subject", columns="model", values="r")
    t, p = sps.ttest_rel(wide["net_mpnet"], wide["mpnet"])
    assert lateral["margin"] == pytest.approx((wide["net_mpnet"] - wide["mpnet"]).mean())
    assert lateral["margin_t"] == pytest.approx(t) and lateral["margin_p"] == pytest.approx(p)


def test_no_truth_outside_the_virtual_nsd():
    plan = _plan()
    plan.config.data.kind = "nsd"
    res = group_model_scores(_scores({"early": {"mpnet": 0.1, "multihot": 0.2}}))
    assert ground_truth(plan, TRUTH, res.group, res.table) == []
