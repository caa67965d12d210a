import numpy as np
import pytest
from scipy import stats

from brainalign.errors import InputError
from brainalign.stats import compare_models, fdr, one_sample_t, paired_t, sign_flip, ttest_ind_paper


def test_one_sample_and_paired_equal_scipy(rng):
    x = rng.standard_normal((8, 50)) + 0.3
    t, p = one_sample_t(x)
    ref = stats.ttest_1samp(x, 0.0, axis=0)
    np.testing.assert_allclose(t, ref.statistic)
    np.testing.assert_allclose(p, ref.pvalue)
    y = x + rng.standard_normal(x.shape)
    t2, p2 = paired_t(x, y)
    ref2 = stats.ttest_rel(x, y, axis=0)
    np.testing.assert_allclose(t2, ref2.statistic)
    np.testing.assert_allclose(p2, ref2.pvalue)
    _, pg = one_sample_t(x, tail="greater")
    np.testing.assert_allclose(pg, stats.ttest_1samp(x, 0.0, axis=0, alternative="greater").pvalue)


def test_paper_compat_is_unpaired(rng):
    a, b = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
    t, p = compare_models(a, b, paper_compat=True)
    np.testing.assert_allclose(p, stats.ttest_ind(a, b, axis=0).pvalue)
    np.testing.assert_allclose(compare_models(a, b).p, stats.ttest_rel(a, b, axis=0).pvalue)
    np.testing.assert_allclose(ttest_ind_paper(a, b).t, t)


def test_fdr_equals_scipy(rng):
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, size=20)])
    reject, q = fdr(p, 0.05)
    np.testing.assert_allclose(q, stats.false_discovery_control(p, method="bh"))
    np.testing.assert_array_equal(reject, q <= 0.05)
    p2 = p.copy()
    p2[3] = np.nan
    r2, q2 = fdr(p2)
    assert np.isnan(q2[3]) and not r2[3]
    np.testing.assert_allclose(np.delete(q2, 3), stats.false_discovery_control(np.delete(p, 3)))
    with pytest.raises(InputError):
        fdr(p, q=1.5)


def test_sign_flip_exact_equals_enumeration(rng):
    x = rng.standard_normal((6, 4)) + np.array([0, 0.5, 1.0, 2.0])
    res = sign_flip(x)
    assert res.exact and res.n_flips == 64
    import itertools

    t_obs = stats.ttest_1samp(x, 0, axis=0).statistic
    np.testing.assert_allclose(res.stat, t_obs)
    null = np.array(
        [
            stats.ttest_1samp(x * np.array(f)[:, None], 0, axis=0).statistic
            for f in itertools.product([1, -1], repeat=6)
        ]
    )
    expected = (np.abs(null) >= np.abs(t_obs) - 1e-12).mean(0)
    np.testing.assert_allclose(res.p, expected)
    maxnull = np.abs(null).max(1)
    np.testing.assert_allclose(res.p_fwer, [(maxnull >= abs(t) - 1e-12).mean() for t in t_obs])
    assert res.p[3] <= res.p[0]


def test_sign_flip_random_when_many_subjects(rng):
    res = sign_flip(rng.standard_normal((15, 3)), n_permutations=500)
    assert not res.exact and res.n_flips == 500 and np.all(res.p >= 1 / 500)


def test_null_fdr_fpr_and_sign_flip_uniform():
    """Under a null dataset the FDR map has FPR ≤ 5 % and exact sign-flip p-values are uniform."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 4000))
    _, p = one_sample_t(x)
    reject, _ = fdr(p, 0.05)
    assert reject.mean() <= 0.05
    res = sign_flip(x, stat="mean")
    # exact p-values live on a grid of 2/256; compare with a uniform at the grid's resolution
    ks = stats.kstest(res.p - rng.uniform(0, 2 / 256, size=res.p.size), "uniform")
    assert ks.pvalue > 0.01
    assert stats.kstest(p, "uniform").pvalue > 0.01


def test_bad_inputs(rng):
    with pytest.raises(InputError):
        one_sample_t(np.ones(1))
    with pytest.raises(InputError, match="same shape"):
        paired_t(np.ones((3, 2)), np.ones((3, 3)))
    x = rng.standard_normal((5, 3))
    x[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        sign_flip(x)
    t, _ = one_sample_t(x)
    assert np.isnan(t[0]) and np.isfinite(t[1:]).all()
