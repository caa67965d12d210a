"""Streaming preparation: resume after a kill, rebuild on changed inputs, bounded memory."""

from __future__ import annotations

import json
import shutil
import tracemalloc

import numpy as np
import pytest

import brainalign.datasets.nsd as nsd
from brainalign.datasets import load_nsd, make_virtual_nsd, prepare_nsd
from brainalign.datasets._formats import load_mgh, write_mgh
from tests.datasets.nsd_reference import reference_betas

TINY = dict(n_subjects=2, n_shared=8, n_unique=16, n_sessions=6, voxel_size=10.0)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return make_virtual_nsd(tmp_path_factory.mktemp("tiny") / "nsd", random_state=3, **TINY)


@pytest.fixture
def root(tiny_root, tmp_path):
    """A private copy that a test may modify."""
    return shutil.copytree(tiny_root, tmp_path / "nsd")


class Interrupt(Exception):
    pass


def _interrupt_after(monkeypatch, n_sessions):
    original = nsd._read_session
    seen = []

    def reader(root, subject, space, session, *args):
        if len(seen) >= n_sessions:
            raise Interrupt
        seen.append(session)
        return original(root, subject, space, session, *args)

    monkeypatch.setattr(nsd, "_read_session", reader)
    return seen


def _count_reads(monkeypatch):
    original = nsd._read_session
    seen = []

    def reader(root, subject, space, session, *args):
        seen.append(session)
        return original(root, subject, space, session, *args)

    monkeypatch.setattr(nsd, "_read_session", reader)
    return seen


@pytest.mark.parametrize("space", ["fsaverage", "func1pt8mm"])
def test_killed_preparation_resumes(root, tmp_path, monkeypatch, space):
    cache = tmp_path / "cache"
    original_add = nsd._add_session
    calls = []

    def killed_in_session_3(mean, z, rows, reps):
        calls.append(1)
        if len(calls) == 3:
            # a kill in the middle of session 3 leaves some of its additions made: garbage in
            # half of the rows session 3 adds to
            kept = np.flatnonzero(rows >= 0)[::2]
            mean[np.unique(rows[kept])] += 1e6
            mean.flush()
            raise Interrupt
        return original_add(mean, z, rows, reps)

    monkeypatch.setattr(nsd, "_add_session", killed_in_session_3)
    with pytest.raises(Interrupt):
        prepare_nsd(root, 1, space, cache_dir=cache)
    (folder,) = (cache / "nsd_prepared").iterdir()
    assert not (folder / "betas.npy").exists() and not (folder / "manifest.json").exists()
    state = json.loads((folder / "work" / "state.json").read_text())
    assert state["done"] == [1, 2] and state["applying"] == 3

    monkeypatch.undo()
    reads = _count_reads(monkeypatch)
    sub = load_nsd(root, 1, space, cache_dir=cache)
    assert reads[0] == 3 and 1 not in reads and 2 not in reads  # resumed after session 2
    expected, ids = reference_betas(root, 1, space)
    np.testing.assert_array_equal(sub.image_ids, ids)
    np.testing.assert_allclose(sub.betas, expected, atol=1e-6, equal_nan=True)
    assert not (folder / "work").exists()


