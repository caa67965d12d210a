"""Networks train on a pool of images no subject sees, and the split is checked (issue: the
leak of networks trained on the images they are scored on)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainalign.datasets import load_stimuli, nsd_coco_ids
from brainalign.errors import ConfigError, DataFormatError
from brainalign.networks.data import from_coco
from brainalign.pipeline.analyses.networks import (
    _training_and_validation,
    train_network,
    training_pool,
)
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.demo import QUICK_OVERRIDES
from brainalign.pipeline.study import run_study


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    q = copy.deepcopy(QUICK_OVERRIDES)
    cfg = validate_config(
        {
            "data": {"kind": "virtual", **q["data"]},
            "features": {"spaces": ["minilm", "multihot"]},
            "analyses": {
                "roi_rsa": {"enabled": False},
                "model_comparison": {"enabled": False},
                "searchlight": {"enabled": False},
                "encoding": {"enabled": False},
                "insilico": {"enabled": False},
                "decoding": {"enabled": False},
                "networks": {**q["analyses"]["networks"], "epochs": 1},
            },
            "output": {"dir": str(tmp_path_factory.mktemp("pool") / "run")},
        }
    )
    run_study(cfg, report=True)
    return cfg


def test_networks_train_only_on_the_pool(pool_run):
    out = pool_run.output.dir
    table = pd.read_csv(out / "tables" / "network_training_images.csv")
    assert list(table.columns) == ["image_id", "target", "seed"]
    assert set(table["target"]) == {"mpnet", "multihot"} and set(table["seed"]) == {0}
    root = pool_run.data.root
    nsd = nsd_coco_ids(root)
    evaluated = np.asarray(load_stimuli(root, categories=False).metadata["coco_ids"])
    assert not np.isin(table["image_id"], nsd).any()
    assert not np.isin(table["image_id"], evaluated).any()
    pool = json.loads((out / "network_training_pool.json").read_text())
    assert pool["n_found"] == 48 and pool["n_kept"] == 48 and pool["n_overlap_with_evaluated"] == 0
    # 10 % held out for validation, the same images for every seed: the rest trained
    assert len(table[table["target"] == "multihot"]) == 48 - max(8, 48 // 10)
    html = (out / "report.html").read_text()
    assert "None of them is an image the study evaluates (checked)" in html


def _nsd_images_as_coco_folder(root, folder, n=10):
    """A 'training pool' that is really NSD images (what the leak check must catch)."""
    stim = load_stimuli(root)
    coco = np.asarray(stim.metadata["coco_ids"])[:n]
    (folder / "train2017").mkdir(parents=True)
    (folder / "annotations").mkdir()
    images = stim.images(stim.image_ids[:n])
    for cid, img in zip(coco, images, strict=True):
        Image.fromarray(img).save(folder / "train2017" / f"{cid:012d}.jpg")
    doc = {
        "images": [{"id": int(c), "file_name": f"{c:012d}.jpg"} for c in coco],
        "annotations": [
            {"image_id": int(c), "id": k + 1, "caption": stim.captions[k][0]}
            for k, c in enumerate(coco)
        ],
    }
    (folder / "annotations" / "captions_train2017.json").write_text(json.dumps(doc))
    instances = {
        "images": doc["images"],
        "annotations": [
            {"image_id": int(c), "id": k + 1, "category_id": 1 + k % 2} for k, c in enumerate(coco)
        ],
        "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}],
    }
    (folder / "annotations" / "instances_train2017.json").write_text(json.dumps(instances))
    return coco


def test_a_pool_of_evaluated_images_fails_loudly_unless_allowed(pool_run, tmp_path):
    root = str(pool_run.data.root)
    coco = _nsd_images_as_coco_folder(pool_run.data.root, tmp_path / "leaky")
    params = {"root": root, "pool": str(tmp_path / "leaky"), "split": "train2017"}
    with pytest.raises(DataFormatError, match="no image of .* is left once the NSD images"):
        training_pool({**params, "allow_overlap": False}, {}, {})
    res = training_pool({**params, "allow_overlap": True}, {}, {})
    assert res["n_overlap"] == len(coco) and res["n_nsd_excluded"] == 0


def test_a_network_trained_on_evaluated_images_is_stopped_by_name(pool_run, tmp_path):
    """The pipeline's training stage runs the leak check itself (networks.train(evaluated=)):
    a pool that holds evaluated images (as one kept under allow_overlap) stops it."""
    root = str(pool_run.data.root)
    coco = _nsd_images_as_coco_folder(pool_run.data.root, tmp_path / "leaky", n=12)
    pool_params = {"root": root, "pool": str(tmp_path / "leaky"), "split": "train2017"}
    pool = training_pool({**pool_params, "allow_overlap": True}, {}, {})
    params = {
        **pool_params, "encoder": "all-MiniLM-L6-v2", "name": "multihot_seed0",
        "target": "multihot", "seed": 0, "epochs": 1, "batch_size": 2, "image_size": 64,
        "width": 0.0625, "timesteps": 2, "layers": 10, "learning_rate": 1e-3,
        "validation_split": None, "validation_size": 4, "allow_overlap": False,
        "test_time_crop": False,
    }  # fmt: skip
    ctx = {"work_dir": str(tmp_path / "work"), "device": "cpu"}
    with pytest.raises(DataFormatError) as err:
        train_network(params, {"pool": pool}, ctx)
    msg = str(err.value)
    assert f"8 of its 8 images are images the subjects of {root} saw (COCO ids" in msg
    assert sum(str(int(c)) in msg for c in coco) == 5  # the first five shared ids
    assert not (tmp_path / "work" / "networks").exists()  # stopped before the first step


def _split_pool(pool, folder, n_val=8):
    """The virtual pool re-laid as COCO's two splits: train2017 and a val2017 of ``n_val``."""
    import shutil

    pool = Path(pool)
    docs = {k: json.loads((pool / "annotations" / f"{k}_train2017.json").read_text())
            for k in ("captions", "instances")}  # fmt: skip
    images = sorted(docs["captions"]["images"], key=lambda im: im["id"])
    parts = {"val2017": images[:n_val], "train2017": images[n_val:]}
    (folder / "annotations").mkdir(parents=True)
    for split, members in parts.items():
        (folder / split).mkdir()
        ids = {im["id"] for im in members}
        for im in members:
            shutil.copy(pool / "train2017" / im["file_name"], folder / split / im["file_name"])
        for kind, doc in docs.items():
            part = {**doc, "images": members,
                    "annotations": [a for a in doc["annotations"] if a["image_id"] in ids]}  # fmt: skip
            (folder / "annotations" / f"{kind}_{split}.json").write_text(json.dumps(part))
    return {k: sorted(im["id"] for im in v) for k, v in parts.items()}


