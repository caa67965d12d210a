"""Planted representations of real COCO images, from annotations and pixels only.

==========  ==========================================================================  ====
name        what it holds                                                               dims
==========  ==========================================================================  ====
lowlevel    luminance and two colour-opponent channels on an 8×8 grid of the centre-    192
            cropped image (as for procedural scenes)
objects     per category (COCO order): log(1 + instance count) and the summed box area  160
            as a fraction of the square crop
events      what COCO annotations say about who acts on what: for each of the 80         100
            categories, how much person boxes overlap boxes of that category (a person
            riding, holding, using or touching it; overlap = intersection / smaller
            box); for each of the 12 supercategories, the same for animal boxes; and 8
            pose features from person keypoints (number of posed persons, arms raised,
            stride, torso tilt, facing left/right, knees raised, reach, seen from the
            back). Role-bound: "person on horse" and "horse near person" differ from
            "person" + "horse".
layout      6×6 occupancy by box area (category-blind), number of instances, mean        45
            and spread of box centres, mean box size, pairwise relations (side by
            side / stacked / overlapping)
==========  ==========================================================================  ====

Images without instance annotations (``annotated`` False) get zero rows in ``objects``,
``events`` and ``layout`` after standardisation (the mean): nothing is known about them.
Boxes are mapped into the centre-cropped square frame that :func:`render` shows.
"""

from __future__ import annotations

import numpy as np

from brainalign.datasets._scene_representations import LAYOUT_GRID, standardise_columns

ANIMAL_SUPERCATEGORY = "animal"
N_POSE = 8
# COCO keypoint order.
_NOSE, _LSH, _RSH, _LEL, _REL, _LWR, _RWR, _LHIP, _RHIP, _LKN, _RKN, _LAN, _RAN = (
    0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
)  # fmt: skip


