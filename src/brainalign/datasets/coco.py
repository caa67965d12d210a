"""Stimuli from a COCO-format folder: images, captions, categories and planted representations.

The folder follows COCO's own layout::

    FOLDER/
      train2017/000000000790.jpg ...        one folder of jpgs per split
      val2017/...
      annotations/captions_<split>.json     captions (may also come from extra files)
      annotations/instances_<split>.json    boxes and categories (optional per split)
      annotations/person_keypoints_<split>.json   person poses (optional)

The images present on disk define the set. Every image must have captions (from the folder's
caption files or from ``caption_files``). Categories are the 80 COCO categories in COCO order, from
the instance files. Representations are computed from annotations and pixels only (see
:mod:`brainalign.datasets._coco_representations` for what each holds).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from brainalign.datasets._coco_representations import (
    coco_annotation_representations,
    crop_box,
)
from brainalign.datasets._scene_representations import (
    LOWLEVEL_RENDER_SIZE,
    pixel_grid,
    standardise_columns,
)
from brainalign.datasets.scenes import SceneSet
from brainalign.errors import DataFormatError, InputError
from brainalign.utils.io import atomic_path
from brainalign.utils.progress import progress

__all__ = [
    "COCO_91",
    "coco91_columns",
    "load_coco_folder",
    "read_coco_captions",
    "read_coco_instances",
    "read_coco_image",
    "write_coco_annotations",
]

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

#: The 91 COCO category names of the COCO paper in id order (``COCO_91[k]`` has id ``k + 1``);
#: 11 of them (street sign, hat, shoe, eye glasses, plate, mirror, window, desk, door, blender,
#: hair brush) were never annotated. The paper's multi-hot has these 91 columns.
COCO_91: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat",
    "backpack", "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window",
    "desk", "toilet", "door", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush",
)  # fmt: skip


def coco91_columns(category_names) -> np.ndarray:
    """The column of each category name among :data:`COCO_91` (raises for a non-COCO name)."""
    index = {name: k for k, name in enumerate(COCO_91)}
    unknown = [n for n in category_names if n not in index]
    if unknown:
        raise InputError(
            f"category names {unknown[:10]} are not COCO categories; the 91-column multi-hot "
            "needs COCO's names (use columns='categories' for other category sets)"
        )
    return np.array([index[n] for n in category_names], dtype=np.int64)


def _read_json(path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(
            f"{path}: {what} file not found; expected a COCO-format JSON file. Check the path."
        )
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(
            f"{path}: expected a COCO {what} JSON file, but it is not valid JSON ({exc}). "
            "The file may be truncated or corrupt; download it again."
        ) from exc
    if not isinstance(data, dict):
        raise DataFormatError(
            f"{path}: expected a COCO {what} JSON object with 'images' and 'annotations', "
            f"found a JSON {type(data).__name__}"
        )
    return data


def _annotations(data: dict, path, keys: tuple[str, ...], what: str) -> list[dict]:
    anns = data.get("annotations")
    if not isinstance(anns, list):
        raise DataFormatError(
            f"{path}: expected a COCO {what} file with an 'annotations' list, "
            f"found keys {sorted(data)}"
        )
    for k, ann in enumerate(anns):
        if not isinstance(ann, dict) or any(key not in ann for key in keys):
            raise DataFormatError(
                f"{path}: annotation {k} lacks {', '.join(repr(x) for x in keys)} "
                f"(found {sorted(ann) if isinstance(ann, dict) else type(ann).__name__}); "
                f"is this a COCO {what} file?"
            )
    return anns


def read_coco_captions(json_path) -> dict[int, list[str]]:
    """COCO id → captions, in file order.

    Parameters
    ----------
    json_path : str or Path
        A COCO ``captions_*.json`` file.

    Returns
    -------
    captions : dict of int -> list of str
        Only images with at least one caption appear.
    """
    data = _read_json(json_path, "captions")
    out: dict[int, list[str]] = {}
    for ann in _annotations(data, json_path, ("image_id", "caption"), "captions"):
        if not isinstance(ann["caption"], str):
            raise DataFormatError(
                f"{json_path}: caption of image {ann['image_id']} is a "
                f"{type(ann['caption']).__name__}, expected a string"
            )
        out.setdefault(int(ann["image_id"]), []).append(ann["caption"])
    return out


def _categories(data: dict, path) -> list[dict]:
    cats = data.get("categories")
    if (
        not isinstance(cats, list)
        or not cats
        or not all(isinstance(c, dict) and "id" in c and "name" in c for c in cats)
    ):
        raise DataFormatError(
            f"{path}: expected a non-empty 'categories' list of {{'id', 'name', ...}} entries "
            "(a COCO instances file)"
        )
    return sorted(cats, key=lambda c: int(c["id"]))


def read_coco_instances(json_path) -> tuple[dict[int, np.ndarray], list[str]]:
    """COCO id → multi-hot categories, and the category names in COCO order.

    Every image listed in the file's ``images`` appears (an image without annotations gets a
    row of zeros: COCO annotated it and found none of the categories).

    Returns
    -------
    multi_hot : dict of int -> (n_categories,) uint8
    names : list of str
        Category names sorted by COCO category id (80 names for COCO 2017).
    """
    data = _read_json(json_path, "instances")
    cats = _categories(data, json_path)
    col = {int(c["id"]): i for i, c in enumerate(cats)}
    out: dict[int, np.ndarray] = {}
    for im in data.get("images", []):
        out[int(im["id"])] = np.zeros(len(cats), dtype=np.uint8)
    for ann in _annotations(data, json_path, ("image_id", "category_id"), "instances"):
        cid = int(ann["category_id"])
        if cid not in col:
            raise DataFormatError(
                f"{json_path}: annotation {ann.get('id')} has category_id {cid}, which is not in "
                "the file's 'categories'"
            )
        row = out.setdefault(int(ann["image_id"]), np.zeros(len(cats), dtype=np.uint8))
        row[col[cid]] = 1
    return out, [c["name"] for c in cats]


def read_coco_image(path, size: int | None = 425) -> np.ndarray:
    """An image file as RGB, centre-cropped to a square and resized (bicubic).

    Parameters
    ----------
    path : str or Path
    size : int or None
        Side of the output in pixels; None keeps the crop's own size.

    Returns
    -------
    image : (size, size, 3) uint8
    """
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            left, top, side = crop_box(*img.size)
            img = img.crop((left, top, left + side, top + side))
            if size is not None and side != size:
                img = img.resize((int(size), int(size)), Image.Resampling.BICUBIC)
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path}: image file not found") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(
            f"{path}: expected a readable JPEG/PNG image, but it cannot be decoded ({exc}); "
            "the file may be truncated or corrupt"
        ) from exc


class _FolderRenderer:
    """Renders COCO scenes by reading ``folder / scene['file']`` (picklable, no closure)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def __call__(self, scene: dict, size: int = 425) -> np.ndarray:
        return read_coco_image(self.folder / scene["file"], size)


