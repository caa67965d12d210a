"""RDM commonality analysis: unique and common variance of model RDMs in a data RDM.

The data RDM is regressed (ordinary least squares with an intercept) on every subset of the model
RDMs; ``R²(S)`` is the variance explained by subset ``S``. The commonality coefficient of a set
``S`` of models — the variance they explain together and no other set does — follows by
inclusion–exclusion over the subsets of ``S`` (Seibold & McPhee 1979; Hebart et al. 2018's RSA
commonality; Net2Brain's variance partitioning)::

    C(S) = Σ_{T ⊆ S} (-1)^(|T| + 1) R²((M \\ S) ∪ T)      (R²(∅) = 0)

so for one model ``C({a}) = R²(M) - R²(M \\ {a})`` (its unique variance) and for two of two
``C({a, b}) = R²(a) + R²(b) - R²(a, b)``. The parts sum to ``R²(M)``. A common part can be
negative (suppression), as in any commonality analysis.

Every subject's RDM gets its own parts and the estimate is their mean. Confidence intervals are
percentiles of a bootstrap over stimuli (a stimulus drawn ``k`` times weighs its pairs by ``k_i
k_j``, the pairs between its copies dropped, as :mod:`brainalign.rsa.inference` resamples) and
over subjects (a subject drawn ``k`` times weighs ``k``); both at once by default when there are
several subjects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from brainalign.errors import InputError
from brainalign.rsa.inference import bootstrap_indices
from brainalign.rsa.rdm import n_conditions_from_condensed
from brainalign.rsa.weighted_rsa import _pair_weights

COMMONALITY_BOOTSTRAPS = ("auto", "both", "stimuli", "subjects", "none")
#: commonality needs 2^k - 1 regressions; past 4 models the parts are too many to read
MAX_MODELS = 4


def model_subsets(n_models: int) -> list[tuple[int, ...]]:
    """Every non-empty subset of ``range(n_models)``: singletons first, then pairs, ..."""
    return [s for size in range(1, n_models + 1) for s in combinations(range(n_models), size)]


def part_names(model_names: Sequence[str]) -> list[str]:
    """``"unique <a>"`` for single models and ``"common <a> & <b>"`` for sets, in
    :func:`model_subsets` order."""
    return [
        f"unique {model_names[s[0]]}"
        if len(s) == 1
        else "common " + " & ".join(model_names[i] for i in s)
        for s in model_subsets(len(model_names))
    ]


def _moments(M: np.ndarray, D: np.ndarray, c) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted covariances over pairs: models × models, subjects × models, and each subject's
    variance."""
    W = M.shape[1] if c is None else float(c.sum())
    Mc = M if c is None else M * c
    m_mean = Mc.sum(1) / W
    d_mean = (D.sum(1) if c is None else D @ c) / W
    cmm = Mc @ M.T / W - np.outer(m_mean, m_mean)
    cdm = D @ Mc.T / W - np.outer(d_mean, m_mean)
    cdd = (np.einsum("ij,ij->i", D, D) if c is None else (D * D) @ c) / W - d_mean**2
    return cmm, cdm, cdd


def _r2_all_subsets(cmm, cdm, cdd) -> dict[tuple[int, ...], np.ndarray]:
    """``R²`` of each subject's RDM on every subset of the models, from the covariances."""
    out = {(): np.zeros(cdm.shape[0])}
    with np.errstate(invalid="ignore", divide="ignore"):
        for s in model_subsets(cmm.shape[0]):
            idx = list(s)
            sub, cross = cmm[np.ix_(idx, idx)], cdm[:, idx].T
            try:
                beta = np.linalg.solve(sub, cross)
            except np.linalg.LinAlgError:  # collinear models (a constant RDM in a sample)
                beta = np.linalg.pinv(sub) @ cross
            r2 = np.einsum("ks,ks->s", cross, beta) / cdd
            out[s] = np.where(cdd > 0, r2, np.nan)
    return out


