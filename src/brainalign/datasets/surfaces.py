"""Cortical surfaces: fsaverage meshes and per-vertex atlases.

fsaverage5 comes from nilearn (shipped with the package, no network). Full fsaverage comes from a
FreeSurfer subject directory, or from a folder holding an fsaverage-topology sphere (for example
the ``?h.*sphere.reg`` files of neuropythy), whose geometry then stands in for the surfaces the
folder lacks (:func:`find_fsaverage_surface`). fsaverage meshes are nested icosahedra: fsaverage5 is
exactly the first 10,242 vertices of fsaverage (163,842), so full-resolution per-vertex maps
subsample to fsaverage5 by taking their first 10,242 values.

Per-vertex maps are files of one hemisphere, GIFTI (``.gii``, ``.func.gii``) or FreeSurfer MGH
(``.mgh``, ``.mgz``), the format chosen by the extension: :func:`read_surface_map` and
:func:`write_surface_map`. A map of both hemispheres is a pair of such files,
``<prefix>.lh.<ext>`` and ``<prefix>.rh.<ext>``: :func:`write_hemisphere_maps` and
:func:`read_hemisphere_maps`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from brainalign.errors import DataFormatError, InputError
from brainalign.utils.io import atomic_path

#: the hemispheres, left first, by FreeSurfer's prefixes (``lh.pial``, ``<name>.lh.func.gii``)
HEMIS = ("lh", "rh")
#: each hemisphere's long name: the keys of :func:`load_fsaverage` (and nilearn's meshes)
HEMI_NAMES = {"lh": "left", "rh": "right"}

#: file suffix of each surface-map format name
MAP_SUFFIXES = {"gifti": ".func.gii", "mgh": ".mgh", "mgz": ".mgz"}

#: vertices per hemisphere of each fsaverage resolution (icosahedron order 3..7)
FSAVERAGE_SIZES = {
    "fsaverage3": 642,
    "fsaverage4": 2562,
    "fsaverage5": 10242,
    "fsaverage6": 40962,
    "fsaverage": 163842,
    "fsaverage7": 163842,
}

_NILEARN_SURFACES = {
    "pial": "pial",
    "white": "white_matter",
    "white_matter": "white_matter",
    "inflated": "inflated",
    "sphere": "sphere",
    "flat": "flat",
}


class Mesh(NamedTuple):
    """A triangle mesh of one hemisphere.

    Unpacks as ``coords, faces = mesh``.

    Attributes
    ----------
    coords : (n_vertices, 3) float64
        Vertex positions in mm (fsaverage / MNI305-like space).
    faces : (n_faces, 3) int64
        0-based vertex indices of each triangle.
    """

    coords: np.ndarray
    faces: np.ndarray

    @property
    def n_vertices(self) -> int:
        return len(self.coords)

    def edges(self) -> np.ndarray:
        """Unique undirected edges, ``(n_edges, 2)`` int64 with ``i < j``."""
        return mesh_edges(self.faces)

    def adjacency(self, weighted: bool = False) -> sp.csr_matrix:
        """Symmetric vertex adjacency (CSR, ``n_vertices × n_vertices``).

        ``weighted=True`` stores Euclidean edge lengths in mm (for geodesic distances with
        ``scipy.sparse.csgraph.dijkstra``); otherwise ones.
        """
        return mesh_adjacency(self.coords, self.faces, weighted=weighted)


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges of a triangle mesh, ``(n_edges, 2)`` with ``i < j``."""
    faces = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e.sort(axis=1)
    return np.unique(e, axis=0)


