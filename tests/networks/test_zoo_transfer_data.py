from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from brainalign.errors import ConfigError, DataFormatError, InputError, ModelNotFoundError
from brainalign.networks import from_coco, from_hdf5, from_nsd, train
from brainalign.networks.data import nsd_shared_ids
from brainalign.networks.transfer import linear_readout, mean_target_floor
from brainalign.networks.zoo import ZooModel, get_model, list_models, model_features, register_model

# --------------------------------------------------------------------------- zoo


def test_registry_and_config_parsing(tmp_path):
    assert "efficientnet-lite0" in list_models()
    with pytest.raises(ModelNotFoundError, match="not registered"):
        get_model("resnet-9000")
    entry = ZooModel.from_dict(
        {
            "name": "rcnn",
            "kind": "blt",
            "checkpoints": ["runs/s1", "/abs/s2"],
            "training_images": 48236,
        },
        base_dir=tmp_path,
    )
    assert entry.options["checkpoints"] == [str(tmp_path / "runs/s1"), "/abs/s2"]
    with pytest.raises(ConfigError, match="kind"):
        ZooModel.from_dict({"name": "x"})
    with pytest.raises(ConfigError, match="unknown"):
        ZooModel("x", "caffe").instances()
    with pytest.raises(ConfigError, match="arch"):
        ZooModel("r50", "torchvision").instances()


def test_blt_seeds_and_precomputed_features(scene_data, make_net, tmp_path):
    train_data, val = scene_data
    small = train_data.subset(np.arange(24))
    d = small.target("mpnet").shape[1]
    for seed in (1, 2):
        train(
            make_net(d, seed=seed),
            small,
            "mpnet",
            epochs=1,
            batch_size=12,
            random_state=seed,
            checkpoint_dir=tmp_path / f"seed{seed}",
        )
    entry = ZooModel(
        "rcnn", "blt", options={"checkpoints": [str(tmp_path / "seed1"), str(tmp_path / "seed2")]}
    )
    feats = model_features(entry, val.subset(np.arange(8)))
    assert len(feats) == 2 and feats[0].shape == (8, make_net(d).channels[-1])
    assert not np.allclose(feats[0], feats[1])  # two different seeds
    # the same features saved to disk come back by id, in the requested order
    np.save(tmp_path / "f.npy", feats[0])
    np.save(tmp_path / "ids.npy", np.arange(100, 108))
    register_model(
        ZooModel(
            "saved",
            "features",
            options={"path": str(tmp_path / "f.npy"), "ids_path": str(tmp_path / "ids.npy")},
        )
    )
    (back,) = model_features("saved", np.zeros((2, 8, 8, 3), np.uint8), ids=[107, 100])
    np.testing.assert_array_equal(back, feats[0][[7, 0]])
    with pytest.raises(DataFormatError, match="no features"):
        model_features("saved", np.zeros((1, 8, 8, 3), np.uint8), ids=[5])


# --------------------------------------------------------------------------- transfer


def test_linear_readout_recovers_a_linear_map(rng):
    X = rng.standard_normal((400, 20)).astype(np.float32)
    W = rng.standard_normal((20, 8)).astype(np.float32)
    Y = X @ W + 2.0  # an offset gives the mean-target floor something to find
    res = linear_readout(X[:300], Y[:300], X[300:], Y[300:], epochs=60, lr=0.05)
    assert res["cosine"] > 0.97
    assert res["floor"] == pytest.approx(mean_target_floor(Y[:300], Y[300:]))
    assert res["cosine"] > res["floor"] + 0.1
    # the floor is the cosine between the mean training target and each test target
    m = Y[:300].mean(0)
    ref = np.mean(Y[300:] @ m / (np.linalg.norm(Y[300:], axis=1) * np.linalg.norm(m)))
    assert res["floor"] == pytest.approx(ref, rel=1e-6)
    # the returned weights act on the raw (unstandardised) features
    pred = X[300:] @ res["weight"].T + res["bias"]
    cos = np.sum(pred * Y[300:], 1) / (
        np.linalg.norm(pred, axis=1) * np.linalg.norm(Y[300:], axis=1)
    )
    np.testing.assert_allclose(cos, res["per_image"], atol=1e-4)


