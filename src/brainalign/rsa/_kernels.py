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

The model's ``S_K`` and ``S_KK`` are constants. No n × n matrix is formed per centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from brainalign.backend.numpy_backend import single_thread_blas
from brainalign.errors import InputError


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


def gram_sq(xp, Z):
    """``‖ZᵀZ‖²_F`` per centre for ``Z`` (n, B, w), through the smaller Gram matrix."""
    n, _, w = Z.shape
    if w <= n:
        Zt = xp.bmm_layout(xp.permute_dims(Z, (1, 2, 0)))  # (B, w, n)
        G = xp.bmm(Zt, xp.matrix_transpose(Zt))
    else:
        G = _centre_gram(xp, Z)
    return xp.sumsq(G.reshape(G.shape[0], -1), 1)


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
    condensed: np.ndarray  # (M, N) float64 model RDMs (dissimilarities), for the materialised path
    sources: list = field(default_factory=list)  # (kind, E_b or condensed sub-RDM) per model
    k_total: int = 0
    _dense: object = None

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
    xp, models: list, n_images: int, rows: np.ndarray, need_rdm_free: bool, dtype=np.float32
) -> BlockModels:
    """Precompute the per-model constants of one block. ``models`` items: ("features", Ê) or ("rdm", d).

    The factors and similarities of the RDM-free kernel (``need_rdm_free``) are ``dtype`` arrays
    on backend ``xp``; everything else is numpy float64.
    """
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
                    with single_thread_blas():
                        F = np.linalg.qr(E.T, mode="r").T
                factors.append(xp.asarray(np.ascontiguousarray(F.T), dtype=dtype))
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
    rdm_K = xp.asarray(np.stack(Ks), dtype=dtype) if Ks else None
    sources = [
        (kind, value[rows] if kind == "features" else condensed[m])
        for m, (kind, value) in enumerate(models)
    ]
    k_total = sum(int(F.shape[0]) for F in factors)
    return BlockModels(
        rows, factors, fids, rdm_K, rids, S_K, var_K, diag1, condensed, sources, k_total
    )


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
        S_gg = (_f64(xp, gram_sq(xp, Z)) - sq) / 2
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
        from brainalign.rsa.compare import compare_rdms

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