def check_mesh(coords, faces, name: str = "mesh") -> tuple[np.ndarray, np.ndarray]:
    """``coords`` as ``(n_vertices, 3)`` float64 and ``faces`` as ``(n_faces, 3)`` int64 indices
    into them, or :class:`InputError` naming ``name``."""
    coords = np.asarray(coords, dtype=np.float64)
    faces = np.asarray(faces)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise InputError(f"{name}: coordinates must have shape (n_vertices, 3), got {coords.shape}")
    if faces.size == 0:
        raise InputError(
            f"{name}: the mesh has no faces, so geodesic distances are undefined; pass the triangles "
            "(n_faces, 3) of the surface"
        )
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise InputError(
            f"{name}: faces must be an integer array (n_faces, 3), got {faces.shape} {faces.dtype}"
        )
    if faces.min() < 0 or faces.max() >= coords.shape[0]:
        raise InputError(
            f"{name}: face indices must lie in [0, {coords.shape[0]}), found {faces.min()}..{faces.max()}"
        )
    return coords, faces.astype(np.int64)


def mesh_adjacency(coords, faces, weighted: bool = False) -> sp.csr_matrix:
    """Symmetric sparse adjacency of a triangle mesh (``mesh_adjacency(*mesh)`` for a :class:`Mesh`).

    Parameters
    ----------
    coords : (n_vertices, 3) float
        Vertex positions (mm).
    faces : (n_faces, 3) int
        0-based vertex indices.
    weighted : bool
        Entries are Euclidean edge lengths in mm (for geodesic distances with
        ``scipy.sparse.csgraph.dijkstra``) instead of 1.

    Returns
    -------
    scipy.sparse.csr_matrix, (n_vertices, n_vertices)
    """
    coords, faces = check_mesh(coords, faces)
    e = mesh_edges(faces)
    if weighted:
        w = np.linalg.norm(coords[e[:, 0]] - coords[e[:, 1]], axis=1)
    else:
        w = np.ones(len(e))
    n = len(coords)
    A = sp.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n))
    return (A + A.T).tocsr()


def _check_choice(name, value, choices):
    if value not in choices:
        raise InputError(f"{name}: expected one of {sorted(choices)}, got {value!r}")


class SurfaceFiles(NamedTuple):
    """The geometry files :func:`load_fsaverage` reads for one surface of an fsaverage folder.

    Attributes
    ----------
    left, right : Path
        FreeSurfer geometry file of each hemisphere.
    geometry : str
        The surface those files hold: the one asked for, or ``"sphere"`` when the folder lacks
        it and its fsaverage-topology sphere stands in.
    """

    left: Path
    right: Path
    geometry: str

    @property
    def stand_in(self) -> bool:
        """Whether a sphere stands in for another surface."""
        return self.geometry == "sphere"


#: sphere files tried, in order, when a folder lacks the surface asked for ({h}: lh or rh)
SPHERE_NAMES = (
    "surf/{h}.sphere.reg",
    "surf/{h}.sphere",
    "{h}.sphere.reg",
    "{h}.sphere",
)
#: patterns of other registered spheres (neuropythy's ``lh.benson14_retinotopy.v4_0.sphere.reg``)
SPHERE_PATTERNS = ("{h}.*sphere.reg", "surf/{h}.*sphere.reg")

_EXPECTED_FOLDER = (
    "expected a FreeSurfer fsaverage folder (surf/lh.{surface} and surf/rh.{surface}) or a "
    "folder holding an fsaverage-topology sphere (surf/{{lh,rh}}.sphere(.reg), "
    "{{lh,rh}}.sphere(.reg) or one {{lh,rh}}.*sphere.reg per hemisphere, as neuropythy's "
    "fsaverage folder)"
)


