"""GPU check for the RSA searchlight (issue 4 §5): full fsaverage on a GPU in under a minute.

Self-contained: synthetic data with the size of the full fsaverage problem — 327,684 centres
(2 × 163,842 vertices), neighbourhoods of ~650 vertices (a 10-mm geodesic disc on fsaverage),
515 images, one 768-d model — and a correctness check of the CUDA result against the numpy
float64 kernel and a brute-force per-centre reference on a sample of centres.

Run from the repository root:  python benchmarks/gpu_check_rsa.py  [--centres N] [--device cuda]
Prints the timings and exits non-zero on a mismatch (> 1e-4) or when CUDA is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from brainalign.rsa import Neighbourhoods, compare_rdms, compute_rdm, searchlight  # noqa: E402


def synthetic_neighbourhoods(n_vertices_per_hemi: int, mean_size: int, rng) -> Neighbourhoods:
    """Contiguous index windows of varying size (≈ mean_size) around every vertex, per hemisphere.

    fsaverage vertex order is spatially coherent, so contiguous windows mimic the memory locality
    of real discs; sizes vary ±15 % like geodesic discs do.
    """
    sizes = rng.integers(
        int(mean_size * 0.85), int(mean_size * 1.15) + 1, size=2 * n_vertices_per_hemi
    )
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    indices = np.empty(indptr[-1], dtype=np.int64)
    for h in range(2):
        off = h * n_vertices_per_hemi
        for c in range(n_vertices_per_hemi):
            s = sizes[off + c]
            start = min(max(c - s // 2, 0), n_vertices_per_hemi - s)
            indices[indptr[off + c] : indptr[off + c + 1]] = np.arange(start, start + s) + off
    return Neighbourhoods(
        indptr, indices, np.arange(2 * n_vertices_per_hemi), 2 * n_vertices_per_hemi, kind="surface"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vertices", type=int, default=163_842, help="vertices per hemisphere")
    ap.add_argument("--size", type=int, default=650, help="mean neighbourhood size")
    ap.add_argument("--images", type=int, default=515)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget-mb", type=int, default=4096, help="working memory per batch")
    args = ap.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("FAIL: CUDA is not available")
        return 2
    print(
        f"torch {torch.__version__}, device {torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}"
    )
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    nb = synthetic_neighbourhoods(args.vertices, args.size, rng)
    n = args.images
    E = rng.standard_normal((n, args.dim)).astype(np.float32)
    betas = rng.standard_normal((n, nb.n_units)).astype(np.float32)
    # a planted signal in the first 20,000 vertices makes the check non-trivial
    n_sig = min(20000, nb.n_units)
    betas[:, :n_sig] += (E @ rng.standard_normal((args.dim, n_sig)).astype(np.float32)) / np.sqrt(
        args.dim
    )
    print(
        f"data: {n} images × {nb.n_units} vertices, {len(nb)} centres, mean size {nb.sizes.mean():.0f}; built in {time.perf_counter() - t:.1f} s"
    )

    # warm-up (CUDA context, kernels) on a small slice, then the full timed run
    sample = np.sort(rng.choice(len(nb), 300, replace=False))
    sample = np.unique(np.concatenate([sample, np.arange(0, n_sig, 2000)]))
    sub = Neighbourhoods.from_lists([nb[c] for c in sample], nb.n_units)
    warm = searchlight(
        betas, E, sub, backend="torch", device=args.device, memory_budget=args.budget_mb << 20
    )
    torch.cuda.synchronize() if args.device.startswith("cuda") else None

    t = time.perf_counter()
    maps = searchlight(
        betas, E, nb, backend="torch", device=args.device, memory_budget=args.budget_mb << 20
    )
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if args.device.startswith("cuda")
        else float("nan")
    )
    print(
        f"full searchlight on {args.device}: {seconds:.1f} s ({len(nb) / seconds:,.0f} centres/s), peak GPU memory {peak:.1f} GiB"
    )
    print(f"goal < 60 s: {'MET' if seconds < 60 else 'NOT MET'}")

    ref64 = searchlight(betas, E, sub, backend="numpy", dtype="float64")[0]
    brute = np.array(
        [
            compare_rdms(
                compute_rdm(betas[:, nb[c]].astype(np.float64)), compute_rdm(E.astype(np.float64))
            )
            for c in sample[:20]
        ]
    )
    err_cpu = np.abs(maps[0, sample] - ref64).max()
    err_warm = np.abs(warm[0] - ref64).max()
    err_brute = np.abs(ref64[:20] - brute).max()
    print(
        f"max |cuda − numpy float64| on {sample.size} centres: {err_cpu:.2e} (warm-up run {err_warm:.2e})"
    )
    print(f"max |numpy float64 − brute force| on 20 centres: {err_brute:.2e}")
    print(
        f"map range {np.nanmin(maps):.3f} .. {np.nanmax(maps):.3f}; NaN: {int(np.isnan(maps).sum())}"
    )
    ok = err_cpu < 1e-4 and err_warm < 1e-4 and err_brute < 1e-8 and not np.isnan(maps).any()
    print("PASS" if ok else "FAIL: mismatch")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
