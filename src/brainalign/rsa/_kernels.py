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

For small blocks (the paper's 100-image subsets) forming each centre's brain RDM is cheaper:
:func:`centre_similarities` gathers a batch of centres as ``A`` (B, v, n), centres it and forms
the n × n Gram ``AᵀA`` with one symmetric product per centre (n (n + 1) / 2 · v multiply-adds,
against n · v · (v + k) for the sums above), then scales it to correlations ``R``. Pearson r then
comes from three sums over ``R`` (:func:`gram_pearson`); the other methods take its upper
triangle (:func:`condensed_compare`). :func:`explicit_route_cheaper` holds the rule that picks
a route.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.spatial.distance import squareform

from brainalign.backend import get_backend
from brainalign.backend.numpy_backend import single_thread_blas
from brainalign.errors import InputError
from brainalign.rsa.compare import compare_rdms

#: a block's models are held as dense n_b × n_b similarities (for the n-space route) only when
#: all of them together take at most this many bytes (float64); larger blocks never form them
DENSE_MODEL_BYTES = 64 << 20
#: Gram matrices with more entries than this are reduced a block of rows at a time
GRAM_BLOCK_ENTRIES = 1 << 25
#: cost of one pass over an n × n matrix entry, in GEMM multiply-adds (the route rule of
#: :func:`explicit_route_cheaper`): measured on the 2-core machine at 30-45 (n = 100-500,
#: w = 30-300), the passes being memory-bound and the products compute-bound
PASS_COST = 32


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
    _pairs: object = None
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

    def pair_matrix(self, xp, dtype):
        """(M + 1, n_b²) backend array: each model's similarity ``K`` centred over the pairs
        (zero diagonal), then a row of ones (built once).

        ``R`` (n_b²) · row m is twice the covariance sum of the brain's correlations with model m
        over the pairs i < j; the ones row gives ``Σ R``. Centring here keeps float32 sums free of
        the cancellation of ``Σ RK − Σ R Σ K / N``.
        """
        if self._pairs is None:
            n_b = self.rows.size
            N = n_b * (n_b - 1) / 2
            out = np.ones((len(self.sources) + 1, n_b * n_b))
            for m, (kind, value) in enumerate(self.sources):
                K = value @ value.T if kind == "features" else -squareform(value, checks=False)
                K -= self.S_K[m] / N
                np.fill_diagonal(K, 0.0)
                out[m] = K.ravel()
            self._pairs = xp.asarray(out, dtype=dtype)
        return self._pairs


#: most images for which :class:`PairSums` holds its (n_blocks (M + 1), n²) pair matrix
PAIR_SUMS_MAX_IMAGES = 1500


@dataclass
class PairSums:
    """Every model's Pearson r or cosine with each centre's brain RDM on several blocks of images
    (the folds' training and test images), from one brain RDM per centre over all the images.

    A block's sums over its pairs i < j are products of the centre's n × n correlations ``R``
    with the block's pair mask ``W`` (1 where both images are in the block, 0 on the diagonal)
    and with ``W ⊙ K`` for each model (Pearson: ``K`` centred over the block's pairs, as
    :meth:`BlockModels.pair_matrix`; cosine: the model's distances): one (n²)-long product per
    row instead of an n_b × n_b brain RDM per block. Values equal :func:`gram_pearson` /
    :func:`condensed_compare` on each block's own RDM to float rounding.
    """

    method: str
    P: np.ndarray  # (n_blocks + n_blocks·M, n²): the masks, then each block's model rows
    N: np.ndarray  # (n_blocks,) pairs per block
    model_norm: np.ndarray  # (n_blocks, M): var of K over the pairs (pearson), Σ m² (cosine)
    model_sum: np.ndarray  # (n_blocks, M): Σ m over the pairs (cosine)
    _backend: dict = field(default_factory=dict)

    @property
    def n_values(self) -> int:
        return self.model_norm.size

    def _rows(self, xp, dtype):
        key = (id(xp), str(dtype))
        if key not in self._backend:
            self._backend[key] = xp.asarray(self.P, dtype=dtype)
        return self._backend[key]

    def __call__(self, xp, R, q) -> np.ndarray:
        """(n_blocks · M, B) values, block by block, of the centres' correlations ``R`` (B, n, n)."""
        B, n, _ = R.shape
        nb, M = self.model_norm.shape
        Rf = R.reshape(B, n * n)
        if n >= 256:  # n² terms per centre: float64 sums, as gram_pearson
            Rf = xp.asarray(Rf, dtype=np.float64)
        P = self._rows(xp, Rf.dtype)
        T = _f64(xp, xp.bmm(Rf, xp.matrix_transpose(P))) / 2  # (B, rows): sums over i < j
        S2 = _f64(xp, xp.bmm(Rf * Rf, xp.matrix_transpose(P[:nb]))) / 2  # Σ r² per block
        S1 = T[:, :nb]
        SK = T[:, nb:].reshape(B, nb, M)
        N = self.N[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.method == "pearson":
                var_r = S2 / N - (S1 / N) ** 2
                out = (
                    SK / N[..., None] / np.sqrt(np.maximum(var_r, 0.0)[..., None] * self.model_norm)
                )
                out[~(var_r > 1e-12)] = np.nan
                out = np.clip(out, -1.0, 1.0)
            else:  # brain distances 1 − r against the model's distances m
                dd = N - 2 * S1 + S2
                out = (self.model_sum[None] - SK) / np.sqrt(dd[..., None] * self.model_norm)
                out[~(dd > 0)] = np.nan
        return out.transpose(1, 2, 0).reshape(nb * M, B)


def pair_sums(models: list, n_images: int, blocks_rows: list, method: str) -> PairSums:
    """The :class:`PairSums` of ``models`` (``("features", Ê)`` / ``("rdm", condensed)``) on the
    blocks of images ``blocks_rows``, for ``method`` ``"pearson"`` or ``"cosine"``."""
    n = n_images
    K = []
    for kind, value in models:
        k = value @ value.T if kind == "features" else -squareform(value, checks=False)
        np.fill_diagonal(k, 0.0)
        K.append(k)
    nb, M = len(blocks_rows), len(models)
    P = np.zeros((nb * (M + 1), n * n))
    N = np.zeros(nb)
    norm = np.zeros((nb, M))
    total = np.zeros((nb, M))
    for b, rows in enumerate(blocks_rows):
        w = np.zeros(n)
        w[rows] = 1.0
        W = np.outer(w, w)
        np.fill_diagonal(W, 0.0)
        N[b] = rows.size * (rows.size - 1) / 2
        P[b] = W.ravel()
        for m, k in enumerate(K):
            if method == "pearson":
                c = k - (W * k).sum() / 2 / N[b]
                norm[b, m] = (W * c * c).sum() / 2 / N[b]
            else:  # the model's distances: 1 − K for features, the RDM itself
                c = (1.0 - k) if models[m][0] == "features" else -k
                norm[b, m] = (W * c * c).sum() / 2
                total[b, m] = (W * c).sum() / 2
            P[nb + b * M + m] = (W * c).ravel()
            if not norm[b, m] > 1e-14:
                raise InputError(
                    f"models[{m}]: its RDM is constant over the images of a fold (size "
                    f"{rows.size}), so its {method} similarity is undefined; check the model"
                )
    return PairSums(method, P, N, norm, total)


def explicit_route_cheaper(n_b: int, width: int, feature_dims, n_rdm: int) -> bool:
    """Whether explicit brain RDMs (the Gram route) beat the RDM-free sums for Pearson.

    Costs in multiply-adds per centre, for a block of ``n_b`` images, ``width`` units, feature
    models of ``feature_dims`` columns and ``n_rdm`` given RDMs:

    - explicit: ``n_b (n_b + 1) / 2 · width`` for the symmetric Gram product, plus
      ``PASS_COST · n_b² (M + 2)`` for the passes over the n × n matrices (scaling, the product
      with the M models and a ones row, a sum of squares), which run at memory speed;
    - RDM-free: ``n_b · width · (min(width, n_b) + k + n_b · n_rdm)``, with ``k`` the models'
      factor columns (``min(d, n_b)`` each).

    The explicit route is taken when it is cheaper and its dense models (M + 1 arrays of n_b²
    float64) fit in :data:`DENSE_MODEL_BYTES`; results are the same either way.
    """
    n_models = len(feature_dims) + n_rdm
    if n_b * n_b * (n_models + 1) * 8 > DENSE_MODEL_BYTES:
        return False
    k = sum(min(int(d), n_b) for d in feature_dims)
    cost_explicit = n_b * (n_b + 1) / 2 * width + PASS_COST * n_b * n_b * (n_models + 2)
    cost_free = n_b * width * (min(width, n_b) + k + n_b * n_rdm)
    return cost_explicit < cost_free


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
    S_gg = (gram_sq(xp, Z) - sq) / 2
    S_gK = _vspace_cross(xp, Z, sq, block)
    mean_g = S_g / N
    var_g = S_gg / N - mean_g**2
    cov = S_gK / N - np.outer(block.S_K / N, mean_g)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(np.maximum(var_g, 0.0)[None, :] * block.var_K[:, None])
    r[:, ~(var_g > 1e-12)] = np.nan
    return np.clip(r, -1.0, 1.0)


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


def centre_similarities(xp, A, count, mask, rtol: float, pads_zero: bool = True):
    """Each centre's correlations between images, from its gathered patterns.

    Parameters
    ----------
    A : backend array (B, w, n)
        The patterns of B centres (w unit slots, n images), changed in place.
    count : backend array (B,)
        Valid units per centre.
    mask : backend array (B, w, 1) or None
        1 at valid slots, 0 at padded ones; None when no centre of the batch is padded.
    rtol : float
        An image whose pattern is constant over the centre's units (centred sum of squares at
        most ``rtol²`` × its raw sum of squares) gets correlation 0 with every other image.
    pads_zero : bool
        Padded slots already hold zeros (they gathered an appended zero row); otherwise they
        hold a valid unit's values and are masked before the means.

    Returns
    -------
    R : (B, n, n) correlations (``A``'s dtype), diagonal ``q``
    q : (B, n) 1 for images with a usable pattern, 0 for constant ones
    """
    if mask is not None and not pads_zero:
        A *= mask
    mean = xp.sum(A, 1) / count[:, None]  # (B, n)
    A -= mean[:, None, :]
    if mask is not None:
        A *= mask
    # AᵀA as the product of a transposed view with itself: numpy's matmul runs a symmetric
    # rank-k update (half the multiply-adds of a general product)
    G = xp.bmm(xp.matrix_transpose(A), A)  # (B, n, n)
    var = xp.einsum("bii->bi", G)  # centred sums of squares
    raw = var + count[:, None] * mean * mean  # Σ x² = Σ (x − mean)² + w mean²
    ok = var > (rtol * rtol) * raw
    u = xp.where(ok, 1.0 / xp.sqrt(xp.where(ok, var, 1.0)), 0.0)
    G *= u[:, :, None]
    G *= u[:, None, :]
    return G, xp.asarray(ok, dtype=G.dtype)


def gram_pearson(xp, R, q, block: BlockModels):
    """Pearson r (M, B) between each centre's brain RDM ``1 − R`` and each model.

    Uses the sums over pairs i < j of the correlations ``R`` (B, n, n) (diagonal ``q``):
    ``Σ r`` and ``Σ r²`` from the full matrix less its diagonal, and the covariance with
    each model from one product with :meth:`BlockModels.pair_matrix` (models centred over
    the pairs, so Pearson's r of ``1 − R`` with the model RDM ``1 − K`` or ``D = −K`` is that
    of ``R`` with ``K``).
    """
    B, n, _ = R.shape
    N = n * (n - 1) / 2
    R = R.reshape(B, n * n)
    if n >= 256:
        # n² terms per centre: accumulate the reductions in float64 (a memory-bound pass)
        R = xp.asarray(R, dtype=np.float64)
    T = _f64(xp, xp.bmm(R, xp.matrix_transpose(block.pair_matrix(xp, R.dtype))))  # (B, M + 1)
    rr = _f64(xp, xp.sumsq(R, 1))
    sq = _f64(xp, xp.sum(q, 1))  # the diagonal: Σ qᵢ = Σ qᵢ²
    mean_r = (T[:, -1] - sq) / 2 / N
    var_r = (rr - sq) / 2 / N - mean_r**2
    cov = T[:, :-1].T / 2 / N
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(np.maximum(var_r, 0.0)[None, :] * block.var_K[:, None])
    r[:, ~(var_r > 1e-12)] = np.nan
    return np.clip(r, -1.0, 1.0)


def condensed_compare(xp, R, block: BlockModels, method: str):
    """Similarity (M, B) of each centre's brain RDM (the upper triangle of ``1 − R``, ``R``
    (B, n, n)) with each model, by ``method`` (any of :data:`COMPARE_METHODS`)."""
    B, n, _ = R.shape
    iu, ju = np.triu_indices(n, k=1)
    D = 1.0 - xp.take(R.reshape(B, n * n), xp.asarray(iu * n + ju, dtype=np.int64), 1)  # (B, N)
    models = block.condensed
    if method == "kendall_tau_a":
        return np.asarray(compare_rdms(models, _f64(xp, D), method="kendall_tau_a"))
    if method == "spearman":
        D = xp.rankdata(D)
        models = stats.rankdata(models, axis=1)
    Mm = xp.asarray(models, dtype=R.dtype)
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
