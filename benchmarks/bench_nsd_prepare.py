"""Streaming NSD preparation (brainalign) vs the paper's in-memory preparation, same data.

The paper's code (visuo_llm ``get_betas`` + ``average_over_conditions``) loads every session,
z-scores it with scipy, concatenates all sessions in memory and takes the nanmean over each
image's 3 trials. brainalign streams one session at a time into an on-disk cache. This script
writes a one-subject virtual NSD, runs both, and prints wall time, peak traced memory
(tracemalloc: numpy buffers included, memory maps excluded), their ratios and whether the
results agree (max abs difference).

    python benchmarks/bench_nsd_prepare.py [--sessions 16] [--trials 150]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats

from brainalign.datasets import make_virtual_nsd, prepare_nsd


def paper_style(root: Path, subject: int = 1) -> np.ndarray:
    """The paper's approach: everything in memory (float64), then nanmean per image."""
    tsv = pd.read_csv(root / f"nsddata/ppdata/subj{subject:02d}/behav/responses.tsv", sep="\t")
    beta_dir = root / f"nsddata_betas/ppdata/subj{subject:02d}/fsaverage/betas_fithrf_GLMdenoise_RR"
    sessions = []
    for sess in sorted(tsv["SESSION"].unique()):
        data = np.vstack(
            [
                nib.load(beta_dir / f"{h}.betas_session{sess:02d}.mgh").get_fdata().squeeze()
                for h in ("lh", "rh")
            ]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sessions.append(stats.zscore(data, axis=1))
    betas = np.concatenate(sessions, axis=1)
    ids = tsv["73KID"].to_numpy()
    uniq, counts = np.unique(ids, return_counts=True)
    kept = uniq[counts == 3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.stack([np.nanmean(betas[:, ids == k], axis=1) for k in kept]).astype(np.float32)


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--trials", type=int, default=150, help="trials per session")
    args = parser.parse_args()
    n_per = args.sessions * args.trials // 3
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        root = make_virtual_nsd(
            tmp / "nsd",
            n_subjects=1,
            n_shared=min(100, n_per // 2),
            n_unique=n_per - min(100, n_per // 2),
            n_sessions=args.sessions,
            spaces=("fsaverage",),
        )
        print(
            f"virtual NSD: 1 subject, {args.sessions} sessions × {args.trials} trials × 20484 "
            f"vertices ({time.perf_counter() - t0:.1f} s to write)"
        )
        session_mb = 20484 * args.trials * 4 / 1e6
        ref, t_ref, m_ref = measure(lambda: paper_style(root))
        prep, t_ba, m_ba = measure(lambda: prepare_nsd(root, 1, cache_dir=tmp / "cache"))
        ours = np.load(prep.betas_path, mmap_mode="r")
        _, t_cached, _ = measure(lambda: prepare_nsd(root, 1, cache_dir=tmp / "cache"))
    # (``ours`` stays readable: the mapping outlives the deleted folder on POSIX)
    diff = float(np.nanmax(np.abs(np.asarray(ours) - ref)))
    same_nan = bool(np.array_equal(np.isnan(ours), np.isnan(ref)))
    print(f"one session = {session_mb:.1f} MB (float32)")
    print(f"paper-style in memory : {t_ref:7.2f} s   peak {m_ref / 1e6:8.1f} MB")
    print(f"brainalign streaming  : {t_ba:7.2f} s   peak {m_ba / 1e6:8.1f} MB")
    print(f"brainalign from cache : {t_cached:7.3f} s")
    print(f"ratio time paper/brainalign = {t_ref / t_ba:.2f}, peak memory = {m_ref / m_ba:.1f}x")
    print(f"agree: max |diff| = {diff:.2e}, same NaNs = {same_nan} -> {diff < 1e-5 and same_nan}")
    return 0 if diff < 1e-5 and same_nan else 1


if __name__ == "__main__":
    raise SystemExit(main())
