"""Banded ridge: brainalign vs himalaya's BandedRidgeCV (issue 22).

Same bands (768 + 80 + 300 features: MPNet-, category- and GloVe-sized), same band weightings
(Dirichlet random search, the first uniform), same alphas, same folds (unshuffled 5-fold), fitted
on 5,000 images × 20,000 targets and scored on 1,000 held-out images. Prints per-target agreement
of the held-out R² (must be ≤ 1e-4), the share of targets that chose the same candidate, both
times and their ratio, and brainalign's fraction of the machine's float32 GEMM peak (measured here
with a large sgemm; the flop count is the solver's dominant products).

    python benchmarks/bench_banded.py            # the issue's size (himalaya takes many minutes)
    python benchmarks/bench_banded.py --small    # 1,500 images × 2,000 targets, minutes
    python benchmarks/bench_banded.py --nsd-memory /big/folder   # NSD's size, memory only
    python benchmarks/bench_banded.py --small --hyper 10   # gradient paths, 10 steps each

``--nsd-memory FOLDER`` writes NSD-sized targets to a float32 ``.npy`` there (11,000 images × full
fsaverage's 327,684 vertices, 14.4 GB; a low-rank signal plus noise, written in row chunks) and fits
the banded ridge on 10,000 training images from that memory map (an NSD subject's whole 10,000, a
little more than the paper's 9,000 non-shared ones), scoring 1,000 held-out ones (2 band
weightings × 5 alphas, the library's default memory budget, no coefficients kept),
sampling the process's anonymous memory (``RssAnon``: what it really holds; pages of the
memory-mapped file are the kernel's) every 20 ms. No peer runs.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from brainalign.encoding import banded_ridge_cv, dirichlet_candidates, make_folds

WIDTHS = (768, 80, 300)


def gemm_peak(n: int = 3072, repeats: int = 3) -> float:
    """Float32 GEMM rate (flop/s) of the best of ``repeats`` n × n products."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, n), dtype=np.float32)
    A @ B  # warm up the BLAS threads
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def data(n: int, n_test: int, t: int, seed: int = 0):
    """Bands with a shared and a band-specific signal, and noisy targets."""
    rng = np.random.default_rng(seed)
    m = n + n_test
    latent = rng.standard_normal((m, 20)).astype(np.float32)
    Xs = []
    for w in WIDTHS:
        mix = rng.standard_normal((20, w)).astype(np.float32) / np.sqrt(20)
        Xs.append(latent @ mix + rng.standard_normal((m, w)).astype(np.float32))
    Y = np.zeros((m, t), np.float32)
    for k, X in enumerate(Xs):
        W = rng.standard_normal((X.shape[1], t)).astype(np.float32) / np.sqrt(X.shape[1])
        Y += (0.6 / (k + 1)) * (X @ W)
    Y += 2.0 * rng.standard_normal((m, t)).astype(np.float32)
    return [X[:n] for X in Xs], Y[:n], [X[n:] for X in Xs], Y[n:]


