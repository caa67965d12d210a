"""Noise ceilings of RDM data: upper and lower bounds (Nili et al. 2014), and the Algonauts score.

For subjects' RDMs ``D_1 … D_S`` of one ROI and a comparison method:

* **upper bound** of subject ``s``: similarity of ``D_s`` with the pool of *all* subjects'
  RDMs (``D_s`` included, so no model can be expected to do better on average);
* **lower bound** of subject ``s``: similarity of ``D_s`` with the pool of the *other*
  subjects' RDMs (what a perfect model estimated from independent subjects reaches).

The ceiling is the mean over subjects. ``pool="mean"`` pools by the arithmetic mean RDM (the
Algonauts 2019 convention, whose ceilings are the mean over subjects of the *squared* Spearman
correlation with the mean RDM of all: ``upper_r2``); ``pool="rsatoolbox"`` pools as rsatoolbox's
``pool_rdm`` for the method (z-scored RDMs for Pearson, ranks for Spearman and tau-a), which
makes the bounds equal ``rsatoolbox.inference.boot_noise_ceiling``.

>>> nc = noise_ceiling_bounds(subject_rdms, method="spearman")
>>> nc.lower_mean, nc.upper_mean, nc.upper_r2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainalign.errors import InputError
from brainalign.rsa import _weighted
from brainalign.rsa.compare import COMPARE_METHODS, compare_rdms
from brainalign.rsa.rdm import condense, n_conditions_from_condensed

POOLS = ("mean", "rsatoolbox")


def as_condensed_stack(rdms, name: str = "rdms") -> np.ndarray:
    """RDMs as ``(n_rdms, n_pairs)`` float64: from condensed ``(n_pairs,)`` / ``(k, n_pairs)`` or
    square ``(n, n)`` / ``(k, n, n)`` input (upper triangles, row-major)."""
    X = np.asarray(rdms, dtype=np.float64)
    square_2d = (
        X.ndim == 2
        and X.shape[0] == X.shape[1]
        and np.allclose(np.diag(X), 0)
        and np.allclose(X, X.T)
    )
    if X.ndim == 3 or square_2d:
        X = condense(X if X.ndim == 3 else X[None])
    X = np.atleast_2d(X)
    if X.ndim != 2:
        raise InputError(f"{name}: expected condensed or square RDMs, got shape {X.shape}")
    n_conditions_from_condensed(X.shape[1], name)
    if not np.isfinite(X).all():
        raise InputError(f"{name}: contains NaN or infinite dissimilarities")
    return X


def _check(method: str, pool: str) -> None:
    if method not in COMPARE_METHODS:
        raise InputError(f"method={method!r}: expected one of {COMPARE_METHODS}")
    if pool not in POOLS:
        raise InputError(f"pool={pool!r}: expected one of {POOLS}")


@dataclass
class NoiseCeiling:
    """Per-subject noise-ceiling bounds of one set of subjects' RDMs.

    Attributes
    ----------
    lower, upper : (n_subjects,) float64
        Each subject's similarity with the pool of the others / of all.
    method, pool : str
    """

    lower: np.ndarray
    upper: np.ndarray
    method: str
    pool: str

    @property
    def lower_mean(self) -> float:
        return float(np.mean(self.lower))

    @property
    def upper_mean(self) -> float:
        return float(np.mean(self.upper))

    @property
    def lower_r2(self) -> float:
        return float(np.mean(self.lower**2))

    @property
    def upper_r2(self) -> float:
        """Mean over subjects of the squared upper-bound similarity (the Algonauts ceiling)."""
        return float(np.mean(self.upper**2))


def noise_ceiling_bounds(
    subject_rdms, method: str = "spearman", pool: str = "mean"
) -> NoiseCeiling:
    """Lower and upper noise-ceiling bounds of each subject.

    Parameters
    ----------
    subject_rdms : array, (n_subjects, n_pairs) or (n_subjects, n, n)
        At least two subjects' RDMs over the same stimuli in the same order.
    method : {"pearson", "spearman", "cosine", "kendall_tau_a"}
        How RDMs are compared (:func:`brainalign.rsa.compare_rdms`).
    pool : {"mean", "rsatoolbox"}
        How RDMs are pooled (see the module docstring).

    Returns
    -------
    NoiseCeiling
    """
    _check(method, pool)
    D = as_condensed_stack(subject_rdms, "subject_rdms")
    if D.shape[0] < 2:
        raise InputError(f"subject_rdms: a noise ceiling needs >= 2 subjects, got {D.shape[0]}")
    w = np.ones(D.shape[0])
    if method in _weighted.FAST_METHODS:
        _, lower, upper = _weighted.pooled_ceiling(D, w, method, pool)
    else:
        _, lower, upper = _weighted.expanded_ceiling(D, w, method, pool)
    return NoiseCeiling(np.asarray(lower), np.asarray(upper), method, pool)


def algonauts_r2(subject_scores, *, signed: bool = False) -> np.ndarray:
    """The Algonauts 2019 score of models from their per-subject Spearman correlations.

    Parameters
    ----------
    subject_scores : array, (n_subjects,) or (n_models, n_subjects)
        Each subject's Spearman correlation between the model RDM and the subject's RDM.
    signed : bool
        False: the published score, the mean over subjects of ``r²`` (comparable with the
        Algonauts noise ceilings, e.g. :attr:`NoiseCeiling.upper_r2`). True: the mean of
        ``sign(r) · r²``, which keeps negative correlations negative.

    Returns
    -------
    ndarray, () or (n_models,), float64
    """
    r = np.asarray(subject_scores, dtype=np.float64)
    if r.ndim not in (1, 2) or r.shape[-1] == 0:
        raise InputError(
            f"subject_scores: expected (n_subjects,) or (n_models, n_subjects) with at least one "
            f"subject, got shape {r.shape}"
        )
    sq = r**2
    return np.mean(np.sign(r) * sq if signed else sq, axis=-1)


def algonauts_score(model_rdm, subject_rdms) -> float:
    """The Algonauts 2019 score: mean over subjects of the squared Spearman correlation between
    the model RDM and each subject's RDM (divide by :attr:`NoiseCeiling.upper_r2` of
    ``noise_ceiling_bounds(subject_rdms, "spearman")`` for the percentage of the ceiling)."""
    D = as_condensed_stack(subject_rdms, "subject_rdms")
    m = as_condensed_stack(model_rdm, "model_rdm")
    if m.shape[0] != 1:
        raise InputError(f"model_rdm: expected one RDM, got {m.shape[0]}")
    return float(algonauts_r2(compare_rdms(m[0], D, method="spearman")))


__all__ = [
    "POOLS",
    "NoiseCeiling",
    "algonauts_r2",
    "algonauts_score",
    "as_condensed_stack",
    "noise_ceiling_bounds",
]