def find_fsaverage_surface(fs_dir: str | os.PathLike, surface: str = "pial") -> SurfaceFiles:
    """The files of ``surface`` in an fsaverage folder, or of its sphere when it has none.

    Parameters
    ----------
    fs_dir : path
        A FreeSurfer subject directory of fsaverage (``surf/lh.pial`` ...), or a folder holding
        an fsaverage-topology sphere per hemisphere: ``surf/{lh,rh}.sphere.reg``,
        ``surf/{lh,rh}.sphere``, ``{lh,rh}.sphere(.reg)``, or one ``{lh,rh}.*sphere.reg`` each
        (neuropythy's ``lh.benson14_retinotopy.v4_0.sphere.reg``), tried in that order.
    surface : {"pial", "white", "inflated", "sphere"}
        The surface asked for (``"white_matter"`` is ``"white"``).

    Returns
    -------
    SurfaceFiles
        ``surf/{lh,rh}.<surface>`` when both exist; otherwise the sphere's files, with
        ``geometry="sphere"``: the sphere has fsaverage's vertices and faces (so per-vertex data
        and mesh neighbourhoods are right) but not the cortex's shape (distances are on a
        sphere of radius 100 mm).

    Raises
    ------
    DataFormatError
        Naming the folder and the files expected, when it has neither layout or several
        candidate spheres.
    """
    _check_choice("surface", surface, _NILEARN_SURFACES)
    if surface == "flat":
        raise InputError(
            "surface='flat': a flat map is only available for fsaverage5 (nilearn); use "
            "'pial', 'white', 'inflated' or 'sphere' with fs_dir"
        )
    fs_dir = Path(fs_dir)
    if not fs_dir.is_dir():
        raise DataFormatError(
            f"fs_dir: folder {fs_dir} not found; "
            + _EXPECTED_FOLDER.format(surface=_fs_name(surface))
        )
    name = _fs_name(surface)
    own = [fs_dir / "surf" / f"{h}.{name}" for h in HEMIS]
    if all(p.is_file() for p in own):
        return SurfaceFiles(own[0], own[1], name)
    spheres = []
    for h in HEMIS:
        found = _sphere_file(fs_dir, h)
        if found is None:
            raise DataFormatError(
                f"fs_dir: {fs_dir} has no {h}.{name} surface and no {h} sphere; "
                + _EXPECTED_FOLDER.format(surface=name)
            )
        spheres.append(found)
    return SurfaceFiles(spheres[0], spheres[1], "sphere")


def _fs_name(surface: str) -> str:
    return "white" if surface in ("white", "white_matter") else surface


def _sphere_file(fs_dir: Path, h: str) -> Path | None:
    """The one sphere of hemisphere ``h`` in ``fs_dir`` (:data:`SPHERE_NAMES`, then
    :data:`SPHERE_PATTERNS`), None when there is none."""
    for name in SPHERE_NAMES:
        path = fs_dir / name.format(h=h)
        if path.is_file():
            return path
    found = sorted({p for pat in SPHERE_PATTERNS for p in fs_dir.glob(pat.format(h=h))})
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise DataFormatError(
            f"fs_dir: {fs_dir} holds several {h} spheres ({', '.join(p.name for p in found)}); "
            f"keep one, or name the one to use surf/{h}.sphere.reg"
        )
    return found[0] if found else None


