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
from scipy import stats

import brainalign.rsa._long_ranks as long_ranks
import brainalign.rsa._weighted as weighted
import brainalign.rsa.roi_evaluation as roi_evaluation
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


def test_spearman_ranks_in_a_few_bytes_per_pair(monkeypatch):
    """Spearman's dual bootstrap on long RDMs: int32 sort orders, tie starts as bits, doubled
    ranks as int32, 1-byte pair weights, one pool's ranks at a time. Here (many ties, every
    allocation traced, float64 data) under 6 condensed rows of 8 bytes beyond the data (it was
    24 rows with float64 ranks, 41 before that)."""
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 1 << 16)
    # chunks small beside a row, as at 10,000 stimuli
    monkeypatch.setattr(long_ranks, "RANK_CHUNK", 1 << 14)
    rng = np.random.default_rng(4)
    n = 1200
    P = n * (n - 1) // 2
    D = np.round(rng.random((2, P)), 3)  # ties, as float32 files give
    M = rng.random((1, P))
    tracemalloc.start()
    evaluate_models(M, D, "spearman", bootstrap="dual", n_bootstrap=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 6 * 8 * P, peak / (8 * P)


# ------------------------------------------------------------ Spearman on long RDMs, exactly
def _tied(rng, shape, decimals=2):
    return np.round(rng.random(shape), decimals)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_doubled_ranks_equal_rankdata_of_the_resampled_vector(monkeypatch, chunk):
    """Half the int32 doubled ranks are the float64 weighted ranks bit for bit, and scipy's
    ranks of the explicitly resampled vector; chunks of the sort order cut no tie group, even
    groups longer than a chunk."""
    monkeypatch.setattr(long_ranks, "RANK_CHUNK", chunk)
    rng = np.random.default_rng(5)
    X = _tied(rng, (3, 300), 1)  # groups of ~30 equal values
    X[0] = rng.random(300)  # no ties
    k = rng.integers(0, 4, 25)
    c = long_ranks.compact_pair_weights(k)
    assert c.dtype == np.uint8
    for x in X:
        row = long_ranks.SortedRow(x)
        for cc in (None, c):
            r2 = long_ranks.doubled_ranks(row, cc, np.empty(300, np.int32))
            np.testing.assert_array_equal(r2 * 0.5, weighted.weighted_ranks(x[None], cc)[0])
            w = np.ones(300, np.int64) if cc is None else cc.astype(np.int64)
            expected = stats.rankdata(np.repeat(x, w))
            np.testing.assert_array_equal(np.repeat(r2 * 0.5, w), expected)


def test_compact_pair_weights_are_the_products_of_the_counts():
    rng = np.random.default_rng(6)
    for top, dtype in [(4, np.uint8), (16, np.uint8), (17, np.uint16), (300, np.uint32)]:
        k = rng.integers(0, top, 40)
        k[0] = top - 1
        c = long_ranks.compact_pair_weights(k)
        assert c.dtype == dtype
        np.testing.assert_array_equal(c.astype(np.float64), weighted.pair_weights(k))


@pytest.mark.parametrize("n_subjects", [2, 3])
@pytest.mark.parametrize("pool", ["mean", "rsatoolbox"])
@pytest.mark.parametrize("bootstrap", ["dual", "subjects", "stimuli"])
def test_long_spearman_gives_the_one_shot_results(monkeypatch, n_subjects, pool, bootstrap):
    """The compact path (RDMs longer than PAIR_BLOCK, ranked in chunks) against the one-shot
    float64 path on data with many ties: the same scores, samples, variances and ceilings
    (to the last bits of the block sums)."""
    rng = np.random.default_rng(7)
    n = 40
    P = n * (n - 1) // 2
    D = _tied(rng, (n_subjects, P))
    M = np.vstack([rng.random(P), _tied(rng, P, 1)])
    args = dict(bootstrap=bootstrap, n_bootstrap=12, pool=pool)
    one = evaluate_models(M, D, "spearman", **args)
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 101)
    monkeypatch.setattr(long_ranks, "RANK_CHUNK", 64)
    compact = evaluate_models(M, D, "spearman", **args)
    for a, b in [
        (one.scores, compact.scores),
        (one.samples, compact.samples),
        (one.variance, compact.variance),
        (one.diff_variance, compact.diff_variance),
        (one.ceiling_variance, compact.ceiling_variance),
        (one.ceiling.lower, compact.ceiling.lower),
        (one.ceiling.upper, compact.ceiling.upper),
    ]:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_long_spearman_equals_scipy_and_the_expanded_ceiling(monkeypatch):
    """Full-data scores against scipy's spearmanr; a bootstrap sample's ceiling against the
    ceiling of the explicitly resampled vectors (scipy's ranks of the expanded vectors)."""
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 50)
    monkeypatch.setattr(long_ranks, "RANK_CHUNK", 16)
    rng = np.random.default_rng(8)
    n = 30
    P = n * (n - 1) // 2
    D, M = _tied(rng, (3, P)), rng.random((1, P))
    ev = evaluate_models(M, D, "spearman", bootstrap="none")
    expected = [stats.spearmanr(M[0], d).statistic for d in D]
    np.testing.assert_allclose(ev.scores[0], expected, rtol=1e-12)
    # the reference forms the leave-one-out pool as (total - w_s D_s) / (W - w_s), whose last
    # bits break ties differently: compare its ceiling on data without ties
    D = rng.random((3, P))
    ranks = long_ranks.LongSpearman(D, M, "mean")
    w = np.array([2.0, 0.0, 1.0])
    c = long_ranks.compact_pair_weights(rng.integers(0, 3, n))
    drawn, lower, upper = ranks.ceiling(w, c)
    _, lo_ref, up_ref = weighted.expanded_ceiling(D, w, "spearman", "mean", c.astype(float))
    np.testing.assert_array_equal(drawn, [0, 2])
    np.testing.assert_allclose(lower, lo_ref, rtol=1e-10)
    np.testing.assert_allclose(upper, up_ref, rtol=1e-10)


