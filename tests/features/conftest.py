"""Real COCO stimuli for the features tests (from ../shared/data/coco_mini)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainalign.datasets import Stimuli

N_IMAGES = 5  # MPNet on 2 shared cores is slow: keep the caption count small


def coco_mini_stimuli(shared_data, n_images=N_IMAGES) -> tuple[Stimuli, dict]:
    """The first ``n_images`` coco_mini val images, with captions and the 80-category multi-hot."""
    inst = json.loads((shared_data / "coco_mini/annotations/instances_val2017.json").read_text())
    caps = json.loads((shared_data / "coco_mini/annotations/captions_val2017.json").read_text())
    ids = sorted(im["id"] for im in inst["images"])[:n_images]
    by_image: dict[int, list[str]] = {i: [] for i in ids}
    for a in caps["annotations"]:
        if a["image_id"] in by_image:
            by_image[a["image_id"]].append(a["caption"])
    cat_ids = [c["id"] for c in inst["categories"]]
    names = [c["name"] for c in inst["categories"]]
    col = {c: j for j, c in enumerate(cat_ids)}
    multihot = np.zeros((len(ids), len(names)), dtype=np.uint8)
    row = {i: k for k, i in enumerate(ids)}
    for a in inst["annotations"]:
        if a["image_id"] in row:
            multihot[row[a["image_id"]], col[a["category_id"]]] = 1
    stim = Stimuli(
        image_ids=np.asarray(ids),
        captions=[by_image[i] for i in ids],
        categories=multihot,
        category_names=names,
    )
    return stim, inst


@pytest.fixture(scope="session")
def coco_stimuli(shared_data) -> Stimuli:
    return coco_mini_stimuli(shared_data)[0]


@pytest.fixture(scope="session")
def coco_instances(shared_data) -> dict:
    return coco_mini_stimuli(shared_data)[1]