def load_fsaverage(
    mesh: str = "fsaverage5",
    surface: str = "pial",
    fs_dir: str | os.PathLike | None = None,
) -> dict[str, Mesh]:
    """Both hemispheres of an fsaverage mesh.

    Parameters
    ----------
    mesh : {"fsaverage5", "fsaverage", "fsaverage3", "fsaverage4", "fsaverage6"}
        Resolution. ``"fsaverage5"`` is read from nilearn's bundled copy (offline). Any other
        resolution is read from ``fs_dir`` and, below full resolution, subsampled.
    surface : {"pial", "white", "inflated", "sphere", "flat"}
        Which surface. ``"flat"`` is only available for fsaverage5 (nilearn).
    fs_dir : path, optional
        A FreeSurfer subject directory of fsaverage (holding ``surf/lh.pial`` ...), or a folder
        holding an fsaverage-topology sphere per hemisphere (``surf/{lh,rh}.sphere(.reg)``,
        ``{lh,rh}.sphere(.reg)`` or one ``{lh,rh}.*sphere.reg``, such as neuropythy's
        fsaverage folder). **A surface the folder lacks is replaced by its sphere**: same
        vertices and faces, spherical geometry (:func:`find_fsaverage_surface` tells which
        files are read). When given, it is used for every resolution (subsampled as needed);
        fsaverage5 faces then come from nilearn, whose vertex order is the same nested order.

    Returns
    -------
    dict
        ``{"left": Mesh, "right": Mesh}``; left first.
    """
    _check_choice("mesh", mesh, FSAVERAGE_SIZES)
    _check_choice("surface", surface, _NILEARN_SURFACES)
    if fs_dir is None:
        if mesh != "fsaverage5":
            raise InputError(
                f"mesh={mesh!r}: only fsaverage5 ships with nilearn; pass fs_dir= (a FreeSurfer "
                "fsaverage folder with surf/, or a folder holding an fsaverage-topology sphere "
                "such as lh/rh.*sphere.reg) or use load_surface on a geometry file"
            )
        return _nilearn_fsaverage5(surface)
    files = find_fsaverage_surface(fs_dir, surface)
    paths = {"left": files.left, "right": files.right}
    out = {hemi: load_surface(path) for hemi, path in paths.items()}
    n = FSAVERAGE_SIZES[mesh]
    sizes = sorted(set(FSAVERAGE_SIZES.values()))
    for hemi, m in out.items():
        if m.n_vertices not in sizes or m.n_vertices < n:
            raise DataFormatError(
                f"{paths[hemi]}: has {m.n_vertices} vertices; an fsaverage surface has one of "
                f"{sizes} per hemisphere, and mesh={mesh!r} needs at least {n}; point fs_dir at "
                "an fsaverage folder (surf/lh.*, surf/rh.*, or an fsaverage-topology sphere) of "
                "that resolution or finer"
            )
    if n != out["left"].n_vertices:
        out = {h: subsample_mesh(m, mesh) for h, m in out.items()}
    return out


def _nilearn_fsaverage5(surface: str) -> dict[str, Mesh]:
    from nilearn import datasets

    bunch = datasets.load_fsaverage("fsaverage5")
    poly = bunch[_NILEARN_SURFACES[surface]]
    return {
        hemi: Mesh(
            np.asarray(poly.parts[hemi].coordinates, dtype=np.float64),
            np.asarray(poly.parts[hemi].faces, dtype=np.int64),
        )
        for hemi in HEMI_NAMES.values()
    }