def test_with_a_validation_split_every_seed_trains_on_the_whole_pool(pool_run, tmp_path):
    """The paper: train on COCO train2017 minus NSD, validate on val2017 minus NSD."""
    root = str(pool_run.data.root)
    ids = _split_pool(Path(root) / "training_pool", tmp_path / "coco")
    pool_params = {"root": root, "pool": str(tmp_path / "coco"), "split": "train2017"}
    pool = training_pool({**pool_params, "allow_overlap": False}, {}, {})
    params = {
        **pool_params, "encoder": "all-MiniLM-L6-v2", "target": "multihot", "epochs": 1,
        "batch_size": 8, "image_size": 32, "width": 0.0625, "timesteps": 2, "layers": 4,
        "learning_rate": 1e-3, "validation_split": "val2017", "validation_size": 0.1,
        "allow_overlap": False, "test_time_crop": False,
    }  # fmt: skip
    ctx = {"work_dir": str(tmp_path / "work"), "device": "cpu"}
    res = train_network({**params, "seed": 0, "name": "m0"}, {"pool": pool}, ctx)
    assert sorted(res["train_ids"].tolist()) == ids["train2017"]  # the whole pool
    assert sorted(res["val_ids"].tolist()) == ids["val2017"]
    assert res["history"][-1]["val_cosine"] is not None
    # the split does not depend on the seed: any seed trains on the whole pool
    data_all = from_coco(params["pool"], "train2017", targets=["multihot"])
    for seed in (1, 7):
        train, val = _training_and_validation(data_all, {**params, "seed": seed}, None)
        assert sorted(train.ids.tolist()) == ids["train2017"]
        assert sorted(val.ids.tolist()) == ids["val2017"]
    # without a validation split: one held-out part of the pool, the same for every seed
    held = {
        seed: _training_and_validation(
            data_all, {**params, "validation_split": None, "seed": seed}, None
        )[1].ids.tolist()
        for seed in (0, 3)
    }
    assert held[0] == held[3] and len(held[0]) == 8


# ------------------------------------------------------------- transfer variant (a backbone)
def _readout_params(root, pool, **kw):
    return {
        "root": root, "pool": pool, "split": "train2017", "encoder": "all-MiniLM-L6-v2",
        "name": "multihot_seed0", "target": "multihot", "seed": 0, "epochs": 8,
        "batch_size": 8, "image_size": 64, "width": 0.0625, "timesteps": 2, "layers": 10,
        "learning_rate": 1e-2, "validation_split": None, "validation_size": 8,
        "allow_overlap": False, "test_time_crop": False, "backbone": "efficientnet-lite0", **kw,
    }  # fmt: skip


