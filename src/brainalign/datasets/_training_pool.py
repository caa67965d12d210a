"""A virtual NSD's training pool: scenes no subject sees, in COCO's folder layout.

The paper trained its networks on COCO images that are not NSD stimuli (COCO train2017 minus
NSD, 48,236 images) and never on NSD images. A virtual NSD writes the same kind of pool, so the
demo trains there: extra procedural scenes with their own captions and categories, COCO ids
disjoint from every NSD image's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainalign.datasets.coco import write_coco_annotations
from brainalign.datasets.scenes import make_scenes
from brainalign.utils.io import atomic_path

#: the pool's folder under the virtual NSD root
POOL_FOLDER = "training_pool"
POOL_SPLIT = "train2017"
#: first COCO id of the pool (NSD images of a virtual NSD use 100,000 + k and 1,000,000 + nsdId)
POOL_COCO_ID_START = 3_000_000
IMAGE_SIZE = 425


def pool_seed(random_state: int) -> int:
    """The pool's scene seed: derived from the dataset's, different from the NSD scenes' seed."""
    return int(np.random.SeedSequence([int(random_state), 1]).generate_state(1)[0])


def write_training_pool(folder: Path, n_images: int, random_state: int) -> Path:
    """Write ``n_images`` new scenes under ``folder`` in COCO's layout; returns ``folder``.

    ``folder/train2017/<id>.png`` images (425 px) and ``folder/annotations/captions_train2017.json``
    and ``instances_train2017.json`` (the NSD stimuli's category names and numbering).
    """
    from PIL import Image

    scenes = make_scenes(n_images, random_state=pool_seed(random_state))
    coco_ids = POOL_COCO_ID_START + np.arange(n_images, dtype=np.int64)
    images = Path(folder) / POOL_SPLIT
    images.mkdir(parents=True, exist_ok=True)
    (Path(folder) / "annotations").mkdir(exist_ok=True)
    for start in range(0, n_images, 64):
        idx = np.arange(start, min(start + 64, n_images))
        for i, img in zip(idx, scenes.render(idx, size=IMAGE_SIZE), strict=True):
            with atomic_path(images / f"{int(coco_ids[i]):012d}.png") as tmp:
                Image.fromarray(img).save(tmp, format="PNG")
    write_coco_annotations(
        lambda kind: Path(folder) / "annotations" / f"{kind}_{POOL_SPLIT}.json",
        scenes,
        list(range(n_images)),
        coco_ids,
        size=IMAGE_SIZE,
        suffix=".png",
    )
    return Path(folder)


__all__ = ["POOL_FOLDER", "POOL_SPLIT", "pool_seed", "write_training_pool"]
