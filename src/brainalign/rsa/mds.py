"""Multidimensional scaling of an RDM: stimuli placed in 2-D so that distances follow the RDM.

``method="classical"`` is Torgerson's MDS (double-centred squared dissimilarities, top
eigenvectors): deterministic, no iterations. ``method="metric"`` refines it with SMACOF
(scikit-learn's ``smacof``, started from the classical solution, so it is deterministic too),
which fits the dissimilarities themselves rather than their squares; rsatoolbox's MDS plots use
SMACOF. The returned stress is Kruskal's stress-1 of the solution.
"""

from __future__ import annotations

import numpy as np

from brainalign.errors import InputError
from brainalign.rsa.rdm import squareform_rdm

MDS_METHODS = ("classical", "metric")


def _square(rdm) -> np.ndarray:
    R = np.asarray(rdm, dtype=np.float64)
    if R.ndim == 1:
        R = squareform_rdm(R)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise InputError(f"rdm: expected a condensed or square RDM, got shape {R.shape}")
    if not np.isfinite(R).all():
        raise InputError("rdm: contains NaN or infinite dissimilarities")
    return (R + R.T) / 2


def rdm_mds(
    rdm, n_components: int = 2, method: str = "metric", max_iter: int = 300
) -> tuple[np.ndarray, float]:
    """Coordinates of the stimuli of an RDM in ``n_components`` dimensions.

    Parameters
    ----------
    rdm : condensed (n_pairs,) or square (n, n) RDM
    n_components : int
    method : {"metric", "classical"}
    max_iter : int
        SMACOF iterations (``metric``).

    Returns
    -------
    coords : (n, n_components) float64
    stress : float
        Kruskal's stress-1: sqrt(Σ (d_ij − δ_ij)² / Σ δ_ij²) over pairs.
    """
    if method not in MDS_METHODS:
        raise InputError(f"method={method!r}: expected one of {MDS_METHODS}")
    D = _square(rdm)
    n = D.shape[0]
    if not 1 <= n_components < n:
        raise InputError(f"n_components={n_components}: expected 1 … {n - 1}")
    J = np.eye(n) - 1.0 / n
    B = -0.5 * J @ (D**2) @ J
    vals, vecs = np.linalg.eigh(B)
    top = np.argsort(vals)[::-1][:n_components]
    X = vecs[:, top] * np.sqrt(np.maximum(vals[top], 0.0))
    X = X * np.where(X[np.abs(X).argmax(axis=0), range(n_components)] < 0, -1.0, 1.0)
    if method == "metric":
        from sklearn.manifold import smacof

        X, _ = smacof(D, n_components=n_components, init=X, n_init=1, max_iter=max_iter)
    iu = np.triu_indices(n, k=1)
    d = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))[iu]
    stress = float(np.sqrt(((d - D[iu]) ** 2).sum() / (D[iu] ** 2).sum()))
    return X, stress


__all__ = ["MDS_METHODS", "rdm_mds"]