def test_a_readout_network_on_evaluated_images_is_stopped_by_name(pool_run, tmp_path):
    """The transfer variant runs the same leak check as the trained networks."""
    root = str(pool_run.data.root)
    _nsd_images_as_coco_folder(pool_run.data.root, tmp_path / "leaky", n=12)
    params = _readout_params(root, str(tmp_path / "leaky"), validation_size=4)
    pool = training_pool({**params, "allow_overlap": True}, {}, {})
    with pytest.raises(DataFormatError, match="8 of its 8 images are images the subjects"):
        train_network(params, {"pool": pool, "pool_features": {}, "backbone": {}}, {})


def test_a_readout_network_learns_its_target_from_the_backbone_features(pool_run):
    """Features that carry the categories (plus noise): the readout's held-out BCE falls below
    the constant floor and below its shuffled-target control's; its output on the study's
    images is the network's representation (one row per image, logits per category)."""
    root = str(pool_run.data.root)
    params = _readout_params(root, str(Path(root) / "training_pool"))
    pool = training_pool(params, {}, {})
    data = from_coco(params["pool"], "train2017", targets=["multihot"])
    rng = np.random.default_rng(0)
    Y = data.target("multihot").astype(np.float32)
    X_pool = np.hstack([Y, np.zeros((len(Y), 5))]) @ rng.normal(size=(Y.shape[1] + 5, 40))
    X_pool += 0.3 * rng.normal(size=X_pool.shape)
    ids = load_stimuli(root, categories=False).image_ids
    inputs = {
        "pool": pool,
        "pool_features": {"X": X_pool, "ids": np.asarray(data.ids)},
        "backbone": {"X": rng.normal(size=(len(ids), 40)), "ids": ids},
    }
    res = train_network(params, inputs, {})
    ctrl = train_network({**params, "shuffled": True}, inputs, {})
    assert res["X"].shape == (len(ids), Y.shape[1]) and np.array_equal(res["ids"], ids)
    assert res["layer"] == "efficientnet-lite0 → linear readout" and "X" not in ctrl
    assert len(res["history"]) == 8 and res["history"][-1]["epoch"] == 7
    bce = np.mean(res["val_score"])
    assert res["history"][-1]["val_loss"] < 0.8 * res["initial"]["val_loss"]
    assert bce < 0.8 * np.mean(res["floor_score"]) and bce < np.mean(ctrl["val_score"])


def test_the_pool_features_are_the_backbones_features_of_every_pool_image(pool_run):
    from brainalign.networks.zoo import model_features
    from brainalign.pipeline.analyses.networks import pool_features

    root = str(pool_run.data.root)
    params = {"pool": str(Path(root) / "training_pool"), "split": "train2017"}
    pool = training_pool({**params, "root": root, "allow_overlap": False}, {}, {})
    out = pool_features({**params, "model": "efficientnet-lite0"}, {"pool": pool}, {})
    data = from_coco(params["pool"], "train2017", targets=())
    assert np.array_equal(out["ids"], data.ids) and out["X"].shape == (48, 1280)
    direct = model_features("efficientnet-lite0", data.subset(np.arange(3)), verbose=False)[0]
    np.testing.assert_allclose(out["X"][:3], direct, atol=1e-5)


def test_a_backbone_plans_its_features_and_an_unknown_one_is_named(tmp_path):
    from brainalign.pipeline.plan import build_plan

    q = copy.deepcopy(QUICK_OVERRIDES)
    base = {
        "data": {"kind": "virtual", **q["data"]},
        "features": {"spaces": ["multihot"]},
        "analyses": {
            "roi_rsa": {"enabled": False}, "model_comparison": {"enabled": False},
            "searchlight": {"enabled": False}, "encoding": {"enabled": False},
            "insilico": {"enabled": False}, "decoding": {"enabled": False},
            "weighted_rsa": {"enabled": False}, "variance_partitioning": {"enabled": False},
            "networks": {**q["analyses"]["networks"], "backbone": "efficientnet-lite0"},
        },
        "output": {"dir": str(tmp_path / "run")},
    }  # fmt: skip
    plan = build_plan(validate_config(base))
    net = next(t for t in plan.analyses["networks"].values() if t.stage == "train_network")
    assert net.deps["pool_features"].stage == "pool_features"
    assert net.deps["backbone"].stage == "zoo_features"
    assert net.deps["backbone"].params["model"] == "efficientnet-lite0"
    # the backbone is read for the networks, not scored as a model of its own
    assert "efficientnet-lite0" not in plan.vision_models
    bad = copy.deepcopy(base)
    bad["analyses"]["networks"]["backbone"] = "efficientnet-lite9"
    with pytest.raises(ConfigError, match="analyses.networks.backbone: 'efficientnet-lite9'"):
        validate_config(bad)


