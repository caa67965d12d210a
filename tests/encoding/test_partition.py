"""Variance partitioning against sub-models fitted with scikit-learn and written-out Venn formulas."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from brainalign.encoding import (
    all_subsets,
    banded_ridge_cv,
    inclusion_exclusion,
    variance_partition,
)
from brainalign.errors import InputError


def _data(rng, n=200, t=6):
    A = rng.standard_normal((n, 6))
    B = rng.standard_normal((n, 4)) + 0.5 * A[:, :4]  # B shares variance with A
    C = rng.standard_normal((n, 5))
    Y = A @ rng.standard_normal((6, t)) + 0.7 * B @ rng.standard_normal((4, t))
    Y = Y + 0.5 * C[:, :1] + 1.5 * rng.standard_normal((n, t)) + 4.0
    Xs = {"a": A.astype(np.float32), "b": B.astype(np.float32), "c": C.astype(np.float32)}
    return Xs, Y.astype(np.float32)


def _split(Xs, Y, m):
    return ({k: v[:m] for k, v in Xs.items()}, Y[:m], {k: v[m:] for k, v in Xs.items()}, Y[m:])


def test_inclusion_exclusion_equals_sklearn_submodels(rng):
    Xs, Y = _data(rng)
    Xtr, Ytr, Xte, Yte = _split(Xs, Y, 150)
    alpha = 5.0
    # one candidate (uniform weights, one alpha): every sub-model is a plain ridge with penalty
    # alpha / gamma = alpha * |S| on its bands
    res = variance_partition(
        Xtr, Ytr, test=(Xte, Yte), gammas=[[1 / 3, 1 / 3, 1 / 3]], alphas=[alpha], cv=3
    )
    names = list(Xs)
    r2 = {}
    for S in all_subsets(3):
        cols = [names[i] for i in S]
        m = Ridge(alpha=alpha * len(S)).fit(np.hstack([Xtr[c] for c in cols]), Ytr)
        pred = m.predict(np.hstack([Xte[c] for c in cols]))
        r2[S] = r2_score(Yte, pred, multioutput="raw_values")
    for k, S in enumerate(res.subsets):
        np.testing.assert_allclose(res.subset_r2[k], r2[S], atol=1e-4)
    # the Venn regions of three bands, written out
    a, b, c = (0,), (1,), (2,)
    ab, ac, bc, abc = (0, 1), (0, 2), (1, 2), (0, 1, 2)
    expected = {
        a: r2[abc] - r2[bc],
        b: r2[abc] - r2[ac],
        c: r2[abc] - r2[ab],
        ab: r2[ac] + r2[bc] - r2[c] - r2[abc],
        ac: r2[ab] + r2[bc] - r2[b] - r2[abc],
        bc: r2[ab] + r2[ac] - r2[a] - r2[abc],
        abc: r2[a] + r2[b] + r2[c] - r2[ab] - r2[ac] - r2[bc] + r2[abc],
    }
    for S, v in expected.items():
        np.testing.assert_allclose(res.regions[S], v, atol=2e-4, err_msg=str(S))
    np.testing.assert_allclose(sum(res.regions.values()), r2[abc], atol=2e-4)
    np.testing.assert_allclose(
        res.unique, np.stack([expected[a], expected[b], expected[c]]), atol=2e-4
    )
    np.testing.assert_allclose(res.shared, r2[abc] - res.unique.sum(0), atol=2e-4)
    # the weak band c explains least alone
    assert np.all(res.unique[2] < res.unique[0])


@pytest.mark.filterwarnings("ignore:y_true has to be zero-mean")
def test_two_bands_and_split_equals_himalaya(rng):
    scoring = pytest.importorskip("himalaya.scoring")
    Xs, Y = _data(rng)
    Xs = {"a": Xs["a"], "b": Xs["b"]}
    Xtr, Ytr, Xte, Yte = _split(Xs, Y, 150)
    kw = dict(alphas=np.logspace(-1, 3, 5), cv=3, n_iter=4)
    res = variance_partition(Xtr, Ytr, test=(Xte, Yte), **kw)
    r2a, r2b, r2ab = res.subset_r2
    np.testing.assert_allclose(res.regions[(0, 1)], r2a + r2b - r2ab, atol=1e-6)
    np.testing.assert_allclose(res.unique[0], r2ab - r2b, atol=1e-6)
    joint = banded_ridge_cv(
        list(Xtr.values()), Ytr, gammas=res_gammas(kw), alphas=kw["alphas"], cv=3
    )
    parts = joint.predict(list(Xte.values()), split=True)
    ref = scoring.r2_score_split(Yte - Yte.mean(0), parts - parts.mean(1, keepdims=True))
    np.testing.assert_allclose(res.split_r2, ref, atol=1e-4)
    np.testing.assert_allclose(res.joint_r2, r2ab)


def res_gammas(kw):
    from brainalign.encoding import dirichlet_candidates

    return dirichlet_candidates(2, kw["n_iter"], random_state=0)


def test_noise_ceiling_divides_by_its_square(rng):
    Xs, Y = _data(rng, t=3)
    Xtr, Ytr, Xte, Yte = _split(Xs, Y, 150)
    kw = dict(test=(Xte, Yte), alphas=[1.0, 10.0], cv=3, n_iter=3)
    raw = variance_partition(Xtr, Ytr, **kw)
    ceiling = np.array([0.5, 1.0, 0.0])
    norm = variance_partition(Xtr, Ytr, noise_ceiling=ceiling, **kw)
    assert norm.normalised and not raw.normalised
    np.testing.assert_allclose(norm.unique[:, 0], raw.unique[:, 0] / 0.25, rtol=1e-5)
    np.testing.assert_allclose(norm.unique[:, 1], raw.unique[:, 1], rtol=1e-6)
    assert np.isnan(norm.unique[:, 2]).all()


def test_inclusion_exclusion_needs_every_subset():
    with pytest.raises(InputError, match="missing"):
        inclusion_exclusion({(0,): np.zeros(2), (1,): np.zeros(2)}, 2)


def test_bad_input(rng):
    Xs, Y = _data(rng, n=40)
    with pytest.raises(InputError, match="2 to 6 bands"):
        variance_partition([Xs["a"]], Y, test=([Xs["a"]], Y))
    with pytest.raises(InputError, match="test: expected a pair"):
        variance_partition(Xs, Y, test=None)
    with pytest.raises(InputError, match="band widths"):
        variance_partition(Xs, Y, test=([Xs["a"], Xs["a"], Xs["a"]], Y))
    with pytest.raises(InputError, match="noise_ceiling"):
        variance_partition(
            Xs, Y, test=(Xs, Y), n_iter=2, alphas=[1.0], cv=2, noise_ceiling=np.ones(2)
        )


def test_hyper_gradient_refines_every_sub_model(rng):
    """With ``solver="hyper_gradient"`` each sub-model is the refined banded ridge of its bands
    (a one-band model: ridge with its alpha refined off the grid)."""
    Xs, Y = _data(rng)
    Xs = {"a": Xs["a"], "b": Xs["b"]}
    Xtr, Ytr, Xte, Yte = _split(Xs, Y, 150)
    kw = dict(alphas=np.logspace(-1, 3, 5), cv=3, n_iter=4, solver="hyper_gradient", max_iter=3)
    res = variance_partition(Xtr, Ytr, test=(Xte, Yte), **kw)
    names = list(Xs)
    for row, S in enumerate(res.subsets):
        g = np.ones((1, 1)) if len(S) == 1 else res_gammas(kw)
        ref = banded_ridge_cv(
            [Xtr[names[i]] for i in S],
            Ytr,
            gammas=g,
            alphas=kw["alphas"],
            cv=3,
            solver="hyper_gradient",
            max_iter=3,
            test=([Xte[names[i]] for i in S], Yte),
        )
        np.testing.assert_allclose(res.subset_r2[row], ref.test_r2, atol=1e-6)
        if len(S) == 1:
            assert not np.isin(ref.alphas, kw["alphas"]).all()  # off the grid
