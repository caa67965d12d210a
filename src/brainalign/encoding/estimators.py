"""Scikit-learn estimator around the ridge solvers: :class:`RidgeEncoder` (features → many units)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from brainalign.encoding.ridge import (
    DEFAULT_ALPHAS,
    DEFAULT_MEMORY_BUDGET,
    FRACRIDGE_FRACTIONS,
    RidgeResult,
    fracridge_cv,
    pearson_r,
    ridge_cv,
)
from brainalign.errors import InputError
from brainalign.utils.arrays import as_targets

MODES = ("ridge", "fracridge")


class _RidgeBase(RegressorMixin, BaseEstimator):
    """Shared fit / predict / score of the ridge estimators (parameters documented in subclasses)."""

    #: the penalty grid of ``alphas=None`` (a subclass may have its own)
    _default_alphas = DEFAULT_ALPHAS

    def __init__(
        self,
        alphas=None,
        cv=5,
        alpha_per_target=True,
        mode="ridge",
        fractions=None,
        fit_intercept=True,
        backend="numpy",
        device=None,
        block_size=None,
        memory_budget=DEFAULT_MEMORY_BUDGET,
        verbose=None,
        copy_X=True,
    ):
        self.alphas = alphas
        self.cv = cv
        self.alpha_per_target = alpha_per_target
        self.mode = mode
        self.fractions = fractions
        self.fit_intercept = fit_intercept
        self.backend = backend
        self.device = device
        self.block_size = block_size
        self.memory_budget = memory_budget
        self.verbose = verbose
        self.copy_X = copy_X

    def _fit_arrays(self, X, y):
        if y is None:
            raise InputError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "pass the targets (n_images × n_targets)"
            )
        X = validate_data(self, X, reset=True, dtype=[np.float32, np.float64], ensure_min_samples=2)
        y_arr = as_targets(y)  # a memory map or RowView is read in blocks of targets, never copied
        if y_arr.dtype == object:
            y_arr = y_arr.astype(np.float64)
        self._y_1d = y_arr.ndim == 1
        if self.mode not in MODES:
            raise InputError(f"mode={self.mode!r}: expected one of {MODES}")
        common = dict(
            cv=self.cv,
            fit_intercept=self.fit_intercept,
            backend=self.backend,
            device=self.device,
            block_size=self.block_size,
            memory_budget=self.memory_budget,
            verbose=self.verbose,
            copy_X=self.copy_X,
        )
        if self.mode == "ridge":
            alphas = self._default_alphas if self.alphas is None else self.alphas
            res = ridge_cv(X, y_arr, alphas, alpha_per_target=self.alpha_per_target, **common)
        else:
            fractions = FRACRIDGE_FRACTIONS if self.fractions is None else self.fractions
            res = fracridge_cv(X, y_arr, fractions, **common)
        self._set_fitted(res)
        return self

    def _set_fitted(self, res: RidgeResult):
        if self._y_1d:
            self.coef_ = res.coef[:, 0]
            self.intercept_ = float(res.intercept[0])
            self.alpha_ = float(res.alphas[0])
        else:
            self.coef_ = res.coef.T  # (n_targets, n_features), scikit-learn's layout (a view)
            self.intercept_ = res.intercept
            self.alpha_ = res.alphas
        self.cv_scores_ = res.cv_scores
        self.candidates_ = res.candidates
        self.fraction_ = res.fraction
        self.nan_targets_ = res.nan_targets
        self.constant_targets_ = res.constant_targets
        self.edge_counts_ = res.edge_counts
        self.edges_open_ = res.edges_open

    def predict(self, X):
        """Predictions (n_images × n_targets), or (n_images,) when fit on a 1-D target."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        dtype = np.float64 if X.dtype == np.float64 else np.float32
        coef = np.asarray(self.coef_, dtype=dtype)
        return X.astype(dtype, copy=False) @ coef.T + np.asarray(self.intercept_, dtype=dtype)

    def _predictions_and_targets(self, X, y, sample_weight):
        """Predictions for ``X`` and ``y`` as float64, checked to have the same shape."""
        if sample_weight is not None:
            raise InputError("sample_weight: not supported by the ridge estimators")
        pred = self.predict(X)
        y = np.asarray(y, dtype=np.float64)
        if y.shape != pred.shape:
            raise InputError(
                f"y: expected shape {pred.shape} to match the predictions, got {y.shape}"
            )
        return pred, y

    def score(self, X, y, sample_weight=None):
        """Pearson r between predicted and actual targets, per target.

        ``y`` may be memory-mapped or a :class:`~brainalign.utils.arrays.RowView` (e.g.
        ``sub.betas_view(sub.shared)``): targets are predicted and scored in blocks under
        ``memory_budget`` (float64 per block), so neither the predictions nor a float64 copy of
        ``y`` is ever held for all targets at once. Returns a float for a 1-D target, else an
        (n_targets,) float32 array (NaN for dropped or constant targets). ``sample_weight`` is not
        supported.
        """
        if sample_weight is not None:
            raise InputError("sample_weight: not supported by the ridge estimators")
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        y = as_targets(y)
        coef = np.asarray(self.coef_)
        expected = (X.shape[0],) if coef.ndim == 1 else (X.shape[0], coef.shape[0])
        if tuple(y.shape) != expected:
            raise InputError(
                f"y: expected shape {expected} to match the predictions, got {tuple(y.shape)}"
            )
        if coef.ndim == 1:
            pred = self.predict(X)
            y = np.asarray(y, dtype=np.float64)
            return float(pearson_r(pred[:, None], y[:, None])[0])
        return _blockwise_r(X, coef, np.asarray(self.intercept_), y, self._score_block(X.shape[0]))

    def _score_block(self, n: int) -> int:
        """Targets per block of :meth:`score`: ``block_size``, or what ``memory_budget`` allows
        (≈ 48 bytes per image and target: the prediction, y in float64 and their centred copies)."""
        if self.block_size is not None:
            return max(1, int(self.block_size))
        return max(1, int(self.memory_budget // (48 * max(n, 1))))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _blockwise_r(X, coef, intercept, y, block: int) -> np.ndarray:
    """Pearson r (n_targets,) float32 between ``X @ coef.T + intercept`` and ``y``, per block of
    targets; predictions in X's precision (as :meth:`predict`), correlations in float64."""
    dtype = np.float64 if X.dtype == np.float64 else np.float32
    X = X.astype(dtype, copy=False)
    t = coef.shape[0]
    r = np.empty(t, dtype=np.float32)
    for start in range(0, t, block):
        sl = slice(start, min(start + block, t))
        pred = X @ coef[sl].astype(dtype).T + intercept[sl].astype(dtype)
        r[sl] = pearson_r(pred, np.asarray(y[:, sl], dtype=np.float64))
    return r


class RidgeEncoder(_RidgeBase):
    """Cross-validated ridge from features (caption embeddings) to many units (vertices, voxels).

    One eigendecomposition per fold is shared by every alpha and unit; units are processed in
    blocks under ``memory_budget``; one alpha per unit by default (see
    :func:`brainalign.encoding.ridge_cv`).

    Parameters
    ----------
    alphas : array-like or None
        Candidate penalties (ridge mode); ``None`` = ``DEFAULT_ALPHAS`` (1e-2 … 1e10, 25 values,
        half a decade apart).
    cv : int, splitter, iterable of (train, val), ``"loo"`` or ``"gcv"``
        Folds (an int is unshuffled ``KFold``) or efficient leave-one-out / generalised CV.
    alpha_per_target : bool
        One alpha per unit (default) or one shared alpha (ridge mode).
    mode : ``"ridge"`` or ``"fracridge"``
        ``"fracridge"`` reproduces the paper: fractions of the OLS norm, one fraction for all units
        chosen by mean R² (see :func:`brainalign.encoding.fracridge_cv`).
    fractions : array-like or None
        Candidate fractions (fracridge mode); ``None`` = ``linspace(0.05, 1.05, 20)``.
    fit_intercept : True, False or ``"paper"``
        ``"paper"`` is the published code's dropped intercept (compatibility only).
    backend, device : str
        ``"numpy"`` or ``"torch"``; ``device="cuda"`` for a GPU.
    block_size, memory_budget : int
        Units per block when fitting and scoring (``None``: from ``memory_budget`` bytes).
    verbose : bool or None
        Progress bar.
    copy_X : bool
        ``False`` lets the fit centre a float32 ``X`` in place (no copy of it).

    Attributes
    ----------
    coef_ : (n_units, n_features) float32, or (n_features,) for a 1-D target
    intercept_ : (n_units,) float32 or float
    alpha_ : (n_units,) float64 or float
        Selected penalty per unit (fracridge: the alpha the chosen fraction implies).
    fraction_ : float or None
    cv_scores_ : (n_candidates, n_units) float32
    nan_targets_, constant_targets_ : (n_units,) bool
        Units dropped for NaN (predictions NaN) and units constant in training.
    edge_counts_ : (2,) int64
        Fitted units that chose the smallest and the largest candidate (see
        :class:`~brainalign.encoding.RidgeResult`); ridge mode warns when many did.
    edges_open_ : (2,) bool
        Whether a penalty beyond each end could change a fit (see
        :attr:`~brainalign.encoding.RidgeResult.edges_open`).

    Examples
    --------
    Fit on a subject's memory-mapped betas without copying the training rows::

        enc = RidgeEncoder(cv=5).fit(E[~sub.shared], sub.betas_view(~sub.shared))
        r = enc.score(E[sub.shared], sub.betas_view(sub.shared))   # Pearson r per vertex
    """

    def fit(self, X, y):
        """Fit on embeddings ``X`` (n_images × n_features) and responses ``y`` (n_images × n_units).

        ``y`` may be memory-mapped or a :class:`~brainalign.utils.arrays.RowView` of one (a row
        subset that is read one block of units at a time; ``betas[mask]`` would copy every row).
        """
        return self._fit_arrays(X, y)


def cross_val_predict(
    X, Y, *, alphas=None, outer: int = 5, inner: int = 5, random_state=0
) -> np.ndarray:
    """Out-of-fold ridge predictions of ``Y`` from ``X`` (nested cross-validation over rows).

    For data without a fixed train/test split (a lab's own stimuli): the rows are shuffled into
    ``outer`` folds; each fold is predicted by a :class:`RidgeEncoder` fitted on the others, its
    penalty chosen per column of ``Y`` by ``inner``-fold cross-validation within them.

    Parameters
    ----------
    X : (n_stimuli, n_features)
        Predictors (features of the stimuli to encode; responses to decode).
    Y : (n_stimuli, n_targets)
        Targets (responses to encode; caption embeddings to decode).
    alphas : array-like, optional
        Candidate penalties (default ``DEFAULT_ALPHAS``).
    outer, inner : int
        Folds of the evaluation and of the penalty choice.
    random_state : int
        Seed of the shuffle into outer folds.

    Returns
    -------
    (n_stimuli, n_targets) float64
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n = len(X)
    if Y.ndim != 2 or len(Y) != n:
        raise InputError(f"X, Y: expected (n, features) and (n, targets), got {X.shape}, {Y.shape}")
    if not 2 <= outer <= n or smallest_training_part(n, outer) < inner:
        raise InputError(
            f"outer={outer}, inner={inner}: {n} stimuli cannot be split so (each training part "
            f"of {outer} folds needs at least {inner} stimuli for the inner folds)"
        )
    order = np.random.default_rng(random_state).permutation(n)
    predicted = np.empty_like(Y)
    for test in np.array_split(order, outer):
        train = np.setdiff1d(order, test)
        enc = RidgeEncoder(alphas=alphas, cv=inner, verbose=False)
        enc.fit(X[train], Y[train])
        predicted[test] = enc.predict(X[test])
    return predicted


def cross_val_r(X, Y, **kwargs) -> np.ndarray:
    """Held-out encoding accuracy of every unit: Pearson r between each column of ``Y`` and its
    out-of-fold prediction from ``X`` (:func:`cross_val_predict`, same keywords).

    Returns
    -------
    (n_units,) float64
        NaN for a unit constant over the stimuli.
    """
    Y = np.asarray(Y, dtype=np.float64)
    return pearson_r(cross_val_predict(X, Y, **kwargs), Y)


def smallest_training_part(n: int, outer: int) -> int:
    """Stimuli in the smallest training part of ``outer`` folds over ``n`` (:func:`cross_val_r`)."""
    return n - -(-n // outer)
