"""Batched searchlight kernels, written once against a backend namespace ``xp`` (numpy or torch,
see :mod:`brainalign.backend`).

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

The model's ``S_K`` and ``S_KK`` are constants, and for features they too come from moments:
``S_K = (‖1ᵀÊ‖² − Σᵢ‖êᵢ‖²) / 2`` and ``S_KK = (‖ÊᵀÊ‖²_F − Σᵢ‖êᵢ‖⁴) / 2``. No n × n matrix is
formed per centre, and none for a model given as features unless the block is small enough
that one is cheaper (:data:`DENSE_MODEL_BYTES`); Gram matrices too large for memory are reduced
block by block (:data:`GRAM_BLOCK_ENTRIES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from brainalign.backend import get_backend
from brainalign.backend.numpy_backend import single_thread_blas
from brainalign.errors import InputError
from brainalign.rsa.compare import compare_rdms

#: a block's models are held as dense n_b × n_b similarities (for the n-space route) only when
#: all of them together take at most this many bytes (float64); larger blocks never form them
DENSE_MODEL_BYTES = 64 << 20
#: Gram matrices with more entries than this are reduced a block of rows at a time
GRAM_BLOCK_ENTRIES = 1 << 25


def standardise_gathered(xp, Xg, mask, rtol, zero_padded: bool):
    """Centre and unit-normalise each row of every centre's patterns, in place.

    ``Xg`` (n, B, w) gathered betas on backend ``xp``; ``mask`` (B, w) marks the valid units. When
    ``zero_padded`` the padded slots already hold zeros (they gathered an appended zero
    column), so plain sums are the valid-unit sums; otherwise masked sums are used. Padded
    slots are zero in the result. A row that is constant over the centre's units (norm below
    ``rtol`` × its raw norm) becomes zero: its correlation with every other image is 0.

    Returns
    -------
    Z : (n, B, w) standardised patterns, zero in padded slots (``Xg`` reused)
    q : (n, B) squared row norms, 1 or 0
    """
    maskf = xp.asarray(mask, dtype=Xg.dtype)
    count = xp.sum(maskf, 1)  # (B,)
    if zero_padded:
        s1 = xp.sum(Xg, 2)
        s2 = xp.sumsq(Xg, 2)
    else:
        s1 = xp.einsum("nbw,bw->nb", Xg, maskf)
        s2 = xp.einsum("nbw,nbw,bw->nb", Xg, Xg, maskf)
    mean = s1 / count[None]
    var = s2 - s1 * mean  # Σ (x − mean)² over the valid units
    ok = var > (rtol * rtol) * s2
    scale = xp.where(ok, 1.0 / xp.sqrt(xp.where(ok, var, 1.0)), 0.0)
    Xg -= mean[..., None]
    Xg *= scale[..., None]
    Xg *= maskf[None]
    q = xp.asarray(ok, dtype=Xg.dtype)
    return Xg, q


def gram_sq(xp, Z) -> np.ndarray:
    """``‖ZᵀZ‖²_F`` per centre (numpy float64, (B,)) for ``Z`` (n, B, w), through the smaller Gram
    matrix, a block of its rows at a time when it is large (e.g. one wide ROI over many images)."""
    n, B, w = Z.shape
    if w <= n:
        A = xp.bmm_layout(xp.permute_dims(Z, (1, 2, 0)))  # (B, w, n)
    else:
        A = xp.permute_dims(Z, (1, 0, 2))  # (B, n, w)
    m = A.shape[1]
    if B * m * m <= GRAM_BLOCK_ENTRIES:
        G = xp.bmm(A, xp.matrix_transpose(A))
        return _f64(xp, xp.sumsq(G.reshape(B, -1), 1))
    At = xp.matrix_transpose(A)
    step = max(1, GRAM_BLOCK_ENTRIES // (B * m))
    total = np.zeros(B)
    for start in range(0, m, step):
        # few, large products: let BLAS use its threads
        G = xp.matmul(A[:, start : start + step], At)  # (B, step, m)
        total += _f64(xp, xp.sumsq(G.reshape(B, -1), 1))
    return total


def feature_pair_sums(E: np.ndarray) -> tuple[float, float]:
    """``Σ_{i<j} K_ij`` and ``Σ_{i<j} K_ij²`` of ``K = E Eᵀ`` for ``E`` (n, d), without ``K``.

    Computed in float64 from ``1ᵀE`` and the smaller Gram matrix (``EᵀE`` or ``EEᵀ``, a block of
    rows at a time when large).
    """
    E = np.asarray(E, dtype=np.float64)
    s = E.sum(0)
    norms = np.einsum("ij,ij->i", E, E)
    gram_ss = gram_sq(get_backend("numpy"), E[:, None, :])[0]  # one "centre" holding all of E
    return (float(s @ s) - norms.sum()) / 2, (gram_ss - (norms * norms).sum()) / 2


def feature_factor(E: np.ndarray) -> np.ndarray:
    """A factor ``F`` (n, k) with ``F Fᵀ = E Eᵀ`` and k = min(d, n) where that stays small.

    ``Eᵀ = Q R`` gives ``E Eᵀ = Rᵀ R``, an n-column factor (no eigendecomposition), used when
    d > n and the n × n triangle fits in :data:`DENSE_MODEL_BYTES`; otherwise ``E`` itself.
    """
    n, d = E.shape
    if d <= n or n * n * 8 > DENSE_MODEL_BYTES:
        return E
    with single_thread_blas():
        return np.linalg.qr(E.T, mode="r").T


def _centre_gram(xp, Z):
    """The n × n Gram matrix ``Z Zᵀ`` of each centre: (B, n, n) for ``Z`` (n, B, w)."""
    Zb = xp.permute_dims(Z, (1, 0, 2))  # (B, n, w)
    return xp.bmm(Zb, xp.matrix_transpose(Zb))


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
    sources: list = field(default_factory=list)  # (kind, Ê_b or condensed sub-RDM) per model
    k_total: int = 0
    _dense: object = None
    _condensed: object = None

    @property
    def condensed(self) -> np.ndarray:
        """(M, N) float64 model RDMs (dissimilarities) over the block's pairs, built on first use
        (by the materialised path, which holds RDMs by nature)."""
        if self._condensed is None:
            iu, ju = np.triu_indices(self.rows.size, k=1)
            self._condensed = np.stack(
                [
                    1.0 - (value @ value.T)[iu, ju] if kind == "features" else value
                    for kind, value in self.sources
                ]
            )
        return self._condensed

    def dense(self, xp, dtype):
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
            self._dense = xp.asarray(np.stack(Ks).reshape(len(Ks), n_b * n_b), dtype=dtype)
        return self._dense

    def use_nspace(self, width: int) -> bool:
        """Whether the n × n Gram route is cheaper than the v-space route for this width.

        Never for blocks whose dense model similarities would exceed :data:`DENSE_MODEL_BYTES`.
        """
        n = self.rows.size
        if n * n * len(self.sources) * 8 > DENSE_MODEL_BYTES:
            return False
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
    xp, models: list, n_images: int, rows: np.ndarray, need_rdm_free: bool, dtype=np.float32
) -> BlockModels:
    """Precompute the per-model constants of one block. ``models`` items: ("features", Ê) or ("rdm", d).

    The factors and similarities of the RDM-free kernel (``need_rdm_free``) are ``dtype`` arrays
    on backend ``xp``; everything else is numpy float64. Memory is O(n_b · d) for feature models
    (their sums come from moments, see the module docstring) and O(n_b²) for given RDMs.
    """
    n_b = rows.size
    N = n_b * (n_b - 1) / 2
    factors, fids, Ks, rids, sources = [], [], [], [], []
    S_K = np.zeros(len(models))
    var_K = np.zeros(len(models))
    diag1 = np.zeros(len(models), bool)
    for m, (kind, value) in enumerate(models):
        if kind == "features":
            E = value[rows]
            S, SS = feature_pair_sums(E)
            diag1[m] = True
            if need_rdm_free:
                factors.append(xp.asarray(np.ascontiguousarray(feature_factor(E).T), dtype=dtype))
                fids.append(m)
            sources.append((kind, E))
        else:
            dsub = condensed_sub(value, n_images, rows)
            S, SS = -dsub.sum(), dsub @ dsub
            if need_rdm_free:
                iu, ju = np.triu_indices(n_b, k=1)
                K = np.zeros((n_b, n_b))
                K[iu, ju] = -dsub
                K[ju, iu] = -dsub
                Ks.append(K)
                rids.append(m)
            sources.append((kind, dsub))
        S_K[m] = S
        var_K[m] = SS / N - (S / N) ** 2
        if not var_K[m] > 1e-14 * max(1.0, SS / N):
            raise InputError(
                f"models[{m}]: its RDM is constant over the images of a block (size {n_b}), so Pearson r "
                "is undefined; check the model features"
            )
    rdm_K = xp.asarray(np.stack(Ks), dtype=dtype) if Ks else None
    k_total = sum(int(F.shape[0]) for F in factors)
    return BlockModels(rows, factors, fids, rdm_K, rids, S_K, var_K, diag1, sources, k_total)


def _f64(xp, x) -> np.ndarray:
    """A backend array as a numpy float64 array (sums are combined in float64)."""
    return xp.to_numpy(x, dtype=np.float64)


def rdm_free_pearson(xp, Z, q, block: BlockModels):
    """Pearson r (M, B) between each centre's brain RDM and each model, without RDMs."""
    n, B, w = Z.shape
    N = n * (n - 1) / 2
    s1 = _f64(xp, xp.sumsq(xp.sum(Z, 0), 1))  # ‖1ᵀZ‖²
    sq = _f64(xp, xp.sum(q, 0))  # Σ‖zᵢ‖² = Σ‖zᵢ‖⁴, since ‖zᵢ‖² is 1 or 0
    S_g = (s1 - sq) / 2
    if block.use_nspace(w):
        S_gg, S_gK = _nspace_sums(xp, Z, sq, block)
    else:
        S_gg = (gram_sq(xp, Z) - sq) / 2
        S_gK = _vspace_cross(xp, Z, sq, block)
    mean_g = S_g / N
    var_g = S_gg / N - mean_g**2
    cov = S_gK / N - np.outer(block.S_K / N, mean_g)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(np.maximum(var_g, 0.0)[None, :] * block.var_K[:, None])
    r[:, ~(var_g > 1e-12)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _nspace_sums(xp, Z, sq, block: BlockModels):
    """S_gg (B,) and S_gK (M, B) for wide centres (v > n): one n × n Gram per centre serves both."""
    n, B, _ = Z.shape
    G = _centre_gram(xp, Z).reshape(B, n * n)
    if n >= 256:
        # n² terms per centre: accumulate the reductions in float64 (a memory-bound pass)
        G = xp.asarray(G, dtype=np.float64)
    S_gg = (_f64(xp, xp.sumsq(G, 1)) - sq) / 2
    T = _f64(xp, G @ xp.matrix_transpose(block.dense(xp, G.dtype))).T  # (M, B): tr(G K)
    S_gK = (T - np.outer(block.diag_is_one, sq)) / 2
    return S_gg, S_gK


def _vspace_cross(xp, Z, sq, block: BlockModels):
    """S_gK (M, B) through ‖FᵀZ‖² (features) and Σ Z ∘ KZ (given RDMs)."""
    n, B, w = Z.shape
    S_gK = np.zeros((block.S_K.size, B))
    Zf = Z.reshape(n, B * w)
    for FT, m in zip(block.feature_factors, block.feature_ids, strict=True):
        P = (FT @ Zf).reshape(FT.shape[0], B, w)  # (k, B, w)
        T = _f64(xp, xp.sum(xp.sumsq(P, 0), 1))
        S_gK[m] = (T - sq) / 2
    if block.rdm_K is not None:
        KZ = (block.rdm_K @ Zf).reshape(-1, n, B, w)  # (M_r, n, B, w)
        T = xp.sum(xp.sum(KZ * Z[None], 3), 1)
        S_gK[block.rdm_ids] = _f64(xp, T) / 2
    return S_gK


def materialised_compare(xp, Z, block: BlockModels, method: str):
    """Similarity (M, B) from each centre's materialised brain RDM (B, N)."""
    n, B, w = Z.shape
    G = _centre_gram(xp, Z).reshape(B, n * n)  # (B, n²)
    iu, ju = np.triu_indices(n, k=1)
    D = 1.0 - xp.take(G, xp.asarray(iu * n + ju, dtype=np.int64), 1)  # (B, N)
    models = block.condensed
    if method == "kendall_tau_a":
        return np.asarray(compare_rdms(models, _f64(xp, D), method="kendall_tau_a"))
    if method == "spearman":
        D = xp.rankdata(D)
        models = stats.rankdata(models, axis=1)
    Mm = xp.asarray(models, dtype=Z.dtype)
    if method in ("pearson", "spearman"):
        D = D - xp.sum(D, 1)[:, None] / D.shape[1]
        Mm = Mm - xp.sum(Mm, 1)[:, None] / Mm.shape[1]
    num = Mm @ xp.matrix_transpose(D)  # (M, B)
    den = xp.sqrt(xp.sum(Mm * Mm, 1))[:, None] * xp.sqrt(xp.sum(D * D, 1))[None, :]
    num, den = _f64(xp, num), _f64(xp, den)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[:, ~(den[0] > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)
