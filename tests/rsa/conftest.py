"""Small meshes and volumes for the RSA tests."""

import numpy as np
import pytest


def grid_mesh(nx=12, ny=10, spacing=2.0, seed=0):
    """A gently curved triangulated sheet (coords in mm, faces)."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.arange(nx) * spacing, np.arange(ny) * spacing, indexing="ij")
    z = 0.3 * np.sin(x / 5.0) + 0.05 * rng.standard_normal(x.shape)
    coords = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)
    idx = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = (
        idx[:-1, :-1].ravel(),
        idx[1:, :-1].ravel(),
        idx[:-1, 1:].ravel(),
        idx[1:, 1:].ravel(),
    )
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])
    return coords, faces


@pytest.fixture(scope="session")
def make_mesh():
    return grid_mesh


@pytest.fixture(scope="session")
def two_hemi_mesh():
    return [grid_mesh(seed=0), grid_mesh(10, 9, seed=1)]


@pytest.fixture(scope="session")
def ball_mask():
    g = np.indices((11, 12, 10)) - np.array([5, 6, 5])[:, None, None, None]
    return (g**2).sum(0) <= 16
