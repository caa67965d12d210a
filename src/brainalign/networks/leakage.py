"""Training images are never evaluated images: one check shared by every path.

The paper trained its networks on COCO train2017 minus every NSD image (48,236 images) and never
on an image it then scored them on (paper_methods §7.2). A network scored on images it was trained
on is not tested on new images, so every path that trains or scores a network calls
:func:`check_disjoint`: ``brainalign train`` (every ``[data]`` source), :func:`brainalign.networks.
train` (``evaluated=``), ``brainalign compare-models`` / :func:`~brainalign.networks.compare_models`
and the pipeline's networks analysis.

Images are compared by identity, not by position. :class:`ImageIds` holds a set of ids with the
space they live in (``"coco"``: COCO image ids; ``"nsd"``: 0-based NSD ids; ``None``: ids
without a known meaning) and, where known, each image's COCO id. Two sets are compared by COCO id
when both know them (so a COCO folder is checked against NSD images), otherwise by id when both
live in the same known space; sets that share no space cannot be compared and say so.

Where the evaluated images are not known when a network trains, the training run records its
images in every checkpoint (``training_images`` of the checkpoint's JSON,
:func:`checkpoint_training_images`), and the code that scores the network checks that record
against the images it scores on.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainalign import datasets
from brainalign.errors import DataFormatError, InputError
from brainalign.networks.checkpoint import read_checkpoint_info

#: how many overlapping ids an error message lists
N_EXAMPLES = 5


@dataclass(frozen=True)
class ImageIds:
    """A named set of images: ids, the space they live in and, where known, their COCO ids.

    Attributes
    ----------
    ids : (n,) int64
    id_space : {"coco", "nsd"} or None
        What the ids are: COCO image ids, 0-based NSD ids, or unknown (positions, scene indices).
    coco_ids : (n,) int64 or None
        The COCO id of each image (``-1`` where an image has none); the ids themselves when
        ``id_space`` is ``"coco"``.
    name : str
        What the set is, for messages ("training images of coco:train2017").
    """

    ids: np.ndarray
    id_space: str | None = None
    coco_ids: np.ndarray | None = None
    name: str = "images"

    def __post_init__(self):
        ids = np.asarray(self.ids, dtype=np.int64).ravel()
        object.__setattr__(self, "ids", ids)
        if self.id_space == "coco" and self.coco_ids is None:
            object.__setattr__(self, "coco_ids", ids)
        if self.coco_ids is not None:
            coco = np.asarray(self.coco_ids, dtype=np.int64).ravel()
            if coco.shape != ids.shape:
                raise InputError(
                    f"coco_ids of {self.name}: expected one per image ({len(ids)}), got {len(coco)}"
                )
            object.__setattr__(self, "coco_ids", coco)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, data, name: str | None = None) -> ImageIds:
        """The images of an :class:`~brainalign.networks.ImageData`, an ``ImageIds`` or ids."""
        if isinstance(data, ImageIds):
            return data if name is None else cls(data.ids, data.id_space, data.coco_ids, name)
        if hasattr(data, "ids") and hasattr(data, "load_images"):
            return cls(
                data.ids,
                getattr(data, "id_space", None),
                getattr(data, "coco_ids", None),
                name or f"images of {data.name or 'ImageData'}",
            )
        return cls(np.asarray(data, dtype=np.int64), None, None, name or "images")

    def to_json(self) -> dict:
        """A JSON-serialisable record (stored in every checkpoint as ``training_images``)."""
        return {
            "name": self.name,
            "id_space": self.id_space,
            "n": len(self),
            "ids": self.ids.tolist(),
            "coco_ids": None if self.coco_ids is None else self.coco_ids.tolist(),
        }

    @classmethod
    def from_json(cls, record: dict) -> ImageIds:
        """The set a :meth:`to_json` record describes."""
        try:
            return cls(
                record["ids"], record.get("id_space"), record.get("coco_ids"), record["name"]
            )
        except (KeyError, TypeError) as exc:
            raise DataFormatError(
                f"training_images record: malformed ({exc!r}); expected name, id_space, ids"
            ) from None


def _common_space(a: ImageIds, b: ImageIds) -> tuple[np.ndarray, np.ndarray, str]:
    """The two sets' ids in a space both know: COCO ids first, else a shared id space."""
    if a.coco_ids is not None and b.coco_ids is not None:
        return a.coco_ids[a.coco_ids >= 0], b.coco_ids[b.coco_ids >= 0], "COCO ids"
    if a.id_space is not None and a.id_space == b.id_space:
        return a.ids, b.ids, f"{a.id_space.upper()} ids"
    if a.id_space is None and b.id_space is None:
        return a.ids, b.ids, "ids"
    raise InputError(
        f"cannot compare {a.name} (ids: {a.id_space or 'unknown'}) with {b.name} (ids: "
        f"{b.id_space or 'unknown'}): give both as COCO ids or in the same id space "
        "(ImageData(id_space=..., coco_ids=...))"
    )


def comparable(a, b) -> bool:
    """Whether two image sets share a known id space (both know COCO ids, or the same space)."""
    a, b = ImageIds.of(a), ImageIds.of(b)
    if a.coco_ids is not None and b.coco_ids is not None:
        return True
    return a.id_space is not None and a.id_space == b.id_space