def crop_box(width: int, height: int) -> tuple[float, float, float]:
    """(left, top, side) of the centre square crop of a width × height image."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def _boxes_in_crop(anns, width, height):
    """(k, 4) boxes as x0, y0, x1, y1 in [0, 1] of the square crop (clipped), and keep mask."""
    left, top, side = crop_box(width, height)
    b = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    x0 = (b[:, 0] - left) / side
    y0 = (b[:, 1] - top) / side
    x1 = x0 + b[:, 2] / side
    y1 = y0 + b[:, 3] / side
    box = np.clip(np.stack([x0, y0, x1, y1], axis=1), 0.0, 1.0)
    keep = (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])
    return box, keep


def _overlap(a, b):
    """Intersection over the smaller box, for every pair: (len(a), len(b))."""
    ix = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    iy = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.where(smaller > 0, ix * iy / np.maximum(smaller, 1e-12), 0.0)


def pose_features(keypoint_anns: list[dict]) -> np.ndarray:
    """(8,) pose summary of the persons in one image (COCO keypoints; zeros when none).

    Each person with ≥ 5 visible keypoints contributes; features are means over persons,
    lengths in units of the person's torso length.
    """
    feats = []
    for ann in keypoint_anns:
        kp = np.asarray(ann.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
        if kp.shape[0] != 17 or (kp[:, 2] > 0).sum() < 5:
            continue
        vis = kp[:, 2] > 0
        xy = kp[:, :2]

        def mid(i, j, xy=xy, vis=vis):
            pts = [xy[k] for k in (i, j) if vis[k]]
            return np.mean(pts, axis=0) if pts else None

        sh, hip = mid(_LSH, _RSH), mid(_LHIP, _RHIP)
        torso = float(np.hypot(*(sh - hip))) if sh is not None and hip is not None else 0.0
        scale = torso if torso > 1e-6 else max(float(ann["bbox"][3]) / 3.0, 1e-6)
        raised = [
            float(xy[w, 1] < xy[s, 1]) for w, s in ((_LWR, _LSH), (_RWR, _RSH)) if vis[w] and vis[s]
        ]
        stride = abs(xy[_LAN, 0] - xy[_RAN, 0]) / scale if vis[_LAN] and vis[_RAN] else 0.0
        tilt = 0.0
        if sh is not None and hip is not None and torso > 1e-6:
            tilt = float(abs(np.arctan2(sh[0] - hip[0], hip[1] - sh[1])))
        facing = 0.0
        if vis[_NOSE] and vis[_LSH] and vis[_RSH]:
            width = max(abs(xy[_LSH, 0] - xy[_RSH, 0]), 1e-6)
            facing = float(np.clip((xy[_NOSE, 0] - sh[0]) / width, -2, 2))
        knees = [
            float(xy[k, 1] < xy[h, 1] + 0.25 * scale)
            for k, h in ((_LKN, _LHIP), (_RKN, _RHIP))
            if vis[k] and vis[h]
        ]
        reach = [
            float(np.hypot(*(xy[w] - xy[s]))) / scale
            for w, s in ((_LWR, _LSH), (_RWR, _RSH))
            if vis[w] and vis[s]
        ]
        back = float(not vis[_NOSE] and vis[_LSH] and vis[_RSH])
        feats.append(
            [
                np.mean(raised) if raised else 0.0,
                stride,
                tilt,
                facing,
                np.mean(knees) if knees else 0.0,
                np.mean(reach) if reach else 0.0,
                back,
            ]
        )
    if not feats:
        return np.zeros(N_POSE)
    return np.concatenate([[np.log1p(len(feats))], np.mean(feats, axis=0)])


def coco_annotation_representations(
    instances: list[list[dict] | None],
    keypoints: list[list[dict]],
    sizes: list[tuple[int, int]],
    categories: list[dict],
) -> dict[str, np.ndarray]:
    """``objects``, ``events`` and ``layout`` of COCO images (standardised, float32).

    Parameters
    ----------
    instances : list (n_images) of list of dict or None
        Instance annotations of each image (``bbox`` in pixels, ``category_id``); None when the
        image has no instance annotations at all (rows become zeros).
    keypoints : list (n_images) of list of dict
        Person-keypoint annotations of each image (may be empty).
    sizes : list of (width, height)
        Image sizes in pixels.
    categories : list of dict
        COCO categories (``id``, ``name``, ``supercategory``) in COCO order.
    """
    n, nc = len(instances), len(categories)
    col = {c["id"]: i for i, c in enumerate(categories)}
    supers = sorted({c["supercategory"] for c in categories})
    sup_of = np.array([supers.index(c["supercategory"]) for c in categories])
    is_person = np.array([c["name"] == "person" for c in categories])
    is_animal = np.array([c["supercategory"] == ANIMAL_SUPERCATEGORY for c in categories])
    g = LAYOUT_GRID
    centres = (np.arange(g) + 0.5) / g
    objects = np.zeros((n, 2 * nc))
    n_sup = len(supers)
    events = np.zeros((n, nc + n_sup + N_POSE))
    layout = np.zeros((n, g * g + 9))
    known = np.zeros(n, dtype=bool)
    for i, anns in enumerate(instances):
        if anns is None:
            continue
        known[i] = True
        w, h = sizes[i]
        anns = [a for a in anns if a.get("category_id") in col]
        box, keep = _boxes_in_crop(anns, w, h)
        cats = np.array([col[a["category_id"]] for a in anns], dtype=np.int64)
        box, cats = box[keep], cats[keep]
        area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
        counts = np.bincount(cats, minlength=nc)
        objects[i, :nc] = np.log1p(counts)
        objects[i, nc:] = np.bincount(cats, weights=area, minlength=nc)
        if len(cats):
            ov = _overlap(box, box)
            np.fill_diagonal(ov, 0.0)
            persons = is_person[cats]
            animals = is_animal[cats]
            if persons.any():
                events[i, :nc] = np.bincount(cats, weights=ov[persons].sum(0), minlength=nc)
            if animals.any():
                events[i, nc : nc + n_sup] = np.bincount(
                    sup_of[cats], weights=ov[animals].sum(0), minlength=n_sup
                )
            cx, cy = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
            sx = np.maximum((box[:, 2] - box[:, 0]) / 2, 1e-3)
            sy = np.maximum((box[:, 3] - box[:, 1]) / 2, 1e-3)
            wx = np.exp(-0.5 * ((centres[None] - cx[:, None]) / sx[:, None]) ** 2)
            wy = np.exp(-0.5 * ((centres[None] - cy[:, None]) / sy[:, None]) ** 2)
            layout[i, : g * g] = np.einsum("k,ky,kx->yx", area, wy, wx).ravel()
            dx = np.abs(cx[:, None] - cx[None])
            dy = np.abs(cy[:, None] - cy[None])
            upper = np.triu(np.ones((len(cats), len(cats)), dtype=bool), 1)
            rel = [
                float(((dx >= dy) & upper).sum()),
                float(((dx < dy) & upper).sum()),
                float(((ov > 0) & upper).sum()),
            ]
            layout[i, g * g :] = [
                np.log1p(len(cats)),
                cx.mean(),
                cy.mean(),
                cx.std(),
                cy.std(),
                np.sqrt(area).mean(),
                *rel,
            ]
        events[i, nc + n_sup :] = pose_features(keypoints[i])
    reps = {}
    for name, raw in (("objects", objects), ("events", events), ("layout", layout)):
        z = np.zeros(raw.shape, dtype=np.float32)
        if known.any():
            z[known] = standardise_columns(raw[known])
        reps[name] = z
    return reps
