"""Searchlight benchmarks (issue 4 §5): brainalign vs rsatoolbox and vs plain loops, same data.

Sections (all by default; pick with --only):
  rsatoolbox  volume searchlight at rsatoolbox's settings: ~93-voxel spheres, 100 conditions,
              Pearson, model given as an RDM; neighbourhoods excluded for both. rsatoolbox is
              timed on a slice of centres (centres/s), brainalign on all of them.
  fsaverage5  full-n surface searchlight on fsaverage5 (20,484 centres, 10-mm geodesic discs
              on the white surface), 500 images, one 768-d model; numpy and torch (CPU); a
              plain per-centre loop of the RDM-free formula on a slice for comparison.
  memory      peak extra memory (tracemalloc, numpy backend) at 500 vs 2,000 images.
  fsaverage   full fsaverage (327,684 centres of ~650 vertices), 515 images: a measured slice,
              extrapolated.

Timings on a shared machine are noisy: the script prints the load average beside them.
Run:  python benchmarks/bench_searchlight.py [--only rsatoolbox fsaverage5 memory fsaverage]
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
import warnings

import numpy as np

from brainalign.rsa import Neighbourhoods, compute_rdm, searchlight, surface_neighbourhoods
from brainalign.rsa.rdm import standardise_rows


def load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def timed(fn, *args, **kwargs):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t, time.process_time() - c


def brain_mask(shape=(40, 48, 40)):
    g = np.indices(shape).astype(float)
    c = (np.array(shape) - 1) / 2
    r = ((g - c[:, None, None, None]) ** 2 / (np.array(shape)[:, None, None, None] / 2.2) ** 2).sum(
        0
    )
    return r <= 1


def bench_rsatoolbox(n_slice: int):
    import rsatoolbox.util.searchlight as sl
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    rng = np.random.default_rng(0)
    mask = brain_mask()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centres, neighbours = sl.get_volume_searchlight(mask, radius=2.9, threshold=0.5)
    sizes = np.array([len(x) for x in neighbours])
    n = 100
    data = rng.standard_normal((n, mask.size)).astype(np.float32)
    data[:, ~mask.ravel()] = 0.0
    model_rdm = compute_rdm(rng.standard_normal((n, 20)))
    nb = Neighbourhoods.from_lists([np.sort(np.asarray(x)) for x in neighbours], mask.size)
    print(
        f"[rsatoolbox settings] {len(nb)} centres, sphere size mean {sizes.mean():.0f} (max {sizes.max()}), {n} conditions; {load()}"
    )
    pick = np.linspace(0, len(nb) - 1, n_slice).astype(int)

    def peer():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rdms = sl.get_searchlight_RDMs(
                data,
                centres[pick],
                [neighbours[i] for i in pick],
                np.arange(n),
                method="correlation",
                verbose=False,
            )
            evals = sl.evaluate_models_searchlight(
                rdms, ModelFixed("m", RDMs(model_rdm[None])), eval_fixed, method="corr"
            )
        return np.array([e.evaluations.ravel()[0] for e in evals])

    theirs, t_peer, c_peer = timed(peer)
    ours1, t_ours1, _ = timed(searchlight, data, model_rdm, nb)
    print(
        f"  brainalign, 1 thread: {len(nb) / t_ours1:,.0f} centres/s ({len(nb) / t_ours1 / (n_slice / t_peer):.0f}×)"
    )
    # the machine has 2 cores: brainalign works on two batches of centres at once
    ours, t_ours, c_ours = timed(searchlight, data, model_rdm, nb, n_jobs=2)
    rate_peer = n_slice / t_peer
    rate_ours = len(nb) / t_ours
    cpu_ratio = (c_peer / n_slice) / (c_ours / len(nb))
    diff = max(np.abs(ours[0, pick] - theirs).max(), np.abs(ours1[0, pick] - theirs).max())
    print(
        f"  rsatoolbox : {n_slice} centres in {t_peer:.2f} s (cpu {c_peer:.2f} s) → {rate_peer:,.0f} centres/s "
        f"(extrapolated all: {len(nb) / rate_peer:.0f} s)"
    )
    print(
        f"  brainalign : {len(nb)} centres in {t_ours:.2f} s (cpu {c_ours:.2f} s) → {rate_ours:,.0f} centres/s"
    )
    print(
        f"  speed-up {rate_ours / rate_peer:.0f}× wall, {cpu_ratio:.0f}× cpu time per centre (goal ≥ 50×); "
        f"max |diff| on the slice {diff:.2e} (goal < 1e-5)"
    )
    return dict(rate_peer=rate_peer, rate_ours=rate_ours, diff=diff)


def fsaverage5_neighbourhoods():
    from brainalign.datasets import load_fsaverage

    return surface_neighbourhoods(load_fsaverage("fsaverage5", "white"), radius=10.0)


def plain_loop(betas, E, nb, centres):
    """The RDM-free formula, one centre at a time (the baseline the issue quotes)."""
    En = standardise_rows(E)
    n = betas.shape[0]
    N = n * (n - 1) / 2
    S_h = ((En.sum(0) ** 2).sum() - n) / 2
    S_hh = (np.linalg.norm(En.T @ En) ** 2 - n) / 2
    var_h = S_hh / N - (S_h / N) ** 2
    En = En.astype(np.float32)
    out = []
    for c in centres:
        X = betas[:, nb[c]]
        Z = X - X.mean(1, keepdims=True)
        Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        S_g = ((Z.sum(0) ** 2).sum() - n) / 2
        S_gg = (np.linalg.norm(Z.T @ Z) ** 2 - n) / 2
        S_gh = (np.linalg.norm(En.T @ Z) ** 2 - n) / 2
        var_g = S_gg / N - (S_g / N) ** 2
        out.append((S_gh / N - S_g * S_h / N**2) / np.sqrt(var_g * var_h))
    return np.array(out)


def bench_fsaverage5(n_images=500, dim=768):
    nb = fsaverage5_neighbourhoods()
    rng = np.random.default_rng(1)
    betas = rng.standard_normal((n_images, nb.n_units)).astype(np.float32)
    E = rng.standard_normal((n_images, dim)).astype(np.float32)
    print(
        f"[fsaverage5 full-n] {len(nb)} centres, disc size mean {nb.sizes.mean():.1f}, {n_images} images, {dim}-d model; {load()}"
    )
    res = {}
    for backend in ("numpy", "torch"):
        maps, t, c = timed(searchlight, betas, E, nb, backend=backend, n_jobs=2)
        res[backend] = (t, c, maps)
        print(f"  brainalign {backend:5s}: {t:.1f} s wall, {c:.1f} s cpu (goal < 10 s on 2 cores)")
    sl_ids = np.arange(0, len(nb), 10)
    loop, t_loop, c_loop = timed(plain_loop, betas, E, nb, sl_ids)
    scale = len(nb) / sl_ids.size
    print(
        f"  plain per-centre loop: {sl_ids.size} centres {t_loop:.1f} s → all {t_loop * scale:.0f} s wall ({c_loop * scale:.0f} s cpu)"
    )
    print(
        f"  max |diff| loop vs brainalign {np.abs(loop - res['numpy'][2][0, sl_ids]).max():.2e}, numpy vs torch {np.abs(res['numpy'][2] - res['torch'][2]).max():.2e}"
    )
    return res


def bench_memory():
    nb = fsaverage5_neighbourhoods()
    rng = np.random.default_rng(2)
    print(f"[memory] numpy backend, tracemalloc peak beyond the inputs; {load()}")
    for n in (500, 2000):
        betas = rng.standard_normal((n, nb.n_units)).astype(np.float32)
        E = rng.standard_normal((n, 768)).astype(np.float32)
        for budget in (256,):
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            _, t, _ = timed(searchlight, betas, E, nb, memory_budget=budget << 20)
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            print(
                f"  n={n:5d}: peak {peak / 2**20:7.0f} MiB (betas {betas.nbytes / 2**20:.0f} MiB, one n×n float32 RDM would be {n * n * 4 / 2**20:.0f} MiB per centre); {t:.1f} s"
            )


def synthetic_fsaverage_neighbourhoods(n_per_hemi, mean_size, rng, n_centres):
    sizes = rng.integers(int(mean_size * 0.85), int(mean_size * 1.15) + 1, size=n_centres)
    starts = np.linspace(0, n_per_hemi - sizes.max(), n_centres).astype(int)
    return Neighbourhoods.from_lists(
        [np.arange(s, s + k) for s, k in zip(starts, sizes, strict=True)], 2 * n_per_hemi
    )


def bench_fsaverage(slices=(200, 800)):
    """Two slices; the marginal cost per centre excludes one-off work (input checks, copies)."""
    rng = np.random.default_rng(3)
    n, V = 515, 163_842
    betas = rng.standard_normal((n, 2 * V)).astype(np.float32)
    E = rng.standard_normal((n, 768)).astype(np.float32)
    print(f"[full fsaverage] slices of {slices} centres of ~650 vertices, 515 images; {load()}")
    for backend in ("numpy", "torch"):
        walls, cpus = [], []
        for k in slices:
            nb = synthetic_fsaverage_neighbourhoods(V, 650, rng, k)
            _, t, c = timed(searchlight, betas, E, nb, backend=backend)
            walls.append(t)
            cpus.append(c)
        per_wall = (walls[1] - walls[0]) / (slices[1] - slices[0])
        per_cpu = (cpus[1] - cpus[0]) / (slices[1] - slices[0])
        print(
            f"  {backend:5s}: {slices[1]} centres {walls[1]:.1f} s wall ({cpus[1]:.1f} s cpu); marginal "
            f"{1 / per_wall:.0f} centres/s → 327,684 centres ≈ {per_wall * 327_684 / 60:.0f} min wall, "
            f"{per_cpu * 327_684 / 60:.0f} min cpu (goal < 60 min on 2 cores)"
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--only", nargs="*", default=["rsatoolbox", "fsaverage5", "memory", "fsaverage"]
    )
    ap.add_argument("--rsatoolbox-centres", type=int, default=600)
    args = ap.parse_args()
    if "rsatoolbox" in args.only:
        bench_rsatoolbox(args.rsatoolbox_centres)
    if "fsaverage5" in args.only:
        bench_fsaverage5()
    if "memory" in args.only:
        bench_memory()
    if "fsaverage" in args.only:
        bench_fsaverage()


if __name__ == "__main__":
    main()