@functools.cache
def fsaverage5_surface(surface: str, hemi: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(coords (10242, 3) mm, faces (n_faces, 3) int, sulc (10242,))`` of one fsaverage5
    hemisphere, for drawing maps on it.

    ``surface`` is one of :func:`load_fsaverage`'s (``"inflated"``, ``"flat"``, ``"pial"``, …),
    ``hemi`` ``"left"`` or ``"right"``; ``sulc`` is nilearn's sulcal depth. Read once per
    process, returned read-only.
    """
    from nilearn import datasets
    from nilearn.surface import load_surf_data

    mesh = load_fsaverage("fsaverage5", surface=surface)[hemi]
    sulc = load_surf_data(datasets.fetch_surf_fsaverage("fsaverage5")[f"sulc_{hemi}"])
    arrays = (
        np.asarray(mesh.coords, dtype=np.float64),
        np.asarray(mesh.faces, dtype=np.int64),
        np.asarray(sulc, dtype=np.float64).ravel(),
    )
    for a in arrays:
        a.flags.writeable = False
    return arrays


def load_surface(path: str | os.PathLike) -> Mesh:
    """Read a FreeSurfer geometry file (``lh.pial``, ``rh.sphere.reg``, ...) as a :class:`Mesh`."""
    from nibabel.freesurfer import read_geometry

    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: surface file not found; give a FreeSurfer geometry file")
    try:
        coords, faces = read_geometry(str(path))
    except Exception as exc:  # nibabel raises ValueError/struct errors on corrupt files
        raise DataFormatError(
            f"{path}: not a readable FreeSurfer geometry file ({type(exc).__name__}: {exc})"
        ) from exc
    return Mesh(np.asarray(coords, dtype=np.float64), np.asarray(faces, dtype=np.int64))


def subsample_mesh(mesh: Mesh, target: str = "fsaverage5") -> Mesh:
    """Subsample a full fsaverage mesh to a lower icosahedral resolution.

    The coordinates are the first ``n`` vertices; the faces are those of the target resolution.
    Faces of fsaverage5 come from nilearn; other resolutions are not available offline.
    """
    _check_choice("target", target, FSAVERAGE_SIZES)
    n = FSAVERAGE_SIZES[target]
    if mesh.n_vertices < n:
        raise InputError(
            f"mesh: has {mesh.n_vertices} vertices, cannot subsample to {target} ({n})"
        )
    if mesh.n_vertices == n:
        return mesh
    if target != "fsaverage5":
        raise InputError(f"target={target!r}: only fsaverage5 faces are available offline")
    faces = _nilearn_fsaverage5("sphere")["left"].faces
    return Mesh(np.ascontiguousarray(mesh.coords[:n]), faces)


def subsample_to_mesh(values: np.ndarray, mesh: str = "fsaverage5") -> np.ndarray:
    """Per-vertex values of a finer fsaverage restricted to ``mesh`` (first ``n`` vertices).

    ``values`` has the vertex axis first, with fsaverage's 163,842 (or any nested size ≥ the
    target) entries.
    """
    _check_choice("mesh", mesh, FSAVERAGE_SIZES)
    n = FSAVERAGE_SIZES[mesh]
    values = np.asarray(values)
    if values.shape[0] < n or values.shape[0] not in FSAVERAGE_SIZES.values():
        raise InputError(
            f"values: expected a per-vertex fsaverage map with ≥ {n} vertices "
            f"(one of {sorted(set(FSAVERAGE_SIZES.values()))}), got {values.shape[0]}"
        )
    return values[:n]


def read_label_table(path: str | os.PathLike) -> dict[int, str]:
    """Read a FreeSurfer/NSD colour table (``*.ctab``): ``{id: name}``.

    Each line is split on whitespace: the first token is the id, the second the name (NSD ctabs
    may pad names with tabs and spaces; FreeSurfer LUTs add RGBA columns, which are ignored).
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: colour table not found")
    table = {}
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        try:
            table[int(tokens[0])] = tokens[1] if len(tokens) > 1 else ""
        except ValueError as exc:
            raise DataFormatError(
                f"{path}, line {i + 1}: expected '<integer id> <name>', found {line!r}"
            ) from exc
    return table


def _map_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gii"):
        return "gifti"
    if name.endswith((".mgh", ".mgz")):
        return "mgh"
    raise InputError(
        f"{path}: unknown surface-map format; use a GIFTI (.gii, .func.gii) or MGH (.mgh, .mgz) "
        "file name"
    )


def read_surface_map(path: str | os.PathLike, mesh: str | None = None) -> np.ndarray:
    """Read one hemisphere's per-vertex map(s) from GIFTI or MGH/MGZ (format by extension).

    Parameters
    ----------
    path : path
        ``.gii``/``.func.gii`` (one data array per map) or ``.mgh``/``.mgz`` (any shape with
        one non-singleton axis, FreeSurfer's V×1×1×D, or neuropythy's 1×1×V).
    mesh : str, optional
        Subsample to this fsaverage resolution (e.g. ``"fsaverage5"``).

    Returns
    -------
    (n_vertices,) array for one map, (n_maps, n_vertices) for several; the stored dtype
    (native byte order).
    """
    import nibabel as nib

    path = Path(path)
    fmt = _map_format(path)
    if not path.exists():
        raise DataFormatError(f"{path}: surface map not found")
    try:
        img = nib.load(str(path))
        if fmt == "gifti":
            arrays = [np.asarray(d.data) for d in img.darrays]
            if len(arrays) == 1 and arrays[0].ndim == 2:  # one V×D data array
                data = arrays[0].T
            else:  # one data array per map
                data = np.stack([a.reshape(-1) for a in arrays])
        else:
            data = np.asarray(img.dataobj)
    except Exception as exc:
        raise DataFormatError(
            f"{path}: not a readable {'GIFTI' if fmt == 'gifti' else 'MGH/MGZ'} file "
            f"({type(exc).__name__}: {exc}); re-download or re-create it"
        ) from exc
    data = data.astype(data.dtype.newbyteorder("="), copy=False)
    if fmt == "mgh":  # FreeSurfer stores V×1×1×D, neuropythy 1×1×V
        single = len([s for s in data.shape if s != 1]) <= 1
        data = data.reshape(1, -1) if single else data.reshape(data.shape[0], -1).T
    if mesh is not None:
        try:
            data = subsample_to_mesh(data.T, mesh).T
        except InputError as exc:
            raise DataFormatError(f"{path}: {exc}") from None
    return data[0] if len(data) == 1 else data


