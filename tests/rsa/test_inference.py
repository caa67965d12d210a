"""RDM inference against rsatoolbox: the same point estimates and ceilings (eval_fixed,
boot_noise_ceiling), the same bootstrap samples and corrected variances when given rsatoolbox's
own draws (eval_dual_bootstrap), and variances within Monte Carlo error on independent draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from brainalign.errors import InputError
from brainalign.rsa import evaluate_models, rdm_permutation_test
from brainalign.rsa._weighted import expand, weighted_ranks
from brainalign.rsa.inference import bootstrap_indices, corrected_variance

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import boot_noise_ceiling, eval_dual_bootstrap, eval_fixed  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Noise ceiling for tau:UserWarning")
METHODS = {"pearson": "corr", "spearman": "spearman", "cosine": "cosine", "kendall_tau_a": "tau-a"}


@pytest.fixture(scope="module")
def data():
    """8 subjects' RDMs of 14 stimuli sharing a structure, and 3 models (one with many ties)."""
    rng = np.random.default_rng(1)
    n, S = 14, 8
    P = n * (n - 1) // 2
    base = rng.random(P)
    D = base + 0.8 * rng.random((S, P))
    M = np.vstack([base + rng.random(P), rng.random(P), np.round(base * 3)])
    return M, D


def _rsatoolbox(M, D):
    return [ModelFixed(f"m{i}", RDMs(M[i][None])) for i in range(len(M))], RDMs(D)


