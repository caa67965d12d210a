"""Benchmark: cross-validated ridge with one alpha per target, brainalign vs himalaya and scikit-learn.

Default problem (issue 5 §4): X 9,000 × 768, 10,000 targets, 10 alphas, 5 unshuffled folds.

* brainalign ``ridge_cv(cv=5)`` (numpy and torch backends) vs himalaya ``RidgeCV`` with the same
  ``KFold(5)`` (numpy and torch backends, CPU);
* brainalign ``ridge_cv(cv="loo")`` (exact efficient leave-one-out) and ``cv="gcv"`` vs
  scikit-learn ``RidgeCV(alpha_per_target=True)`` (efficient LOO);
* for every brainalign run, predictions on fresh images equal scikit-learn ``Ridge`` refit at the
  chosen alphas (relative error, float64 reference), and the chosen alphas are compared with the
  peer's;
* peak memory (max RSS of a fresh process per method, minus the RSS of the data alone) and an
  extrapolation to 327,684 vertices (linear in the number of targets);
* the fraction of the machine's GEMM peak reached by the 5-fold runs (issue 25): the
  multiply-adds the method cannot avoid (:func:`kfold_work`) at the float32 GEMM rate measured in
  this script (:func:`sgemm_peak`, all cores, before and after the runs), over the measured time.

Each method runs in its own subprocess on identical data (same seed). Run::

    python benchmarks/bench_ridge.py                       # full size (himalaya takes minutes)
    python benchmarks/bench_ridge.py --targets 2000 --peer-targets 1000

Timings on a shared machine are noisy; the ratio is what to read.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FULL_VERTICES = 327_684


def make_data(n, p, t, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + 1000, p), dtype=np.float32)
    W = rng.standard_normal((p, t), dtype=np.float32) / np.sqrt(p)
    snr = np.logspace(-1.5, 0.5, t).astype(np.float32)  # targets from noisy to clean: alphas vary
    Y = X @ (W * snr) + rng.standard_normal((n + 1000, t), dtype=np.float32)
    Y += rng.standard_normal(t).astype(np.float32)  # offsets: the intercept matters
    return X[:n], Y[:n], X[n:]


def sgemm_peak(size=3072, repeats=5):
    """Float32 GEMM rate (multiply-adds per second) of ``size``² products, best of ``repeats``,
    with BLAS's default threads (all cores)."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a
    best = min(timed_once(lambda: a @ a) for _ in range(repeats))
    return size**3 / best


