"""Weighted RSA: a non-negative combination of model RDMs, fitted and evaluated by cross-validation.

A weighted model predicts a data RDM as ``Σ_m θ_m · model_m`` with ``θ >= 0`` (rsatoolbox's
``ModelWeighted``). The weights are fitted on training stimuli (and subjects) and the prediction
is scored on held-out stimuli (and subjects), so a combination scores higher than its best
component only if the extra models explain held-out structure, not because it has more
parameters.

The fit is rsatoolbox's ``rsatoolbox.model.fitter.fit_regress_nn`` (chosen because it is
deterministic, unlike ``fit_optimize_positive``'s numerical optimiser): the training subjects'
RDMs are pooled as ``rsatoolbox.util.pooling.pool_rdm`` does (z-scored per subject for pearson,
RMS-scaled for cosine, then averaged), the model RDMs are centred (pearson) and ``θ`` is the
non-negative least-squares solution (Bro & de Jong 1997 active set), scaled to unit norm. Scores
are the similarity (:func:`brainalign.rsa.compare_rdms`) between the prediction and each test
subject's RDM on the test stimuli, averaged over test subjects. Cross-validation folds are
rsatoolbox's ``sets_k_fold`` (``k_subjects × k_stimuli`` folds) and the bootstrap is
``bootstrap_crossval``'s: subjects and stimuli are drawn with replacement, every sample is
cross-validated ``n_cv`` times, and the variance of the mean score is corrected for the
variance that the random fold assignment adds (``(n_cv V_mean - V_1) / (n_cv - 1)``). Given the
same folds and draws, weights, scores and variances equal rsatoolbox's.

Everything runs on the full condensed vectors with pair weights (``k_i k_j`` for stimuli drawn
``k_i`` and ``k_j`` times and both in the fold's set, 0 otherwise; see
:mod:`brainalign.rsa._weighted`): the pairs between copies of one stimulus are never formed,
exactly as rsatoolbox drops them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from brainalign.errors import InputError
from brainalign.rsa._weighted import pair_weights, pool_transform, similarity
from brainalign.rsa.rdm import n_conditions_from_condensed
from brainalign.utils.validation import check_random_state

WEIGHTED_METHODS = ("pearson", "cosine")
#: the name of the fitted combination in results, beside the single models' names
WEIGHTED_NAME = "weighted"


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: the subjects and stimuli (indices into the full data) that
    train and test it. With one subject group (``k_subjects=1``) training and test subjects are
    the same, as in rsatoolbox's ``sets_k_fold``."""

    train_subjects: np.ndarray
    test_subjects: np.ndarray
    train_stimuli: np.ndarray
    test_stimuli: np.ndarray


def default_k(n: float) -> int:
    """rsatoolbox's ``default_k_pattern``: 2 folds below 12 stimuli, 3 below 24, 4 below 40, else 5."""
    return 2 if n < 12 else 3 if n < 24 else 4 if n < 40 else 5


def default_k_subjects(n: float) -> int:
    """rsatoolbox's ``default_k_rdm``: 2 subject groups below 6 subjects, 3 below 12, 4 below 20,
    else 5."""
    return 2 if n < 6 else 3 if n < 12 else 4 if n < 20 else 5


