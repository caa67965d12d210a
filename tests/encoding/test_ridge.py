"""Ridge solvers against scikit-learn, a brute-force CV loop and an independent fracridge mapping."""

import tracemalloc
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, ShuffleSplit

from brainalign.backend import BACKENDS
from brainalign.encoding import (
    DEFAULT_ALPHAS,
    RowView,
    edge_counts,
    fracridge_cv,
    fraction_to_alpha,
    make_folds,
    pearson_r,
    ridge_cv,
    ridge_fit,
)
from brainalign.errors import BrainAlignError, InputError

ALPHAS = np.logspace(-1, 4, 8)


def _data(rng, n, p, t, noise=3.0, offset=2.0):
    X = (rng.standard_normal((n, p)) + 1.0).astype(np.float32)
    Y = (
        X @ rng.standard_normal((p, t)) * 0.3 + noise * rng.standard_normal((n, t)) + offset
    ).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(150, 20, 6), (40, 90, 4)], ids=["primal", "dual"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_fit_equals_sklearn(rng, backend, shape, fit_intercept):
    X, Y = _data(rng, *shape)
    alphas = np.array([0.1, 1.0, 10.0, 100.0, 1000.0, 3.0])[: shape[2]]
    res = ridge_fit(X, Y, alphas, fit_intercept=fit_intercept, backend=backend)
    for j, a in enumerate(alphas):
        ref = Ridge(alpha=a, fit_intercept=fit_intercept).fit(
            X.astype(float), Y[:, j].astype(float)
        )
        np.testing.assert_allclose(
            res.coef[:, j], ref.coef_, rtol=2e-4, atol=2e-5 * np.abs(ref.coef_).max()
        )
        np.testing.assert_allclose(
            res.predict(X)[:, j], ref.predict(X.astype(float)), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(103, 20, 6), (50, 80, 4)], ids=["primal", "dual"])
def test_kfold_selects_brute_force_alpha(rng, backend, shape):
    X, Y = _data(rng, *shape)
    res = ridge_cv(X, Y, ALPHAS, cv=5, backend=backend, block_size=3)
    _assert_sklearn_kfold_choice(res, X, Y, ALPHAS)


def _assert_sklearn_kfold_choice(res, X, Y, alphas):
    """``res`` scores, chooses and refits as scikit-learn ``Ridge`` over ``KFold(5)`` would."""
    X64, Y64 = X.astype(float), Y.astype(float)
    mse = np.zeros((len(alphas), Y.shape[1]))
    for tr, va in KFold(5).split(X):
        for i, a in enumerate(alphas):
            pred = Ridge(alpha=a).fit(X64[tr], Y64[tr]).predict(X64[va])
            mse[i] += ((pred - Y64[va]) ** 2).mean(0) / 5
    np.testing.assert_allclose(res.cv_scores, 1 - mse / Y64.var(0), atol=2e-5)
    np.testing.assert_array_equal(res.alphas, alphas[mse.argmin(0)])
    # refit equals sklearn Ridge at the chosen alphas
    for j in range(Y.shape[1]):
        ref = Ridge(alpha=res.alphas[j]).fit(X64, Y64[:, j])
        np.testing.assert_allclose(res.predict(X)[:, j], ref.predict(X64), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_alpha_by_mean_r2(rng, backend):
    X, Y = _data(rng, 90, 12, 5)
    splitter = ShuffleSplit(n_splits=3, test_size=0.3, random_state=0)
    res = ridge_cv(X, Y, ALPHAS, cv=splitter, alpha_per_target=False, backend=backend)
    r2 = np.zeros(len(ALPHAS))
    for tr, va in splitter.split(X):
        for i, a in enumerate(ALPHAS):
            pred = (
                Ridge(alpha=a)
                .fit(X[tr].astype(float), Y[tr].astype(float))
                .predict(X[va].astype(float))
            )
            r2[i] += r2_score(Y[va], pred) / 3
    assert np.all(res.alphas == ALPHAS[r2.argmax()])
    np.testing.assert_allclose(res.cv_scores.mean(1), r2, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(80, 15, 5), (40, 70, 3)], ids=["primal", "dual"])