def test_long_spearman_equals_rsatoolbox(monkeypatch):
    """rsatoolbox's eval_fixed and boot_noise_ceiling (pool_rdm by ranks) on the compact path."""
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from rsatoolbox.inference import boot_noise_ceiling, eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    monkeypatch.setattr(weighted, "PAIR_BLOCK", 30)
    monkeypatch.setattr(long_ranks, "RANK_CHUNK", 8)
    rng = np.random.default_rng(9)
    n = 14
    P = n * (n - 1) // 2
    D, M = _tied(rng, (5, P), 1), rng.random((2, P))
    ours = evaluate_models(M, D, "spearman", bootstrap="none", pool="rsatoolbox")
    models = [ModelFixed(f"m{i}", RDMs(M[i][None])) for i in range(2)]
    ref = eval_fixed(models, RDMs(D), method="spearman")
    np.testing.assert_allclose(ours.mean, ref.get_means(), atol=1e-12)
    lo, up = boot_noise_ceiling(RDMs(D), method="spearman", rdm_descriptor="index")
    np.testing.assert_allclose([ours.ceiling.lower_mean, ours.ceiling.upper_mean], [lo, up])
    assert rsatoolbox


@pytest.mark.parametrize("symmetric", [True, False])
def test_the_stage_keeps_float32_rdms_and_gives_the_float64_results(
    tmp_path, monkeypatch, symmetric
):
    """Spearman's stage keeps a symmetric float32 file's condensed RDMs as float32 (exact) and
    gives bit for bit what evaluate_models gives on the float64 arrays; an asymmetric file
    (means of two float32 values) stays float64."""
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 1 << 9)
    monkeypatch.setattr(long_ranks, "RANK_CHUNK", 100)
    rng = np.random.default_rng(10)
    n = 60
    raw = random_rdms(rng, 2, n).astype(np.float32)
    if not symmetric:
        raw[:, 3, 7] = np.nextafter(raw[:, 3, 7], np.float32(2))  # one float32 step apart
    iu, ju = np.triu_indices(n, 1)
    model = random_rdms(rng, 1, n)[0][iu, ju].astype(np.float32)
    root = _write_set(tmp_path / "set", raw, model)
    seen = []

    def spy(M, D, *a, **kw):  # the stage calls rsa.evaluate_rois, which calls this
        seen.append((M.dtype, D.dtype))
        return evaluate_models(M, D, *a, **kw)

    monkeypatch.setattr(roi_evaluation, "evaluate_models", spy)
    res = rdm_evaluate(_params(root, "spearman"), {}, {})
    assert seen == [(np.float32, np.float32 if symmetric else np.float64)]
    R = raw.astype(np.float64)
    R = (R + R.transpose(0, 2, 1)) / 2
    ev = evaluate_models(
        model.astype(np.float64)[None], R[:, iu, ju], "spearman", n_bootstrap=3, random_state=0
    )
    row = res["scores"][0]
    assert [row["score"], row["sem"]] == [ev.mean[0], ev.sem[0]]
    assert res["ceilings"][0]["lower"] == ev.ceiling.lower_mean
    np.testing.assert_array_equal(res["group_rdms"][0], R[:, iu, ju].mean(0))


def test_the_spearman_stage_holds_a_few_bytes_per_pair(tmp_path, monkeypatch):
    """Spearman with the dual bootstrap through the stage on 2 × 1,500 stimuli (1.1 million
    pairs, a float32 file): peak allocation under 6 condensed rows of 8 bytes (the data,
    model, orders, ranks and weights; about 16 rows before), within the --dry-run estimate."""
    monkeypatch.setattr(weighted, "PAIR_BLOCK", 1 << 16)
    monkeypatch.setattr(long_ranks, "RANK_CHUNK", 1 << 14)
    n = 1500
    rng = np.random.default_rng(11)
    Z = rng.standard_normal((n, 6))
    raw = np.stack([np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1)) for _ in range(2)])
    raw[1] += rng.random((n, n)) * 0.01
    raw[1] = (raw[1] + raw[1].T) / 2
    np.fill_diagonal(raw[1], 0.0)
    iu = np.triu_indices(n, 1)
    root = _write_set(tmp_path / "set", raw.astype(np.float32), raw[0][iu].astype(np.float32))
    del raw, Z
    row_bytes = n * (n - 1) // 2 * 8
    ds = load_rdm_dataset(root)
    del ds
    tracemalloc.start()
    rdm_evaluate(_params(root, "spearman"), {}, {})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 6 * row_bytes, peak / row_bytes
    assert peak < evaluation_memory_bytes(n, 2, 1, "spearman") - (300 << 20)
