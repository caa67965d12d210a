"""Training data for the image→LLM networks: images plus named targets.

An :class:`ImageData` holds images (an in-memory ``(n, H, W, 3)`` uint8 array, or a loader
``load(indices) -> (len(indices), H, W, 3) uint8`` that reads lazily) and one or more named
target matrices (``"mpnet"``: mean caption embeddings, ``"multihot"``: object categories).
Loaders build one from an array, an HDF5 file, a COCO-format folder, :class:`~brainalign.datasets.
base.Stimuli`, a virtual NSD (its shared/test images are never included) or procedural scenes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from brainalign.errors import DataFormatError, InputError
from brainalign.networks.leakage import ImageIds, _common_space
from brainalign.utils import check_random_state, hash_array, hash_json

ImageLoader = Callable[[np.ndarray], np.ndarray]


class ImageData:
    """Images with named targets, aligned on axis 0.

    Parameters
    ----------
    images : (n, H, W, 3) uint8 array, or callable
        The images, or ``load(indices) -> (len(indices), H, W, 3) uint8`` (then ``n`` comes
        from ``ids`` or the targets).
    targets : mapping of str -> (n, d) array, optional
        Named targets, e.g. ``{"mpnet": E, "multihot": C}``; stored as float32.
    ids : (n,) int, optional
        Image ids (COCO ids, NSD ids, scene indices); default ``arange(n)``.
    name : str
        A label for messages and checkpoints.
    id_space : {"coco", "nsd"} or None
        What ``ids`` are: COCO image ids, 0-based NSD ids, or unknown (the default). The leak
        check (:func:`~brainalign.networks.leakage.check_disjoint`) compares image sets by COCO
        id, or by id within one known space.
    coco_ids : (n,) int, optional
        The COCO id of each image, where known (``-1`` for an image without one).
    """

    def __init__(
        self,
        images: np.ndarray | ImageLoader,
        targets: Mapping[str, np.ndarray] | None = None,
        ids: Sequence[int] | None = None,
        name: str = "",
        id_space: str | None = None,
        coco_ids: Sequence[int] | None = None,
    ):
        self.name = name
        self.id_space = id_space
        self.category_names: list[str] = []
        self.targets = {k: np.asarray(v, dtype=np.float32) for k, v in (targets or {}).items()}
        if callable(images):
            self._array = None
            self._loader = images
            n = len(ids) if ids is not None else None
            if n is None and self.targets:
                n = len(next(iter(self.targets.values())))
            if n is None:
                raise InputError(
                    "ids: a lazy image loader needs ids or targets to know how many images exist"
                )
        else:
            arr = np.asarray(images)
            if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
                raise InputError(
                    f"images: expected an (n, H, W, 3) uint8 array, got shape {arr.shape} dtype {arr.dtype}"
                )
            self._array, self._loader, n = arr, None, len(arr)
        self.ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        if self.ids.shape != (n,):
            raise InputError(f"ids: expected {n} ids (one per image), got shape {self.ids.shape}")
        for key, value in self.targets.items():
            if value.ndim != 2 or len(value) != n:
                raise InputError(
                    f"targets[{key!r}]: expected an ({n}, d) matrix aligned with the images, got {value.shape}"
                )
            if not np.isfinite(value).all():
                raise InputError(f"targets[{key!r}]: contains NaN or infinite values")
        if id_space == "coco" and coco_ids is None:
            coco_ids = self.ids
        self.coco_ids = None if coco_ids is None else np.asarray(coco_ids, dtype=np.int64)
        if self.coco_ids is not None and self.coco_ids.shape != (n,):
            raise InputError(
                f"coco_ids: expected {n} COCO ids (one per image), got shape {self.coco_ids.shape}"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        shapes = {k: v.shape[1] for k, v in self.targets.items()}
        return f"ImageData(name={self.name!r}, n={len(self)}, targets={shapes})"

    def load_images(self, indices) -> np.ndarray:
        """``(len(indices), H, W, 3)`` uint8 images at positions ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        if self._array is not None:
            return self._array[indices]
        out = np.asarray(self._loader(indices))
        if out.ndim != 4 or out.shape[0] != len(indices) or out.dtype != np.uint8:
            raise DataFormatError(
                f"image loader of {self.name or 'ImageData'}: expected ({len(indices)}, H, W, 3) uint8, "
                f"got shape {out.shape} dtype {out.dtype}"
            )
        return out

    def target(self, key: str) -> np.ndarray:
        """The ``(n, d)`` float32 target matrix named ``key``."""
        if key not in self.targets:
            raise InputError(
                f"target: {key!r} is not in this data (has {sorted(self.targets)}); build the data "
                f"with targets=({key!r},) or pass the matrix in targets={{{key!r}: ...}}"
            )
        return self.targets[key]

    def subset(self, indices) -> ImageData:
        """The images at positions ``indices`` (in that order), with their targets and ids."""
        indices = np.asarray(indices, dtype=np.int64)
        if self._array is not None:
            images: np.ndarray | ImageLoader = self._array[indices]
        else:
            loader = self._loader

            def images(sub, _loader=loader, _map=indices):
                return _loader(_map[np.asarray(sub, dtype=np.int64)])

        out = ImageData(
            images,
            {k: v[indices] for k, v in self.targets.items()},
            ids=self.ids[indices],
            name=self.name,
            id_space=self.id_space,
            coco_ids=None if self.coco_ids is None else self.coco_ids[indices],
        )
        out.category_names = list(self.category_names)
        return out

    def without(self, images, *, what: str = "") -> ImageData:
        """These images minus ``images`` (an ImageData, ``ImageIds`` or ids; compared as
        :func:`~brainalign.networks.leakage.check_disjoint` does); ``what`` names them in the
        error raised when nothing is left."""
        mine, other = ImageIds.of(self), ImageIds.of(images)
        _, drop, space = _common_space(mine, other)
        key = mine.coco_ids if space == "COCO ids" else mine.ids
        keep = np.flatnonzero(~np.isin(key, drop))
        if not len(keep):
            raise DataFormatError(
                f"{self.name or 'ImageData'}: none of its {len(self)} images is left once "
                f"{what or other.name} are left out"
            )
        return self.subset(keep)

    def split(self, n_val: int | float = 0.05, random_state=0) -> tuple[ImageData, ImageData]:
        """Random train/validation split; ``n_val`` is a count or a fraction."""
        n = len(self)
        k = int(round(n_val * n)) if isinstance(n_val, float) else int(n_val)
        if not 0 < k < n:
            raise InputError(f"n_val: expected between 1 and {n - 1} validation images, got {k}")
        order = check_random_state(random_state).permutation(n)
        return self.subset(np.sort(order[k:])), self.subset(np.sort(order[:k]))

    def image_ids(self, name: str | None = None):
        """These images as :class:`~brainalign.networks.leakage.ImageIds` (ids, id space,
        COCO ids), e.g. to record what a network trained on."""
        return ImageIds.of(self, name)

    def fingerprint(self) -> str:
        """A hash of the ids and targets (images are identified by ids)."""
        return hash_json(
            {
                "ids": hash_array(self.ids),
                **{k: hash_array(v) for k, v in sorted(self.targets.items())},
            }
        )


