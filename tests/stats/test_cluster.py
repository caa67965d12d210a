import numpy as np
import pytest

from brainalign.datasets.surfaces import mesh_adjacency
from brainalign.errors import InputError
from brainalign.stats import cluster_test, tfce, tfce_test


def grid(nx=20, ny=20):
    idx = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = (
        idx[:-1, :-1].ravel(),
        idx[1:, :-1].ravel(),
        idx[:-1, 1:].ravel(),
        idx[1:, 1:].ravel(),
    )
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])
    coords = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"), -1).reshape(-1, 2)
    return np.c_[coords, np.zeros(len(coords))].astype(float), faces


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    coords, faces = grid()
    x = rng.standard_normal((8, len(coords)))
    blob = np.linalg.norm(coords[:, :2] - [6, 6], axis=1) < 3.5
    x[:, blob] += 2.5
    return x, faces, blob, coords


def test_cluster_finds_planted_blob(planted):
    x, faces, blob, _ = planted
    res = cluster_test(x, faces, threshold=3.0)
    assert res.n_flips == 256
    sig = res.p < 0.05
    assert sig.any() and blob[sig].mean() > 0.9
    assert res.p[~blob].min() > 0.05 or blob[sig].mean() > 0.9


def test_tfce_finds_planted_blob_and_accepts_sparse(planted):
    x, faces, blob, coords = planted
    res = tfce_test(x, mesh_adjacency(coords, faces))
    sig = res.p < 0.05
    assert sig.sum() >= blob.sum() // 2 and blob[sig].mean() > 0.9


def test_tfce_of_single_island():
    coords, faces = grid(5, 5)
    stat = np.zeros(25)
    stat[[0, 1]] = 2.0  # two adjacent vertices
    out = tfce(stat, faces, E=1.0, H=2.0, dh=1.0)
    # thresholds 1 and 2: extent 2 each time → 2·1²·1 + 2·2²·1
    np.testing.assert_allclose(out[[0, 1]], 10.0)
    assert np.all(out[2:] == 0)
    np.testing.assert_allclose(tfce(-stat, faces, dh=1.0)[[0, 1]], -10.0)


def test_null_cluster_fwer():
    rng = np.random.default_rng(4)
    coords, faces = grid(12, 12)
    hits = 0
    for _ in range(10):
        res = cluster_test(
            rng.standard_normal((8, len(coords))), faces, n_permutations=128, random_state=1
        )
        hits += bool((res.cluster_p < 0.05).any())
    assert hits <= 3  # FWER 5 %: rarely more than a few of 10 null maps


def test_bad(planted):
    x, faces, _, _ = planted
    with pytest.raises(InputError, match="vertices"):
        cluster_test(x[:, :10], faces)
    with pytest.raises(InputError):
        tfce_test(x, np.zeros((0, 3), int))
