"""RidgeEncoder: scikit-learn conformance and behaviour."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from brainalign.encoding import RidgeEncoder, RowView, pearson_r, ridge_cv
from brainalign.errors import InputError


# Every applicable check runs. check_array_api_input skips itself (SCIPY_ARRAY_API unset); no check
# is excluded.
@parametrize_with_checks([RidgeEncoder(), RidgeEncoder(mode="fracridge"), RidgeEncoder(cv="loo")])
def test_sklearn_conformance(estimator, check):
    check(estimator)


def test_encoder_matches_solver_and_sklearn(rng):
    X = rng.standard_normal((120, 10)).astype(np.float32)
    Y = (X @ rng.standard_normal((10, 30)) + rng.standard_normal((120, 30))).astype(np.float32)
    est = RidgeEncoder(alphas=[0.1, 1, 10, 100], cv=4).fit(X[:100], Y[:100])
    res = ridge_cv(X[:100], Y[:100], [0.1, 1, 10, 100], cv=4)
    np.testing.assert_array_equal(est.alpha_, res.alphas)
    assert est.coef_.shape == (30, 10) and est.intercept_.shape == (30,)
    ref = Ridge(alpha=est.alpha_[0]).fit(X[:100].astype(float), Y[:100, 0].astype(float))
    np.testing.assert_allclose(
        est.predict(X)[:, 0], ref.predict(X.astype(float)), rtol=1e-4, atol=1e-4
    )
    r = est.score(X[100:], Y[100:])
    assert r.shape == (30,) and np.all(r > 0.5)
    clone(est)


def test_encoder_torch_equals_numpy(rng):
    X = rng.standard_normal((80, 6)).astype(np.float32)
    Y = (X @ rng.standard_normal((6, 7)) + rng.standard_normal((80, 7))).astype(np.float32)
    a = RidgeEncoder(backend="numpy").fit(X, Y)
    b = RidgeEncoder(backend="torch", device="cpu").fit(X, Y)
    np.testing.assert_array_equal(a.alpha_, b.alpha_)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-4, atol=1e-5)


def test_encoder_memmap_targets(rng, tmp_path):
    X = rng.standard_normal((50, 5)).astype(np.float32)
    Y = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.float32, shape=(50, 12))
    Y[:] = X @ rng.standard_normal((5, 12)) + rng.standard_normal((50, 12))
    Y.flush()
    Ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    est = RidgeEncoder(block_size=5).fit(X, Ym)
    np.testing.assert_allclose(
        est.predict(X), RidgeEncoder().fit(X, np.asarray(Ym)).predict(X), rtol=1e-5, atol=1e-6
    )


def test_encoder_bad_inputs(rng):
    X = rng.standard_normal((20, 3))
    with pytest.raises(InputError, match="mode"):
        RidgeEncoder(mode="lasso").fit(X, X[:, 0])
    with pytest.raises(InputError, match="requires y"):
        RidgeEncoder().fit(X, None)
    with pytest.raises(InputError, match="different numbers of images"):
        RidgeEncoder().fit(X, X[:-2])
    est = RidgeEncoder().fit(X, X[:, :2])
    with pytest.raises(InputError, match="shape"):
        est.score(X, X[:, :1])


def _old_score(est, X, y):
    """The score before it worked in blocks: every prediction and y in float64 at once."""
    return pearson_r(est.predict(X), np.asarray(y, dtype=np.float64)).astype(np.float32)


@pytest.mark.parametrize("mode", ["ridge", "fracridge"])
def test_fit_and_score_from_row_views_of_a_memmap(rng, tmp_path, mode):
    X = rng.standard_normal((90, 7)).astype(np.float32)
    Y = (X @ rng.standard_normal((7, 25)) + rng.standard_normal((90, 25))).astype(np.float32)
    Y[3, 4] = np.nan
    np.save(tmp_path / "y.npy", Y)
    Ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    test = np.arange(90) % 4 == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = dict(mode=mode, alphas=[0.1, 1, 10, 100], cv=3, block_size=4)
        ref = RidgeEncoder(**params).fit(X[~test], Y[~test])  # the copying fit
        est = RidgeEncoder(**params).fit(X[~test], RowView(Ym, ~test))
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    np.testing.assert_array_equal(est.alpha_, ref.alpha_)
    np.testing.assert_array_equal(est.edge_counts_, ref.edge_counts_)
    old = _old_score(ref, X[test], Y[test])
    for y in (RowView(Ym, test), Y[test], RowView(Ym, test, dtype=np.float64)):
        np.testing.assert_allclose(est.score(X[test], y), old, rtol=0, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(
        est.score(X[test].astype(np.float64), RowView(Ym, test)),
        _old_score(ref, X[test].astype(np.float64), Y[test]),
        atol=1e-6,
        equal_nan=True,
    )
    assert np.isnan(est.score(X[test], Y[test])[4])


def test_score_block_size_does_not_change_scores(rng):
    X = rng.standard_normal((60, 5)).astype(np.float32)
    Y = (X @ rng.standard_normal((5, 11)) + rng.standard_normal((60, 11))).astype(np.float32)
    est = RidgeEncoder(alphas=[1.0, 10.0]).fit(X[:40], Y[:40])
    ref = _old_score(est, X[40:], Y[40:])
    for block in (1, 3, 11, 100):
        est.set_params(block_size=block)
        np.testing.assert_allclose(est.score(X[40:], Y[40:]), ref, rtol=0, atol=1e-6)
    est.set_params(block_size=None, memory_budget=48 * 20 * 2)  # two targets per block
    np.testing.assert_allclose(est.score(X[40:], Y[40:]), ref, rtol=0, atol=1e-6)


def test_score_memory_is_bounded(rng, tmp_path):
    """Scoring a memory map holds one block of float64 predictions and targets at a time."""
    n, p, t = 300, 6, 20_000
    X = rng.standard_normal((n, p)).astype(np.float32)
    Y = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.float32, shape=(n, t))
    Y[:] = rng.standard_normal((n, t), dtype=np.float32)
    Y.flush()
    del Y
    Ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RidgeEncoder(alphas=[1.0, 100.0], cv=3, block_size=1000).fit(X, Ym)
    tracemalloc.start()
    try:
        r = est.score(X, Ym)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.shape == (t,) and r.dtype == np.float32
    assert peak < n * t * 8 / 4, peak  # the old score held y and the predictions in float64


def test_cross_val_r_equals_scikit_learn_out_of_fold_predictions():
    """One penalty: the nested CV reduces to sklearn's cross_val_predict on the same folds."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import cross_val_predict

    from brainalign.encoding import cross_val_r

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    Y = X @ rng.standard_normal((6, 5)) + rng.standard_normal((40, 5))
    r = cross_val_r(X, Y, alphas=[3.0], outer=5, inner=3, random_state=1)
    order = np.random.default_rng(1).permutation(40)
    folds = [(np.setdiff1d(order, t), t) for t in np.array_split(order, 5)]
    P = cross_val_predict(Ridge(alpha=3.0), X, Y, cv=folds)
    ref = [np.corrcoef(P[:, j], Y[:, j])[0, 1] for j in range(5)]
    np.testing.assert_allclose(r, ref, atol=1e-6)
    # pure noise is not predicted; the signal is
    assert cross_val_r(X, rng.standard_normal((40, 3)), random_state=0).mean() < 0.3 < r.mean()