def write_surface_map(path: str | os.PathLike, values) -> Path:
    """Write one hemisphere's map(s) as GIFTI or MGH/MGZ (format by extension), atomically.

    Parameters
    ----------
    path : path
        ``.func.gii``/``.gii`` (one float32 data array per map) or ``.mgh``/``.mgz``
        (float32, V×1×1 or V×1×1×n_maps).
    values : (n_vertices,) or (n_maps, n_vertices) float
        NaN is kept.

    Returns
    -------
    pathlib.Path
        ``path``; :func:`read_surface_map` reads it back.
    """
    import nibabel as nib

    path = Path(path)
    fmt = _map_format(path)
    values = np.asarray(values, dtype=np.float32)
    if values.ndim not in (1, 2):
        raise InputError(
            f"values: expected (n_vertices,) or (n_maps, n_vertices), got shape {values.shape}"
        )
    maps = values.reshape(-1, values.shape[-1])
    if fmt == "gifti":
        arrays = [
            nib.gifti.GiftiDataArray(row, intent="NIFTI_INTENT_NONE", datatype="NIFTI_TYPE_FLOAT32")
            for row in maps
        ]
        img = nib.gifti.GiftiImage(darrays=arrays)
    else:
        data = maps.T.reshape(maps.shape[1], 1, 1, maps.shape[0])
        img = nib.MGHImage(data[..., 0] if len(maps) == 1 else data, np.eye(4))
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path


def hemisphere_paths(prefix: str | os.PathLike, fmt: str = "gifti") -> tuple[Path, Path]:
    """``(<prefix>.lh<suffix>, <prefix>.rh<suffix>)`` for a format of :data:`MAP_SUFFIXES`."""
    if fmt not in MAP_SUFFIXES:
        raise InputError(
            f"format: unknown map format {fmt!r}; expected one of {list(MAP_SUFFIXES)}"
        )
    prefix = os.fspath(prefix)
    return tuple(Path(f"{prefix}.{h}{MAP_SUFFIXES[fmt]}") for h in HEMIS)


def split_hemispheres(values, hemi_sizes) -> tuple[np.ndarray, np.ndarray]:
    """``(..., n_lh + n_rh)`` values (left first) as ``(left, right)`` along the last axis."""
    values = np.asarray(values)
    sizes = tuple(int(h) for h in hemi_sizes)
    if len(sizes) != 2 or sum(sizes) != values.shape[-1]:
        raise InputError(
            f"hemi_sizes: {sizes} do not split the {values.shape[-1]} values into two "
            "hemispheres; give the vertices per hemisphere, left first"
        )
    return values[..., : sizes[0]], values[..., sizes[0] :]


def write_hemisphere_maps(
    prefix: str | os.PathLike, lh, rh, formats: Sequence[str] = ("gifti",)
) -> list[Path]:
    """Write a map of both hemispheres as ``<prefix>.lh.<ext>`` and ``<prefix>.rh.<ext>``.

    Parameters
    ----------
    prefix : path
        Folder and base name, e.g. ``out/maps/encoding_r``.
    lh, rh : (n_vertices,) or (n_maps, n_vertices) float
        Each hemisphere's values (:func:`split_hemispheres` splits concatenated ones).
    formats : sequence of {"gifti", "mgh", "mgz"}
        One pair of files per format (:data:`MAP_SUFFIXES`), written atomically.

    Returns
    -------
    list of Path
        Per format, left then right.
    """
    written = []
    for fmt in formats:
        for path, values in zip(hemisphere_paths(prefix, fmt), (lh, rh), strict=True):
            written.append(write_surface_map(path, values))
    return written