def _image_files(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


def _discover_splits(folder: Path) -> list[str]:
    return sorted(
        d.name
        for d in folder.iterdir()
        if d.is_dir() and d.name != "annotations" and _image_files(d)
    )


def _file_to_id(json_data: dict) -> dict[str, int]:
    return {
        str(im["file_name"]): int(im["id"])
        for im in json_data.get("images", [])
        if isinstance(im, dict) and "file_name" in im and "id" in im
    }


def _image_id(path: Path, names: dict[str, int]) -> int:
    if path.name in names:
        return names[path.name]
    try:
        return int(path.stem)
    except ValueError as exc:
        raise DataFormatError(
            f"{path}: cannot tell this image's COCO id: it is not listed in the annotation files "
            "and its name is not a number (COCO names images like 000000397133.jpg)"
        ) from exc


def write_coco_annotations(
    path_of, scenes: SceneSet, members, coco_ids, *, size: int, suffix: str = ".jpg"
) -> None:
    """Write COCO ``captions`` and ``instances`` files of the scenes ``members``.

    ``path_of(kind)`` is the file of ``kind`` (``"captions"`` or ``"instances"``); images are
    named ``<coco id, 12 digits><suffix>`` and ``size`` pixels square (each category's box is the
    whole image), categories numbered from 1 in column order. :func:`load_coco_folder` reads them.
    """
    names = list(scenes.category_names)
    cats = [{"id": c + 1, "name": n, "supercategory": "scene"} for c, n in enumerate(names)]
    images = [
        {
            "id": int(coco_ids[i]),
            "file_name": f"{int(coco_ids[i]):012d}{suffix}",
            "height": size,
            "width": size,
        }
        for i in members
    ]
    captions, instances = [], []
    for i in members:
        for cap in scenes.captions[i]:
            captions.append({"image_id": int(coco_ids[i]), "id": len(captions) + 1, "caption": cap})
        for c in np.flatnonzero(scenes.categories[i]):
            instances.append(
                {
                    "image_id": int(coco_ids[i]),
                    "id": len(instances) + 1,
                    "category_id": int(c) + 1,
                    "bbox": [0.0, 0.0, float(size), float(size)],
                    "area": float(size * size),
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    info = {"description": "brainalign virtual NSD (COCO format)", "version": "1.0"}
    for kind, anns, extra in (
        ("captions", captions, {}),
        ("instances", instances, {"categories": cats}),
    ):
        doc = {"info": info, "licenses": [], "images": images, "annotations": anns, **extra}
        with atomic_path(path_of(kind)) as tmp:
            tmp.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")


def load_coco_folder(folder, *, split=None, caption_files=(), annotated_only=False) -> SceneSet:
    """Stimuli from a COCO-format folder (e.g. ``../shared/data/coco_mini``).

    Parameters
    ----------
    folder : str or Path
        Folder with one sub-folder of images per split and ``annotations/`` (see module doc).
    split : str, list of str or None
        Which splits to load (``"val2017"``); None loads every split that has images.
    caption_files : sequence of paths
        Extra COCO caption files (e.g. the full ``captions_val2017.json`` when the folder's own
        caption file covers only some images). The folder's files take precedence for an id.
    annotated_only : bool
        Keep only images listed in an instance file (whose categories and boxes are known).

    Returns
    -------
    SceneSet
        Scenes ``{"coco_id", "file", "split", "annotated", "width", "height"}`` sorted by split
        then COCO id (``file`` relative to ``folder``); captions from the json in file order;
        ``categories`` multi-hot over the instance files' categories (80 COCO categories in
        COCO order); ``render`` reads, centre-crops and resizes the image; representations
        ``lowlevel`` (n, 192), ``objects`` (n, 160), ``events`` (n, 100), ``layout`` (n, 45).

    Raises
    ------
    DataFormatError
        Missing folder or annotations, corrupt json, images without captions, instance files
        with different category lists, unreadable images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: COCO folder not found; expected a directory")
    ann_dir = folder / "annotations"
    if not ann_dir.is_dir():
        raise DataFormatError(
            f"{folder}: expected a COCO-format folder with an 'annotations/' sub-folder "
            f"(captions_<split>.json, instances_<split>.json), found {sorted(os.listdir(folder))[:10]}"
        )
    available = _discover_splits(folder)
    if split is None:
        splits = available
    else:
        splits = [split] if isinstance(split, str) else list(split)
        missing = [s for s in splits if s not in available]
        if missing:
            raise InputError(
                f"split: {missing} has no image folder in {folder}; available splits: {available}"
            )
    if not splits:
        raise DataFormatError(
            f"{folder}: no image folders found (expected e.g. {folder}/val2017/*.jpg next to "
            "annotations/)"
        )

    captions: dict[int, list[str]] = {}
    caption_sources = []
    for s in splits:
        path = ann_dir / f"captions_{s}.json"
        if path.exists():
            caption_sources.append(path)
    caption_sources += [Path(p) for p in caption_files]
    for path in caption_sources:
        for cid, caps in read_coco_captions(path).items():
            captions.setdefault(cid, caps)

    scenes, sizes, instances, keypoints = [], [], [], []
    multi_hot_rows = []
    category_list = None
    category_names: list[str] = []
    no_captions = []
    for s in splits:
        inst_path = ann_dir / f"instances_{s}.json"
        kp_path = ann_dir / f"person_keypoints_{s}.json"
        inst_data = _read_json(inst_path, "instances") if inst_path.exists() else None
        kp_data = _read_json(kp_path, "person keypoints") if kp_path.exists() else None
        names = {}
        if inst_data is not None:
            cats = _categories(inst_data, inst_path)
            key = [(int(c["id"]), c["name"]) for c in cats]
            if category_list is None:
                category_list = cats
                category_names = [c["name"] for c in cats]
            elif key != [(int(c["id"]), c["name"]) for c in category_list]:
                raise DataFormatError(
                    f"{inst_path}: its categories differ from those of the other splits' "
                    "instance files; all splits must share one category list"
                )
            names.update(_file_to_id(inst_data))
        by_image: dict[int, list[dict]] = {}
        if inst_data is not None:
            for ann in _annotations(
                inst_data, inst_path, ("image_id", "category_id", "bbox"), "instances"
            ):
                by_image.setdefault(int(ann["image_id"]), []).append(ann)
            listed = {int(im["id"]): im for im in inst_data.get("images", [])}
        else:
            listed = {}
        kp_by_image: dict[int, list[dict]] = {}
        if kp_data is not None:
            for ann in _annotations(
                kp_data, kp_path, ("image_id", "keypoints", "bbox"), "person keypoints"
            ):
                kp_by_image.setdefault(int(ann["image_id"]), []).append(ann)
        files = _image_files(folder / s)
        entries = sorted((_image_id(p, names), p) for p in files)
        for cid, path in entries:
            annotated = cid in listed or cid in by_image
            if annotated_only and not annotated:
                continue
            if cid not in captions:
                no_captions.append(path)
                continue
            meta = listed.get(cid)
            if meta is not None and "width" in meta and "height" in meta:
                w, h = int(meta["width"]), int(meta["height"])
            else:
                try:
                    with Image.open(path) as img:
                        w, h = img.size
                except (UnidentifiedImageError, OSError) as exc:
                    raise DataFormatError(f"{path}: cannot read this image ({exc})") from exc
            scenes.append(
                {
                    "coco_id": cid,
                    "file": path.relative_to(folder).as_posix(),
                    "split": s,
                    "annotated": annotated,
                    "width": w,
                    "height": h,
                }
            )
            sizes.append((w, h))
            instances.append(by_image.get(cid, []) if annotated else None)
            keypoints.append(kp_by_image.get(cid, []))
            multi_hot_rows.append((annotated, by_image.get(cid, [])))
    if no_captions:
        raise DataFormatError(
            f"{folder}: {len(no_captions)} images have no captions, e.g. "
            f"{[str(p) for p in no_captions[:3]]}; searched {[str(p) for p in caption_sources]}. "
            "Pass caption_files=[...] with a COCO captions json that covers them "
            "(e.g. the full captions_val2017.json), or remove those images."
        )
    if category_list is None:
        raise DataFormatError(
            f"{ann_dir}: no instances_<split>.json for splits {splits}; categories and the planted "
            "representations need COCO instance annotations"
        )
    col = {int(c["id"]): i for i, c in enumerate(category_list)}
    categories = np.zeros((len(scenes), len(category_list)), dtype=np.uint8)
    for i, (_, anns) in enumerate(multi_hot_rows):
        for ann in anns:
            if int(ann["category_id"]) in col:
                categories[i, col[int(ann["category_id"])]] = 1

    renderer = _FolderRenderer(folder)
    low = np.empty((len(scenes), 192))
    for i, scene in enumerate(progress(scenes, desc="COCO pixels", unit="img")):
        low[i] = pixel_grid(renderer(scene, LOWLEVEL_RENDER_SIZE)[None])[0]
    reps = {"lowlevel": standardise_columns(low)}
    reps.update(coco_annotation_representations(instances, keypoints, sizes, category_list))
    return SceneSet(
        scenes=scenes,
        captions=[captions[s["coco_id"]] for s in scenes],
        categories=categories,
        category_names=category_names,
        representations=reps,
        renderer=renderer,
    )
