"""Static pictures of a surface map: a mesh drawn into ordinary 2-D matplotlib axes.

nilearn's matplotlib engine draws a surface through mplot3d, which builds one path per triangle
and sorts them on every draw: about a second per fsaverage5 panel, and the report draws six
panels per map and dozens of maps. Here the triangles are projected once (orthographic, the
camera of nilearn's views), sorted back to front, and handed to the renderer in one call
(``draw_gouraud_triangles`` with one colour per face), in nilearn's colouring: the face's mean
value through the colour map where its absolute value reaches the threshold, otherwise the
face's mean sulcal depth in grey (``gray_r``, deep sulci dark).
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.artist import Artist

#: nilearn's named views as (elevation, azimuth) in degrees, per hemisphere
VIEWS = {
    ("left", "lateral"): (0.0, 180.0),
    ("left", "medial"): (0.0, 0.0),
    ("right", "lateral"): (0.0, 0.0),
    ("right", "medial"): (0.0, 180.0),
}


def project(coords: np.ndarray, elev: float, azim: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic projection of ``coords`` (n, 3) seen from (``elev``, ``azim``) degrees.

    The camera of matplotlib's 3-D axes (``view_init``): it looks from the direction
    (cos e cos a, cos e sin a, sin e) with the z axis up. Returns the screen ``xy`` (n, 2) and the
    ``depth`` (n,), larger nearer the camera.
    """
    e, a = np.radians(elev), np.radians(azim)
    eye = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    right = np.array([-np.sin(a), np.cos(a), 0.0])
    up = np.cross(eye, right)
    c = coords - coords.mean(0)
    return np.column_stack([c @ right, c @ up]), c @ eye


def face_colours(
    values: np.ndarray,
    faces: np.ndarray,
    sulc: np.ndarray,
    cmap,
    norm,
    threshold: float,
) -> np.ndarray:
    """RGBA (n_faces, 4) of each face: its mean value's colour, or grey sulcal depth below it.

    A face is coloured where the absolute mean of its vertices' ``values`` is at least
    ``threshold``; NaN counts as 0.
    """
    bg = sulc[faces].mean(1)
    lo, hi = bg.min(), bg.max()
    if lo < 0 or hi > 1:  # nilearn's rescaling of a background outside [0, 1]
        bg = (bg - lo) / (hi - lo) if hi > lo else np.zeros_like(bg)
    rgba = colormaps["gray_r"](bg)
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)[faces].mean(1)
    shown = np.abs(v) >= threshold
    rgba[shown] = cmap(norm(v[shown]))
    rgba[:, 3] = 1.0
    return rgba


class _FlatTriangles(Artist):
    """Triangles of one colour each, drawn in the order given (back to front)."""

    def __init__(self, xy: np.ndarray, colours: np.ndarray):
        super().__init__()
        self._xy = xy  # (n, 3, 2) data coordinates
        self._colours = colours  # (n, 3, 4): the face's colour at each corner
        self.set_in_layout(False)

    def draw(self, renderer):
        if not self.get_visible():
            return
        gc = renderer.new_gc()
        renderer.draw_gouraud_triangles(gc, self._xy, self._colours, self.get_transform().frozen())
        gc.restore()


def draw_surface(ax, coords, faces, rgba, elev: float, azim: float, margin: float = 0.02) -> None:
    """Draw the mesh ``(coords, faces)`` with face colours ``rgba`` into the 2-D axes ``ax``.

    The faces are painted far to near, so the nearest surface is the one seen; the axes get
    equal scales, the mesh's extent (plus ``margin`` of it) and no frame.
    """
    xy, depth = project(np.asarray(coords, dtype=np.float64), elev, azim)
    order = np.argsort(depth[faces].mean(1), kind="stable")
    tri = faces[order]
    colours = np.repeat(np.asarray(rgba, dtype=np.float64)[order, None, :], 3, axis=1)
    artist = _FlatTriangles(xy[tri], colours)
    artist.set_transform(ax.transData)
    ax.add_artist(artist)
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    pad = margin * max(x1 - x0, y1 - y0)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()


__all__ = ["VIEWS", "draw_surface", "face_colours", "project"]
