"""Ridge regression solvers shared by the encoding (embedding → brain) and decoding (brain → embedding)
directions.

The cost of cross-validated ridge with many targets is dominated by products with the targets, so
every solver here works in the eigenbasis of each training set's Gram matrix:

* one eigendecomposition per fold (of ``XᵀX`` when ``n_features <= n_train``, of the kernel ``XXᵀ``
  otherwise), reused for every candidate alpha (or fraction) and every target;
* validation errors are computed in that r-dimensional basis (``r = min(n_features, n_train)``)::

      SSE(α) = ‖y_val‖² − 2 bᵀ(d_α ⊙ z) + (d_α ⊙ z)ᵀ G (d_α ⊙ z)

  with ``z = Vᵀ X_trᵀ y_tr``, ``b = Vᵀ X_valᵀ y_val``, ``G = Vᵀ X_valᵀ X_val V`` and
  ``d_α = 1 / (λ + α)``, so no validation prediction (``n_val × n_targets`` per alpha) is formed;
* the full-data cross product ``XᵀY`` is computed once per target block and each fold's training
  cross product is obtained by subtracting its validation part;
* targets are processed in blocks sized by a memory budget, read from ``Y`` one block at a time
  (a memory map, or a :class:`~brainalign.utils.arrays.RowView` of its training rows, is never
  copied whole); coefficients are only formed for the selected alpha (never coefficients × alphas
  × targets).

Intercepts are handled exactly by centring with each training set's means. Efficient leave-one-out
(``cv="loo"``, the criterion of scikit-learn's ``RidgeCV``) and generalised cross-validation
(``cv="gcv"``, O(r) per alpha and target) use the full-data decomposition.

The fracridge-compatible mode (:func:`fracridge_cv`) reproduces the paper's
``FracRidgeRegressorCV``: candidate *fractions* of the OLS coefficient norm (default
``linspace(0.05, 1.05, 20)``; fractions ≥ 1 give OLS), converted to one alpha per target and fold by
solving ``‖β_α‖ = f ‖β_OLS‖`` exactly in the eigenbasis, and **one** fraction chosen for all targets
by the mean over folds of the uniform-average R² (scikit-learn ``GridSearchCV`` semantics, unshuffled
5-fold ``KFold``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_info

from brainalign.backend import get_backend
from brainalign.backend.numpy_backend import single_thread_blas
from brainalign.errors import InputError
from brainalign.utils.arrays import as_targets
from brainalign.utils.progress import progress

#: 25 penalties, half a decade apart, from 1e-2 to 1e10. The upper end lies above the largest
#: eigenvalue of the centred ``XᵀX`` for most feature spaces at NSD's size (it is at most
#: ``trace = Σ‖x_i − x̄‖²``: ≤ n for unit-norm sentence embeddings, n · d for z-scored features,
#: 7.7e6 at n = 10,000, d = 768), where the old grid (1e-2 … 1e7, 10 values) could stop.
DEFAULT_ALPHAS = np.logspace(-2, 10, 25)
#: warn when more than this share of the fitted targets chose the smallest or the largest alpha
EDGE_WARN_FRACTION = 0.05
#: an edge alpha "saturates" when going further cannot change any fit by more than this factor:
#: ``λ_max / (λ_max + α_max)`` (shrinkage of the strongest component) at the top, and
#: ``α_min / λ_min`` (distance from least squares) at the bottom
_EDGE_SATURATION = 1e-3
FRACRIDGE_FRACTIONS = np.linspace(0.05, 1.05, 20)
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of working memory per target block
_F64_FLOP_LIMIT = 3e10  # Gram / kernel matrices cheaper than this are formed in float64
_INTERCEPT_MODES = (True, False, "paper")
_CPU = get_backend("numpy")  # the decompositions run in float64 on the CPU whatever the backend


@dataclass
class RidgeResult:
    """What a ridge solver returns.

    Attributes
    ----------
    coef : (n_features, n_targets) float32
        Coefficients at the selected alpha of each target (NaN for dropped NaN targets).
    intercept : (n_targets,) float32
        Intercepts (0 when ``fit_intercept`` is False or ``"paper"``).
    alphas : (n_targets,) float64
        Selected ridge penalty per target (in fracridge mode, the alpha that gives the selected
        fraction for that target on the full training set; 0 means OLS).
    cv_scores : (n_candidates, n_targets) float32
        Cross-validation score of every candidate (alpha or fraction) and target: K-fold ridge per
        target: ``1 − mean-over-folds MSE / var(y)``; fracridge or shared alpha: mean over folds of
        the validation R²; LOO/GCV: ``1 − LOO (GCV) MSE / var(y)``. Higher is better.
    candidates : (n_candidates,) float64
        The alphas (ridge mode) or fractions (fracridge mode) that were scored.
    fraction : float or None
        Selected fraction (fracridge mode only).
    nan_targets, constant_targets : (n_targets,) bool
        Targets dropped because they contain NaN, and targets constant over the training images
        (these get zero coefficients and their mean as intercept).
    x_mean : (n_features,) float32
        Training mean of X (used for the intercept).
    edge_counts : (2,) int64
        How many fitted targets (neither NaN nor constant) chose the smallest and the largest
        candidate (ridge: alphas; fracridge: fractions, where the smallest is the strongest
        penalty). Many at an edge means the best penalty may lie outside the grid; ridge mode warns
        when either count exceeds ``EDGE_WARN_FRACTION`` (5 %) of :attr:`n_fitted` at an open
        edge. ``[0, 0]`` for :func:`ridge_fit` (no candidates).
    edges_open : (2,) bool
        Whether going beyond the smallest / the largest candidate could change a fit (ridge
        mode, from the data's eigenvalues λ): the small end is open while ``α_min > 1e-3 λ_min``
        (below, every fit is the least-squares / minimum-norm one to 0.1 %), the large end while
        ``λ_max / (λ_max + α_max) ≥ 1e-3`` (above, every fit is the mean). Targets at a closed
        (saturated) edge chose that limit, and a wider grid would not change them. ``[True,
        True]`` where not known (fracridge, :func:`ridge_fit`).
    """

    coef: np.ndarray
    intercept: np.ndarray
    alphas: np.ndarray
    cv_scores: np.ndarray
    candidates: np.ndarray
    fraction: float | None = None
    nan_targets: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    constant_targets: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    x_mean: np.ndarray | None = None
    edge_counts: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int64))
    edges_open: np.ndarray = field(default_factory=lambda: np.ones(2, bool))

    @property
    def n_fitted(self) -> int:
        """Targets that were fitted: neither dropped for NaN nor constant."""
        return int(np.sum(~self.nan_targets & ~self.constant_targets))

    def predict(self, X) -> np.ndarray:
        """Predictions ``X @ coef + intercept`` (n_samples × n_targets), in X's float precision."""
        X = np.asarray(X)
        dtype = np.float64 if X.dtype == np.float64 else np.float32
        return X.astype(dtype, copy=False) @ self.coef.astype(dtype) + self.intercept.astype(dtype)


# --------------------------------------------------------------------------------------------------
# argument checks


def _check_xy(X, Y):
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"X: expected a 2-D array (n_images × n_features), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) and X.dtype != bool:
        raise InputError(f"X: expected a numeric array, got dtype {X.dtype}")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        raise InputError(
            "X: contains NaN or infinite values; features must be finite (impute or drop those "
            "columns first)"
        )
    Y = as_targets(Y)  # an ndarray, a memory map or a RowView: read in column blocks later
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise InputError(f"Y: expected a 2-D array (n_images × n_targets), got shape {Y.shape}")
    if not np.issubdtype(Y.dtype, np.number) and Y.dtype != bool:
        raise InputError(f"Y: expected a numeric array, got dtype {Y.dtype}")
    if X.shape[0] != Y.shape[0]:
        raise InputError(
            f"X and Y: different numbers of images ({X.shape[0]} rows in X, {Y.shape[0]} in Y); "
            "both must have one row per image, in the same order"
        )
    if X.shape[0] < 2:
        raise InputError(
            f"X: got n_samples={X.shape[0]}; ridge needs at least 2 images (n_samples=1 cannot be fit)"
        )
    return X, Y


def _check_candidates(values, name, allow_zero=True):
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise InputError(f"{name}: expected a non-empty 1-D list of finite numbers, got {values!r}")
    if (arr < 0).any() or (not allow_zero and (arr == 0).any()):
        raise InputError(f"{name}: expected values > 0, got {arr.tolist()}")
    return arr


def _check_intercept(fit_intercept):
    if (
        fit_intercept not in _INTERCEPT_MODES
        or isinstance(fit_intercept, (int, float))
        and not isinstance(fit_intercept, bool)
    ):
        raise InputError(
            f"fit_intercept: expected True, False or 'paper' (centre but drop the intercept, as "
            f"fracridge 2.0 did in the paper), got {fit_intercept!r}"
        )
    return fit_intercept


def make_folds(n_samples: int, cv=5):
    """Turn ``cv`` into a list of (train, validation) index arrays.

    ``cv`` may be an int (unshuffled ``KFold``, as ``GridSearchCV`` uses), a scikit-learn splitter,
    or an iterable of ``(train, val)`` index pairs.
    """
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        if cv < 2:
            raise InputError(f"cv={cv}: expected at least 2 folds (or 'loo' / 'gcv')")
        if n_samples < cv or n_samples - math.ceil(n_samples / cv) < 2:
            raise InputError(
                f"cv={cv}: too few images for the folds (got n_samples={n_samples}); each training "
                f"set needs at least 2 images — use fewer folds or cv='loo'"
            )
        # same fold sizes as sklearn.model_selection.KFold (first n % k folds one larger)
        sizes = np.full(cv, n_samples // cv)
        sizes[: n_samples % cv] += 1
        edges = np.concatenate([[0], np.cumsum(sizes)])
        idx = np.arange(n_samples)
        return [
            (np.concatenate([idx[: edges[k]], idx[edges[k + 1] :]]), idx[edges[k] : edges[k + 1]])
            for k in range(cv)
        ]
    if hasattr(cv, "split"):
        folds = list(cv.split(np.zeros((n_samples, 1))))
    else:
        try:
            folds = list(cv)
        except TypeError:
            raise InputError(
                f"cv: expected an int, 'loo', 'gcv', a scikit-learn splitter or (train, val) pairs, "
                f"got {cv!r}"
            ) from None
    out = []
    for k, pair in enumerate(folds):
        tr, va = (np.asarray(p, dtype=np.int64) for p in pair)
        if tr.size < 2 or va.size < 1:
            raise InputError(
                f"cv: fold {k} has {tr.size} training and {va.size} validation images; too few "
                "images for the folds"
            )
        if tr.min() < 0 or va.min() < 0 or max(tr.max(), va.max()) >= n_samples:
            raise InputError(f"cv: fold {k} has indices outside 0..{n_samples - 1}")
        out.append((tr, va))
    if not out:
        raise InputError("cv: the splitter produced no folds")
    return out


def _block_size(block_size, n, r, n_cand, n_val, memory_budget, loo=False):
    if block_size is not None:
        if int(block_size) < 1:
            raise InputError(f"block_size: expected a positive int, got {block_size!r}")
        return int(block_size)
    per_target = 4 * (2 * n + n_val + 8 * r + 3 * n_cand + (2 * n if loo else 0))
    return max(1, int(memory_budget // per_target))


# --------------------------------------------------------------------------------------------------
# decompositions


def _gram(A, f64=True):
    """``AᵀA`` in float64 (exact enough for eigh)."""
    if f64:
        A64 = A.astype(np.float64)
        return A64.T @ A64
    return (A.T @ A).astype(np.float64)


def _centred_cross_products(xp, Ctr, Cva, n_tr, n_va, m_tr, m_va, y_tr, y_va):
    """Centre one fold's training and validation cross products ``X_trᵀY_tr`` and ``X_vaᵀY_va``
    (p × t, updated in place) on the training means: ``m_tr``/``m_va`` are the features'
    training/validation means (p,), ``y_tr``/``y_va`` the targets' (t,). The rank-1 and rank-2
    corrections are products, so each array is read and written once."""
    Ctr -= xp.matmul((n_tr * m_tr)[:, None], y_tr[None, :])
    # X_vaᵀY_va − n_va (m_tr y_vaᵀ + m_va y_trᵀ − m_tr y_trᵀ)
    Cva -= xp.matmul(xp.stack([m_tr, m_va], axis=1), xp.stack([n_va * (y_va - y_tr), n_va * y_tr]))
    return Ctr, Cva


class _Decomposition:
    """Eigendecomposition of one (centred) training set, in primal or dual form, on a backend.

    Provides ``lam`` (r,), and after :meth:`project` the per-target quantities used by the
    criteria. In the primal form the basis is ``V`` (p × r) with ``Xc_trᵀXc_tr = V diag(λ) Vᵀ``; in
    the dual form ``U`` (n_tr × r) with ``Xc_tr Xc_trᵀ = U diag(λ) Uᵀ`` and the implicit basis
    ``V = Xc_trᵀ U λ^{-1/2}``. The eigendecompositions run in float64 on the CPU; the per-target
    products run on ``xp``.
    """

    def __init__(self, xp, X0, tr, va, centre, primal, kernel=None, gram=None):
        self.xp = xp
        self.tr, self.va = tr, va
        self.n_tr, self.n_va = len(tr), len(va)
        self.primal = primal
        self.centre = centre
        n, p = X0.shape
        f64 = (n * p * min(n, p)) <= _F64_FLOP_LIMIT
        if primal:
            self._decompose_primal(X0, gram if gram is not None else _gram(X0, f64=f64), f64)
        else:
            self._decompose_dual(kernel if kernel is not None else _gram(X0.T, f64=f64), f64)
        self.lam = xp.asarray(self.lam_np)
        self.r = len(self.lam_np)

    def _eigh(self, M, f64):
        """Eigenvalues (clipped at 0) and eigenvectors of ``M``; sets ``tol``, below which λ is 0."""
        lam, V = _CPU.eigh(M)
        lam = np.clip(lam, 0, None)
        self.tol = lam.max(initial=0) * (1e-10 if f64 else 1e-6)
        return lam, V

    def _decompose_primal(self, X0, G_all, f64):
        """``Xc_trᵀXc_tr = V diag(λ) Vᵀ`` from the full Gram matrix minus the validation part."""
        xp, full = self.xp, self.n_va == 0
        Xtr = X0 if full else X0[self.tr]
        m_tr = Xtr.mean(0, dtype=np.float64) if self.centre else np.zeros(X0.shape[1])
        if full:
            Gtr = G_all.copy()
        else:
            Xva = X0[self.va]
            G_va = _gram(Xva, f64=f64)
            Gtr = G_all - G_va
        Gtr -= self.n_tr * np.outer(m_tr, m_tr)
        lam, V = self._eigh(Gtr, f64)
        self.lam_np = lam
        self.V_np = V
        self.V = xp.asarray(V)
        self.m_tr_b = xp.asarray(m_tr)
        if not full:
            m_va = Xva.mean(0, dtype=np.float64)
            Gv = (
                G_va
                - self.n_va * (np.outer(m_va, m_tr) + np.outer(m_tr, m_va))
                + self.n_va * np.outer(m_tr, m_tr)
            )
            self.G64 = V.T @ Gv @ V
            self.G = xp.asarray(self.G64)
            self.m_va_b = xp.asarray(m_va)

    def _decompose_dual(self, K, f64):
        """``Xc_tr Xc_trᵀ = U diag(λ) Uᵀ`` from the full kernel matrix ``K``; λ ≤ tol dropped."""
        xp, tr, va, full = self.xp, self.tr, self.va, self.n_va == 0
        Ktt = K[np.ix_(tr, tr)] if not full else K
        if self.centre:
            rm = Ktt.mean(0)
            Ktt = Ktt - rm[None, :] - rm[:, None] + rm.mean()
        lam, U = self._eigh(Ktt, f64)
        keep = lam > self.tol
        lam, U = lam[keep], U[:, keep]
        self.lam_np = lam
        self.U = xp.asarray(U)
        self.sqrt_lam = xp.asarray(np.sqrt(lam))
        if not full:
            Kvt = K[np.ix_(va, tr)]
            if self.centre:
                Kvt = Kvt - K[np.ix_(tr, tr)].mean(0)[None, :]  # (X_va − 1m)X_trᵀ
                Kvt = Kvt - Kvt.mean(1, keepdims=True)  # … C (centring of the training side)
            A = Kvt @ U / np.sqrt(lam)[None, :]
            self.A = xp.asarray(A)
            self.G64 = A.T @ A
            self.G = xp.asarray(self.G64)

    # ---- per target block -----------------------------------------------------------------------
    def project(self, Y0b, XtY=None, col_sum=None):
        """Compute z (r × t), and for a validation fold b (r × t), ‖y_val − ȳ_tr‖² and SST_val."""
        xp = self.xp
        full = self.n_va == 0
        if full:
            if self.primal:
                self.Z = xp.matmul(self.V.T, XtY)
            else:
                self.Z = self.sqrt_lam[:, None] * xp.matmul(self.U.T, Y0b)
            return
        Yva = _take_rows(xp, Y0b, self.va)
        s_va = xp.sum(Yva, axis=0)
        ssq_va = xp.sumsq(Yva, 0)
        s_tr = col_sum - s_va
        y_tr = s_tr / self.n_tr if self.centre else s_tr * 0
        y_va = s_va / self.n_va
        n_va = self.n_va
        if self.primal:
            XvYv = xp.matmul(self.X0va_T, Yva)
            Ctr, Cva = XtY - XvYv, XvYv
            if self.centre:
                Ctr, Cva = _centred_cross_products(
                    xp, Ctr, Cva, self.n_tr, n_va, self.m_tr_b, self.m_va_b, y_tr, y_va
                )
            self.Z = xp.matmul(self.V.T, Ctr)
            self.Bv = xp.matmul(self.V.T, Cva)
        else:
            Ytr = _take_rows(xp, Y0b, self.tr)
            self.Z = self.sqrt_lam[:, None] * xp.matmul(self.U.T, Ytr)
            self.Bv = xp.matmul(self.A.T, Yva - y_tr[None, :])
        self.yy = ssq_va - 2 * y_tr * s_va + n_va * y_tr * y_tr
        self.sst = ssq_va - n_va * y_va * y_va

    def shrink(self, alpha):
        """``1 / (λ + α)`` for a scalar alpha (r × 1) or per-target alphas (r × t), pseudo-inverse at α=0."""
        lam = self.lam[:, None]
        denom = lam + alpha if np.ndim(alpha) == 0 else lam + alpha[None, :]
        keep = denom > self.tol
        return keep / (denom + (~keep))

    def prepare_alphas(self, alphas, max_band_fraction=0.25):
        """Precompute the partial-fraction form of the validation error for scalar ``alphas``.

        With ``d_j = 1/(λ_j + α)`` and ``d_j d_k = (d_j − d_k)/(λ_k − λ_j)``, the quadratic term
        ``Q = Σ_jk z_j z_k G_jk d_j d_k`` becomes ``Σ_j G_jj z_j² d_j² + 2 Σ_j d_j z_j (H z)_j`` with
        ``H_jk = G_jk / (λ_k − λ_j)``: one r × r product per fold (``Hz``), then O(r) per alpha and
        target (as (n_alphas × r) @ (r × t) products). Pairs with nearly equal eigenvalues (where
        the difference form loses precision) are summed directly as a band. Computed in float64.

        ``H`` is antisymmetric, so ``zᵀHz = 0`` and the weight ``2 d_j`` of ``z_j (Hz)_j`` may be
        replaced by ``2 d_j − 2/α = −2 λ_j d_j / α``. For ``α ≥ λ_max`` the first form cancels (every
        ``d ≈ 1/α``: relative error ``ε·α/Δλ``); the second is small there, which keeps errors of
        order ``ε·λ/Δλ`` whatever α, so a grid may reach far past ``λ_max`` at no extra cost::

            SSE = ‖y‖² − 2 Σ_j d_j b_j z_j + Σ_j G_jj d_j² z_j² + Σ_j w_j z_j (Hz)_j + band,
            w_j = 2 d_j (α < λ_max),  −2 λ_j d_j / α (α ≥ λ_max).

        Returns False (use :meth:`sse`) when it does not apply.
        """
        lam = self.lam_np
        alphas = np.asarray(alphas, dtype=np.float64)
        if not hasattr(self, "G64") or lam.size == 0 or alphas.min() + lam.min() <= self.tol:
            return False
        lam_max = lam.max()
        tau = 1e-7 * (lam_max + min(alphas.max(), lam_max))
        r = lam.size
        diff = lam[None, :] - lam[:, None]  # λ_k − λ_j
        near = np.abs(diff) < tau
        # eigenvalues ascend, so near pairs form a band around the diagonal
        hi = np.searchsorted(lam, lam + tau, side="left") - 1 - np.arange(r)
        w = int(max(hi.max(initial=0), 0))
        if w > max_band_fraction * r:
            return False
        with np.errstate(divide="ignore", invalid="ignore"):
            H = np.where(near, 0.0, self.G64 / np.where(near, 1.0, diff))
        D = 1.0 / (lam[None, :] + alphas[:, None])  # (n_alphas × r)
        large = (alphas >= lam_max)[:, None]
        xp = self.xp

        def f64(a):
            return xp.asarray(a, dtype=np.float64)

        self.fast_H = f64(H)
        # weights (n_alphas × r) of z², z ⊙ Hz and b ⊙ z; the band: offsets o with the weights
        # of z_j z_{j+o} for near pairs (j, j+o)
        self.fast_w = [
            f64(D * D * np.diag(self.G64)[None, :]),
            f64(np.where(large, -2.0 * lam[None, :] * D / alphas[:, None], 2.0 * D)),
            f64(-2.0 * D),
        ]
        self.fast_band = []
        for o in range(1, w + 1):
            j = np.arange(r - o)
            c = self.G64[j, j + o] * near[j, j + o]
            if np.any(c != 0):
                self.fast_band.append((o, f64(2.0 * D[:, :-o] * D[:, o:] * c[None, :])))
        return True

    def sse_all(self):
        """SSE (n_alphas × t) for the alphas given to :meth:`prepare_alphas` (after :meth:`project`)."""
        xp = self.xp
        Z = xp.asarray(self.Z, dtype=np.float64)
        # float32 × float64 products are exact in float64: Bv needs no cast of its own
        w_zz, w_zhz, w_bz = self.fast_w
        out = xp.matmul(w_zz, Z * Z)
        out = out + xp.matmul(w_zhz, Z * xp.matmul(self.fast_H, Z))
        out = out + xp.matmul(w_bz, self.Bv * Z)
        for o, wo in self.fast_band:
            out = out + xp.matmul(wo, Z[:-o] * Z[o:])
        return out + xp.asarray(self.yy, dtype=np.float64)[None, :]

    def sse(self, D):
        """SSE (t,) of one validation fold for the shrinkage ``D`` of :meth:`shrink`."""
        xp = self.xp
        Ud = self.Z * D
        GU = xp.matmul(self.G, Ud)
        return self.yy - 2 * xp.sum(self.Bv * Ud, axis=0) + xp.sum(Ud * GU, axis=0)


def _take_rows(xp, arr, idx):
    """Rows ``idx`` (a numpy index array) of backend array ``arr``; a view for a contiguous run."""
    if len(idx) and np.all(np.diff(idx) == 1):
        return arr[int(idx[0]) : int(idx[-1]) + 1]
    return xp.take(arr, xp.asarray(idx, dtype=np.int64), 0)


def _decompose_all(xp, build, items, size):
    """``[build(item) for item in items]``, side by side on one BLAS thread each when the
    matrices to decompose (``size`` rows) are small: :meth:`NumpyBackend.eigh` runs those on one
    thread anyway; large ones (a decoder's kernel) use BLAS's threads and too much memory to pair.
    """
    n_threads = _block_threads(xp, len(items), None) if size < 2048 else 1
    if n_threads > 1:
        with single_thread_blas(), ThreadPoolExecutor(n_threads) as pool:
            return list(pool.map(build, items))
    return [build(item) for item in items]


def _prepare(X, fit_intercept, xp, folds, need_loo=False, alphas=None, copy_X=True):
    """Centre X globally (numerically safer; folds then correct with small offsets) and decompose.

    With ``alphas`` each fold prepares the fast validation error for them as soon as it is built
    (and drops its Gram matrix, which only the slow path needs), so the folds' r × r matrices are
    not all held at once. ``copy_X=False`` centres ``X`` in place.
    """
    centre = fit_intercept in (True, "paper")
    x_mean = (
        X.mean(0, dtype=np.float64).astype(np.float32)
        if centre
        else np.zeros(X.shape[1], np.float32)
    )
    if centre and not copy_X and X.flags.writeable:
        X -= x_mean
        X0 = X
    else:
        X0 = X - x_mean if centre else X
    n, p = X0.shape
    primal = p <= n  # Gram (p × p) when it is the smaller matrix, else the kernel (n × n)
    f64 = (n * p * min(n, p)) <= _F64_FLOP_LIMIT
    if primal:
        gram = (
            _gram(X0, f64=f64)
            if f64
            else xp.to_numpy(xp.matmul(xp.asarray(X0).T, xp.asarray(X0))).astype(np.float64)
        )
        kernel = None
    else:
        gram = None
        kernel = (
            _gram(X0.T, f64=f64)
            if f64
            else xp.to_numpy(xp.matmul(xp.asarray(X0), xp.asarray(X0).T)).astype(np.float64)
        )

    def decompose(split):
        tr, va = split
        d = _Decomposition(xp, X0, tr, va, centre, primal, kernel=kernel, gram=gram)
        if primal and len(va):
            d.X0va_T = xp.asarray(X0[va]).T
        d.fast = len(va) > 0 and alphas is not None and d.prepare_alphas(alphas)
        if d.fast:
            del d.G, d.G64  # only the slow path (:meth:`sse`) reads them
        return d

    full, *decs = _decompose_all(xp, decompose, [(np.arange(n), np.arange(0)), *folds], min(n, p))
    if not primal:
        full.X0_T = xp.asarray(X0).T
    if need_loo:
        if primal:
            keep = full.lam_np > full.tol
            V = xp.asarray(full.V_np[:, keep])
            full.U_loo = (
                xp.matmul(xp.asarray(X0), V) / xp.sqrt(xp.asarray(full.lam_np[keep]))[None, :]
            )
        else:
            full.U_loo = full.U
    return X0, x_mean, full, decs, primal


# --------------------------------------------------------------------------------------------------
# fraction → alpha


def fraction_to_alpha(lam, z, fractions, tol=None, n_iter=60):
    """Alphas that shrink the OLS coefficient norm to the given fractions, per target.

    Solves ``Σ_j z_j² / (λ_j + α)² = f² Σ_j z_j² / λ_j²`` for α by bisection in log α (the norm is
    monotone in α). Components with ``λ_j <= tol`` are excluded (pseudo-inverse OLS).

    Parameters
    ----------
    lam : (r,) array
        Eigenvalues of the centred training Gram matrix ``XᵀX`` (squared singular values).
    z : (r, n_targets) array
        ``Vᵀ Xᵀ y`` in the same eigenbasis.
    fractions : (n_fractions,) array
        Fractions of the OLS norm; fractions ≥ 1 give α = 0 (OLS), as fracridge's interpolation
        clips them.

    Returns
    -------
    alphas : (n_fractions, n_targets) float64
    """
    lam = np.asarray(lam, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    fractions = np.asarray(fractions, dtype=np.float64)
    if tol is None:
        tol = lam.max(initial=0) * 1e-10
    keep = lam > tol
    lam, z = lam[keep], z[keep]
    return _fraction_to_alpha_backend(_CPU, lam, z, fractions, n_iter, np.float64)


def _fraction_to_alpha_backend(xp, lam, z, fractions, n_iter=60, dtype=np.float32):
    """Vectorised bisection on a backend: lam (r,), z (r, t) → alphas (n_frac, t)."""
    t = z.shape[1]
    lam_np = xp.to_numpy(lam).astype(np.float64)
    if lam_np.size == 0:
        return xp.zeros((len(fractions), t), dtype=dtype)
    z2 = z * z
    ols = xp.sum(z2 / (lam[:, None] ** 2), axis=0)  # (t,)
    lo0 = math.log(lam_np.min() * 1e-8 + 1e-300)
    hi0 = math.log(lam_np.max() * 1e6 + 1e-300)
    out = []
    for f in fractions:
        if f >= 1:
            out.append(ols * 0)
            continue
        target = (f * f) * ols
        lo = ols * 0 + lo0
        hi = ols * 0 + hi0
        for _ in range(n_iter):
            mid = (lo + hi) / 2
            a = xp.exp(mid)
            norm = xp.sum(z2 / (lam[:, None] + a[None, :]) ** 2, axis=0)
            too_big = norm > target  # need more shrinkage
            lo = xp.where(too_big, mid, lo)
            hi = xp.where(too_big, hi, mid)
        out.append(xp.exp((lo + hi) / 2))
    return xp.stack(out)


# --------------------------------------------------------------------------------------------------
# the solver


@dataclass
class _Outputs:
    """Per-target results, filled block by block (NaN for targets not (yet) fitted)."""

    coef: np.ndarray  # (p, t) float32
    intercept: np.ndarray  # (t,) float32
    alphas: np.ndarray  # (t,) float64
    cv_scores: np.ndarray  # (n_candidates, t) float32
    nan_targets: np.ndarray  # (t,) bool
    constant: np.ndarray  # (t,) bool
    y_means: np.ndarray  # (t,) float64

    @classmethod
    def empty(cls, p: int, t: int, n_cand: int) -> _Outputs:
        return cls(
            coef=np.full((p, t), np.nan, dtype=np.float32),
            intercept=np.full(t, np.nan, dtype=np.float32),
            alphas=np.full(t, np.nan),
            cv_scores=np.full((n_cand, t), np.nan, dtype=np.float32),
            nan_targets=np.zeros(t, bool),
            constant=np.zeros(t, bool),
            y_means=np.zeros(t, dtype=np.float64),
        )


def _check_cv(cv, mode: str, n: int) -> list:
    """The K-fold (train, validation) pairs, or ``[]`` for the efficient ``"loo"`` / ``"gcv"``."""
    if not isinstance(cv, str):
        return make_folds(n, cv)
    if cv not in ("loo", "gcv"):
        raise InputError(f"cv={cv!r}: expected an int, a splitter, 'loo' or 'gcv'")
    if mode == "fracridge":
        raise InputError(
            "cv: the fracridge mode uses K-fold CV (an int or a splitter), not 'loo'/'gcv'"
        )
    return []


def _load_block(Y, start: int, stop: int, nan_targets, constant, gather_all: bool = False):
    """Targets ``start:stop`` as float32 without their NaN targets.

    Records NaN and constant targets in ``nan_targets`` / ``constant``. Returns the kept columns
    (relative to ``start``), their values (n × kept) and their float64 means; values and means
    are None when no target is kept. The kept columns are gathered (a copy in another memory
    order, which changes float rounding downstream) when some are dropped, or always with
    ``gather_all`` (as :func:`ridge_fit` has always done).
    """
    Yb = np.asarray(Y[:, start:stop], dtype=np.float32)
    my = Yb.mean(0, dtype=np.float64)
    finite = _finite_targets(Yb, start, my)
    nan_targets[start:stop] = ~finite
    cols = np.flatnonzero(finite)
    if cols.size == 0:
        return cols, None, None
    if gather_all or cols.size < Yb.shape[1]:
        Yb, my = Yb[:, cols], my[cols]
    constant[start + cols] = _constant_columns(Yb)
    return cols, Yb, my


def _centred(xp, Yb, my, centre: bool):
    """A block of targets on the backend, centred by its means when ``centre``."""
    return xp.asarray(Yb - my.astype(np.float32) if centre else Yb)


def _solve(
    X,
    Y,
    candidates,
    *,
    mode,
    cv,
    alpha_per_target,
    fit_intercept,
    backend,
    device,
    block_size,
    memory_budget,
    verbose,
    copy_X=True,
):
    """Cross-validated ridge (``mode="ridge"``) or fracridge over blocks of targets."""
    fit_intercept = _check_intercept(fit_intercept)
    X, Y = _check_xy(X, Y)
    n, p = X.shape
    t = Y.shape[1]
    xp = get_backend(backend, device)
    folds = _check_cv(cv, mode, n)
    X0, x_mean, full, decs, primal = _prepare(
        X,
        fit_intercept,
        xp,
        folds,
        need_loo=cv == "loo",
        alphas=candidates if mode == "ridge" else None,
        copy_X=copy_X,
    )
    centre = fit_intercept in (True, "paper")
    n_cand = len(candidates)
    n_val = max((len(va) for _, va in folds), default=0)
    tb = _block_size(block_size, n, full.r, n_cand, n_val, memory_budget, loo=cv == "loo")
    per_target_choice = mode == "ridge" and alpha_per_target

    n_threads = _block_threads(xp, t, block_size)
    if n_threads > 1:
        # blocks in flight share the budget; at least one block per thread
        tb = min(
            _block_size(None, n, full.r, n_cand, n_val, memory_budget // n_threads, cv == "loo"),
            -(-t // n_threads),
        )
    out = _Outputs.empty(p, t, n_cand)
    X0_b = xp.asarray(X0) if primal else None
    shared_Z = {}  # block start → (columns, full.Z): the shared choice refits after all blocks
    shared_sums = np.zeros(n_cand)  # fracridge / shared alpha: Σ over targets of the mean R²

    def run_block(start):
        """Scores of one block of targets (its coefficients stored for a per-target choice).

        Each block works on shallow copies of the decompositions: they hold its projections
        (``Z``, ``Bv``...) while sharing the eigenbases, so blocks can run in threads."""
        cols, Yb, my = _load_block(Y, start, min(start + tb, t), out.nan_targets, out.constant)
        if cols.size == 0:
            return cols, None, None
        full_b, decs_b = copy.copy(full), [copy.copy(d) for d in decs]
        out.y_means[start + cols] = my
        Y0 = _centred(xp, Yb, my, centre)
        XtY = xp.matmul(X0_b.T, Y0) if primal else None
        full_b.project(Y0, XtY)
        if folds:
            fast = {id(d): d.fast for d in decs_b}
            scores = _kfold_scores(
                xp, decs_b, fast, Y0, XtY, candidates, mode, per_target_choice, n
            )
        else:
            scores = _efficient_scores(xp, full_b, Y0, candidates, cv, centre, n)
        scores_np = xp.to_numpy(scores).astype(np.float32)
        out.cv_scores[:, start + cols] = scores_np
        if per_target_choice:
            best = np.argmax(np.nan_to_num(scores_np, nan=-np.inf), axis=0)
            _store_coefficients(xp, full_b, candidates[best], out, start + cols)
            return cols, scores_np, None
        return cols, scores_np, xp.to_numpy(full_b.Z)

    starts = range(0, t, tb)
    bar = progress(total=len(starts), desc="ridge blocks", verbose=verbose, unit="block")
    # blocks are independent: threads share the cores (numpy's products and passes release the
    # GIL), each with a single-threaded BLAS, so the passes over the targets run in parallel
    # too; results do not depend on the number of threads
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        with single_thread_blas() if pool is not None else contextlib.nullcontext():
            results = pool.map(run_block, starts) if pool is not None else map(run_block, starts)
            for start, (cols, scores_np, Z) in zip(starts, results, strict=True):
                bar.update(1)
                if scores_np is None or per_target_choice:
                    continue
                ok = ~out.constant[start + cols]
                shared_sums += np.nan_to_num(scores_np[:, ok]).sum(1)
                shared_Z[start] = (cols, Z)
    finally:
        if pool is not None:
            pool.shutdown()
        bar.close()
    fraction = None
    if not per_target_choice:
        chosen = candidates[int(np.argmax(shared_sums))]
        _refit_shared(xp, full, shared_Z, chosen, mode, out)
        if mode == "fracridge":
            fraction = float(chosen)
    lam = full.lam_np[full.lam_np > full.tol] if mode == "ridge" else None
    return _finish(out, fit_intercept, x_mean, candidates, fraction, lam)


def _block_threads(xp, t: int, block_size) -> int:
    """Threads over target blocks: as many as BLAS may use (so a caller's thread limit holds),
    where the backend allows it (numpy) and the block size comes from the memory budget (an
    explicit ``block_size`` keeps one block in memory at a time)."""
    if not xp.parallel_batches or t < 2 or block_size is not None:
        return 1
    blas = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(1, min(max(blas, default=1), t))


def _kfold_scores(xp, decs, fast, Y0, XtY, candidates, mode, per_target_choice, n):
    """Scores (n_candidates × t) of one block of targets, from every fold.

    Per-target choice: ``1 − mean-over-folds MSE / var(y)``; shared choice: the mean over folds
    of the validation R² (0 for targets constant over a validation fold).
    """
    col_sum = xp.sum(Y0, axis=0)
    scores = xp.zeros((len(candidates), Y0.shape[1]))
    for d in decs:
        d.project(Y0, XtY, col_sum)
        if fast[id(d)]:
            scores += _fold_scores_fast(xp, d, per_target_choice)
        else:
            _add_fold_scores(xp, d, scores, candidates, mode, per_target_choice)
        del d.Z, d.Bv
    scores = scores / len(decs)
    if per_target_choice:
        # 1 − mean fold MSE / var(y): monotone in the MSE, R²-like for reading
        var = xp.sumsq(Y0, 0) / n - (col_sum / n) ** 2
        scores = 1 - scores / xp.where(var > 0, var, var * 0 + 1)
    return scores


def _fold_scores_fast(xp, d, per_target_choice):
    """One fold's MSE (per-target choice) or R² (shared) for every alpha, through :meth:`sse_all`."""
    sse_all = d.sse_all()
    if per_target_choice:
        return xp.asarray(sse_all / d.n_va, dtype=np.float32)
    ok = d.sst > 0
    sst = xp.where(ok, d.sst, d.sst * 0 + 1)
    r2 = xp.asarray(1 - sse_all / xp.asarray(sst, dtype=np.float64)[None, :], dtype=np.float32)
    return xp.where(ok[None, :], r2, r2 * 0)


def _add_fold_scores(xp, d, scores, candidates, mode, per_target_choice):
    """Add one fold's MSE or R² to ``scores``, one candidate at a time (in place)."""
    ok = d.sst > 0
    if mode == "fracridge":
        alphas = _fraction_to_alpha_backend(xp, _lam_kept(xp, d), _rows_kept(xp, d), candidates)
    else:
        alphas = candidates
    for ci in range(len(candidates)):
        sse = d.sse(d.shrink(alphas[ci]))
        if per_target_choice:
            scores[ci] += sse / d.n_va
        else:
            scores[ci] += xp.where(ok, 1 - sse / xp.where(ok, d.sst, d.sst * 0 + 1), sse * 0)


def _store_coefficients(xp, full, alphas_t, out: _Outputs, targets) -> None:
    """Coefficients of ``targets`` at their alphas (``full.Z`` set for them) into ``out``."""
    c_b, a_b = _coefficients(xp, full, alphas_t)
    out.coef[:, targets] = c_b
    out.alphas[targets] = a_b


def _refit_shared(xp, full, shared_Z, chosen, mode, out: _Outputs) -> None:
    """Coefficients of every block at the shared choice: an alpha, or a fraction (one alpha per
    target on the full training set)."""
    for start, (cols, Z) in shared_Z.items():
        full.Z = xp.asarray(Z)
        if mode == "fracridge":
            a = _fraction_to_alpha_backend(xp, _lam_kept(xp, full), _rows_kept(xp, full), [chosen])
            alphas_t = xp.to_numpy(a)[0].astype(np.float64)
        else:
            alphas_t = np.full(len(cols), chosen)
        _store_coefficients(xp, full, alphas_t, out, start + cols)


def _finish(out: _Outputs, fit_intercept, x_mean, candidates, fraction, lam=None) -> RidgeResult:
    """Intercepts, zero coefficients for constant targets, edge counts, warnings; the result.

    ``lam``: the full-data eigenvalues above tolerance (ridge mode), for the edge warning.
    """
    ok = ~out.nan_targets
    if fit_intercept is True:
        out.intercept[ok] = (
            out.y_means[ok] - x_mean.astype(np.float64) @ out.coef[:, ok].astype(np.float64)
        ).astype(np.float32)
    else:
        out.intercept[ok] = 0.0
    out.coef[:, out.constant] = 0.0
    _warn_targets(out.nan_targets, out.constant, stacklevel=5)
    candidates = np.asarray(candidates, dtype=np.float64)
    chosen = out.alphas if fraction is None else np.full(out.alphas.shape, fraction)
    counts = edge_counts(chosen[~out.nan_targets & ~out.constant], candidates)
    open_ = edges_open(candidates, lam) if lam is not None else np.ones(2, bool)
    if lam is not None:
        _warn_edges(counts, int(np.sum(~out.nan_targets & ~out.constant)), candidates, lam)
    return RidgeResult(
        coef=out.coef,
        intercept=out.intercept,
        alphas=out.alphas,
        cv_scores=out.cv_scores,
        candidates=np.asarray(candidates, dtype=np.float64),
        fraction=fraction,
        nan_targets=out.nan_targets,
        constant_targets=out.constant,
        x_mean=x_mean,
        edge_counts=counts,
        edges_open=open_,
    )


def edge_counts(chosen, candidates) -> np.ndarray:
    """How many of the ``chosen`` values (one per target) are the smallest and the largest candidate.

    Parameters
    ----------
    chosen : (n_targets,) array
        The selected alpha (or fraction) of each fitted target.
    candidates : (n_candidates,) array
        The grid they were chosen from.

    Returns
    -------
    (2,) int64
        ``[n at min(candidates), n at max(candidates)]``.
    """
    chosen = np.asarray(chosen, dtype=np.float64)
    candidates = np.asarray(candidates, dtype=np.float64)
    if candidates.size == 0:
        return np.zeros(2, np.int64)
    return np.array(
        [np.sum(chosen == candidates.min()), np.sum(chosen == candidates.max())], dtype=np.int64
    )


def edges_open(alphas, lam) -> np.ndarray:
    """Whether a penalty beyond each end of the grid ``alphas`` could change a ridge fit whose
    data have the (kernel or Gram) eigenvalues ``lam`` (see :attr:`RidgeResult.edges_open`).

    Returns
    -------
    (2,) bool
        ``[small end open, large end open]``; ``[True, True]`` without eigenvalues.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    if alphas.size == 0 or lam.size == 0:
        return np.ones(2, bool)
    lo, hi = float(alphas.min()), float(alphas.max())
    return np.array(
        [
            lo > _EDGE_SATURATION * float(lam.min()),
            float(lam.max()) / (float(lam.max()) + hi) >= _EDGE_SATURATION,
        ]
    )


def _warn_edges(counts, n_fitted, alphas, lam, stacklevel=5) -> None:
    """Warn when more than ``EDGE_WARN_FRACTION`` of the fitted targets chose an edge of the alpha
    grid that does not saturate (where a wider grid could change their fits)."""
    if n_fitted == 0 or alphas.size < 2 or lam.size == 0:
        return
    lo, hi = float(alphas.min()), float(alphas.max())
    open_low, open_high = (bool(x) for x in edges_open(alphas, lam))
    limit = EDGE_WARN_FRACTION * n_fitted
    parts = []
    if open_low and counts[0] > limit:
        parts.append(
            f"{counts[0]} of {n_fitted} fitted targets chose the smallest alpha ({lo:g}): add "
            "smaller alphas"
        )
    if open_high and counts[1] > limit:
        parts.append(
            f"{counts[1]} of {n_fitted} fitted targets chose the largest alpha ({hi:g}): add "
            f"larger alphas (up to ~{1e4 * float(lam.max()):.0e}, where every fit is the mean)"
        )
    if parts:
        warnings.warn(
            f"alphas: {'; '.join(parts)}. Their best penalty may lie outside the grid (more than "
            f"{EDGE_WARN_FRACTION:.0%} of the targets at an edge); widen `alphas` "
            "(result.edge_counts, RidgeEncoder.edge_counts_ hold the counts)",
            stacklevel=stacklevel,
        )


def _lam_kept(xp, d):
    keep = d.lam_np > d.tol
    return xp.asarray(d.lam_np[keep])


def _rows_kept(xp, d):
    keep = np.flatnonzero(d.lam_np > d.tol)
    if len(keep) == d.r:
        return d.Z
    return _take_rows(xp, d.Z, keep)


def _coefficients(xp, full, alphas_t):
    """Coefficients (p × t) at per-target alphas from the full-data decomposition (``full.Z`` set)."""
    alphas_b = xp.asarray(np.asarray(alphas_t, dtype=np.float64))
    D = full.shrink(alphas_b)
    if full.primal:
        coef = xp.matmul(full.V, full.Z * D)
    else:
        W = full.Z * D / full.sqrt_lam[:, None]  # = diag(1/(λ+α)) Uᵀ y
        coef = xp.matmul(full.X0_T, xp.matmul(full.U, W))
    return xp.to_numpy(coef), np.asarray(alphas_t, dtype=np.float64)


def _efficient_scores(xp, full, Y0, alphas, cv, centre, n):
    """LOO or GCV criterion per (alpha, target): 1 − MSE / var(y)."""
    keep = full.lam_np > full.tol
    lam = xp.asarray(full.lam_np[keep])
    if full.primal:
        UtY = _take_rows(xp, full.Z, np.flatnonzero(keep)) / xp.sqrt(lam)[:, None]
    else:
        UtY = full.Z / full.sqrt_lam[:, None]
    yss = xp.sum(Y0 * Y0, axis=0)
    col_mean = xp.sum(Y0, axis=0) / n
    var = yss / n - col_mean**2
    var = xp.where(var > 0, var, var * 0 + 1)
    scores = []
    if cv == "gcv":
        r_perp = yss - xp.sum(UtY * UtY, axis=0)
        for a in alphas:
            f = lam / (lam + a)
            rss = r_perp + xp.sum(((1 - f)[:, None] * UtY) ** 2, axis=0)
            df = float(xp.to_numpy(xp.sum(f))) + (1.0 if centre else 0.0)
            gcv = rss / n / (1 - df / n) ** 2
            scores.append(1 - gcv / var)
    else:
        U = full.U_loo
        U2 = U * U
        for a in alphas:
            f = lam / (lam + a)
            h = xp.matmul(U2, f[:, None])  # (n, 1)
            if centre:
                h = h + 1.0 / n
            resid = (Y0 - xp.matmul(U, f[:, None] * UtY)) / (1 - h)
            scores.append(1 - xp.sum(resid * resid, axis=0) / n / var)
    return xp.stack(scores)


def _finite_targets(Yb, start, col_mean=None):
    """Columns without NaN; infinities are an error (they are not a missing-value marker).

    ``col_mean`` (the columns' float64 means, when already computed) spares a pass: a NaN or an
    infinity makes its column's float64 sum non-finite, and float32 values cannot overflow it."""
    bad = ~np.isfinite(Yb.mean(0, dtype=np.float64) if col_mean is None else col_mean)
    if not bad.any():
        return ~bad
    cols = np.flatnonzero(bad)
    inf = np.isinf(Yb[:, cols]).any(0)
    if inf.any():
        j = start + int(cols[np.argmax(inf)])
        raise InputError(
            f"Y: Input y contains infinity (target {j}); responses must be finite or NaN for units "
            "to drop"
        )
    return ~bad


def _constant_columns(Yb):
    """Columns (of a finite block) with one value: only those whose first and last rows agree
    are compared in full."""
    out = np.zeros(Yb.shape[1], bool)
    cand = np.flatnonzero(Yb[0] == Yb[-1])
    if cand.size:
        out[cand] = np.ptp(Yb[:, cand], axis=0) == 0
    return out


def _warn_targets(nan_targets, constant, stacklevel=3):
    """Refuse all-NaN targets; warn about NaN and constant ones (at the public function's caller)."""
    if nan_targets.size and nan_targets.all():
        raise InputError(
            "Y: Input y contains NaN in every target; nothing is left to fit — check the responses "
            "(units with any NaN are dropped)"
        )
    if nan_targets.any():
        warnings.warn(
            f"Y: {int(nan_targets.sum())} of {nan_targets.size} targets contain NaN and were dropped "
            "(their coefficients, predictions and scores are NaN; see nan_targets)",
            stacklevel=stacklevel,
        )
    if constant.any():
        warnings.warn(
            f"Y: {int(constant.sum())} of {constant.size} targets are constant over the training "
            "images; they get zero coefficients and their mean as intercept (Pearson r undefined)",
            stacklevel=stacklevel,
        )


# --------------------------------------------------------------------------------------------------
# public functions


def ridge_cv(
    X,
    Y,
    alphas=DEFAULT_ALPHAS,
    *,
    cv=5,
    alpha_per_target: bool = True,
    fit_intercept=True,
    backend: str = "numpy",
    device: str | None = None,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    verbose: bool | None = None,
    copy_X: bool = True,
) -> RidgeResult:
    """Cross-validated ridge regression of many targets on shared features.

    Parameters
    ----------
    X : (n_images, n_features) array
        Features (e.g. caption embeddings, or brain units for decoding). Must be finite.
    Y : (n_images, n_targets) array, memory map or :class:`~brainalign.utils.arrays.RowView`
        Targets (e.g. vertices), read one block of targets at a time as float32: pass a memory map
        or a ``RowView`` of its training rows (``sub.betas_view(~sub.shared)``), not
        ``betas[mask]``, which copies them all. Targets containing NaN are dropped, reported in
        ``nan_targets`` and get NaN coefficients; constant targets get zero coefficients.
    alphas : (n_alphas,) array
        Candidate penalties (≥ 0; 0 is OLS through the pseudo-inverse). The default,
        ``DEFAULT_ALPHAS``, is 25 values from 1e-2 to 1e10. ``result.edge_counts`` counts the
        targets that chose the smallest and the largest; a warning asks to widen the grid when
        more than ``EDGE_WARN_FRACTION`` (5 %) of the fitted targets sit at an edge where a wider
        grid could change their fit (not at an edge that already gives the least-squares fit, or
        the mean: the largest alpha shrinks every component to under 0.1 %).
    cv : int, splitter, iterable of (train, val), ``"loo"`` or ``"gcv"``
        An int means unshuffled K-fold (as ``KFold(cv)``). ``"loo"`` is exact efficient
        leave-one-out (scikit-learn ``RidgeCV``'s criterion), ``"gcv"`` generalised CV.
    alpha_per_target : bool
        One alpha per target (chosen by the mean over folds of the validation MSE, as himalaya's
        ``RidgeCV``) or one alpha for all targets (by the mean over folds of the uniform-average R²).
    fit_intercept : True, False or ``"paper"``
        ``"paper"`` centres X and Y for the fit but drops the intercept (``intercept = 0``), as
        fracridge 2.0 did in the published analysis — a compatibility flag only; it shifts
        predictions by a constant (harmless for Pearson r, not for predicted embeddings).
    backend, device : str
        ``"numpy"`` or ``"torch"`` (``device="cuda"`` on a GPU). All heavy products run in float32.
    block_size : int or None
        Targets per block, one block at a time; ``None`` derives it from ``memory_budget``
        (bytes) and, on the numpy backend, runs as many blocks at once as BLAS has threads
        (each with one BLAS thread, the budget shared among them; same results).
    verbose : bool or None
        Progress bar over target blocks.
    copy_X : bool
        ``False`` centres ``X`` in place (when it is float32) instead of copying it: saves an
        n × p copy for wide ``X`` (a decoder from tens of thousands of units).

    Returns
    -------
    RidgeResult
    """
    alphas = _check_candidates(alphas, "alphas")
    return _solve(
        X,
        Y,
        alphas,
        mode="ridge",
        cv=cv,
        alpha_per_target=alpha_per_target,
        fit_intercept=fit_intercept,
        backend=backend,
        device=device,
        block_size=block_size,
        memory_budget=memory_budget,
        verbose=verbose,
        copy_X=copy_X,
    )


def fracridge_cv(
    X,
    Y,
    fractions=FRACRIDGE_FRACTIONS,
    *,
    cv=5,
    fit_intercept=True,
    backend: str = "numpy",
    device: str | None = None,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    verbose: bool | None = None,
    copy_X: bool = True,
) -> RidgeResult:
    """Fractional ridge with one fraction for all targets, as the paper's ``FracRidgeRegressorCV``.

    Each candidate fraction ``f`` of the OLS coefficient norm becomes, per target and per fold, the
    alpha with ``‖β_α‖ = f ‖β_OLS‖`` (exact, see :func:`fraction_to_alpha`; ``f ≥ 1`` is OLS). The
    fraction with the highest mean over folds of the uniform-average validation R² is refit on all
    images. Defaults reproduce the paper: 20 fractions 0.05–1.05, 5 unshuffled folds. Parameters as
    :func:`ridge_cv`; ``result.fraction`` holds the chosen fraction and ``result.alphas`` the
    per-target alphas it implies on the full training set.
    """
    fractions = _check_candidates(fractions, "fractions", allow_zero=False)
    if isinstance(cv, str):
        raise InputError(f"cv={cv!r}: the fracridge mode uses K-fold CV (an int or a splitter)")
    return _solve(
        X,
        Y,
        fractions,
        mode="fracridge",
        cv=cv,
        alpha_per_target=False,
        fit_intercept=fit_intercept,
        backend=backend,
        device=device,
        block_size=block_size,
        memory_budget=memory_budget,
        verbose=verbose,
        copy_X=copy_X,
    )


def ridge_fit(
    X,
    Y,
    alpha=1.0,
    *,
    fit_intercept=True,
    backend: str = "numpy",
    device: str | None = None,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> RidgeResult:
    """Ridge at fixed penalties: ``alpha`` a scalar or one value per target (n_targets,).

    ``Y`` as in :func:`ridge_cv` (an array, a memory map or a ``RowView``, read in blocks).
    """
    fit_intercept = _check_intercept(fit_intercept)
    X, Y = _check_xy(X, Y)
    n, p = X.shape
    t = Y.shape[1]
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim == 0:
        alpha = np.full(t, float(alpha))
    if alpha.shape != (t,) or not np.isfinite(alpha).all() or (alpha < 0).any():
        raise InputError(
            f"alpha: expected a scalar or ({t},) array of values ≥ 0, got shape {alpha.shape}"
        )
    xp = get_backend(backend, device)
    X0, x_mean, full, _, primal = _prepare(X, fit_intercept, xp, [])
    centre = fit_intercept in (True, "paper")
    tb = _block_size(block_size, n, full.r, 1, 0, memory_budget)
    coef = np.full((p, t), np.nan, dtype=np.float32)
    intercept = np.full(t, np.nan, dtype=np.float32)
    nan_targets = np.zeros(t, bool)
    constant = np.zeros(t, bool)
    X0_b = xp.asarray(X0) if primal else None
    for start in range(0, t, tb):
        cols, Yb, my = _load_block(
            Y, start, min(start + tb, t), nan_targets, constant, gather_all=True
        )
        if cols.size == 0:
            continue
        Y0 = _centred(xp, Yb, my, centre)
        full.project(Y0, xp.matmul(X0_b.T, Y0) if primal else None)
        c_b, _ = _coefficients(xp, full, alpha[start + cols])
        coef[:, start + cols] = c_b
        if fit_intercept is True:
            intercept[start + cols] = my - x_mean.astype(np.float64) @ c_b.astype(np.float64)
        else:
            intercept[start + cols] = 0.0
    coef[:, constant] = 0.0
    _warn_targets(nan_targets, constant)
    return RidgeResult(
        coef=coef,
        intercept=intercept,
        alphas=np.where(nan_targets, np.nan, alpha),
        cv_scores=np.zeros((0, t), np.float32),
        candidates=np.zeros(0),
        nan_targets=nan_targets,
        constant_targets=constant,
        x_mean=x_mean,
    )


def pearson_r(a, b, axis: int = 0) -> np.ndarray:
    """Pearson correlation between matching columns (``axis=0``) or rows (``axis=1``) of a and b.

    Constant columns give NaN. Computed in float64.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"pearson_r: shapes differ ({a.shape} vs {b.shape})")
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    num = (a * b).sum(axis=axis)
    den = np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
