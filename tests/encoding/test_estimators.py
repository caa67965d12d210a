"""RidgeEncoder: scikit-learn conformance and behaviour."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from brainalign.encoding import RidgeEncoder, ridge_cv
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
