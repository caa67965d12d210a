"""Batched searchlight kernels shared by the numpy and torch backends.

Notation (per centre): ``Z`` (n × v) are the centre's patterns, each row centred and scaled to
unit length, so the brain's correlation-distance RDM is ``1 − G`` with ``G = Z Zᵀ``. A model
enters as a similarity ``K`` with the same sign convention: for features, ``K = Ê Êᵀ`` from
row-standardised features (its RDM is ``1 − K``); for a given RDM ``D``, ``K = −D``. Pearson r
between the RDMs' upper triangles equals Pearson r between the upper triangles of ``G`` and
``K``, which needs only these sums over pairs i < j (N = n (n − 1) / 2 of them):

- ``S_g  = (‖1ᵀZ‖² − Σᵢ‖zᵢ‖²) / 2``
- ``S_gg = (‖ZᵀZ‖²_F − Σᵢ‖zᵢ‖⁴) / 2``           (the Gram matrix is v × v, or n × n if smaller)
- ``S_gK = (tr(ZᵀKZ) − Σᵢ‖zᵢ‖² Kᵢᵢ) / 2``, where ``tr(ZᵀKZ) = ‖FᵀZ‖²_F`` for a factor
  ``F Fᵀ = K`` (features: ``F = Ê`` when d ≤ n) and ``Σ Z ∘ (K Z)`` for a given RDM.

The model's ``S_K`` and ``S_KK`` are constants. No n × n matrix is formed per centre.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from brainalign.errors import InputError

_BLAS_CONTROLLER = []


def _single_thread_blas():
    """A context in which BLAS uses one thread.

    numpy's stacked matmul makes one BLAS call per small matrix; a multithreaded BLAS then
    spends most of its time waking threads (10-40x slower on a loaded machine). The controller
    is built once: building it scans the process's loaded libraries.
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


class Ops:
    """The few array operations the kernels need, for numpy arrays or torch tensors."""

    def __init__(self, backend, dtype):
        self.backend = backend
        self.is_torch = backend.name == "torch"
        self.np_dtype = np.dtype(dtype)
        self.f64 = np.float64
        if self.is_torch:
            import torch

            self.torch = torch
            self.f64 = torch.float64
            self.dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
                self.np_dtype
            ]
        else:
            self.dtype = self.np_dtype

    def asarray(self, x, dtype=None):
        if self.is_torch:
            t = self.torch
            if isinstance(x, t.Tensor):
                return x.to(device=self.backend.device, dtype=dtype or self.dtype)
            return t.as_tensor(np.asarray(x), dtype=dtype or self.dtype, device=self.backend.device)
        return np.asarray(x, dtype=dtype or self.dtype)

    def asindex(self, x):
        if self.is_torch:
            return self.torch.as_tensor(np.asarray(x, dtype=np.int64), device=self.backend.device)
        return np.asarray(x, dtype=np.int64)

    def asmask(self, x):
        if self.is_torch:
            return self.torch.as_tensor(np.asarray(x, dtype=bool), device=self.backend.device)
        return np.asarray(x, dtype=bool)

    def to_numpy(self, x, dtype=np.float64):
        if self.is_torch:
            x = x.detach().cpu().numpy()
        return np.asarray(x, dtype=dtype)

    def take_cols(self, X, idx):
        """``X`` (n, U), ``idx`` (B, w) → (n, B, w)."""
        if self.is_torch:
            return X.index_select(1, idx.reshape(-1)).reshape(X.shape[0], *idx.shape)
        return np.take(X, idx, axis=1)

    def take_rows(self, X, rows):
        if self.is_torch:
            return X.index_select(0, rows)
        return np.take(X, rows, axis=0)

    def where(self, cond, a, b):
        if self.is_torch:
            if not isinstance(b, self.torch.Tensor):
                b = self.torch.tensor(b, dtype=a.dtype, device=a.device)
            return self.torch.where(cond, a, b)
        return np.where(cond, a, b)

    def sum(self, x, axis):
        if self.is_torch:
            return x.sum(dim=axis)
        return x.sum(axis=axis)

    def bmm(self, a, b):
        """Batched matrix product of stacks of small matrices."""
        if self.is_torch:
            return a @ b
        with _single_thread_blas():
            return a @ b

    def bt(self, x):
        """Swap the last two axes."""
        return x.transpose(-1, -2) if self.is_torch else np.swapaxes(x, -1, -2)

    def permute(self, x, axes):
        return x.permute(*axes) if self.is_torch else np.transpose(x, axes)

    def einsum(self, spec, *arrays):
        if self.is_torch:
            return self.torch.einsum(spec, *arrays)
        return np.einsum(spec, *arrays)

    def sumsq(self, x, axis):
        """Sum of squares along ``axis`` without a squared temporary where possible."""
        if self.is_torch:
            return self.torch.linalg.vector_norm(x, dim=axis) ** 2
        x = np.moveaxis(x, axis, -1)
        return np.einsum("...i,...i->...", x, x)

    def sqrt(self, x):
        return self.torch.sqrt(x) if self.is_torch else np.sqrt(x)

    def rank_avg(self, x):
        """Ranks along the last axis with ties averaged (1-based), like ``scipy.stats.rankdata``."""
        n = x.shape[-1]
        if self.is_torch:
            t = self.torch
            s, order = t.sort(x, dim=-1)
            pos = t.arange(n, device=x.device).expand_as(s)
            diff = s[..., 1:] != s[..., :-1]
            true = t.ones(s.shape[:-1] + (1,), dtype=t.bool, device=x.device)
            start_flag = t.cat([true, diff], -1)
            end_flag = t.cat([diff, true], -1)
            start = t.cummax(t.where(start_flag, pos, t.zeros_like(pos)), dim=-1).values
            endr = t.where(end_flag, pos, t.full_like(pos, n - 1)).flip(-1)
            end = t.cummin(endr, dim=-1).values.flip(-1)
            avg = (start + end).to(x.dtype) / 2 + 1
            return t.empty_like(x).scatter_(-1, order, avg)
        order = np.argsort(x, axis=-1, kind="stable")
        s = np.take_along_axis(x, order, -1)
        pos = np.broadcast_to(np.arange(n), s.shape)
        diff = s[..., 1:] != s[..., :-1]
        true = np.ones(s.shape[:-1] + (1,), dtype=bool)
        start = np.maximum.accumulate(np.where(np.concatenate([true, diff], -1), pos, 0), axis=-1)
        endr = np.where(np.concatenate([diff, true], -1), pos, n - 1)[..., ::-1]
        end = np.minimum.accumulate(endr, axis=-1)[..., ::-1]
        avg = (start + end).astype(x.dtype) / 2 + 1
        out = np.empty_like(x)
        np.put_along_axis(out, order, avg, -1)
        return out


