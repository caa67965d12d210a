"""Training images are never evaluated images (issue 20, "leak check everywhere"): one check,
called by ``brainalign train`` (sources coco, hdf5, nsd), ``networks.train`` and
``compare-models``; each path is stopped by a training image that is evaluated."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from brainalign.datasets import load_stimuli, nsd_coco_ids, read_responses
from brainalign.errors import ConfigError, DataFormatError, InputError
from brainalign.networks import ImageData, train
from brainalign.networks.config import run_train_config
from brainalign.networks.leakage import (
    ImageIds,
    check_disjoint,
    checkpoint_training_images,
    nsd_images,
)

NET = """
[network]
width = 0.0625
timesteps = 2
image_size = 64
"""
TRAIN = """
[train]
target = "multihot"
epochs = 1
batch_size = 4
max_steps = 1
seeds = [1]
out = "runs"
"""


@pytest.fixture(scope="module")
def app():
    from brainalign.cli import _register
    from brainalign.cli import app as root

    _register()
    return root


@pytest.fixture(scope="module")
def stim(virtual_nsd_root):
    return load_stimuli(virtual_nsd_root)


# --------------------------------------------------------------------------- the check


def test_check_names_the_overlap_count_and_ids():
    with pytest.raises(DataFormatError) as err:
        check_disjoint(
            ImageIds([500, 1, 2, 3], "coco", name="training images of pool"),
            ImageIds(np.arange(2, 100), "coco", name="evaluated images"),
        )
    msg = str(err.value)
    assert "training images of pool: 2 of its 4 images are evaluated images" in msg
    assert "COCO ids [2, 3]" in msg and "allow_overlap" in msg
    # more than five shared ids: the first five and an ellipsis
    with pytest.raises(DataFormatError, match=r"COCO ids \[0, 1, 2, 3, 4\] …"):
        check_disjoint(ImageIds(np.arange(9), "coco"), ImageIds(np.arange(9), "coco"))
    np.testing.assert_array_equal(check_disjoint([1, 2, 3], [2, 3, 4], allow_overlap=True), [2, 3])
    assert len(check_disjoint([1], [2])) == 0


def test_sets_are_compared_by_coco_id_across_id_spaces():
    coco = ImageIds([70, 80], "coco", name="pool")
    nsd = ImageIds([0, 1, 2], "nsd", coco_ids=[10, 70, 30], name="NSD")
    with pytest.raises(
        DataFormatError, match=r"pool: 1 of its 2 images are NSD \(COCO ids \[70\]\)"
    ):
        check_disjoint(coco, nsd)
    # NSD ids without COCO ids still meet NSD ids
    with pytest.raises(DataFormatError, match=r"NSD ids \[2\]"):
        check_disjoint(ImageIds([2, 9], "nsd"), nsd)
    with pytest.raises(InputError, match="cannot compare"):
        check_disjoint(ImageIds([2], None), nsd)


def test_nsd_images_come_from_the_folders_stim_info(virtual_nsd_root, stim):
    coco = nsd_coco_ids(virtual_nsd_root)
    every = nsd_images(virtual_nsd_root, "nsd")
    np.testing.assert_array_equal(every.coco_ids, coco[coco >= 0])
    seen = nsd_images(virtual_nsd_root, "all")
    np.testing.assert_array_equal(seen.ids, stim.image_ids)
    np.testing.assert_array_equal(seen.coco_ids, stim.metadata["coco_ids"])
    one = nsd_images(virtual_nsd_root, [1])
    expect = np.unique(read_responses(virtual_nsd_root, 1)["73KID"].to_numpy() - 1)
    np.testing.assert_array_equal(one.ids, expect)
    assert set(one.ids) < set(seen.ids)


# --------------------------------------------------------------------------- networks.train


def _tiny(n=8, ids=None, id_space="nsd", coco_ids=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)
    targets = {"multihot": (rng.random((n, 3)) > 0.5).astype(np.float32)}
    return ImageData(images, targets, ids=ids, id_space=id_space, coco_ids=coco_ids, name="tiny")


def test_train_stops_on_an_evaluated_training_image(make_net, tmp_path):
    data = _tiny(ids=np.arange(100, 108))
    evaluated = ImageIds([3, 104, 500], "nsd", name="the images subject 1 saw")
    with pytest.raises(DataFormatError, match="1 of its 8 images are the images subject 1 saw"):
        train(make_net(3), data, "multihot", evaluated=evaluated, max_steps=1, batch_size=4)
    # a validation image that is also trained on stops it too
    with pytest.raises(DataFormatError, match="validation images of tiny"):
        train(make_net(3), data, "multihot", val_data=data.subset([0, 1]), max_steps=1)
    # accepted explicitly: trained, and the checkpoint records the images and the overlap
    res = train(
        make_net(3), data, "multihot", evaluated=evaluated, allow_overlap=True, max_steps=1,
        batch_size=4, checkpoint_dir=tmp_path / "ck",
    )  # fmt: skip
    info = json.loads(res.checkpoint.read_text())
    assert info["overlap_with_evaluated"] == 1
    record = checkpoint_training_images(tmp_path / "ck")
    assert record.id_space == "nsd" and record.ids.tolist() == list(range(100, 108))
    # without the overlap it trains; left out with ImageData.without
    clean = data.without(evaluated)
    assert len(clean) == 7 and 104 not in clean.ids
    train(make_net(3), clean, "multihot", evaluated=evaluated, max_steps=1, batch_size=4)


# --------------------------------------------------------------------------- brainalign train


def _brick(path, ids, images):
    """An HDF5 file laid out like NSD's brick, with one NSD id per row and multihot targets."""
    with h5py.File(path, "w") as f:
        f["imgBrick"] = images
        f["nsd_ids"] = np.asarray(ids, dtype=np.int64)
        f["multihot"] = (np.arange(len(ids) * 3).reshape(-1, 3) % 2).astype(np.float32)


