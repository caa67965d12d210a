"""Hyper-gradient banded ridge against himalaya's hyper-gradient solver and plain references."""

import warnings

import numpy as np
import pytest

from brainalign.backend import BACKENDS, get_backend
from brainalign.encoding import (
    BandedRidgeEncoder,
    banded_ridge_cv,
    dirichlet_candidates,
    make_folds,
)
from brainalign.encoding import banded as banded_module
from brainalign.encoding.hyper_gradient import pcg
from brainalign.errors import InputError

ALPHAS = np.logspace(-2, 4, 13)
WIDTHS = (20, 8, 12)


def _bands(rng, n=240, t=16, noise=3.0):
    Xs = [rng.standard_normal((n, p)).astype(np.float32) for p in WIDTHS]
    Xs[1] += 0.5 * Xs[0][:, : WIDTHS[1]]  # correlated bands
    Y = sum(
        X @ rng.standard_normal((X.shape[1], t)) * s
        for X, s in zip(Xs, (1.0, 0.3, 0.05), strict=True)
    )
    return Xs, (Y + noise * rng.standard_normal((n, t)) + 2.0).astype(np.float32)


def _cv_mse(Xs, Y, folds, deltas, centre):
    """Mean over folds of the validation MSE at per-target deltas, by dense solves (float64)."""
    X = np.hstack(Xs).astype(np.float64)
    Y = Y.astype(np.float64)
    band_of = np.repeat(np.arange(len(Xs)), [x.shape[1] for x in Xs])
    out = np.zeros(Y.shape[1])
    for tr, va in folds:
        mx = X[tr].mean(0) if centre else 0.0
        my = Y[tr].mean(0) if centre else np.zeros(Y.shape[1])
        Xtr, Xva = X[tr] - mx, X[va] - mx
        for j in range(Y.shape[1]):
            A = Xtr.T @ Xtr + np.diag(np.exp(-deltas[band_of, j]))
            b = np.linalg.solve(A, Xtr.T @ (Y[tr, j] - my[j]))
            out[j] += np.mean((Xva @ b - (Y[va, j] - my[j])) ** 2) / len(folds)
    return out


def test_pcg_solves_many_systems(rng):
    """Each column its own system; solved columns leave the iteration, the others go on."""
    xp = get_backend("numpy")
    p, t = 30, 7
    F = rng.standard_normal((60, p))
    G = (F.T @ F).astype(np.float32)
    d = rng.uniform(0.1, 10, (p, t)).astype(np.float32)
    d[:, 0] = 1e4  # nearly diagonal: solved at once
    B = rng.standard_normal((p, t)).astype(np.float32)
    seen = []

    def operators(cols):
        dc = d if cols is None else d[:, cols]
        seen.append(t if cols is None else len(cols))
        return (lambda P: G @ P + dc * P), (lambda R: R / (np.diag(G)[:, None] + dc))

    X, n_iter = pcg(xp, operators, B, None, 1e-6, 200)
    for j in range(t):
        ref = np.linalg.solve(G.astype(np.float64) + np.diag(d[:, j]), B[:, j])
        np.testing.assert_allclose(X[:, j], ref, rtol=1e-4, atol=1e-5)
    assert 0 < n_iter < 200
    assert seen[0] == t and min(seen) < t