def test_changed_input_rebuilds(root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = np.array(load_nsd(root, 1, cache_dir=cache).betas)
    # rewrite one session with different numbers (same size): the cache must not be served
    path = (
        root
        / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/lh.betas_session02.mgh"
    )
    data = load_mgh(path)
    rng = np.random.default_rng(0)
    write_mgh(path, (data + rng.standard_normal(data.shape) * 5).astype(np.float32))
    reads = _count_reads(monkeypatch)
    sub = load_nsd(root, 1, cache_dir=cache)
    assert sorted(reads) == list(range(1, 7))
    expected, _ = reference_betas(root, 1, "fsaverage")
    np.testing.assert_allclose(sub.betas, expected, atol=1e-6, equal_nan=True)
    assert not np.allclose(first, expected, equal_nan=True)


def test_stale_partial_state_is_discarded(root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupt):
        prepare_nsd(root, 1, cache_dir=cache)
    monkeypatch.undo()
    # the inputs change while the preparation is stopped: nothing of the old state may be reused
    path = (
        root
        / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/rh.betas_session01.mgh"
    )
    write_mgh(path, load_mgh(path) * 2 + 1)
    reads = _count_reads(monkeypatch)
    sub = load_nsd(root, 1, cache_dir=cache)
    assert sorted(reads) == list(range(1, 7))
    expected, _ = reference_betas(root, 1, "fsaverage")
    np.testing.assert_allclose(sub.betas, expected, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("damage", ["truncate", "no_manifest", "bad_manifest"])
def test_half_written_cache_is_never_trusted(root, tmp_path, monkeypatch, damage):
    cache = tmp_path / "cache"
    prep = prepare_nsd(root, 2, cache_dir=cache)
    if damage == "truncate":
        with open(prep.betas_path, "r+b") as f:
            f.truncate(prep.betas_path.stat().st_size // 2)
    elif damage == "no_manifest":
        (prep.path / "manifest.json").unlink()
    else:
        (prep.path / "manifest.json").write_text("{not json")
    reads = _count_reads(monkeypatch)
    sub = load_nsd(root, 2, cache_dir=cache)
    assert len(reads) == 6
    expected, _ = reference_betas(root, 2, "fsaverage")
    np.testing.assert_allclose(sub.betas, expected, atol=1e-6, equal_nan=True)


def _peak_bytes(root, cache):
    tracemalloc.start()
    try:
        prepare_nsd(root, 1, "fsaverage", cache_dir=cache)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_sessions(tmp_path):
    """8 vs 16 sessions of the same size: the preparation's peak memory stays the same."""
    common = dict(n_subjects=1, n_shared=20, spaces=("fsaverage",), sessions_per_subject=None)
    small = make_virtual_nsd(tmp_path / "s8", n_unique=140, n_sessions=8, **common)  # 60 trials
    large = make_virtual_nsd(tmp_path / "s16", n_unique=300, n_sessions=16, **common)
    peak8 = _peak_bytes(small, tmp_path / "c8")
    peak16 = _peak_bytes(large, tmp_path / "c16")
    session_bytes = 20484 * 60 * 4
    whole16 = 16 * session_bytes
    assert peak16 < 1.25 * peak8 + 2**20, (peak8, peak16)
    assert peak16 < 4 * session_bytes, (peak16, session_bytes)
    assert peak16 < whole16 / 3


def test_concurrent_preparations_share_one_cache(root, tmp_path):
    """Two processes preparing the same subject: one waits for the other; both get the result."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    code = (
        "import sys; from brainalign.datasets import prepare_nsd; "
        "p = prepare_nsd(sys.argv[1], 1, 'func1pt8mm', cache_dir=sys.argv[2]); print(p.betas_path)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert outs[0][0] == outs[1][0]
    sub = load_nsd(root, 1, "func1pt8mm", cache_dir=cache)
    expected, _ = reference_betas(root, 1, "func1pt8mm")
    np.testing.assert_allclose(sub.betas, expected, atol=1e-6, equal_nan=True)


def test_repetition_mean_leaves_out_non_finite_z_scores(root, tmp_path):
    """A unit constant in one session (z-scores NaN there) and one NaN trial value: those
    images' means are the mean over their finite repetitions, as the paper's nanmean."""
    fs = root / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    s2 = load_mgh(fs / "lh.betas_session02.mgh").copy()
    s2[10] = 3.0  # unit 10: zero variance in session 2
    write_mgh(fs / "lh.betas_session02.mgh", s2)
    s3 = load_mgh(fs / "lh.betas_session03.mgh").copy()
    s3.reshape(s3.shape[0], -1)[20, 0] = np.nan  # unit 20: one NaN trial in session 3
    write_mgh(fs / "lh.betas_session03.mgh", s3)
    with pytest.warns(UserWarning, match="non-finite"):
        sub = load_nsd(root, 1, cache_dir=tmp_path / "cache")
    expected, _ = reference_betas(root, 1, "fsaverage")
    betas = np.asarray(sub.betas)
    # unit 10 (no non-finite raw value): the reference's nanmean over the other sessions
    np.testing.assert_allclose(betas[:, 10], expected[:, 10], atol=2e-6)
    assert np.isfinite(betas[:, 10]).all()
    # unit 20: session 3 z-scored over its finite trials; the image of the NaN trial averages 2
    cond = nsd.subject_conditions(root, 1)
    z = {}
    for session in cond.sessions:
        data = np.vstack(
            [load_mgh(fs / f"{h}.betas_session{session:02d}.mgh") for h in ("lh", "rh")]
        )
        z[session] = nsd.zscore_session(data.reshape(data.shape[0], -1)[20:21].astype(np.float32))[
            0
        ]
    trial_z = np.concatenate([z[s] for s in cond.sessions])
    for row in range(len(cond.image_ids)):
        values = trial_z[cond.trial_row == row]
        assert betas[row, 20] == pytest.approx(np.nanmean(values), abs=2e-6)
