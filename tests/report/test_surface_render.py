"""The static surface renderer: nilearn's cameras, colouring and a painter's order."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import colors

from brainalign.datasets.surfaces import fsaverage5_surface
from brainalign.report.surface_render import VIEWS, draw_surface, face_colours, project


def _pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    plt.close(fig)
    return img


@pytest.mark.parametrize(
    ("hemi", "view", "anterior_on_left"),
    [("left", "lateral", True), ("left", "medial", False), ("right", "lateral", False),
     ("right", "medial", True)],
)  # fmt: skip
def test_views_are_nilearns_cameras(hemi, view, anterior_on_left):
    """Lateral of the left hemisphere is seen from −x with z up: anterior (+y) to the left."""
    pts = np.array([[0, 1.0, 0], [0, -1.0, 0], [0, 0, 1.0], [-1.0, 0, 0], [1.0, 0, 0]])
    xy, depth = project(pts, *VIEWS[(hemi, view)])
    assert (xy[0, 0] < xy[1, 0]) == anterior_on_left
    assert xy[2, 1] > 0 and xy[2, 1] > xy[0, 1]  # z up
    facing = -1.0 if (hemi == "left") == (view == "lateral") else 1.0  # the camera's side
    assert depth[3 if facing < 0 else 4] > depth[4 if facing < 0 else 3]


def test_flat_view_looks_down_with_x_right_and_y_up():
    pts = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, -1.0]])
    xy, depth = project(pts, 90.0, 270.0)
    np.testing.assert_allclose(xy[0] - xy[3], [1, 0], atol=1e-12)
    np.testing.assert_allclose(xy[1] - xy[3], [0, 1], atol=1e-12)
    assert depth[2] > depth[3]


def test_face_colours_follow_nilearns_rule(rng):
    """A face takes its mean value's colour where |mean| ≥ threshold, else its sulcal grey."""
    values = rng.standard_normal(6)
    values[2] = np.nan  # counts as 0
    faces = np.array([[0, 1, 2], [3, 4, 5], [0, 3, 5], [1, 2, 4]])
    sulc = rng.uniform(-3, 3, 6)
    cmap, norm = plt.get_cmap("RdBu_r"), colors.Normalize(-2, 2, clip=True)
    rgba = face_colours(values, faces, sulc, cmap, norm, threshold=0.3)
    v = np.nan_to_num(values)[faces].mean(1)
    bg = sulc[faces].mean(1)
    bg = (bg - bg.min()) / (bg.max() - bg.min())
    for f in range(len(faces)):
        want = cmap(norm(v[f])) if abs(v[f]) >= 0.3 else plt.get_cmap("gray_r")(bg[f])
        np.testing.assert_allclose(rgba[f], want, atol=1e-12)


def test_nearer_faces_cover_farther_ones():
    """Two overlapping triangles, the red one nearer the camera: red is seen, whatever the order."""
    coords = np.array(
        [[0, -1, -1], [0, 1, -1], [0, 0, 1],  # far (x = 0), blue
         [-1, -1, -1], [-1, 1, -1], [-1, 0, 1]],  # near the camera at −x, red
        dtype=float,
    )  # fmt: skip
    rgba = np.array([[0, 0, 1, 1], [1, 0, 0, 1]], dtype=float)
    for faces, face_rgba in (
        (np.array([[0, 1, 2], [3, 4, 5]]), rgba),
        (np.array([[3, 4, 5], [0, 1, 2]]), rgba[::-1]),
    ):
        fig = plt.figure(figsize=(2, 2), dpi=50)
        draw_surface(
            fig.add_axes((0, 0, 1, 1)), coords, faces, face_rgba, *VIEWS[("left", "lateral")]
        )
        img = _pixels(fig)
        r, g, b = img[img.shape[0] // 2, img.shape[1] // 2]
        assert r > 200 and b < 50


def test_an_occipital_map_shows_at_the_back_of_the_lateral_view():
    coords, faces, sulc = fsaverage5_surface("inflated", "left")
    assert coords.shape == (10242, 3) and sulc.shape == (10242,) and not coords.flags.writeable
    values = (coords[:, 1] < np.percentile(coords[:, 1], 15)).astype(float) * 3.0
    rgba = face_colours(values, faces, sulc, plt.get_cmap("autumn"), colors.Normalize(0, 3), 1.0)
    fig = plt.figure(figsize=(4, 3), dpi=60)
    draw_surface(fig.add_axes((0, 0, 1, 1)), coords, faces, rgba, *VIEWS[("left", "lateral")])
    img = _pixels(fig)
    coloured = (img[..., 0] > 200) & (img[..., 2] < 80)  # autumn: red to yellow
    cols = np.nonzero(coloured)[1]
    assert cols.size > 50 and np.median(cols) > 0.7 * img.shape[1]  # posterior is on the right
