"""The paper's disjoint random image subsets ("respected sampling"), seeded and saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainalign.errors import DataFormatError, InputError
from brainalign.utils.io import atomic_save_npy
from brainalign.utils.validation import check_random_state


def make_subsets(n_images: int, size: int = 100, random_state=0) -> np.ndarray:
    """Split ``n_images`` into ``n_images // size`` disjoint random subsets of ``size`` images.

    Drawn without replacement; the ``n_images % size`` left-over images are dropped, as in the
    paper. The same ``random_state`` gives the same subsets (the paper's were unseeded).

    Returns
    -------
    subsets : ndarray, shape (n_images // size, size), int64
        Row-indices into the subject's images (0-based positions, not NSD ids).
    """
    n_images, size = int(n_images), int(size)
    if size < 3:
        raise InputError(
            f"size={size}: a subset needs at least 3 images for a correlation between RDMs"
        )
    if n_images < size:
        raise InputError(f"n_images={n_images}: fewer images than one subset of size {size}")
    rng = check_random_state(random_state)
    perm = rng.permutation(n_images)
    n_sub = n_images // size
    return perm[: n_sub * size].reshape(n_sub, size).astype(np.int64)


def save_subsets(path, subsets) -> Path:
    """Save subsets as ``.npy`` (atomic, no pickle), to be reused across models and ROIs."""
    subsets = check_subsets(subsets)
    return atomic_save_npy(path, subsets)


def load_subsets(path) -> np.ndarray:
    """Load subsets written by :func:`save_subsets`."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataFormatError(
            f"{path}: cannot read subsets ({exc}); recreate them with make_subsets"
        ) from exc
    return check_subsets(arr, name=str(path))


def check_subsets(subsets, n_images: int | None = None, name: str = "subsets") -> np.ndarray:
    """Validate a (n_subsets, size) integer array of image indices."""
    subsets = np.asarray(subsets)
    if subsets.ndim != 2 or subsets.shape[1] < 3 or not np.issubdtype(subsets.dtype, np.integer):
        raise InputError(
            f"{name}: expected an integer array (n_subsets, size >= 3), got {subsets.shape} {subsets.dtype}"
        )
    if n_images is not None and (subsets.min() < 0 or subsets.max() >= n_images):
        raise InputError(
            f"{name}: indices must lie in [0, {n_images}) for these betas, found {subsets.min()}..{subsets.max()}; "
            "were the subsets made for another subject?"
        )
    for row in subsets:
        if np.unique(row).size != row.size:
            raise InputError(f"{name}: an image appears twice within one subset")
    return subsets.astype(np.int64)
