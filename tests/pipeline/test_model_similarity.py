"""The NSD pipeline's model-to-model RDM correlations (the paper's model-similarity figure):
one task per subject on the ROI RSA's images and subsets, a table the report shows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from brainalign.pipeline.analyses import roi_rsa as analysis
from brainalign.pipeline.core import Task, TaskId


def _inputs(rng, n=60, subset_size=20):
    ids = np.sort(rng.choice(1000, n, replace=False))
    base = rng.normal(size=(n, 6))
    feats = {
        "a": base,
        "b": base + 0.5 * rng.normal(size=(n, 6)),
        "c": rng.normal(size=(n, 9)),
    }
    inputs = {
        "subject": {"image_ids": ids},
        "sampling": {"subsets": rng.permutation(n)[: 3 * subset_size].reshape(3, subset_size)},
    }
    models = []
    for i, (name, X) in enumerate(feats.items()):
        inputs[f"model:{i}"] = {"X": X.astype(np.float32), "ids": ids}
        models.append([name, None])
    return inputs, models, feats


def test_stage_correlates_model_rdms_on_the_subjects_subsets(rng):
    inputs, models, feats = _inputs(rng)
    params = {"models": models, "sampling": "paper", "method": "pearson"}
    res = analysis.model_similarity(params, inputs, {})
    assert res["labels"] == ["a", "b", "c"]
    # by hand: Pearson between the correlation-distance RDMs of each subset, mean over subsets
    subsets = inputs["sampling"]["subsets"]
    for i, x in enumerate(feats.values()):
        for j, y in enumerate(feats.values()):
            rs = [
                np.corrcoef(pdist(x[s], "correlation"), pdist(y[s], "correlation"))[0, 1]
                for s in subsets
            ]
            assert res["r"][i, j] == pytest.approx(np.mean(rs), abs=1e-5)
    assert res["r"][0, 1] > 0.3 > abs(res["r"][0, 2])
    full = analysis.model_similarity({**params, "sampling": "full"}, inputs, {})
    x, y = feats["a"], feats["b"]
    expected = np.corrcoef(pdist(x, "correlation"), pdist(y, "correlation"))[0, 1]
    assert full["r"][0, 1] == pytest.approx(expected, abs=1e-5)


def test_network_instances_are_averaged_per_model():
    models = [["mpnet", None], ["net", "1"], ["net", "2"]]
    r = np.array([[1.0, 0.4, 0.6], [0.4, 1.0, 0.8], [0.6, 0.8, 1.0]])
    names, out = analysis.similarity_by_model(["mpnet", "net#1", "net#2"], r, models)
    assert names == ["mpnet", "net"]
    np.testing.assert_allclose(out, [[1.0, 0.5], [0.5, 0.8]])


def test_export_writes_the_mean_over_subjects_and_each_subject(rng):
    tables = {}
    results, targets = {}, {}
    models = [["a", None], ["b", None]]
    for s, r_ab in ((1, 0.2), (2, 0.6)):
        t = Task(TaskId("model_similarity", subject=s), {"subject": s, "models": models})
        targets[f"similarity:sub-{s:02d}"] = t
        results[t.key] = {"labels": ["a", "b"], "r": np.array([[1.0, r_ab], [r_ab, 1.0]])}
    ctx = SimpleNamespace(
        load=lambda task: results[task.key],
        writer=SimpleNamespace(table=lambda name, df: tables.__setitem__(name, df)),
    )
    analysis._export_similarity(ctx, {"group": None, **targets})
    mean = tables["model_similarity"]
    assert mean["model"].tolist() == ["a", "b"] and mean.columns.tolist() == ["model", "a", "b"]
    assert mean.loc[0, "b"] == pytest.approx(0.4) and mean.loc[1, "b"] == 1.0
    long = tables["model_similarity_subjects"]
    assert long.to_dict("list") == {
        "subject": [1, 2],
        "model_a": ["a", "a"],
        "model_b": ["b", "b"],
        "r": [0.2, 0.6],
    }
    # the report shows it in the model-comparison section, from the declared tables
    section = next(s for s in analysis.ANALYSIS.sections if s.key == "comparison")
    assert "model_similarity" in section.tables
    assert {t.name for t in analysis.ANALYSIS.tables} >= {
        "model_similarity",
        "model_similarity_subjects",
    }
