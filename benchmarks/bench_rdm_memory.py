"""Memory of a large RDM data set (issue 23, case 7): ``rdms check`` and the evaluation.

Writes a data set in the RDM folder format (docs/datasets.md) into a temporary folder:
``--subjects`` × ``--n`` × ``--n`` float32 brain RDMs in ``rdms/IT.npy`` (correlation distances
of random patterns with a shared part, so subjects agree), one condensed float32 model RDM in
``models/model.npy``, a stimulus table and empty image files. Then, each in its own process:

1. ``brainalign rdms check ROOT`` (read and check everything);
2. the evaluation of the pipeline's ``rdm_rsa`` analysis — the ``rdm_evaluate`` stage: the
   data set's condensed RDMs, every model against them with the configured method, noise
   ceiling and bootstrap (``--bootstrap``, ``--n-bootstrap`` samples).

and prints, per step, the wall time, the peak resident memory (``ru_maxrss``: it includes the
pages of the memory-mapped file that were read, which the kernel may drop at any time) and the
peak anonymous memory (``RssAnon``, sampled every 20 ms: what the process itself allocated).
The issue's set (2 × 10,000 × 10,000, 800 MB) reached 19.4 GB; the goal is 3 GB.

    python benchmarks/bench_rdm_memory.py                      # the issue's set, spearman
    python benchmarks/bench_rdm_memory.py --methods pearson    # Pearson (and cosine) instead
    python benchmarks/bench_rdm_memory.py --n 3000 --methods spearman pearson
    python benchmarks/bench_rdm_memory.py --root SET           # a set written before

Spearman is the pipeline's default method (``[analyses.rdm_rsa] methods``, first entry).

The memory peak does not depend on ``--n-bootstrap`` (each sample's temporaries are freed);
the time is linear in it (``--n-bootstrap 1000``, the default of the configuration, takes
about 1,000 × the per-sample time printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

#: rows of RDM computed (and written) at a time when the data set is made
_ROWS = 512


# ------------------------------------------------------------------------------- the data set
def _write_square(out: np.ndarray, Z: np.ndarray) -> None:
    """``out[i, j] = 1 - z_i · z_j`` (correlation distance), row block by row block."""
    n = Z.shape[0]
    for start in range(0, n, _ROWS):
        stop = min(start + _ROWS, n)
        block = (1.0 - Z[start:stop] @ Z.T).astype(np.float32)
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        np.maximum(block, 0.0, out=block)
        out[start:stop] = block


def _write_condensed(out: np.ndarray, Z: np.ndarray) -> None:
    n, at = Z.shape[0], 0
    for i in range(n - 1):
        row = np.maximum(1.0 - Z[i + 1 :] @ Z[i], 0.0)
        out[at : at + len(row)] = row
        at += len(row)


def make_dataset(root: Path, n: int, n_subjects: int, seed: int = 0) -> Path:
    """Write the data set (disk: 4 n² bytes per subject + 2 n² for the model)."""
    rng = np.random.default_rng(seed)
    (root / "rdms").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "images").mkdir()
    shared = rng.standard_normal((n, 40))
    rdms = np.lib.format.open_memmap(
        root / "rdms" / "IT.npy", mode="w+", dtype=np.float32, shape=(n_subjects, n, n)
    )
    for s in range(n_subjects):
        X = shared + 1.5 * rng.standard_normal((n, 40))
        _write_square(rdms[s], _zs(X))
    rdms.flush()
    del rdms
    model = np.lib.format.open_memmap(
        root / "models" / "model.npy", mode="w+", dtype=np.float32, shape=(n * (n - 1) // 2,)
    )
    _write_condensed(model, _zs(shared[:, :20] + rng.standard_normal((n, 20))))
    model.flush()
    del model
    lines = ["stimulus\timage\tlabel"]
    for i in range(n):
        (root / "images" / f"s{i}.png").touch()
        lines.append(f"s{i}\timages/s{i}.png\tstimulus {i}")
    (root / "stimuli.tsv").write_text("\n".join(lines) + "\n")
    subjects = [f"sub-{s + 1:02d}" for s in range(n_subjects)]
    (root / "dataset.json").write_text(json.dumps({"name": "bench", "subjects": subjects}))
    return root


def _zs(X: np.ndarray) -> np.ndarray:
    X = X - X.mean(1, keepdims=True)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- measurements
class _AnonPeak:
    """Peak ``RssAnon`` of this process, sampled in a thread (Linux; 0 elsewhere)."""

    def __init__(self, every: float = 0.02):
        self.peak, self.every, self._stop = 0, every, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def now() -> int:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.now())


def _child(step: str, root: str, args) -> dict:
    """Run one step in this (child) process; return its measurements."""
    anon = _AnonPeak()
    t0 = time.perf_counter()
    info = {}
    if step == "check":
        from brainalign.cli import _register, app

        _register()
        code = app(["rdms", "check", root], standalone_mode=False)
        info["exit"] = int(code or 0)
    else:
        from brainalign.pipeline.analyses.rdm_rsa import rdm_evaluate

        params = {
            "root": root,
            "set": {"label": "bench", "root": root, "importer": None, "source": None,
                    "rois": None},
            "metric": None,
            "label": "bench",
            "rois": None,
            "method": step,
            "spaces": [],
            "vision": [],
            "data_models": True,
            "bootstrap": args.bootstrap,
            "bootstrap_methods": [step],
            "n_bootstrap": args.n_bootstrap,
            "pool": "mean",
            "ci": 0.95,
            "random_state": 0,
        }  # fmt: skip
        res = rdm_evaluate(params, {}, {})
        row = res["scores"][0]
        info.update(score=row["score"], ci=[row["ci_low"], row["ci_high"]])
        info["ceiling"] = [res["ceilings"][0]["lower"], res["ceilings"][0]["upper"]]
    info["seconds"] = time.perf_counter() - t0
    info["rss_anon_peak"] = anon.stop()
    info["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return info


def _run_step(step: str, root: Path, args) -> dict:
    cmd = [
        sys.executable, __file__, "--child", step, "--root", str(root),
        "--bootstrap", args.bootstrap, "--n-bootstrap", str(args.n_bootstrap),
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"step {step} failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="stimuli")
    ap.add_argument("--subjects", type=int, default=2)
    ap.add_argument(
        "--methods",
        "--method",
        nargs="+",
        default=["spearman"],
        choices=["spearman", "pearson", "cosine", "kendall_tau_a"],
        help="comparison methods to evaluate (default: spearman, the pipeline's default)",
    )
    ap.add_argument("--bootstrap", default="dual", choices=["dual", "subjects", "stimuli", "none"])
    ap.add_argument("--n-bootstrap", type=int, default=20)
    ap.add_argument("--root", help="an existing data set to use (else one is written)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.root, args)))
        return
    gib = 1 << 30
    with tempfile.TemporaryDirectory(prefix="bench_rdm_memory.") as tmp:
        if args.root:
            root = Path(args.root)
        else:
            t0 = time.perf_counter()
            root = make_dataset(Path(tmp) / "set", args.n, args.subjects)
            print(f"wrote {root} in {time.perf_counter() - t0:.0f} s")
        size = sum(p.stat().st_size for p in (root / "rdms").glob("*.npy"))
        n = int(np.load(root / "rdms" / "IT.npy", mmap_mode="r").shape[1])
        print(f"data set: {args.subjects} subjects × {n} stimuli, rdms/ {size / 1e9:.2f} GB")
        print(f"{'step':<32}{'wall s':>9}{'RssAnon peak':>15}{'ru_maxrss':>12}  result")
        for step in ["check", *args.methods]:
            r = _run_step(step, root, args)
            label = "rdms check" if step == "check" else f"evaluate {step}"
            result = ""
            if step != "check":
                label += f" ({args.bootstrap} × {args.n_bootstrap})"
                result = (
                    f"score {r['score']:.4f} CI [{r['ci'][0]:.4f}, {r['ci'][1]:.4f}] "
                    f"ceiling [{r['ceiling'][0]:.4f}, {r['ceiling'][1]:.4f}]"
                )
            print(
                f"{label:<32}{r['seconds']:>9.1f}{r['rss_anon_peak'] / gib:>12.2f} GiB"
                f"{r['ru_maxrss'] / gib:>8.2f} GiB  {result}"
            )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
