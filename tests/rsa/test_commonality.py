"""RDM commonality analysis against plain least-squares regressions (scikit-learn)."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from brainalign.errors import InputError
from brainalign.rsa.commonality import (
    commonality_parts,
    model_subsets,
    part_names,
    rdm_commonality,
)
from brainalign.rsa.rdm import compute_rdm


def r2(X, y, w=None):
    """R² of y on the columns of X, fitted and scored with weights (scikit-learn)."""
    if X.shape[1] == 0:
        return 0.0
    return LinearRegression().fit(X, y, sample_weight=w).score(X, y, sample_weight=w)


def three_model_reference(M, y, w=None):
    """The seven commonality coefficients of three predictors, written out (Seibold & McPhee)."""
    R = {
        s: r2(M[list(s)].T, y, w) for s in [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    }
    return np.array(
        [
            R[0, 1, 2] - R[1, 2],
            R[0, 1, 2] - R[0, 2],
            R[0, 1, 2] - R[0, 1],
            R[0, 2] + R[1, 2] - R[(2,)] - R[0, 1, 2],
            R[0, 1] + R[1, 2] - R[(1,)] - R[0, 1, 2],
            R[0, 1] + R[0, 2] - R[(0,)] - R[0, 1, 2],
            R[(0,)] + R[(1,)] + R[(2,)] - R[0, 1] - R[0, 2] - R[1, 2] + R[0, 1, 2],
        ]
    ), R[0, 1, 2]


def planted(n_stimuli=30, n_subjects=3, noise=0.5, seed=0):
    """Model RDMs from three feature sets sharing a component, data RDMs from two of them."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n_stimuli, 4))
    feats = [np.hstack([shared, rng.standard_normal((n_stimuli, 6))]) for _ in range(3)]
    models = np.array([compute_rdm(f) for f in feats])
    brain = [np.hstack([feats[0], feats[1]]) for _ in range(n_subjects)]
    data = np.array([compute_rdm(b + noise * rng.standard_normal(b.shape)) for b in brain])
    return models, data


def test_parts_equal_plain_regressions():
    models, data = planted()
    parts, total = commonality_parts(models, data)
    assert parts.shape == (7, 3)
    for s in range(data.shape[0]):
        ref, ref_total = three_model_reference(models, data[s])
        np.testing.assert_allclose(parts[:, s], ref, atol=1e-10)
        np.testing.assert_allclose(total[s], ref_total, atol=1e-10)
    np.testing.assert_allclose(parts.sum(0), total, atol=1e-12)


def test_pair_weights_equal_the_expanded_resampled_rdm():
    """A stimulus bootstrap's pair weights give the regression on the resampled RDM (its pairs
    between copies of one stimulus dropped)."""
    models, data = planted(n_stimuli=12, n_subjects=1, seed=2)
    rng = np.random.default_rng(1)
    draw = rng.integers(0, 12, 12)
    counts = np.bincount(draw, minlength=12)
    iu, ju = np.triu_indices(12, 1)
    c = (counts[iu] * counts[ju]).astype(float)
    parts, _ = commonality_parts(models, data, pair_weights=c)
    # the resampled RDM, built the long way
    Ms = np.array([_resample(m, draw) for m in models])
    ys = _resample(data[0], draw)
    ref, _ = three_model_reference(Ms, ys)
    np.testing.assert_allclose(parts[:, 0], ref, atol=1e-10)


def _resample(rdm, draw):
    from scipy.spatial.distance import squareform

    sq = squareform(rdm)[np.ix_(draw, draw)]
    i, j = np.triu_indices(draw.size, 1)
    keep = draw[i] != draw[j]
    return sq[i[keep], j[keep]]


def test_two_models_parts_and_names():
    models, data = planted(seed=3)
    parts, total = commonality_parts(models[:2], data)
    for s in range(data.shape[0]):
        ra = r2(models[[0]].T, data[s])
        rb = r2(models[[1]].T, data[s])
        rab = r2(models[:2].T, data[s])
        np.testing.assert_allclose(parts[:, s], [rab - rb, rab - ra, ra + rb - rab], atol=1e-10)
    assert model_subsets(2) == [(0,), (1,), (0, 1)]
    assert part_names(["a", "b"]) == ["unique a", "unique b", "common a & b"]


def test_unique_part_of_an_irrelevant_model_is_small():
    models, data = planted(n_stimuli=40, noise=0.3, seed=4)
    res = rdm_commonality(models, data, ["a", "b", "c"], n_bootstrap=200, random_state=0)
    est = dict(zip(res.parts, res.estimate, strict=True))
    assert est["unique a"] > 5 * abs(est["unique c"])
    assert est["unique b"] > 5 * abs(est["unique c"])
    lo, hi = res.ci()
    assert lo[0] > 0 and lo[1] > 0
    assert (lo[:-1] <= res.estimate + 1e-12).all() and (res.estimate <= hi[:-1] + 1e-12).all()
    rows = res.to_rows()
    assert rows[-1]["part"] == "total" and rows[-1]["estimate"] == pytest.approx(res.r2)


def test_intervals_cover_the_population_value():
    """Stimulus-bootstrap intervals from 40-stimulus samples cover the unique part measured on
    a much larger stimulus set from the same process most of the time."""
    rng = np.random.default_rng(7)

    def draw(n):
        shared = rng.standard_normal((n, 3))
        f = [np.hstack([shared, rng.standard_normal((n, 5))]) for _ in range(2)]
        brain = np.hstack([f[0], 0.5 * f[1]]) + 0.8 * rng.standard_normal((n, 16))
        return np.array([compute_rdm(x) for x in f]), compute_rdm(brain)

    pm, pd = draw(600)
    truth = commonality_parts(pm, pd)[0][:, 0]
    hits = []
    for rep in range(20):
        m, d = draw(40)
        res = rdm_commonality(m, d, n_bootstrap=100, random_state=rep)
        lo, hi = res.ci()
        hits.append((lo[:3] <= truth) & (truth <= hi[:3]))
    coverage = np.mean(hits, axis=0)
    assert (coverage >= 0.75).all(), coverage


def test_one_subject_bootstraps_stimuli():
    models, data = planted(n_subjects=1, seed=5)
    res = rdm_commonality(models, data[0], n_bootstrap=50, random_state=0)
    assert res.bootstrap == "stimuli" and res.samples.shape == (50, 8)
    parts, total = commonality_parts(models, data)
    np.testing.assert_allclose(res.estimate, parts[:, 0])
    assert res.r2 == pytest.approx(total[0])


def test_bad_input_names_the_argument():
    models, data = planted()
    with pytest.raises(InputError, match="model_rdms"):
        commonality_parts(np.vstack([models, models]), data)
    with pytest.raises(InputError, match="data_rdms"):
        commonality_parts(models, data[:, :-1])
    with pytest.raises(InputError, match="bootstrap"):
        rdm_commonality(models, data, bootstrap="pairs")
    with pytest.raises(InputError, match="model_names"):
        rdm_commonality(models, data, ["a", "b"])
    with pytest.raises(InputError, match="pair_weights"):
        commonality_parts(models, data, pair_weights=-np.ones(models.shape[1]))
