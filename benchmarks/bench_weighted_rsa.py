"""Weighted RSA benchmark (issue 22): brainalign vs rsatoolbox's ``bootstrap_crossval`` of a
``ModelWeighted`` (fit_regress_nn) and each model alone, on the same data, folds and draws.

rsatoolbox draws its bootstrap samples and folds with ``np.random``; the same calls are replayed
to hand brainalign the same draws (``weighted_rsa(..., draws=...)``), so the two compute the same
numbers (printed: the largest difference of the sample scores and of the variances). Run:
python benchmarks/bench_weighted_rsa.py [--stimuli 40] [--subjects 8] [--samples 20]

rsatoolbox's non-negative least squares (``_nn_least_squares``) loops forever on some folds of
larger problems (it re-selects an already free weight while the gradient stays above 100 ε in
absolute terms; seen at 70 stimuli × 8 subjects): ``--timeout`` stops it and says so.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stimuli", type=int, default=40)
    ap.add_argument("--subjects", type=int, default=8)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args()
    from rsatoolbox.inference import bootstrap_crossval
    from rsatoolbox.model import ModelFixed, ModelWeighted
    from rsatoolbox.model.fitter import fit_mock, fit_regress_nn
    from rsatoolbox.rdm import RDMs
    from tests.rsa.test_weighted_rsa import replay_rsatoolbox_draws

    wr = importlib.import_module("brainalign.rsa.weighted_rsa")
    rng = np.random.default_rng(0)
    n, S, N = args.stimuli, args.subjects, args.samples
    P = n * (n - 1) // 2
    M = rng.random((3, P)) + 0.5
    D = 0.7 * M[0] + 0.3 * M[1] + 0.3 * rng.standard_normal((S, P)) + 2
    models = [ModelWeighted("weighted", RDMs(M))] + [
        ModelFixed(f"m{i}", RDMs(m[None])) for i, m in enumerate(M)
    ]
    kp = wr.default_k((1 - 1 / np.e) * n)
    kr = wr.default_k_subjects((1 - 1 / np.e) * S)
    draws = replay_rsatoolbox_draws(RDMs(D), N, 2, kp, kr, seed=1)
    t = time.perf_counter()
    ours = wr.weighted_rsa(M, D, method="pearson", k_subjects=kr, k_stimuli=kp, draws=draws)
    t_ours = time.perf_counter() - t
    print(
        f"{n} stimuli, {S} subjects, {N} samples x 2 fold assignments of {kp} x {kr} folds "
        f"(threads: {os.environ.get('OMP_NUM_THREADS', 'default')})"
    )
    print(f"brainalign  {t_ours:8.2f} s")

    def stop(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, stop)
    signal.alarm(args.timeout)
    np.random.seed(1)
    t = time.perf_counter()
    try:
        res = bootstrap_crossval(
            models,
            RDMs(D),
            method="corr",
            fitter=[fit_regress_nn] + [fit_mock] * 3,
            k_pattern=kp,
            k_rdm=kr,
            N=N,
            n_cv=2,
        )
    except TimeoutError:
        print(f"rsatoolbox  stopped after {args.timeout} s (its NNLS loop did not end)")
        return
    signal.alarm(0)
    t_rsa = time.perf_counter() - t
    ok = ~np.isnan(res.evaluations[:, 0, 0, 0])
    print(f"rsatoolbox  {t_rsa:8.2f} s   ratio {t_rsa / t_ours:.1f}x")
    print(
        f"max |difference|: sample scores {np.nanmax(np.abs(ours.samples - res.evaluations[ok])):.1e}, "
        f"variances {np.max(np.abs(ours.variance - res.variances[:4, :4])):.1e}"
    )


if __name__ == "__main__":
    main()
