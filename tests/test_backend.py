"""Every backend function against numpy, on each backend (torch on the CPU, and CUDA when present)."""

import numpy as np
import pytest
import torch
from scipy import stats

from brainalign.backend import BACKENDS, get_backend
from brainalign.backend.numpy_backend import NumpyBackend
from brainalign.backend.torch_backend import TorchBackend
from brainalign.errors import InputError

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
#: every backend on the CPU, and torch on CUDA when present
CASES = [
    *((name, None if name == "numpy" else "cpu") for name in BACKENDS),
    pytest.param(("torch", "cuda"), marks=CUDA),
]


@pytest.fixture(params=CASES, ids=[*BACKENDS, "torch-cuda"])
def xp(request):
    name, device = request.param
    return get_backend(name, device)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _np(xp, x):
    return xp.to_numpy(x)


def test_both_backends_define_the_same_names():
    public = {n for n in dir(NumpyBackend) if not n.startswith("_")}
    assert public == {n for n in dir(TorchBackend) if not n.startswith("_")}
    assert {"asarray", "to_numpy", "take", "bmm", "rankdata", "eigh"} <= public


def test_get_backend(xp):
    assert xp.name in BACKENDS
    assert get_backend(xp) is xp  # a namespace passes through
    with pytest.raises(InputError, match="expected one of"):
        get_backend("cupy")
    with pytest.raises(InputError, match="CPU only"):
        get_backend("numpy", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            get_backend("torch", "cuda")


def test_asarray_and_to_numpy(xp, rng):
    x = rng.standard_normal((3, 4))
    a = xp.asarray(x)
    assert _np(xp, a).dtype == np.float32  # None means float32
    np.testing.assert_array_equal(_np(xp, a), x.astype(np.float32))
    assert _np(xp, xp.asarray(x, dtype=np.float64)).dtype == np.float64
    assert _np(xp, xp.asarray(x, dtype="float64")).dtype == np.float64
    np.testing.assert_array_equal(_np(xp, xp.asarray([0, 2, 1], dtype=np.int64)), [0, 2, 1])
    assert _np(xp, xp.asarray([True, False], dtype=bool)).dtype == bool
    # an array of the backend converts again (dtype change), and to_numpy casts on request
    np.testing.assert_array_equal(_np(xp, xp.asarray(a, dtype=np.float64)), x.astype(np.float32))
    assert xp.to_numpy(a, dtype=np.float64).dtype == np.float64
    if xp.name == "torch":
        assert a.device.type == torch.device(xp.device).type
        assert xp.asarray(a, dtype=a.dtype).dtype == torch.float32  # native dtypes too
        with pytest.raises(InputError, match="dtype"):
            xp.asarray(x, dtype=np.complex64)


def test_constructors(xp, rng):
    z = xp.zeros((2, 3))
    np.testing.assert_array_equal(_np(xp, z), np.zeros((2, 3), np.float32))
    assert _np(xp, xp.zeros(2, dtype=np.float64)).dtype == np.float64
    parts = [rng.standard_normal(4) for _ in range(3)]
    for axis in (0, 1):
        np.testing.assert_array_equal(
            _np(xp, xp.stack([xp.asarray(p, dtype=np.float64) for p in parts], axis=axis)),
            np.stack(parts, axis=axis),
        )


def test_take_and_layout(xp, rng):
    x = rng.standard_normal((5, 6, 7))
    X = xp.asarray(x, dtype=np.float64)
    idx = np.array([[0, 3], [5, 5], [2, 1]])
    for axis in (0, 1, 2, -1):
        i = idx % x.shape[axis]
        np.testing.assert_array_equal(
            _np(xp, xp.take(X, xp.asarray(i, dtype=np.int64), axis)), np.take(x, i, axis=axis)
        )
    np.testing.assert_array_equal(
        _np(xp, xp.permute_dims(X, (2, 0, 1))), np.transpose(x, (2, 0, 1))
    )
    np.testing.assert_array_equal(_np(xp, xp.matrix_transpose(X)), np.swapaxes(x, -1, -2))
    np.testing.assert_array_equal(
        _np(xp, xp.bmm_layout(xp.permute_dims(X, (1, 0, 2)))), x.transpose(1, 0, 2)
    )


def test_products_and_reductions(xp, rng):
    a = rng.standard_normal((4, 3, 5))
    b = rng.standard_normal((4, 5, 2))
    A, Bm = xp.asarray(a, dtype=np.float64), xp.asarray(b, dtype=np.float64)
    np.testing.assert_allclose(_np(xp, xp.matmul(A[0], Bm[0])), a[0] @ b[0], rtol=1e-12)
    np.testing.assert_allclose(_np(xp, xp.bmm(A, Bm)), a @ b, rtol=1e-12)
    np.testing.assert_allclose(
        _np(xp, xp.einsum("bij,bjk->bik", A, Bm)), np.einsum("bij,bjk->bik", a, b), rtol=1e-12
    )
    np.testing.assert_allclose(_np(xp, xp.sum(A)), a.sum(), rtol=1e-12)
    for axis in (0, 1, 2):
        np.testing.assert_allclose(_np(xp, xp.sum(A, axis)), a.sum(axis), rtol=1e-12)
        np.testing.assert_allclose(_np(xp, xp.sumsq(A, axis)), (a * a).sum(axis), rtol=1e-12)
    np.testing.assert_allclose(
        _np(xp, xp.sum(A, 1, keepdims=True)), a.sum(1, keepdims=True), rtol=1e-12
    )


def test_elementwise(xp, rng):
    x = rng.standard_normal(10)
    X = xp.asarray(x, dtype=np.float64)
    np.testing.assert_allclose(
        _np(xp, xp.sqrt(xp.asarray(np.abs(x), dtype=np.float64))), np.sqrt(np.abs(x))
    )
    np.testing.assert_allclose(_np(xp, xp.exp(X)), np.exp(x), rtol=1e-14)
    cond = x > 0
    C = xp.asarray(cond, dtype=bool)
    np.testing.assert_array_equal(_np(xp, xp.where(C, X, X * 0 - 1)), np.where(cond, x, -1.0))
    got = xp.where(C, X, 0.0)  # a Python scalar takes the array's dtype
    assert _np(xp, got).dtype == np.float64
    np.testing.assert_array_equal(_np(xp, got), np.where(cond, x, 0.0))


def test_eigh(xp, rng):
    m = rng.standard_normal((6, 6))
    m = m @ m.T
    lam, V = xp.eigh(xp.asarray(m, dtype=np.float64))
    lam_ref = np.linalg.eigh(m)[0]
    np.testing.assert_allclose(_np(xp, lam), lam_ref, rtol=1e-10)
    V = _np(xp, V)
    np.testing.assert_allclose(V @ np.diag(lam_ref) @ V.T, m, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rankdata_equals_scipy(xp, rng, dtype):
    x = rng.integers(0, 6, size=(4, 30)).astype(dtype)  # many ties
    x[1] = rng.standard_normal(30)  # none
    x[2] = 1.0  # all tied
    got = _np(xp, xp.rankdata(xp.asarray(x, dtype=dtype)))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, stats.rankdata(x, axis=-1))
    ints = _np(xp, xp.rankdata(xp.asarray([3, 1, 3], dtype=np.int64)))
    np.testing.assert_array_equal(ints, [2.5, 1.0, 2.5])
