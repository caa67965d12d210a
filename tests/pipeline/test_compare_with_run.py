"""compare-models reuses a pipeline run (issue 20, Fig. 4): the run writes each subject's image
subsets, and ``[rsa] run`` scores the models on those subsets with the run's pairwise test and
error bars, so the two give the same per-subject r."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from brainalign.networks.compare import run_choices, run_subsets
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.core import all_tasks
from brainalign.pipeline.demo import QUICK_OVERRIDES
from brainalign.pipeline.study import plan_study, run_study


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    q = copy.deepcopy(QUICK_OVERRIDES)
    q["data"]["options"]["n_training_pool"] = 0  # no networks here
    cfg = validate_config(
        {
            "data": {"kind": "virtual", **q["data"]},
            "features": {"spaces": ["glove_categories", "multihot"]},  # no sentence encoder
            "analyses": {
                "roi_rsa": {"rois": ["ventral", "lateral"], "subset_size": 20, "error": "paper"},
                "model_comparison": {"rois": ["ventral"], "test": "paper", "fdr_q": 0.1},
                "searchlight": {"enabled": False},
                "encoding": {"enabled": False},
                "insilico": {"enabled": False},
                "decoding": {"enabled": False},
                "networks": {"enabled": False},
            },
            "output": {"dir": str(tmp_path_factory.mktemp("paper_run") / "run")},
        }
    )
    run_study(cfg, report=False)
    return cfg


def test_the_run_saves_each_subjects_subsets(paper_run):
    plan, cache, _ = plan_study(paper_run)
    saved = run_subsets(paper_run.output.dir)
    assert sorted(saved) == [1, 2, 3]
    tasks = all_tasks(list(plan.analyses["roi_rsa"].values()))
    for s, ids in saved.items():
        task = next(t for t in tasks if t.stage == "sampling" and t.id.subject == s)
        rows = np.asarray(cache.load(task.stage, task.key)["subsets"])
        image_ids = np.asarray(cache.load("responses", task.deps["subject"].key)["image_ids"])
        np.testing.assert_array_equal(ids, image_ids[rows])
        assert ids.shape[1] == 20
    assert run_choices(paper_run.output.dir) == {"test": "paper", "fdr_q": 0.1, "error": "paper"}


def test_compare_models_with_the_run_scores_what_the_pipeline_scored(paper_run, tmp_path):
    from brainalign.cli import _register, app

    _register()
    plan, cache, _ = plan_study(paper_run)
    models = ""
    for ref in plan.models:
        res = cache.load(ref.task.stage, ref.task.key)
        np.save(tmp_path / f"{ref.name}.npy", np.asarray(res["X"], np.float32))
        np.save(tmp_path / f"{ref.name}_ids.npy", np.asarray(res["ids"], np.int64))
        models += (
            f'[[models]]\nname = "{ref.name}"\nkind = "features"\npath = "{ref.name}.npy"\n'
            f'ids_path = "{ref.name}_ids.npy"\n\n'
        )
    (tmp_path / "compare.toml").write_text(
        f'[data]\nroot = "{paper_run.data.root}"\nsubjects = [1, 2, 3]\n'
        f'rois = ["ventral", "lateral"]\n\n[rsa]\nrun = "{paper_run.output.dir}"\n\n'
        + models
        + '[output]\ndir = "out"\n'
    )
    result = CliRunner().invoke(app, ["compare-models", str(tmp_path / "compare.toml"), "--quiet"])
    assert result.exit_code == 0, result.output
    mine = pd.read_csv(tmp_path / "out" / "subjects.csv")
    theirs = pd.read_csv(paper_run.output.dir / "tables" / "roi_rsa.csv")
    both = mine.merge(theirs, on=["subject", "roi", "model"], suffixes=("", "_run"))
    assert len(both) == 3 * 2 * 2
    np.testing.assert_allclose(both["r"], both["r_run"], atol=1e-6)
    # the run's choices: the paper's independent-samples test and SD (ddof 0) / √n
    table = pd.read_csv(tmp_path / "out" / "table.csv")
    pairs = pd.read_csv(tmp_path / "out" / "pairwise.csv")
    wide = mine[mine.roi == "ventral"].pivot(
        index="subject", columns="model", values="r_normalised"
    )
    for _, row in pairs[pairs.roi == "ventral"].iterrows():
        p = sps.ttest_ind(wide[row.model_a], wide[row.model_b]).pvalue
        assert row.p == pytest.approx(p, rel=1e-8)
    for _, row in table[table.roi == "ventral"].iterrows():
        x = wide[row.model].to_numpy()
        assert row.error_bar == pytest.approx(x.std(ddof=0) / np.sqrt(len(x)))
    assert json.loads((paper_run.output.dir / "run.json").read_text())["config"]