def test_linear_readout_with_bce_starts_at_the_floor_and_learns_categories(rng):
    """BCE on 0/1 targets from the constant floor: the held-out loss starts at the floor's
    (each category's training frequency) and falls; a feature constant on the training images
    does not blow up on others (it is only centred)."""
    X = rng.standard_normal((300, 12)).astype(np.float32)
    Y = (X[:, :4] + 0.5 * rng.standard_normal((300, 4)) > 0.5).astype(np.float32)
    X[:200, -1] = 1.0  # constant on the training images, not on the held-out ones
    res = linear_readout(
        X[:200], Y[:200], X[200:], Y[200:], loss="bce", bias_init="mean", epochs=30, lr=0.05,
        eps=1e-8,
    )  # fmt: skip
    p = np.clip(Y[:200].mean(0), 1e-4, 1 - 1e-4)
    floor = -np.mean(Y[200:] * np.log(p) + (1 - Y[200:]) * np.log(1 - p))
    assert res["initial"]["val_loss"] == pytest.approx(floor, rel=1e-4)
    assert len(res["history"]) == 30 and [h["epoch"] for h in res["history"]][:2] == [0, 1]
    assert res["history"][-1]["val_loss"] < 0.7 * floor
    z = X[200:] @ res["weight"].T + res["bias"]
    bce = np.mean(np.logaddexp(0, z) - Y[200:] * z)
    assert bce == pytest.approx(res["history"][-1]["val_loss"], rel=1e-3)
    with pytest.raises(InputError, match="loss: expected 'cosine' or 'bce'"):
        linear_readout(X[:10], Y[:10], X[10:20], Y[10:20], loss="mse")


# --------------------------------------------------------------------------- data sources


def test_hdf5_source_reads_lazily_in_any_order(tmp_path, rng):
    imgs = (rng.random((9, 16, 16, 3)) * 255).astype(np.uint8)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["imgBrick"] = imgs
        f["emb"] = rng.standard_normal((9, 4)).astype(np.float32)
    data = from_hdf5(tmp_path / "s.h5", targets={"mpnet": "emb"}, indices=[8, 2, 5])
    np.testing.assert_array_equal(data.load_images([2, 0, 0]), imgs[[5, 8, 8]])
    with h5py.File(tmp_path / "s.h5") as f:
        np.testing.assert_array_equal(data.target("mpnet"), f["emb"][:][[8, 2, 5]])
    with pytest.raises(DataFormatError, match="no dataset"):
        from_hdf5(tmp_path / "s.h5", images_key="images")


@pytest.mark.shared_data
def test_coco_folder_source(shared_data):
    root = shared_data / "coco_mini"
    data = from_coco(root, "train2017", targets=("multihot",))
    inst = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    assert len(data) == len(inst["images"]) and len(data.category_names) == 80
    first = data.ids[0]
    cats = {a["category_id"] for a in inst["annotations"] if a["image_id"] == first}
    cat_ids = sorted(c["id"] for c in inst["categories"])
    assert set(np.array(cat_ids)[data.target("multihot")[0] == 1]) == cats
    img = data.load_images([0])
    assert img.shape == (1, 256, 256, 3) and img.dtype == np.uint8
    fewer = from_coco(root, "train2017", targets=("multihot",), exclude_ids=data.ids[:5])
    assert len(fewer) == len(data) - 5 and not set(data.ids[:5]) & set(fewer.ids)
    with pytest.raises(DataFormatError, match="no COCO annotations"):
        from_coco(root, "test2099")
    with pytest.raises(InputError, match="encoder"):
        from_coco(root, "train2017", targets=("mpnet",))


def test_nsd_source_never_includes_shared_images(virtual_nsd_root):
    shared = nsd_shared_ids(virtual_nsd_root)
    data = from_nsd(virtual_nsd_root, targets=("multihot",))
    assert len(shared) > 0 and not set(shared.tolist()) & set(data.ids.tolist())
    assert data.target("multihot").shape == (len(data), len(data.category_names))
    assert data.load_images([0]).dtype == np.uint8


def test_blt_models_read_through_the_papers_test_time_crop_on_request(make_net, tmp_path):
    """compare-models' ``test_time_crop = true``: the paper code's random crop at test time,
    seeded (the same features twice), unlike the default whole-image read."""
    from brainalign.networks import save_checkpoint

    save_checkpoint(tmp_path / "seed1", make_net(4), step=0, metadata={})
    images = np.random.default_rng(0).integers(0, 255, (6, 64, 64, 3), dtype=np.uint8)
    plain = ZooModel("rcnn", "blt", options={"checkpoints": [str(tmp_path / "seed1")]})
    crop = ZooModel("rcnn", "blt", options={**plain.options, "test_time_crop": True})
    whole = model_features(plain, images)[0]
    cropped = model_features(crop, images)[0]
    assert not np.allclose(whole, cropped)
    np.testing.assert_array_equal(cropped, model_features(crop, images)[0])
