"""Planted representations of scenes, computed from the scene description and pixels only.

These are the generators of the virtual brain's responses. They never use a model that brainalign
later tests (no sentence encoder, no word vectors, no network features): the truth is the scene.

=========  =====================================================================  ====
name       what it holds                                                          dims
=========  =====================================================================  ====
lowlevel   mean luminance and two colour-opponent channels on an 8×8 grid of the   192
           rendered image (retinotopic image content)
objects    category counts, total area per category, colour counts, size counts     49
           (not the setting: the background belongs to ``lowlevel``)
events     agent category, patient category, action, agent and patient colour,    110
           agent category × action (role-bound: who does what to whom)
layout     6×6 occupancy by object area (category-blind), horizon height,          45
           pairwise relations (side by side / stacked / touching), spread of the
           objects, number of objects
=========  =====================================================================  ====

Every column is standardised (zero mean, unit variance over the scenes given; constant columns
become zeros) and returned as float32.
"""

from __future__ import annotations

import numpy as np

from brainalign.datasets._scene_render import object_radius, render_scene
from brainalign.datasets._scene_vocab import (
    ACTION_INDEX,
    ACTIONS,
    ANIMATE,
    CATEGORIES,
    CATEGORY_INDEX,
    COLOUR_NAMES,
    SIZE_NAMES,
)
from brainalign.utils.progress import progress

REPRESENTATION_NAMES: tuple[str, ...] = ("lowlevel", "objects", "events", "layout")
LOWLEVEL_GRID = 8
LOWLEVEL_RENDER_SIZE = 64
LAYOUT_GRID = 6


def standardise_columns(X: np.ndarray) -> np.ndarray:
    """Z-score every column (float64 arithmetic); constant columns become zeros. Returns float32."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    out = np.zeros_like(X)
    ok = std > 1e-12 * np.maximum(1.0, np.abs(mean))
    out[:, ok] = (X[:, ok] - mean[ok]) / std[ok]
    return out.astype(np.float32)


def pixel_grid(images: np.ndarray, grid: int = LOWLEVEL_GRID) -> np.ndarray:
    """Image content by position: luminance and two opponent channels averaged on a grid.

    Parameters
    ----------
    images : (n, H, W, 3) uint8
        Square images; ``H`` and ``W`` must be multiples of ``grid``.
    grid : int
        Cells per side.

    Returns
    -------
    features : (n, 3 * grid * grid) float64
        Channels (luminance, red−green, (red+green)/2−blue) in [0, 1] units, cells in row-major
        order, channel fastest.
    """
    x = np.asarray(images, dtype=np.float64) / 255.0
    n, h, w, _ = x.shape
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    opp = np.stack([(r + g + b) / 3.0, r - g, (r + g) / 2.0 - b], axis=-1)
    cells = opp.reshape(n, grid, h // grid, grid, w // grid, 3).mean(axis=(2, 4))
    return cells.reshape(n, -1)


def lowlevel_raw(scenes: list[dict]) -> np.ndarray:
    """(n_scenes, 192) pixel grid of small renders."""
    size = LOWLEVEL_RENDER_SIZE
    out = np.empty((len(scenes), 3 * LOWLEVEL_GRID**2))
    for i, scene in enumerate(progress(scenes, desc="scene pixels", unit="scene")):
        out[i] = pixel_grid(render_scene(scene, size)[None])[0]
    return out


def objects_raw(scenes: list[dict]) -> np.ndarray:
    """(n_scenes, 49): what is there, regardless of where and of who does what."""
    nc, nk, ns = len(CATEGORIES), len(COLOUR_NAMES), len(SIZE_NAMES)
    out = np.zeros((len(scenes), 2 * nc + nk + ns))
    for i, scene in enumerate(scenes):
        row = out[i]
        for obj in scene["objects"]:
            c = CATEGORY_INDEX[obj["category"]]
            row[c] += 1.0
            row[nc + c] += (2 * object_radius(obj)) ** 2
            row[2 * nc + COLOUR_NAMES.index(obj["colour"])] += 1.0
            row[2 * nc + nk + SIZE_NAMES.index(obj["size"])] += 1.0
    return out


def events_raw(scenes: list[dict]) -> np.ndarray:
    """(n_scenes, 110): agent, action and patient, bound to their roles."""
    nc, na, nk = len(CATEGORIES), len(ACTIONS), len(COLOUR_NAMES)
    offsets = np.cumsum([0, nc, nc, na, nk, nk])
    out = np.zeros((len(scenes), offsets[-1] + len(ANIMATE) * na))
    for i, scene in enumerate(scenes):
        row = out[i]
        for ev in scene["events"]:
            agent = scene["objects"][ev["agent"]]
            patient = scene["objects"][ev["patient"]]
            a = ACTION_INDEX[ev["action"]]
            row[offsets[0] + CATEGORY_INDEX[agent["category"]]] += 1.0
            row[offsets[1] + CATEGORY_INDEX[patient["category"]]] += 1.0
            row[offsets[2] + a] += 1.0
            row[offsets[3] + COLOUR_NAMES.index(agent["colour"])] += 1.0
            row[offsets[4] + COLOUR_NAMES.index(patient["colour"])] += 1.0
            row[offsets[5] + ANIMATE.index(agent["category"]) * na + a] += 1.0
    return out


def layout_raw(scenes: list[dict]) -> np.ndarray:
    """(n_scenes, 45): where things are and how they relate, regardless of what they are."""
    g = LAYOUT_GRID
    out = np.zeros((len(scenes), g * g + 9))
    centres = (np.arange(g) + 0.5) / g
    for i, scene in enumerate(scenes):
        objs = scene["objects"]
        xy = np.array([[o["x"], o["y"]] for o in objs])
        rad = np.array([object_radius(o) for o in objs])
        # Each object spreads its area over the grid with a Gaussian as wide as the object.
        wx = np.exp(-0.5 * ((centres[None, :] - xy[:, :1]) / rad[:, None]) ** 2)
        wy = np.exp(-0.5 * ((centres[None, :] - xy[:, 1:]) / rad[:, None]) ** 2)
        occ = np.einsum("k,ky,kx->yx", (2 * rad) ** 2, wy, wx)
        out[i, : g * g] = occ.ravel()
        rel = np.zeros(3)
        for a in range(len(objs)):
            for b in range(a + 1, len(objs)):
                dx, dy = abs(xy[b, 0] - xy[a, 0]), abs(xy[b, 1] - xy[a, 1])
                rel[0 if dx >= dy else 1] += 1.0
                rel[2] += float(np.hypot(dx, dy) < rad[a] + rad[b] + 0.05)
        out[i, g * g :] = [
            scene["horizon"],
            *rel,
            xy[:, 0].mean(),
            xy[:, 1].mean(),
            xy[:, 0].std(),
            xy[:, 1].std(),
            len(objs),
        ]
    return out


def scene_representations(scenes: list[dict]) -> dict[str, np.ndarray]:
    """All four planted representations of procedural scenes, standardised, float32."""
    return {
        "lowlevel": standardise_columns(lowlevel_raw(scenes)),
        "objects": standardise_columns(objects_raw(scenes)),
        "events": standardise_columns(events_raw(scenes)),
        "layout": standardise_columns(layout_raw(scenes)),
    }