# --------------------------------------------------------------------------- targets


def caption_targets(captions: Sequence[Sequence[str]], encoder) -> np.ndarray:
    """Mean sentence embedding of each image's captions, ``(n, d)`` float32 (the paper's target).

    Uses :func:`brainalign.features.caption_embeddings` when available; otherwise any encoder
    with an ``encode(list_of_str) -> (m, d)`` method.
    """
    if encoder is None:
        raise InputError(
            "encoder: caption-embedding targets need a sentence encoder, e.g. "
            'brainalign.features.SentenceEncoder("all-mpnet-base-v2")'
        )
    try:
        from brainalign.features import caption_embeddings
    except ImportError:
        caption_embeddings = None
    if caption_embeddings is not None:
        return np.asarray(caption_embeddings(captions, encoder), dtype=np.float32)
    flat = [c for caps in captions for c in caps]
    emb = np.asarray(encoder.encode(flat), dtype=np.float32)
    edges = np.cumsum([0] + [len(c) for c in captions])
    return np.stack([emb[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:], strict=True)])


def _build_targets(
    targets: Sequence[str] | Mapping[str, np.ndarray],
    captions,
    categories,
    encoder,
    source: str,
) -> dict[str, np.ndarray]:
    if isinstance(targets, Mapping):
        return {k: np.asarray(v, dtype=np.float32) for k, v in targets.items()}
    if isinstance(targets, str):
        targets = (targets,)
    out = {}
    for key in targets:
        if key == "multihot":
            if categories is None:
                raise DataFormatError(f"{source}: has no category annotations for multihot targets")
            out[key] = np.asarray(categories, dtype=np.float32)
        elif key in ("mpnet", "captions", "embedding"):
            if captions is None:
                raise DataFormatError(f"{source}: has no captions for caption-embedding targets")
            out[key] = caption_targets(captions, encoder)
        else:
            raise InputError(
                f"targets: unknown target {key!r}; use 'mpnet' (caption embeddings), 'multihot' "
                "(categories) or pass {name: matrix}"
            )
    return out


