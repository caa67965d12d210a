"""Weighted RSA against rsatoolbox's ModelWeighted, fit_regress_nn, crossval and bootstrap_crossval."""

import importlib

import numpy as np
import pytest
from scipy.optimize import nnls

from brainalign.errors import InputError
from brainalign.rsa.weighted_rsa import (
    BootstrapDraw,
    Fold,
    crossval_weighted_rdm,
    fit_weighted_rdm,
    k_fold_sets,
    nn_least_squares,
    weighted_rsa,
)

# the module, not the function that brainalign.rsa exports under the same name
weighted_rsa_module = importlib.import_module("brainalign.rsa.weighted_rsa")
rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import bootstrap_crossval, crossval, sets_k_fold  # noqa: E402
from rsatoolbox.inference.bootstrap import bootstrap_sample  # noqa: E402
from rsatoolbox.model import ModelFixed, ModelWeighted  # noqa: E402
from rsatoolbox.model.fitter import fit_mock, fit_regress_nn  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402

RSATOOLBOX_METHOD = {"pearson": "corr", "cosine": "cosine"}


def random_rdms(n_stimuli=14, n_subjects=4, n_models=3, seed=0):
    """Model RDMs and noisy subject RDMs that mix the first two models (positive values)."""
    rng = np.random.default_rng(seed)
    n_pairs = n_stimuli * (n_stimuli - 1) // 2
    models = rng.random((n_models, n_pairs)) + 0.5
    truth = 0.7 * models[0] + 0.3 * models[1]
    data = truth + 0.3 * rng.standard_normal((n_subjects, n_pairs)) + 2.0
    return models, data


def toolbox_models(models):
    return [ModelWeighted("weighted", RDMs(models))] + [
        ModelFixed(f"m{i}", RDMs(m[None])) for i, m in enumerate(models)
    ]


def toolbox_folds(train_set, test_set):
    """rsatoolbox's (RDMs, pattern index) pairs as Folds over the original indices."""
    return [
        Fold(
            np.unique(tr[0].rdm_descriptors["index"]).astype(int),
            np.unique(te[0].rdm_descriptors["index"]).astype(int),
            np.unique(tr[1]).astype(int),
            np.unique(te[1]).astype(int),
        )
        for tr, te in zip(train_set, test_set, strict=True)
    ]


