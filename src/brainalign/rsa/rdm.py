"""Representational dissimilarity matrices (RDMs), stored as condensed upper triangles.

A condensed RDM over ``n`` conditions is the vector of its ``n (n - 1) / 2`` entries above the
diagonal, in the row-major order of :func:`scipy.spatial.distance.squareform` (and of
rsatoolbox's ``RDMs.dissimilarities``).
"""

from __future__ import annotations

import numpy as np

from brainalign.errors import InputError
from brainalign.utils.validation import check_2d

RDM_METRICS = ("correlation", "cosine", "euclidean")


def n_conditions_from_condensed(n_pairs: int, name: str = "rdm") -> int:
    """Number of conditions ``n`` with ``n (n - 1) / 2 == n_pairs`` (raises if there is none)."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs or n < 2:
        raise InputError(
            f"{name}: a condensed RDM has n (n - 1) / 2 entries for some n >= 2, got {n_pairs} "
            "entries; pass the upper triangle of a square RDM (scipy.spatial.distance.squareform)"
        )
    return n


def upper_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the condensed upper triangle of an ``n × n`` matrix."""
    return np.triu_indices(n, k=1)


def squareform_rdm(rdm) -> np.ndarray:
    """Condensed RDM(s) ``(..., n_pairs)`` → square RDM(s) ``(..., n, n)`` with a zero diagonal."""
    rdm = np.asarray(rdm)
    n = n_conditions_from_condensed(rdm.shape[-1])
    iu, ju = upper_indices(n)
    out = np.zeros(rdm.shape[:-1] + (n, n), dtype=rdm.dtype)
    out[..., iu, ju] = rdm
    out[..., ju, iu] = rdm
    return out


def condense(square) -> np.ndarray:
    """Square RDM(s) ``(..., n, n)`` → condensed upper triangle ``(..., n_pairs)``."""
    square = np.asarray(square)
    if square.ndim < 2 or square.shape[-1] != square.shape[-2]:
        raise InputError(f"square RDM: expected shape (..., n, n), got {square.shape}")
    iu, ju = upper_indices(square.shape[-1])
    return square[..., iu, ju]


def standardise_rows(X, metric: str = "correlation", name: str = "X") -> np.ndarray:
    """Rows centred (``correlation``) and scaled to unit length, so that ``Z Zᵀ`` holds r or cos.

    Raises :class:`InputError` naming the rows whose pattern has zero variance (or zero length),
    because their correlation with any other row is undefined.
    """
    X = np.asarray(X, dtype=np.float64)
    if metric == "correlation":
        X = X - X.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    bad = np.flatnonzero(~(norms > 0))
    if bad.size:
        raise InputError(
            f"{name}: rows {bad[:10].tolist()}{'...' if bad.size > 10 else ''} ({bad.size} in all) are "
            f"constant, so their {metric} distance to other rows is undefined; drop those conditions "
            "or use metric='euclidean'"
        )
    return X / norms[:, None]


def compute_rdm(X, metric: str = "correlation") -> np.ndarray:
    """Condensed RDM of the rows of ``X``.

    Parameters
    ----------
    X : array, shape (n_conditions, n_units)
        One pattern per condition (image). Must be finite.
    metric : {"correlation", "cosine", "euclidean"}
        ``correlation``: 1 − Pearson r between rows (the paper's RDMs); ``cosine``: 1 − cosine
        similarity; ``euclidean``: Euclidean distance. Equal to rsatoolbox's ``calc_rdm``
        methods of the same names and to ``scipy.spatial.distance.pdist``.

    Returns
    -------
    rdm : ndarray, shape (n_conditions * (n_conditions - 1) / 2,), float64
        The upper triangle, row-major (``scipy.spatial.distance.squareform`` order).
    """
    X = check_2d(X, "X", dtype=np.float64, allow_nan=False)
    if X.shape[0] < 2:
        raise InputError(f"X: an RDM needs at least 2 conditions (rows), got {X.shape[0]}")
    if metric not in RDM_METRICS:
        raise InputError(f"metric={metric!r}: expected one of {RDM_METRICS}")
    iu, ju = upper_indices(X.shape[0])
    if metric == "euclidean":
        sq = np.einsum("ij,ij->i", X, X)
        d2 = sq[:, None] + sq[None, :] - 2 * (X @ X.T)
        return np.sqrt(np.maximum(d2[iu, ju], 0.0))
    Z = standardise_rows(X, metric, "X")
    return 1.0 - (Z @ Z.T)[iu, ju]


def to_rsatoolbox(
    rdms, descriptors=None, rdm_descriptors=None, pattern_descriptors=None, metric="correlation"
):
    """Wrap condensed RDM(s) ``(n_rdms, n_pairs)`` or ``(n_pairs,)`` in ``rsatoolbox.rdm.RDMs``.

    rsatoolbox is an optional dependency, imported here only.
    """
    try:
        from rsatoolbox.rdm import RDMs
    except ImportError as exc:  # pragma: no cover - optional dependency present in dev installs
        raise InputError(
            "to_rsatoolbox needs rsatoolbox: pip install 'brainalign[interop]'"
        ) from exc
    rdms = np.atleast_2d(np.asarray(rdms, dtype=np.float64))
    n_conditions_from_condensed(rdms.shape[1], "rdms")
    return RDMs(
        rdms,
        dissimilarity_measure=metric,
        descriptors=dict(descriptors or {}),
        rdm_descriptors=None if rdm_descriptors is None else dict(rdm_descriptors),
        pattern_descriptors=None if pattern_descriptors is None else dict(pattern_descriptors),
    )


def from_rsatoolbox(rdms_obj) -> tuple[np.ndarray, dict]:
    """Condensed RDMs ``(n_rdms, n_pairs)`` and their descriptors from an ``rsatoolbox.rdm.RDMs``.

    Returns
    -------
    rdms : ndarray, shape (n_rdms, n_pairs)
    meta : dict
        ``descriptors``, ``rdm_descriptors``, ``pattern_descriptors`` and ``metric``.
    """
    if not hasattr(rdms_obj, "get_vectors"):
        raise InputError(
            f"rdms_obj: expected an rsatoolbox.rdm.RDMs, got {type(rdms_obj).__name__}"
        )
    meta = {
        "descriptors": dict(rdms_obj.descriptors),
        "rdm_descriptors": {
            k: list(np.asarray(v).tolist()) for k, v in rdms_obj.rdm_descriptors.items()
        },
        "pattern_descriptors": {
            k: list(np.asarray(v).tolist()) for k, v in rdms_obj.pattern_descriptors.items()
        },
        "metric": rdms_obj.dissimilarity_measure,
    }
    return np.asarray(rdms_obj.get_vectors(), dtype=np.float64), meta
