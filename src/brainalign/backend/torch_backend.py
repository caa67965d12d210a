"""The torch backend (CPU or CUDA, chosen by ``device``). See :mod:`brainalign.backend`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from brainalign.errors import InputError

_DTYPES = {
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
    np.dtype(bool): torch.bool,
}


def torch_dtype(dtype) -> torch.dtype:
    """The torch dtype for a numpy dtype (or name, or torch dtype); None means float32."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise InputError(
            f"dtype={dtype!r}: the torch backend supports {sorted(str(d) for d in _DTYPES)}"
        ) from None


@dataclass(frozen=True)
class TorchBackend:
    """torch tensors on ``device``."""

    name: str = "torch"
    device: str = "cpu"
    # torch runs its own intra-op thread pool; more threads over batches only compete with it
    parallel_batches: bool = False

    # ---- conversion and construction -------------------------------------------------------------
    def asarray(self, x, dtype=None) -> torch.Tensor:
        """``x`` as a tensor of ``dtype`` (float32 when None) on the device."""
        dtype = torch_dtype(dtype)
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=dtype)
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    def to_numpy(self, x, dtype=None) -> np.ndarray:
        """``x`` as a numpy array (copied to the host), cast to ``dtype`` when given."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        return np.asarray(x, dtype=dtype)

    def zeros(self, shape, dtype=None) -> torch.Tensor:
        return torch.zeros(shape, dtype=torch_dtype(dtype), device=self.device)

    def stack(self, arrays, axis: int = 0) -> torch.Tensor:
        return torch.stack(list(arrays), dim=axis)

    # ---- indexing and layout ---------------------------------------------------------------------
    def take(self, x, indices, axis: int):
        """Elements of ``x`` at ``indices`` (an index tensor of any shape) along ``axis``."""
        axis = axis % x.ndim
        out = x.index_select(axis, indices.reshape(-1))
        return out.reshape(*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :])

    def permute_dims(self, x, axes):
        return x.permute(*axes)

    def matrix_transpose(self, x):
        """Swap the last two axes (a view)."""
        return x.transpose(-1, -2)

    def bmm_layout(self, x):
        """``x`` as it is: torch's batched products handle strided stacks themselves."""
        return x

    # ---- products and reductions -----------------------------------------------------------------
    def matmul(self, a, b):
        return a @ b

    def bmm(self, a, b):
        """Product of stacks of small matrices."""
        return a @ b

    def einsum(self, spec: str, *arrays):
        return torch.einsum(spec, *arrays)

    def sum(self, x, axis=None, keepdims: bool = False):
        if axis is None:
            return x.sum()
        return x.sum(dim=axis, keepdim=keepdims)

    def sumsq(self, x, axis: int):
        """Sum of squares along ``axis``, without a squared temporary."""
        return torch.linalg.vector_norm(x, dim=axis) ** 2

    # ---- element-wise ----------------------------------------------------------------------------
    def sqrt(self, x):
        return torch.sqrt(x)

    def exp(self, x):
        return torch.exp(x)

    def where(self, cond, a, b):
        """``a`` where ``cond`` else ``b``; a Python scalar ``b`` takes ``a``'s dtype."""
        if not isinstance(b, torch.Tensor):
            b = torch.tensor(b, dtype=a.dtype, device=a.device)
        return torch.where(cond, a, b)

    # ---- linear algebra and ranks ----------------------------------------------------------------
    def eigh(self, a):
        """Eigenvalues (ascending) and eigenvectors of a symmetric matrix."""
        return torch.linalg.eigh(a)

    def rankdata(self, x):
        """Ranks (1-based) along the last axis, ties averaged, in ``x``'s float dtype (else float64).

        Equal to ``scipy.stats.rankdata(x, axis=-1)``: after a sort, each run of equal values
        spans positions ``start..end`` and gets ``(start + end) / 2 + 1``.
        """
        n = x.shape[-1]
        s, order = torch.sort(x, dim=-1)
        pos = torch.arange(n, device=x.device).expand_as(s)
        diff = s[..., 1:] != s[..., :-1]
        true = torch.ones(s.shape[:-1] + (1,), dtype=torch.bool, device=x.device)
        start_flag = torch.cat([true, diff], -1)
        end_flag = torch.cat([diff, true], -1)
        start = torch.cummax(torch.where(start_flag, pos, torch.zeros_like(pos)), dim=-1).values
        end_rev = torch.where(end_flag, pos, torch.full_like(pos, n - 1)).flip(-1)
        end = torch.cummin(end_rev, dim=-1).values.flip(-1)
        dtype = x.dtype if x.is_floating_point() else torch.float64
        avg = (start + end).to(dtype) / 2 + 1
        return torch.empty_like(x, dtype=dtype).scatter_(-1, order, avg)
