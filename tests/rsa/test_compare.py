import numpy as np
import pytest

from brainalign.errors import InputError
from brainalign.rsa import compare_rdms, compute_rdm

rsatoolbox = pytest.importorskip("rsatoolbox")

PEER = {"pearson": "corr", "spearman": "spearman", "cosine": "cosine", "kendall_tau_a": "tau-a"}


@pytest.mark.parametrize("method", list(PEER))
def test_equals_rsatoolbox_all_pairs(rng, method):
    a = np.stack([compute_rdm(rng.standard_normal((15, 6))) for _ in range(3)])
    b = np.stack([compute_rdm(rng.standard_normal((15, 4))) for _ in range(2)])
    b[1] = np.round(b[1], 1)  # ties, which matter for the rank methods
    ours = compare_rdms(a, b, method)
    theirs = rsatoolbox.rdm.compare(
        rsatoolbox.rdm.RDMs(a), rsatoolbox.rdm.RDMs(b), method=PEER[method]
    )
    assert ours.shape == (3, 2)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_shapes(rng):
    a = compute_rdm(rng.standard_normal((8, 3)))
    B = np.stack([compute_rdm(rng.standard_normal((8, 3))) for _ in range(4)])
    assert isinstance(compare_rdms(a, a), float)
    assert compare_rdms(a, a) == pytest.approx(1.0)
    assert compare_rdms(a, B).shape == (4,)
    assert compare_rdms(B, a).shape == (4,)


def test_mismatched_and_nan(rng):
    a = compute_rdm(rng.standard_normal((8, 3)))
    b = compute_rdm(rng.standard_normal((9, 3)))
    with pytest.raises(InputError, match="different sizes"):
        compare_rdms(a, b)
    a2 = a.copy()
    a2[0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        compare_rdms(a2, a)
    with pytest.raises(InputError, match="method"):
        compare_rdms(a, a, "kendall")
