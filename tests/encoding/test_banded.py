"""Banded ridge against himalaya's BandedRidgeCV (same candidates, same folds) and plain references."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from brainalign.backend import BACKENDS
from brainalign.encoding import (
    BandedRidgeEncoder,
    RowView,
    banded_ridge_cv,
    dirichlet_candidates,
    make_folds,
    r2_split,
    ridge_cv,
)
from brainalign.errors import InputError

ALPHAS = np.logspace(-2, 4, 7)


def _bands(rng, n, widths=(12, 5, 8), scales=(1.0, 0.4, 0.0), t=12, offset=3.0):
    Xs = [(rng.standard_normal((n, p)) + 0.5).astype(np.float32) for p in widths]
    Y = sum(X @ rng.standard_normal((X.shape[1], t)) * s for X, s in zip(Xs, scales, strict=True))
    Y = (Y + 2.0 * rng.standard_normal((n, t)) + offset).astype(np.float32)
    return Xs, Y


def _split(Xs, Y, n_train):
    return [X[:n_train] for X in Xs], Y[:n_train], [X[n_train:] for X in Xs], Y[n_train:]


@pytest.mark.parametrize(
    ("n", "widths"), [(160, (12, 5, 8)), (100, (40, 15, 30))], ids=["primal", "dual"]
)
@pytest.mark.filterwarnings("ignore:Solving banded ridge is slower")
@pytest.mark.filterwarnings("ignore:y_true has to be zero-mean")
def test_equals_himalaya_banded_ridge_cv(rng, n, widths):
    ridge_mod = pytest.importorskip("himalaya.ridge")
    scoring = pytest.importorskip("himalaya.scoring")
    Xs, Y = _bands(rng, n, widths=widths)
    n_train = n * 3 // 5  # dual: more features than training images
    Xtr, Ytr, Xte, Yte = _split(Xs, Y, n_train)
    gammas = dirichlet_candidates(3, 6, random_state=2)
    folds = make_folds(n_train, 3)
    res = banded_ridge_cv(Xtr, Ytr, gammas=gammas, alphas=ALPHAS, cv=folds, test=(Xte, Yte))
    ref = ridge_mod.BandedRidgeCV(
        groups="input",
        solver_params=dict(n_iter=gammas, alphas=ALPHAS, progress_bar=False),
        cv=folds,
        fit_intercept=True,
    ).fit(Xtr, Ytr)
    pred = ref.predict(Xte)
    # the same candidate and penalty per target, the same held-out scores
    np.testing.assert_allclose(res.deltas, ref.deltas_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.test_r2, scoring.r2_score(Yte, pred), atol=1e-4)
    np.testing.assert_allclose(res.coef, ref.coef_, atol=1e-4 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(res.intercept, ref.intercept_, atol=1e-3)
    np.testing.assert_allclose(res.predict(Xte), pred, atol=1e-3)
    # split R² of the band predictions equals himalaya's r2_score_split on the same arrays
    parts = res.predict(Xte, split=True)
    parts = parts - parts.mean(1, keepdims=True)
    yc = Yte - Yte.mean(0)
    np.testing.assert_allclose(
        r2_split(yc, parts), scoring.r2_score_split(yc, parts), rtol=1e-4, atol=1e-5
    )


def test_one_band_is_ridge_cv(rng):
    Xs, Y = _bands(rng, 90, widths=(10,), scales=(0.5,))
    res = banded_ridge_cv(Xs, Y, gammas=[[1.0]], alphas=ALPHAS, cv=4)
    ref = ridge_cv(Xs[0], Y, ALPHAS, cv=4)
    np.testing.assert_allclose(res.alphas, ref.alphas)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-4, atol=1e-5)


def test_refit_equals_sklearn_ridge_on_scaled_bands(rng):
    Xs, Y = _bands(rng, 100)
    res = banded_ridge_cv(Xs, Y, n_iter=5, alphas=ALPHAS, cv=3)
    X = np.concatenate(Xs, 1).astype(np.float64)
    for j in range(0, Y.shape[1], 5):
        s = np.concatenate(
            [
                np.full(X_.shape[1], np.exp(d / 2))
                for X_, d in zip(Xs, res.deltas[:, j], strict=True)
            ]
        )
        ref = Ridge(alpha=1.0).fit(X * s, Y[:, j].astype(np.float64))
        np.testing.assert_allclose(res.coef[:, j], ref.coef_ * s, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_and_blocks_agree(rng, backend):
    Xs, Y = _bands(rng, 120, t=9)
    Xtr, Ytr, Xte, Yte = _split(Xs, Y, 90)
    base = banded_ridge_cv(Xtr, Ytr, n_iter=5, alphas=ALPHAS, test=(Xte, Yte))
    res = banded_ridge_cv(
        Xtr,
        RowView(Ytr, np.arange(90)),
        n_iter=5,
        alphas=ALPHAS,
        test=(Xte, Yte),
        backend=backend,
        block_size=4,
        return_coef=False,
    )
    np.testing.assert_array_equal(res.candidate, base.candidate)
    np.testing.assert_allclose(res.test_r2, base.test_r2, atol=1e-5)
    np.testing.assert_allclose(res.test_r2_split, base.test_r2_split, atol=1e-5)
    assert res.coef is None


def test_zero_weight_band_gets_no_coefficients(rng):
    Xs, Y = _bands(rng, 100)
    res = banded_ridge_cv(Xs, Y, gammas=[[0.5, 0.5, 0.0]], alphas=ALPHAS, cv=3)
    assert np.all(res.coef[17:] == 0)
    assert np.all(np.isneginf(res.deltas[2]))
    # the same as the two-band model
    two = banded_ridge_cv(Xs[:2], Y, gammas=[[0.5, 0.5]], alphas=ALPHAS, cv=3)
    np.testing.assert_allclose(res.coef[:17], two.coef, rtol=1e-4, atol=1e-5)


def test_split_r2_sums_to_centred_r2(rng):
    Xs, Y = _bands(rng, 150)
    Xtr, Ytr, Xte, Yte = _split(Xs, Y, 110)
    res = banded_ridge_cv(Xtr, Ytr, n_iter=4, alphas=ALPHAS, test=(Xte, Yte))
    pred = res.predict(Xte)
    pc, yc = pred - pred.mean(0), Yte - Yte.mean(0)
    r2_centred = 1 - ((yc - pc) ** 2).sum(0) / (yc**2).sum(0)
    np.testing.assert_allclose(res.test_r2_split.sum(0), r2_centred, atol=1e-4)
    # the band that drives the targets holds most of the split
    assert np.all(res.test_r2_split[0] > res.test_r2_split[2])


def test_estimator(rng):
    Xs, Y = _bands(rng, 100, t=3)
    est = BandedRidgeEncoder(n_iter=4, alphas=ALPHAS, cv=3).fit(Xs, Y)
    assert est.deltas_.shape == (3, 3)
    assert est.predict(Xs).shape == Y.shape
    assert est.predict(Xs, split=True).shape == (3, *Y.shape)
    assert est.score(Xs, Y) > 0.3
    one = BandedRidgeEncoder(n_iter=4, alphas=ALPHAS, cv=3).fit(Xs, Y[:, 0])
    assert one.predict(Xs).shape == (100,)
    assert est.score_split(Xs, Y).shape == (3, 3)


def test_nan_target_dropped(rng):
    Xs, Y = _bands(rng, 80, t=4)
    Y[3, 1] = np.nan
    with pytest.warns(UserWarning, match="contain NaN"):
        res = banded_ridge_cv(Xs, Y, n_iter=3, alphas=ALPHAS, cv=3)
    assert res.nan_targets.tolist() == [False, True, False, False]
    assert np.isnan(res.coef[:, 1]).all() and res.candidate[1] == -1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(gammas=[[1.0, 0.0]]), "gammas: expected an"),
        (dict(gammas=[[-1.0, 1.0, 1.0]]), "gammas: band weights"),
        (dict(alphas=[0.0, 1.0]), "alphas"),
        (dict(cv=1), "cv=1"),
        (dict(test=([np.zeros((5, 12))], np.zeros((5, 12)))), "band widths"),
        (dict(block_size=0), "block_size"),
    ],
)
def test_bad_input(rng, kwargs, match):
    Xs, Y = _bands(rng, 40)
    with pytest.raises(InputError, match=match):
        banded_ridge_cv(Xs, Y, **kwargs)


def test_bad_bands(rng):
    Xs, Y = _bands(rng, 40)
    with pytest.raises(InputError, match="list of feature bands"):
        banded_ridge_cv(np.zeros((40, 3)), Y)
    with pytest.raises(InputError, match="different numbers of images"):
        banded_ridge_cv([Xs[0], Xs[1][:30]], Y)
    with pytest.raises(InputError, match="different numbers of images"):
        banded_ridge_cv(Xs, Y[:30])