@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_fit_equals_fit_regress_nn(method):
    models, data = random_rdms(seed=1)
    ours = fit_weighted_rdm(models, data, method)
    theirs = fit_regress_nn(
        ModelWeighted("w", RDMs(models)), RDMs(data), method=RSATOOLBOX_METHOD[method]
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert (ours >= 0).all() and np.isclose(np.linalg.norm(ours), 1.0)


def test_nn_least_squares_equals_scipy_nnls():
    rng = np.random.default_rng(3)
    for _ in range(20):
        A = rng.standard_normal((40, 5))
        y = rng.standard_normal(40)
        x = nn_least_squares(A.T @ A, A.T @ y)
        np.testing.assert_allclose(x, nnls(A, y)[0], atol=1e-8)


@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_crossval_equals_rsatoolbox(method):
    models, data = random_rdms(n_stimuli=15, n_subjects=6, seed=2)
    rdms = RDMs(data)
    np.random.seed(5)
    train_set, test_set, ceil_set = sets_k_fold(rdms, k_rdm=2, k_pattern=3, random=True)
    folds = toolbox_folds(train_set, test_set)
    theirs = crossval(
        toolbox_models(models),
        rdms,
        train_set,
        test_set,
        ceil_set,
        method=RSATOOLBOX_METHOD[method],
        fitter=[fit_regress_nn] + [fit_mock] * len(models),
        calc_noise_ceil=False,
    )
    ours = crossval_weighted_rdm(models, data, folds, method)
    np.testing.assert_allclose(ours, theirs.evaluations[0], atol=1e-6)


def replay_rsatoolbox_draws(rdms, N, n_cv, k_pattern, k_rdm, seed):
    """The draws bootstrap_crossval makes with np.random seeded to ``seed`` (same calls, same
    order), as BootstrapDraws."""
    np.random.seed(seed)
    draws = []
    for _ in range(N):
        sample, rdm_idx, pattern_idx = bootstrap_sample(rdms)
        if len(np.unique(rdm_idx)) < k_rdm or len(np.unique(pattern_idx)) < 3 * k_pattern:
            draws.append(None)
            continue
        cv = []
        for _ in range(n_cv):
            train_set, test_set, _ = sets_k_fold(
                sample, k_pattern=k_pattern, k_rdm=k_rdm, random=True
            )
            cv.append(toolbox_folds(train_set, test_set))
        draws.append(BootstrapDraw(np.asarray(rdm_idx, int), np.asarray(pattern_idx, int), cv))
    return draws


@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_bootstrap_crossval_equals_rsatoolbox(method):
    # 20 stimuli: every fold fits on more pairs than models (with 3 training stimuli the
    # centred fit is singular and any of its solutions is as good as rsatoolbox's)
    models, data = random_rdms(n_stimuli=20, n_subjects=5, seed=4)
    rdms = RDMs(data)
    N, n_cv, k_pattern, k_rdm = 6, 2, 2, 2
    np.random.seed(11)
    theirs = bootstrap_crossval(
        toolbox_models(models),
        rdms,
        method=RSATOOLBOX_METHOD[method],
        fitter=[fit_regress_nn] + [fit_mock] * len(models),
        k_pattern=k_pattern,
        k_rdm=k_rdm,
        N=N,
        n_cv=n_cv,
    )
    draws = replay_rsatoolbox_draws(rdms, N, n_cv, k_pattern, k_rdm, seed=11)
    ours = weighted_rsa(
        models, data, method=method, k_subjects=k_rdm, k_stimuli=k_pattern, n_cv=n_cv, draws=draws
    )
    ok = ~np.isnan(theirs.evaluations[:, 0, 0, 0])
    assert ok.sum() >= 3
    np.testing.assert_allclose(ours.samples, theirs.evaluations[ok], atol=1e-6)
    k = len(models) + 1
    np.testing.assert_allclose(ours.variance, theirs.variances[:k, :k], atol=1e-6)
    np.testing.assert_allclose(ours.bootstrap_mean, theirs.get_means(), atol=1e-6)
    assert ours.dof == theirs.dof


@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_shared_products_equal_fold_by_fold(method, monkeypatch):
    """RDMs too long for the shared products are scored fold by fold: the same numbers."""
    models, data = random_rdms(n_stimuli=24, n_subjects=6, seed=8)
    fast = weighted_rsa(models, data, method=method, n_bootstrap=8, random_state=3)
    monkeypatch.setattr(weighted_rsa_module, "PRODUCTS_UP_TO", 0)
    slow = weighted_rsa(models, data, method=method, n_bootstrap=8, random_state=3)
    np.testing.assert_allclose(fast.cv_scores, slow.cv_scores, atol=1e-9)
    np.testing.assert_allclose(fast.samples, slow.samples, atol=1e-9)


def test_weighted_beats_components_when_data_mix_them():
    models, data = random_rdms(n_stimuli=30, n_subjects=4, seed=6)
    res = weighted_rsa(models, data, ["a", "b", "c"], n_bootstrap=20, random_state=0)
    assert res.names == ["weighted", "a", "b", "c"]
    assert res.score[0] > res.score[1:].max()
    assert res.weights[2] < res.weights[0] and res.weights[1] > 0
    lo, hi = res.ci()
    assert (lo <= res.score).all() and (res.score <= hi).all()
    assert res.p_gain().shape == (3,)


def test_one_subject_is_cross_validated_over_stimuli_only():
    models, data = random_rdms(n_stimuli=20, n_subjects=1, seed=9)
    res = weighted_rsa(models, data[0], n_bootstrap=10, random_state=0)
    assert res.cv_scores.shape[1] == 3  # rsatoolbox's 3 stimulus folds for 0.63 x 20 stimuli
    assert np.isfinite(res.score).all() and res.dof == 0
    assert res.samples.shape[0] > 0 and np.isfinite(res.sem).all()


def test_k_fold_sets_partition_stimuli_and_subjects():
    folds = k_fold_sets(6, 20, k_subjects=2, k_stimuli=3, random_state=0)
    assert len(folds) == 6
    tested = np.concatenate([f.test_stimuli for f in folds[:3]])
    assert sorted(tested.tolist()) == list(range(20))
    for f in folds:
        assert not set(f.train_stimuli) & set(f.test_stimuli)
        assert not set(f.train_subjects) & set(f.test_subjects)


def test_bad_input_names_the_argument():
    models, data = random_rdms()
    with pytest.raises(InputError, match="method"):
        weighted_rsa(models, data, method="spearman")
    with pytest.raises(InputError, match="model_rdms and data_rdms"):
        weighted_rsa(models[:, :-1], data)
    with pytest.raises(InputError, match="model_names"):
        weighted_rsa(models, data, ["a", "a", "b"])
    with pytest.raises(InputError, match="k_stimuli"):
        k_fold_sets(4, 14, k_stimuli=5)
    bad = data.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="data_rdms"):
        fit_weighted_rdm(models, bad)
    with pytest.raises(InputError, match="folds"):
        crossval_weighted_rdm(
            models, data, [Fold(np.arange(4), np.arange(4), np.arange(9), np.arange(9, 20))]
        )
