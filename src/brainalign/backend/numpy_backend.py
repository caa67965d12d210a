"""The numpy backend (CPU). See :mod:`brainalign.backend` for the shared names."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
from scipy import stats

_BLAS_CONTROLLER = []


def single_thread_blas():
    """A context in which BLAS uses one thread.

    numpy's stacked matmul makes one BLAS call per small matrix, and the eigendecompositions here
    are small; a multithreaded BLAS then spends most of its time waking threads (10-100x slower on
    a loaded machine). The controller is built once: building it scans the process's libraries.
    """
    if not _BLAS_CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER.append(ThreadpoolController())
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            _BLAS_CONTROLLER.append(None)
    controller = _BLAS_CONTROLLER[0]
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class NumpyBackend:
    """numpy arrays on the CPU."""

    name: str = "numpy"
    device: str = "cpu"
    # batches of centres or targets are independent and numpy's products release the GIL, so
    # threads over batches share the cores while each BLAS call stays single-threaded
    parallel_batches: bool = True

    # ---- conversion and construction -------------------------------------------------------------
    def asarray(self, x, dtype=None) -> np.ndarray:
        """``x`` as an array of ``dtype`` (float32 when None); no copy when nothing changes."""
        return np.asarray(x, dtype=np.float32 if dtype is None else dtype)

    def to_numpy(self, x, dtype=None) -> np.ndarray:
        """``x`` as a numpy array, cast to ``dtype`` when given."""
        return np.asarray(x, dtype=dtype)

    def zeros(self, shape, dtype=None) -> np.ndarray:
        return np.zeros(shape, dtype=np.float32 if dtype is None else dtype)

    def stack(self, arrays, axis: int = 0) -> np.ndarray:
        return np.stack(arrays, axis=axis)

    # ---- indexing and layout ---------------------------------------------------------------------
    def take(self, x, indices, axis: int):
        """Elements of ``x`` at ``indices`` (an index array of any shape) along ``axis``."""
        return np.take(x, indices, axis=axis)

    def permute_dims(self, x, axes):
        return np.transpose(x, axes)

    def matrix_transpose(self, x):
        """Swap the last two axes (a view)."""
        return np.swapaxes(x, -1, -2)

    def bmm_layout(self, x):
        """``x`` laid out for a fast :meth:`bmm`: numpy's stacked matmul is several times faster on
        C-contiguous stacks."""
        return np.ascontiguousarray(x)

    # ---- products and reductions -----------------------------------------------------------------
    def matmul(self, a, b):
        return a @ b

    def bmm(self, a, b):
        """Product of stacks of small matrices, one BLAS thread per product."""
        with single_thread_blas():
            return a @ b

    def einsum(self, spec: str, *arrays):
        return np.einsum(spec, *arrays)

    def sum(self, x, axis=None, keepdims: bool = False):
        return x.sum(axis=axis, keepdims=keepdims)

    def sumsq(self, x, axis: int):
        """Sum of squares along ``axis``, without a squared temporary."""
        x = np.moveaxis(x, axis, -1)
        return np.einsum("...i,...i->...", x, x)

    # ---- element-wise ----------------------------------------------------------------------------
    def sqrt(self, x):
        return np.sqrt(x)

    def exp(self, x):
        return np.exp(x)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    # ---- linear algebra and ranks ----------------------------------------------------------------
    def eigh(self, a):
        """Eigenvalues (ascending) and eigenvectors of a symmetric matrix. Small ones on one BLAS
        thread (multithreaded LAPACK is up to 100x slower on them on a busy machine); from
        2,048 rows on (a decoder's n × n kernel) with BLAS's threads, which then pay."""
        if a.shape[-1] >= 2048:
            return np.linalg.eigh(a)
        with single_thread_blas():
            return np.linalg.eigh(a)

    def rankdata(self, x):
        """Ranks (1-based) along the last axis, ties averaged, in ``x``'s float dtype (else float64)."""
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return stats.rankdata(x, axis=-1).astype(dtype, copy=False)