def check_disjoint(
    train,
    evaluated,
    *,
    allow_overlap: bool = False,
    fix: str = "",
) -> np.ndarray:
    """The training images that are also evaluated; an error unless ``allow_overlap``.

    Parameters
    ----------
    train, evaluated : ImageIds, ImageData or sequence of int
        The images a network trains on and the images it is scored on. Plain ids are compared
        as they are; sets that know their COCO ids are compared by COCO id.
    allow_overlap : bool
        Return the overlap instead of raising (the caller reports it).
    fix : str
        What to do, appended to the message (the config key or argument that removes the
        overlap); a generic advice when empty.

    Returns
    -------
    overlap : (k,) int64
        The shared ids (in the compared space), ascending; empty when disjoint.

    Raises
    ------
    DataFormatError
        When the sets overlap and ``allow_overlap`` is false: names both sets, the number of
        shared images and the first few ids.
    InputError
        When the sets live in id spaces that cannot be compared.
    """
    a = ImageIds.of(train, None if isinstance(train, ImageIds) else "training images")
    b = ImageIds.of(evaluated, None if isinstance(evaluated, ImageIds) else "evaluated images")
    ids_a, ids_b, space = _common_space(a, b)
    overlap = np.intersect1d(ids_a, ids_b)
    if len(overlap) and not allow_overlap:
        more = " …" if len(overlap) > N_EXAMPLES else ""
        raise DataFormatError(
            f"{a.name}: {len(overlap)} of its {len(ids_a)} images are {b.name} ({space} "
            f"{overlap[:N_EXAMPLES].tolist()}{more}); a network must never be trained on the "
            "images it is scored on (the paper trained on COCO minus every NSD image). "
            + (fix or "Train on images without them, or accept the overlap explicitly "
               "(allow_overlap = true; the results then say so).")
        )  # fmt: skip
    return overlap


# --------------------------------------------------------------------------- NSD's images


def nsd_images(root: str | os.PathLike, subjects: Sequence[int] | str = "all") -> ImageIds:
    """The images of an NSD-layout folder (real or virtual), with their COCO ids.

    The NSD→COCO id list comes from the folder's own ``nsd_stim_info_merged.csv``
    (:func:`brainalign.datasets.nsd_coco_ids`); nobody writes it by hand.

    Parameters
    ----------
    root : path
        The NSD folder.
    subjects : "all", "nsd" or list of int
        ``"nsd"``: every NSD image (the 73,000; the paper's training pool leaves them all out).
        ``"all"``: every image a subject saw (what an analysis can score a network on).
        A list: the images those subjects saw (their behavioural files).
    """
    coco_all = datasets.nsd_coco_ids(root)
    if isinstance(subjects, str):
        if subjects == "nsd":
            ids = np.flatnonzero(coco_all >= 0)
            name = f"NSD images of {root}"
        elif subjects == "all":
            ids = np.asarray(datasets.load_stimuli(root, categories=False).image_ids)
            name = f"images the subjects of {root} saw"
        else:
            raise InputError(
                f"subjects: expected 'all', 'nsd' or a list of numbers, got {subjects!r}"
            )
    else:
        seen = [
            datasets.read_responses(root, int(s))["73KID"].to_numpy(dtype=np.int64) - 1
            for s in subjects
        ]
        ids = np.unique(np.concatenate(seen)) if seen else np.array([], dtype=np.int64)
        name = f"images subjects {list(subjects)} of {root} saw"
    ids = np.asarray(ids, dtype=np.int64)
    return ImageIds(ids, "nsd", coco_all[ids], name)


# --------------------------------------------------------------------------- checkpoints


def checkpoint_training_images(path: str | os.PathLike) -> ImageIds | None:
    """The training images a checkpoint recorded (folder or file), or None for an older one."""
    info, where = read_checkpoint_info(path)
    record = info.get("training_images")
    if record is None:
        return None
    images = ImageIds.from_json(record)
    return ImageIds(images.ids, images.id_space, images.coco_ids, f"training images of {where}")


def check_checkpoints(
    checkpoints: Sequence[str | os.PathLike],
    evaluated,
    *,
    allow_overlap: bool = False,
    fix: str = "",
) -> dict[str, int]:
    """:func:`check_disjoint` for each checkpoint's recorded training images.

    A checkpoint without a record (written before brainalign recorded training images), or
    whose images cannot be compared with ``evaluated``, is reported with a warning naming it.

    Returns
    -------
    dict
        Checkpoint → number of overlapping images (only with ``allow_overlap``; else 0s).
    """
    out = {}
    for ckpt in checkpoints:
        record = checkpoint_training_images(ckpt)
        if record is None:
            warnings.warn(
                f"{ckpt}: records no training images (trained by an older brainalign?), so it "
                "cannot be checked for images it is scored on; retrain it to check",
                UserWarning,
                stacklevel=2,
            )
            continue
        try:
            overlap = check_disjoint(record, evaluated, allow_overlap=allow_overlap, fix=fix)
        except InputError as exc:
            warnings.warn(f"{ckpt}: not checked for leakage: {exc}", UserWarning, stacklevel=2)
            continue
        out[str(ckpt)] = int(len(overlap))
    return out


__all__ = [
    "ImageIds",
    "check_checkpoints",
    "check_disjoint",
    "checkpoint_training_images",
    "comparable",
    "nsd_images",
]
