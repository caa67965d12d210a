"""Cross-validated weighted RSA at every searchlight centre (issue 22): brainalign vs rsatoolbox.

On fsaverage5's discs (20,484 centres, the pipeline's radius) with ``--images`` random images and
three models (768-, 80- and 300-dimensional features, as MPNet, categories and GloVe), the same
stimulus folds: brainalign's ``weighted_searchlight`` over every centre, by its two routes (one
brain RDM per centre summed over each fold's pairs, and one RDM-free pass per fold's block), and
rsatoolbox on a random sample of centres (``--rsa-centres``), each centre's RDM by ``calc_rdm``
and the combination by ``ModelWeighted`` + ``fit_regress_nn`` through ``crossval`` on the same
training and test sets; its time is extrapolated to every centre. Prints the times, the ratio
and the largest difference of the held-out scores at the sampled centres.

    python benchmarks/bench_weighted_searchlight.py [--images 120] [--rsa-centres 200]
"""

from __future__ import annotations

import argparse
import signal
import time
import warnings

import numpy as np

from brainalign.datasets import load_fsaverage
from brainalign.rsa import SURFACE_RADIUS_MM, surface_neighbourhoods
from brainalign.rsa.weighted_searchlight import weighted_searchlight


def data(n: int, n_units: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    models = {
        "mpnet": rng.standard_normal((n, 768)),
        "categories": (rng.random((n, 80)) < 0.05) + 0.01 * rng.random((n, 80)),
        "glove": rng.standard_normal((n, 300)),
    }
    latent = models["mpnet"][:, :20] + models["categories"][:, :20]
    mix = rng.standard_normal((20, n_units)) * (rng.random(n_units) < 0.3)
    betas = (latent @ mix + 2.0 * rng.standard_normal((n, n_units))).astype(np.float32)
    return betas, models


def rsatoolbox_scores(betas, models, nb, centres, folds, timeout: float):
    """rsatoolbox's held-out score of the weighted combination at ``centres`` (NaN where it did
    not finish), the time of the centres that finished, and how many did not.

    rsatoolbox's ``_nn_least_squares`` loops forever on some fits (it re-selects a weight that
    is already free while the gradient stays above 100 ε): a centre taking over ``timeout``
    seconds is stopped and left out of the time, which favours rsatoolbox."""
    from rsatoolbox.data import Dataset
    from rsatoolbox.inference import crossval
    from rsatoolbox.model import ModelWeighted
    from rsatoolbox.model.fitter import fit_regress_nn
    from rsatoolbox.rdm import RDMs, calc_rdm

    n = betas.shape[0]
    model_rdms = RDMs(
        np.stack(
            [calc_rdm(Dataset(X), method="correlation").dissimilarities[0] for X in models.values()]
        ),
        pattern_descriptors={"index": np.arange(n)},
    )
    model = ModelWeighted("weighted", model_rdms)

    def stop(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, stop)
    out = np.full(len(centres), np.nan)
    spent, stuck = 0.0, 0
    for i, c in enumerate(centres):
        t0 = time.perf_counter()
        rdm = calc_rdm(Dataset(betas[:, nb[c]].astype(np.float64)), method="correlation")
        rdm.pattern_descriptors["index"] = np.arange(n)
        train = [(rdm.subset_pattern("index", f.train_stimuli), f.train_stimuli) for f in folds]
        test = [(rdm.subset_pattern("index", f.test_stimuli), f.test_stimuli) for f in folds]
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = crossval(
                    model, rdm, train, test, method="corr", fitter=fit_regress_nn,
                    calc_noise_ceil=False,
                )  # fmt: skip
        except TimeoutError:
            stuck += 1
            continue
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        spent += time.perf_counter() - t0
        out[i] = np.nanmean(result.evaluations[0])  # (models, folds): the mean over folds
    return out, spent, stuck


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--rsa-centres", type=int, default=200)
    ap.add_argument("--k", type=int, default=5, help="stimulus folds")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per rsatoolbox centre")
    args = ap.parse_args(argv)
    mesh = load_fsaverage("fsaverage5")
    nb = surface_neighbourhoods(
        [mesh["left"], mesh["right"]], radius=SURFACE_RADIUS_MM, verbose=False
    )
    betas, models = data(args.images, nb.n_units)
    print(
        f"weighted searchlight: {len(nb)} centres (median {int(np.median(nb.sizes))} vertices), "
        f"{args.images} images, models {[m.shape[1] for m in models.values()]}, {args.k} folds"
    )
    times = {}
    res = {}
    for path, label in (("auto", "one RDM per centre"), ("rdm_free", "RDM-free per block")):
        t0 = time.perf_counter()
        res[path] = weighted_searchlight(
            betas, models, nb, k_stimuli=args.k, path=path, reduced=["mpnet"], verbose=False
        )
        times[path] = time.perf_counter() - t0
        print(f"brainalign ({label}): {times[path]:.1f} s")
    diff = np.nanmax(np.abs(res["auto"].score - res["rdm_free"].score))
    print(f"routes agree to {diff:.1e}")
    if not args.rsa_centres:
        return
    centres = np.random.default_rng(1).choice(len(nb), args.rsa_centres, replace=False)
    ref, t_ref, stuck = rsatoolbox_scores(
        betas, models, nb, centres, res["auto"].folds, args.timeout
    )
    done = len(centres) - stuck
    t_all = t_ref / max(done, 1) * len(nb)
    diff = np.nanmax(np.abs(ref - res["auto"].score[centres]))
    print(
        f"rsatoolbox: {t_ref:.1f} s for {done} centres ({stuck} stopped after {args.timeout:g} s "
        f"in its NNLS loop, left out) → {t_all:.0f} s for all ({t_all / 60:.1f} min); brainalign "
        f"{t_all / times['auto']:.0f}× faster; held-out scores agree to {diff:.1e}"
    )


if __name__ == "__main__":
    main()