def timed_once(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def kfold_work(n, p, t, folds, n_alphas):
    """Multiply-adds of 5-fold per-target ridge that any eigenbasis method performs (primal
    form, p ≤ n): ``XᵀY`` (n p t) and the folds' validation cross products (n p t in all), the
    projections of each fold's training and validation cross products on its eigenbasis
    (2 p² t per fold) and its r × r product for the validation error (p² t per fold), the
    validation errors of every alpha (3 n_alphas p t per fold), the full-data projection and
    the coefficients (2 p² t). Everything else (Gram matrices, eigendecompositions, passes over
    the targets) is counted as overhead."""
    return t * (2 * n * p + folds * (3 * p * p + 3 * n_alphas * p) + 2 * p * p)


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args):
    alphas = np.logspace(-2, 7, args.alphas)
    X, Y, X_test = make_data(args.n, args.p, args.data_targets, args.seed)
    Y = np.ascontiguousarray(Y[:, : args.targets])  # peers on fewer targets see the same columns
    base = rss_mb()
    from sklearn.model_selection import KFold

    # every method's imports happen before the clock starts (brainalign's take about a second)
    if args.worker.startswith("brainalign"):
        from brainalign.encoding import ridge_cv
    elif args.worker.startswith("himalaya"):
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV as HRidgeCV
    else:
        from sklearn.linear_model import RidgeCV

    t0 = time.perf_counter()
    if args.worker.startswith("brainalign"):
        _, backend, cv = args.worker.split(":")
        cv = int(cv) if cv.isdigit() else cv
        res = ridge_cv(
            X, Y, alphas, cv=cv, backend=backend, device="cpu" if backend == "torch" else None
        )
        elapsed = time.perf_counter() - t0
        chosen = res.alphas
        pred = res.predict(X_test[:, :])
        out = {"alphas": chosen, "pred": pred}
    elif args.worker.startswith("himalaya"):
        backend = args.worker.split(":")[1]
        set_backend(backend)
        model = HRidgeCV(alphas=alphas, cv=KFold(args.folds), fit_intercept=True).fit(X, Y)
        elapsed = time.perf_counter() - t0
        chosen = np.asarray(model.best_alphas_, dtype=np.float64)
        out = {"alphas": chosen}
    elif args.worker == "sklearn:loo":
        model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)
        elapsed = time.perf_counter() - t0
        out = {"alphas": np.asarray(model.alpha_, dtype=np.float64)}
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    peak = rss_mb()
    np.save(
        Path(args.out) / f"{args.worker.replace(':', '_')}_{args.targets}_alphas.npy", out["alphas"]
    )
    check = None
    if "pred" in out:
        from sklearn.linear_model import Ridge

        k = min(args.check_targets, args.targets)
        cols = np.linspace(0, args.targets - 1, k).astype(int)
        ref = Ridge(alpha=out["alphas"][cols]).fit(
            X.astype(np.float64), Y[:, cols].astype(np.float64)
        )
        R = ref.predict(X_test.astype(np.float64))
        P = out["pred"][:, cols].astype(np.float64)
        rel = np.linalg.norm(P - R, axis=0) / np.linalg.norm(R, axis=0)
        check = float(rel.max())
    print(
        json.dumps(
            {
                "method": args.worker,
                "time_s": elapsed,
                "peak_rss_mb": peak,
                "data_rss_mb": base,
                "pred_rel_err": check,
            }
        )
    )