# ------------------------------------------------- Fig. 4b's transfer readouts (quick demo's)
def _transfer_rows(cfg) -> pd.DataFrame:
    return pd.read_csv(cfg.output.dir / "tables" / "transfer.csv", dtype={"seed": str})


def test_the_study_writes_every_transfer_readout_with_its_floor(pool_run):
    """The quick demo's networks run Fig. 4b: a readout per network, seed and target."""
    from brainalign.pipeline.analyses.networks import methods

    net = pool_run.analyses.networks
    assert net.transfer and not net.backbone
    table = _transfer_rows(pool_run)
    seeds = table[table["seed"] != "mean"]
    got = set(zip(seeds["network"], seeds["seed"], seeds["target"], strict=True))
    assert got == {
        (f"net_{n}", str(s), t) for n in net.targets for s in net.seeds for t in net.targets
    }
    assert len(table[table["seed"] == "mean"]) == len(net.targets) ** 2
    assert seeds["cosine"].between(-1, 1).all() and seeds["floor"].between(-1, 1).all()
    np.testing.assert_allclose(seeds["gain"], seeds["cosine"] - seeds["floor"], atol=1e-12)
    n_images = len(load_stimuli(pool_run.data.root, categories=False).image_ids)
    mp = seeds[seeds["target"] == "mpnet"]
    assert (mp["n_test"] == round(net.transfer_test_size * n_images)).all()
    assert (mp["n_train"] + mp["n_test"] == n_images).all()
    html = (pool_run.output.dir / "report.html").read_text()
    assert "held-out cosine similarity of a linear readout from each frozen network" in html
    assert any(
        line.startswith("Transfer readouts (Fig. 4b): for each") for line in methods(pool_run)
    )


def test_a_transfer_readout_reads_the_networks_last_layer_and_the_floor_of_its_split(pool_run):
    """The readout's input is the frozen network's last layer at the last timestep, spatially
    pooled, on the study's images (recomputed from its checkpoint); the table's floor and
    cosine are those of the same split recomputed here."""
    from brainalign.networks import activations
    from brainalign.networks.checkpoint import load_network
    from brainalign.networks.transfer import linear_readout, mean_target_floor
    from brainalign.pipeline.analyses.networks import transfer_split
    from brainalign.pipeline.cache import StageCache
    from brainalign.pipeline.core import all_tasks
    from brainalign.pipeline.plan import build_plan

    net_cfg = pool_run.analyses.networks
    cache = StageCache(pool_run.output.dir / "cache" / "stages", create=False)
    table = _transfer_rows(pool_run)
    stim = load_stimuli(pool_run.data.root)
    tasks = [
        t for t in all_tasks(build_plan(pool_run).targets)
        if t.stage == "transfer_readout" and t.id.model == "net_multihot"
    ]  # fmt: skip
    # one network (the first seed's), read toward each target
    assert len(tasks) == 2 and tasks[0].deps["network"].key == tasks[1].deps["network"].key
    net = cache.load("train_network", tasks[0].deps["network"].key)
    direct = activations(
        load_network(net["checkpoint"]), lambda i: np.asarray(stim.images(np.asarray(i))),
        layers="last", ids=stim.image_ids, verbose=False,
    )  # fmt: skip
    X = next(iter(direct.values()))
    np.testing.assert_allclose(net["X"], X, atol=1e-5)
    assert np.array_equal(net["ids"], stim.image_ids)
    for t in tasks:
        # the target: the study's feature space the plan names (the mpnet target: the networks'
        # embedding space), as computed for the study
        assert t.deps["target"].params["name"] == (
            net_cfg.embedding_space if t.params["target"] == "mpnet" else "multihot"
        )
        Y = cache.load("features", t.deps["target"].key)
        split = transfer_split(X, stim.image_ids, Y["X"], Y["ids"], net_cfg.transfer_test_size)
        assert np.array_equal(cache.load("transfer_readout", t.key)["test_ids"], split["test_ids"])
        (row,) = [
            r for _, r in table.iterrows()
            if (r["network"], r["seed"], r["target"])
            == ("net_multihot", str(t.params["seed"]), t.params["target"])
        ]  # fmt: skip
        floor = mean_target_floor(split["Y_train"], split["Y_test"])
        assert row["floor"] == pytest.approx(floor, abs=1e-6)
        ref = linear_readout(
            split["X_train"], split["Y_train"], split["X_test"], split["Y_test"],
            sigmoid=t.params["target"] == "multihot", epochs=net_cfg.transfer_epochs,
            batch_size=net_cfg.transfer_batch_size, lr=net_cfg.transfer_learning_rate,
            eps=net_cfg.transfer_eps, random_state=t.params["seed"],
        )  # fmt: skip
        assert row["cosine"] == pytest.approx(ref["cosine"], abs=1e-4)