def _groups(items: np.ndarray, k: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """``k`` consecutive groups of the (shuffled) items; the ``n % k`` leftovers, taken from the
    end, go one each to the first groups (rsatoolbox's ``sets_k_fold_pattern`` layout)."""
    items = np.asarray(items)
    if rng is not None:
        items = items[rng.permutation(items.size)]
    size, extra = divmod(items.size, k)
    out = []
    for g in range(k):
        idx = list(range(g * size, (g + 1) * size))
        if g < extra:
            idx.append(items.size - (g + 1))
        out.append(items[np.array(idx, dtype=np.int64)])
    return out


def k_fold_sets(
    subjects, stimuli, k_subjects: int = 1, k_stimuli: int | None = None, random_state=0
) -> list[Fold]:
    """``k_subjects × k_stimuli`` folds over the given subject and stimulus indices.

    Parameters
    ----------
    subjects, stimuli : int or array of int
        The subjects and stimuli to split (an int ``n`` means ``range(n)``).
    k_subjects : int
        Subject groups; 1 trains and tests on all subjects.
    k_stimuli : int or None
        Stimulus groups (None: :func:`default_k` of the number of stimuli); 1 trains and tests
        on all stimuli.
    random_state : None, int or numpy.random.Generator
        Shuffles subjects and stimuli before grouping; ``False`` keeps their order.
    """
    subjects = np.arange(subjects) if np.ndim(subjects) == 0 else np.unique(subjects)
    stimuli = np.arange(stimuli) if np.ndim(stimuli) == 0 else np.unique(stimuli)
    k_stimuli = default_k(stimuli.size) if k_stimuli is None else int(k_stimuli)
    if not 1 <= k_subjects <= subjects.size:
        raise InputError(
            f"k_subjects={k_subjects}: expected 1 to the number of subjects ({subjects.size})"
        )
    if not 1 <= k_stimuli <= stimuli.size // 3:
        raise InputError(
            f"k_stimuli={k_stimuli}: expected 1 to a third of the stimuli ({stimuli.size // 3}) so "
            "that every fold tests at least 3 stimuli; use fewer folds or more stimuli"
        )
    rng = None if random_state is False else check_random_state(random_state)
    folds = []
    for test_subj in _groups(subjects, k_subjects, rng):
        train_subj = test_subj if k_subjects == 1 else np.setdiff1d(subjects, test_subj)
        for test_stim in _groups(stimuli, k_stimuli, rng):
            train_stim = test_stim if k_stimuli == 1 else np.setdiff1d(stimuli, test_stim)
            folds.append(Fold(train_subj, test_subj, np.sort(train_stim), np.sort(test_stim)))
    return folds


def _check(model_rdms, data_rdms, method: str) -> tuple[np.ndarray, np.ndarray]:
    if method not in WEIGHTED_METHODS:
        raise InputError(
            f"method={method!r}: weighted RSA fits non-negative least squares for {WEIGHTED_METHODS}"
        )
    M = np.asarray(model_rdms, dtype=np.float64)
    D = np.atleast_2d(np.asarray(data_rdms, dtype=np.float64))
    if M.ndim != 2 or M.shape[0] < 1:
        raise InputError(
            f"model_rdms: expected condensed model RDMs (n_models, n_pairs), got shape {M.shape}"
        )
    if D.ndim != 2:
        raise InputError(
            f"data_rdms: expected condensed RDMs (n_subjects, n_pairs), got shape {D.shape}"
        )
    if M.shape[1] != D.shape[1]:
        raise InputError(
            f"model_rdms and data_rdms: {M.shape[1]} vs {D.shape[1]} pairs; both must cover the "
            "same stimuli in the same order"
        )
    n_conditions_from_condensed(M.shape[1], "model_rdms")
    for name, X in (("model_rdms", M), ("data_rdms", D)):
        if not np.isfinite(X).all():
            raise InputError(f"{name}: contains NaN or infinite dissimilarities")
    return M, D


def nn_least_squares(gram: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """Non-negative least squares from ``AᵀA`` and ``Aᵀy`` (Bro & de Jong 1997 active set, the
    algorithm of rsatoolbox's ``_nn_least_squares`` and of ``scipy.optimize.nnls``)."""
    k = xty.shape[0]
    x = np.zeros(k)
    passive = np.zeros(k, bool)
    w = xty.copy()
    tol = 100 * np.finfo(float).eps
    for _ in range(3 * k + 10):
        if not (w[~passive] > tol).any():
            break
        free = np.flatnonzero(~passive)
        passive[free[np.argmax(w[free])]] = True
        s = np.linalg.solve(gram[np.ix_(passive, passive)], xty[passive])
        while (s < 0).any():
            xp = x[passive]
            with np.errstate(divide="ignore", invalid="ignore"):
                alphas = np.where(s > 0, 1.0, xp / (xp - s))
            a = alphas.min()
            x[passive] = xp + a * (s - xp)
            drop = np.flatnonzero(passive)[np.argmin(alphas)]
            x[drop] = 0.0
            passive[drop] = False
            s = np.linalg.solve(gram[np.ix_(passive, passive)], xty[passive])
        x[passive] = s
        w = xty - gram @ x
    return x


def _fit(M: np.ndarray, D: np.ndarray, method: str, c, subject_weights) -> np.ndarray:
    """Unit-norm non-negative weights of the model RDMs for the pooled data RDM (pair weights
    ``c``, subject weights summing over the training subjects)."""
    pooled = subject_weights @ pool_transform(D, method, "rsatoolbox", c) / subject_weights.sum()
    W = M.shape[1] if c is None else c.sum()
    if method == "pearson":
        M = M - ((M.sum(1) if c is None else M @ c) / W)[:, None]
    Mc = M if c is None else M * c
    theta = nn_least_squares(Mc @ M.T, Mc @ pooled)
    norm = np.sqrt(np.sum(theta**2))
    return theta / norm if norm > 0 else theta


def fit_weighted_rdm(model_rdms, data_rdms, method: str = "pearson") -> np.ndarray:
    """Non-negative weights of model RDMs that best predict the subjects' RDMs.

    Equal to ``rsatoolbox.model.fitter.fit_regress_nn`` on a ``ModelWeighted`` of the model
    RDMs (method ``corr`` for pearson, ``cosine`` for cosine).

    Parameters
    ----------
    model_rdms : array, shape (n_models, n_pairs)
        Condensed model RDMs.
    data_rdms : array, shape (n_subjects, n_pairs) or (n_pairs,)
        Condensed data RDMs over the same stimuli, pooled as rsatoolbox's ``pool_rdm``.
    method : {"pearson", "cosine"}

    Returns
    -------
    weights : ndarray, shape (n_models,)
        Non-negative, unit Euclidean norm (all zero when no positive combination helps).
    """
    M, D = _check(model_rdms, data_rdms, method)
    return _fit(M, D, method, None, np.ones(D.shape[0]))


#: up to this many stimuli the pair weights are an indexed outer product (16 bytes of indices per
#: pair, cached); beyond, :func:`pair_weights` builds them row by row without index arrays
_INDEXED_PAIRS_UP_TO = 2048
_TRIU: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _pair_weights(k: np.ndarray) -> np.ndarray:
    n = k.shape[0]
    if n > _INDEXED_PAIRS_UP_TO:
        return pair_weights(k)
    if n not in _TRIU:
        _TRIU[n] = np.triu_indices(n, 1)
    iu, ju = _TRIU[n]
    return k[iu] * k[ju]


def _fold_scores(M, D, method, stim_counts, subj_counts, folds) -> np.ndarray:
    """``(n_models + 1, n_folds)`` scores: the weighted fit, then each model alone."""
    out = np.full((M.shape[0] + 1, len(folds)), np.nan)
    n_subj = D.shape[0]
    for f, fold in enumerate(folds):
        train_k = np.zeros_like(stim_counts)
        train_k[fold.train_stimuli] = stim_counts[fold.train_stimuli]
        test_k = np.zeros_like(stim_counts)
        test_k[fold.test_stimuli] = stim_counts[fold.test_stimuli]
        # rsatoolbox leaves a fold out (NaN) when it fits or tests on 2 stimuli or fewer
        if (train_k > 0).sum() <= 2 or (test_k > 0).sum() <= 2:
            continue
        train_s = np.zeros(n_subj)
        train_s[fold.train_subjects] = subj_counts[fold.train_subjects]
        test_s = np.zeros(n_subj)
        test_s[fold.test_subjects] = subj_counts[fold.test_subjects]
        c_train, c_test = _pair_weights(train_k), _pair_weights(test_k)
        rows = train_s > 0
        theta = _fit(M, D[rows], method, c_train, train_s[rows])
        preds = np.vstack([theta @ M, M])
        tested = test_s > 0
        sims = similarity(preds, D[tested], method, c_test)
        out[:, f] = sims @ test_s[tested] / test_s[tested].sum()
    return out


#: the products of every model RDM with every subject's RDM and with each other (pairs × (k S +
#: k² + S) float64) are computed once when they hold at most this many values; every fold of
#: every bootstrap sample is then a few matrix products with its pair weights. Longer RDMs take
#: :func:`_fold_scores` (fold by fold, no products kept)
PRODUCTS_UP_TO = 50_000_000


class _Products:
    """Pairwise products of the model and data RDMs, shared by all folds and samples."""

    def __init__(self, M: np.ndarray, D: np.ndarray, method: str):
        k, S = M.shape[0], D.shape[0]
        self.M, self.D, self.method, self.k, self.S = M, D, method, k, S
        self.MD = (M[:, None, :] * D[None, :, :]).reshape(k * S, -1)
        self.MM = (M[:, None, :] * M[None, :, :]).reshape(k * k, -1)
        self.DD = D * D

    @staticmethod
    def fits(M: np.ndarray, D: np.ndarray) -> bool:
        k, S = M.shape[0], D.shape[0]
        return M.shape[1] * (k * S + k * k + S) <= PRODUCTS_UP_TO


def _fold_weights(stim_counts, subj_counts, folds):
    """Pair weights ``(n_folds, n_pairs)`` and subject weights ``(n_folds, n_subjects)`` of
    every fold's training and test sets, and which folds have more than 2 stimuli in each."""
    n_subj = subj_counts.shape[0]
    F = len(folds)
    tr_k = np.zeros((F, stim_counts.shape[0]))
    te_k = np.zeros_like(tr_k)
    tr_s, te_s = np.zeros((F, n_subj)), np.zeros((F, n_subj))
    for f, fold in enumerate(folds):
        tr_k[f, fold.train_stimuli] = stim_counts[fold.train_stimuli]
        te_k[f, fold.test_stimuli] = stim_counts[fold.test_stimuli]
        tr_s[f, fold.train_subjects] = subj_counts[fold.train_subjects]
        te_s[f, fold.test_subjects] = subj_counts[fold.test_subjects]
    ok = ((tr_k > 0).sum(1) > 2) & ((te_k > 0).sum(1) > 2)
    c_tr = np.stack([_pair_weights(k) for k in tr_k])
    c_te = np.stack([_pair_weights(k) for k in te_k])
    return c_tr, c_te, tr_s, te_s, ok


def _fold_scores_products(P: _Products, stim_counts, subj_counts, folds) -> np.ndarray:
    """:func:`_fold_scores` from the shared products: the same numbers, all folds at once."""
    k, S, pearson = P.k, P.S, P.method == "pearson"
    c_tr, c_te, tr_s, te_s, ok = _fold_weights(stim_counts, subj_counts, folds)
    F = len(folds)
    C = np.vstack([c_tr, c_te]).T  # (n_pairs, 2F)
    W = C.sum(0)
    m1 = (P.M @ C) / W  # weighted means of the models (k, 2F)
    d1 = (P.D @ C) / W  # and of the subjects' RDMs (S, 2F)
    d2 = (P.DD @ C) / W
    md = (P.MD @ C).reshape(k, S, 2 * F) / W
    mm = (P.MM @ C).reshape(k, k, 2 * F) / W
    out = np.full((k + 1, F), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for f in np.flatnonzero(ok):
            # training: the pooled RDM is sum_s a_s D_s - b (z-scored or RMS-scaled subjects);
            # Gram and cross products as sums over the pairs (rsatoolbox's scale)
            w = tr_s[f]
            sd = np.sqrt(d2[:, f] - d1[:, f] ** 2) if pearson else np.sqrt(d2[:, f])
            a = np.where(w > 0, w / sd, 0.0) / w.sum()
            b = float(a @ d1[:, f]) if pearson else 0.0
            # the pooled RDM is centred for pearson (b is its mean), so centring the models
            # changes only the Gram matrix
            cross = W[f] * (md[:, :, f] @ a - b * m1[:, f])
            gram = W[f] * mm[:, :, f]
            if pearson:
                gram = gram - W[f] * np.outer(m1[:, f], m1[:, f])
            theta = nn_least_squares(gram, cross)
            norm = np.sqrt(np.sum(theta**2))
            theta = theta / norm if norm > 0 else theta
            # test: each candidate (the fit, then each model) against each test subject
            g = F + f
            T = np.vstack([theta, np.eye(k)])  # (k + 1, k) weights of the models
            ab = T @ md[:, :, g]  # (k + 1, S): mean over pairs of prediction × data
            a1 = T @ m1[:, g]
            a2 = np.einsum("ri,ij,rj->r", T, mm[:, :, g], T)
            if pearson:
                num = ab - np.outer(a1, d1[:, g])
                va, vb = a2 - a1**2, d2[:, g] - d1[:, g] ** 2
            else:
                num, va, vb = ab, a2, d2[:, g]
            r = num / np.sqrt(np.outer(np.maximum(va, 0), np.maximum(vb, 0)))
            r[~np.isfinite(r)] = 0.0
            r = np.clip(r, -1.0, 1.0)
            ws = te_s[f]
            out[:, f] = r @ ws / ws.sum()
    return out


def _scores(M, D, method, stim_counts, subj_counts, folds, products=None) -> np.ndarray:
    if products is not None:
        return _fold_scores_products(products, stim_counts, subj_counts, folds)
    return _fold_scores(M, D, method, stim_counts, subj_counts, folds)


def crossval_weighted_rdm(
    model_rdms, data_rdms, folds: Sequence[Fold], method: str = "pearson"
) -> np.ndarray:
    """Held-out scores of the weighted combination and of each model alone on each fold.

    Equal to ``rsatoolbox.inference.crossval`` of ``[ModelWeighted(models)] + [ModelFixed(m)
    for m in models]`` with fitters ``fit_regress_nn`` and ``fit_mock`` on the same folds.

    Parameters
    ----------
    model_rdms : array, shape (n_models, n_pairs)
    data_rdms : array, shape (n_subjects, n_pairs)
    folds : sequence of Fold
        From :func:`k_fold_sets` (indices into subjects and stimuli).
    method : {"pearson", "cosine"}

    Returns
    -------
    scores : ndarray, shape (n_models + 1, n_folds)
        Row 0: the combination fitted on the fold's training data; rows 1..: each model RDM
        as is. NaN for folds with 2 or fewer training or test stimuli.
    """
    M, D = _check(model_rdms, data_rdms, method)
    n = n_conditions_from_condensed(M.shape[1])
    _check_folds(folds, D.shape[0], n)
    P = _Products(M, D, method) if _Products.fits(M, D) else None
    return _scores(M, D, method, np.ones(n), np.ones(D.shape[0]), folds, P)


def _check_folds(folds, n_subjects: int, n_stimuli: int) -> None:
    if len(folds) == 0:
        raise InputError("folds: expected at least one Fold (see k_fold_sets)")
    for i, f in enumerate(folds):
        for name, idx, n in (
            ("train_subjects", f.train_subjects, n_subjects),
            ("test_subjects", f.test_subjects, n_subjects),
            ("train_stimuli", f.train_stimuli, n_stimuli),
            ("test_stimuli", f.test_stimuli, n_stimuli),
        ):
            idx = np.asarray(idx)
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
                raise InputError(
                    f"folds[{i}].{name}: expected indices in [0, {n}), got {idx.tolist()[:10]}"
                )


@dataclass
class BootstrapDraw:
    """One bootstrap sample: the drawn subjects and stimuli (with repeats) and its ``n_cv``
    fold assignments over the distinct drawn ones."""

    subjects: np.ndarray
    stimuli: np.ndarray
    cv: list[list[Fold]]


def draw_bootstrap(
    n_subjects: int,
    n_stimuli: int,
    n_bootstrap: int,
    k_subjects: int,
    k_stimuli: int,
    n_cv: int = 2,
    boot_type: str = "both",
    random_state=0,
) -> list[BootstrapDraw | None]:
    """Bootstrap samples as ``rsatoolbox.inference.bootstrap_crossval`` draws them; a sample
    with fewer than ``k_subjects`` distinct subjects or ``3 k_stimuli`` distinct stimuli cannot
    be cross-validated and is None."""
    if boot_type not in ("both", "subjects", "stimuli"):
        raise InputError(f"boot_type={boot_type!r}: expected 'both', 'subjects' or 'stimuli'")
    rng = check_random_state(random_state)
    draws: list[BootstrapDraw | None] = []
    for _ in range(n_bootstrap):
        subj = (
            rng.integers(0, n_subjects, n_subjects)
            if boot_type in ("both", "subjects")
            else np.arange(n_subjects)
        )
        stim = (
            rng.integers(0, n_stimuli, n_stimuli)
            if boot_type in ("both", "stimuli")
            else np.arange(n_stimuli)
        )
        if np.unique(subj).size < k_subjects or np.unique(stim).size < 3 * k_stimuli:
            draws.append(None)
            continue
        cv = [k_fold_sets(subj, stim, k_subjects, k_stimuli, rng) for _ in range(n_cv)]
        draws.append(BootstrapDraw(subj, stim, cv))
    return draws


@dataclass
class WeightedRsa:
    """Cross-validated scores of a non-negative combination of model RDMs and of each model.

    Attributes
    ----------
    names : list of str
        ``"weighted"`` then the model names: the rows of every score array.
    method : str
    weights : (n_models,)
        The combination's weights fitted on all data (unit norm, non-negative).
    cv_scores : (n_models + 1, n_folds)
        Held-out scores on the full data's folds.
    samples : (n_ok, n_models + 1, n_folds, n_cv)
        Held-out scores on each usable bootstrap sample and fold assignment.
    variance : (n_models + 1, n_models + 1)
        Covariance of the mean scores (bootstrap, corrected for the fold assignment as
        rsatoolbox's ``bootstrap_crossval``); NaN without a bootstrap.
    dof : int
    """

    names: list[str]
    method: str
    weights: np.ndarray
    cv_scores: np.ndarray
    samples: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0)))
    variance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    dof: int = 0

    @property
    def score(self) -> np.ndarray:
        """Mean held-out score per row (over the full data's folds)."""
        return np.nanmean(self.cv_scores, axis=1)

    @property
    def bootstrap_mean(self) -> np.ndarray:
        """Mean over usable samples of the fold-averaged scores (rsatoolbox's ``get_means``)."""
        perf = np.nanmean(np.nanmean(self.samples, axis=-1), axis=-1)
        return perf.mean(axis=0)

    @property
    def sem(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.variance), 0.0))

    def ci(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """``score ± t_{dof}((1 + level) / 2) · sem`` per row."""
        if not 0 < level < 1:
            raise InputError(f"level={level!r}: expected a confidence level in (0, 1)")
        half = stats.t.ppf((1 + level) / 2, max(self.dof, 1)) * self.sem
        return self.score - half, self.score + half

    def p_gain(self) -> np.ndarray:
        """Two-sided t-test of the combination's score minus each single model's (n_models,)."""
        V = self.variance
        d = self.score[0] - self.score[1:]
        var = V[0, 0] + np.diag(V)[1:] - 2 * V[0, 1:]
        t = d / np.sqrt(np.maximum(var, np.finfo(float).eps))
        return 2 * stats.t.sf(np.abs(t), max(self.dof, 1))


def bootstrap_variance(samples: np.ndarray, use_correction: bool = True) -> np.ndarray:
    """Covariance of the mean scores from ``(n_ok, n_rows, n_folds, n_cv)`` sample scores, as
    ``rsatoolbox.inference.bootstrap_crossval`` (corrected for ``n_cv > 1`` fold assignments)."""
    n_cv = samples.shape[-1]
    if samples.shape[0] < 2:
        return np.full((samples.shape[1],) * 2, np.nan)
    evals_mean = samples.mean(-1).mean(-1)
    if use_correction and n_cv > 1:
        evals_1 = samples.mean(-2)
        var_mean = np.atleast_2d(np.cov(evals_mean.T))
        var_1 = np.mean([np.atleast_2d(np.cov(evals_1[:, :, i].T)) for i in range(n_cv)], axis=0)
        return (n_cv * var_mean - var_1) / (n_cv - 1)
    return np.atleast_2d(np.cov(evals_mean.T))


def weighted_rsa(
    model_rdms,
    data_rdms,
    model_names: Sequence[str] | None = None,
    method: str = "pearson",
    k_subjects: int | None = None,
    k_stimuli: int | None = None,
    n_bootstrap: int = 100,
    n_cv: int = 2,
    boot_type: str = "both",
    random_state=0,
    folds: Sequence[Fold] | None = None,
    draws: Sequence[BootstrapDraw | None] | None = None,
) -> WeightedRsa:
    """Fit and cross-validate a non-negative combination of model RDMs on subjects' RDMs.

    Parameters
    ----------
    model_rdms : array, shape (n_models, n_pairs)
        Condensed model RDMs (e.g. MPNet, nouns, categories).
    data_rdms : array, shape (n_subjects, n_pairs) or (n_pairs,)
        Condensed data RDMs of one ROI over the same stimuli.
    model_names : sequence of str, optional
    method : {"pearson", "cosine"}
    k_subjects, k_stimuli : int, optional
        Folds over subjects (default: 1 for one subject, else rsatoolbox's default for
        ``(1 - 1/e) · n_subjects``) and over stimuli (default as rsatoolbox's, from
        ``(1 - 1/e) · n_stimuli``, the distinct stimuli a bootstrap sample holds on average).
    n_bootstrap : int
        Bootstrap samples for the variance (0: none).
    n_cv : int
        Fold assignments per bootstrap sample (>= 2 for the correction).
    boot_type : {"both", "subjects", "stimuli"}
    random_state : None, int or numpy.random.Generator
    folds, draws : optional
        Given folds for the full data and given bootstrap draws (e.g. rsatoolbox's own); drawn
        from ``random_state`` when None.

    Returns
    -------
    WeightedRsa
    """
    M, D = _check(model_rdms, data_rdms, method)
    n_subj = D.shape[0]
    n = n_conditions_from_condensed(M.shape[1])
    names = [f"model_{i}" for i in range(M.shape[0])] if model_names is None else list(model_names)
    if len(names) != M.shape[0] or len(set(names)) != len(names) or WEIGHTED_NAME in names:
        raise InputError(
            f"model_names: expected {M.shape[0]} distinct names other than {WEIGHTED_NAME!r}, "
            f"got {names}"
        )
    if n_bootstrap < 0 or n_cv < 1:
        raise InputError(f"n_bootstrap={n_bootstrap}, n_cv={n_cv}: expected >= 0 and >= 1")
    if k_subjects is None:
        # as bootstrap_crossval, from the distinct subjects a sample holds on average, but never
        # more groups than subjects
        k_subjects = 1 if n_subj == 1 else min(default_k_subjects((1 - 1 / np.e) * n_subj), n_subj)
    if k_stimuli is None:
        k_stimuli = default_k((1 - 1 / np.e) * n)
    rng = check_random_state(random_state)
    if folds is None:
        folds = k_fold_sets(n_subj, n, k_subjects, k_stimuli, rng)
    _check_folds(folds, n_subj, n)
    ones_stim, ones_subj = np.ones(n), np.ones(n_subj)
    P = _Products(M, D, method) if _Products.fits(M, D) else None
    cv_scores = _scores(M, D, method, ones_stim, ones_subj, folds, P)
    weights = _fit(M, D, method, None, ones_subj)
    if draws is None:
        draws = draw_bootstrap(n_subj, n, n_bootstrap, k_subjects, k_stimuli, n_cv, boot_type, rng)
    kept = []
    for draw in draws:
        if draw is None:
            continue
        stim_counts = np.bincount(draw.stimuli, minlength=n).astype(np.float64)
        subj_counts = np.bincount(draw.subjects, minlength=n_subj).astype(np.float64)
        kept.append(
            np.stack(
                [_scores(M, D, method, stim_counts, subj_counts, f, P) for f in draw.cv], axis=-1
            )
        )
    rows = M.shape[0] + 1
    samples = np.stack(kept) if kept else np.zeros((0, rows, len(folds), n_cv))
    samples = samples[~np.isnan(samples[:, 0, 0, 0])] if samples.size else samples
    variance = bootstrap_variance(samples) if samples.shape[0] else np.full((rows, rows), np.nan)
    dof = {"both": min(n_subj, n), "subjects": n_subj, "stimuli": n}[boot_type] - 1
    return WeightedRsa([WEIGHTED_NAME, *names], method, weights, cv_scores, samples, variance, dof)
