import numpy as np
import pytest
from scipy.spatial.distance import pdist

from brainalign.errors import InputError
from brainalign.rsa import compute_rdm, condense, from_rsatoolbox, squareform_rdm, to_rsatoolbox

rsatoolbox = pytest.importorskip("rsatoolbox")


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean"])
def test_compute_rdm_equals_rsatoolbox_and_scipy(rng, metric):
    X = rng.standard_normal((30, 17))
    ours = compute_rdm(X, metric)
    if metric != "cosine":  # rsatoolbox's calc_rdm has no cosine distance
        theirs = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(X), method=metric).get_vectors()[0]
        if metric == "euclidean":
            # rsatoolbox's "euclidean" is the squared distance divided by the number of channels
            theirs = np.sqrt(theirs * X.shape[1])
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(ours, pdist(X, metric), atol=1e-10)


def test_square_roundtrip(rng):
    d = compute_rdm(rng.standard_normal((9, 4)))
    sq = squareform_rdm(d)
    assert sq.shape == (9, 9) and np.allclose(sq, sq.T) and np.all(np.diag(sq) == 0)
    np.testing.assert_array_equal(condense(sq), d)


def test_constant_row_raises(rng):
    X = rng.standard_normal((5, 4))
    X[2] = 3.0
    with pytest.raises(InputError, match="rows \\[2\\]"):
        compute_rdm(X)
    assert compute_rdm(X, "euclidean").shape == (10,)


def test_bad_inputs(rng):
    with pytest.raises(InputError, match="2-D"):
        compute_rdm(rng.standard_normal(5))
    with pytest.raises(InputError, match="NaN"):
        compute_rdm(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(InputError, match="metric"):
        compute_rdm(rng.standard_normal((4, 3)), "manhattan")
    with pytest.raises(InputError, match="n \\(n - 1\\) / 2"):
        squareform_rdm(np.ones(7))


def test_rsatoolbox_roundtrip_keeps_descriptors(rng):
    rdms = np.stack([compute_rdm(rng.standard_normal((6, 3))) for _ in range(3)])
    obj = to_rsatoolbox(
        rdms,
        descriptors={"subject": 1},
        rdm_descriptors={"roi": ["early", "ventral", "lateral"]},
        pattern_descriptors={"image": [10, 11, 12, 13, 14, 15]},
    )
    assert isinstance(obj, rsatoolbox.rdm.RDMs)
    back, meta = from_rsatoolbox(obj)
    np.testing.assert_array_equal(back, rdms)
    assert meta["descriptors"]["subject"] == 1
    assert meta["rdm_descriptors"]["roi"] == ["early", "ventral", "lateral"]
    assert meta["pattern_descriptors"]["image"] == [10, 11, 12, 13, 14, 15]
    assert meta["metric"] == "correlation"
    with pytest.raises(InputError):
        from_rsatoolbox(rdms)
