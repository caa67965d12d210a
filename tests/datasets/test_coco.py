"""COCO-format folders: readers, SceneSet building, representations, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainalign.datasets._coco_representations import pose_features
from brainalign.datasets.coco import (
    load_coco_folder,
    read_coco_captions,
    read_coco_image,
    read_coco_instances,
)
from brainalign.errors import DataFormatError, InputError

CATS = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
    {"id": 19, "name": "horse", "supercategory": "animal"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
]


def _person_kp(x, y, raised=False):
    """17 COCO keypoints of an upright person whose shoulders sit at (x, y)."""
    pts = np.zeros((17, 3))
    pts[:, 2] = 2
    pts[0] = (x, y - 20, 2)  # nose
    pts[1:5] = (x, y - 25, 2)
    pts[5], pts[6] = (x - 10, y, 2), (x + 10, y, 2)
    pts[7], pts[8] = (x - 12, y + 20, 2), (x + 12, y + 20, 2)
    wy = y - 30 if raised else y + 40
    pts[9], pts[10] = (x - 12, wy, 2), (x + 12, wy, 2)
    pts[11], pts[12] = (x - 8, y + 50, 2), (x + 8, y + 50, 2)
    pts[13], pts[14] = (x - 8, y + 80, 2), (x + 8, y + 80, 2)
    pts[15], pts[16] = (x - 8, y + 110, 2), (x + 8, y + 110, 2)
    return pts.ravel().tolist()


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory) -> Path:
    """A 6-image COCO folder with known boxes: riding vs standing apart, left vs right."""
    root = tmp_path_factory.mktemp("tiny_coco")
    (root / "val2017").mkdir()
    (root / "annotations").mkdir()
    rng = np.random.default_rng(0)
    images, caps, inst, kps = [], [], [], []
    # (person box, horse box) per image: 1-2 person on horse (overlap), 3-4 apart, 5-6 no horse.
    # Boxes lie inside the centre square crop (x in 130..430 of a 560-wide image).
    layouts = {
        1: ([150, 50, 60, 120], [130, 120, 120, 100]),
        2: ([300, 60, 60, 120], [280, 130, 120, 100]),
        3: ([140, 100, 60, 120], [300, 150, 120, 100]),
        4: ([360, 100, 60, 120], [135, 150, 120, 100]),
        5: ([135, 80, 60, 120], None),
        6: ([360, 80, 60, 120], None),
    }
    ann_id = 1
    for i, (pbox, hbox) in layouts.items():
        name = f"{i:012d}.jpg"
        arr = rng.integers(0, 255, (300, 560, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "val2017" / name, quality=90)
        images.append({"id": i, "file_name": name, "width": 560, "height": 300})
        for k in range(5):
            caps.append({"image_id": i, "id": 100 * i + k, "caption": f"image {i} caption {k}"})
        anns = [(1, pbox)] + ([(19, hbox)] if hbox else [])
        for cid, box in anns:
            inst.append({"id": ann_id, "image_id": i, "category_id": cid, "bbox": box, "area": 1.0})
            ann_id += 1
        kps.append(
            {
                "id": ann_id,
                "image_id": i,
                "category_id": 1,
                "bbox": pbox,
                "keypoints": _person_kp(pbox[0] + 30, pbox[1] + 10, raised=i % 2 == 0),
                "num_keypoints": 17,
            }
        )
        ann_id += 1
    base = {"info": {}, "licenses": [], "images": images}
    (root / "annotations" / "captions_val2017.json").write_text(
        json.dumps(dict(base, annotations=caps))
    )
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps(dict(base, annotations=inst, categories=CATS))
    )
    (root / "annotations" / "person_keypoints_val2017.json").write_text(
        json.dumps(dict(base, annotations=kps, categories=CATS[:1]))
    )
    return root


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "coco"
    shutil.copytree(src, dst)
    return dst


# --------------------------------------------------------------------------- synthetic folder


def test_tiny_folder_loads(tiny_coco):
    s = load_coco_folder(tiny_coco)
    assert len(s) == 6
    assert [sc["coco_id"] for sc in s.scenes] == [1, 2, 3, 4, 5, 6]
    assert s.scenes[0]["file"] == "val2017/000000000001.jpg"
    assert s.scenes[0]["split"] == "val2017"
    # Categories in COCO id order.
    assert s.category_names == ["person", "bicycle", "dog", "horse"]
    np.testing.assert_array_equal(s.categories[:, 3], [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(s.categories[:, 0], 1)
    assert s.captions[2] == [f"image 3 caption {k}" for k in range(5)]
    assert {k: v.shape[1] for k, v in s.representations.items()} == {
        "lowlevel": 192,
        "objects": 8,
        "events": 4 + 3 + 8,
        "layout": 45,
    }
    assert all(v.dtype == np.float32 for v in s.representations.values())


def test_tiny_events_see_riding_not_co_occurrence(tiny_coco):
    s = load_coco_folder(tiny_coco)
    ev = s.representations["events"]
    horse_contact = ev[:, 3]
    # Person overlapping a horse (images 1, 2) vs person and horse apart (3, 4).
    assert horse_contact[0] == horse_contact[1] > horse_contact[2] == horse_contact[3]
    # Objects cannot tell riding from standing apart: same categories, same counts.
    obj = s.representations["objects"]
    np.testing.assert_array_equal(obj[0, :4], obj[2, :4])
    # Pose: raised arms in images 2, 4, 6.
    raised = ev[:, 4 + 3 + 1]
    assert raised[1] > raised[0] and raised[3] > raised[2] and raised[5] > raised[4]


def test_tiny_layout_sees_left_and_right(tiny_coco):
    s = load_coco_folder(tiny_coco)
    lay = s.representations["layout"]
    occ = lay[:, :36].reshape(-1, 6, 6)
    # Image 5: person on the left; image 6: person on the right.
    assert occ[4, :, :3].sum() > occ[4, :, 3:].sum()
    assert occ[5, :, 3:].sum() > occ[5, :, :3].sum()


def test_pose_features_reference():
    kp = _person_kp(100, 100, raised=True)
    f = pose_features([{"keypoints": kp, "bbox": [70, 70, 60, 160]}])
    assert f.shape == (8,)
    assert f[0] == pytest.approx(np.log1p(1))
    assert f[1] == 1.0  # both wrists above shoulders
    assert f[3] == pytest.approx(0.0)  # upright torso
    assert f[4] == pytest.approx(0.0)  # nose centred: facing the camera
    np.testing.assert_array_equal(pose_features([]), np.zeros(8))


def test_render_centre_crops(tiny_coco):
    s = load_coco_folder(tiny_coco)
    img = s.render([0], size=300)[0]
    ref = np.asarray(Image.open(tiny_coco / "val2017" / "000000000001.jpg").convert("RGB"))
    np.testing.assert_array_equal(img, ref[:, 130:430])
    small = s.render([0, 1], size=50)
    assert small.shape == (2, 50, 50, 3) and small.dtype == np.uint8


def test_deterministic(tiny_coco):
    a, b = load_coco_folder(tiny_coco), load_coco_folder(tiny_coco)
    assert a.scenes == b.scenes and a.captions == b.captions
    for k in a.representations:
        np.testing.assert_array_equal(a.representations[k], b.representations[k])


def test_readers_match_plain_json(tiny_coco):
    caps = read_coco_captions(tiny_coco / "annotations" / "captions_val2017.json")
    assert caps[4] == [f"image 4 caption {k}" for k in range(5)]
    mh, names = read_coco_instances(tiny_coco / "annotations" / "instances_val2017.json")
    assert names == ["person", "bicycle", "dog", "horse"]
    np.testing.assert_array_equal(mh[1], [1, 0, 0, 1])
    np.testing.assert_array_equal(mh[6], [1, 0, 0, 0])


# --------------------------------------------------------------------------- bad input


def test_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="not found"):
        load_coco_folder(tmp_path / "nope")


def test_folder_without_annotations(tmp_path):
    (tmp_path / "val2017").mkdir()
    with pytest.raises(DataFormatError, match="annotations"):
        load_coco_folder(tmp_path)


def test_folder_without_images(tmp_path):
    (tmp_path / "annotations").mkdir()
    with pytest.raises(DataFormatError, match="no image folders"):
        load_coco_folder(tmp_path)


def test_unknown_split(tiny_coco):
    with pytest.raises(InputError, match="train2017"):
        load_coco_folder(tiny_coco, split="train2017")


def test_truncated_json(tiny_coco, tmp_path):
    root = _copy(tiny_coco, tmp_path)
    path = root / "annotations" / "instances_val2017.json"
    path.write_text(path.read_text()[:500])
    with pytest.raises(DataFormatError, match="instances_val2017.json.*not valid JSON"):
        load_coco_folder(root)
    with pytest.raises(DataFormatError, match="not found"):
        read_coco_captions(root / "annotations" / "missing.json")


def test_json_that_is_not_coco(tmp_path):
    p = tmp_path / "captions.json"
    p.write_text(json.dumps([1, 2, 3]))
    with pytest.raises(DataFormatError, match="JSON list"):
        read_coco_captions(p)
    p.write_text(json.dumps({"annotations": [{"image_id": 1}]}))
    with pytest.raises(DataFormatError, match="caption"):
        read_coco_captions(p)
    p.write_text(json.dumps({"annotations": [], "categories": []}))
    with pytest.raises(DataFormatError, match="categories"):
        read_coco_instances(p)


def test_images_without_captions(tiny_coco, tmp_path):
    root = _copy(tiny_coco, tmp_path)
    Image.new("RGB", (40, 30)).save(root / "val2017" / "000000000099.jpg")
    with pytest.raises(DataFormatError, match=r"1 images have no captions.*caption_files"):
        load_coco_folder(root)
    extra = tmp_path / "more_captions.json"
    extra.write_text(json.dumps({"annotations": [{"image_id": 99, "caption": "a black image"}]}))
    s = load_coco_folder(root, caption_files=[extra])
    assert len(s) == 7 and s.captions[-1] == ["a black image"]
    # Not in the instance file: unknown categories, mean (zero) annotation representations.
    assert s.scenes[-1]["annotated"] is False
    assert s.categories[-1].sum() == 0
    assert not s.representations["objects"][-1].any()
    assert len(load_coco_folder(root, annotated_only=True)) == 6


def test_corrupt_image(tiny_coco, tmp_path):
    root = _copy(tiny_coco, tmp_path)
    path = root / "val2017" / "000000000003.jpg"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match="000000000003.jpg"):
        load_coco_folder(root)
    with pytest.raises(DataFormatError, match="not found"):
        read_coco_image(root / "val2017" / "nope.jpg")


# --------------------------------------------------------------------------- real COCO-MINI


@pytest.fixture(scope="session")
def coco_mini(shared_data):
    return load_coco_folder(
        shared_data / "coco_mini",
        caption_files=[shared_data / "coco_val2017_captions" / "captions_val2017.json"],
    )


@pytest.mark.shared_data
def test_coco_mini_loads(coco_mini, shared_data):
    root = shared_data / "coco_mini"
    n_train = len(list((root / "train2017").glob("*.jpg")))
    n_val = len(list((root / "val2017").glob("*.jpg")))
    assert (n_train, n_val) == (80, 159)
    assert len(coco_mini) == n_train + n_val
    assert [s["split"] for s in coco_mini.scenes].count("val2017") == n_val
    assert coco_mini.categories.shape == (len(coco_mini), 80)
    assert coco_mini.category_names[:3] == ["person", "bicycle", "car"]
    assert coco_mini.category_names[-1] == "toothbrush"
    for name, rep in coco_mini.representations.items():
        assert rep.shape[0] == len(coco_mini) and np.isfinite(rep).all(), name
    assert all(len(c) >= 5 for c in coco_mini.captions)


@pytest.mark.shared_data
def test_coco_mini_categories_match_instances(coco_mini, shared_data):
    ann = shared_data / "coco_mini" / "annotations"
    checked = 0
    for split in ("train2017", "val2017"):
        mh, names = read_coco_instances(ann / f"instances_{split}.json")
        assert names == coco_mini.category_names
        for i, scene in enumerate(coco_mini.scenes):
            if scene["split"] == split and scene["annotated"]:
                np.testing.assert_array_equal(coco_mini.categories[i], mh[scene["coco_id"]])
                checked += 1
    assert checked == 159
    # Plain recomputation of one image's categories from the raw json.
    raw = json.loads((ann / "instances_train2017.json").read_text())
    cid = coco_mini.scenes[0]["coco_id"]
    cat_ids = sorted(c["id"] for c in raw["categories"])
    expected = {cat_ids.index(a["category_id"]) for a in raw["annotations"] if a["image_id"] == cid}
    assert set(np.flatnonzero(coco_mini.categories[0])) == expected


@pytest.mark.shared_data
def test_coco_mini_captions_in_file_order(coco_mini, shared_data):
    raw = json.loads(
        (shared_data / "coco_mini" / "annotations" / "captions_train2017.json").read_text()
    )
    cid = coco_mini.scenes[0]["coco_id"]
    assert coco_mini.captions[0] == [
        a["caption"] for a in raw["annotations"] if a["image_id"] == cid
    ]


@pytest.mark.shared_data
def test_coco_mini_without_extra_captions(shared_data):
    with pytest.raises(DataFormatError, match="80 images have no captions"):
        load_coco_folder(shared_data / "coco_mini")
    val = load_coco_folder(shared_data / "coco_mini", split="val2017", annotated_only=True)
    assert len(val) == 79


@pytest.mark.shared_data
def test_coco_mini_render(coco_mini):
    imgs = coco_mini.render([0, 100], size=425)
    assert imgs.shape == (2, 425, 425, 3) and imgs.dtype == np.uint8
    assert imgs.std() > 10


@pytest.mark.shared_data
def test_coco_mini_representations_follow_annotations(coco_mini):
    annotated = np.array([s["annotated"] for s in coco_mini.scenes])
    obj = coco_mini.representations["objects"][annotated]
    cats = coco_mini.categories[annotated].astype(bool)
    # Count columns are above their minimum only where the category is present, and nearly
    # always there (boxes wholly outside the centre crop are not seen, so not counted).
    above = obj[:, :80] > obj[:, :80].min(0)
    assert not (above & ~cats).any()
    assert (above == cats).mean() > 0.98
    ev = coco_mini.representations["events"][annotated]
    # Person-contact and pose columns vary across real images (keypoints were read).
    assert (ev[:, :80].std(0) > 0).sum() >= 10
    assert (ev[:, -8:].std(0) > 0).all()
    # Unannotated images carry no annotation information.
    assert not coco_mini.representations["layout"][~annotated].any()