# --------------------------------------------------------------------------- loaders


def from_arrays(
    images: np.ndarray,
    targets: Mapping[str, np.ndarray],
    ids=None,
    name="arrays",
    id_space: str | None = None,
    coco_ids=None,
) -> ImageData:
    """Images and targets already in memory (``id_space``/``coco_ids``: see :class:`ImageData`)."""
    return ImageData(images, targets, ids=ids, name=name, id_space=id_space, coco_ids=coco_ids)


def _read_image(path: Path, size: int | None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None:
                w, h = im.size
                side = min(w, h)
                left, top = (w - side) // 2, (h - side) // 2
                im = im.crop((left, top, left + side, top + side)).resize(
                    (size, size), Image.Resampling.BILINEAR
                )
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataFormatError(f"image file {path} is missing; check the folder layout") from None
    except OSError as exc:
        raise DataFormatError(
            f"image file {path} could not be read ({exc}); is it a JPEG/PNG?"
        ) from None


def from_coco(
    root: str | os.PathLike,
    split: str = "train2017",
    targets: Sequence[str] | Mapping[str, np.ndarray] = ("multihot",),
    encoder=None,
    exclude_ids: Sequence[int] | None = None,
    load_size: int = 256,
    require_images: bool = True,
    captions_path: str | os.PathLike | None = None,
    instances_path: str | os.PathLike | None = None,
) -> ImageData:
    """A COCO-format folder: ``root/{split}/*.jpg`` and ``root/annotations/{captions,instances}_{split}.json``.

    Parameters
    ----------
    root : path
        The folder holding ``annotations/`` and ``{split}/``.
    split : str
        e.g. ``"train2017"`` or ``"val2017"``.
    targets : sequence of {"mpnet", "multihot"} or mapping
        ``"mpnet"`` embeds the captions with ``encoder`` (mean over captions); ``"multihot"`` marks
        the categories present in the instance annotations (columns in category-id order).
    encoder : sentence encoder, optional
        Needed for ``"mpnet"``.
    exclude_ids : sequence of int, optional
        COCO ids never to include (e.g. the NSD images, so NSD never enters training).
    load_size : int
        Images are centre-cropped to a square and resized to this side when read.
    require_images : bool
        Keep only images whose file exists (a COCO folder may hold annotations for more images).
    captions_path, instances_path : path, optional
        Annotation files elsewhere than ``root/annotations`` (e.g. the full COCO caption file).

    Returns
    -------
    ImageData
        ``ids`` are COCO image ids, ascending; ``metadata``-like extras are in ``category_names``.
    """
    root = Path(root)
    ann = root / "annotations"
    cap_path = Path(captions_path) if captions_path else ann / f"captions_{split}.json"
    inst_path = Path(instances_path) if instances_path else ann / f"instances_{split}.json"
    images_by_id: dict[int, str] = {}
    captions: dict[int, list[str]] = {}
    categories_json = None
    for path in (cap_path, inst_path):
        if not path.exists():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
        for im in doc.get("images", []):
            images_by_id[int(im["id"])] = im["file_name"]
        if path == cap_path:
            for a in doc.get("annotations", []):
                captions.setdefault(int(a["image_id"]), []).append(a["caption"])
        else:
            categories_json = doc
    if not images_by_id:
        raise DataFormatError(
            f"{root}: found no COCO annotations for split {split!r}; expected {cap_path} or {inst_path}"
        )
    ids = sorted(images_by_id)
    if require_images:
        ids = [i for i in ids if (root / split / images_by_id[i]).exists()]
    if exclude_ids is not None:
        excluded = set(int(i) for i in exclude_ids)
        ids = [i for i in ids if i not in excluded]
    want = [targets] if isinstance(targets, str) else list(targets)
    if not isinstance(targets, Mapping) and any(
        k in ("mpnet", "captions", "embedding") for k in want
    ):
        ids = [i for i in ids if i in captions]
    if not ids:
        raise DataFormatError(
            f"{root}/{split}: no usable images (files present, captions, not excluded)"
        )

    multihot = None
    names: list[str] = []
    if categories_json is not None:
        cats = sorted(categories_json["categories"], key=lambda c: c["id"])
        col = {c["id"]: j for j, c in enumerate(cats)}
        names = [c["name"] for c in cats]
        pos = {i: r for r, i in enumerate(ids)}
        multihot = np.zeros((len(ids), len(cats)), dtype=np.float32)
        for a in categories_json.get("annotations", []):
            r = pos.get(int(a["image_id"]))
            if r is not None:
                multihot[r, col[a["category_id"]]] = 1.0
    files = [root / split / images_by_id[i] for i in ids]

    def load(indices, _files=files, _size=load_size):
        return np.stack([_read_image(_files[int(i)], _size) for i in indices])

    tg = _build_targets(targets, [captions.get(i, []) for i in ids], multihot, encoder, str(root))
    data = ImageData(load, tg, ids=ids, name=f"coco:{root.name}/{split}", id_space="coco")
    data.category_names = names
    return data


def from_hdf5(
    path: str | os.PathLike,
    images_key: str = "imgBrick",
    targets: Mapping[str, str | np.ndarray] | None = None,
    indices: Sequence[int] | None = None,
    ids: Sequence[int] | str | None = None,
    id_space: str | None = "auto",
) -> ImageData:
    """Images in an HDF5 dataset (NSD's ``imgBrick`` layout: ``(n, H, W, 3)`` uint8), read lazily.

    Parameters
    ----------
    path : path
        The HDF5 file.
    images_key : str
        The images' dataset name.
    targets : mapping of str -> dataset name or array
        Targets stored in the same file (by dataset name) or given as arrays (aligned with
        ``indices``).
    indices : sequence of int, optional
        Rows of the file to use (default all).
    ids : sequence of int or str, optional
        Ids of the used rows, or the name of a dataset of the file holding one id per row
        (default: the row numbers).
    id_space : {"auto", "nsd", "coco"} or None
        What the ids are (see :class:`ImageData`). ``"auto"``: NSD ids when the images are NSD's
        brick (``imgBrick``, whose row ``k`` is NSD image ``k``) and the ids are its rows,
        otherwise unknown.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: HDF5 file not found")
    try:
        with h5py.File(path, "r") as f:
            if images_key not in f:
                raise DataFormatError(
                    f"{path}: no dataset {images_key!r}; it has {sorted(f.keys())}"
                )
            shape, dtype = f[images_key].shape, f[images_key].dtype
            rows = np.arange(shape[0]) if indices is None else np.asarray(indices, dtype=np.int64)
            if isinstance(ids, str):
                if ids not in f:
                    raise DataFormatError(
                        f"{path}: no ids dataset {ids!r}; it has {sorted(f.keys())}"
                    )
                ids = np.asarray(f[ids][:], dtype=np.int64)[rows]
            tg = {}
            for k, v in (targets or {}).items():
                if isinstance(v, str):
                    if v not in f:
                        raise DataFormatError(f"{path}: no target dataset {v!r}")
                    tg[k] = np.asarray(f[v][np.sort(rows)], dtype=np.float32)[
                        np.argsort(np.argsort(rows))
                    ]
                else:
                    tg[k] = np.asarray(v, dtype=np.float32)
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8:
        raise DataFormatError(
            f"{path}:{images_key}: expected (n, H, W, 3) uint8, got {shape} {dtype}"
        )

    def load(sub, _rows=rows, _path=path, _key=images_key):
        want = _rows[np.asarray(sub, dtype=np.int64)]
        order = np.argsort(want, kind="stable")
        uniq, inverse = np.unique(want[order], return_inverse=True)
        with h5py.File(_path, "r") as f:
            block = f[_key][uniq]  # h5py needs increasing indices
        out = np.empty((len(want),) + block.shape[1:], dtype=np.uint8)
        out[order] = block[inverse]
        return out

    if id_space == "auto":
        id_space = "nsd" if images_key == "imgBrick" and ids is None else None
    return ImageData(
        load, tg, ids=rows if ids is None else ids, name=f"hdf5:{path.name}", id_space=id_space
    )


def from_stimuli(
    stimuli,
    targets: Sequence[str] | Mapping[str, np.ndarray] = ("mpnet",),
    encoder=None,
    exclude_ids: Sequence[int] | None = None,
    id_space: str | None = "nsd",
) -> ImageData:
    """A :class:`brainalign.datasets.base.Stimuli` with an image reader (``stimuli.images``).

    ``id_space``: what the stimuli's ids are (NSD ids for :func:`brainalign.datasets.
    load_stimuli`); their COCO ids come from ``stimuli.metadata["coco_ids"]`` when present.
    """
    if stimuli.images is None:
        raise DataFormatError("stimuli: has no image reader (stimuli.images is None)")
    keep = np.ones(len(stimuli), dtype=bool)
    if exclude_ids is not None:
        keep &= ~np.isin(stimuli.image_ids, np.asarray(exclude_ids, dtype=np.int64))
    coco = (stimuli.metadata or {}).get("coco_ids")
    coco = None if coco is None or len(coco) != len(keep) else np.asarray(coco, np.int64)[keep]
    stim = stimuli.subset(stimuli.image_ids[keep])
    ids = stim.image_ids
    reader = stim.images

    def load(indices, _ids=ids, _reader=reader):
        return np.asarray(_reader(_ids[np.asarray(indices, dtype=np.int64)]))

    tg = _build_targets(targets, stim.captions, stim.categories, encoder, "stimuli")
    data = ImageData(load, tg, ids=ids, name="stimuli", id_space=id_space, coco_ids=coco)
    data.category_names = list(stim.category_names)
    return data


def nsd_shared_ids(root: str | os.PathLike) -> np.ndarray:
    """0-based NSD ids of the shared test images of an NSD-layout folder (real or virtual).

    ``sharedix`` of ``nsd_expdesign.mat`` (via :func:`brainalign.datasets.read_shared_ids`).
    """
    from brainalign import datasets

    return np.asarray(datasets.read_shared_ids(root), dtype=np.int64)


def from_nsd(
    root: str | os.PathLike,
    targets: Sequence[str] | Mapping[str, np.ndarray] = ("mpnet",),
    encoder=None,
    exclude_ids: Sequence[int] | None = None,
) -> ImageData:
    """Training data from an NSD-layout folder (real or virtual), never including its shared test images.

    The other images are images the subjects saw: a network trained on them and scored on a
    subject who saw them is scored on its training images, which ``brainalign train`` and
    :func:`~brainalign.networks.train` (``evaluated=``) stop. ``exclude_ids`` leaves out more
    NSD ids (e.g. every image the evaluated subjects saw:
    ``leakage.nsd_images(root, [1]).ids``). The data's ids are NSD ids with their COCO ids.
    """
    from brainalign import datasets

    stim = datasets.load_stimuli(root)
    excluded = nsd_shared_ids(root)
    if exclude_ids is not None:
        excluded = np.union1d(excluded, np.asarray(exclude_ids, dtype=np.int64))
    data = from_stimuli(stim, targets, encoder=encoder, exclude_ids=excluded)
    data.name = f"nsd:{Path(root).name}"
    return data


def from_scenes(
    scenes,
    targets: Sequence[str] | Mapping[str, np.ndarray] = ("mpnet",),
    encoder=None,
    image_size: int = 64,
    indices: Sequence[int] | None = None,
) -> ImageData:
    """Procedural scenes (``brainalign.datasets.scenes.make_scenes``): rendered on demand.

    ``scenes`` needs ``captions``, ``categories`` and ``render(indices, size) -> uint8``.
    """
    n = len(scenes.captions)
    rows = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)

    def load(sub, _rows=rows, _scenes=scenes, _size=image_size):
        return np.asarray(_scenes.render(_rows[np.asarray(sub, dtype=np.int64)], _size))

    captions = [scenes.captions[i] for i in rows]
    categories = (
        None if getattr(scenes, "categories", None) is None else np.asarray(scenes.categories)[rows]
    )
    tg = _build_targets(targets, captions, categories, encoder, "scenes")
    return ImageData(load, tg, ids=rows, name="scenes")


__all__ = [
    "ImageData",
    "caption_targets",
    "from_arrays",
    "from_coco",
    "from_hdf5",
    "from_nsd",
    "from_scenes",
    "from_stimuli",
    "nsd_shared_ids",
]
