"""Searchlight neighbourhoods on the cortical surface (geodesic) and in the volume (spheres).

A :class:`Neighbourhoods` is a compressed sparse row list: for centre ``c`` its units are
``indices[indptr[c]:indptr[c + 1]]``, column indices into the ``(n_images, n_units)`` betas.
It is stored as ``.npz`` (no pickles) and cached on disk for surfaces, keyed by a hash of the
mesh and the radius.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse import csgraph

from brainalign.datasets.surfaces import check_mesh, mesh_adjacency
from brainalign.errors import DataFormatError, InputError
from brainalign.utils.hashing import hash_array, hash_json
from brainalign.utils.io import atomic_path
from brainalign.utils.paths import default_cache_dir
from brainalign.utils.progress import progress

_CACHE_VERSION = 1

#: default searchlight radius on a surface: geodesic mm, close to the paper's volume spheres
SURFACE_RADIUS_MM = 10.0
#: default searchlight radius in a volume: voxels (the paper's 6 voxels, ~10.8 mm on NSD's
#: func1pt8mm grid, paper_methods §3.3)
VOLUME_RADIUS_VOXELS = 6.0


@dataclass
class Neighbourhoods:
    """Searchlight neighbourhoods in compressed sparse row form.

    Attributes
    ----------
    indptr : ndarray, shape (n_centres + 1,), int64
    indices : ndarray, shape (indptr[-1],), int64
        Unit (column) indices of each centre's neighbourhood, the centre included.
    centres : ndarray, shape (n_centres,), int64
        The unit index of each centre.
    n_units : int
        Number of units (columns of the betas) the indices refer to.
    kind : str
        ``"surface"``, ``"volume"`` or ``"custom"``.
    radius : float
        Geodesic mm (surface) or voxels (volume).
    hemi_sizes : tuple of int
        Units per hemisphere for surfaces (left first); empty otherwise.
    """

    indptr: np.ndarray
    indices: np.ndarray
    centres: np.ndarray
    n_units: int
    kind: str = "custom"
    radius: float = float("nan")
    hemi_sizes: tuple = field(default_factory=tuple)

    def __post_init__(self):
        self.indptr = np.asarray(self.indptr, dtype=np.int64)
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.centres = np.asarray(self.centres, dtype=np.int64)
        self.n_units = int(self.n_units)
        if (
            self.indptr.ndim != 1
            or self.indptr.size != self.centres.size + 1
            or self.indptr[0] != 0
        ):
            raise InputError("Neighbourhoods: indptr must have n_centres + 1 entries starting at 0")
        if self.indptr[-1] != self.indices.size or np.any(np.diff(self.indptr) < 0):
            raise InputError(
                "Neighbourhoods: indptr must be non-decreasing and end at len(indices)"
            )
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= self.n_units):
            raise InputError(
                f"Neighbourhoods: indices must lie in [0, {self.n_units}), found out-of-range values"
            )
        self.hemi_sizes = tuple(int(h) for h in self.hemi_sizes)

    @classmethod
    def from_lists(cls, lists, n_units, centres=None, **kwargs) -> Neighbourhoods:
        """Build from a sequence of index arrays (one per centre)."""
        lists = [np.asarray(x, dtype=np.int64).ravel() for x in lists]
        sizes = np.array([x.size for x in lists], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(sizes)])
        indices = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        if centres is None:
            centres = np.arange(len(lists))
        return cls(indptr, indices, centres, n_units, **kwargs)

    def __len__(self) -> int:
        return self.centres.size

    def __getitem__(self, c: int) -> np.ndarray:
        return self.indices[self.indptr[c] : self.indptr[c + 1]]

    @property
    def sizes(self) -> np.ndarray:
        """Units per centre, shape (n_centres,)."""
        return np.diff(self.indptr)

    def restrict(self, valid_units) -> Neighbourhoods:
        """Drop the units where ``valid_units`` (bool, shape (n_units,)) is False from every centre."""
        valid_units = np.asarray(valid_units, dtype=bool)
        if valid_units.shape != (self.n_units,):
            raise InputError(
                f"valid_units: expected shape ({self.n_units},), got {valid_units.shape}"
            )
        keep = valid_units[self.indices]
        counts = (
            np.add.reduceat(keep.astype(np.int64), self.indptr[:-1]) if self.indices.size else None
        )
        if counts is None:
            counts = np.zeros(len(self), np.int64)
        counts[self.sizes == 0] = 0
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return Neighbourhoods(
            indptr,
            self.indices[keep],
            self.centres,
            self.n_units,
            self.kind,
            self.radius,
            self.hemi_sizes,
        )

    def padded(self, centre_ids, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Padded index array ``(len(centre_ids), max_size)`` (pads = ``fill``) and its mask."""
        centre_ids = np.asarray(centre_ids, dtype=np.int64)
        sizes = self.sizes[centre_ids]
        width = max(int(sizes.max(initial=0)), 1)
        mask = np.arange(width)[None, :] < sizes[:, None]
        idx = np.full((centre_ids.size, width), fill, dtype=np.int64)
        starts = self.indptr[centre_ids]
        pos = starts[:, None] + np.arange(width)[None, :]
        idx[mask] = self.indices[pos[mask]]
        return idx, mask

    def to_arrays(self) -> dict:
        """The neighbourhoods as plain arrays and scalars, e.g. to store as a pipeline result
        or in an ``.npz`` file; :meth:`from_arrays` rebuilds them.

        Returns
        -------
        dict
            ``indptr``, ``indices``, ``centres`` (int64 arrays), ``n_units`` (int), ``kind``
            (str), ``radius`` (float) and ``hemi_sizes`` (list of int).
        """
        return {
            "indptr": self.indptr,
            "indices": self.indices,
            "centres": self.centres,
            "n_units": int(self.n_units),
            "kind": str(self.kind),
            "radius": float(self.radius),
            "hemi_sizes": list(self.hemi_sizes),
        }

    @classmethod
    def from_arrays(cls, arrays, start: int = 0, stop: int | None = None) -> Neighbourhoods:
        """Rebuild neighbourhoods from :meth:`to_arrays`'s mapping, keeping centres
        ``start:stop`` only.

        Parameters
        ----------
        arrays : mapping
            As :meth:`to_arrays` returns, or an ``.npz`` file or a cached result holding the same
            names; the arrays may be memory maps (only the centres' slice of ``indices`` is
            read). Without ``kind``, ``radius`` or ``hemi_sizes`` the defaults apply.
        start, stop : int
            The centres kept (default: all); the units and their numbering are unchanged.
        """
        indptr = np.asarray(arrays["indptr"])
        stop = len(indptr) - 1 if stop is None else stop
        if not 0 <= start <= stop <= len(indptr) - 1:
            raise InputError(
                f"start={start}, stop={stop}: expected 0 <= start <= stop <= {len(indptr) - 1} "
                "(the number of centres)"
            )
        return cls(
            indptr=indptr[start : stop + 1] - indptr[start],
            indices=np.asarray(arrays["indices"][indptr[start] : indptr[stop]]),
            centres=np.asarray(arrays["centres"][start:stop]),
            n_units=int(arrays["n_units"]),
            kind=str(arrays["kind"]) if "kind" in arrays else "custom",
            radius=float(arrays["radius"]) if "radius" in arrays else float("nan"),
            hemi_sizes=(
                tuple(np.asarray(arrays["hemi_sizes"]).tolist()) if "hemi_sizes" in arrays else ()
            ),
        )

    def save(self, path) -> Path:
        """Write to ``.npz`` atomically (:meth:`to_arrays`)."""
        path = Path(path)
        arrays = self.to_arrays()
        arrays["hemi_sizes"] = np.asarray(arrays["hemi_sizes"], dtype=np.int64)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        return path

    @classmethod
    def load(cls, path) -> Neighbourhoods:
        """Read a file written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as f:
                return cls.from_arrays(f)
        except (OSError, KeyError, ValueError) as exc:
            raise DataFormatError(
                f"{path}: not a brainalign neighbourhoods file ({exc}); delete it and recompute"
            ) from exc


def concatenate(parts, hemi_sizes=None) -> Neighbourhoods:
    """Stack neighbourhoods defined on consecutive blocks of units (e.g. left then right hemisphere)."""
    offset, indptrs, indices, centres, last = 0, [np.zeros(1, np.int64)], [], [], 0
    for p in parts:
        indptrs.append(p.indptr[1:] + last)
        last += p.indptr[-1]
        indices.append(p.indices + offset)
        centres.append(p.centres + offset)
        offset += p.n_units
    return Neighbourhoods(
        np.concatenate(indptrs),
        np.concatenate(indices),
        np.concatenate(centres),
        offset,
        parts[0].kind,
        parts[0].radius,
        tuple(hemi_sizes or [p.n_units for p in parts]),
    )


# --------------------------------------------------------------------------- surface


def _mesh_parts(mesh):
    """Normalise ``mesh`` to a list of (coords, faces) pairs, one per hemisphere."""
    if hasattr(mesh, "coordinates") and hasattr(mesh, "faces"):
        return [(mesh.coordinates, mesh.faces)]
    if hasattr(mesh, "parts"):  # nilearn PolyMesh
        return [_mesh_parts(p)[0] for p in mesh.parts.values()]
    if isinstance(mesh, dict):
        keys = [k for k in ("left", "lh", "right", "rh") if k in mesh]
        if not keys:
            raise InputError(
                f"mesh: a dict needs 'left'/'right' (or 'lh'/'rh') keys, got {sorted(mesh)}"
            )
        return [_mesh_parts(mesh[k])[0] for k in keys]
    if isinstance(mesh, (tuple, list)):
        if len(mesh) == 2 and all(
            hasattr(m, "__len__") and not isinstance(m, (tuple, list)) for m in mesh
        ):
            a, b = (np.asarray(m) for m in mesh)
            if a.ndim == 2 and a.shape[1] == 3 and np.issubdtype(a.dtype, np.floating):
                return [(a, b)]
        return [_mesh_parts(m)[0] for m in mesh]
    raise InputError(
        f"mesh: expected (coords, faces), a list of them (left, right), or a dict; got {type(mesh).__name__}"
    )


def _hemi_neighbourhoods(coords, faces, radius, verbose):
    graph = mesh_adjacency(coords, faces, weighted=True)
    n = coords.shape[0]
    # dense Dijkstra output is (chunk, n); keep it near 64 MB
    chunk = max(1, min(n, (64 << 20) // (8 * n)))
    lists = []
    for start in progress(
        range(0, n, chunk), total=-(-n // chunk), desc="geodesic neighbourhoods", verbose=verbose
    ):
        ids = np.arange(start, min(start + chunk, n))
        dist = csgraph.dijkstra(graph, directed=False, indices=ids, limit=radius)
        rows, cols = np.nonzero(dist <= radius)
        split = np.searchsorted(rows, np.arange(1, ids.size))
        lists.extend(np.split(cols, split))
    return Neighbourhoods.from_lists(lists, n, kind="surface", radius=radius, hemi_sizes=(n,))


def surface_neighbourhoods(
    mesh,
    radius: float = SURFACE_RADIUS_MM,
    cache: bool = True,
    cache_dir=None,
    verbose=None,
) -> Neighbourhoods:
    """Geodesic searchlight discs on a cortical surface (a native surface searchlight).

    The distance between vertices is the shortest path along mesh edges (Dijkstra on the edge
    graph, edges weighted by their length in mm), computed per hemisphere. Every vertex is a
    centre; its neighbourhood is every vertex of the same hemisphere within ``radius`` (≤).

    Parameters
    ----------
    mesh : (coords, faces) or sequence/dict of them, one per hemisphere (left first)
        ``coords`` (n_vertices, 3) in mm, ``faces`` (n_faces, 3) integer. nilearn meshes
        (objects with ``coordinates``/``faces``, or ``PolyMesh``) are accepted.
    radius : float
        Geodesic radius in mm.
    cache : bool
        Keep the result on disk (``cache_dir`` or the brainalign cache), keyed by a hash of the
        mesh and the radius, so a later call is instant.

    Returns
    -------
    Neighbourhoods
        Units are the vertices of all hemispheres concatenated (left first).
    """
    if not np.isfinite(radius) or radius <= 0:
        raise InputError(f"radius={radius!r}: expected a positive geodesic radius in mm")
    parts = []
    for h, (coords, faces) in enumerate(_mesh_parts(mesh)):
        coords, faces = check_mesh(coords, faces, f"mesh (hemisphere {h})")
        path = None
        if cache:
            key = hash_json(
                {
                    "coords": hash_array(coords),
                    "faces": hash_array(faces),
                    "radius": float(radius),
                    "v": _CACHE_VERSION,
                }
            )
            folder = (
                Path(cache_dir) if cache_dir is not None else default_cache_dir() / "neighbourhoods"
            )
            path = folder / f"surface_{key[:24]}.npz"
            if path.exists():
                parts.append(Neighbourhoods.load(path))
                continue
        nb = _hemi_neighbourhoods(coords, faces, float(radius), verbose)
        if path is not None:
            os.makedirs(path.parent, exist_ok=True)
            nb.save(path)
        parts.append(nb)
    return parts[0] if len(parts) == 1 else concatenate(parts)


# --------------------------------------------------------------------------- volume


def sphere_offsets(radius: float) -> np.ndarray:
    """Integer voxel offsets with Euclidean norm strictly below ``radius``, shape (n_offsets, 3)."""
    r = int(np.ceil(radius))
    g = np.arange(-r, r + 1)
    off = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return off[np.sqrt((off**2).sum(1)) < radius]


def volume_neighbourhoods(
    mask, radius: float = VOLUME_RADIUS_VOXELS, min_fraction: float = 0.5, verbose=None
) -> Neighbourhoods:
    """The paper's volume searchlight spheres.

    A sphere holds the voxels at Euclidean distance strictly below ``radius`` voxels from its
    centre (clipped to the volume). Every in-mask voxel is a candidate centre, kept when at
    least ``min_fraction`` of its sphere lies in the mask; only in-mask voxels enter its pattern.
    This is rsatoolbox's ``get_volume_searchlight(mask, radius, threshold=min_fraction,
    truncate_at_boundary=True)``.

    Parameters
    ----------
    mask : array, shape (X, Y, Z), bool
    radius : float
        In voxels (the paper: 6).
    min_fraction : float
        In [0, 1] (the paper: 0.5).

    Returns
    -------
    Neighbourhoods
        Units are the in-mask voxels in C order (``np.flatnonzero(mask)``), the column order of
        betas given as ``(n_images, n_mask_voxels)``. ``centres`` are unit indices;
        ``np.flatnonzero(mask)[nb.centres]`` gives their flat voxel indices.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise InputError(f"mask: expected a 3-D volume, got shape {mask.shape}")
    mask = mask.astype(bool)
    if not mask.any():
        raise InputError("mask: no voxel is in the mask")
    if not (0.0 <= min_fraction <= 1.0):
        raise InputError(f"min_fraction={min_fraction!r}: expected a value in [0, 1]")
    if radius <= 0:
        raise InputError(f"radius={radius!r}: expected a positive radius in voxels")
    shape = np.array(mask.shape)
    unit_of = np.full(mask.shape, -1, dtype=np.int64)
    vox = np.argwhere(mask)
    unit_of[tuple(vox.T)] = np.arange(vox.shape[0])
    off = sphere_offsets(radius)
    lists, centres = [], []
    chunk = max(1, (32 << 20) // (off.shape[0] * 3 * 8))
    for start in progress(
        range(0, vox.shape[0], chunk),
        total=-(-vox.shape[0] // chunk),
        desc="spheres",
        verbose=verbose,
    ):
        c = vox[start : start + chunk]
        pts = c[:, None, :] + off[None, :, :]
        inside = np.all((pts >= 0) & (pts < shape), axis=2)
        safe = np.where(inside[..., None], pts, 0)
        units = unit_of[safe[..., 0], safe[..., 1], safe[..., 2]]
        in_mask = inside & (units >= 0)
        frac = in_mask.sum(1) / inside.sum(1)
        keep = frac >= min_fraction
        for k in np.flatnonzero(keep):
            lists.append(np.sort(units[k][in_mask[k]]))
            centres.append(start + k)
    return Neighbourhoods.from_lists(
        lists,
        vox.shape[0],
        centres=np.asarray(centres, np.int64),
        kind="volume",
        radius=float(radius),
    )
