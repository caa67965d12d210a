import numpy as np
import pytest
from scipy.sparse import csgraph

from brainalign.datasets.surfaces import mesh_adjacency
from brainalign.errors import DataFormatError, InputError
from brainalign.rsa import Neighbourhoods, surface_neighbourhoods, volume_neighbourhoods


def test_surface_equals_full_dijkstra(two_hemi_mesh, tmp_path):
    nb = surface_neighbourhoods(two_hemi_mesh, radius=5.0, cache_dir=tmp_path)
    offset = 0
    for coords, faces in two_hemi_mesh:
        dist = csgraph.dijkstra(mesh_adjacency(coords, faces, weighted=True), directed=False)
        for v in range(coords.shape[0]):
            expected = np.flatnonzero(dist[v] <= 5.0) + offset
            np.testing.assert_array_equal(nb[offset + v], expected)
        offset += coords.shape[0]
    assert nb.hemi_sizes == (120, 90) and nb.n_units == 210 and len(nb) == 210
    assert 5 < nb.sizes.mean() < 30


def test_surface_cache_reused(tmp_path, monkeypatch, make_mesh):
    mesh = make_mesh()
    a = surface_neighbourhoods(mesh, radius=4.0, cache_dir=tmp_path)
    files = list(tmp_path.glob("surface_*.npz"))
    assert len(files) == 1
    import brainalign.rsa.neighbourhoods as mod

    monkeypatch.setattr(mod, "_hemi_neighbourhoods", lambda *a, **k: pytest.fail("cache not used"))
    b = surface_neighbourhoods(mesh, radius=4.0, cache_dir=tmp_path)
    np.testing.assert_array_equal(a.indices, b.indices)
    # another radius is another cache entry
    monkeypatch.undo()
    surface_neighbourhoods(mesh, radius=3.0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("surface_*.npz"))) == 2


def test_surface_bad_inputs(make_mesh):
    coords, faces = make_mesh()
    with pytest.raises(InputError, match="no faces"):
        surface_neighbourhoods((coords, np.zeros((0, 3), int)), cache=False)
    with pytest.raises(InputError, match="face indices"):
        surface_neighbourhoods((coords, faces + 1000), cache=False)
    with pytest.raises(InputError, match="radius"):
        surface_neighbourhoods((coords, faces), radius=-1, cache=False)


def test_tiny_radius_gives_single_vertex_centres(make_mesh):
    nb = surface_neighbourhoods(make_mesh(), radius=0.5, cache=False)
    assert np.all(nb.sizes == 1)


def test_volume_equals_rsatoolbox(ball_mask):
    sl = pytest.importorskip("rsatoolbox.util.searchlight")
    nb = volume_neighbourhoods(ball_mask, radius=3, min_fraction=0.5)
    # the paper's rule: the in-mask fraction of the whole sphere selects centres (rsatoolbox's
    # truncate_at_boundary=False), then only the in-mask voxels of the sphere are used
    centres, neighbours = sl.get_volume_searchlight(
        ball_mask, radius=3, threshold=0.5, truncate_at_boundary=False
    )
    flat = np.flatnonzero(ball_mask)
    np.testing.assert_array_equal(flat[nb.centres], centres)
    for c in range(len(nb)):
        expected = np.sort(neighbours[c][ball_mask.ravel()[neighbours[c]]])
        np.testing.assert_array_equal(flat[nb[c]], expected)


def test_volume_paper_rule():
    mask = np.zeros((9, 9, 9), bool)
    mask[2:7, 2:7, 2:7] = True
    nb = volume_neighbourhoods(mask, radius=2, min_fraction=0.5)
    flat = np.flatnonzero(mask)
    corner = np.ravel_multi_index((2, 2, 2), mask.shape)
    centre = np.ravel_multi_index((4, 4, 4), mask.shape)
    kept = set(flat[nb.centres].tolist())
    assert centre in kept and corner not in kept  # a corner has < half of its sphere in the mask
    c = list(flat[nb.centres]).index(centre)
    assert nb.sizes[c] == 27  # the full sphere of offsets with norm < 2: 1 + 6 + 12 + 8


def test_volume_bad():
    with pytest.raises(InputError):
        volume_neighbourhoods(np.zeros((3, 3)))
    with pytest.raises(InputError):
        volume_neighbourhoods(np.zeros((3, 3, 3)))


def test_save_load_restrict(tmp_path):
    nb = Neighbourhoods.from_lists([[0, 1, 2], [2, 3], [4]], 5)
    nb.save(tmp_path / "nb.npz")
    back = Neighbourhoods.load(tmp_path / "nb.npz")
    np.testing.assert_array_equal(back.indices, nb.indices)
    r = nb.restrict(np.array([True, False, True, True, True]))
    assert [r[i].tolist() for i in range(3)] == [[0, 2], [2, 3], [4]]
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(DataFormatError):
        Neighbourhoods.load(tmp_path / "bad.npz")
    with pytest.raises(InputError):
        Neighbourhoods.from_lists([[0, 7]], 5)


def test_arrays_round_trip_and_centre_slices(two_hemi_mesh, tmp_path):
    """to_arrays / from_arrays give the same neighbourhoods back, whole or a slice of centres
    (what the pipeline's searchlight chunks read), also from memory-mapped arrays."""
    nb = surface_neighbourhoods(two_hemi_mesh, radius=4.0, cache=False)
    arrays = nb.to_arrays()
    assert set(arrays) == {
        "indptr",
        "indices",
        "centres",
        "n_units",
        "kind",
        "radius",
        "hemi_sizes",
    }
    back = Neighbourhoods.from_arrays(arrays)
    for name in ("indptr", "indices", "centres"):
        np.testing.assert_array_equal(getattr(back, name), getattr(nb, name))
    assert (back.n_units, back.kind, back.radius, back.hemi_sizes) == (
        nb.n_units,
        "surface",
        4.0,
        nb.hemi_sizes,
    )
    for name in ("indptr", "indices", "centres"):
        np.save(tmp_path / f"{name}.npy", arrays[name])
    mapped = {
        **arrays,
        **{
            k: np.load(tmp_path / f"{k}.npy", mmap_mode="r")
            for k in ("indptr", "indices", "centres")
        },
    }
    part = Neighbourhoods.from_arrays(mapped, 7, 19)
    assert len(part) == 12 and part.n_units == nb.n_units and part.hemi_sizes == nb.hemi_sizes
    for i in range(12):
        np.testing.assert_array_equal(part[i], nb[7 + i])
    np.testing.assert_array_equal(part.centres, nb.centres[7:19])
    assert len(Neighbourhoods.from_arrays(arrays, 5, 5)) == 0
    with pytest.raises(InputError, match="stop"):
        Neighbourhoods.from_arrays(arrays, 3, len(nb) + 1)
    # a mapping without the optional names (an older stored result): the defaults
    bare = Neighbourhoods.from_arrays(
        {k: arrays[k] for k in ("indptr", "indices", "centres", "n_units")}
    )
    assert bare.kind == "custom" and np.isnan(bare.radius) and bare.hemi_sizes == ()
