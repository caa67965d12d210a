"""Array backends for the heavy kernels: ``"numpy"`` or ``"torch"`` (CPU or CUDA).

Kernels in :mod:`brainalign.rsa`, :mod:`brainalign.encoding` and :mod:`brainalign.decoding` are
written once against the namespace returned by :func:`get_backend`, in the spirit of himalaya's
backends, and never branch on the array type. Both backends define the same names:

=====================  ==========================================================================
``name``, ``device``   ``"numpy"`` / ``"torch"``; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
``parallel_batches``   whether threads over independent batches pay (numpy: yes; torch runs its
                       own thread pool)
``asarray``            to a backend array on the device (``dtype=None`` means float32)
``to_numpy``           back to a numpy array (optionally cast)
``zeros``, ``stack``   constructors
``take``               gather along one axis with an index array of any shape (as ``np.take``)
``permute_dims``,      axis permutation; swap of the last two axes
``matrix_transpose``
``bmm_layout``         lay a stack of matrices out for a fast :func:`bmm`
``matmul``, ``bmm``    matrix product; product of stacks of small matrices
``einsum``
``sum``, ``sumsq``     sum; sum of squares along one axis
``sqrt``, ``exp``,     element-wise
``where``
``eigh``               symmetric eigendecomposition
``rankdata``           ranks along the last axis, ties averaged (``scipy.stats.rankdata``)
=====================  ==========================================================================

The backend is chosen per call (``backend=..., device=...`` arguments), never globally. Results
agree between backends to float tolerance; a GPU is an accelerator, never a requirement.

>>> B = get_backend("numpy")
>>> X = B.asarray([[1.0, 2.0]])
>>> B.to_numpy(B.matmul(X, B.matrix_transpose(X)))
array([[5.]], dtype=float32)
"""

from __future__ import annotations

from brainalign.backend.numpy_backend import NumpyBackend
from brainalign.errors import InputError

BACKENDS = ("numpy", "torch")

__all__ = ["BACKENDS", "NumpyBackend", "get_backend"]


def get_backend(backend="numpy", device: str | None = None):
    """The backend namespace for ``backend`` (``"numpy"`` or ``"torch"``) on ``device``.

    ``device`` must be ``None`` or ``"cpu"`` for numpy; for torch it defaults to ``"cpu"`` and may be
    ``"cuda"``, ``"cuda:1"``, ... An unavailable CUDA device raises :class:`InputError`. A backend
    namespace (what this function returns) is passed through unchanged.
    """
    if not isinstance(backend, str) and hasattr(backend, "asarray"):
        return backend
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise InputError(
                f"device={device!r}: the numpy backend runs on the CPU only; use backend='torch'"
            )
        return NumpyBackend()
    if backend == "torch":
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - torch is a dependency
            raise InputError("backend='torch' needs PyTorch: pip install torch==2.13.0") from exc
        from brainalign.backend.torch_backend import TorchBackend  # imports torch: only here

        device = "cpu" if device is None else str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"device={device!r}: CUDA is not available here; use device='cpu'")
        return TorchBackend(device=device)
    raise InputError(f"backend={backend!r}: expected one of {BACKENDS}")
