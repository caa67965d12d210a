"""Executors: serial, local processes and a 2-worker Dask LocalCluster on loopback give identical results."""

from __future__ import annotations

import os

import numpy as np
import pytest

from brainalign.errors import InputError
from brainalign.parallel import DaskExecutor, ProcessExecutor, SerialExecutor, get_executor


def _chunk_stat(task, X, W):
    """A subject × model × chunk task: rows of X in a chunk, projected and summarised."""
    subject, model, (start, stop) = task
    rng = np.random.default_rng(1000 * subject + model)
    noise = rng.standard_normal((stop - start, W.shape[1])).astype(np.float32)
    Z = np.asarray(X[start:stop]) @ W + noise
    return {
        "task": task,
        "sum": Z.sum(axis=0),
        "corr": np.corrcoef(Z.T)[0, 1:],
        "pid": os.getpid(),
        "readonly": not np.asarray(X).flags.writeable,
    }


def _tasks():
    return [(s, m, (c, c + 50)) for s in (1, 2) for m in (0, 1) for c in range(0, 200, 50)]


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    return {
        "X": rng.standard_normal((200, 64)).astype(np.float32),
        "W": rng.standard_normal((64, 8)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def serial_results(arrays):
    with SerialExecutor() as ex:
        return ex.map(_chunk_stat, _tasks(), shared=arrays)


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x["task"] == y["task"]
        np.testing.assert_array_equal(x["sum"], y["sum"])
        np.testing.assert_array_equal(x["corr"], y["corr"])


def test_serial_reference(serial_results, arrays):
    assert [r["task"] for r in serial_results] == _tasks()
    first = serial_results[0]
    X, W = arrays["X"], arrays["W"]
    noise = np.random.default_rng(1000).standard_normal((50, 8)).astype(np.float32)
    np.testing.assert_allclose(first["sum"], (X[:50] @ W + noise).sum(0), rtol=1e-6)


def test_processes_equal_serial(serial_results, arrays, tmp_path):
    seen = []
    with ProcessExecutor(2, shared_dir=tmp_path) as ex:
        res = ex.map(_chunk_stat, _tasks(), shared=arrays, on_result=lambda i, r: seen.append(i))
    _assert_same(res, serial_results)
    assert sorted(seen) == list(range(len(_tasks())))
    # arrays reached the workers memory-mapped read-only, written once (one file per array)
    assert all(r["readonly"] for r in res)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    assert os.getpid() not in {r["pid"] for r in res}


@pytest.mark.parametrize("share", ["memmap", "scatter"])
def test_dask_localcluster_equal_serial(serial_results, arrays, share):
    with DaskExecutor(2, share=share) as ex:
        info = ex.client.scheduler_info()
        assert len(info["workers"]) == 2
        assert all("127.0.0.1" in addr for addr in info["workers"])
        res = ex.map(_chunk_stat, _tasks(), shared=arrays)
        # joining the running scheduler by address works the same way
        with get_executor("dask", scheduler=ex.client.scheduler.address) as joined:
            assert joined.share == "scatter"
            res2 = joined.map(_chunk_stat, _tasks()[:3], shared=arrays)
    _assert_same(res, serial_results)
    _assert_same(res2, serial_results[:3])
    assert len({r["pid"] for r in res}) >= 1


def _fail_on_third(task, X):
    if task == 3:
        raise RuntimeError("boom")
    return float(X[task].sum())


def test_errors_propagate_after_completed_results(arrays):
    done = {}
    with SerialExecutor() as ex, pytest.raises(RuntimeError, match="boom"):
        ex.map(
            _fail_on_third, list(range(6)), shared={"X": arrays["X"]}, on_result=done.__setitem__
        )
    assert sorted(done) == [0, 1, 2]


def test_bad_shared_and_kind():
    with SerialExecutor() as ex, pytest.raises(InputError, match="shared\\['x'\\]"):
        ex.map(_fail_on_third, [0], shared={"x": [1, 2, 3]})
    with pytest.raises(InputError, match="kind"):
        get_executor("threads")


def test_process_workers_start_with_the_pool_and_ignore_ctrl_c():
    """Every worker starts when the executor is made, with SIGINT ignored from its first
    instruction (a worker started later, mid-run, could take a Ctrl-C before its initializer
    and print a traceback)."""
    import psutil

    def sigint_ignored(pid: int) -> bool:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
        return bool(mask & (1 << (2 - 1)))  # SIGINT is signal 2

    ex = ProcessExecutor(2)
    try:
        workers = [
            p for p in psutil.Process().children()
            if any("spawn_main" in part for part in p.cmdline())
            and not any("resource_tracker" in part for part in p.cmdline())
        ]  # fmt: skip
        assert len(workers) == 2
        assert all(sigint_ignored(p.pid) for p in workers)
    finally:
        ex.close()