def standardise_gathered(ops: Ops, Xg, mask, rtol, zero_padded: bool):
    """Centre and unit-normalise each row of every centre's patterns, in place.

    ``Xg`` (n, B, w) gathered betas; ``mask`` (B, w) marks the valid units. When
    ``zero_padded`` the padded slots already hold zeros (they gathered an appended zero
    column), so plain sums are the valid-unit sums; otherwise masked sums are used. Padded
    slots are zero in the result. A row that is constant over the centre's units (norm below
    ``rtol`` × its raw norm) becomes zero: its correlation with every other image is 0.

    Returns
    -------
    Z : (n, B, w) standardised patterns, zero in padded slots (``Xg`` reused)
    q : (n, B) squared row norms, 1 or 0
    """
    maskf = mask.to(Xg.dtype) if ops.is_torch else mask.astype(Xg.dtype)
    count = ops.sum(maskf, 1)  # (B,)
    if zero_padded:
        s1 = ops.sum(Xg, 2)
        s2 = ops.sumsq(Xg, 2)
    else:
        s1 = ops.einsum("nbw,bw->nb", Xg, maskf)
        s2 = ops.einsum("nbw,nbw,bw->nb", Xg, Xg, maskf)
    mean = s1 / count[None]
    var = s2 - s1 * mean  # Σ (x − mean)² over the valid units
    ok = var > (rtol * rtol) * s2
    scale = ops.where(ok, 1.0 / ops.sqrt(ops.where(ok, var, 1.0)), 0.0)
    Xg -= mean[..., None]
    Xg *= scale[..., None]
    Xg *= maskf[None]
    q = ok.to(Xg.dtype) if ops.is_torch else ok.astype(Xg.dtype)
    return Xg, q


def gram_sq(ops: Ops, Z):
    """``‖ZᵀZ‖²_F`` per centre for ``Z`` (n, B, w), through the smaller Gram matrix."""
    n, _, w = Z.shape
    if w <= n:
        Zt = ops.permute(Z, (1, 2, 0))  # (B, w, n)
        if not ops.is_torch:
            # numpy's stacked matmul is several times faster on contiguous stacks
            Zt = np.ascontiguousarray(Zt)
        G = ops.bmm(Zt, ops.bt(Zt))
    else:
        Zb = ops.permute(Z, (1, 0, 2))  # (B, n, w)
        G = ops.bmm(Zb, ops.bt(Zb))
    return ops.sumsq(G.reshape(G.shape[0], -1), 1)


