import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform

from brainalign.errors import InputError
from brainalign.rsa import (
    compare_rdms,
    compute_rdm,
    make_subsets,
    model_similarity,
    roi_rdms,
    roi_rsa,
)


def paper_roi_rsa(betas, model_feats, mask, subsets):
    """The paper's code path: full RDM with pdist, subsampled per subset, Pearson, mean."""
    X = betas[:, mask]
    X = X[:, ~np.isnan(X).any(0)]
    full_brain = squareform(pdist(X, "correlation"))
    full_model = squareform(pdist(model_feats, "correlation"))
    rs = []
    for s in subsets:
        iu = np.triu_indices(len(s), 1)
        rs.append(np.corrcoef(full_brain[np.ix_(s, s)][iu], full_model[np.ix_(s, s)][iu])[0, 1])
    return np.mean(rs)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n, U = 120, 300
    feats = {"a": rng.standard_normal((n, 16)), "b": rng.standard_normal((n, 40))}
    betas = rng.standard_normal((n, U))
    betas[:, :100] += feats["a"] @ rng.standard_normal((16, 100))
    betas[:, 5] = np.nan
    rois = {"early": np.arange(U) < 100, "ventral": (np.arange(U) >= 100) & (np.arange(U) < 250)}
    return betas, feats, rois


@pytest.mark.parametrize(
    ("backend", "dtype", "tol"),
    [("numpy", "float64", 1e-10), ("torch", "float64", 1e-10), ("numpy", "float32", 2e-6)],
)
def test_subsets_equal_paper_code(data, backend, dtype, tol):
    betas, feats, rois = data
    subsets = make_subsets(betas.shape[0], 30, random_state=0)
    got = roi_rsa(
        betas, feats, rois, sampling="subsets", subsets=subsets, backend=backend, dtype=dtype
    )
    assert isinstance(got, pd.DataFrame) and got.shape == (2, 2)
    assert list(got.index) == ["early", "ventral"] and list(got.columns) == ["a", "b"]
    for roi, mask in rois.items():
        for name, f in feats.items():
            assert got.loc[roi, name] == pytest.approx(
                paper_roi_rsa(betas, f, mask, subsets), abs=tol
            )
    assert got.loc["early", "a"] > 0.3 > abs(got.loc["ventral", "a"])


def test_full_sampling(data):
    betas, feats, rois = data
    got = roi_rsa(betas, feats, rois, sampling="full", dtype="float64")
    X = betas[:, rois["early"]]
    X = X[:, np.isfinite(X).all(0)]
    assert got.loc["early", "b"] == pytest.approx(
        compare_rdms(compute_rdm(X), compute_rdm(feats["b"])), abs=1e-10
    )


def test_roi_rdms_and_model_similarity(data):
    betas, feats, rois = data
    rdms = roi_rdms(betas, rois, images=np.arange(50))
    assert rdms["early"].shape == (50 * 49 // 2,)
    subsets = make_subsets(betas.shape[0], 30, random_state=1)
    sim = model_similarity(feats, betas.shape[0], subsets=subsets)
    expected = np.mean(
        [compare_rdms(compute_rdm(feats["a"][s]), compute_rdm(feats["b"][s])) for s in subsets]
    )
    assert sim.loc["a", "b"] == pytest.approx(expected) and sim.loc["a", "a"] == pytest.approx(1.0)


def test_subsets_shared_across_models_and_rois(data):
    betas, feats, rois = data
    subsets = make_subsets(betas.shape[0], 30, random_state=7)
    together = roi_rsa(betas, feats, rois, subsets=subsets, dtype="float64")
    alone = roi_rsa(
        betas, {"b": feats["b"]}, {"ventral": rois["ventral"]}, subsets=subsets, dtype="float64"
    )
    assert together.loc["ventral", "b"] == pytest.approx(alone.loc["ventral", "b"], abs=1e-12)


def test_bad_inputs(data):
    betas, feats, rois = data
    with pytest.raises(InputError, match="subsets"):
        roi_rsa(betas, feats, rois)
    with pytest.raises(InputError, match="shape"):
        roi_rsa(betas, feats, {"x": np.ones(10, bool)}, sampling="full")
    with pytest.raises(InputError, match="at least 2"):
        roi_rsa(betas, feats, {"x": np.array([4])}, sampling="full")
    with pytest.raises(InputError, match="finite"):
        roi_rsa(betas, feats, {"x": np.array([5, 6])}, sampling="full")
    with pytest.raises(InputError, match="sampling"):
        roi_rsa(betas, feats, rois, sampling="half")
