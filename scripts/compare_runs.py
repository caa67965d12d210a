"""Compare two run folders: every table in tables/ and every array in arrays/.

    python scripts/compare_runs.py RUN_A RUN_B [--atol 1e-10]

Prints one line per file (identical, equal within atol with the largest difference, or
different) and exits 1 when any file differs or is missing from one run. Used to show that a
refactoring leaves a fixed configuration's results unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def _compare_arrays(a: np.ndarray, b: np.ndarray, atol: float) -> tuple[str, float]:
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return "different", float("inf")
    if a.dtype.kind not in "fc":
        return ("identical", 0.0) if np.array_equal(a, b) else ("different", float("inf"))
    if np.array_equal(a, b, equal_nan=True):
        return "identical", 0.0
    same_nan = np.array_equal(np.isnan(a), np.isnan(b))
    diff = float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    return ("close" if same_nan and diff <= atol else "different"), diff


def _compare_tables(a: pd.DataFrame, b: pd.DataFrame, atol: float) -> tuple[str, float]:
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return "different", float("inf")
    worst, status = 0.0, "identical"
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype.kind in "fc" and y.dtype.kind in "fc":
            s, d = _compare_arrays(x.astype(np.float64), y.astype(np.float64), atol)
        else:
            s, d = ("identical", 0.0) if list(x) == list(y) else ("different", float("inf"))
        if s == "different":
            return s, d
        if s == "close":
            status, worst = "close", max(worst, d)
    return status, worst


def compare_runs(run_a: Path, run_b: Path, atol: float = 1e-10) -> bool:
    """Print the comparison of two run folders; True when every file agrees within ``atol``."""
    ok = True
    for folder, pattern in (("tables", "*.csv"), ("arrays", "*.npy")):
        names = sorted(
            {p.name for p in (run_a / folder).glob(pattern)}
            | {p.name for p in (run_b / folder).glob(pattern)}
        )
        for name in names:
            pa, pb = run_a / folder / name, run_b / folder / name
            if not (pa.exists() and pb.exists()):
                print(f"{folder}/{name}: only in {'A' if pa.exists() else 'B'}")
                ok = False
                continue
            if pattern == "*.csv":
                status, diff = _compare_tables(pd.read_csv(pa), pd.read_csv(pb), atol)
            else:
                status, diff = _compare_arrays(
                    np.load(pa, allow_pickle=False), np.load(pb, allow_pickle=False), atol
                )
            ok &= status != "different"
            print(f"{folder}/{name}: {status}" + (f" (max |diff| {diff:.2e})" if diff else ""))
    print("all equal" if ok else "DIFFERENCES FOUND")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--atol", type=float, default=1e-10)
    args = parser.parse_args()
    sys.exit(0 if compare_runs(args.run_a, args.run_b, args.atol) else 1)


if __name__ == "__main__":
    main()
