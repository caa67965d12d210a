"""Banded ridge: one penalty per feature band and per target, chosen by cross-validation.

Features come as bands (e.g. MPNet | nouns | categories), each scaled by its own weight::

    b* = argmin_b ‖Z b − y‖² + ‖b‖²,   Z_k = exp(δ_k / 2) X_k,   δ_k = log(γ_k / α)

as himalaya's ``BandedRidgeCV`` (``GroupRidgeCV``) parametrises it: ``γ`` lies on the simplex of
band weights and ``α`` is an overall penalty, so band ``k`` is penalised by ``α / γ_k``. Candidates
are a random search over the simplex (Dirichlet samples, the first one uniform, as himalaya's
``solve_group_ridge_random_search``) × a grid of alphas; each target keeps the (γ, α) with the
smallest mean over folds of the validation MSE.

For a fixed ``γ`` the problem is a plain ridge on the scaled features, so the solver reuses the
eigenbasis machinery of :mod:`brainalign.encoding.ridge`: per candidate and fold one
eigendecomposition of the p × p scaled Gram matrix (built from one unscaled Gram matrix, never from
the images again), every alpha scored in that basis through the partial-fraction form of the
validation error (O(r) per alpha and target), and the cross products ``XᵀY`` of each target block
computed once for all candidates (scaling a band scales its rows). Targets are streamed in blocks
from a memory map or a :class:`~brainalign.utils.arrays.RowView`, and held-out scores on a test set
can be computed block by block without keeping coefficients (NSD's full surface in a few GB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from brainalign.backend import get_backend
from brainalign.encoding.hyper_gradient import HyperGradient
from brainalign.encoding.ridge import (
    DEFAULT_ALPHAS,
    DEFAULT_MEMORY_BUDGET,
    _centred_cross_products,
    _check_candidates,
    _check_intercept,
    _check_xy,
    _decompose_all,
    _Decomposition,
    _finite_targets,
    _gram,
    _load_block,
    _warn_targets,
    make_folds,
)
from brainalign.errors import InputError
from brainalign.utils.arrays import as_targets
from brainalign.utils.progress import progress

#: Dirichlet concentrations cycled through by the random search (himalaya's default)
DEFAULT_CONCENTRATION = (0.1, 1.0)
_CPU = get_backend("numpy")
_HYPER_MAX_FEATURES = 8192


@dataclass
class BandedRidgeResult:
    """What :func:`banded_ridge_cv` returns.

    Attributes
    ----------
    deltas : (n_bands, n_targets) float64
        Log band scalings ``log(γ_k / α)`` of the chosen candidate (``-inf`` for a band of weight 0),
        as himalaya's ``deltas_``.
    gammas : (n_bands, n_targets) float64
        Chosen band weights (on the simplex).
    alphas : (n_targets,) float64
        Chosen overall penalty; band ``k`` is penalised by ``alphas / gammas[k]``.
    candidate : (n_targets,) int64
        Index of the chosen row of :attr:`candidates` (−1 for dropped NaN targets); with
        ``solver="hyper_gradient"`` the start of the refinement, whose result ``deltas``,
        ``gammas`` and ``alphas`` hold.
    cv_scores : (n_candidates, n_targets) float32
        ``1 − mean-over-folds MSE / var(y)`` at each candidate's best alpha (higher is better).
    candidates : (n_candidates, n_bands) float64
        The band weights searched.
    alpha_candidates : (n_alphas,) float64
        The overall penalties searched.
    coef : (n_features, n_targets) float32 or None
        Coefficients on the unscaled features (bands stacked in order); None with
        ``return_coef=False``.
    intercept : (n_targets,) float32
    x_mean : (n_features,) float32
        Training mean of the stacked features.
    bands : list of slice
        Columns of each band in the stacked features.
    band_names : list of str
    test_r2 : (n_targets,) float32 or None
        Held-out R² (``1 − SSE / SST`` around the test mean, as ``sklearn.metrics.r2_score``) on the
        test set given to :func:`banded_ridge_cv`.
    test_r2_split : (n_bands, n_targets) float32 or None
        Held-out R² split per band (:func:`r2_split`, product measure with the bands' correlations,
        as himalaya's ``r2_score_split``), from the band predictions and the test targets, both
        centred on their test means; the parts sum to the R² of the mean-centred prediction.
    nan_targets, constant_targets : (n_targets,) bool
    hyper_cv_scores : (max_iter + 1, n_targets) float32 or None
        With ``solver="hyper_gradient"``: ``1 − mean-over-folds MSE / var(y)`` at each evaluated
        iterate (row 0: the random search's choice; NaN once a target stopped). The chosen deltas
        are those of each target's highest row.
    """

    deltas: np.ndarray
    gammas: np.ndarray
    alphas: np.ndarray
    candidate: np.ndarray
    cv_scores: np.ndarray
    candidates: np.ndarray
    alpha_candidates: np.ndarray
    coef: np.ndarray | None
    intercept: np.ndarray
    x_mean: np.ndarray
    bands: list
    band_names: list
    test_r2: np.ndarray | None = None
    test_r2_split: np.ndarray | None = None
    nan_targets: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    constant_targets: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    hyper_cv_scores: np.ndarray | None = None

    def predict(self, Xs, split: bool = False) -> np.ndarray:
        """Predictions (n_samples × n_targets), or per band (n_bands × n_samples × n_targets) with
        ``split=True`` (the intercept is added to no band: they sum to the prediction minus it)."""
        if self.coef is None:
            raise InputError(
                "predict: this result has no coefficients (fitted with return_coef=False); refit "
                "with return_coef=True"
            )
        X, _, _ = stack_bands(Xs, expected=[b.stop - b.start for b in self.bands])
        if split:
            X0 = X - self.x_mean
            return np.stack([X0[:, b] @ self.coef[b] for b in self.bands])
        return X @ self.coef + self.intercept[None, :]


# --------------------------------------------------------------------------------------------------
# inputs


def stack_bands(Xs, expected=None):
    """Stack feature bands into one float32 matrix.

    Parameters
    ----------
    Xs : list of (n_images, p_k) arrays, or dict name → array
        The bands, in order.
    expected : list of int, optional
        Band widths the bands must have (at prediction time).

    Returns
    -------
    X : (n_images, Σ p_k) float32
    bands : list of slice
        Columns of each band in ``X``.
    names : list of str
        ``"band0"``, … or the dict's keys.
    """
    if isinstance(Xs, dict):
        names, arrays = list(Xs), list(Xs.values())
    elif isinstance(Xs, (list, tuple)):
        arrays = list(Xs)
        names = [f"band{k}" for k in range(len(arrays))]
    else:
        raise InputError(
            f"Xs: expected a list of feature bands (n_images × n_features arrays) or a dict name → "
            f"band, got {type(Xs).__name__}; wrap a single matrix as [X]"
        )
    if not arrays:
        raise InputError("Xs: got no feature band; pass at least one (n_images × n_features) array")
    mats = []
    for name, A in zip(names, arrays, strict=True):
        A = np.asarray(A)
        if A.ndim != 2 or A.shape[1] == 0:
            raise InputError(
                f"Xs[{name!r}]: expected a 2-D array (n_images × n_features, n_features ≥ 1), got "
                f"shape {A.shape}"
            )
        mats.append(A)
    n = {A.shape[0] for A in mats}
    if len(n) != 1:
        raise InputError(
            f"Xs: bands have different numbers of images ({[A.shape[0] for A in mats]}); every band "
            "needs one row per image, in the same order"
        )
    widths = [A.shape[1] for A in mats]
    if expected is not None and widths != list(expected):
        raise InputError(f"Xs: band widths {widths} differ from the fitted ones {list(expected)}")
    edges = np.concatenate([[0], np.cumsum(widths)])
    bands = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    X = np.concatenate([A.astype(np.float32, copy=False) for A in mats], axis=1)
    return X, bands, names


def dirichlet_candidates(
    n_bands: int, n_iter: int = 20, concentration=DEFAULT_CONCENTRATION, random_state=0
) -> np.ndarray:
    """Band weights for the random search: ``n_iter`` points on the simplex.

    As himalaya's ``generate_dirichlet_samples``: samples from Dirichlet distributions cycling
    through ``concentration`` (small values reach the corners: one band dominating), the first one
    replaced by the uniform weights ``1 / n_bands``.

    Returns
    -------
    (n_iter, n_bands) float64
    """
    if int(n_bands) < 1 or int(n_iter) < 1:
        raise InputError(f"n_bands={n_bands}, n_iter={n_iter}: expected positive ints")
    conc = np.atleast_1d(np.asarray(concentration, dtype=np.float64))
    if conc.size == 0 or (conc <= 0).any():
        raise InputError(f"concentration: expected positive numbers, got {concentration!r}")
    rng = np.random.default_rng(random_state)
    per = int(math.ceil(n_iter / conc.size))
    parts = [
        np.full((per, n_bands), 1.0 / n_bands) if np.isinf(c) else rng.dirichlet([c] * n_bands, per)
        for c in conc
    ]
    gammas = np.concatenate(parts)[:n_iter]
    gammas[0] = 1.0 / n_bands
    return gammas


def _check_gammas(gammas, n_bands):
    g = np.asarray(gammas, dtype=np.float64)
    if g.ndim == 1 and n_bands == 1:
        g = g[:, None]
    if g.ndim != 2 or g.shape[1] != n_bands or g.shape[0] == 0:
        raise InputError(
            f"gammas: expected an (n_candidates, {n_bands}) array of band weights (one column per "
            f"band), got shape {g.shape}"
        )
    if not np.isfinite(g).all() or (g < 0).any() or (g.sum(1) <= 0).any():
        raise InputError(
            "gammas: band weights must be finite, ≥ 0 and not all 0 in a row (rows on the simplex "
            "sum to 1)"
        )
    return g


# --------------------------------------------------------------------------------------------------
# decompositions of the scaled problem


class _ScaledFold(_Decomposition):
    """Eigendecomposition of one training set of the band-scaled features ``X diag(s)``.

    Built from the unscaled Gram matrices (full data and validation part) and the training and
    validation means, so a new band scaling costs one p × p eigendecomposition and no pass over
    the images. Scores use :class:`~brainalign.encoding.ridge._Decomposition`'s validation error.
    """

    def __init__(self, xp, geom, s, alphas):
        self.xp = xp
        self.primal, self.centre = True, geom["centre"]
        self.n_tr, self.n_va = geom["n_tr"], geom["n_va"]
        m_tr = s * geom["m_tr"]
        Gtr = geom["G_tr"] * np.outer(s, s) - self.n_tr * np.outer(m_tr, m_tr)
        lam, V = self._eigh(Gtr, True)
        self.lam_np, self.V_np = lam, V
        self.V = xp.asarray(V)
        self.lam = xp.asarray(lam)
        self.r = lam.size
        self.s_b = xp.asarray(s)
        self.m_tr_b = xp.asarray(m_tr)
        self.fast = False
        if self.n_va:
            m_va = s * geom["m_va"]
            Gv = (
                geom["G_va"] * np.outer(s, s)
                - self.n_va * (np.outer(m_va, m_tr) + np.outer(m_tr, m_va))
                + self.n_va * np.outer(m_tr, m_tr)
            )
            self.G64 = V.T @ Gv @ V
            self.G = xp.asarray(self.G64)
            self.m_va_b = xp.asarray(m_va)
            self.fast = self.prepare_alphas(alphas)
            if self.fast:
                del self.G, self.G64

    def project_block(self, blk):
        """z, b, ‖y_val − ȳ_tr‖² of one target block from its unscaled cross products ``blk``."""
        xp, s = self.xp, self.s_b[:, None]
        if not self.n_va:
            self.Z = xp.matmul(self.V.T, s * blk["XtY"])
            return
        y_tr, y_va, n_va = blk["y_tr"], blk["y_va"], self.n_va
        Ctr = s * (blk["XtY"] - blk["XvYv"])
        Cva = s * blk["XvYv"]
        if self.centre:
            Ctr, Cva = _centred_cross_products(
                xp, Ctr, Cva, self.n_tr, n_va, self.m_tr_b, self.m_va_b, y_tr, y_va
            )
        self.Z = xp.matmul(self.V.T, Ctr)
        self.Bv = xp.matmul(self.V.T, Cva)
        self.yy = blk["yy"]

    def mse(self, alphas):
        """Validation MSE (n_alphas × t) of the projected block."""
        xp = self.xp
        if self.fast:
            return xp.to_numpy(self.sse_all()).astype(np.float64) / self.n_va
        return (
            np.stack(
                [xp.to_numpy(self.sse(self.shrink(float(a)))).astype(np.float64) for a in alphas]
            )
            / self.n_va
        )

    def coef(self, alphas_t):
        """Coefficients (p × t) on the unscaled features at per-target alphas (after projecting)."""
        xp = self.xp
        D = self.shrink(xp.asarray(np.asarray(alphas_t, dtype=np.float64)))
        return self.s_b[:, None] * xp.matmul(self.V, self.Z * D)


class _KernelFold(_Decomposition):
    """Dual form for more features than images: the kernel ``Σ_k γ_k X_k X_kᵀ`` of one band
    weighting (n × n, from the bands' kernels computed once), decomposed per training set as
    :class:`~brainalign.encoding.ridge._Decomposition` does for plain ridge."""

    def __init__(self, xp, K, tr, va, centre, alphas):
        self.xp = xp
        self.tr, self.va = tr, va
        self.n_tr, self.n_va = len(tr), len(va)
        self.primal, self.centre = False, centre
        self._decompose_dual(K, True)
        self.lam = xp.asarray(self.lam_np)
        self.r = self.lam_np.size
        self.fast = False
        if self.n_va:
            self.fast = self.prepare_alphas(alphas)
            if self.fast:
                del self.G, self.G64

    def project_block(self, blk):
        """z (and b, ‖y_val − ȳ_tr‖² for a fold) of one target block (``blk["Y0"]`` centred)."""
        self.project(blk["Y0"], None, blk.get("col_sum"))

    mse = _ScaledFold.mse

    def dual_weights(self, alphas_t):
        """``A = U diag(1/(λ+α)) Uᵀ y`` (n × t): the coefficients are ``γ ⊙ X0ᵀA``."""
        xp = self.xp
        D = self.shrink(xp.asarray(np.asarray(alphas_t, dtype=np.float64)))
        return xp.matmul(self.U, self.Z * D / self.sqrt_lam[:, None])


def _band_kernels(X0, bands):
    """Each band's kernel ``X0_k X0_kᵀ`` (n × n, float64)."""
    return [_gram(X0[:, b].T) for b in bands]


def _geometry(X0, folds, centre):
    """Candidate-independent Gram matrices and means of the full data and of each fold."""
    G = _gram(X0)
    n = X0.shape[0]
    full = dict(centre=centre, n_tr=n, n_va=0, G_tr=G, m_tr=np.zeros(X0.shape[1]))
    geoms = []
    for tr, va in folds:
        Xva = X0[va]
        G_va = _gram(Xva)
        m_tr = X0[tr].mean(0, dtype=np.float64) if centre else np.zeros(X0.shape[1])
        geoms.append(
            dict(
                centre=centre,
                n_tr=len(tr),
                n_va=len(va),
                G_tr=G - G_va,
                G_va=G_va,
                m_tr=m_tr,
                m_va=Xva.mean(0, dtype=np.float64),
            )
        )
    return full, geoms


def _scales(gamma, bands, p):
    s = np.zeros(p)
    for g, b in zip(gamma, bands, strict=True):
        s[b] = math.sqrt(g)
    return s


# --------------------------------------------------------------------------------------------------
# scores


def r2_split(y_true, y_pred_bands) -> np.ndarray:
    """Split R² over bands with the product measure (himalaya's ``r2_score_split``).

    ``r2_k = Σ_i (2 y_i ŷ_ki − ŷ_ki Σ_l ŷ_li) / Σ_i y_i²``: the parts sum to
    ``1 − ‖y − Σ_k ŷ_k‖² / ‖y‖²``, the R² of the joint prediction when ``y`` has zero mean.

    Parameters
    ----------
    y_true : (n_samples, n_targets) array
        Targets, centred on their mean over samples (not checked: centre them first).
    y_pred_bands : (n_bands, n_samples, n_targets) array
        Each band's part of the prediction.

    Returns
    -------
    (n_bands, n_targets) float64
        NaN where the targets are constant.
    """
    y = np.asarray(y_true, dtype=np.float64)
    P = np.asarray(y_pred_bands, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if P.ndim == 2:
        P = P[None]
    if P.ndim != 3 or P.shape[1:] != y.shape:
        raise InputError(
            f"y_pred_bands: expected shape (n_bands, {y.shape[0]}, {y.shape[1]}), got {P.shape}"
        )
    sst = (y * y).sum(0)
    total = P.sum(0)
    num = (2 * y[None] * P - P * total[None]).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, num / np.where(sst > 0, sst, 1), np.nan)


def _r2(y, pred):
    """``1 − SSE / SST`` per column around y's mean (NaN for constant columns), float64."""
    y = np.asarray(y, dtype=np.float64)
    sse = ((y - pred) ** 2).sum(0)
    sst = ((y - y.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.nan)


# --------------------------------------------------------------------------------------------------
# the solver


def banded_ridge_cv(
    Xs,
    Y,
    *,
    gammas=None,
    n_iter: int = 20,
    concentration=DEFAULT_CONCENTRATION,
    alphas=DEFAULT_ALPHAS,
    cv=5,
    fit_intercept=True,
    random_state=0,
    test=None,
    return_coef: bool = True,
    backend: str = "numpy",
    device: str | None = None,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    verbose: bool | None = None,
    solver: str = "random_search",
    max_iter: int = 10,
    tol: float | None = 1e-2,
    step: str = "lipschitz",
) -> BandedRidgeResult:
    """Banded ridge of many targets: one band weighting and penalty per target, by K-fold CV.

    Parameters
    ----------
    Xs : list of (n_images, p_k) arrays, or dict name → array
        The feature bands (e.g. ``{"mpnet": E, "nouns": N, "categories": C}``). Must be finite.
    Y : (n_images, n_targets) array, memory map or :class:`~brainalign.utils.arrays.RowView`
        Targets, read one block at a time. Targets with NaN are dropped (``nan_targets``).
    gammas : (n_candidates, n_bands) array, optional
        Band weights to search (rows on the simplex; a 0 leaves the band out). Default:
        :func:`dirichlet_candidates` (``n_iter``, ``concentration``, ``random_state``).
    alphas : (n_alphas,) array
        Overall penalties (> 0) tried with every band weighting.
    cv : int, splitter or iterable of (train, val)
        Folds (an int is unshuffled ``KFold``). Each target keeps the candidate and alpha with the
        smallest mean over folds of the validation MSE (himalaya's ``l2_neg_loss`` criterion; ties
        go to the larger alpha and the earlier candidate).
    fit_intercept : bool
        Centre features and targets with each training set's means.
    test : tuple (Xs_test, Y_test), optional
        Held-out images (bands as ``Xs``; targets an array, memory map or ``RowView``): their R²
        and split R² are computed block by block (``test_r2``, ``test_r2_split``).
    return_coef : bool
        Keep the (n_features × n_targets) coefficients; ``False`` saves that memory when only the
        held-out scores are needed.
    backend, device : str
        ``"numpy"`` or ``"torch"`` (``device="cuda"`` on a GPU); the target products run there.
    block_size : int or None
        Targets per block; ``None`` derives it from ``memory_budget`` (bytes).
    solver : {"random_search", "hyper_gradient"}
        ``"hyper_gradient"`` refines each target's band penalties from the random search's choice
        by gradient steps on its CV loss (:mod:`brainalign.encoding.hyper_gradient`, as himalaya's
        ``MultipleKernelRidgeCV(solver="hyper_gradient")``): the penalties leave the searched
        grid, each target keeps its best evaluated iterate, and the result's ``hyper_cv_scores``
        show the path. To start as himalaya does (its ``initial_deltas="ridgecv"``), pass one
        uniform row as ``gammas``. Solves p × p systems, so it needs at most 8,192 features.
    max_iter, tol : int, float or None
        Gradient steps per target, and the step (in δ) below which a target stops (None: never).
    step : {"lipschitz", "adaptive"}
        ``"lipschitz"`` takes himalaya's steps (``1 / L`` times the gradient at the last
        iterate); ``"adaptive"`` steps along the gradient from the best iterate, the largest δ
        moved by 1 at first, then twice as far after a step that lowered the CV loss and a quarter
        as far after one that did not. ``tol`` bounds the step's largest |Δδ| in both. Adaptive
        steps reach lower CV losses but, in ``benchmarks/bench_banded.py --hyper``, a lower
        held-out R² (the per-target penalties fit the folds' noise), hence the default.

    Returns
    -------
    BandedRidgeResult
    """
    X, bands, names = stack_bands(Xs)
    fit_intercept = _check_intercept(fit_intercept)
    if fit_intercept == "paper":
        raise InputError("fit_intercept: expected True or False for banded ridge")
    X, Y = _check_xy(X, Y)
    n, p = X.shape
    t = Y.shape[1]
    nb = len(bands)
    if solver not in ("random_search", "hyper_gradient"):
        raise InputError(f"solver: expected 'random_search' or 'hyper_gradient', got {solver!r}")
    if solver == "hyper_gradient":
        if p > _HYPER_MAX_FEATURES:
            raise InputError(
                f"solver='hyper_gradient' solves p × p systems: {p} features are more than "
                f"{_HYPER_MAX_FEATURES}; use solver='random_search' or reduce the bands (e.g. PCA)"
            )
        if int(max_iter) < 0 or (tol is not None and not float(tol) > 0):
            raise InputError(f"max_iter={max_iter!r}, tol={tol!r}: expected an int ≥ 0 and tol > 0")
        if step not in ("lipschitz", "adaptive"):
            raise InputError(f"step: expected 'lipschitz' or 'adaptive', got {step!r}")
    gammas = (
        dirichlet_candidates(nb, n_iter, concentration, random_state)
        if gammas is None
        else _check_gammas(gammas, nb)
    )
    alphas = _check_candidates(alphas, "alphas", allow_zero=False)
    folds = make_folds(n, cv)
    xp = get_backend(backend, device)
    centre = bool(fit_intercept)
    x_mean = X.mean(0, dtype=np.float64).astype(np.float32) if centre else np.zeros(p, np.float32)
    X0 = X - x_mean if centre else X
    # primal (p × p Gram) when there are fewer features than images, else dual (n × n kernel)
    primal = p <= n
    X0_b = xp.asarray(X0)
    if primal:
        full_geom, geoms = _geometry(X0, folds, centre)
        X0va_T = [xp.asarray(X0[va]).T for _, va in folds]
    else:
        kernels = _band_kernels(X0, bands)
        X0_T = X0_b.T
        all_idx, none = np.arange(n), np.arange(0)
        # X0_k x̄_k per band: the intercept's x̄ · coef without the coefficients
        u_mean = [xp.asarray(X0[:, b] @ x_mean[b]) for b in bands]

    Xte0 = Yte = None
    if test is not None:
        Xte0, Yte = _check_test(test, [b.stop - b.start for b in bands], t)
        Xte0 = Xte0 - x_mean if centre else Xte0
        if not primal:
            Kte = [xp.asarray(Xte0[:, b] @ X0[:, b].T) for b in bands]  # (n_test × n) per band
        Xte0 = xp.asarray(Xte0)

    n_cand, K = len(gammas), len(folds)
    n_val = max(len(va) for _, va in folds)
    if block_size is not None:
        if int(block_size) < 1:
            raise InputError(f"block_size: expected a positive int, got {block_size!r}")
        tb = int(block_size)
    else:
        n_te = 0 if Yte is None else Yte.shape[0]
        per_target = 4 * (2 * n + n_val + 2 * n_te * (nb + 1) + (K + 4) * p) + 8 * (
            6 * p + 3 * len(alphas) + n_cand
        )
        if solver == "hyper_gradient":  # per fold: rhs, val targets, 2 warm starts; work arrays
            per_target += 4 * (K * (3 * p + n_val) + 10 * p) + 8 * (max_iter + 1)
        tb = max(1, int(memory_budget // per_target))
    n_blocks = math.ceil(t / tb)
    # the folds' decompositions are kept across blocks when they fit the memory budget
    per_dec = 8 * min(n, p) ** 2 * 2
    cache_folds = n_blocks > 1 and n_cand * K * per_dec <= memory_budget
    fold_cache: dict = {}
    full_cache: dict = {}
    scales = [_scales(g, bands, p) for g in gammas]
    s2_of = [sc * sc for sc in scales]
    x_mean_b = xp.asarray(x_mean)

    cv_scores = np.full((n_cand, t), np.nan, np.float32)
    best_cand = np.full(t, -1, np.int64)
    best_alpha = np.full(t, np.nan)
    coef = np.full((p, t), np.nan, np.float32) if return_coef else None
    intercept = np.full(t, np.nan, np.float32)
    test_r2 = np.full(t, np.nan, np.float32) if Yte is not None else None
    test_split = np.full((nb, t), np.nan, np.float32) if Yte is not None else None
    nan_targets = np.zeros(t, bool)
    constant = np.zeros(t, bool)
    hyper = None
    if solver == "hyper_gradient":
        geometry = (full_geom, geoms) if primal else _geometry(X0, folds, centre)
        hyper = HyperGradient(
            xp, X0, folds, geometry, bands, gammas, max_iter=int(max_iter), tol=tol, step=step
        )
        hyper_deltas = np.full((nb, t), np.nan)
        hyper_scores = np.full((int(max_iter) + 1, t), np.nan, np.float32)
    log_a = np.log(alphas) * 1e-10  # himalaya's slope: equal scores go to the larger alpha
    eps = np.finfo(np.float32).eps

    def _fold(c, tr, va):
        if primal:
            k = next(i for i, f in enumerate(folds) if f[1] is va)
            return _ScaledFold(xp, geoms[k], scales[c], alphas)
        Ks = sum(g * Kb for g, Kb in zip(gammas[c], kernels, strict=True) if g > 0)
        return _KernelFold(xp, Ks, tr, va, centre, alphas)

    starts = range(0, t, tb)
    for start in progress(
        starts, total=len(starts), desc="banded ridge", verbose=verbose, unit="block"
    ):
        cols, Yb, my = _load_block(Y, start, min(start + tb, t), nan_targets, constant)
        if cols.size == 0:
            continue
        tgt = start + cols
        Y0 = xp.asarray(Yb - my.astype(np.float32) if centre else Yb)
        col_sum = xp.sum(Y0, axis=0)
        blk_full = {"XtY": xp.matmul(X0_b.T, Y0)} if primal else {"Y0": Y0}
        blks = []
        for k, (tr, va) in enumerate(folds if primal else []):
            Yva = xp.take(Y0, xp.asarray(va, dtype=np.int64), 0)
            s_va = xp.sum(Yva, axis=0)
            y_tr = (col_sum - s_va) / len(tr) if centre else s_va * 0
            yy = xp.sumsq(Yva, 0) - 2 * y_tr * s_va + len(va) * y_tr * y_tr
            blks.append(
                dict(
                    XtY=blk_full["XtY"],
                    XvYv=xp.matmul(X0va_T[k], Yva),
                    y_tr=y_tr,
                    y_va=s_va / len(va),
                    yy=yy,
                )
            )
            del Yva
        if not primal:
            blks = [{"Y0": Y0, "col_sum": col_sum}] * K
        var = xp.to_numpy(xp.sumsq(Y0, 0) / n - (col_sum / n) ** 2).astype(np.float64)
        var = np.where(var > 0, var, 1.0)
        cur = np.full(cols.size, -np.inf)
        cand_b = np.zeros(cols.size, np.int64)
        alpha_b = np.full(cols.size, alphas[-1])
        for c in range(n_cand):
            decs = [fold_cache.get((c, k)) for k in range(K)]
            if decs[0] is None:
                decs = _decompose_all(xp, lambda f, c=c: _fold(c, *f), folds, min(n, p))
                if cache_folds:
                    fold_cache.update({(c, k): d for k, d in enumerate(decs)})
            mse = 0.0
            for k, d in enumerate(decs):
                d.project_block(blks[k])
                mse = mse + d.mse(alphas)
                del d.Z, d.Bv
            crit = -mse / K + log_a[:, None]
            a_idx = np.argmax(crit, axis=0)
            score = crit[a_idx, np.arange(cols.size)]
            cv_scores[c, tgt] = 1 + (score - log_a[a_idx]) / var
            better = score > cur + eps
            cur[better] = score[better]
            cand_b[better] = c
            alpha_b[better] = alphas[a_idx[better]]
        best_cand[tgt] = cand_b
        best_alpha[tgt] = alpha_b
        n_te = 0 if Yte is None else Yte.shape[0]
        parts_b = xp.zeros((nb, n_te, cols.size)) if Yte is not None else None
        icpt = np.zeros(cols.size)
        # refit each target at its candidate on all training images
        if hyper is not None:
            XtY = blk_full["XtY"] if primal else xp.matmul(X0_T, Y0)
            d_b, mse_h, cb = hyper.fit_block(XtY, Y0, col_sum, cand_b, alpha_b)
            hyper_deltas[:, tgt] = d_b
            hyper_scores[:, tgt] = 1 - mse_h / var
            if parts_b is not None:
                for k, b in enumerate(bands):
                    parts_b[k] = xp.matmul(Xte0[:, b], cb[b])
            icpt = xp.to_numpy(xp.matmul(x_mean_b[None, :], cb))[0]
            if coef is not None:
                coef[:, tgt] = xp.to_numpy(cb)
            del XtY, cb
        else:
            chosen = np.unique(cand_b)
            new = [c for c in chosen if c not in full_cache]
            full_cache.update(
                zip(
                    new,
                    _decompose_all(
                        xp,
                        lambda c: (
                            _ScaledFold(xp, full_geom, scales[c], alphas)
                            if primal
                            else _fold(c, all_idx, none)
                        ),
                        new,
                        min(n, p),
                    ),
                    strict=True,
                )
            )
            for c in chosen:
                sel = np.flatnonzero(cand_b == c)
                d = full_cache[c]
                sel_b = xp.asarray(sel, dtype=np.int64)
                key = "XtY" if primal else "Y0"
                d.project_block({key: xp.take(blk_full[key], sel_b, 1)})
                if primal:
                    cb = d.coef(alpha_b[sel])
                    if parts_b is not None:
                        for k, b in enumerate(bands):
                            parts_b[k][:, sel_b] = xp.matmul(Xte0[:, b], cb[b])
                else:
                    # dual: coef = γ ⊙ X0ᵀA; the test parts and the intercept go through the
                    # bands' (test × train) kernels, never forming the coefficients unless asked
                    A = d.dual_weights(alpha_b[sel])
                    for k in range(nb):
                        g = float(gammas[c][k])
                        if g == 0:
                            continue
                        if parts_b is not None:
                            parts_b[k][:, sel_b] = g * xp.matmul(Kte[k], A)
                        icpt[sel] += g * xp.to_numpy(xp.matmul(u_mean[k][None, :], A))[0]
                    cb = (
                        xp.asarray(s2_of[c])[:, None] * xp.matmul(X0_T, A)
                        if coef is not None
                        else None
                    )
                if primal:
                    icpt[sel] = xp.to_numpy(xp.matmul(x_mean_b[None, :], cb))[0]
                if coef is not None:
                    coef[:, tgt[sel]] = xp.to_numpy(cb)
                del d.Z
        intercept[tgt] = my - icpt if centre else 0.0
        if Yte is not None:
            r2, split = _test_scores(Yte, cols, start, parts_b, xp, my if centre else None)
            test_r2[tgt] = r2
            test_split[:, tgt] = split
        del Y0, blks, blk_full, parts_b

    if coef is not None:
        coef[:, constant] = 0.0
    _warn_targets(nan_targets, constant)
    ok = best_cand >= 0
    g_t = np.full((nb, t), np.nan)
    g_t[:, ok] = gammas[best_cand[ok]].T
    with np.errstate(divide="ignore"):
        deltas = np.log(g_t) - np.log(best_alpha)[None, :]
    if hyper is not None:
        # δ = log(γ / α) with γ on the simplex: α = 1 / Σ exp(δ)
        deltas = hyper_deltas
        best_alpha = 1 / np.exp(deltas).sum(0)
        g_t = np.exp(deltas) * best_alpha[None, :]
    return BandedRidgeResult(
        deltas=deltas,
        gammas=g_t,
        alphas=best_alpha,
        candidate=best_cand,
        cv_scores=cv_scores,
        candidates=gammas,
        alpha_candidates=alphas,
        coef=coef,
        intercept=intercept,
        x_mean=x_mean,
        bands=bands,
        band_names=names,
        test_r2=test_r2,
        test_r2_split=test_split,
        nan_targets=nan_targets,
        constant_targets=constant,
        hyper_cv_scores=hyper_scores if hyper is not None else None,
    )


def _check_test(test, widths, t):
    try:
        Xs_te, Y_te = test
    except (TypeError, ValueError):
        raise InputError(
            "test: expected a pair (Xs_test, Y_test): the held-out bands and targets"
        ) from None
    X_te, _, _ = stack_bands(Xs_te, expected=widths)
    if not np.isfinite(X_te).all():
        raise InputError("test: the held-out features contain NaN or infinite values")
    Y_te = as_targets(Y_te)
    if Y_te.ndim == 1:
        Y_te = Y_te[:, None]
    if Y_te.ndim != 2 or Y_te.shape != (X_te.shape[0], t):
        raise InputError(
            f"test: Y_test must be ({X_te.shape[0]}, {t}) (held-out images × the fitted targets), "
            f"got {Y_te.shape}"
        )
    return X_te, Y_te


def _test_scores(Yte, cols, start, parts_b, xp, my):
    """Held-out R² and split R² of one block (targets ``start + cols``) from its band parts."""
    Yt = np.asarray(Yte[:, start + cols[0] : start + cols[-1] + 1], dtype=np.float64)
    Yt = Yt[:, cols - cols[0]]
    finite = _finite_targets(Yt, start)
    parts = xp.to_numpy(parts_b).astype(np.float64)
    pred = parts.sum(0) + (my[None, :] if my is not None else 0.0)
    r2 = _r2(Yt, pred)
    parts = parts - parts.mean(1, keepdims=True)
    split = r2_split(Yt - Yt.mean(0), parts)
    r2[~finite] = np.nan
    split[:, ~finite] = np.nan
    return r2, split


# --------------------------------------------------------------------------------------------------
# estimator


class BandedRidgeEncoder(RegressorMixin, BaseEstimator):
    """Scikit-learn estimator around :func:`banded_ridge_cv` (bands → many units).

    ``fit(Xs, y)`` takes the bands as a list (or dict) of arrays, like himalaya's
    ``BandedRidgeCV(groups="input")``; parameters as :func:`banded_ridge_cv`.

    Attributes
    ----------
    deltas_ : (n_bands, n_targets)
        Log band scalings ``log(γ / α)``.
    gammas_, alphas_ : (n_bands, n_targets), (n_targets,)
        Chosen band weights and overall penalties.
    coef_ : (n_features, n_targets), intercept_ : (n_targets,)
    cv_scores_ : (n_candidates, n_targets)
    result_ : BandedRidgeResult
    """

    def __init__(
        self,
        gammas=None,
        n_iter=20,
        concentration=DEFAULT_CONCENTRATION,
        alphas=None,
        cv=5,
        fit_intercept=True,
        random_state=0,
        backend="numpy",
        device=None,
        block_size=None,
        memory_budget=DEFAULT_MEMORY_BUDGET,
        verbose=None,
        solver="random_search",
        max_iter=10,
        tol=1e-2,
        step="lipschitz",
    ):
        self.gammas = gammas
        self.n_iter = n_iter
        self.concentration = concentration
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.block_size = block_size
        self.memory_budget = memory_budget
        self.verbose = verbose
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.step = step

    def fit(self, Xs, y):
        """Fit on bands ``Xs`` (list or dict of (n_images, p_k) arrays) and targets ``y``."""
        if y is None:
            raise InputError(
                "BandedRidgeEncoder requires y to be passed; pass the targets (n_images × n_targets)"
            )
        y_arr = as_targets(y)
        self._y_1d = y_arr.ndim == 1
        res = banded_ridge_cv(
            Xs,
            y_arr,
            gammas=self.gammas,
            n_iter=self.n_iter,
            concentration=self.concentration,
            alphas=DEFAULT_ALPHAS if self.alphas is None else self.alphas,
            cv=self.cv,
            fit_intercept=self.fit_intercept,
            random_state=self.random_state,
            backend=self.backend,
            device=self.device,
            block_size=self.block_size,
            memory_budget=self.memory_budget,
            verbose=self.verbose,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            step=self.step,
        )
        self.result_ = res
        self.deltas_, self.gammas_, self.alphas_ = res.deltas, res.gammas, res.alphas
        self.coef_, self.intercept_, self.cv_scores_ = res.coef, res.intercept, res.cv_scores
        self.n_features_in_ = res.coef.shape[0]
        return self

    def predict(self, Xs, split: bool = False):
        """Predictions (n_samples × n_targets), or per band with ``split=True``."""
        check_is_fitted(self, "result_")
        out = self.result_.predict(Xs, split=split)
        return out[..., 0] if self._y_1d else out

    def score(self, Xs, y, sample_weight=None):
        """Mean over targets of the R² (as ``RegressorMixin.score``)."""
        from sklearn.metrics import r2_score

        return float(r2_score(y, self.predict(Xs), sample_weight=sample_weight))

    def score_split(self, Xs, y) -> np.ndarray:
        """R² split per band (:func:`r2_split`; targets and band predictions centred on their
        means over ``Xs``'s images), (n_bands, n_targets)."""
        y = np.asarray(y, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        P = self.result_.predict(Xs, split=True).astype(np.float64)
        return r2_split(y - y.mean(0), P - P.mean(1, keepdims=True))
