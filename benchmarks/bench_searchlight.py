"""Searchlight benchmarks (issue 4 §5): brainalign vs rsatoolbox and vs plain loops, same data.

Sections (all by default; pick with --only):
  rsatoolbox  volume searchlight at rsatoolbox's settings: radius-3 spheres (distance ≤ 3
              voxels, 123 voxels) fully inside the mask, 100 conditions, Pearson, one model
              given as an RDM; neighbourhoods excluded for both. Each tool is repeated until it
              has run for --seconds (rsatoolbox on a slice of centres, brainalign on all of
              them): centres/s (median over the repeats), the ratio and the max |diff|.
  paper       the paper's volume searchlight per subject: a func1pt8mm-sized volume
              (81 × 104 × 83) with a brain-sized mask (~225,000 voxels), radius 6 voxels, ≥ 50 %
              of the sphere in the mask, 100 subsets of 100 images, one 768-d model; measured
              on a slice of centres and subsets, extrapolated to all of them (said in the output).
  fsaverage5  full-n surface searchlight on fsaverage5 (20,484 centres, 10-mm geodesic discs
              on the white surface), 500 images, one 768-d model; numpy and torch (CPU); a
              plain per-centre loop of the RDM-free formula on a slice for comparison.
  memory      peak extra memory (tracemalloc, numpy backend) at 500 vs 2,000 images.
  fsaverage   full fsaverage (327,684 centres of ~650 vertices), 515 images: a measured slice,
              extrapolated.

Timings on a shared machine are noisy: the script prints the load average beside them.
Run:  python benchmarks/bench_searchlight.py [--only rsatoolbox paper fsaverage5 memory fsaverage]
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


def repeated(fn, seconds: float):
    """Call ``fn`` until ``seconds`` have passed (at least 3 times); its output and the wall
    and CPU seconds of each call."""
    walls, cpus, start = [], [], time.perf_counter()
    while len(walls) < 3 or time.perf_counter() - start < seconds:
        out, t, c = timed(fn)
        walls.append(t)
        cpus.append(c)
    return out, np.array(walls), np.array(cpus)


def bench_rsatoolbox(n_slice: int, seconds: float):
    import rsatoolbox.util.searchlight as sl
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    rng = np.random.default_rng(0)
    mask = brain_mask()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # rsatoolbox keeps distances < radius: 3.01 keeps those ≤ 3 (123 voxels); threshold 1:
        # spheres fully inside the mask
        centres, neighbours = sl.get_volume_searchlight(mask, radius=3.01, threshold=1.0)
    sizes = np.array([len(x) for x in neighbours])
    n = 100
    data = rng.standard_normal((n, mask.size)).astype(np.float32)
    data[:, ~mask.ravel()] = 0.0
    model_rdm = compute_rdm(rng.standard_normal((n, 20)))
    nb = Neighbourhoods.from_lists([np.sort(np.asarray(x)) for x in neighbours], mask.size)
    print(
        f"[rsatoolbox settings] {len(nb)} centres, sphere size {sizes.min()}-{sizes.max()}, {n} conditions, "
        f"each tool repeated for ≥ {seconds:.0f} s; {load()}"
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

    theirs, w_peer, c_peer = repeated(peer, seconds)
    rate_peer = n_slice / np.median(w_peer)
    print(
        f"  rsatoolbox : {len(w_peer)} runs of {n_slice} centres, {w_peer.sum():.1f} s → "
        f"{rate_peer:,.0f} centres/s (cpu {n_slice / np.median(c_peer):,.0f} centres per cpu-s)"
    )
    res = dict(rate_peer=rate_peer)
    diff = 0.0
    # the machine has 2 cores: brainalign works on two batches of centres at once (n_jobs=2)
    for label, kw in [
        ("2 threads", dict(n_jobs=2)),
        ("1 thread", dict(n_jobs=1)),
        ("2 threads, path='rdm_free'", dict(n_jobs=2, path="rdm_free")),
    ]:
        ours, w, c = repeated(lambda kw=kw: searchlight(data, model_rdm, nb, **kw), seconds)
        rate = len(nb) / np.median(w)
        diff = max(diff, np.abs(ours[0, pick] - theirs).max())
        res[label] = rate
        print(
            f"  brainalign {label:27s}: {len(w)} runs of {len(nb)} centres, {w.sum():.1f} s → "
            f"{rate:,.0f} centres/s ({rate / rate_peer:.0f}× rsatoolbox; cpu "
            f"{(c_peer.mean() / n_slice) / (c.mean() / len(nb)):.0f}× per centre)"
        )
    print(
        f"  speed-up {res['2 threads'] / rate_peer:.0f}× wall with 2 threads (goal ≥ 100×); "
        f"max |diff| on the slice {diff:.2e} (goal < 1e-5)"
    )
    res["diff"] = diff
    return res


def nsd_like_mask(shape=(81, 104, 83), target=225_000):
    """An ellipsoid of about ``target`` voxels centred in a func1pt8mm-sized volume (subj01's
    grid; an NSD brain mask holds roughly 200,000-250,000 1.8-mm voxels)."""
    g = np.indices(shape).astype(np.float32)
    c = (np.array(shape) - 1) / 2
    half = np.array(shape) / 2
    r2 = sum(((g[i] - c[i]) / half[i]) ** 2 for i in range(3))
    # the volume of {r2 ≤ s²} grows as s³
    scale = (target / (r2 <= 1).sum()) ** (1 / 3)
    return r2 <= scale**2


def sphere_lists(mask, radius, min_fraction, centre_voxels):
    """volume_neighbourhoods' spheres for chosen centre voxels only (all of them take GBs)."""
    from brainalign.rsa.neighbourhoods import sphere_offsets

    unit_of = np.full(mask.shape, -1, np.int64)
    vox = np.argwhere(mask)
    unit_of[tuple(vox.T)] = np.arange(vox.shape[0])
    off = sphere_offsets(radius)
    pts = vox[centre_voxels][:, None, :] + off[None]
    inside = np.all((pts >= 0) & (pts < np.array(mask.shape)), axis=2)
    units = unit_of[tuple(np.where(inside[..., None], pts, 0).transpose(2, 0, 1))]
    keep = inside & (units >= 0)
    assert (keep.sum(1) / inside.sum(1) >= min_fraction).all()
    return [np.sort(u[k]) for u, k in zip(units, keep, strict=True)], vox.shape[0]


