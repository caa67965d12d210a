"""Pipeline benchmark: a cold run, a fully cached rerun, and the same study on a 2-worker Dask
LocalCluster (loopback), on one small virtual NSD.

Prints the wall and CPU time of each, the rerun speed-up, and whether the Dask run's results are
identical to the serial run's (every cached array of every task compared bit for bit).

    python benchmarks/bench_pipeline.py [--subjects 3] [--images 36] [--workers 2]

Timings on a shared machine are noisy; run it on an idle one for numbers worth quoting.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _config(out: Path, subjects: int, images: int) -> dict:
    return {
        "name": "pipeline benchmark",
        "data": {
            "kind": "virtual",
            "n_subjects": subjects,
            "options": {"n_shared": images, "n_unique": images, "n_sessions": 4},
        },
        "features": {"spaces": ["multihot", "glove_categories"]},
        "analyses": {
            "roi_rsa": {"subset_size": 24},
            "searchlight": {"models": ["multihot"], "radius": 8.0, "chunk_size": 5121},
            "encoding": {"feature_space": "multihot", "alphas": [1.0, 100.0, 1e4], "cv": 3},
            "insilico": {"enabled": False},
            "decoding": {"enabled": False},
            "networks": {"enabled": False},
            "model_comparison": {"rois": ["ventral", "lateral"]},
        },
        "output": {"dir": str(out)},
    }


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _arrays(cfg):
    from brainalign.pipeline.core import all_tasks
    from brainalign.pipeline.study import plan_study

    plan, cache, _ = plan_study(cfg)
    out = {}
    for t in all_tasks(plan.targets):
        res = cache.load(t.stage, t.key)
        for k, v in res.items():
            if isinstance(v, np.ndarray):
                out[f"{t.label}:{k}"] = np.asarray(v)
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--images", type=int, default=36)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("BRAINALIGN_CACHE", tempfile.mkdtemp(prefix="brainalign-bench-cache-"))

    from brainalign.parallel import DaskExecutor
    from brainalign.pipeline.config import validate_config
    from brainalign.pipeline.study import run_study

    tmp = Path(tempfile.mkdtemp(prefix="brainalign-bench-"))
    serial = validate_config(_config(tmp / "serial", args.subjects, args.images))
    res, cold, cold_cpu = _timed(lambda: run_study(serial, report=False))
    n_tasks = len(res.run.computed)
    _, warm, warm_cpu = _timed(lambda: run_study(serial, report=False))
    par = validate_config(_config(tmp / "dask", args.subjects, args.images))

    def dask_run():
        with DaskExecutor(args.workers) as ex:
            return run_study(par, executor=ex, report=False)

    _, dask_t, dask_cpu = _timed(dask_run)
    a, b = _arrays(serial), _arrays(par)
    same = a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    raw = [
        k
        for k in a
        if k.split(":")[0] in ("searchlight", "encoding", "roi_rsa") and a[k].dtype.kind == "f"
    ]
    max_diff = max(float(np.nanmax(np.abs(a[k] - b[k]), initial=0.0)) for k in raw)
    differing = sorted({k.split(":")[0] for k in a if not _same(a[k], b[k])})

    print(f"study: {args.subjects} subjects, {n_tasks} tasks, serial executor")
    print(f"cold run (serial)          wall {cold:7.1f} s   cpu (this process) {cold_cpu:6.1f} s")
    print(
        f"rerun, everything cached   wall {warm:7.1f} s   cpu {warm_cpu:6.1f} s   speed-up {cold / warm:5.1f}x"
    )
    print(
        f"cold run (Dask, {args.workers} workers)  wall {dask_t:7.1f} s   ratio serial/dask {cold / dask_t:5.2f}"
    )
    print(
        f"Dask results bit-identical to serial ({len(a)} arrays): {same}; stages differing: {differing}"
    )
    print(f"max abs difference of per-task maps/scores: {max_diff:.2e}")
    return 0 if max_diff < 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
