"""fsaverage meshes (nilearn, FreeSurfer files) and per-vertex atlases subsampled to fsaverage5."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from brainalign.datasets.surfaces import (
    Mesh,
    find_fsaverage_surface,
    load_fsaverage,
    load_surface,
    load_surface_atlas,
    mesh_adjacency,
    read_hemisphere_maps,
    read_label_table,
    read_surface_map,
    split_hemispheres,
    subsample_mesh,
    subsample_to_mesh,
    write_hemisphere_maps,
    write_surface_map,
)
from brainalign.errors import DataFormatError, InputError

ATLASES = "fsaverage_atlases_neuropythy"


@pytest.mark.parametrize("surface", ["pial", "white", "inflated", "sphere", "flat"])
def test_fsaverage5_from_nilearn(surface):
    meshes = load_fsaverage("fsaverage5", surface)
    assert list(meshes) == ["left", "right"]
    for mesh in meshes.values():
        coords, faces = mesh  # unpacks like a tuple
        assert coords.shape == (10242, 3)
        # the flat map is cut open (medial wall removed), so it has fewer faces
        assert faces.shape == ((20480, 3) if surface != "flat" else faces.shape)
        assert faces.shape[1] == 3 and faces.min() >= 0 and faces.max() <= 10241
        assert np.isfinite(coords).all()


def test_adjacency_matches_brute_force():
    mesh = load_fsaverage("fsaverage5", "pial")["left"]
    A = mesh.adjacency()
    assert (A != A.T).nnz == 0
    brute = set()
    for a, b, c in mesh.faces[:500]:
        brute |= {(a, b), (b, a), (b, c), (c, b), (a, c), (c, a)}
    rows, cols = A.nonzero()
    edges = set(zip(rows.tolist(), cols.tolist(), strict=True))
    assert brute <= edges
    # closed icosahedral mesh: V - E + F = 2, every vertex has 5 or 6 neighbours
    assert mesh.n_vertices - len(mesh.edges()) + len(mesh.faces) == 2
    deg = np.asarray(A.sum(axis=1)).ravel()
    assert set(np.unique(deg)) == {5, 6}
    W = mesh.adjacency(weighted=True)
    i, j = 0, int(A[0].indices[0])
    assert np.isclose(W[i, j], np.linalg.norm(mesh.coords[i] - mesh.coords[j]))
    assert isinstance(mesh_adjacency(*mesh), sp.csr_matrix)
    assert (mesh_adjacency(*mesh, weighted=True) != W).nnz == 0


def test_mesh_adjacency_checks_the_mesh():
    coords = np.zeros((4, 3))
    with pytest.raises(InputError, match="face indices"):
        mesh_adjacency(coords, np.array([[0, 1, 4]]))
    with pytest.raises(InputError, match="coordinates"):
        mesh_adjacency(np.zeros((4, 2)), np.array([[0, 1, 2]]))


@pytest.mark.parametrize("suffix", [".func.gii", ".gii", ".mgh", ".mgz"])
def test_surface_map_roundtrip(tmp_path, rng, suffix):
    one = rng.standard_normal(30).astype(np.float32)
    one[3] = np.nan
    path = write_surface_map(tmp_path / f"a{suffix}", one)
    np.testing.assert_array_equal(read_surface_map(path), one)
    several = rng.standard_normal((3, 30)).astype(np.float32)
    write_surface_map(tmp_path / f"b{suffix}", several)
    np.testing.assert_array_equal(read_surface_map(tmp_path / f"b{suffix}"), several)
    with pytest.raises(InputError, match="format"):
        write_surface_map(tmp_path / "c.nii", one)


def test_hemisphere_maps_roundtrip(tmp_path, rng):
    values = rng.standard_normal(50).astype(np.float32)
    lh, rh = split_hemispheres(values, (20, 30))
    written = write_hemisphere_maps(tmp_path / "m", lh, rh, formats=("gifti", "mgh"))
    assert [p.name for p in written] == ["m.lh.func.gii", "m.rh.func.gii", "m.lh.mgh", "m.rh.mgh"]
    a, b = read_hemisphere_maps(tmp_path / "m")
    np.testing.assert_array_equal(np.concatenate([a, b]), values)
    for p in written[:2]:
        p.unlink()  # MGH is read when there is no GIFTI
    np.testing.assert_array_equal(np.concatenate(read_hemisphere_maps(tmp_path / "m")), values)
    with pytest.raises(DataFormatError, match="no pair"):
        read_hemisphere_maps(tmp_path / "other")
    with pytest.raises(InputError, match="hemi_sizes"):
        split_hemispheres(values, (10, 10))
    with pytest.raises(InputError, match="format"):
        write_hemisphere_maps(tmp_path / "m", lh, rh, formats=("nifti",))


def test_bad_arguments():
    with pytest.raises(InputError, match="mesh"):
        load_fsaverage("fsaverage9")
    with pytest.raises(InputError, match="surface"):
        load_fsaverage("fsaverage5", "midthickness")
    with pytest.raises(InputError, match="fs_dir"):
        load_fsaverage("fsaverage", "pial")
    with pytest.raises(InputError, match="per-vertex"):
        subsample_to_mesh(np.zeros(5000))


def test_label_table_parsing(tmp_path):
    path = tmp_path / "Kastner2015.mgz.ctab"
    path.write_text("0 Unknown\n1 V1v\t   \n12 TO2   \n\n")
    assert read_label_table(path) == {0: "Unknown", 1: "V1v", 12: "TO2"}
    path.write_text("0 Unknown\nxx V1v\n")
    with pytest.raises(DataFormatError, match="line 2"):
        read_label_table(path)


def test_annot_roundtrip(tmp_path):
    import nibabel.freesurfer as fsio

    labels = np.tile(np.arange(3), 163842 // 3 + 1)[:163842].astype(np.int32)
    ctab = np.array([[25, 5, 25, 0, 0], [255, 0, 0, 0, 0], [0, 255, 0, 0, 0]], dtype=np.int32)
    path = tmp_path / "lh.test.annot"
    fsio.write_annot(str(path), labels, ctab, [b"unknown", b"V1", b"V2"], fill_ctab=True)
    lab, names = load_surface_atlas(path, mesh="fsaverage5")
    assert lab.shape == (10242,)
    np.testing.assert_array_equal(lab, labels[:10242])
    assert names == {0: "unknown", 1: "V1", 2: "V2"}


def test_corrupt_atlas(tmp_path):
    path = tmp_path / "lh.bad.mgz"
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataFormatError, match="lh.bad.mgz"):
        load_surface_atlas(path)
    with pytest.raises(DataFormatError, match="not found"):
        read_surface_map(tmp_path / "nope.mgh")


# ---------------------------------------------------------------- real data (../shared/data)

#: Wang et al. 2015 areas grouped as in docs/roi_landmarks.md: ROI -> (labels, lh centroid, lh size)
LANDMARKS = {
    "early": (range(1, 7), (-12.0, -90.7, 0.1), 323),
    "midventral": ((7, 8), (-27.4, -76.9, -12.0), 47),
    "ventral": ((9, 10, 11), (-27.8, -55.5, -9.8), 63),
    "midlateral": ((14, 15), (-34.8, -86.1, 4.1), 52),
    "lateral": ((12, 13), (-45.8, -77.9, 3.7), 27),
    "midparietal": ((16, 17), (-23.7, -88.9, 18.4), 66),
    "parietal": (range(18, 25), (-22.0, -70.4, 41.4), 246),
}


def test_real_atlas_subsamples_to_fsaverage5(shared_data):
    path = shared_data / ATLASES / "lh.wang15_mplbl.v1_0.mgz"
    full, _ = load_surface_atlas(path)
    fs5, _ = load_surface_atlas(path, mesh="fsaverage5")
    assert full.shape == (163842,) and fs5.shape == (10242,)
    np.testing.assert_array_equal(fs5, full[:10242])
    assert set(np.unique(fs5)) == set(range(26))
    # the grouped areas land where roi_landmarks.md says (nilearn's fsaverage5 pial mesh)
    pial = load_fsaverage("fsaverage5", "pial")["left"]
    for roi, (labels, centroid, size) in LANDMARKS.items():
        m = np.isin(fs5, list(labels))
        assert m.sum() == size, roi
        np.testing.assert_allclose(pial.coords[m].mean(axis=0), centroid, atol=0.06, err_msg=roi)


def test_real_continuous_maps_and_glasser(shared_data):
    ecc = read_surface_map(shared_data / ATLASES / "rh.benson14_eccen.v4_0.mgz", mesh="fsaverage5")
    assert ecc.shape == (10242,) and np.issubdtype(ecc.dtype, np.floating)
    glasser, _ = load_surface_atlas(
        shared_data / ATLASES / "lh.glasser16_atlas.v1_0.mgz", "fsaverage5"
    )
    assert glasser.max() == 180 and len(np.unique(glasser)) > 150


def test_real_sphere_subsamples_to_fsaverage5(shared_data):
    full = load_surface(shared_data / ATLASES / "lh.benson14_retinotopy.v4_0.sphere.reg")
    assert full.coords.shape == (163842, 3) and full.faces.shape == (327680, 3)
    fs5 = subsample_mesh(full, "fsaverage5")
    assert isinstance(fs5, Mesh) and fs5.coords.shape == (10242, 3)
    np.testing.assert_allclose(np.linalg.norm(fs5.coords, axis=1), 100, atol=0.5)
    # fsaverage5 faces on the full mesh's first vertices form short edges (nested topology)
    edges = fs5.edges()
    lengths = np.linalg.norm(fs5.coords[edges[:, 0]] - fs5.coords[edges[:, 1]], axis=1)
    assert lengths.max() < 30 and np.median(lengths) < 5  # a wrong topology gives ~100 mm
    ico = load_fsaverage("fsaverage5", "sphere")["left"]
    # a registered sphere: vertex i stays near vertex i of the icosahedral fsaverage5 sphere
    shift = np.linalg.norm(fs5.coords - ico.coords, axis=1)
    assert np.median(shift) < 5 and shift.max() < 15


def _write_surfaces(folder, names, scale=1.0):
    """fsaverage5 spheres (nilearn's, scaled) written as FreeSurfer geometry ``folder/<name>``
    for each ``name`` with ``{h}`` → lh / rh; returns the left sphere's coordinates."""
    from nibabel.freesurfer import write_geometry

    sphere = load_fsaverage("fsaverage5", "sphere")
    for name in names:
        for h, hemi in (("lh", "left"), ("rh", "right")):
            path = folder / name.format(h=h)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_geometry(str(path), scale * sphere[hemi].coords, sphere[hemi].faces)
    return scale * sphere["left"].coords


@pytest.mark.parametrize(
    "name", ["surf/{h}.sphere.reg", "surf/{h}.sphere", "{h}.sphere.reg", "{h}.benson.v1.sphere.reg"]
)
def test_sphere_folder_stands_in(tmp_path, name):
    """A folder holding only an fsaverage-topology sphere: the sphere stands in for every
    surface it lacks (same vertices and faces)."""
    coords = _write_surfaces(tmp_path, [name], scale=2.0)
    files = find_fsaverage_surface(tmp_path, "pial")
    assert files.geometry == "sphere" and files.stand_in
    assert files.left == tmp_path / name.format(h="lh")
    assert files.right == tmp_path / name.format(h="rh")
    ref = load_fsaverage("fsaverage5", "pial")
    for surface in ("pial", "white", "inflated", "sphere"):
        meshes = load_fsaverage("fsaverage5", surface, fs_dir=tmp_path)
        np.testing.assert_allclose(meshes["left"].coords, coords, atol=1e-4)
        np.testing.assert_array_equal(meshes["right"].faces, ref["right"].faces)


def test_freesurfer_surfaces_win_over_the_sphere(tmp_path):
    """surf/{lh,rh}.<surface> is read when both exist; only a missing surface takes the sphere."""
    _write_surfaces(tmp_path, ["surf/{h}.pial"], scale=1.0)
    _write_surfaces(tmp_path, ["surf/{h}.sphere"], scale=3.0)
    (tmp_path / "surf" / "rh.white").write_bytes(b"")  # one hemisphere only: not a white pair
    pial = find_fsaverage_surface(tmp_path, "pial")
    assert pial.geometry == "pial" and not pial.stand_in
    assert find_fsaverage_surface(tmp_path, "white_matter").geometry == "sphere"
    assert find_fsaverage_surface(tmp_path, "sphere").left.name == "lh.sphere"
    meshes = load_fsaverage("fsaverage5", "white", fs_dir=tmp_path)
    np.testing.assert_allclose(np.linalg.norm(meshes["left"].coords, axis=1), 300, rtol=1e-3)


def test_fsaverage_folder_errors(tmp_path):
    """A folder with neither layout, a missing folder, several candidate spheres: the error
    names the folder and the files expected."""
    (tmp_path / "empty" / "surf").mkdir(parents=True)
    for surface in ("pial", "white"):
        with pytest.raises(DataFormatError, match=rf"empty.*surf/lh\.{surface}.*sphere"):
            load_fsaverage("fsaverage", surface, fs_dir=tmp_path / "empty")
    with pytest.raises(DataFormatError, match="not found.*surf/lh.pial"):
        find_fsaverage_surface(tmp_path / "missing")
    _write_surfaces(tmp_path / "two", ["{h}.a.sphere.reg", "{h}.b.sphere.reg"])
    with pytest.raises(DataFormatError, match="several lh spheres.*lh.a.sphere.reg"):
        find_fsaverage_surface(tmp_path / "two")
    _write_surfaces(tmp_path / "half", ["lh.sphere.reg"])  # no right hemisphere
    with pytest.raises(DataFormatError, match="no rh.pial surface and no rh sphere"):
        find_fsaverage_surface(tmp_path / "half")
    with pytest.raises(InputError, match="flat"):
        load_fsaverage("fsaverage5", "flat", fs_dir=tmp_path / "half")


def test_neuropythy_sphere_folder(shared_data):
    """neuropythy's fsaverage folder (full fsaverage spheres and atlases) gives full meshes."""
    folder = shared_data / ATLASES
    files = find_fsaverage_surface(folder, "pial")
    assert files.stand_in and files.left.name == "lh.benson14_retinotopy.v4_0.sphere.reg"
    meshes = load_fsaverage("fsaverage", "pial", fs_dir=folder)
    assert meshes["left"].n_vertices == meshes["right"].n_vertices == 163842
    assert meshes["right"].faces.shape == (327680, 3)
    fs5 = load_fsaverage("fsaverage5", "white", fs_dir=folder)
    assert fs5["left"].n_vertices == 10242


def test_freesurfer_dir(virtual_nsd_root):
    """A FreeSurfer-style fsaverage folder (the virtual NSD writes one) reads back."""
    fs_dir = virtual_nsd_root / "nsddata/freesurfer/fsaverage"
    meshes = load_fsaverage("fsaverage5", "pial", fs_dir=fs_dir)
    ref = load_fsaverage("fsaverage5", "pial")
    for hemi in ("left", "right"):
        np.testing.assert_allclose(meshes[hemi].coords, ref[hemi].coords, atol=1e-4)
        np.testing.assert_array_equal(meshes[hemi].faces, ref[hemi].faces)
    labels, names = load_surface_atlas(fs_dir / "label" / "lh.streams.mgz")
    assert names[5] == "ventral" and labels.shape == (10242,)