def test_cli_train_hdf5_stops_on_images_a_subject_saw(app, virtual_nsd_root, stim, tmp_path):
    seen1 = nsd_images(virtual_nsd_root, [1]).ids
    others = np.setdiff1d(stim.image_ids, seen1)[:4]
    ids = np.concatenate([seen1[:4], others])
    _brick(tmp_path / "brick.h5", ids, stim.images(ids)[:, ::7, ::7][:, :60, :60].copy())
    data = f"""
[data]
source = "hdf5"
path = "brick.h5"
targets = {{ multihot = "multihot" }}
ids_key = "nsd_ids"
id_space = "nsd"
n_val = 0
nsd_root = "{virtual_nsd_root}"
evaluated_subjects = [1]
"""
    cfg = tmp_path / "train.toml"
    cfg.write_text(NET + data + TRAIN)
    result = CliRunner().invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code != 0
    msg = str(result.exception)
    assert f"4 of its 8 images are images subjects [1] of {virtual_nsd_root} saw" in msg
    assert f"NSD ids {sorted(seen1[:4].tolist())}" in msg and "data.exclude_evaluated" in msg
    assert not (tmp_path / "runs").exists()  # stopped before any seed trained
    # left out on request: trains on the other subjects' images, and records them
    cfg.write_text(NET + data + "exclude_evaluated = true\n" + TRAIN)
    result = CliRunner().invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    record = checkpoint_training_images(tmp_path / "runs" / "seed1")
    assert sorted(record.ids.tolist()) == sorted(others.tolist()) and record.id_space == "nsd"
    # NSD's brick without naming the NSD folder cannot be checked: it stops
    cfg.write_text(NET + data.replace(f'nsd_root = "{virtual_nsd_root}"', "") + TRAIN)
    with pytest.raises(ConfigError, match="data.nsd_root: the hdf5 images are NSD images"):
        run_train_config(cfg, verbose=False)


def test_cli_train_nsd_source_stops_on_the_subjects_images(app, virtual_nsd_root, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        NET + f'[data]\nsource = "nsd"\nroot = "{virtual_nsd_root}"\nn_val = 0\n' + TRAIN
    )
    result = CliRunner().invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code != 0
    assert "images are images the subjects of" in str(result.exception)
    assert "data.evaluated_subjects" in str(result.exception)


def _coco_folder(folder, stim, nsd_ids, n_new=4):
    """A COCO-layout folder: the NSD images ``nsd_ids`` (under their COCO ids) and ``n_new``
    other images (new COCO ids)."""
    pos = np.searchsorted(stim.image_ids, nsd_ids)
    nsd_coco = np.asarray(stim.metadata["coco_ids"])[pos]
    new_coco = 9_000_000 + np.arange(n_new)
    coco = np.concatenate([nsd_coco, new_coco])
    imgs = stim.images(stim.image_ids[np.arange(len(coco))])
    (folder / "train2017").mkdir(parents=True)
    (folder / "annotations").mkdir()
    for cid, img in zip(coco, imgs, strict=True):
        Image.fromarray(img[::4, ::4]).save(folder / "train2017" / f"{cid:012d}.jpg")
    images = [{"id": int(c), "file_name": f"{c:012d}.jpg"} for c in coco]
    cats = [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}]
    anns = [{"image_id": int(c), "id": k + 1, "category_id": 1 + k % 2} for k, c in enumerate(coco)]
    doc = {"images": images, "annotations": anns, "categories": cats}
    (folder / "annotations" / "instances_train2017.json").write_text(json.dumps(doc))
    return nsd_coco, new_coco