def bench_paper(n_centres: int, n_subsets: int, seconds: float):
    """Per subject: every centre of the mask × 100 subsets of 100 images, from a slice."""
    from scipy.signal import fftconvolve

    from brainalign.rsa.neighbourhoods import VOLUME_RADIUS_VOXELS, sphere_offsets

    radius, min_fraction = VOLUME_RADIUS_VOXELS, 0.5
    mask = nsd_like_mask()
    off = sphere_offsets(radius)
    ball = np.zeros((2 * int(radius) + 1,) * 3)
    ball[tuple((off + int(radius)).T)] = 1
    # fraction of each centre's sphere inside the mask (the volume's edge is far from the mask)
    frac = np.rint(fftconvolve(mask.astype(np.float32), ball, mode="same"))[mask] / len(off)
    usable = np.flatnonzero(frac >= min_fraction)
    rng = np.random.default_rng(4)
    chosen = np.sort(rng.choice(usable, n_centres, replace=False))
    lists, n_units = sphere_lists(mask, radius, min_fraction, chosen)
    nb = Neighbourhoods.from_lists(lists, n_units)
    n = 100 * n_subsets
    betas = rng.standard_normal((n, n_units)).astype(np.float32)
    E = rng.standard_normal((n, 768)).astype(np.float32)
    subsets = np.arange(n).reshape(n_subsets, 100)
    print(
        f"[paper volume searchlight] mask {mask.sum():,} voxels in {mask.shape}, {usable.size:,} centres "
        f"(radius {radius:g}, ≥ {min_fraction:.0%} inside; spheres of mean {nb.sizes.mean():.0f} voxels "
        f"on the slice), one 768-d model; measured: {n_centres:,} random centres × {n_subsets} subsets "
        f"of 100 images, repeated for ≥ {seconds:.0f} s; {load()}"
    )
    for label, kw in [("auto", dict(n_jobs=2)), ("rdm_free", dict(n_jobs=2, path="rdm_free"))]:
        _, w, c = repeated(
            lambda kw=kw: searchlight(betas, E, nb, mode="subsets", subsets=subsets, **kw), seconds
        )
        per = np.median(w) / (n_centres * n_subsets)  # seconds per centre and subset
        full = per * usable.size * 100
        print(
            f"  path={label:9s}: {n_centres * n_subsets / np.median(w):,.0f} centre-subsets/s → one subject "
            f"({usable.size:,} centres × 100 subsets) ≈ {full / 60:.1f} min wall, "
            f"{np.median(c) / (n_centres * n_subsets) * usable.size * 100 / 60:.1f} min cpu (extrapolated)"
        )


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
        "--only", nargs="*", default=["rsatoolbox", "paper", "fsaverage5", "memory", "fsaverage"]
    )
    ap.add_argument("--rsatoolbox-centres", type=int, default=600)
    ap.add_argument("--seconds", type=float, default=5.0, help="each tool runs at least this long")
    ap.add_argument("--paper-centres", type=int, default=4000)
    ap.add_argument("--paper-subsets", type=int, default=3)
    args = ap.parse_args()
    if "rsatoolbox" in args.only:
        bench_rsatoolbox(args.rsatoolbox_centres, args.seconds)
    if "paper" in args.only:
        bench_paper(args.paper_centres, args.paper_subsets, args.seconds)
    if "fsaverage5" in args.only:
        bench_fsaverage5()
    if "memory" in args.only:
        bench_memory()
    if "fsaverage" in args.only:
        bench_fsaverage()


if __name__ == "__main__":
    main()