def test_weighted_ranks_equal_rankdata_of_the_resampled_vector():
    rng = np.random.default_rng(0)
    X = np.round(rng.random((4, 40)) * 4) / 4  # many ties
    X[0] = rng.random(40)
    c = rng.integers(0, 4, 40).astype(float)
    R = weighted_ranks(X, c)
    for i in range(4):
        expected = stats.rankdata(expand(X[i : i + 1], c)[0])
        np.testing.assert_allclose(expand(R[i : i + 1], c)[0], expected)
    np.testing.assert_allclose(weighted_ranks(X, None), stats.rankdata(X, axis=1))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_point_estimates_and_ceilings_equal_rsatoolbox(data, method):
    M, D = data
    models, rdms = _rsatoolbox(M, D)
    ref = eval_fixed(models, rdms, method=METHODS[method])
    ours = evaluate_models(M, D, method, bootstrap="none", pool="rsatoolbox")
    np.testing.assert_allclose(ours.mean, ref.get_means(), atol=1e-12)
    np.testing.assert_allclose(ours.variance, ref.model_var, atol=1e-14)
    low, up = boot_noise_ceiling(rdms, method=METHODS[method])
    assert ours.ceiling.lower_mean == pytest.approx(low, abs=1e-12)
    assert ours.ceiling.upper_mean == pytest.approx(up, abs=1e-12)


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine", "kendall_tau_a"])
def test_dual_bootstrap_equals_rsatoolbox_on_the_same_draws(data, method, monkeypatch):
    import rsatoolbox.inference.evaluate as evaluate

    M, D = data
    models, rdms = _rsatoolbox(M, D)
    draws = []
    original = evaluate.bootstrap_sample

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        draws.append((np.asarray(out[1]), np.asarray(out[2])))
        return out

    monkeypatch.setattr(evaluate, "bootstrap_sample", recording)
    np.random.seed(3)
    N = 12 if method == "kendall_tau_a" else 60
    ref = eval_dual_bootstrap(models, rdms, method=METHODS[method], N=N)
    samples = (np.array([a for a, _ in draws]), np.array([b for _, b in draws]))
    ours = evaluate_models(M, D, method, pool="rsatoolbox", samples=samples)
    # every sample's scores and ceilings, for the three kinds of sample
    np.testing.assert_allclose(ours.samples[:, :3], ref.evaluations[:, :, 0, 0, :], atol=1e-12)
    np.testing.assert_allclose(
        ours.samples[:, 3:], ref.noise_ceiling[:, :, 0, :].transpose(1, 0, 2), atol=1e-12
    )
    np.testing.assert_allclose(ours.variance, ref.model_var, rtol=1e-9, atol=1e-15)
    iu = np.triu_indices(3, k=1)
    np.testing.assert_allclose(ours.diff_variance[iu], ref.diff_var, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(ours.ceiling_variance, ref.noise_ceil_var, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(ours.bootstrap_mean, ref.get_means(), atol=1e-12)
    assert ours.dof == ref.dof


def test_variances_agree_with_rsatoolbox_within_monte_carlo_error(data):
    """Independent draws: the corrected SEMs agree within the spread of rsatoolbox's own runs."""
    M, D = data
    models, rdms = _rsatoolbox(M, D)
    N = 300
    refs = []
    for seed in (10, 11):
        np.random.seed(seed)
        refs.append(np.sqrt(eval_dual_bootstrap(models, rdms, method="corr", N=N).model_var))
    refs = np.array(refs)
    ours = evaluate_models(M, D, "pearson", n_bootstrap=N, random_state=0, pool="rsatoolbox")
    # a variance from N samples has a relative SD of about sqrt(2 / N) (7%), an SEM half that;
    # the combination of three bootstraps roughly doubles it
    spread = np.maximum(refs.std(axis=0), 0.07 * refs.mean(axis=0))
    assert np.all(np.abs(ours.sem - refs.mean(axis=0)) < 4 * spread)
    low, high = ours.ci(0.95)
    t = stats.t.ppf(0.975, ours.dof)
    np.testing.assert_allclose(high - ours.mean, t * ours.sem)
    assert np.all(low < ours.mean) and np.all(ours.mean < high)


def test_single_factor_bootstraps_and_their_corrections(data):
    M, D = data
    subj = evaluate_models(M, D, "pearson", bootstrap="subjects", n_bootstrap=200)
    stim = evaluate_models(M, D, "pearson", bootstrap="stimuli", n_bootstrap=200)
    assert subj.dof == D.shape[0] - 1 and stim.dof == 14 - 1
    assert subj.samples.shape == (200, 5, 1)
    # subject bootstrap ≈ the classical SEM across subjects
    classical = evaluate_models(M, D, "pearson", bootstrap="none").sem
    assert np.all(np.abs(subj.sem - classical) < 0.35 * classical), (subj.sem, classical)


def test_corrected_variance_formula():
    v = corrected_variance(np.array(3.0), np.array(1.0), np.array(1.5), 10, 50)
    raw = 10 / 9 * 1.0 + 50 / 49 * 1.5 - 10 * 50 / 49 / 9 * (3.0 - 1.0 - 1.5)
    assert v == pytest.approx(min(max(raw, 10 / 9, 50 / 49 * 1.5), 3.0))


def test_pairwise_tests_and_tables(data):
    M, D = data
    ev = evaluate_models({"a": M[0], "b": M[1], "c": M[2]}, D, "spearman", n_bootstrap=100)
    diff, p = ev.pairwise()
    assert diff[0, 1] == pytest.approx(ev.mean[0] - ev.mean[1]) and np.allclose(p, p.T)
    assert p[0, 1] < 0.05  # the structured model beats the random one
    table = ev.table()
    assert list(table["model"]) == ["a", "b", "c"] and table["p_zero"].iloc[0] < 0.05
    assert len(ev.pairwise_table()) == 3


def test_bootstrap_draws_are_reproducible():
    a = bootstrap_indices(5, 20, 10, random_state=4)
    b = bootstrap_indices(5, 20, 10, random_state=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].shape == (10, 5) and a[1].max() < 20


def test_permutation_test():
    rng = np.random.default_rng(0)
    n = 20
    X = rng.standard_normal((n, 5))
    from brainalign.rsa import compute_rdm

    a = compute_rdm(X)
    b = compute_rdm(X + 0.5 * rng.standard_normal((n, 5)))
    r, p = rdm_permutation_test(a, b, "spearman", n_permutations=500)
    assert r == pytest.approx(stats.spearmanr(a, b).statistic) and p < 0.01
    r0, p0 = rdm_permutation_test(a, compute_rdm(rng.standard_normal((n, 5))), "pearson", 500)
    assert p0 > 0.01 and p0 >= 1 / 501


def test_bad_arguments():
    D = np.random.default_rng(0).random((3, 10))
    with pytest.raises(InputError, match="method"):
        evaluate_models(D[:1], D, "kendall")
    with pytest.raises(InputError, match="different sizes"):
        evaluate_models(np.ones((1, 15)), D)
    with pytest.raises(InputError, match=">= 2 subjects"):
        evaluate_models(D[:1], D[:1])
    with pytest.raises(InputError, match="bootstrap"):
        evaluate_models(D[:1], D, bootstrap="both")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_one_subject_stimulus_bootstrap_equals_rsatoolbox_on_the_same_draws(data, monkeypatch):
    """One subject's RDM (a lab's single-subject data set): rsatoolbox's
    ``eval_bootstrap_pattern`` on the same stimulus draws; no noise ceiling (NaN)."""
    import rsatoolbox.inference.evaluate as evaluate

    M, D = data
    one = D[:1]
    models, rdms = _rsatoolbox(M, one)
    draws = []
    original = evaluate.bootstrap_sample_pattern

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        draws.append(np.asarray(out[1]))
        return out

    monkeypatch.setattr(evaluate, "bootstrap_sample_pattern", recording)
    np.random.seed(3)
    ref = evaluate.eval_bootstrap_pattern(models, rdms, method="corr", N=50)
    stim = np.array(draws)
    ours = evaluate_models(
        M, one, "pearson", bootstrap="stimuli", samples=(np.zeros((len(stim), 1), int), stim)
    )
    np.testing.assert_allclose(ours.samples[:, :3, 0], ref.evaluations, atol=1e-12)
    np.testing.assert_allclose(ours.variance, ref.model_var, rtol=1e-9)
    iu = np.triu_indices(3, k=1)
    np.testing.assert_allclose(ours.diff_variance[iu], ref.diff_var, rtol=1e-9)
    assert ours.dof == ref.dof == 13
    assert np.isnan(ours.ceiling.lower_mean) and np.isnan(ours.ceiling.upper_mean)
    # the independent draws give the same kind of answer: finite SEMs and pairwise tests
    ev = evaluate_models(M, one, "spearman", bootstrap="stimuli", n_bootstrap=100)
    assert np.all(np.isfinite(ev.sem)) and np.all(np.isfinite(ev.pairwise()[1]))


@pytest.mark.parametrize("bootstrap", ["dual", "subjects", "none"])
def test_one_subject_needs_the_stimulus_bootstrap(data, bootstrap):
    M, D = data
    with pytest.raises(InputError, match="bootstrap='stimuli'"):
        evaluate_models(M, D[:1], "pearson", bootstrap=bootstrap)


def test_auto_takes_the_stimulus_bootstrap_for_one_subject_and_dual_for_more(data):
    M, D = data
    assert evaluate_models(M, D[:1], "pearson", bootstrap="auto", n_bootstrap=30).bootstrap == (
        "stimuli"
    )
    assert evaluate_models(M, D, "pearson", bootstrap="auto", n_bootstrap=30).bootstrap == "dual"