@dataclass
class BlockModels:
    """Models restricted to one block of images (a subset, or all images)."""

    rows: np.ndarray  # (n_b,) image indices
    feature_factors: list  # backend arrays Fᵀ (k_m, n_b), one per feature model
    feature_ids: list  # model positions of the feature models
    rdm_K: object  # backend array (M_r, n_b, n_b) with K = −D (zero diagonal) or None
    rdm_ids: list
    S_K: np.ndarray  # (M,) float64
    var_K: np.ndarray  # (M,) float64
    diag_is_one: np.ndarray  # (M,) bool: K_ii = 1 (features) or 0 (RDMs)
    condensed: np.ndarray  # (M, N) float64 model RDMs (dissimilarities), for the materialised path
    sources: list = field(default_factory=list)  # (kind, E_b or condensed sub-RDM) per model
    k_total: int = 0
    _dense: object = None

    def dense(self, ops: Ops, dtype=None):
        """All models as dense similarities K (M, n_b²), with their diagonals (built once)."""
        if self._dense is None:
            n_b = self.rows.size
            iu, ju = np.triu_indices(n_b, k=1)
            Ks = []
            for kind, value in self.sources:
                if kind == "features":
                    Ks.append(value @ value.T)
                else:
                    K = np.zeros((n_b, n_b))
                    K[iu, ju] = -value
                    K[ju, iu] = -value
                    Ks.append(K)
            self._dense = ops.asarray(np.stack(Ks).reshape(len(Ks), n_b * n_b), dtype=dtype)
        return self._dense

    def use_nspace(self, width: int) -> bool:
        """Whether the n × n Gram route is cheaper than the v-space route for this width."""
        n = self.rows.size
        n_rdm = len(self.rdm_ids)
        cost_v = n * width * (width + self.k_total + n * n_rdm)
        cost_n = n * n * width + n * n * len(self.sources)
        # the n-space route runs many small products (and a float64 pass) where the v-space
        # route runs one large product; measured on CPUs it pays only when clearly cheaper
        return 1.5 * cost_n < cost_v


def condensed_sub(rdm: np.ndarray, n: int, rows: np.ndarray) -> np.ndarray:
    """The condensed sub-RDM of ``rows`` (any order) from a condensed RDM over ``n`` items."""
    iu, ju = np.triu_indices(rows.size, k=1)
    a, b = rows[iu], rows[ju]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if np.any(lo == hi):
        raise InputError("subsets: an image appears twice in one subset")
    pos = n * lo - lo * (lo + 1) // 2 + (hi - lo - 1)
    return rdm[pos]


def prepare_block(
    ops: Ops, models: list, n_images: int, rows: np.ndarray, need_rdm_free: bool
) -> BlockModels:
    """Precompute the per-model constants of one block. ``models`` items: ("features", Ê) or ("rdm", d)."""
    n_b = rows.size
    N = n_b * (n_b - 1) / 2
    iu, ju = np.triu_indices(n_b, k=1)
    factors, fids, Ks, rids = [], [], [], []
    S_K = np.zeros(len(models))
    var_K = np.zeros(len(models))
    diag1 = np.zeros(len(models), bool)
    condensed = np.zeros((len(models), iu.size))
    for m, (kind, value) in enumerate(models):
        if kind == "features":
            E = value[rows]
            d = E.shape[1]
            H = E @ E.T
            k_up = H[iu, ju]
            condensed[m] = 1.0 - k_up
            diag1[m] = True
            if need_rdm_free:
                if d <= n_b:
                    F = E
                else:
                    # Eᵀ = Q R gives E Eᵀ = Rᵀ R: an n_b-column factor (no eigendecomposition)
                    with _single_thread_blas():
                        F = np.linalg.qr(E.T, mode="r").T
                factors.append(ops.asarray(np.ascontiguousarray(F.T)))
                fids.append(m)
        else:
            dsub = condensed_sub(value, n_images, rows)
            k_up = -dsub
            condensed[m] = dsub
            if need_rdm_free:
                K = np.zeros((n_b, n_b))
                K[iu, ju] = k_up
                K[ju, iu] = k_up
                Ks.append(K)
                rids.append(m)
        S_K[m] = k_up.sum()
        var_K[m] = (k_up @ k_up) / N - (S_K[m] / N) ** 2
        if not var_K[m] > 1e-14 * max(1.0, (k_up @ k_up) / N):
            raise InputError(
                f"models[{m}]: its RDM is constant over the images of a block (size {n_b}), so Pearson r "
                "is undefined; check the model features"
            )
    rdm_K = ops.asarray(np.stack(Ks)) if Ks else None
    sources = [
        (kind, value[rows] if kind == "features" else condensed[m])
        for m, (kind, value) in enumerate(models)
    ]
    k_total = sum(int(F.shape[0]) for F in factors)
    return BlockModels(
        rows, factors, fids, rdm_K, rids, S_K, var_K, diag1, condensed, sources, k_total
    )