def test_loo_matches_sklearn_ridgecv(rng, backend, shape):
    X, Y = _data(rng, *shape)
    res = ridge_cv(X, Y, ALPHAS, cv="loo", backend=backend)
    sk = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X.astype(float), Y.astype(float))
    np.testing.assert_array_equal(res.alphas, sk.alpha_)
    np.testing.assert_allclose(res.predict(X), sk.predict(X.astype(float)), rtol=1e-4, atol=1e-4)


def test_gcv_matches_formula(rng):
    X, Y = _data(rng, 60, 8, 3)
    res = ridge_cv(X, Y, ALPHAS, cv="gcv")
    X64, Y64 = X.astype(float), Y.astype(float)
    Xc, Yc = X64 - X64.mean(0), Y64 - Y64.mean(0)
    n = len(X)
    gcv = []
    for a in ALPHAS:
        H = Xc @ np.linalg.solve(Xc.T @ Xc + a * np.eye(8), Xc.T)
        resid = Yc - H @ Yc
        gcv.append((resid**2).mean(0) / (1 - (np.trace(H) + 1) / n) ** 2)
    np.testing.assert_allclose(res.cv_scores, 1 - np.array(gcv) / Y64.var(0), rtol=1e-4, atol=1e-5)


def _alpha_for_fraction(X, y, f):
    """Independent mapping: brentq on the norm of the (centred) ridge solution."""
    Xc, yc = X - X.mean(0), y - y.mean()
    if f >= 1:
        return 0.0
    target = f * np.linalg.norm(np.linalg.lstsq(Xc, yc, rcond=None)[0])
    p = X.shape[1]

    def gap(log_a):
        return (
            np.linalg.norm(np.linalg.solve(Xc.T @ Xc + np.exp(log_a) * np.eye(p), Xc.T @ yc))
            - target
        )

    return float(np.exp(brentq(gap, -30, 30, xtol=1e-12)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fracridge_mode_matches_independent_mapping(rng, backend):
    X, Y = _data(rng, 100, 12, 4, noise=1.0)
    X64, Y64 = X.astype(float), Y.astype(float)
    fr = np.linspace(0.05, 1.05, 20)
    res = fracridge_cv(X, Y, backend=backend)
    score = np.zeros(len(fr))
    for tr, va in KFold(5).split(X):
        for i, f in enumerate(fr):
            pred = np.column_stack(
                [
                    Ridge(alpha=_alpha_for_fraction(X64[tr], Y64[tr, j], f))
                    .fit(X64[tr], Y64[tr, j])
                    .predict(X64[va])
                    for j in range(Y.shape[1])
                ]
            )
            score[i] += r2_score(Y64[va], pred) / 5
    assert res.fraction == pytest.approx(fr[score.argmax()])
    np.testing.assert_allclose(res.cv_scores.mean(1), score, atol=1e-5)
    ref_alphas = [_alpha_for_fraction(X64, Y64[:, j], res.fraction) for j in range(Y.shape[1])]
    np.testing.assert_allclose(res.alphas, ref_alphas, rtol=1e-4)


def test_fraction_to_alpha_function(rng):
    X = rng.standard_normal((50, 6))
    y = rng.standard_normal(50)
    Xc, yc = X - X.mean(0), y - y.mean()
    lam, V = np.linalg.eigh(Xc.T @ Xc)
    z = V.T @ Xc.T @ yc
    alphas = fraction_to_alpha(lam, z, [0.2, 0.7, 1.0, 1.05])[:, 0]
    np.testing.assert_allclose(
        alphas[:2], [_alpha_for_fraction(X, y, f) for f in (0.2, 0.7)], rtol=1e-8
    )
    assert alphas[2] == 0 and alphas[3] == 0


def test_paper_intercept_flag(rng):
    X, Y = _data(rng, 60, 5, 2)
    correct = ridge_fit(X, Y, 1.0)
    paper = ridge_fit(X, Y, 1.0, fit_intercept="paper")
    np.testing.assert_allclose(paper.coef, correct.coef)
    assert np.all(paper.intercept == 0) and np.all(np.abs(correct.intercept) > 0)
    # a constant shift: Pearson r unaffected
    np.testing.assert_allclose(
        pearson_r(paper.predict(X), Y), pearson_r(correct.predict(X), Y), atol=1e-6
    )


def test_nan_and_constant_targets_reported(rng):
    X, Y = _data(rng, 60, 5, 5)
    Y[3, 1] = np.nan
    Y[:, 3] = 4.0
    with pytest.warns(UserWarning) as record:
        res = ridge_cv(X, Y, ALPHAS, cv=3)
    text = " ".join(str(w.message) for w in record)
    assert "NaN" in text and "constant" in text
    assert res.nan_targets.tolist() == [False, True, False, False, False]
    assert res.constant_targets[3]
    assert np.isnan(res.coef[:, 1]).all() and np.all(res.coef[:, 3] == 0)
    np.testing.assert_allclose(res.predict(X)[:, 3], 4.0, rtol=1e-6)
    with pytest.warns(UserWarning, match="constant"):
        clean = ridge_cv(X, np.delete(Y, [1], axis=1), ALPHAS, cv=3)
    np.testing.assert_allclose(
        res.coef[:, [0, 2, 4]], clean.coef[:, [0, 1, 3]], rtol=1e-5, atol=1e-6
    )


def test_block_size_does_not_change_results(rng):
    X, Y = _data(rng, 70, 10, 9)
    a = ridge_cv(X, Y, ALPHAS, block_size=2)
    b = ridge_cv(X, Y, ALPHAS, block_size=100)
    c = ridge_cv(X, Y, ALPHAS, memory_budget=4 * 70 * 3 * 3)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(c.cv_scores, b.cv_scores, rtol=1e-5, atol=1e-6)


def test_make_folds_equals_kfold():
    for n, k in [(10, 3), (103, 5)]:
        for (tr, va), (tr2, va2) in zip(make_folds(n, k), KFold(k).split(np.zeros(n)), strict=True):
            np.testing.assert_array_equal(tr, tr2)
            np.testing.assert_array_equal(va, va2)


def test_bad_inputs(rng):
    X, Y = _data(rng, 20, 3, 2)
    with pytest.raises(InputError, match="different numbers of images"):
        ridge_cv(X, Y[:-1])
    with pytest.raises(InputError, match="too few images for the folds"):
        ridge_cv(X[:4], Y[:4], cv=5)
    with pytest.raises(InputError, match="NaN or infinite"):
        Xn = X.copy()
        Xn[0, 0] = np.nan
        ridge_cv(Xn, Y)
    with pytest.raises(InputError, match="infinity"):
        Yi = Y.copy()
        Yi[0, 0] = np.inf
        ridge_cv(X, Yi)
    with pytest.raises(InputError, match="NaN in every target"):
        ridge_cv(X, np.full_like(Y, np.nan))
    with pytest.raises(InputError, match="alphas"):
        ridge_cv(X, Y, alphas=[-1.0])
    with pytest.raises(InputError, match="fit_intercept"):
        ridge_cv(X, Y, fit_intercept="yes")
    with pytest.raises(InputError, match="cv="):
        ridge_cv(X, Y, cv="bogus")
    with pytest.raises(BrainAlignError, match="fracridge"):
        fracridge_cv(X, Y, cv="loo")


# --------------------------------------------------------------------------------------------------
# memory-mapped targets and row views (no copy of the training rows)


def _memmap(tmp_path, Y, name="y.npy"):
    np.save(tmp_path / name, Y)
    return np.load(tmp_path / name, mmap_mode="r")


@pytest.mark.parametrize("shape", [(130, 12, 23), (40, 70, 9)], ids=["primal", "dual"])
@pytest.mark.parametrize(
    "solver",
    [
        lambda X, Y: ridge_cv(X, Y, ALPHAS, cv=4, block_size=4),
        lambda X, Y: ridge_cv(X, Y, ALPHAS, cv="loo", block_size=5),
        lambda X, Y: ridge_cv(X, Y, ALPHAS, alpha_per_target=False, block_size=4),
        lambda X, Y: fracridge_cv(X, Y, block_size=6),
        lambda X, Y: ridge_fit(X, Y, 10.0, block_size=4),
    ],
    ids=["kfold", "loo", "shared", "fracridge", "fixed"],
)
def test_row_view_of_memmap_equals_copying_fit(rng, tmp_path, shape, solver):
    X, Y = _data(rng, *shape)
    Y[5, 3] = np.nan  # a dropped target and a constant one, in some block
    Y[:, 7] = 1.5
    Ym = _memmap(tmp_path, Y)
    train = rng.random(len(Y)) < 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = solver(X[train], Y[train])  # the copying fit
        got = solver(X[train], RowView(Ym, train))
        got_idx = solver(X[train], RowView(Ym, np.flatnonzero(train)))
    for res in (got, got_idx):
        np.testing.assert_array_equal(res.coef, ref.coef)
        np.testing.assert_array_equal(res.intercept, ref.intercept)
        np.testing.assert_array_equal(res.alphas, ref.alphas)
        np.testing.assert_array_equal(res.cv_scores, ref.cv_scores)
        np.testing.assert_array_equal(res.nan_targets, ref.nan_targets)
        np.testing.assert_array_equal(res.constant_targets, ref.constant_targets)
        np.testing.assert_array_equal(res.edge_counts, ref.edge_counts)


def test_row_view_fit_memory_is_bounded(rng, tmp_path):
    """Fitting from a row view of a memory map holds O(n × block), not the training rows."""
    n, p, t = 800, 8, 10_000
    X = rng.standard_normal((n, p)).astype(np.float32)
    Y = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.float32, shape=(n, t))
    for s in range(0, t, 2500):
        Y[:, s : s + 2500] = X @ rng.standard_normal((p, 2500)) + rng.standard_normal((n, 2500))
    Y.flush()
    del Y
    Ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    train = np.arange(n) % 5 != 0
    copy_bytes = int(train.sum()) * t * 4  # what Ym[train] would allocate
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = ridge_cv(X[train], RowView(Ym, train), block_size=500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.coef.shape == (p, t)
    assert peak < copy_bytes / 3, (peak, copy_bytes)


# --------------------------------------------------------------------------------------------------
# the default grid and its edges


def test_default_grid_is_wide_and_matches_sklearn(rng):
    assert (
        DEFAULT_ALPHAS.min() <= 1e-2 and DEFAULT_ALPHAS.max() >= 1e10 and len(DEFAULT_ALPHAS) >= 20
    )
    X, Y = _data(rng, 103, 20, 6, noise=1.0)
    res = ridge_cv(X, Y, cv=5)
    _assert_sklearn_kfold_choice(res, X, Y, DEFAULT_ALPHAS)


def test_edge_counts_and_warning(rng):
    X, Y = _data(rng, 120, 10, 40, noise=1.0)
    Y[:, :30] = 5 * rng.standard_normal((120, 30)).astype(np.float32)  # noise: want a big alpha
    Y[:, 30] = 2.0  # constant: not counted
    Y[0, 31] = np.nan  # dropped: not counted
    short = np.logspace(-2, 0, 3)  # far below the eigenvalues of XᵀX (~120)
    with pytest.warns(UserWarning, match=r"alphas: \d+ of 38 fitted targets chose the largest "):
        res = ridge_cv(X, Y, short, cv=3)
    assert res.n_fitted == 38
    fitted = ~res.nan_targets & ~res.constant_targets
    np.testing.assert_array_equal(
        res.edge_counts,
        [np.sum(res.alphas[fitted] == short[0]), np.sum(res.alphas[fitted] == short[-1])],
    )
    assert res.edge_counts[1] >= 30
    np.testing.assert_array_equal(edge_counts(res.alphas[fitted], short), res.edge_counts)
    # the default grid reaches past the eigenvalues: no warning, far fewer at the largest alpha
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        wide = ridge_cv(X, np.delete(Y, [30, 31], axis=1), cv=3)
    assert wide.edge_counts[1] < res.edge_counts[1]
    # a grid that already gives the mean prediction at its top does not warn either
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ridge_cv(X, Y[:, :30], [1e-2, 1e8], cv=3)
    # the smallest edge warns too (little noise: least squares is best)
    clean = (X @ rng.standard_normal((10, 20))).astype(np.float32)
    clean += 1e-3 * rng.standard_normal(clean.shape).astype(np.float32)
    with pytest.warns(UserWarning, match="chose the smallest alpha"):
        low = ridge_cv(X, clean, [10.0, 100.0, 1000.0], cv=3)
    assert low.edge_counts[0] == 20


def test_edge_counts_in_other_modes(rng):
    X, Y = _data(rng, 80, 6, 5)
    fr = fracridge_cv(X, Y)
    at = [fr.fraction == fr.candidates.min(), fr.fraction == fr.candidates.max()]
    np.testing.assert_array_equal(fr.edge_counts, np.array(at) * 5)
    np.testing.assert_array_equal(ridge_fit(X, Y, 1.0).edge_counts, [0, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_validation_error_is_exact_far_past_the_eigenvalues(rng, backend):
    """The partial-fraction SSE (one r × r product per fold for every alpha) equals the direct
    one from 1e-3 to 1e14, including a cluster of nearly equal eigenvalues (the band)."""
    from brainalign.backend import get_backend
    from brainalign.encoding.ridge import _Decomposition

    xp = get_backend(backend)
    r, t = 40, 30
    lam = np.sort(rng.uniform(1, 1e3, r))
    lam[10:13] = lam[10] * (1 + np.array([0, 3e-8, 6e-8]))
    A = rng.standard_normal((r, r))
    G = A @ A.T
    Z, Bv = rng.standard_normal((2, r, t))
    yy = np.abs(rng.standard_normal(t)) * 1e3
    d = _Decomposition.__new__(_Decomposition)
    d.xp, d.lam_np, d.tol, d.G64 = xp, lam, lam.max() * 1e-10, G
    d.Z, d.Bv, d.yy = (xp.asarray(v, dtype=np.float64) for v in (Z, Bv, yy))
    alphas = np.logspace(-3, 14, 35)[::-1]  # any order
    assert d.prepare_alphas(alphas)
    fast = xp.to_numpy(d.sse_all())
    for i, a in enumerate(alphas):
        u = Z / (lam[:, None] + a)
        ref = yy - 2 * np.sum(Bv * u, 0) + np.sum(u * (G @ u), 0)
        np.testing.assert_allclose(fast[i], ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("shape", [(60, 20), (40, 300)])  # primal and dual (kernel) form
def test_copy_x_false_centres_in_place_with_the_same_fit(shape):
    rng = np.random.default_rng(11)
    X = (rng.standard_normal(shape) + 3).astype(np.float32)
    Y = X[:, :5] @ rng.standard_normal((5, 7)).astype(np.float32) + rng.standard_normal(
        (shape[0], 7)
    ).astype(np.float32)
    expected = ridge_cv(X, Y, cv=5)
    X_own = X.copy()
    got = ridge_cv(X_own, Y, cv=5, copy_X=False)
    np.testing.assert_array_equal(got.coef, expected.coef)
    np.testing.assert_array_equal(got.alphas, expected.alphas)
    np.testing.assert_array_equal(got.intercept, expected.intercept)
    np.testing.assert_allclose(X_own, X - X.mean(0, dtype=np.float64).astype(np.float32))


def test_threads_over_blocks_equal_one_thread(rng):
    """Blocks run in threads when BLAS has several (the default block size); same results as
    one block on one thread, for the per-target and shared choices and fracridge."""
    from threadpoolctl import threadpool_limits

    X, Y = _data(rng, 90, 12, 30, noise=1.0)
    runs = {
        "per_target": lambda: ridge_cv(X, Y, ALPHAS, cv=5),
        "shared": lambda: ridge_cv(X, Y, ALPHAS, cv=4, alpha_per_target=False),
        "fracridge": lambda: fracridge_cv(X, Y, cv=5),
        "loo": lambda: ridge_cv(X, Y, ALPHAS, cv="loo"),
    }
    for name, fit in runs.items():
        with threadpool_limits(limits=2, user_api="blas"):
            threaded = fit()
        with threadpool_limits(limits=1, user_api="blas"):
            single = fit()
        # grid alphas are equal; fracridge's per-target alphas are solved in float32
        np.testing.assert_allclose(threaded.alphas, single.alphas, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(threaded.coef, single.coef, rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(
            threaded.cv_scores, single.cv_scores, rtol=1e-5, atol=1e-6, err_msg=name
        )
