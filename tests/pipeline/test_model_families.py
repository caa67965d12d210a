"""The pipeline's FDR families (issue 20): ``[analyses.model_comparison] families`` is checked
against the run's models, and the report names each family beside its tests."""

from __future__ import annotations

from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.errors import ConfigError
from brainalign.pipeline.analyses import roi_rsa
from brainalign.pipeline.config import config_of_run, load_config
from brainalign.report import RunWriter
from brainalign.report.html import RunFolder
from brainalign.stats import group_model_scores
from tests.report import demo_like

REPO = Path(__file__).resolve().parents[2]
FAMILIES = {
    "fig3": demo_like.MODELS[:8],
    "fig4": ["net_mpnet", "net_multihot", "efficientnet-lite0", "mpnet"],
}


def test_unknown_models_in_a_family_stop_the_config(tmp_path):
    overrides = {
        "output": {"dir": str(tmp_path / "run")},
        "analyses": {"model_comparison": {"families": {"fig4": ["net_mpnet", "resnet-9000"]}}},
    }
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "configs" / "demo.toml", overrides=overrides)
    assert "analyses.model_comparison.families.fig4: unknown model(s) ['resnet-9000']" in str(
        err.value
    )
    overrides["analyses"]["model_comparison"]["families"] = {"solo": ["mpnet"]}
    with pytest.raises(ConfigError, match="families.solo: a family needs at least 2 models"):
        load_config(REPO / "configs" / "demo.toml", overrides=overrides)


def test_the_report_names_each_family(tmp_path):
    out = demo_like.write_demo_like_run(tmp_path / "run")
    raw = demo_like._scores(np.random.default_rng(0))
    res = group_model_scores(
        raw.drop(columns="ceiling"),
        raw[["subject", "roi", "ceiling"]].drop_duplicates(),
        comparison_rois=demo_like.COMPARISON_ROIS,
        families=FAMILIES,
    )
    cfg = demo_like.config()
    cfg["analyses"]["model_comparison"]["families"] = FAMILIES
    w = RunWriter(out, formats=("csv",))
    w.json("run", {"config": cfg})
    w.table("model_comparison", res.pairwise)
    table = pd.read_csv(out / "tables" / "model_comparison.csv")
    assert set(table["family"]) == {"fig3", "fig4"} and len(table) == 3 * (28 + 6)
    html = unescape(roi_rsa._comparison_section(RunFolder(out)))
    assert "2 families (fig3, fig4), each corrected apart" in html
    assert "ventral · family fig4" in html
    assert "over all 6 pairs of the 4 models in ventral, FDR family fig4" in html
    methods = " ".join(roi_rsa.methods(config_of_run(cfg)))
    assert "within each ROI and FDR family (fig3: mpnet" in methods
