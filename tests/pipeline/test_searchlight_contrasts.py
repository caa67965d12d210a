"""Searchlight contrasts between models (paper Fig. 4) on a small virtual NSD."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats as sps

from brainalign.errors import ConfigError
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.demo import QUICK_OVERRIDES
from brainalign.pipeline.study import plan_study, run_study


def _config(out, contrasts, **analyses):
    q = copy.deepcopy(QUICK_OVERRIDES)
    return {
        "data": {"kind": "virtual", **q["data"]},
        "features": {"spaces": ["minilm", "multihot"]},
        "analyses": {
            "roi_rsa": {"enabled": False},
            "model_comparison": {"enabled": False},
            "searchlight": {"models": ["multihot"], "radius": 5.0, "chunk_size": 5121},
            "searchlight_contrasts": {"contrasts": contrasts},
            "encoding": {"enabled": False},
            "insilico": {"enabled": False},
            "decoding": {"enabled": False},
            "networks": {"enabled": False},
            **analyses,
        },
        "output": {"dir": str(out)},
    }


@pytest.fixture(scope="module")
def contrast_run(tmp_path_factory):
    cfg = validate_config(
        _config(tmp_path_factory.mktemp("contrast") / "run", [["multihot", "minilm"]])
    )
    run_study(cfg, report=False)
    return cfg


def test_contrast_is_the_paired_t_of_the_two_models_maps(contrast_run):
    plan, cache, table = plan_study(contrast_run)
    assert ", 0 to run" in table
    load = lambda t: cache.load(t.stage, t.key)  # noqa: E731
    res = load(plan.analyses["searchlight_contrasts"]["multihot_minus_minilm"])
    a = np.asarray(load(plan.analyses["searchlight"]["multihot"])["r"], np.float64)
    # minilm is not a searchlight model of its own: its maps were made for the contrast only
    assert "minilm" not in plan.analyses["searchlight"]
    diff = np.asarray(res["diff"], np.float64)
    assert diff.shape == a.shape == (3, 2 * 10242) and res["subjects"] == [1, 2, 3]
    b = a - diff
    ok = np.isfinite(diff).all(0)
    t, p = sps.ttest_rel(a[:, ok], b[:, ok])
    np.testing.assert_allclose(np.asarray(res["t"])[ok], t, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.asarray(res["mean_a"]), a.mean(0), atol=1e-6)
    maps = {p.name for p in (contrast_run.output.dir / "maps").iterdir()}
    assert "searchlight_multihot_minus_minilm_t.lh.func.gii" in maps


def test_contrasts_name_unknown_models_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"searchlight_contrasts.contrasts\[0\]: unknown model"):
        validate_config(_config(tmp_path, [["multihot", "net_mpnet"]]))
    with pytest.raises(ConfigError, match="a model minus itself"):
        validate_config(_config(tmp_path, [["multihot", "multihot"]]))