@pytest.mark.filterwarnings("ignore:y_true has to be zero-mean")
def test_equals_himalaya_hyper_gradient(rng):
    """Same start, folds and number of steps as himalaya's ``MultipleKernelRidgeCV(solver=
    "hyper_gradient")`` with exact inner solves: the same deltas and held-out predictions."""
    kernel_ridge = pytest.importorskip("himalaya.kernel_ridge")
    Xs, Y = _bands(rng)
    Xs = [X - X.mean(0) for X in Xs]  # himalaya's kernel solver fits no intercept
    Y = Y - Y.mean(0)
    Xtr, Ytr, Xte = [X[:200] for X in Xs], Y[:200], [X[200:] for X in Xs]
    folds = make_folds(200, 4)
    gammas = dirichlet_candidates(3, 6, concentration=(1.0,), random_state=1)
    kw = dict(gammas=gammas, alphas=ALPHAS, cv=folds, fit_intercept=False)
    start = banded_ridge_cv(Xtr, Ytr, **kw)
    ours = banded_ridge_cv(
        Xtr, Ytr, solver="hyper_gradient", max_iter=4, tol=None, step="lipschitz", **kw
    )
    np.testing.assert_allclose(ours.hyper_cv_scores[0], start.cv_scores.max(0), atol=1e-5)

    Ks = np.stack([X.astype(np.float64) @ X.T.astype(np.float64) for X in Xtr])
    model = kernel_ridge.MultipleKernelRidgeCV(
        kernels="precomputed",
        solver="hyper_gradient",
        cv=folds,
        fit_intercept=False,
        solver_params=dict(
            max_iter=4,
            tol=None,
            initial_deltas=start.deltas,
            progress_bar=False,
            kernel_ridge_method="conjugate_gradient",
            max_iter_inner_dual=200,
            cg_tol=1e-10,
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Ks, Ytr.astype(np.float64))
    # ours keeps each target's best evaluated iterate, himalaya its last: equal where the CV loss
    # fell at every step (himalaya's 1/L steps are small, so almost everywhere)
    falling = np.all(np.diff(ours.hyper_cv_scores, axis=0) >= 0, axis=0)
    assert falling.mean() >= 0.9
    np.testing.assert_allclose(ours.deltas[:, falling], model.deltas_[:, falling], atol=1e-4)
    Kte = np.stack(
        [a.astype(np.float64) @ b.T.astype(np.float64) for a, b in zip(Xte, Xtr, strict=True)]
    )
    pred = np.asarray(model.predict(Kte))
    np.testing.assert_allclose(ours.predict(Xte)[:, falling], pred[:, falling], atol=1e-3)
    # and the steps went somewhere: most targets moved off the random search's grid
    assert (np.abs(ours.deltas - start.deltas).max(0) > 1e-3).mean() > 0.5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("step", ["lipschitz", "adaptive"])
def test_refinement_is_never_worse_and_its_scores_are_real(rng, backend, step):
    Xs, Y = _bands(rng)
    folds = make_folds(240, 5)
    kw = dict(n_iter=5, alphas=ALPHAS, cv=folds, backend=backend)
    start = banded_ridge_cv(Xs, Y, **kw)
    res = banded_ridge_cv(
        Xs, Y, solver="hyper_gradient", max_iter=6, tol=None, step=step, block_size=6, **kw
    )
    var = Y.astype(np.float64).var(0)
    # the reported path is the true CV score of the chosen deltas (dense solves, with intercept)
    direct = 1 - _cv_mse(Xs, Y, folds, res.deltas, centre=True) / var
    np.testing.assert_allclose(np.nanmax(res.hyper_cv_scores, 0), direct, atol=2e-5)
    # never below where it started, and above it for most targets
    start_score = 1 - _cv_mse(Xs, Y, folds, start.deltas, centre=True) / var
    assert (direct >= start_score - 1e-6).all()
    assert (direct > start_score + 1e-6).mean() > 0.5
    # the refit on all images is the ridge at the chosen penalties
    X = np.hstack(Xs).astype(np.float64)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    band_of = np.repeat(np.arange(3), WIDTHS)
    for j in (0, 7):
        A = Xc.T @ Xc + np.diag(np.exp(-res.deltas[band_of, j]))
        np.testing.assert_allclose(res.coef[:, j], np.linalg.solve(A, Xc.T @ Yc[:, j]), atol=2e-4)
    np.testing.assert_allclose(res.gammas.sum(0), 1.0)
    np.testing.assert_allclose(np.log(res.gammas / res.alphas), res.deltas)


def test_estimator_and_held_out_scores(rng):
    Xs, Y = _bands(rng, n=300)
    Xtr, Ytr, Xte, Yte = [X[:240] for X in Xs], Y[:240], [X[240:] for X in Xs], Y[240:]
    est = BandedRidgeEncoder(n_iter=5, alphas=ALPHAS, solver="hyper_gradient", max_iter=3)
    est.fit(Xtr, Ytr)
    res = banded_ridge_cv(
        Xtr, Ytr, n_iter=5, alphas=ALPHAS, solver="hyper_gradient", max_iter=3, test=(Xte, Yte)
    )
    P = est.predict(Xte)
    ss = ((Yte - Yte.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(res.test_r2, 1 - ((Yte - P) ** 2).sum(0) / ss, atol=1e-5)
    Pc, Yc = P - P.mean(0), Yte - Yte.mean(0)
    np.testing.assert_allclose(
        res.test_r2_split.sum(0), 1 - ((Yc - Pc) ** 2).sum(0) / ss, atol=1e-5
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"solver": "newton"}, "solver"),
        ({"solver": "hyper_gradient", "max_iter": -1}, "max_iter"),
        ({"solver": "hyper_gradient", "tol": 0}, "tol"),
        ({"solver": "hyper_gradient", "step": "newton"}, "step"),
    ],
)
def test_bad_input(rng, kwargs, match):
    Xs, Y = _bands(rng, n=60, t=2)
    with pytest.raises(InputError, match=match):
        banded_ridge_cv(Xs, Y, n_iter=2, alphas=ALPHAS, **kwargs)


def test_too_many_features_is_refused(rng, monkeypatch):
    monkeypatch.setattr(banded_module, "_HYPER_MAX_FEATURES", 30)
    Xs, Y = _bands(rng, n=60, t=2)
    with pytest.raises(InputError, match="40 features.*random_search"):
        banded_ridge_cv(Xs, Y, n_iter=2, alphas=ALPHAS, solver="hyper_gradient")
