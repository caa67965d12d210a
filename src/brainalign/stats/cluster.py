"""Cluster and TFCE inference on a mesh (or any graph), family-wise corrected by sign flips.

The null distribution is the maximum cluster statistic (or maximum TFCE value) over the whole
map under each sign flip of the subjects' maps (exact for few subjects), as in MNE-Python's
``permutation_cluster_1samp_test`` and FSL's TFCE.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import sparse, stats
from scipy.sparse import csgraph

from brainalign.errors import InputError
from brainalign.stats.group import _flip_t, _subjects, flip_matrix


class ClusterResult(NamedTuple):
    stat: np.ndarray  # (n_vertices,) observed t
    labels: np.ndarray  # (n_vertices,) cluster id, -1 outside clusters
    cluster_stats: np.ndarray  # (n_clusters,)
    cluster_p: np.ndarray  # (n_clusters,) FWER-corrected
    p: np.ndarray  # (n_vertices,) the p of each vertex's cluster, 1 outside clusters
    n_flips: int


class TFCEResult(NamedTuple):
    stat: np.ndarray  # (n_vertices,) observed t
    tfce: np.ndarray  # (n_vertices,) observed TFCE (signed)
    p: np.ndarray  # (n_vertices,) FWER-corrected
    n_flips: int


def as_adjacency(adjacency, n_vertices: int) -> sparse.csr_matrix:
    """A boolean symmetric (n_vertices, n_vertices) graph from a sparse matrix or faces (n_faces, 3)."""
    if sparse.issparse(adjacency):
        A = sparse.csr_matrix(adjacency, dtype=bool)
    else:
        faces = np.asarray(adjacency)
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0:
            raise InputError(
                f"adjacency: expected a sparse (n, n) matrix or mesh faces (n_faces, 3), got shape {faces.shape}"
            )
        if faces.max() >= n_vertices or faces.min() < 0:
            raise InputError(
                f"adjacency: face indices reach {faces.max()}, but the data have {n_vertices} vertices"
            )
        i = faces[:, [0, 1, 2]].ravel()
        j = faces[:, [1, 2, 0]].ravel()
        A = sparse.coo_matrix(
            (np.ones(2 * i.size, bool), (np.r_[i, j], np.r_[j, i])), shape=(n_vertices, n_vertices)
        )
        A = A.tocsr()
    if A.shape != (n_vertices, n_vertices):
        raise InputError(
            f"adjacency: shape {A.shape} does not match the {n_vertices} vertices of the data"
        )
    return A


def _clusters(A, supra):
    """Labels (-1 outside) of connected supra-threshold vertices."""
    labels = np.full(supra.size, -1, dtype=np.int64)
    idx = np.flatnonzero(supra)
    if idx.size:
        _, lab = csgraph.connected_components(A[idx][:, idx], directed=False)
        labels[idx] = lab
    return labels


def _cluster_stats(A, t, threshold, tail, kind):
    """Per-cluster statistics for the positive and/or negative tails; returns labels and stats."""
    labels = np.full(t.size, -1, dtype=np.int64)
    out = []
    signs = {"two-sided": (1, -1), "greater": (1,), "less": (-1,)}[tail]
    for sign in signs:
        lab = _clusters(A, sign * t > threshold)
        ok = lab >= 0
        if not ok.any():
            continue
        n = lab.max() + 1
        if kind == "size":
            s = np.bincount(lab[ok], minlength=n).astype(float)
        else:
            s = np.bincount(lab[ok], weights=np.abs(t[ok]), minlength=n)
        labels[ok] = lab[ok] + len(out)
        out.extend(s.tolist())
    return labels, np.asarray(out)


def cluster_test(
    x,
    adjacency,
    threshold: float | None = None,
    n_permutations=None,
    tail="two-sided",
    kind="mass",
    random_state=0,
) -> ClusterResult:
    """Cluster-level inference on a mesh with maximum-statistic (FWER) correction.

    Parameters
    ----------
    x : array, shape (n_subjects, n_vertices)
        Per-subject maps (e.g. searchlight r, or differences for a contrast).
    adjacency : sparse (n_vertices, n_vertices) or faces (n_faces, 3)
    threshold : float, optional
        Cluster-forming |t|; default: the two-sided p < 0.001 t value for n − 1 dof.
    n_permutations : int, optional
        All 2^n sign flips for n ≤ 12 subjects by default; random flips otherwise.
    kind : {"mass", "size"}
        Sum of |t| in the cluster, or number of vertices.
    """
    x = _subjects(x, min_n=3)
    if x.ndim != 2:
        raise InputError(f"x: expected (n_subjects, n_vertices), got {x.shape}")
    if np.isnan(x).any():
        raise InputError("x: contains NaN; drop or fill those vertices before cluster inference")
    if kind not in ("mass", "size"):
        raise InputError(f"kind={kind!r}: expected 'mass' or 'size'")
    n, V = x.shape
    A = as_adjacency(adjacency, V)
    if threshold is None:
        threshold = float(stats.t.isf(0.0005, n - 1))
    flips, _ = flip_matrix(n, n_permutations, random_state)
    maxnull = np.zeros(flips.shape[0])
    t_obs = None
    for k, f in enumerate(flips):
        t = _flip_t(x, f[None, :])[0]
        _, s = _cluster_stats(A, t, threshold, tail, kind)
        maxnull[k] = s.max() if s.size else 0.0
        if k == 0:
            t_obs = t
    labels, cstats = _cluster_stats(A, t_obs, threshold, tail, kind)
    cp = np.array([(maxnull >= s - 1e-12 * s).mean() for s in cstats])
    p = np.ones(V)
    p[labels >= 0] = cp[labels[labels >= 0]] if cp.size else 1.0
    return ClusterResult(t_obs, labels, cstats, cp, p, flips.shape[0])


def tfce(
    stat,
    adjacency,
    E: float = 1.0,
    H: float = 2.0,
    dh: float | None = None,
    n_steps: int = 50,
    areas=None,
):
    """Threshold-free cluster enhancement of a map on a graph (positive and negative parts separately).

    ``TFCE(v) = Σ_h e(h)^E · h^H · dh`` over thresholds h up to max|stat|, e(h) the extent (vertex
    count, or summed ``areas``) of v's cluster at h. E=1, H=2 are the usual surface settings.
    Returns a signed array shaped like ``stat``.
    """
    stat = np.asarray(stat, dtype=np.float64)
    A = as_adjacency(adjacency, stat.size)
    w = np.ones(stat.size) if areas is None else np.asarray(areas, dtype=np.float64)
    out = np.zeros(stat.size)
    top = np.nanmax(np.abs(stat)) if stat.size else 0.0
    if not top > 0:
        return out
    step = dh if dh is not None else top / n_steps
    for sign in (1, -1):
        s = sign * stat
        for h in np.arange(step, s.max() + step / 2, step) if s.max() > 0 else []:
            lab = _clusters(A, s >= h)
            ok = lab >= 0
            extent = np.bincount(lab[ok], weights=w[ok])
            out[ok] += sign * extent[lab[ok]] ** E * h**H * step
    return out


def tfce_test(
    x,
    adjacency,
    n_permutations=None,
    tail="two-sided",
    E=1.0,
    H=2.0,
    dh: float | None = None,
    random_state=0,
) -> TFCEResult:
    """TFCE on the one-sample t map with FWER-corrected p-values from the maximum TFCE over flips.

    ``dh`` defaults to 1/50 of the observed max |t| and is then kept fixed across flips.
    """
    x = _subjects(x, min_n=3)
    if x.ndim != 2:
        raise InputError(f"x: expected (n_subjects, n_vertices), got {x.shape}")
    if np.isnan(x).any():
        raise InputError("x: contains NaN; drop or fill those vertices before TFCE")
    n, V = x.shape
    A = as_adjacency(adjacency, V)
    flips, _ = flip_matrix(n, n_permutations, random_state)
    t_obs = _flip_t(x, flips[:1])[0]
    if dh is None:
        dh = max(np.abs(t_obs).max() / 50, 1e-6)

    def score(v):
        if tail == "two-sided":
            return np.abs(v)
        return v if tail == "greater" else -v

    obs = tfce(t_obs, A, E, H, dh)
    maxnull = np.empty(flips.shape[0])
    maxnull[0] = score(obs).max()
    for k in range(1, flips.shape[0]):
        t = _flip_t(x, flips[k : k + 1])[0]
        maxnull[k] = score(tfce(t, A, E, H, dh)).max()
    srt = np.sort(maxnull)
    so = score(obs)
    p = (srt.size - np.searchsorted(srt, so - 1e-12 * np.abs(so), side="left")) / srt.size
    return TFCEResult(t_obs, obs, p, flips.shape[0])
