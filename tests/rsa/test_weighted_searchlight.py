import numpy as np
import pytest
from scipy.optimize import nnls

from brainalign.backend import BACKENDS
from brainalign.errors import InputError
from brainalign.rsa import compute_rdm, volume_neighbourhoods
from brainalign.rsa.weighted_rsa import _fold_scores
from brainalign.rsa.weighted_searchlight import nnls_columns, weighted_searchlight


@pytest.fixture(scope="module")
def case(ball_mask):
    nb = volume_neighbourhoods(ball_mask, radius=2.0, min_fraction=0.5)
    rng = np.random.default_rng(7)
    n = 24
    feats = [rng.standard_normal((n, 6)), rng.standard_normal((n, 9))]
    betas = rng.standard_normal((n, nb.n_units))
    # some units carry the first model, some the second, so weights differ between centres
    betas[:, : nb.n_units // 2] += 1.5 * feats[0] @ rng.standard_normal((6, nb.n_units // 2))
    betas[:, nb.n_units // 3 :] += feats[1] @ rng.standard_normal((9, nb.n_units - nb.n_units // 3))
    rdm = compute_rdm(rng.standard_normal((n, 4)))
    models = {"a": feats[0], "b": feats[1], "c": rdm}
    return betas, models, nb


def reference(betas, models, nb, folds, method, names=None):
    """Per centre: the centre's brain RDM through the ROI analysis's fold scores (rsatoolbox's
    ``ModelWeighted`` + crossval, tested against rsatoolbox in test_weighted_rsa)."""
    names = list(models) if names is None else names
    M = np.stack([compute_rdm(v) if v.ndim == 2 else v for v in (models[m] for m in names)])
    n = betas.shape[0]
    out = np.zeros((len(names) + 1, len(nb)))
    for c in range(len(nb)):
        D = compute_rdm(betas[:, nb[c]])[None, :]
        out[:, c] = _fold_scores(M, D, method, np.ones(n), np.ones(1), folds).mean(1)
    return out


def test_nnls_columns_equal_scipy():
    rng = np.random.default_rng(0)
    for k in (1, 2, 3, 5):
        A = rng.standard_normal((40, k))
        Y = rng.standard_normal((40, 200))
        Y[:, :20] = -A @ np.abs(rng.standard_normal((k, 20)))  # all weights 0
        got = nnls_columns(A.T @ A, A.T @ Y)
        want = np.stack([nnls(A, y)[0] for y in Y.T], axis=1)
        np.testing.assert_allclose(got, want, atol=1e-10)
    B = np.array([[1.0, np.nan], [2.0, 0.0]])
    assert np.isnan(nnls_columns(np.eye(2), B)[:, 1]).all()


def test_nnls_columns_with_a_singular_gram():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((30, 2))
    A = np.column_stack([A, A[:, 0]])  # a duplicated column
    Y = rng.standard_normal((30, 50))
    got = nnls_columns(A.T @ A, A.T @ Y)
    want = np.stack([nnls(A, y)[0] for y in Y.T], axis=1)
    # the solution is not unique; its fit is
    np.testing.assert_allclose(A @ got, A @ want, atol=1e-9)
    assert (got >= 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "method,path",
    # materialised: one brain RDM per centre summed over each fold's pairs (PairSums);
    # rdm_free: one RDM-free pass per fold's block
    [("pearson", "rdm_free"), ("pearson", "materialised"), ("cosine", "materialised")],
)
def test_equals_the_roi_weighted_rsa_at_every_centre(case, method, path, backend):
    betas, models, nb = case
    res = weighted_searchlight(
        betas, models, nb, method=method, k_stimuli=3, path=path, dtype="float64", reduced=["a"],
        backend=backend,
    )  # fmt: skip
    ref = reference(betas, models, nb, res.folds, method)
    np.testing.assert_allclose(res.score, ref[0], atol=1e-9)
    np.testing.assert_allclose(res.single, ref[1:], atol=1e-9)
    without_a = reference(betas, models, nb, res.folds, method, names=["b", "c"])[0]
    np.testing.assert_allclose(res.gain("a"), ref[0] - without_a, atol=1e-9)
    assert res.weights.shape == (3, len(nb)) and (res.weights >= 0).all()
    # the fitted combination differs between centres (the planted models differ)
    assert np.ptp(res.weights[0]) > 0.3


def test_float32_agrees_and_threads_do_not_change_values(case):
    betas, models, nb = case
    one = weighted_searchlight(betas, models, nb, k_stimuli=3, n_jobs=1)
    two = weighted_searchlight(betas, models, nb, k_stimuli=3, n_jobs=2, batch_size=5)
    np.testing.assert_allclose(one.score, two.score, atol=1e-6)
    f64 = weighted_searchlight(betas, models, nb, k_stimuli=3, dtype="float64")
    np.testing.assert_allclose(one.score, f64.score, atol=1e-5)


def test_arguments_are_checked(case):
    betas, models, nb = case
    with pytest.raises(InputError, match="at least two models"):
        weighted_searchlight(betas, {"a": models["a"]}, nb)
    with pytest.raises(InputError, match="at least 2 folds"):
        weighted_searchlight(betas, models, nb, k_stimuli=1)
    with pytest.raises(InputError, match="fits"):
        weighted_searchlight(betas, models, nb, method="spearman")
    with pytest.raises(InputError, match="reduced"):
        weighted_searchlight(betas, models, nb, reduced=["nope"])
    res = weighted_searchlight(betas, models, nb, k_stimuli=2)
    with pytest.raises(InputError, match="pass reduced"):
        res.gain("a")
