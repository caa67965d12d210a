"""Array backends for the heavy kernels: ``"numpy"`` or ``"torch"`` (CPU or CUDA).

Kernels are written once against the small namespace returned by :func:`get_backend`, in the
spirit of himalaya's backends. Results agree between backends to float tolerance; a GPU is an
accelerator, never a requirement.

>>> B = get_backend("numpy")
>>> X = B.asarray([[1.0, 2.0]])
>>> B.to_numpy(B.matmul(X, X.T))
array([[5.]], dtype=float32)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brainalign.errors import InputError

BACKENDS = ("numpy", "torch")


@dataclass(frozen=True)
class NumpyBackend:
    name: str = "numpy"
    device: str = "cpu"

    def asarray(self, x, dtype=np.float32):
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def zeros(self, shape, dtype=np.float32):
        return np.zeros(shape, dtype=dtype)

    def matmul(self, a, b):
        return a @ b

    def sum(self, x, axis=None, keepdims=False):
        return x.sum(axis=axis, keepdims=keepdims)

    def sqrt(self, x):
        return np.sqrt(x)

    def eigh(self, a):
        return np.linalg.eigh(a)

    def svd(self, a):
        return np.linalg.svd(a, full_matrices=False)

    def topk(self, x, k: int, axis: int = -1):
        """Largest ``k`` values along ``axis``, sorted descending: (values, indices)."""
        idx = np.argpartition(-x, kth=min(k, x.shape[axis]) - 1, axis=axis)
        idx = np.take(idx, np.arange(k), axis=axis)
        vals = np.take_along_axis(x, idx, axis=axis)
        order = np.argsort(-vals, axis=axis, kind="stable")
        return np.take_along_axis(vals, order, axis=axis), np.take_along_axis(idx, order, axis=axis)

    def synchronize(self):
        pass


@dataclass(frozen=True)
class TorchBackend:
    name: str = "torch"
    device: str = "cpu"

    @property
    def torch(self):
        import torch

        return torch

    def asarray(self, x, dtype=None):
        torch = self.torch
        dtype = torch.float32 if dtype is None or dtype is np.float32 else _torch_dtype(dtype)
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=dtype)
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    def to_numpy(self, x) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x
        return x.detach().cpu().numpy()

    def zeros(self, shape, dtype=None):
        torch = self.torch
        return torch.zeros(shape, dtype=dtype or torch.float32, device=self.device)

    def matmul(self, a, b):
        return a @ b

    def sum(self, x, axis=None, keepdims=False):
        if axis is None:
            return x.sum()
        return x.sum(dim=axis, keepdim=keepdims)

    def sqrt(self, x):
        return self.torch.sqrt(x)

    def eigh(self, a):
        return self.torch.linalg.eigh(a)

    def svd(self, a):
        return self.torch.linalg.svd(a, full_matrices=False)

    def topk(self, x, k: int, axis: int = -1):
        out = self.torch.topk(x, k, dim=axis, largest=True, sorted=True)
        return out.values, out.indices

    def synchronize(self):
        if str(self.device).startswith("cuda"):
            self.torch.cuda.synchronize(self.device)


def _torch_dtype(dtype):
    import torch

    return {np.float64: torch.float64, np.float32: torch.float32, np.float16: torch.float16}.get(
        np.dtype(dtype).type, torch.float32
    )


def get_backend(backend: str | Any = "numpy", device: str | None = None):
    """Return the backend object for ``backend`` (``"numpy"`` or ``"torch"``) on ``device``.

    ``device`` is ignored for numpy; for torch it defaults to ``"cpu"`` and may be ``"cuda"``,
    ``"cuda:1"``, ... An unavailable CUDA device raises :class:`InputError`.
    """
    if isinstance(backend, (NumpyBackend, TorchBackend)):
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
        device = device or "cpu"
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"device={device!r}: CUDA is not available here; use device='cpu'")
        return TorchBackend(device=str(device))
    raise InputError(f"backend={backend!r}: expected one of {BACKENDS}")
