"""Large RDM data sets (issue 23, case 7): evaluated from memory maps, in blocks of pairs.

The issue's set (2 subjects × 10,000 stimuli) reached 19.4 GB. Long RDMs are now summed block
by block (``brainalign.rsa._weighted.PAIR_BLOCK`` pairs at a time); these tests shrink the block
so that small data cross many block borders, check the results against the one-shot sums, and
bound the memory of the pipeline's evaluation stage. ``benchmarks/bench_rdm_memory.py`` runs
the issue's full size.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

import brainalign.rsa._weighted as weighted
from brainalign.datasets import load_rdm_dataset
from brainalign.pipeline.analyses.rdm_rsa import evaluation_memory_bytes, rdm_evaluate
from brainalign.rsa import evaluate_models
from tests.datasets.rdm_folder import random_rdms


@pytest.mark.parametrize("method", ["pearson", "cosine", "spearman"])
@pytest.mark.parametrize("pool", ["mean", "rsatoolbox"])
def test_blocked_sums_give_the_one_shot_results(monkeypatch, method, pool):
    rng = np.random.default_rng(0)
    n = 30
    D, M = rng.random((4, n * (n - 1) // 2)), rng.random((3, n * (n - 1) // 2))
    one = evaluate_models(M, D, method, bootstrap="dual", n_bootstrap=30, pool=pool)
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 7)
    blocked = evaluate_models(M, D, method, bootstrap="dual", n_bootstrap=30, pool=pool)
    for a, b in [
        (one.scores, blocked.scores),
        (one.samples, blocked.samples),
        (one.variance, blocked.variance),
        (one.diff_variance, blocked.diff_variance),
        (one.ceiling.lower, blocked.ceiling.lower),
        (one.ceiling.upper, blocked.ceiling.upper),
    ]:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_pair_weights_are_the_products_of_the_counts():
    k = np.random.default_rng(1).integers(0, 4, 37)
    iu, ju = np.triu_indices(37, 1)
    np.testing.assert_array_equal(weighted.pair_weights(k), (k[iu] * k[ju]).astype(np.float64))


def _write_set(root, raw, model):
    (root / "rdms").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "images").mkdir()
    n = raw.shape[1]
    lines = ["stimulus\timage\tlabel"]
    for i in range(n):
        (root / "images" / f"s{i}.png").touch()
        lines.append(f"s{i}\timages/s{i}.png\tthing {i}")
    (root / "stimuli.tsv").write_text("\n".join(lines) + "\n")
    (root / "dataset.json").write_text(json.dumps({"name": "big"}))
    np.save(root / "rdms" / "IT.npy", raw)
    np.save(root / "models" / "m.npy", model)
    return root


def _params(root, method):
    return {
        "root": str(root),
        "set": {"label": "big", "root": str(root), "importer": None, "source": None, "rois": None},
        "metric": None,
        "label": "big",
        "rois": None,
        "method": method,
        "spaces": [],
        "vision": [],
        "data_models": True,
        "bootstrap": "dual",
        "bootstrap_methods": [method],
        "n_bootstrap": 3,
        "pool": "mean",
        "ci": 0.95,
        "random_state": 0,
    }


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_the_evaluation_stage_gives_what_whole_arrays_give(tmp_path, method):
    """The stage on a memory-mapped float32 set equals evaluate_models on the whole float64,
    symmetrised arrays (what the reader built before)."""
    rng = np.random.default_rng(2)
    raw = random_rdms(rng, 3, 25).astype(np.float32)
    model = random_rdms(rng, 1, 25)[0][np.triu_indices(25, 1)].astype(np.float32)
    root = _write_set(tmp_path / "set", raw, model)
    res = rdm_evaluate(_params(root, method), {}, {})
    R = raw.astype(np.float64)
    R = (R + R.transpose(0, 2, 1)) / 2
    iu, ju = np.triu_indices(25, 1)
    ev = evaluate_models(
        model.astype(np.float64)[None], R[:, iu, ju], method, n_bootstrap=3, random_state=0
    )
    row = res["scores"][0]
    # the condensed values are bit-identical; the sums differ in the last bits only because
    # BLAS takes another path for the contiguous array than for the fancy-indexed one
    np.testing.assert_allclose([row["score"], row["sem"]], [ev.mean[0], ev.sem[0]], rtol=1e-12)
    np.testing.assert_array_equal(res["group_rdms"][0], R[:, iu, ju].mean(0))
    np.testing.assert_allclose(res["ceilings"][0]["lower"], ev.ceiling.lower_mean, rtol=1e-12)


def test_the_evaluation_stage_holds_no_n_by_n_copy(tmp_path, monkeypatch):
    """Pearson with the dual bootstrap on 2 × 1,500 stimuli (1.1 million pairs): the stage's
    peak allocation is the condensed data and model RDMs, one pair-weight vector and blocks
    (about 4 condensed rows), where it was about 18 rows before (n × n float64 copies, squares
    of every RDM, pools of every subject, pair indices)."""
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 1 << 16)
    n = 1500
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((n, 6))
    raw = np.stack([np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1)) + 0.0 for _ in range(2)])
    raw[1] += rng.random((n, n)) * 0.01
    raw[1] = (raw[1] + raw[1].T) / 2
    np.fill_diagonal(raw[1], 0.0)
    root = _write_set(tmp_path / "set", raw.astype(np.float32), raw[0][np.triu_indices(n, 1)])
    del raw, Z
    row_bytes = n * (n - 1) // 2 * 8
    ds = load_rdm_dataset(root)  # warm imports and caches outside the measurement
    del ds
    tracemalloc.start()
    rdm_evaluate(_params(root, "pearson"), {}, {})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 6 * row_bytes, peak / row_bytes
    # the --dry-run estimate covers it (it adds the process itself, not traced here)
    assert peak < evaluation_memory_bytes(n, 2, 1, "pearson") - (300 << 20)


def test_spearman_ranks_row_by_row(monkeypatch):
    """Spearman's dual bootstrap on long RDMs: ranks row by row (int32 sort orders, no inverse
    permutations or tie-group arrays), pools formed and ranked one at a time. It still ranks
    every RDM per sample: here (many ties, every allocation traced) under 24 condensed rows
    beyond the data; by resident memory at 3,000 stimuli 14.7 rows (it was 41)."""
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 1 << 16)
    rng = np.random.default_rng(4)
    n = 1200
    P = n * (n - 1) // 2
    D = np.round(rng.random((2, P)), 3)  # ties, as float32 files give
    M = rng.random((1, P))
    tracemalloc.start()
    evaluate_models(M, D, "spearman", bootstrap="dual", n_bootstrap=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 24 * 8 * P, peak / (8 * P)
