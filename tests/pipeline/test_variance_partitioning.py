"""The variance-partitioning analysis on a small virtual NSD: maps, ROI tables, the oracle."""

from __future__ import annotations

import copy
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainalign.errors import ConfigError
from brainalign.pipeline.analyses.variance_partitioning import roi_table, truth_table
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.demo import QUICK_OVERRIDES
from brainalign.pipeline.study import run_study

BANDS = ["minilm", "multihot"]


def _config(out, **vp):
    q = copy.deepcopy(QUICK_OVERRIDES)
    return {
        "data": {"kind": "virtual", **q["data"]},
        "features": {"spaces": BANDS},
        "analyses": {
            "roi_rsa": {"enabled": False},
            "model_comparison": {"enabled": False},
            "searchlight": {"enabled": False},
            "searchlight_contrasts": {"enabled": False},
            "encoding": {"enabled": False},
            "insilico": {"enabled": False},
            "decoding": {"enabled": False},
            "networks": {"enabled": False},
            "variance_partitioning": {
                "enabled": True,
                "bands": BANDS,
                "n_iter": 2,
                "alphas": [1.0, 100.0, 10000.0],
                "cv": 3,
                "mask": "nsdgeneral",
                **vp,
            },
        },
        "output": {"dir": str(out)},
    }


@pytest.fixture(scope="module")
def vp_run(tmp_path_factory):
    cfg = validate_config(_config(tmp_path_factory.mktemp("vp") / "run"))
    run_study(cfg, report=False)  # the report's sections are built in the demo's checks
    return cfg.output.dir


def test_run_writes_maps_tables_and_truth(vp_run):
    roi = pd.read_csv(vp_run / "tables" / "variance_partitioning_roi.csv")
    subjects = pd.read_csv(vp_run / "tables" / "variance_partitioning_subjects.csv")
    parts = [f"unique {b}" for b in BANDS] + ["shared", "joint"]
    assert set(roi["part"]) == set(parts)
    # the ROI table is the group summary of the per-subject values
    for (r, part), g in subjects.groupby(["roi", "part"]):
        row = roi[(roi["roi"] == r) & (roi["part"] == part)].iloc[0]
        assert row["mean"] == pytest.approx(g["value"].mean(), abs=1e-6)
        assert row["n_subjects"] == 3
    # the parts add up: joint = Σ unique + shared
    wide = subjects.pivot_table(index=["subject", "roi"], columns="part", values="value")
    np.testing.assert_allclose(
        wide["joint"], wide[[f"unique {b}" for b in BANDS]].sum(1) + wide["shared"], atol=1e-5
    )
    truth = pd.read_csv(vp_run / "tables" / "variance_partitioning_truth.csv")
    assert {"lateral", "ventral"} <= set(truth["roi"])
    assert set(truth["oracle_unique"]) <= {"yes", "no"}
    index = json.loads((vp_run / "maps" / "index.json").read_text())
    names = {e["name"] for e in index} if isinstance(index, list) else set(index)
    assert any("vp_unique_minilm" in n for n in names)
    # fitted inside the mask only
    lh = np.asarray(nib.load(vp_run / "maps" / "vp_unique_minilm.lh.func.gii").darrays[0].data)
    assert np.isnan(lh).any() and np.isfinite(lh).any()


def test_truth_table_reads_the_oracle_not_expectations():
    rng = np.random.default_rng(0)
    rows_m, rows_o = [], []
    for s in range(1, 7):
        for roi, o, m in (("lateral", 0.05, 0.02), ("ventral", 0.0, 0.03)):
            rows_o.append((s, roi, "unique a", o + 1e-3 * rng.standard_normal()))
            rows_m.append((s, roi, "unique a", m + 1e-3 * rng.standard_normal()))
    cols = ["subject", "roi", "part", "value"]
    t = truth_table(
        pd.DataFrame(rows_m, columns=cols),
        pd.DataFrame(rows_o, columns=cols),
        "a",
        {"lateral": {"events": 1.0}},
    ).set_index("roi")
    assert t.loc["lateral", "oracle_unique"] == "yes" and t.loc["lateral", "agrees"]
    assert t.loc["ventral", "oracle_unique"] == "no"
    assert t.loc["ventral", "measured_unique"] == "yes" and not t.loc["ventral", "agrees"]
    assert t.loc["lateral", "planted"] == "events (1)"


def test_roi_table_interval():
    from scipy import stats

    v = np.array([0.1, 0.2, 0.15, 0.3])
    df = pd.DataFrame({"subject": range(4), "roi": "x", "part": "shared", "value": v})
    row = roi_table(df).iloc[0]
    half = stats.t.ppf(0.975, 3) * v.std(ddof=1) / 2
    assert row["ci_low"] == pytest.approx(v.mean() - half)
    assert row["p"] == pytest.approx(stats.ttest_1samp(v, 0).pvalue)


def test_config_refuses_one_band_and_unknown_spaces(tmp_path):
    with pytest.raises(ConfigError):
        validate_config(_config(tmp_path, bands=["minilm"]))
    with pytest.raises(ConfigError, match="mpnett"):
        validate_config(_config(tmp_path, bands=["minilm", "mpnett"]))