def test_cli_train_coco_leaves_nsd_out_and_compare_models_checks_the_record(
    app, virtual_nsd_root, stim, tmp_path
):
    seen = nsd_images(virtual_nsd_root, [1]).ids[:4]
    nsd_coco, new_coco = _coco_folder(tmp_path / "coco", stim, seen)
    data = '[data]\nsource = "coco"\nroot = "coco"\nn_val = 0\nload_size = 64\n'
    # the paper's pool: with nsd_root every NSD image is left out by COCO id
    (tmp_path / "paper").mkdir()
    cfg = tmp_path / "paper" / "train.toml"
    cfg.write_text(
        NET + data.replace('"coco"\nn_val', '"../coco"\nn_val')
        + f'nsd_root = "{virtual_nsd_root}"\n' + TRAIN
    )  # fmt: skip
    assert CliRunner().invoke(app, ["train", str(cfg), "--quiet"]).exit_code == 0
    record = checkpoint_training_images(tmp_path / "paper" / "runs" / "seed1")
    assert record.id_space == "coco" and sorted(record.coco_ids) == sorted(new_coco.tolist())
    # without nsd_root nothing is left out now: a warning, and the checkpoint records the
    # images, so compare-models stops on the NSD images it would score
    cfg = tmp_path / "train.toml"
    cfg.write_text(NET + data + TRAIN)
    with pytest.warns(UserWarning, match="data.nsd_root is not set"):
        run_train_config(cfg, verbose=False)
    (tmp_path / "compare.toml").write_text(
        f"""
[data]
root = "{virtual_nsd_root}"
subjects = [1, 2]
rois = ["ventral"]

[[models]]
name = "leaky RCNN"
kind = "blt"
checkpoints = ["runs/seed1"]

[output]
dir = "out"
"""
    )
    result = CliRunner().invoke(app, ["compare-models", str(tmp_path / "compare.toml"), "--quiet"])
    assert result.exit_code != 0
    msg = str(result.exception)
    assert "training images of" in msg and "seed1" in msg
    assert f"{len(nsd_coco)} of its 8 images are the images compare-models scores" in msg
    assert "models.'leaky RCNN'" in msg
    assert not (tmp_path / "out" / "table.csv").exists()
    # a checkpoint that records no images cannot be checked: it is named in a warning
    from brainalign.networks.leakage import check_checkpoints

    ckpt = tmp_path / "runs" / "seed1"
    latest = json.loads((ckpt / "latest.json").read_text())["checkpoint"]
    info = json.loads((ckpt / latest).read_text())
    info.pop("training_images")
    (ckpt / latest).write_text(json.dumps(info))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check_checkpoints([ckpt], nsd_images(virtual_nsd_root)) == {}
    assert any("records no training images" in str(w.message) for w in caught)


# --------------------------------------------------------------------------- validation set

SCENES = '[data]\nsource = "scenes"\nn = 24\nrandom_state = 5\nrender_size = 64\n'


def test_cli_train_validates_on_a_separate_set(tmp_path):
    """[validation] is a data source of its own (the paper: COCO val2017 minus NSD): every seed
    trains on the whole of [data]."""
    val = '[validation]\nsource = "scenes"\nn = 8\nrandom_state = 6\nrender_size = 64\n'
    cfg = tmp_path / "train.toml"
    cfg.write_text(NET + SCENES + val + TRAIN.replace("max_steps = 1", "max_steps = 2"))
    (res,) = run_train_config(cfg, verbose=False)
    info = json.loads(res.checkpoint.read_text())
    assert info["data"]["n"] == 24 and info["validation_images"]["n"] == 8
    assert "val_loss" in res.history[-1] and "val_loss" in res.initial
    # a split of [data] and a [validation] section at once: keep one
    cfg.write_text(NET + SCENES + "n_val = 4\n" + val + TRAIN)
    with pytest.raises(ConfigError, match="keep one"):
        run_train_config(cfg, verbose=False)


def test_cli_train_stops_when_validation_images_are_trained_on(virtual_nsd_root, stim, tmp_path):
    _coco_folder(tmp_path / "coco", stim, nsd_images(virtual_nsd_root, [1]).ids[:2])
    data = f'source = "coco"\nroot = "coco"\nload_size = 64\nnsd_root = "{virtual_nsd_root}"\n'
    cfg = tmp_path / "train.toml"
    cfg.write_text(NET + "[data]\n" + data + "[validation]\n" + data + TRAIN)
    with pytest.raises(DataFormatError, match=r"4 of its 4 images are validation images of coco"):
        run_train_config(cfg, verbose=False)


def test_compare_models_api_stops_on_a_checkpoint_trained_on_scored_images(
    make_net, virtual_nsd_root, stim, tmp_path
):
    """The Python API (compare_models) checks each blt checkpoint's recorded images."""
    from brainalign.datasets import load_nsd
    from brainalign.networks import compare_models, from_stimuli
    from brainalign.networks.zoo import ZooModel

    seen = nsd_images(virtual_nsd_root, [2]).ids[:8]
    train(make_net(3), _tiny(ids=seen), "multihot", max_steps=1, batch_size=4,
          checkpoint_dir=tmp_path / "ck")  # fmt: skip
    subjects = [load_nsd(virtual_nsd_root, subject=s) for s in (1, 2)]
    model = ZooModel("rcnn", "blt", options={"checkpoints": [str(tmp_path / "ck")]})
    with pytest.raises(DataFormatError) as err:
        compare_models([model], subjects, from_stimuli(stim, targets={}), rois=["ventral"])
    assert "8 of its 8 images are the images compare-models scores the models on" in str(err.value)
    assert f"NSD ids {sorted(seen[:5].tolist())} …" in str(err.value)
