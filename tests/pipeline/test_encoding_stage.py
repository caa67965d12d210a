"""The encoding stage: memory-mapped betas read without a copy, alpha-grid edges recorded."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.datasets import SubjectResponses
from brainalign.encoding import DEFAULT_ALPHAS, RowView
from brainalign.pipeline.analyses import encoding as stage_module
from brainalign.pipeline.analyses._penalty_edges import edges_table
from brainalign.pipeline.analyses.encoding import EncodingConfig
from brainalign.pipeline.core import TaskId


def _memmap_subject(rng, path, subject, n=240, d=8, n_units=600, n_shared=40):
    E = rng.standard_normal((n, d)).astype(np.float32)
    betas = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, n_units))
    W = rng.standard_normal((d, n_units)).astype(np.float32)
    W[:, n_units // 2 :] = 0  # a null half
    betas[:] = E @ W + rng.standard_normal((n, n_units), dtype=np.float32)
    betas.flush()
    del betas
    shared = np.arange(n) < n_shared
    sub = SubjectResponses(
        betas=np.load(path, mmap_mode="r"),
        image_ids=np.arange(n),
        shared=shared,
        rois={},
        space="fsaverage",
        subject=subject,
        hemi_sizes=(n_units // 2, n_units - n_units // 2),
    )
    return sub, {"X": E, "ids": np.arange(n)}


def _run_stage(monkeypatch, sub, model, alphas):
    monkeypatch.setattr(stage_module, "load_subject", lambda params, ctx, **kw: sub)
    params = {"subject": sub.subject, "mode": "per_target", "cv": 3, "alphas": list(alphas)}
    return stage_module.encoding(params, {"model": model}, {})


def test_default_config_uses_the_wide_grid():
    np.testing.assert_array_equal(EncodingConfig().alphas, DEFAULT_ALPHAS)


def test_stage_reads_betas_in_blocks_and_records_grid_edges(rng, tmp_path, monkeypatch):
    """The stage hands the estimator row views of the memory-mapped betas, never copied rows."""
    from brainalign.encoding.estimators import _RidgeBase

    sub, model = _memmap_subject(rng, tmp_path / "b1.npy", 1)
    seen = []
    fit, score = _RidgeBase._fit_arrays, _RidgeBase.score
    monkeypatch.setattr(
        _RidgeBase, "_fit_arrays", lambda self, X, y: seen.append(y) or fit(self, X, y)
    )
    monkeypatch.setattr(
        _RidgeBase, "score", lambda self, X, y, **kw: seen.append(y) or score(self, X, y, **kw)
    )
    out = _run_stage(monkeypatch, sub, model, DEFAULT_ALPHAS)
    assert [type(y) for y in seen] == [RowView, RowView]
    assert all(y.array is sub.betas for y in seen)
    assert [len(y) for y in seen] == [int((~sub.shared).sum()), int(sub.shared.sum())]
    assert out["r"].shape == (sub.n_units,)
    assert np.nanmean(out["r"][: sub.n_units // 2]) > 0.5
    n_fit, n_lo, n_hi = out["alpha_edges"].tolist()
    assert n_fit == sub.n_units and 0 <= n_lo + n_hi <= n_fit
    np.testing.assert_array_equal(out["candidates"], DEFAULT_ALPHAS)


def test_short_grid_warns_and_group_table_reports_edges(rng, tmp_path, monkeypatch):
    per_subject = {}
    for s in (1, 2):
        sub, model = _memmap_subject(rng, tmp_path / f"b{s}.npy", s, n_units=400)
        with pytest.warns(UserWarning, match=r"fitted targets chose the largest alpha \(1\)"):
            per_subject[TaskId("encoding", subject=s)] = _run_stage(
                monkeypatch, sub, model, [0.01, 0.1, 1.0]
            )
    res = stage_module.encoding_group(
        {"fdr_q": 0.05, "agreement": False, "contrasts": [], "p_threshold": 0.05}, per_subject, {}
    )
    np.testing.assert_array_equal(res["subjects"], [1, 2])
    assert res["alpha_edges"].shape == (2, 3) and np.all(res["alpha_edges"][:, 2] > 20)
    table = edges_table(
        res["subjects"], res["alpha_edges"], res["candidates"], "per_target", res["edges_open"]
    )
    assert table.columns.tolist() == [
        "subject",
        "n_fitted",
        "n_smallest_alpha",
        "n_largest_alpha",
        "smallest_alpha",
        "largest_alpha",
        "smallest_open",
        "largest_open",
    ]
    assert table["n_largest_alpha"].tolist() == res["alpha_edges"][:, 2].tolist()
    assert table["largest_alpha"].eq(1.0).all() and table["largest_open"].all()
