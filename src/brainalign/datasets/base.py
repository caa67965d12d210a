"""Containers that travel between stages: the stimuli and one subject's responses.

Ids travel with arrays, never implied by position alone: every array's axis 0 is aligned with
the container's ``image_ids`` (0-based NSD ids, ascending).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from brainalign.datasets.surfaces import split_hemispheres
from brainalign.errors import InputError
from brainalign.utils.arrays import RowView

#: NSD's streams atlas labels (``streams.mgz.ctab``): label id -> ROI name
STREAMS_LABELS = {
    1: "early",
    2: "midventral",
    3: "midlateral",
    4: "midparietal",
    5: "ventral",
    6: "lateral",
    7: "parietal",
}
#: the streams ROI names in label order
STREAMS_ROIS = tuple(STREAMS_LABELS.values())


@dataclass
class Stimuli:
    """Everything known about a set of images.

    Attributes
    ----------
    image_ids : (n_images,) int64
        0-based NSD ids (or dataset ids), ascending, unique.
    captions : list of list of str
        ``captions[i]`` are the captions of ``image_ids[i]`` (usually 5, sometimes 6–7).
    categories : (n_images, n_categories) uint8 or None
        Multi-hot object categories (COCO-style), when annotations exist.
    category_names : list of str
        Names of the columns of ``categories``.
    images : callable or None
        ``images(ids) -> (len(ids), H, W, 3) uint8`` read lazily (HDF5 ``imgBrick`` or a folder).
    metadata : dict
        Free-form extras (source paths, COCO ids, splits).
    """

    image_ids: np.ndarray
    captions: list[list[str]]
    categories: np.ndarray | None = None
    category_names: list[str] = field(default_factory=list)
    images: Callable[[Sequence[int]], np.ndarray] | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.image_ids = np.asarray(self.image_ids, dtype=np.int64)
        if self.image_ids.ndim != 1:
            raise InputError(f"image_ids: expected 1-D, got shape {self.image_ids.shape}")
        if len(np.unique(self.image_ids)) != len(self.image_ids):
            raise InputError("image_ids: duplicate ids; every image must appear once")
        if len(self.captions) != len(self.image_ids):
            raise InputError(
                f"captions: {len(self.captions)} caption lists for {len(self.image_ids)} images; "
                "give one list of captions per image"
            )
        if self.categories is not None and len(self.categories) != len(self.image_ids):
            raise InputError(
                f"categories: {len(self.categories)} rows for {len(self.image_ids)} images"
            )

    def __len__(self) -> int:
        return len(self.image_ids)

    def index_of(self, ids) -> np.ndarray:
        """Positions of ``ids`` in ``image_ids``; raises if any id is absent."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.image_ids, ids)
        pos = np.clip(pos, 0, len(self.image_ids) - 1)
        if len(self.image_ids) == 0 or not np.array_equal(self.image_ids[pos], ids):
            missing = ids[self.image_ids[pos] != ids] if len(self.image_ids) else ids
            raise InputError(f"ids not in these stimuli: {missing[:10].tolist()} …")
        return pos

    def subset(self, ids) -> Stimuli:
        """Stimuli restricted to ``ids`` (in the given order)."""
        pos = self.index_of(ids)
        return Stimuli(
            image_ids=self.image_ids[pos],
            captions=[self.captions[i] for i in pos],
            categories=None if self.categories is None else self.categories[pos],
            category_names=list(self.category_names),
            images=self.images,
            metadata=dict(self.metadata),
        )


@dataclass
class SubjectResponses:
    """One subject's preprocessed responses.

    Attributes
    ----------
    betas : (n_images, n_units) float32, usually memory-mapped
        z-scored per session, averaged over the 3 repetitions; zero-variance units are NaN.
    image_ids : (n_images,) int64
        0-based NSD ids, ascending.
    shared : (n_images,) bool
        True for the shared test images (NSD's "special 515").
    rois : dict of str -> (n_units,) bool
        Named ROI masks (streams ROIs; ``nsdgeneral`` where present).
    space : str
        ``"fsaverage"`` or ``"func1pt8mm"`` (or another space name).
    subject : int
        1-based subject number.
    hemi_sizes : tuple of int
        Units per hemisphere, left first (surface spaces); empty for volumes.
    mask : (X, Y, Z) bool or None
        Volume spaces: the brain mask; units are ``mask``'s True voxels in C order.
    affine : (4, 4) float or None
        Volume spaces: voxel → world affine.
    """

    betas: np.ndarray
    image_ids: np.ndarray
    shared: np.ndarray
    rois: dict[str, np.ndarray]
    space: str
    subject: int
    hemi_sizes: tuple[int, ...] = ()
    mask: np.ndarray | None = None
    affine: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.image_ids = np.asarray(self.image_ids, dtype=np.int64)
        self.shared = np.asarray(self.shared, dtype=bool)
        if self.betas.ndim != 2 or self.betas.shape[0] != len(self.image_ids):
            raise InputError(
                f"betas: expected (n_images={len(self.image_ids)}, n_units), got {self.betas.shape}"
            )
        if self.shared.shape != self.image_ids.shape:
            raise InputError("shared: must have one flag per image")
        for name, m in self.rois.items():
            if np.asarray(m).shape != (self.betas.shape[1],):
                raise InputError(
                    f"rois[{name!r}]: expected a ({self.betas.shape[1]},) mask, got {np.asarray(m).shape}"
                )

    @property
    def n_images(self) -> int:
        return self.betas.shape[0]

    @property
    def n_units(self) -> int:
        return self.betas.shape[1]

    def betas_view(self, rows=None) -> RowView:
        """``betas[rows]`` without copying (a :class:`~brainalign.utils.arrays.RowView`; ridge reads
        it one block of units at a time), e.g. ``sub.betas_view(~sub.shared)``."""
        return RowView(self.betas, rows)

    def split_hemispheres(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split ``(..., n_units)`` values into ``(left, right)`` along the last axis."""
        if not self.hemi_sizes:
            raise InputError(f"space {self.space!r} has no hemispheres")
        return split_hemispheres(values, self.hemi_sizes)
