"""Anatomy of the virtual NSD: streams-like ROIs on fsaverage5 and a small volume tied to it.

The ROIs grow along the mesh from the landmark vertices of ``docs/roi_landmarks.md`` (centroids
of grouped Wang et al. 2015 areas on fsaverage5) until each reaches its target size; growth is
competitive (nearest landmark by geodesic distance wins), so ROIs are disjoint and contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from brainalign.datasets.surfaces import Mesh, subsample_mesh

#: landmark vertex per ROI on fsaverage5 (lh, rh), from roi_landmarks.md
LANDMARKS = {
    "early": (2747, 3894),
    "midventral": (3928, 2498),
    "ventral": (1412, 7962),
    "midlateral": (5218, 5276),
    "lateral": (2293, 8556),
    "midparietal": (3797, 9576),
    "parietal": (2854, 9551),
}

#: target ROI sizes in fsaverage5 vertices per hemisphere, about NSD streams' sizes
#: (streams ventral ≈ 350 per hemisphere on fsaverage5; nsdgeneral ≈ 1,200)
ROI_SIZES = {
    "early": 320,
    "midventral": 90,
    "midlateral": 90,
    "midparietal": 90,
    "ventral": 340,
    "lateral": 280,
    "parietal": 300,
}

#: planted generator of each ROI: representation name -> weight (variance share)
ROI_REPRESENTATIONS = {
    "early": {"lowlevel": 1.0},
    "midventral": {"lowlevel": 0.5, "objects": 0.5},
    "midlateral": {"lowlevel": 0.5, "events": 0.5},
    "midparietal": {"lowlevel": 0.5, "layout": 0.5},
    "ventral": {"objects": 1.0},
    "lateral": {"events": 1.0},
    "parietal": {"layout": 1.0},
}


def grow_rois(mesh: Mesh, seeds: dict[str, int], sizes: dict[str, int]) -> np.ndarray:
    """Competitive geodesic region growing from seed vertices.

    Parameters
    ----------
    mesh : Mesh
        One hemisphere (coordinates in mm).
    seeds : dict of name -> vertex index
    sizes : dict of name -> target number of vertices

    Returns
    -------
    labels : (n_vertices,) int16
        0 = unassigned, k = k-th name of ``seeds`` (1-based, in dict order).
    """
    names = list(seeds)
    graph = mesh.adjacency(weighted=True)
    dist = dijkstra(graph, indices=[seeds[n] for n in names])  # (n_rois, V) geodesic mm
    n_rois, n_vertices = dist.shape
    # every (distance, roi, vertex) candidate in increasing distance; each vertex goes to the
    # first ROI reaching it that still has room
    order = np.argsort(dist, axis=None, kind="stable")
    roi_of = order // n_vertices
    vert_of = order % n_vertices
    labels = np.zeros(n_vertices, dtype=np.int16)
    counts = np.zeros(n_rois, dtype=np.int64)
    target = np.array([sizes[n] for n in names])
    for r, v in zip(roi_of, vert_of, strict=True):
        if labels[v] or counts[r] >= target[r]:
            continue
        labels[v] = r + 1
        counts[r] += 1
        if (counts >= target).all():
            break
    return labels


def smoothing_operator(mesh: Mesh) -> sp.csr_matrix:
    """Row-stochastic one-ring mean filter (vertex and its neighbours)."""
    A = mesh.adjacency() + sp.identity(mesh.n_vertices, format="csr")
    deg = np.asarray(A.sum(axis=1)).ravel()
    return sp.diags(1.0 / deg) @ A


def smooth_fields(
    S: sp.csr_matrix, n_fields: int, n_iter: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_fields`` random fields smooth on the mesh, each standardised, (n_vertices, n_fields)."""
    X = rng.standard_normal((S.shape[0], n_fields))
    for _ in range(n_iter):
        X = S @ X
    X -= X.mean(axis=0)
    X /= X.std(axis=0)
    return X


class MeshSmoother:
    """Random fields smooth on one hemisphere, at fsaverage5-like smoothness at any resolution.

    On a finer nested mesh, fields are drawn and diffused on its fsaverage5 subset (the first
    10,242 vertices, fsaverage5 faces), carried to every vertex by its nearest fsaverage5
    vertex, then diffused a few steps on the fine mesh to remove the steps: the same
    smoothness in mm for a fraction of the cost of diffusing on the fine mesh.
    """

    def __init__(self, mesh: Mesh):
        self.S = smoothing_operator(mesh)
        self.n_vertices = mesh.n_vertices
        self._coarse = None
        if mesh.n_vertices > 10242:
            from scipy.spatial import cKDTree

            coarse = subsample_mesh(mesh, "fsaverage5")
            nearest = cKDTree(coarse.coords).query(mesh.coords)[1]
            self._coarse = (smoothing_operator(coarse), nearest)

    def dilate(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` grown by one ring of neighbours."""
        return (self.S @ mask.astype(float)) > 0

    def fields(self, n_fields: int, n_iter: int, rng: np.random.Generator) -> np.ndarray:
        """``(n_vertices, n_fields)`` standardised smooth fields (``n_iter`` fsaverage5 steps)."""
        if self._coarse is None:
            return smooth_fields(self.S, n_fields, n_iter, rng)
        S5, nearest = self._coarse
        X = smooth_fields(S5, n_fields, n_iter, rng)[nearest]
        for _ in range(8):
            X = self.S @ X
        X -= X.mean(axis=0)
        X /= X.std(axis=0)
        return X


@dataclass
class VolumeGrid:
    """A small voxel grid whose cortical voxels are tied to surface vertices.

    Attributes
    ----------
    shape : (3,) int
    affine : (4, 4) float
        voxel (0-based) -> mm.
    mask : (X, Y, Z) bool
        Brain mask (cortical voxels plus a one-voxel rim of non-cortex).
    tied_vertex : (X, Y, Z) int64
        For cortical voxels, the index (lh then rh, 0..2V-1) of the vertex nearest the voxel
        centre; -1 elsewhere.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    mask: np.ndarray
    tied_vertex: np.ndarray

    def world_to_voxel(self, xyz: np.ndarray) -> np.ndarray:
        inv = np.linalg.inv(self.affine)
        return xyz @ inv[:3, :3].T + inv[:3, 3]


def make_volume_grid(points: np.ndarray, voxel_size: float, rng: np.random.Generator) -> VolumeGrid:
    """Voxelise cortical points (mid-thickness vertices of both hemispheres).

    The grid origin is jittered by up to one voxel, so subjects get slightly different grids
    (as NSD's subjects have different func1pt8mm shapes).
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    margin = 2
    lo = points.min(axis=0) - (margin + rng.uniform(0, 1, 3)) * voxel_size
    hi = points.max(axis=0) + margin * voxel_size
    shape = tuple(int(s) for s in np.ceil((hi - lo) / voxel_size).astype(int) + 1)
    affine = np.diag([voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = lo
    ijk = np.rint((points - lo) / voxel_size).astype(np.int64)
    cortex = np.zeros(shape, dtype=bool)
    cortex[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = True
    mask = ndimage.binary_dilation(cortex, iterations=1)
    tied = np.full(shape, -1, dtype=np.int64)
    vox = np.argwhere(cortex)
    centres = vox * voxel_size + lo
    _, nearest = cKDTree(points).query(centres)
    tied[vox[:, 0], vox[:, 1], vox[:, 2]] = nearest
    return VolumeGrid(shape=shape, affine=affine, mask=mask, tied_vertex=tied)
