"""Noise ceilings for RSA: leave-one-subject-out on shared images, and split-half per subject."""

from __future__ import annotations

import itertools

import numpy as np

from brainalign.errors import InputError
from brainalign.rsa.compare import compare_rdms
from brainalign.rsa.rdm import compute_rdm
from brainalign.utils.validation import check_random_state


def noise_ceiling(subject_rdms, method: str = "pearson") -> np.ndarray:
    """The paper's leave-one-subject-out ceiling.

    Each subject's RDM (on the images every subject saw, e.g. NSD's shared 515) is compared with
    the mean RDM of the other subjects.

    Parameters
    ----------
    subject_rdms : array, shape (n_subjects, n_pairs)
        Condensed RDMs over the same images in the same order, one per subject.

    Returns
    -------
    ceiling : ndarray, shape (n_subjects,)
    """
    R = np.asarray(subject_rdms, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] < 2:
        raise InputError(f"subject_rdms: expected (n_subjects >= 2, n_pairs), got shape {R.shape}")
    total = R.sum(axis=0)
    n = R.shape[0]
    return np.array([compare_rdms(R[s], (total - R[s]) / (n - 1), method=method) for s in range(n)])


def normalise_by_ceiling(scores, ceiling) -> np.ndarray:
    """Subject-wise noise-ceiling correction: ``scores / ceiling`` (broadcast over trailing axes).

    ``scores`` has subjects on axis 0; ``ceiling`` is (n_subjects,) or broadcastable.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ceiling = np.asarray(ceiling, dtype=np.float64)
    if ceiling.ndim == 1:
        if ceiling.shape[0] != scores.shape[0]:
            raise InputError(
                f"ceiling: {ceiling.shape[0]} values for {scores.shape[0]} subjects (axis 0 of scores)"
            )
        ceiling = ceiling.reshape((-1,) + (1,) * (scores.ndim - 1))
    if np.any(~(ceiling > 0)):
        raise InputError(
            "ceiling: a noise ceiling is <= 0 or NaN, so normalised scores are meaningless"
        )
    return scores / ceiling


def split_half_ceiling(
    trial_betas,
    n_splits: int = 20,
    metric: str = "correlation",
    spearman_brown: bool = True,
    random_state=0,
) -> float:
    """Per-subject ceiling from repetition split-halves.

    The repetitions are split into two halves (all splits when there are few, else
    ``n_splits`` random ones), each half is averaged, an RDM is computed from each and the
    halves' RDMs are correlated (Pearson). The mean r is stepped up to the full data with the
    Spearman–Brown formula ``2r / (1 + r)`` when ``spearman_brown``.

    Parameters
    ----------
    trial_betas : array, shape (n_repetitions, n_images, n_units)
        Responses to every repetition (NSD: 3) of the same images, in the same order.
    """
    T = np.asarray(trial_betas, dtype=np.float64)
    if T.ndim != 3 or T.shape[0] < 2:
        raise InputError(
            f"trial_betas: expected (n_repetitions >= 2, n_images, n_units), got {T.shape}"
        )
    n_rep = T.shape[0]
    half = n_rep // 2
    all_splits = list(itertools.combinations(range(n_rep), half))
    if n_rep % 2 == 0:
        all_splits = all_splits[: len(all_splits) // 2]  # a split and its complement are the same
    if len(all_splits) > n_splits:
        rng = check_random_state(random_state)
        all_splits = [all_splits[i] for i in rng.choice(len(all_splits), n_splits, replace=False)]
    rs = []
    for a in all_splits:
        b = [i for i in range(n_rep) if i not in a]
        rdm_a = compute_rdm(np.nanmean(T[list(a)], axis=0), metric)
        rdm_b = compute_rdm(np.nanmean(T[b], axis=0), metric)
        rs.append(compare_rdms(rdm_a, rdm_b))
    r = float(np.mean(rs))
    return 2 * r / (1 + r) if spearman_brown else r