def read_hemisphere_maps(prefix: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(lh, rh)`` as written by :func:`write_hemisphere_maps` (GIFTI first, then MGH, MGZ)."""
    for fmt in MAP_SUFFIXES:
        lh, rh = hemisphere_paths(prefix, fmt)
        if lh.exists() and rh.exists():
            return read_surface_map(lh), read_surface_map(rh)
    tried = ", ".join(str(p) for fmt in MAP_SUFFIXES for p in hemisphere_paths(prefix, fmt))
    raise DataFormatError(f"map {os.fspath(prefix)!r}: no pair of hemisphere files ({tried})")


def load_surface_atlas(
    path: str | os.PathLike,
    mesh: str | None = None,
    ctab: str | os.PathLike | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Read a per-vertex label atlas (MGZ/MGH with optional ``.ctab``, or FreeSurfer ``.annot``).

    Parameters
    ----------
    path : path
        ``{lh,rh}.atlas.mgz``/``.mgh`` or ``{lh,rh}.atlas.annot``.
    mesh : str, optional
        Subsample to this fsaverage resolution (``"fsaverage5"``: the first 10,242 vertices).
    ctab : path, optional
        Colour table. Defaults to ``<atlas>.mgz.ctab`` beside an MGZ (NSD's naming: for
        ``lh.streams.mgz`` it is ``streams.mgz.ctab``), when it exists.

    Returns
    -------
    labels : (n_vertices,) int64
        0 = no label (NaN in a float MGZ counts as no label); annot files give -1 for
        unlabelled vertices as nibabel reads them.
    names : dict of int -> str
        Label names (empty when there is no table).
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: atlas file not found")
    if path.suffix == ".annot":
        from nibabel.freesurfer import read_annot

        try:
            labels, _ctab, names = read_annot(str(path))
        except Exception as exc:
            raise DataFormatError(f"{path}: not a readable .annot file ({exc})") from exc
        table = {i: (n.decode() if isinstance(n, bytes) else str(n)) for i, n in enumerate(names)}
        labels = np.asarray(labels, dtype=np.int64)
        if mesh is not None:
            labels = subsample_to_mesh(labels, mesh)
        return labels, table
    values = read_surface_map(path, mesh=mesh)
    if values.ndim != 1:
        raise DataFormatError(f"{path}: expected one label per vertex, found shape {values.shape}")
    if np.issubdtype(values.dtype, np.floating):
        # neuropythy's atlases store unlabelled vertices as NaN: they become 0 (no label)
        values = np.where(np.isnan(values), 0, values)
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise DataFormatError(
                f"{path}: expected integer labels, found non-integer values "
                "(a continuous map? read it with read_surface_map)"
            )
    labels = values.astype(np.int64)
    if ctab is None:
        stem = path.name.split(".", 1)[1] if path.name[:3] in ("lh.", "rh.") else path.name
        candidate = path.parent / f"{stem}.ctab"
        table = read_label_table(candidate) if candidate.exists() else {}
    else:
        table = read_label_table(ctab)
    return labels, table


__all__ = [
    "FSAVERAGE_SIZES",
    "HEMIS",
    "HEMI_NAMES",
    "MAP_SUFFIXES",
    "Mesh",
    "SurfaceFiles",
    "check_mesh",
    "find_fsaverage_surface",
    "fsaverage5_surface",
    "hemisphere_paths",
    "load_fsaverage",
    "load_surface",
    "load_surface_atlas",
    "mesh_adjacency",
    "mesh_edges",
    "read_hemisphere_maps",
    "read_label_table",
    "read_surface_map",
    "split_hemispheres",
    "subsample_mesh",
    "subsample_to_mesh",
    "write_hemisphere_maps",
    "write_surface_map",
]