def _parts_from_r2(r2: dict, n_models: int) -> np.ndarray:
    """``(n_parts, n_subjects)`` commonality coefficients by inclusion–exclusion."""
    full = set(range(n_models))
    rows = []
    for s in model_subsets(n_models):
        rest = full - set(s)
        total = 0.0
        for size in range(len(s) + 1):
            for t in combinations(s, size):
                total = total + (-1) ** (size + 1) * r2[tuple(sorted(rest | set(t)))]
        rows.append(total)
    return np.array(rows)


def commonality_parts(model_rdms, data_rdms, pair_weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Commonality coefficients of the model RDMs in each data RDM.

    Parameters
    ----------
    model_rdms : array, shape (n_models, n_pairs)
        Condensed model RDMs, 1 to :data:`MAX_MODELS` of them.
    data_rdms : array, shape (n_subjects, n_pairs) or (n_pairs,)
        Condensed data RDMs over the same stimuli.
    pair_weights : array, shape (n_pairs,), optional
        Non-negative weights of the pairs (a weighted regression); None: all 1.

    Returns
    -------
    parts : ndarray, shape (n_parts, n_subjects)
        One row per set of :func:`model_subsets` (unique parts first); they sum to ``r2``.
    r2 : ndarray, shape (n_subjects,)
        Variance of each data RDM explained by all models together.
    """
    M, D = _check(model_rdms, data_rdms)
    c = None if pair_weights is None else np.asarray(pair_weights, dtype=np.float64)
    if c is not None and (c.shape != (M.shape[1],) or (c < 0).any()):
        raise InputError(
            f"pair_weights: expected {M.shape[1]} non-negative weights, got shape {c.shape}"
        )
    r2 = _r2_all_subsets(*_moments(M, D, c))
    return _parts_from_r2(r2, M.shape[0]), r2[tuple(range(M.shape[0]))]


def _check(model_rdms, data_rdms) -> tuple[np.ndarray, np.ndarray]:
    M = np.asarray(model_rdms, dtype=np.float64)
    D = np.atleast_2d(np.asarray(data_rdms, dtype=np.float64))
    if M.ndim != 2 or not 1 <= M.shape[0] <= MAX_MODELS:
        raise InputError(
            f"model_rdms: expected 1 to {MAX_MODELS} condensed model RDMs (n_models, n_pairs), got "
            f"shape {M.shape}"
        )
    if D.ndim != 2 or D.shape[1] != M.shape[1]:
        raise InputError(
            f"data_rdms: expected condensed RDMs (n_subjects, {M.shape[1]}) over the models' "
            f"stimuli, got shape {D.shape}"
        )
    n_conditions_from_condensed(M.shape[1], "model_rdms")
    for name, X in (("model_rdms", M), ("data_rdms", D)):
        if not np.isfinite(X).all():
            raise InputError(f"{name}: contains NaN or infinite dissimilarities")
    return M, D


@dataclass
class RdmCommonality:
    """Unique and common variance of model RDMs in one ROI's data RDMs.

    Attributes
    ----------
    models : list of str
    parts : list of str
        Part names (:func:`part_names`), rows of the arrays below.
    subject_parts : (n_parts, n_subjects)
    subject_r2 : (n_subjects,)
    bootstrap : str
        ``both``, ``stimuli``, ``subjects`` or ``none``.
    samples : (n_ok, n_parts + 1)
        Per bootstrap sample: the mean parts over the drawn subjects, then the total ``R²``.
    level : float
    """

    models: list[str]
    parts: list[str]
    subject_parts: np.ndarray
    subject_r2: np.ndarray
    bootstrap: str
    samples: np.ndarray
    level: float

    @property
    def estimate(self) -> np.ndarray:
        """Mean over subjects of each part ``(n_parts,)``."""
        return np.nanmean(self.subject_parts, axis=1)

    @property
    def r2(self) -> float:
        return float(np.nanmean(self.subject_r2))

    def ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Percentile bootstrap interval of each part and of the total (``(n_parts + 1,)`` each;
        NaN without a bootstrap)."""
        k = len(self.parts) + 1
        if self.samples.shape[0] < 2:
            return np.full(k, np.nan), np.full(k, np.nan)
        a = (1 - self.level) / 2
        lo, hi = np.nanquantile(self.samples, [a, 1 - a], axis=0)
        return lo, hi

    def to_rows(self) -> list[dict]:
        """One dict per part and one for the total: part, models, estimate, ci_low, ci_high."""
        lo, hi = self.ci()
        est = np.append(self.estimate, self.r2)
        names = [*self.parts, "total"]
        subsets = [*model_subsets(len(self.models)), tuple(range(len(self.models)))]
        return [
            {
                "part": names[i],
                "models": " & ".join(self.models[j] for j in subsets[i]),
                "estimate": float(est[i]),
                "ci_low": float(lo[i]),
                "ci_high": float(hi[i]),
            }
            for i in range(len(names))
        ]


def rdm_commonality(
    model_rdms,
    data_rdms,
    model_names: Sequence[str] | None = None,
    n_bootstrap: int = 1000,
    bootstrap: str = "auto",
    level: float = 0.95,
    random_state=0,
) -> RdmCommonality:
    """Commonality analysis of model RDMs in subjects' RDMs, with bootstrap intervals.

    Parameters
    ----------
    model_rdms : array, shape (n_models, n_pairs)
        E.g. MPNet, nouns and categories (1 to :data:`MAX_MODELS`).
    data_rdms : array, shape (n_subjects, n_pairs) or (n_pairs,)
    model_names : sequence of str, optional
    n_bootstrap : int
        Bootstrap samples (0: no intervals).
    bootstrap : {"auto", "both", "stimuli", "subjects", "none"}
        What is resampled; ``auto``: both with several subjects, else stimuli.
    level : float
        Confidence level of the percentile intervals.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    RdmCommonality
    """
    M, D = _check(model_rdms, data_rdms)
    names = [f"model_{i}" for i in range(M.shape[0])] if model_names is None else list(model_names)
    if len(names) != M.shape[0] or len(set(names)) != len(names):
        raise InputError(f"model_names: expected {M.shape[0]} distinct names, got {names}")
    if bootstrap not in COMMONALITY_BOOTSTRAPS:
        raise InputError(f"bootstrap={bootstrap!r}: expected one of {COMMONALITY_BOOTSTRAPS}")
    if not 0 < level < 1:
        raise InputError(f"level={level!r}: expected a confidence level in (0, 1)")
    if n_bootstrap < 0:
        raise InputError(f"n_bootstrap={n_bootstrap}: expected >= 0")
    n_subj, n = D.shape[0], n_conditions_from_condensed(M.shape[1])
    if bootstrap == "auto":
        bootstrap = "both" if n_subj > 1 else "stimuli"
    if n_bootstrap == 0:
        bootstrap = "none"
    parts, r2 = commonality_parts(M, D)
    n_parts = parts.shape[0]
    samples = np.zeros((0, n_parts + 1))
    if bootstrap != "none":
        subj_draws, stim_draws = bootstrap_indices(n_subj, n, n_bootstrap, random_state)
        rows = []
        for b in range(n_bootstrap):
            stim_counts = (
                np.bincount(stim_draws[b], minlength=n)
                if bootstrap in ("both", "stimuli")
                else np.ones(n)
            )
            subj_counts = (
                np.bincount(subj_draws[b], minlength=n_subj)
                if bootstrap in ("both", "subjects")
                else np.ones(n_subj)
            )
            # 3 distinct stimuli give 3 pairs: fewer leave no regression to fit
            if (stim_counts > 0).sum() < 3:
                continue
            keep = subj_counts > 0
            r2s = _r2_all_subsets(
                *_moments(M, D[keep], _pair_weights(stim_counts.astype(np.float64)))
            )
            p = np.vstack([_parts_from_r2(r2s, M.shape[0]), r2s[tuple(range(M.shape[0]))]])
            w = subj_counts[keep]
            rows.append(p @ w / w.sum())
        samples = np.array(rows).reshape(-1, n_parts + 1)
    return RdmCommonality(names, part_names(names), parts, r2, bootstrap, samples, level)
