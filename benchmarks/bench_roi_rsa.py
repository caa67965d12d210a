"""ROI RSA benchmark (issue 4 §5, last bullet): the paper's subsets, brainalign vs a
straightforward implementation of the paper's code path, on the same synthetic data.

The straightforward path is what the paper's code does: a full correlation-distance RDM per ROI
and model with ``scipy.spatial.distance.pdist``, the 100-image sub-RDM of each subset cut out of
it, ``np.corrcoef`` per subset, the mean over subsets. brainalign computes the same numbers
without any full RDM. Run:  python benchmarks/bench_roi_rsa.py [--images 3000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.spatial.distance import pdist, squareform

from brainalign.rsa import make_subsets, roi_rsa


def paper_path(betas, models, rois, subsets):
    out = np.zeros((len(rois), len(models)))
    iu = np.triu_indices(subsets.shape[1], 1)
    model_full = {k: squareform(pdist(v, "correlation")) for k, v in models.items()}
    for r, mask in enumerate(rois.values()):
        X = betas[:, mask]
        X = X[:, ~np.isnan(X).any(0)]
        brain_full = squareform(pdist(X, "correlation"))
        for m, name in enumerate(models):
            rs = [
                np.corrcoef(brain_full[np.ix_(s, s)][iu], model_full[name][np.ix_(s, s)][iu])[0, 1]
                for s in subsets
            ]
            out[r, m] = np.mean(rs)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.images
    sizes = {"early": 2500, "ventral": 1800, "lateral": 1200, "parietal": 900}
    U = sum(sizes.values())
    betas = rng.standard_normal((n, U)).astype(np.float32)
    models = {
        "mpnet": rng.standard_normal((n, 768)),
        "glove": rng.standard_normal((n, 50)),
        "multihot": (rng.random((n, 80)) < 0.05) + 0.01 * rng.random((n, 80)),
    }
    betas[:, :2500] += (models["mpnet"] @ rng.standard_normal((768, 2500)) / 28).astype(np.float32)
    rois, start = {}, 0
    for name, k in sizes.items():
        m = np.zeros(U, bool)
        m[start : start + k] = True
        rois[name] = m
        start += k
    subsets = make_subsets(n, 100, random_state=0)
    print(
        f"{n} images, {len(subsets)} subsets of 100, ROIs {sizes}, 3 models; load average {os.getloadavg()[0]:.1f}"
    )
    t = time.perf_counter()
    c = time.process_time()
    ref = paper_path(betas.astype(np.float64), models, rois, subsets)
    t_ref, c_ref = time.perf_counter() - t, time.process_time() - c
    for backend in ("numpy", "torch"):
        t = time.perf_counter()
        c = time.process_time()
        ours = roi_rsa(betas, models, rois, subsets=subsets, backend=backend).to_numpy()
        t_ours, c_ours = time.perf_counter() - t, time.process_time() - c
        print(
            f"  {backend:5s}: brainalign {t_ours:.2f} s (cpu {c_ours:.2f}) vs paper path {t_ref:.2f} s (cpu {c_ref:.2f}) → "
            f"{t_ref / t_ours:.1f}× wall, {c_ref / c_ours:.1f}× cpu; max |diff| {np.abs(ours - ref).max():.1e}"
        )
    print("  scores (brainalign, numpy):")
    print(roi_rsa(betas, models, rois, subsets=subsets).round(4).to_string())


if __name__ == "__main__":
    main()