def rdm_free_pearson(ops: Ops, Z, q, block: BlockModels):
    """Pearson r (M, B) between each centre's brain RDM and each model, without RDMs."""
    n, B, w = Z.shape
    N = n * (n - 1) / 2
    s1 = ops.to_numpy(ops.sumsq(ops.sum(Z, 0), 1))  # ‖1ᵀZ‖²
    sq = ops.to_numpy(ops.sum(q, 0))  # Σ‖zᵢ‖² = Σ‖zᵢ‖⁴, since ‖zᵢ‖² is 1 or 0
    S_g = (s1 - sq) / 2
    if block.use_nspace(w):
        # wide centres (v > n): one n × n Gram per centre serves every sum
        Zb = ops.permute(Z, (1, 0, 2))  # (B, n, w)
        G = ops.bmm(Zb, ops.bt(Zb)).reshape(B, n * n)
        if n >= 256:
            # n² terms per centre: accumulate the reductions in float64 (a memory-bound pass)
            G = ops.asarray(G, dtype=ops.f64)
        S_gg = (ops.to_numpy(ops.sumsq(G, 1)) - sq) / 2
        T = ops.to_numpy(G @ ops.bt(block.dense(ops, G.dtype))).T  # (M, B): tr(G K)
        S_gK = (T - np.outer(block.diag_is_one, sq)) / 2
    else:
        S_gg = (ops.to_numpy(gram_sq(ops, Z)) - sq) / 2
        S_gK = _vspace_cross(ops, Z, sq, block)
    mean_g = S_g / N
    var_g = S_gg / N - mean_g**2
    cov = S_gK / N - np.outer(block.S_K / N, mean_g)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(np.maximum(var_g, 0.0)[None, :] * block.var_K[:, None])
    r[:, ~(var_g > 1e-12)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _vspace_cross(ops: Ops, Z, sq, block: BlockModels):
    """S_gK (M, B) through ‖FᵀZ‖² (features) and Σ Z ∘ KZ (given RDMs)."""
    n, B, w = Z.shape
    S_gK = np.zeros((block.S_K.size, B))
    Zf = Z.reshape(n, B * w)
    for FT, m in zip(block.feature_factors, block.feature_ids, strict=True):
        P = (FT @ Zf).reshape(FT.shape[0], B, w)  # (k, B, w)
        T = ops.to_numpy(ops.sum(ops.sumsq(P, 0), 1))
        S_gK[m] = (T - sq) / 2
    if block.rdm_K is not None:
        KZ = (block.rdm_K @ Zf).reshape(-1, n, B, w)  # (M_r, n, B, w)
        T = ops.sum(ops.sum(KZ * Z[None], 3), 1)
        S_gK[block.rdm_ids] = ops.to_numpy(T) / 2
    return S_gK


def materialised_compare(ops: Ops, Z, block: BlockModels, method: str):
    """Similarity (M, B) from each centre's materialised brain RDM (B, N)."""
    n, B, w = Z.shape
    Zb = ops.permute(Z, (1, 0, 2))
    G = ops.bmm(Zb, ops.bt(Zb))  # (B, n, n)
    iu, ju = np.triu_indices(n, k=1)
    flat = ops.asindex(iu * n + ju)
    G = G.reshape(B, n * n)
    D = 1.0 - (G.index_select(1, flat) if ops.is_torch else np.take(G, flat, axis=1))  # (B, N)
    models = block.condensed
    if method == "kendall_tau_a":
        from brainalign.rsa.compare import compare_rdms

        return np.asarray(compare_rdms(models, ops.to_numpy(D), method="kendall_tau_a"))
    if method == "spearman":
        D = ops.rank_avg(D)
        models = stats.rankdata(models, axis=1)
    Mm = ops.asarray(models)
    if method in ("pearson", "spearman"):
        D = D - ops.sum(D, 1)[:, None] / D.shape[1]
        Mm = Mm - ops.sum(Mm, 1)[:, None] / Mm.shape[1]
    num = Mm @ ops.bt(D)  # (M, B)
    den = ops.sqrt(ops.sum(Mm * Mm, 1))[:, None] * ops.sqrt(ops.sum(D * D, 1))[None, :]
    num, den = ops.to_numpy(num), ops.to_numpy(den)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[:, ~(den[0] > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)