def nsd_memory(folder: Path, n: int = 10_000, n_test: int = 1_000, t: int = 327_684) -> None:
    """The banded fit at NSD's full size from memory-mapped targets: wall time and peak memory."""
    import threading

    def anon_kb() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    rng = np.random.default_rng(0)
    m = n + n_test
    latent = rng.standard_normal((m, 20)).astype(np.float32)
    Xs = [latent @ rng.standard_normal((20, w)).astype(np.float32) / np.sqrt(20)
          + rng.standard_normal((m, w)).astype(np.float32) for w in WIDTHS]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "targets.npy"
    t0 = time.perf_counter()
    Y = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(m, t))
    B = rng.standard_normal((20, t)).astype(np.float32) * np.linspace(0.1, 1.0, t, dtype=np.float32)
    for start in range(0, m, 250):
        stop = min(start + 250, m)
        Y[start:stop] = latent[start:stop] @ B + 2.0 * rng.standard_normal(
            (stop - start, t), dtype=np.float32
        )
    Y.flush()
    del Y
    print(f"wrote {path} ({m} × {t} float32, {path.stat().st_size / 1e9:.1f} GB) in "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    Y = np.load(path, mmap_mode="r")
    base = anon_kb()
    peak = [base]
    stop_event = threading.Event()

    def sample():
        while not stop_event.wait(0.02):
            peak[0] = max(peak[0], anon_kb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    res = banded_ridge_cv(
        [X[:n] for X in Xs], Y[:n], gammas=dirichlet_candidates(len(WIDTHS), 2, random_state=0),
        alphas=np.logspace(0, 4, 5), cv=make_folds(n, 5),
        test=([X[n:] for X in Xs], Y[n:]), return_coef=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    stop_event.set()
    thread.join()
    peak[0] = max(peak[0], anon_kb())
    print(
        f"banded ridge at NSD's size: {n} training × {t} targets from a memory map, held-out "
        f"{n_test}: {wall:.0f} s; peak anonymous memory {peak[0] / 2**20:.2f} GB "
        f"({base / 2**20:.2f} GB before the fit: the bands and the interpreter); median held-out "
        f"R² {np.nanmedian(res.test_r2):.3f}"
    )


def flops(n: int, n_test: int, t: int, folds, n_cand: int, n_alphas: int) -> float:
    """The dominant products of brainalign's primal solver (float64 counted twice)."""
    p = sum(WIDTHS)
    r = p
    total = 2 * n * p * t  # XᵀY
    total += sum(2 * len(va) * p * t for _, va in folds)  # each fold's validation part
    per_fold = 2 * (2 * p * r * t) + 2 * (2 * r * r * t) + 2 * n_alphas * r * t
    total += n_cand * len(folds) * per_fold
    total += 2 * p * r * t + 2 * n_test * p * t  # refit and held-out scores
    return float(total)


def hyper_gradient(Xtr, Ytr, Xte, Yte, folds, gammas, alphas, ours, t_ours, max_iter: int) -> None:
    """Gradient paths against the random search, ``max_iter`` gradient steps each, same data and
    folds:

    * himalaya's ``MultipleKernelRidgeCV(solver="hyper_gradient")`` with its defaults, from its
      RidgeCV start (uniform band weights, 30 alphas 1e-10…1e20); its kernel solver fits no
      intercept, so its data are centred on the training means first;
    * brainalign's ``solver="hyper_gradient"`` from the same start with himalaya's steps (its
      default ``step="lipschitz"``): the same algorithm with exact inner solves, for the ratio;
    * brainalign's hyper-gradient from its random search's choice, with himalaya's steps and
      with ``step="adaptive"``.
    """
    from himalaya.kernel_ridge import ColumnKernelizer, Kernelizer, MultipleKernelRidgeCV
    from himalaya.scoring import r2_score
    from sklearn.pipeline import make_pipeline

    def ours_hyper(**kw):
        t0 = time.perf_counter()
        res = banded_ridge_cv(
            Xtr, Ytr, cv=folds, test=(Xte, Yte), return_coef=False, memory_budget=2 << 30,
            solver="hyper_gradient", max_iter=max_iter, **kw,
        )  # fmt: skip
        return res, time.perf_counter() - t0

    himalaya_start = dict(gammas=np.full((1, len(WIDTHS)), 1 / len(WIDTHS)),
                          alphas=np.logspace(-10, 20, 30))  # fmt: skip
    same, t_same = ours_hyper(**himalaya_start)
    searched, t_searched = ours_hyper(gammas=gammas, alphas=alphas)
    adaptive, t_adaptive = ours_hyper(gammas=gammas, alphas=alphas, step="adaptive")

    X, Xt = np.hstack(Xtr), np.hstack(Xte)
    mx, my = X.mean(0), Ytr.mean(0)
    edges = np.cumsum((0, *WIDTHS))
    kernelizer = ColumnKernelizer(
        [(f"band{k}", Kernelizer(kernel="linear"), slice(a, b))
         for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True))]
    )  # fmt: skip
    model = MultipleKernelRidgeCV(
        kernels="precomputed",
        solver="hyper_gradient",
        cv=folds,
        solver_params=dict(max_iter=max_iter, initial_deltas="ridgecv", progress_bar=False),
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(kernelizer, model).fit(X - mx, Ytr - my)
    t_him = time.perf_counter() - t0
    r2_him = np.asarray(r2_score(Yte - my, pipe.predict(Xt - mx)))
    ok = np.isfinite(ours.test_r2)
    base = ours.test_r2[ok]

    def row(name, seconds, r2):
        print(
            f"  {name:<52} {seconds:7.1f} s   median held-out R² {np.median(r2):.4f}   "
            f"vs the random search: better on {np.mean(r2 > base + 1e-4):5.1%} of targets, "
            f"worse on {np.mean(r2 < base - 1e-4):5.1%}"
        )

    print(f"gradient paths, {max_iter} steps each (held-out R² compared with the random search's):")
    print(f"  {'brainalign random search':<52} {t_ours:7.1f} s   median held-out R² "
          f"{np.median(base):.4f}")  # fmt: skip
    row("himalaya hyper-gradient (RidgeCV start)", t_him, r2_him[ok])
    row("brainalign hyper-gradient, himalaya's start and steps", t_same, same.test_r2[ok])
    row("brainalign hyper-gradient from its random search", t_searched, searched.test_r2[ok])
    row("the same, adaptive steps", t_adaptive, adaptive.test_r2[ok])
    gain = np.nanmax(adaptive.hyper_cv_scores, 0) - adaptive.hyper_cv_scores[0]
    print(
        f"same algorithm and start: brainalign {t_him / t_same:.1f}x faster than himalaya, median "
        f"|ΔR²| {np.median(np.abs(same.test_r2 - r2_him)[ok]):.1e} (himalaya's inner solves are "
        f"inexact: one gradient step per iteration); adaptive: CV score up by a median "
        f"{np.median(gain[ok]):.1e} over its random search's"
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="1,500 × 2,000 for a quick run")
    ap.add_argument("--n-iter", type=int, default=4, help="band weightings (default 4)")
    # himalaya's banded-ridge tutorial searches 20 alphas; brainalign's cost hardly grows with
    # them (partial fractions: O(r) per alpha and target), himalaya's grows linearly
    ap.add_argument("--alphas", type=int, default=20, help="alphas, log-spaced 1e-1…1e5")
    ap.add_argument("--n", type=int, help="training images (default 5,000; --small 1,500)")
    ap.add_argument("--t", type=int, help="targets (default 20,000; --small 2,000)")
    ap.add_argument("--skip-himalaya", action="store_true")
    ap.add_argument(
        "--hyper",
        type=int,
        metavar="ITER",
        help="instead of BandedRidgeCV, run brainalign's and himalaya's hyper-gradient solvers "
        "(ITER gradient steps each) against the random search",
    )
    ap.add_argument("--nsd-memory", type=Path, metavar="FOLDER", help="NSD's size, memory only")
    args = ap.parse_args(argv)
    if args.nsd_memory:
        nsd_memory(args.nsd_memory)
        return
    n, t = (1500, 2000) if args.small else (5000, 20000)
    n, t = args.n or n, args.t or t
    n_test = n // 5
    Xtr, Ytr, Xte, Yte = data(n, n_test, t)
    gammas = dirichlet_candidates(len(WIDTHS), args.n_iter, random_state=0)
    alphas = np.logspace(-1, 5, args.alphas)
    folds = make_folds(n, 5)
    print(
        f"banded ridge: {n} images × {t} targets, bands {WIDTHS}, {len(gammas)} weightings × "
        f"{len(alphas)} alphas, 5 folds; held-out {n_test} images"
    )
    peak = gemm_peak()
    print(f"float32 GEMM peak: {peak / 1e9:.1f} GFLOP/s")

    t0 = time.perf_counter()
    ours = banded_ridge_cv(
        Xtr,
        Ytr,
        gammas=gammas,
        alphas=alphas,
        cv=folds,
        test=(Xte, Yte),
        return_coef=False,
        memory_budget=2 << 30,
    )
    t_ours = time.perf_counter() - t0
    fl = flops(n, n_test, t, folds, len(gammas), len(alphas))
    print(
        f"brainalign: {t_ours:.1f} s ({fl / t_ours / 1e9:.1f} GFLOP/s, "
        f"{fl / t_ours / peak:.0%} of the GEMM peak)"
    )
    if args.skip_himalaya:
        return
    if args.hyper:
        hyper_gradient(Xtr, Ytr, Xte, Yte, folds, gammas, alphas, ours, t_ours, args.hyper)
        return
    from himalaya.ridge import BandedRidgeCV
    from himalaya.scoring import r2_score

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = BandedRidgeCV(
            groups="input",
            solver_params=dict(n_iter=gammas, alphas=alphas, progress_bar=False),
            cv=folds,
            fit_intercept=True,
        ).fit(Xtr, Ytr)
    t_him = time.perf_counter() - t0
    r2_ref = np.asarray(r2_score(Yte, ref.predict(Xte)))
    diff = np.abs(r2_ref - ours.test_r2)
    same = np.mean(np.all(np.isclose(np.asarray(ref.deltas_), ours.deltas), axis=0))
    print(f"himalaya BandedRidgeCV: {t_him:.1f} s")
    print(
        f"agreement: max |ΔR²| = {diff.max():.2e} (≤ 1e-4: {diff.max() <= 1e-4}), same "
        f"candidate and alpha for {same:.1%} of targets"
    )
    print(f"speed-up: {t_him / t_ours:.1f}x")


if __name__ == "__main__":
    main()