def run(method, targets, args, out):
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--targets",
        str(targets),
        "--n",
        str(args.n),
        "--p",
        str(args.p),
        "--alphas",
        str(args.alphas),
        "--folds",
        str(args.folds),
        "--out",
        out,
        "--check-targets",
        str(args.check_targets),
        "--data-targets",
        str(args.targets),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"method": method, "error": proc.stderr[-500:]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["targets"] = targets
    print(
        f"  {method:22s} {targets:6d} targets  {res['time_s']:8.2f} s   peak {res['peak_rss_mb'] - res['data_rss_mb']:7.0f} MB over data"
        + (
            f"   pred rel err vs sklearn Ridge {res['pred_rel_err']:.1e}"
            if res.get("pred_rel_err") is not None
            else ""
        ),
        flush=True,
    )
    return res


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=9000)
    ap.add_argument("--p", type=int, default=768)
    ap.add_argument("--targets", type=int, default=10000)
    ap.add_argument(
        "--peer-targets", type=int, default=None, help="targets for the peers (default: --targets)"
    )
    ap.add_argument("--alphas", type=int, default=10)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--check-targets", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-targets", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--skip", default="", help="comma-separated methods to skip")
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--worker", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    peer_t = args.peer_targets or args.targets
    skip = set(filter(None, args.skip.split(",")))
    results = []
    peak_before = sgemm_peak()
    print(
        f"ridge per-target CV: X {args.n} × {args.p}, {args.targets} targets, {args.alphas} alphas, {args.folds} folds"
    )
    print(
        f"(peers on {peer_t} targets; machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory() as out:
        plan = [
            ("brainalign:numpy:5", args.targets),
            ("brainalign:torch:5", args.targets),
            ("himalaya:numpy", peer_t),
            ("himalaya:torch", peer_t),
            ("brainalign:numpy:loo", args.targets),
            ("brainalign:numpy:gcv", args.targets),
            ("sklearn:loo", peer_t),
            (
                "brainalign:numpy:5",
                max(args.targets // 10, 100),
            ),  # second size for the extrapolation
        ]
        for method, t in plan:
            if method.split(":")[0] in skip or method in skip:
                continue
            results.append(run(method, t, args, out))
        ok = {(r["method"], r["targets"]): r for r in results if "error" not in r}

        def load(m):
            t = peer_t if m.split(":")[0] in ("himalaya", "sklearn") else args.targets
            return np.load(Path(out) / f"{m.replace(':', '_')}_{t}_alphas.npy")

        def per_target(m, t):
            r = ok.get((m, t))
            return None if r is None else r["time_s"] / t

        summary = {}
        ba5 = min(
            filter(
                None,
                [
                    per_target("brainalign:numpy:5", args.targets),
                    per_target("brainalign:torch:5", args.targets),
                ],
            ),
            default=None,
        )
        him = [per_target("himalaya:numpy", peer_t), per_target("himalaya:torch", peer_t)]
        him = [h for h in him if h is not None]
        if ba5 and him:
            summary["kfold_speedup_vs_faster_himalaya"] = min(him) / ba5
            ref = load(
                "himalaya:torch"
                if per_target("himalaya:torch", peer_t) == min(him)
                else "himalaya:numpy"
            )
            mine = load("brainalign:numpy:5")[: len(ref)]
            summary["kfold_same_alpha_fraction"] = float(np.isclose(mine, ref, rtol=1e-4).mean())
        loo = per_target("brainalign:numpy:loo", args.targets)
        gcv = per_target("brainalign:numpy:gcv", args.targets)
        sk = per_target("sklearn:loo", peer_t)
        if sk and loo:
            summary["loo_speedup_vs_sklearn"] = sk / loo
            summary["loo_same_alpha_fraction"] = float(
                np.isclose(
                    load("brainalign:numpy:loo")[:peer_t], load("sklearn:loo"), rtol=1e-6
                ).mean()
            )
        if sk and gcv:
            summary["gcv_speedup_vs_sklearn"] = sk / gcv
            summary["gcv_same_alpha_as_loo_fraction"] = float(
                np.isclose(
                    load("brainalign:numpy:gcv")[:peer_t], load("sklearn:loo"), rtol=1e-6
                ).mean()
            )
        small = max(args.targets // 10, 100)
        a, b = ok.get(("brainalign:numpy:5", small)), ok.get(("brainalign:numpy:5", args.targets))
        if a and b and args.targets > small:
            slope = (b["time_s"] - a["time_s"]) / (args.targets - small)
            fixed = b["time_s"] - slope * args.targets
            summary["extrapolated_327684_vertices_s"] = fixed + slope * FULL_VERTICES
            summary["extrapolated_327684_coef_gb"] = args.p * FULL_VERTICES * 4 / 1e9
        # fraction of the GEMM peak: measured before and after the runs, the better one counts
        peak = max(peak_before, sgemm_peak())
        work = kfold_work(args.n, args.p, args.targets, args.folds, args.alphas)
        print(
            f"\nGEMM peak (float32, {os.cpu_count()} cores) {2 * peak / 1e9:.0f} GFLOP/s; 5-fold work "
            f"{2 * work / 1e9:.0f} GFLOP → limit {work / peak:.2f} s"
        )
        for m in ("brainalign:numpy:5", "brainalign:torch:5"):
            r = ok.get((m, args.targets))
            if r is not None:
                frac = work / peak / r["time_s"]
                summary[f"{m.replace(':', '_')}_fraction_of_gemm_peak"] = frac
                print(
                    f"  {m:22s} {r['time_s']:.2f} s = {1 / frac:.1f}× the limit ({frac:.0%} of peak)"
                )
        print("\nsummary:")
        for k, v in summary.items():
            print(f"  {k:42s} {v:.3f}")
        if args.json:
            Path(args.json).write_text(
                json.dumps({"results": results, "summary": summary}, indent=2)
            )


if __name__ == "__main__":
    main()
