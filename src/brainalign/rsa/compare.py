"""Comparing RDMs: Pearson, Spearman, cosine and Kendall's tau-a, batched over many RDMs.

Values equal rsatoolbox's ``rsatoolbox.rdm.compare`` with methods ``corr``, ``spearman``,
``cosine`` and ``tau-a``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from brainalign.errors import InputError

COMPARE_METHODS = ("pearson", "spearman", "cosine", "kendall_tau_a")


def _as_rdm_batch(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise InputError(
            f"{name}: expected a condensed RDM (n_pairs,) or a batch (n_rdms, n_pairs), got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise InputError(
            f"{name}: contains NaN or infinite dissimilarities; remove the conditions that produce them"
        )
    return np.atleast_2d(x)


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, ties given their average rank (``scipy.stats.rankdata``)."""
    return stats.rankdata(x, axis=-1)


def _cosine_all(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.sqrt(np.einsum("ij,ij->i", a, a))
    nb = np.sqrt(np.einsum("ij,ij->i", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (a @ b.T) / np.outer(na, nb)
    # rsatoolbox's convention: a zero-length vector has cosine 0 with everything
    out[~np.isfinite(out)] = 0.0
    return out


def _centre(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=1, keepdims=True)


def _tau_a(x: np.ndarray, y: np.ndarray) -> float:
    tot = x.size * (x.size - 1) // 2

    def ties(v):
        _, counts = np.unique(v, return_counts=True)
        return int((counts * (counts - 1) // 2).sum())

    xt, yt = ties(x), ties(y)
    if xt == tot or yt == tot:
        return 0.0
    tau_b = stats.kendalltau(x, y, variant="b").statistic
    return float(np.clip(tau_b * np.sqrt(float(tot - xt) * float(tot - yt)) / tot, -1.0, 1.0))


def compare_rdms(a, b, method: str = "pearson"):
    """Similarity between RDMs.

    Parameters
    ----------
    a, b : array, shape (n_pairs,) or (n_rdms, n_pairs)
        Condensed RDMs over the same conditions.
    method : {"pearson", "spearman", "cosine", "kendall_tau_a"}
        ``pearson``: Pearson r of the dissimilarities (the paper's choice); ``spearman``: Pearson
        r of their ranks (ties averaged); ``cosine``: cosine similarity (uncentred);
        ``kendall_tau_a``: Kendall's tau-a (no tie correction, as rsatoolbox's ``tau-a``).

    Returns
    -------
    float or ndarray
        A float when both are 1-D; shape (n_a,) or (n_b,) when one is 1-D; shape (n_a, n_b)
        (every pair, like ``rsatoolbox.rdm.compare``) when both are 2-D.
    """
    if method not in COMPARE_METHODS:
        raise InputError(f"method={method!r}: expected one of {COMPARE_METHODS}")
    a_was_1d = np.ndim(a) == 1
    b_was_1d = np.ndim(b) == 1
    A = _as_rdm_batch(a, "a")
    B = _as_rdm_batch(b, "b")
    if A.shape[1] != B.shape[1]:
        raise InputError(
            f"a and b: RDMs of different sizes ({A.shape[1]} vs {B.shape[1]} pairs); both must cover "
            "the same conditions in the same order"
        )
    if method == "pearson":
        out = _cosine_all(_centre(A), _centre(B))
    elif method == "spearman":
        out = _cosine_all(_centre(rank_rows(A)), _centre(rank_rows(B)))
    elif method == "cosine":
        out = _cosine_all(A, B)
    else:
        out = np.array([[_tau_a(x, y) for y in B] for x in A])
    if a_was_1d and b_was_1d:
        return float(out[0, 0])
    if a_was_1d:
        return out[0]
    if b_was_1d:
        return out[:, 0]
    return out
