"""Vision networks as models (paper §7, Fig. 4): BLT networks trained toward caption embeddings
or categories, and the model zoo; each becomes a model the RSA analyses score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from brainalign.datasets import load_stimuli
from brainalign.datasets._training_pool import POOL_FOLDER
from brainalign.errors import ConfigError, DataFormatError
from brainalign.features import SentenceEncoder
from brainalign.pipeline.analysis import (
    Analysis,
    ModelRef,
    ReportSection,
    RunWarning,
    Table,
    run_section,
)
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.pipeline.inputs import encoder_of_space
from brainalign.report import plots
from brainalign.report.html import esc, img_html, maps_html
from brainalign.report.network_plots import transfer_figure
from brainalign.utils.hashing import files_fingerprint, hash_json
from brainalign.utils.settings import ConfigPath, Section

# brainalign.networks imports torch: its functions are imported inside the functions that
# use them, so importing the pipeline (`brainalign run`, `report`) does not load torch

_Positive = Annotated[float, Field(gt=0)]
_PositiveInt = Annotated[int, Field(gt=0)]


class NetworksConfig(Section):
    """``[analyses.networks]``: BLT networks trained on the stimuli, and zoo models."""

    # train the BLT networks of `targets` and score the `zoo` models (false: neither)
    enabled: bool = True
    # what each network learns to predict from an image: its captions' embedding (mpnet) or its
    # categories (multihot); one network per target and seed
    targets: list[Literal["mpnet", "multihot"]] = Field(
        default_factory=lambda: ["mpnet", "multihot"]
    )
    # the caption embeddings the "mpnet" target means (a caption space: mpnet, minilm, st:<model>)
    embedding_space: str = "mpnet"
    # the random seeds of the networks' initialisation and training order: one network per seed
    seeds: list[int] = Field(default_factory=lambda: [0])
    # passes over the training pool (the learning rate follows a cosine schedule over them)
    epochs: _PositiveInt = 4
    # images per training step
    batch_size: _PositiveInt = 32
    # the side in pixels of the square images the networks see (train and test)
    image_size: _PositiveInt = 64
    # channels per layer as a multiple of the paper's (vNet's channels halved): 1.0 is the
    # paper's network; smaller is faster
    width: _Positive = 0.125
    # recurrent timesteps the network is unrolled for (the paper: 6); the readout of the last
    # one is scored
    timesteps: _PositiveInt = 2
    # convolutional layers, the first of vNet's 10 (the paper: 10)
    layers: _PositiveInt = 10
    # the peak learning rate of Adam's cosine schedule
    learning_rate: _Positive = 1e-3
    # pretrained vision models scored as they are, by name (brainalign.networks.zoo: e.g.
    # efficientnet-lite0), beside the trained networks
    zoo: list[str] = Field(default_factory=list)
    #: a COCO-format folder of training images (images + captions_*.json + instances_*.json);
    #: every NSD image is left out by COCO id. Default: a virtual NSD's own training_pool/
    training_pool: ConfigPath | None = None
    # the COCO split of training_pool the networks train on (its captions_<split>.json and
    # instances_<split>.json)
    training_split: str = "train2017"
    #: the validation images: a split of the same folder minus every NSD image (the paper:
    #: "val2017", COCO val minus NSD); every seed then trains on the whole pool. Default: a
    #: held-out part of the pool (validation_size images), the same for every seed
    validation_split: str | None = None
    # without validation_split: the held-out part of the pool, a fraction (< 1) or a number of
    # images (>= 1; at least 8)
    validation_size: _Positive = 0.1
    #: train even on images the study evaluates (a leak: the report says so in red)
    allow_overlap: bool = False
    #: the readout at test time: centre images as they are (False) or the paper's random crop
    #: of at least a third of the area, which its code also applied at test time (True)
    test_time_crop: bool = False
    #: a zoo model (e.g. "efficientnet-lite0") whose frozen features replace the BLT network:
    #: each target's network is then a linear readout trained from the backbone's features of
    #: the pool toward its target (same loss, epochs, batch size and learning rate), and its
    #: output on the study's images is scored. A transfer variant, not the paper's networks
    #: trained from scratch (docs/paper_fidelity.md); the BLT keys above are then unused
    backbone: str | None = None
    #: also train each target's network on shuffled targets (the training images' targets
    #: permuted among them; same images, budget and validation): what a network learns without
    #: the image-target pairing (e.g. the mean caption embedding). One control per target, with
    #: the first seed; its held-out curve is drawn with the trained network's in the report
    shuffled_control: bool = True
    #: the paper's Fig. 4b: a linear readout from each frozen network's last layer and
    #: timestep (spatially pooled) on the study's images toward each target of `targets` (its
    #: own and the other's), scored on the last images (tables/transfer.csv). Not run with a
    #: `backbone`: every network would then read the same frozen features
    transfer: bool = False
    # the transfer readouts' held-out images: the last ones by image id, a number (>= 1; the
    # paper: 2000 of NSD's 73,000) or a fraction (< 1) of the study's images
    transfer_test_size: _Positive = 2000
    # passes of each transfer readout over its training images (the paper: 200; the learning
    # rate follows a cosine schedule over them)
    transfer_epochs: _PositiveInt = 200
    # images per step of a transfer readout (the paper: 96)
    transfer_batch_size: _PositiveInt = 96
    # the transfer readouts' Adam learning rate (the paper: 0.05)
    transfer_learning_rate: _Positive = 0.05
    # the transfer readouts' Adam epsilon (the paper: 0.1)
    transfer_eps: _Positive = 0.1


# ------------------------------------------------------------------------------------- stages
_POOL_FIX = (
    "Use a training pool without them (analyses.networks.training_pool), or accept the overlap "
    "(analyses.networks.allow_overlap = true; the report says so in red)."
)


def _evaluated(root):
    """The images the study scores networks on: every image its subjects saw, with COCO ids."""
    from brainalign.networks.leakage import nsd_images

    return nsd_images(root, "all")


@stage("training_pool")
def training_pool(params, inputs, ctx):
    """The images networks train on: a COCO folder minus every NSD image, checked for overlap.

    Raises
    ------
    DataFormatError
        When a training image is among the images the study evaluates and ``allow_overlap`` is
        false.
    """
    from brainalign.networks.data import from_coco
    from brainalign.networks.leakage import ImageIds, check_disjoint, nsd_images

    found = from_coco(params["pool"], params["split"], targets={})
    nsd = nsd_images(params["root"], "nsd").coco_ids
    ids = np.asarray(found.ids, dtype=np.int64)
    in_nsd = np.isin(ids, nsd)
    keep = ids if params["allow_overlap"] else ids[~in_nsd]
    overlap = check_disjoint(
        ImageIds(keep, "coco", keep, f"the training pool {params['pool']}/{params['split']}"),
        _evaluated(params["root"]),
        allow_overlap=params["allow_overlap"],
        fix=_POOL_FIX,
    )
    if not len(keep):
        raise DataFormatError(
            f"analyses.networks.training_pool: no image of {params['pool']}/{params['split']} "
            "is left once the NSD images are left out"
        )
    return {
        "ids": keep,
        "excluded": np.setdiff1d(ids, keep),
        "n_found": int(len(ids)),
        "n_nsd_excluded": 0 if params["allow_overlap"] else int(in_nsd.sum()),
        "n_overlap": int(len(overlap)),
    }


@stage("train_network")
def train_network(params, inputs, ctx):
    """Train a small BLT network on the training pool toward caption embeddings or categories;
    read its last layer on every image of the study.

    With ``shuffled``, the training images' targets are permuted among them first (validation
    keeps the true targets): the control that shows what the network learns without the
    pairing of images and targets. A control is not a model of the study: it records its
    training only.
    """
    import torch

    from brainalign.networks import BLTNet, activations, layer_name, train
    from brainalign.networks.data import from_coco
    from brainalign.networks.train import default_loss, predict

    torch.manual_seed(params["seed"])
    pool = inputs["pool"]
    kept = np.asarray(pool["ids"])
    allow = bool(params.get("allow_overlap", False))
    device = ctx.get("device", "cpu")
    encoder = (
        SentenceEncoder(params["encoder"], device=device) if params["target"] == "mpnet" else None
    )
    data_all = from_coco(
        params["pool"],
        params["split"],
        targets=[params["target"]],
        encoder=encoder,
        exclude_ids=np.asarray(pool["excluded"]),
    )
    if not np.array_equal(np.asarray(data_all.ids), kept):
        raise DataFormatError(
            f"{params['pool']}: the training pool changed since it was checked; rerun"
        )
    data, val = _training_and_validation(data_all, params, encoder)
    # a small pool is decoded once, not once per epoch (the same pixels: the same training)
    data, val = in_memory(data), in_memory(val)
    shuffled = bool(params.get("shuffled", False))
    if shuffled:
        data = shuffled_targets(data, params["target"], random_state=params["seed"])
    if params.get("backbone"):
        return _train_readout(params, inputs, data, val, shuffled, device)
    T = data_all.target(params["target"])
    net = BLTNet(
        n_outputs=T.shape[1],
        n_layers=params["layers"],
        timesteps=params["timesteps"],
        width=params["width"],
        image_size=params["image_size"],
    )
    ckpt = Path(ctx["work_dir"]) / "networks" / params["name"]
    res = train(
        net,
        data,
        params["target"],
        val_data=val,
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        lr=params["learning_rate"],
        random_state=params["seed"],
        device=device,
        checkpoint_dir=ckpt,
        verbose=False,
        evaluated=_evaluated(params["root"]),
        allow_overlap=allow,
    )
    hist = [
        {
            "epoch": h.get("epoch"),
            "step": h.get("step"),
            "train_loss": h.get("train_loss"),
            "val_loss": h.get("val_loss"),
            "val_cosine": h.get("val_cosine"),
        }
        for h in res.history
    ]
    out = {
        "train_ids": np.asarray(data.ids, np.int64),
        "val_ids": np.asarray(val.ids, np.int64),
        "history": hist,
        "initial": {k: res.initial.get(k) for k in ("val_loss", "val_cosine")},
        "initial_val_cosine": res.initial.get("val_cosine"),
        "steps": int(res.step),
        "checkpoint": str(res.checkpoint),
        **held_out_scores(
            predict(res.net, val, device=device, loss=default_loss(params["target"])),
            data.target(params["target"]),
            val.target(params["target"]),
            params["target"],
        ),
    }
    if shuffled:
        return out
    last = layer_name(params["layers"] - 1, params["timesteps"] - 1)
    stim = load_stimuli(params["root"], categories=False)
    reader = stim.images

    def load_all(ids_):
        return np.asarray(reader(np.asarray(ids_, dtype=np.int64)))

    acts = activations(
        res.net, load_all, layers=[last], ids=stim.image_ids, device=device, verbose=False,
        test_time_crop=bool(params.get("test_time_crop", False)), random_state=params["seed"],
    )  # fmt: skip
    return {
        **out,
        "X": np.asarray(acts[last], np.float32),
        "ids": np.asarray(stim.image_ids, np.int64),
        "layer": last,
    }


#: pools up to this many images are held decoded in memory while a network trains on them
IN_MEMORY_IMAGES = 4000


def in_memory(data, max_images: int = IN_MEMORY_IMAGES):
    """``data`` with its images decoded once into memory when it has at most ``max_images``
    (the same ids, targets and pixels; a larger set is returned as it is, read on demand)."""
    from brainalign.networks.data import ImageData

    if len(data) > max_images:
        return data
    out = ImageData(
        data.load_images(np.arange(len(data))),
        data.targets,
        ids=data.ids,
        name=data.name,
        id_space=data.id_space,
        coco_ids=data.coco_ids,
    )
    out.category_names = list(data.category_names)
    return out


def shuffled_targets(data, target: str, random_state: int = 0):
    """``data`` with the rows of its ``target`` permuted among its images (a fixed permutation
    drawn from ``random_state``): the shuffled-target control's training data."""
    perm = np.random.default_rng(np.random.SeedSequence([int(random_state), 20])).permutation(
        len(data)
    )
    out = data.subset(np.arange(len(data)))
    out.targets = {**out.targets, target: data.target(target)[perm]}
    return out


def held_out_scores(predicted, train_targets, val_targets, target: str) -> dict:
    """Per validation image: how well a trained network's predictions match its target, and
    the floor.

    Parameters
    ----------
    predicted : (n_val, k) array
        The network's predictions for the validation images (probabilities for ``"multihot"``).
    train_targets, val_targets : (n_train, k), (n_val, k) arrays
        The targets of the training and validation images.
    target : {"mpnet", "multihot"}

    Returns
    -------
    dict with ``val_score`` (per image: cosine similarity of the prediction with the target for
    ``"mpnet"``; binary cross-entropy, lower is better, for ``"multihot"``), ``floor_score`` (the
    same for a constant prediction: the mean training target, the paper's Fig. 4b floor; the
    training categories' frequencies for ``"multihot"``), and for ``"multihot"`` ``val_map``
    (mean over categories present in the validation images of the average precision).
    """
    from brainalign.networks.train import default_loss

    P = np.asarray(predicted, np.float64)
    Y = np.asarray(val_targets, np.float64)
    constant = np.broadcast_to(np.asarray(train_targets, np.float64).mean(0), Y.shape)
    if default_loss(target) == "bce":
        out = {"val_score": _bce_rows(P, Y), "floor_score": _bce_rows(constant, Y)}
        return {**out, "val_map": _mean_average_precision(Y, P)}
    return {"val_score": _cosine_rows(P, Y), "floor_score": _cosine_rows(constant, Y)}


def _train_readout(params, inputs, data, val, shuffled: bool, device) -> dict:
    """The transfer variant of :func:`train_network`: a linear readout from a frozen backbone's
    features (``inputs["pool_features"]`` for the pool, ``inputs["backbone"]`` for the study's
    images) toward the target, trained with the network's loss (cosine for caption
    embeddings, binary cross-entropy for categories) and budget; the readout's output on the
    study's images is the network's representation."""
    from brainalign.networks.leakage import check_disjoint
    from brainalign.networks.train import default_loss
    from brainalign.networks.transfer import linear_readout

    target, loss = params["target"], default_loss(params["target"])
    check_disjoint(
        data.image_ids("training images of the pool"), _evaluated(params["root"]),
        allow_overlap=bool(params.get("allow_overlap", False)), fix=_POOL_FIX,
    )  # fmt: skip
    pool = inputs["pool_features"]
    row = {int(i): j for j, i in enumerate(np.asarray(pool["ids"]))}
    X_pool = np.asarray(pool["X"], np.float32)
    X_train = X_pool[[row[int(i)] for i in data.ids]]
    X_val = X_pool[[row[int(i)] for i in val.ids]]
    res = linear_readout(
        X_train, data.target(target), X_val, val.target(target), loss=loss,
        epochs=params["epochs"], batch_size=params["batch_size"], lr=params["learning_rate"],
        # Adam as the networks train (not the paper's Fig. 4b readout, eps 0.1), starting from
        # the constant floor so that the curve shows what the features add to it
        eps=1e-8, bias_init="mean", random_state=params["seed"], device=device,
    )  # fmt: skip

    def readout(X):
        return np.asarray(X, np.float32) @ res["weight"].T + res["bias"]

    def probabilities(z):
        return 1 / (1 + np.exp(-z)) if loss == "bce" else z

    out = {
        "train_ids": np.asarray(data.ids, np.int64),
        "val_ids": np.asarray(val.ids, np.int64),
        "history": res["history"],
        "initial": res["initial"],
        "initial_val_cosine": res["initial"]["val_cosine"],
        "steps": int(res["history"][-1]["step"]) if res["history"] else 0,
        "checkpoint": "",
        **held_out_scores(
            probabilities(readout(X_val)), data.target(target), val.target(target), target
        ),
    }
    if shuffled:
        return out
    study = inputs["backbone"]
    return {
        **out,
        # logits for categories: the readout's linear output, as the trained network's layer
        "X": readout(study["X"]).astype(np.float32),
        "ids": np.asarray(study["ids"], np.int64),
        "layer": f"{params['backbone']} → linear readout",
    }


def _cosine_rows(a, b) -> np.ndarray:
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _bce_rows(p, y, eps: float = 1e-7) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p)).mean(1)


def _mean_average_precision(Y, P) -> float:
    from sklearn.metrics import average_precision_score

    keep = Y.sum(0) > 0
    if not keep.any():
        return float("nan")
    return float(average_precision_score(Y[:, keep], P[:, keep], average="macro"))


def _training_and_validation(data_all, params, encoder):
    """(training, validation) images: the whole pool and a separate split of the folder (the
    paper's COCO val2017 minus NSD), or the pool minus a held-out part that every seed shares."""
    from brainalign.networks.data import from_coco
    from brainalign.networks.leakage import nsd_images

    split = params.get("validation_split")
    if split:
        val = from_coco(
            params["pool"], split, targets=[params["target"]], encoder=encoder,
            exclude_ids=nsd_images(params["root"], "nsd").coco_ids,
        )  # fmt: skip
        return data_all, val
    size = params.get("validation_size", 0.1)
    n_val = int(size) if size >= 1 else max(8, int(round(size * len(data_all))))
    # the same held-out images for every seed (a fixed split, not one per seed)
    return data_all.split(n_val=n_val, random_state=0)


@stage("pool_features")
def pool_features(params, inputs, ctx):
    """Features of a zoo model (the networks' frozen backbone) for every image of the pool."""
    from brainalign.networks.data import from_coco
    from brainalign.networks.zoo import model_features

    data = from_coco(
        params["pool"], params["split"], targets=(),
        exclude_ids=np.asarray(inputs["pool"]["excluded"]),
    )  # fmt: skip
    feats = model_features(params["model"], data, device=ctx.get("device", "cpu"), verbose=False)
    return {"X": _mean_instances(feats), "ids": np.asarray(data.ids, np.int64)}


def _mean_instances(feats) -> np.ndarray:
    """One feature matrix from a zoo model's instances: their mean (one instance: itself)."""
    return np.mean(np.stack([np.asarray(f, np.float32) for f in feats]), axis=0)


@stage("zoo_features")
def zoo_features(params, inputs, ctx):
    """Features of a registered vision model (e.g. EfficientNet-lite0) for every image."""
    from brainalign.networks.zoo import model_features

    stim = load_stimuli(params["root"])
    reader = stim.images

    def load_all(ids_):
        return np.asarray(reader(np.asarray(ids_, dtype=np.int64)))

    feats = model_features(
        params["model"],
        load_all,
        ids=stim.image_ids,
        device=ctx.get("device", "cpu"),
        verbose=False,
    )
    return {"X": _mean_instances(feats), "ids": np.asarray(stim.image_ids, np.int64)}


def transfer_split(X, ids, Y, target_ids, test_size: float) -> dict:
    """The paper's Fig. 4b split of a network's features and a target on the study's images.

    Images in ascending id order; those whose target is all zeros (an image without any
    category: its cosine similarity with anything is undefined) are left out; the last
    ``test_size`` images are held out, as the paper held out the last 2,000 of NSD's 73,000.

    Parameters
    ----------
    X : (n_images, n_features) array
        The network's features, one row per id of ``ids``.
    ids : (n_images,) int array
    Y : (n_target_images, k) array
        The target, one row per id of ``target_ids`` (a superset of ``ids``).
    target_ids : (n_target_images,) int array
    test_size : float
        Held-out images: a number (>= 1) or a fraction (< 1) of the images kept.

    Returns
    -------
    dict with ``X_train``, ``Y_train``, ``X_test``, ``Y_test`` and ``train_ids``, ``test_ids``
    (ascending).

    Raises
    ------
    ConfigError
        When ``test_size`` leaves no training or no held-out image
        (``analyses.networks.transfer_test_size``).
    DataFormatError
        When an image of ``ids`` has no target row.
    """
    ids = np.asarray(ids, np.int64)
    target_ids = np.asarray(target_ids, np.int64)
    row = {int(i): j for j, i in enumerate(target_ids)}
    missing = [int(i) for i in ids if int(i) not in row]
    if missing:
        raise DataFormatError(
            f"transfer readout: {len(missing)} of the network's images have no target "
            f"(e.g. image {missing[0]}); the network and the target must read the same study"
        )
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    X = np.asarray(X, np.float32)[order]
    Y = np.asarray(Y, np.float32)[[row[int(i)] for i in ids]]
    keep = np.linalg.norm(Y, axis=1) > 0
    X, Y, ids = X[keep], Y[keep], ids[keep]
    n = len(ids)
    k = int(test_size) if test_size >= 1 else int(round(test_size * n))
    if not 0 < k < n:
        raise ConfigError(
            f"analyses.networks.transfer_test_size: {test_size} holds out {k} of the study's "
            f"{n} images with a target; give a number between 1 and {n - 1} or a fraction "
            "(e.g. 0.2)"
        )
    return {
        "X_train": X[: n - k],
        "Y_train": Y[: n - k],
        "X_test": X[n - k :],
        "Y_test": Y[n - k :],
        "train_ids": ids[: n - k],
        "test_ids": ids[n - k :],
    }


@stage("transfer_readout")
def transfer_readout(params, inputs, ctx):
    """Fig. 4b: a linear readout from a frozen network's features on the study's images (its
    last layer at the last timestep, spatially pooled: what ``train_network`` recorded) toward
    a target (+ sigmoid for categories), cosine loss; its held-out cosine and the floor."""
    from brainalign.networks.transfer import linear_readout

    net, target = inputs["network"], inputs["target"]
    split = transfer_split(net["X"], net["ids"], target["X"], target["ids"], params["test_size"])
    res = linear_readout(
        split["X_train"], split["Y_train"], split["X_test"], split["Y_test"],
        sigmoid=params["target"] == "multihot", loss="cosine", epochs=params["epochs"],
        batch_size=params["batch_size"], lr=params["learning_rate"], eps=params["eps"],
        random_state=params["seed"], device=ctx.get("device", "cpu"),
    )  # fmt: skip
    return {
        "cosine": res["cosine"],
        "floor": res["floor"],
        "per_image": res["per_image"],
        "history": res["history"],
        "layer": net.get("layer"),
        "train_ids": split["train_ids"],
        "test_ids": split["test_ids"],
    }


# --------------------------------------------------------------------------------------- plan
def pool_folder(cfg) -> str | None:
    """The training pool: the config's, or a virtual NSD's own ``training_pool/``."""
    net = cfg.analyses.networks
    if net.training_pool is not None:
        return str(net.training_pool)
    if cfg.data.kind == "virtual":
        return str(Path(cfg.data.root) / POOL_FOLDER)
    return None


#: scenes in a virtual NSD's training pool when the config does not say
DEFAULT_VIRTUAL_POOL = 500


def data_options(cfg) -> dict:
    """A virtual NSD built for the study gets a training pool (unless a folder is given)."""
    net = cfg.analyses.networks
    if net.targets and net.training_pool is None:
        return {"n_training_pool": DEFAULT_VIRTUAL_POOL}
    return {}


def _pool_inputs(b) -> str:
    """The key of what the training pool is read from: the study's captions (NSD's COCO ids)
    and the pool's annotation files of its split (the images themselves are not fingerprinted:
    a COCO split holds 118,000 of them; ``train_network`` checks the pool it trains on)."""
    cfg = b.config
    pool, split = pool_folder(cfg), cfg.analyses.networks.training_split
    files = [] if pool is None else sorted(Path(pool).glob(f"annotations/*_{split}.json"))
    return hash_json([b.inputs("captions"), files_fingerprint(pool or ".", files)])


def plan(b) -> dict[str, Task]:
    cfg = b.config
    net = cfg.analyses.networks
    targets = {}
    if net.targets:
        pool = Task(
            TaskId("training_pool"),
            {
                "root": b.root,
                "pool": pool_folder(cfg),
                "split": net.training_split,
                "allow_overlap": net.allow_overlap,
                "inputs": _pool_inputs(b),
            },
            {"data": b.plan.data},
        )
        targets["pool"] = pool
    # the transfer variant's backbone features: dependencies of the networks (the backbone is
    # a model of the study only when `zoo` names it too)
    backbone = {}
    if net.targets and net.backbone:
        backbone = {
            "backbone": _zoo_task(b, net.backbone),
            "pool_features": Task(
                TaskId("pool_features", model=net.backbone),
                {"pool": pool_folder(cfg), "split": net.training_split, "model": net.backbone},
                {"pool": pool},
            ),
        }
    for target in net.targets:
        runs = [(sd, False) for sd in net.seeds]
        if net.shuffled_control and net.seeds:
            runs.append((net.seeds[0], True))
        for sd, shuffled in runs:
            model = f"net_{target}" + ("_shuffled" if shuffled else "")
            params = {
                "root": b.root,
                "pool": pool_folder(cfg),
                "split": net.training_split,
                "encoder": encoder_of_space(net.embedding_space, cfg.features.encoder),
                "name": f"{target}_seed{sd}" + ("_shuffled" if shuffled else ""),
                "target": target,
                "seed": sd,
                "epochs": net.epochs,
                "batch_size": net.batch_size,
                "image_size": net.image_size,
                "width": net.width,
                "timesteps": net.timesteps,
                "layers": net.layers,
                "learning_rate": net.learning_rate,
                "validation_split": net.validation_split,
                "validation_size": net.validation_size,
                "allow_overlap": net.allow_overlap,
                "backbone": net.backbone,
            }
            if net.backbone:
                # a readout has no BLT architecture: these keys do not change it
                for key in ("image_size", "width", "timesteps", "layers"):
                    del params[key]
            if shuffled:
                # a control records its training only: it reads no image of the study
                params["shuffled"] = True
            else:
                # the study's images, whose activations it records at the end
                params.update({"test_time_crop": net.test_time_crop, **b.inputs("images")})
            task = Task(
                TaskId("train_network", model=model, instance=f"seed{sd}"),
                params,
                {
                    "data": b.plan.data,
                    "pool": pool,
                    **backbone,
                    # the pool's captions embedded in parallel first (only the caption target)
                    **(
                        b.caption_parts(
                            encoder_of_space(net.embedding_space, cfg.features.encoder),
                            {"pool": pool_folder(cfg), "split": net.training_split},
                        )
                        if target == "mpnet"
                        else {}
                    ),
                },
            )
            targets[task.name] = task
            if not shuffled:
                b.add_model(ModelRef(model, task, instance=f"seed{sd}", vision=True))
    if net.transfer:
        targets.update(_transfer_tasks(b, targets))
    for z in net.zoo:
        task = _zoo_task(b, z)
        targets[task.name] = task
        b.add_model(ModelRef(z, task, vision=True))
    return targets


#: why Fig. 4b's transfer readouts are not run on the transfer variant's networks
TRANSFER_WITH_BACKBONE = (
    "not run: with a backbone every network is a linear readout on the same frozen features, "
    "so a readout from any of them reads those same features and Fig. 4b's comparison between "
    "networks is void"
)


def _transfer_tasks(b, networks: dict[str, Task]) -> dict[str, Task]:
    """Fig. 4b's tasks: one readout per trained network (target and seed) and readout target
    (each of the run's network targets); none with a backbone (the plan says why)."""
    cfg = b.config
    net = cfg.analyses.networks
    if net.backbone:
        b.plan.notes.append(
            RunWarning(
                "networks: transfer readouts (Fig. 4b)",
                TRANSFER_WITH_BACKBONE,
                "analyses.networks.backbone",
            )
        )
        return {}
    space = {"mpnet": net.embedding_space, "multihot": "multihot"}
    out = {}
    for t in networks.values():
        if t.stage != "train_network" or t.params.get("shuffled"):
            continue
        for target in net.targets:
            task = Task(
                TaskId("transfer_readout", model=t.id.model, instance=t.id.instance, target=target),
                {
                    "network": t.params["target"],
                    "target": target,
                    "target_space": space[target],
                    "seed": t.params["seed"],
                    "test_size": net.transfer_test_size,
                    "epochs": net.transfer_epochs,
                    "batch_size": net.transfer_batch_size,
                    "learning_rate": net.transfer_learning_rate,
                    "eps": net.transfer_eps,
                },
                {"network": t, "target": b.feature(space[target])},
            )
            out[task.name] = task
    return out


def _zoo_task(b, name: str) -> Task:
    return Task(
        TaskId("zoo_features", model=name),
        {"root": b.root, "model": name, **b.inputs("stimuli")},
        {"data": b.plan.data},
    )


def check(cfg) -> list[str]:
    net = cfg.analyses.networks
    if not (net.enabled and net.targets):
        return []
    problems = []
    if net.backbone is not None:
        from brainalign.networks.zoo import list_models

        if net.backbone not in list_models():
            problems.append(
                f"analyses.networks.backbone: {net.backbone!r} is not a zoo model; "
                f"known: {', '.join(list_models())}"
            )
    if "mpnet" in net.targets:
        try:
            encoder_of_space(net.embedding_space, cfg.features.encoder)
        except ConfigError as exc:
            problems.append(f"analyses.networks.embedding_space: {exc}")
    if net.training_pool is None and cfg.data.kind == "nsd":
        problems.append(
            "analyses.networks.training_pool: give a COCO folder (images + captions_*.json + "
            "instances_*.json) to train the networks on; the paper trained on COCO train2017 "
            "minus NSD's images, and brainalign leaves every NSD image out by COCO id"
        )
    elif (
        net.training_pool is None
        and cfg.data.kind == "virtual"
        and cfg.data.options.get("n_training_pool", 1) < 1
    ):
        problems.append(
            "data.options.n_training_pool: the networks train on images no subject sees; give "
            "the virtual NSD a training pool (n_training_pool > 0) or set "
            "analyses.networks.training_pool to a COCO folder"
        )
    elif net.training_pool is not None and not Path(net.training_pool).is_dir():
        problems.append(
            f"analyses.networks.training_pool: {str(net.training_pool)!r} is not a folder; "
            "give a COCO-format folder (train2017/, annotations/)"
        )
    pool = pool_folder(cfg)
    split = net.validation_split
    if split and pool is not None and Path(pool).is_dir():
        if not list(Path(pool).glob(f"annotations/*_{split}.json")):
            problems.append(
                f"analyses.networks.validation_split: {pool} has no annotations/*_{split}.json; "
                "the paper validates on COCO val2017 minus NSD (validation_split = 'val2017' "
                "with val2017/ and its annotations in the pool folder), or remove the key to "
                "hold out part of the pool"
            )
    return problems


# ------------------------------------------------------------------------------------- export
#: the held-out metric of each target's curve: (column, label, higher is better)
CURVE_METRIC = {
    "mpnet": ("val_cosine", "held-out cosine similarity to the target", True),
    "multihot": ("val_loss", "held-out binary cross-entropy", False),
}


def _curve_rows(t, res) -> list[dict]:
    """One network's training curve: before training (0 epochs done), then after each epoch."""
    p = t.params
    base = {
        "network": f"{t.id.model}@s{p['seed']}",
        "target": p["target"],
        "seed": p["seed"],
        "training": "shuffled targets" if p.get("shuffled") else "trained",
    }
    rows = []
    initial = res.get("initial") or {}
    if initial.get("val_loss") is not None:
        rows.append({**base, "epochs_done": 0, "step": 0, "train_loss": np.nan, **initial})
    for h in res.get("history", []) or []:
        rows.append({**base, "epochs_done": int(h["epoch"]) + 1, **h})
    return rows


def learning_table(results: list[tuple[Task, dict]]) -> pd.DataFrame:
    """Did each trained network learn beyond its shuffled-target control?

    For every trained network whose target has a control (same target, same seed's images):
    the mean over validation images of the per-image held-out score (cosine similarity with the
    target for ``"mpnet"``; binary cross-entropy, lower is better, for ``"multihot"``) of the
    network, of the control and of the constant floor, the difference network − control
    (signed so that positive is better), a paired t-test over the validation images, and
    ``learned``: better than the control at p < 0.05.
    """
    from scipy.stats import ttest_rel

    controls = {
        t.params["target"]: res
        for t, res in results
        if t.params.get("shuffled") and "val_score" in res
    }
    rows = []
    for t, res in results:
        target = t.params["target"]
        if t.params.get("shuffled") or "val_score" not in res:
            continue
        higher = CURVE_METRIC.get(target, CURVE_METRIC["mpnet"])[2]
        mine = np.asarray(res["val_score"], float)
        row = {
            "network": f"{t.id.model}@s{t.params['seed']}",
            "target": target,
            "metric": "cosine" if higher else "BCE",
            "n_val": int(mine.size),
            "steps": res.get("steps"),
            "trained": float(mine.mean()),
            "floor": float(np.mean(res["floor_score"])),
        }
        if "val_map" in res:
            row["trained_map"] = res["val_map"]
        ctrl = controls.get(target)
        if ctrl is not None and np.asarray(ctrl["val_score"]).shape == mine.shape:
            other = np.asarray(ctrl["val_score"], float)
            sign = 1.0 if higher else -1.0
            stat = ttest_rel(mine, other) if mine.size > 1 else (np.nan, np.nan)
            p = float(stat[1])
            gain = sign * float((mine - other).mean())
            row.update(
                shuffled=float(other.mean()),
                gain=gain,
                t=sign * float(stat[0]),
                p=p,
                learned="yes" if gain > 0 and p < 0.05 else "no",
            )
            if "val_map" in ctrl:
                row["shuffled_map"] = ctrl["val_map"]
        rows.append(row)
    return pd.DataFrame(rows)


def transfer_table(results: list[tuple[Task, dict]]) -> pd.DataFrame:
    """Fig. 4b's table: one row per network, seed and readout target, then one group row per
    network and target.

    Columns: ``network`` (``net_<target>``), ``seed``, ``target`` (what the readout is trained
    toward), ``own`` (the network's own target), ``cosine`` (mean held-out cosine similarity),
    ``floor`` (the mean training target's), ``gain`` (cosine − floor), ``n_train``, ``n_test``,
    and for the group rows (``seed`` "mean") ``sd`` (SD over seeds, ddof 1) and ``n_seeds``.
    """
    rows = []
    for t, res in results:
        p = t.params
        cos, floor = float(res["cosine"]), float(res["floor"])
        rows.append(
            {
                "network": t.id.model,
                "seed": str(p["seed"]),
                "target": p["target"],
                "own": "yes" if p["target"] == p["network"] else "no",
                "cosine": cos,
                "floor": floor,
                "gain": cos - floor,
                "n_train": int(len(res["train_ids"])),
                "n_test": int(len(res["test_ids"])),
                "sd": np.nan,
                "n_seeds": 1,
            }
        )
    if not rows:
        return pd.DataFrame()
    seeds = pd.DataFrame(rows)
    groups = []
    for (network, target), d in seeds.groupby(["network", "target"], sort=False):
        groups.append(
            {
                "network": network,
                "seed": "mean",
                "target": target,
                "own": d["own"].iloc[0],
                "cosine": d["cosine"].mean(),
                "floor": d["floor"].mean(),
                "gain": d["gain"].mean(),
                "n_train": int(d["n_train"].iloc[0]),
                "n_test": int(d["n_test"].iloc[0]),
                "sd": d["cosine"].std(ddof=1) if len(d) > 1 else np.nan,
                "n_seeds": len(d),
            }
        )
    return pd.concat([seeds, pd.DataFrame(groups)], ignore_index=True)


def layers_table(targets) -> pd.DataFrame:
    """Which layer (and timestep) of each vision model the brain comparisons read, and how it
    was chosen: one fixed layer per model, never chosen on the brain scores it reports."""
    from brainalign.networks import layer_name
    from brainalign.networks.zoo import model_layer

    rows = []
    for t in targets.values():
        p = t.params
        if t.stage == "train_network" and not p.get("shuffled") and p.get("backbone"):
            rows.append(
                {
                    "model": t.id.model,
                    "instance": t.id.instance,
                    "layer": f"{p['backbone']} → linear readout",
                    "layer_index": np.nan,
                    "timestep": np.nan,
                    "chosen": "fixed: the readout's output on the backbone's readout layer",
                }
            )
        elif t.stage == "train_network" and not p.get("shuffled"):
            rows.append(
                {
                    "model": t.id.model,
                    "instance": t.id.instance,
                    "layer": layer_name(p["layers"] - 1, p["timesteps"] - 1),
                    "layer_index": p["layers"],
                    "timestep": p["timesteps"],
                    "chosen": "fixed: the last layer at the last timestep (the paper's Fig. 4)",
                }
            )
        elif t.stage == "zoo_features":
            rows.append(
                {
                    "model": t.id.model,
                    "instance": "",
                    "layer": model_layer(p["model"]),
                    "layer_index": np.nan,
                    "timestep": np.nan,
                    "chosen": "fixed: the model's readout layer (its zoo entry's layer)",
                }
            )
    return pd.DataFrame(rows)


def export(ctx, targets) -> None:
    curves, images, results = [], [], []
    for t in targets.values():
        if t.stage != "train_network":
            continue
        res = ctx.load(t)
        results.append((t, res))
        if not t.params.get("shuffled"):
            images += [
                {"image_id": int(i), "target": t.params["target"], "seed": t.params["seed"]}
                for i in np.asarray(res["train_ids"])
            ]
        curves += _curve_rows(t, res)
    transfer = transfer_table(
        [(t, ctx.load(t)) for t in targets.values() if t.stage == "transfer_readout"]
    )
    if len(transfer):
        ctx.writer.table("transfer", transfer)
    layers = layers_table(targets)
    if len(layers):
        ctx.writer.table("network_layers", layers)
    learned = learning_table(results)
    if len(learned):
        ctx.writer.table("network_learning", learned)
    if curves:
        ctx.writer.table("training_curves", pd.DataFrame(curves))
    if images:
        ctx.writer.table("network_training_images", pd.DataFrame(images))
    if "pool" in targets:
        pool = ctx.load(targets["pool"])
        net = ctx.config.analyses.networks
        ctx.writer.json(
            "network_training_pool",
            {
                "folder": targets["pool"].params["pool"],
                "split": targets["pool"].params["split"],
                "n_found": pool["n_found"],
                "n_nsd_excluded": pool["n_nsd_excluded"],
                "n_kept": int(len(np.asarray(pool["ids"]))),
                "n_overlap_with_evaluated": pool["n_overlap"],
                "allow_overlap": net.allow_overlap,
            },
        )


def _pool_html(run) -> str:
    """Where the networks trained, and the leak check's verdict (red when overlap was allowed)."""
    import json

    path = run.dir / "network_training_pool.json"
    if not path.exists():
        return ""
    p = json.loads(path.read_text())
    text = (
        f"Networks trained on {p['n_kept']} images of {esc(p['folder'])} ({esc(p['split'])}): "
        f"{p['n_found']} found, {p['n_nsd_excluded']} NSD images left out by COCO id. "
        "Their ids are in <code>tables/network_training_images.csv</code>."
    )
    if p["allow_overlap"] or p["n_overlap_with_evaluated"]:
        return (
            f"<p class='bad' style='color:#b00;font-weight:bold'>{text} Overlap allowed: "
            f"{p['n_overlap_with_evaluated']} training images are images the study evaluates, "
            "so the networks' scores on them are not a test of generalisation.</p>"
        )
    return f"<p>{text} None of them is an image the study evaluates (checked).</p>"


def _learning_html(run) -> str:
    """One line per trained network: did it beat its shuffled-target control?"""
    t = run.table("network_learning")
    if t is None or not len(t) or "learned" not in t:
        return ""
    items = []
    for _, r in t.iterrows():
        if not isinstance(r.get("learned"), str):
            continue
        better = "higher" if r["metric"] == "cosine" else "lower"
        verdict = "learned beyond" if r["learned"] == "yes" else "did NOT learn beyond"
        items.append(
            f"<li><b>{esc(r['network'])}</b> {verdict} its shuffled-target control: held-out "
            f"{esc(r['metric'])} {r['trained']:.4f} vs {r['shuffled']:.4f} ({better} is better; "
            f"constant floor {r['floor']:.4f}; paired t over {int(r['n_val'])} validation "
            f"images, p = {r['p']:.2g})</li>"
        )
    if not items:
        return ""
    return (
        "<p>Each network against the same network trained on shuffled targets (the training "
        "images' targets permuted among them; same images, steps and validation images): what "
        "it learns from the pairing of images and targets, beyond the targets' mean.</p><ul>"
        + "".join(items)
        + "</ul>"
    )


def _layers_html(run) -> str:
    """Which layer each vision model's comparisons read."""
    t = run.table("network_layers")
    if t is None or not len(t):
        return ""
    seen, items = set(), []
    for _, r in t.iterrows():
        if r["model"] in seen:
            continue
        seen.add(r["model"])
        where = (
            f"layer {int(r['layer_index'])} at timestep {int(r['timestep'])} "
            f"(<code>{esc(r['layer'])}</code>)"
            if np.isfinite(r.get("layer_index", np.nan))
            else f"<code>{esc(r['layer'])}</code>"
        )
        items.append(f"<li><b>{esc(r['model'])}</b>: {where}; {esc(r['chosen'])}</li>")
    return (
        "<p>Layers read by every brain comparison (ROI RSA, searchlight, contrasts, the truth "
        "table): one fixed layer per model, set before any brain data is seen, so no score is "
        "that of a layer chosen on it.</p><ul>" + "".join(items) + "</ul>"
    )


def _rq4_html(run) -> str:
    """The paper's Fig. 4 contrasts ROI by ROI: what the planted truth predicts (the oracle
    scores) and whether the ROI RSA measurement agrees (virtual NSD only)."""
    t = run.table("ground_truth_contrasts")
    if t is None or not len(t):
        return ""
    parts = [
        "<h3>RQ4 on the virtual NSD: what the planted truth predicts</h3>",
        "<p>For each contrast and ROI: the oracle difference (each model's RSA with the ROI's "
        "noiseless planted responses, mean over subjects of a − b, paired t-test) is the "
        "prediction; the ROI RSA difference (the same test on the measured scores, "
        f"{esc(str(t['value'].iloc[0]))}) is the measurement. Agreement: the same direction "
        "(or both no difference at p ≥ 0.05); 'not detected': the measurement misses a "
        "predicted difference; 'reversed' or 'unexpected': it contradicts the prediction.</p>",
    ]
    for (a, b), d in t.groupby(["a", "b"], sort=False):
        n_ok = int((d["agreement"] == "yes").sum())
        items = "".join(
            f"<li><b>{esc(r['roi'])}</b>: predicted {esc(r['predicted'])} (oracle "
            f"{r['oracle_diff']:+.3f}, p = {r['oracle_p']:.2g}); measured {esc(r['measured'])} "
            f"({r['measured_diff']:+.3f}, p = {r['measured_p']:.2g}): "
            + ("agrees" if r["agreement"] == "yes" else f"<b>{esc(r['agreement'])}</b>")
            + "</li>"
            for _, r in d.iterrows()
        )
        parts.append(
            f"<p><b>{esc(a)} − {esc(b)}</b>: {n_ok} of {len(d)} ROIs agree.</p><ul>{items}</ul>"
        )
    return "".join(parts)


def _transfer_html(run) -> str:
    """Fig. 4b: the transfer readouts' figure, or why they were not run."""
    net = run_section(run, "networks", NetworksConfig)
    if net.transfer and net.backbone:
        return f"<p>Transfer readouts (Fig. 4b): {esc(TRANSFER_WITH_BACKBONE)}.</p>"
    t = run.table("transfer")
    if t is None or not len(t):
        return ""
    out = img_html(
        plots.figure_to_base64(transfer_figure(t)),
        "Transfer readouts (the paper's Fig. 4b): held-out cosine similarity of a linear "
        "readout from each frozen network (last layer and timestep) toward each target; bars: "
        "mean over seeds (dots: seeds), black lines: the floor (the mean training target).",
    )
    groups = t[t["seed"].astype(str) == "mean"]
    below = [f"{r['network']} → {r['target']}" for _, r in groups.iterrows() if r["gain"] <= 0]
    if below:
        out += (
            f"<p>Not above the floor: {esc(', '.join(below))}. Such a readout predicts the "
            "target no better than the mean training target does: its network's features do "
            "not carry the target, or the readout had too few steps (analyses.networks."
            f"transfer_epochs = {net.transfer_epochs}; the paper: 200 epochs of 71,000 "
            "images).</p>"
        )
    return out


def _section(run) -> str:
    parts = [
        _pool_html(run), _learning_html(run), _transfer_html(run), _layers_html(run),
        _rq4_html(run),
    ]  # fmt: skip
    curves = run.table("training_curves")
    if curves is not None and len(curves):
        parts.append(
            img_html(
                plots.figure_to_base64(plots.training_curves_figure(curves)),
                "Held-out metric per epoch (0: before training) of each network (solid) and of "
                "its shuffled-target control (dashed).",
            )
        )
    parts.append(maps_html(run, "networks"))
    return "".join(parts)


def methods(cfg) -> list[str]:
    n = cfg.analyses.networks
    if not n.enabled:
        return []
    what = (
        f"linear readouts from {n.backbone}'s frozen features (a transfer variant of the paper's "
        "networks, which it trained from scratch; the readout's output is the network's "
        "representation)"
        if n.backbone
        else f"BLT recurrent convolutional networks ({n.layers} layers, width × {n.width}, "
        f"{n.timesteps} timesteps, {n.image_size} px)"
    )
    return [
        f"Networks: {what} trained "
        f"toward {', '.join(n.targets)} for {n.epochs} epochs (seeds "
        f"{list(n.seeds)}) on a training pool of images no subject sees "
        f"({n.training_pool or 'the virtual NSD training_pool/'}, every NSD image left "
        "out by COCO id, as the paper trained on COCO minus NSD"
        + ("; OVERLAP WITH EVALUATED IMAGES ALLOWED" if n.allow_overlap else "")
        + "); "
        + (
            f"every seed trained on the whole pool and validated on its {n.validation_split} "
            "split minus every NSD image (the paper: COCO val2017 minus NSD); "
            if n.validation_split
            else "validated on a held-out part of the pool, the same images for every seed; "
        )
        + (
            "each target's network is also trained, with the first seed and the same budget, on "
            "shuffled targets (the training images' targets permuted among them) as a control "
            "of what it learns from images beyond the targets' mean; "
            if n.shuffled_control
            else ""
        )
        + (
            "the readout's output compared with the brain by ROI RSA"
            if n.backbone
            else "last layer and timestep compared with the brain by ROI RSA"
        )
        + (
            ", read through the paper code's random crop at test time"
            if n.test_time_crop
            else ", read from the whole image (no test-time crop)"
        )
        + "."
    ] + _transfer_methods(n)


def _transfer_methods(n) -> list[str]:
    """What the transfer readouts (Fig. 4b) ran, or why they did not."""
    if not (n.transfer and n.targets):
        return []
    if n.backbone:
        return [f"Transfer readouts (Fig. 4b): {TRANSFER_WITH_BACKBONE}."]
    held = (
        f"the last {int(n.transfer_test_size)}"
        if n.transfer_test_size >= 1
        else f"the last {n.transfer_test_size:.0%}"
    )
    return [
        "Transfer readouts (Fig. 4b): for each trained network and seed, a linear readout "
        "from its frozen last layer at the last timestep (spatially averaged) on the study's "
        f"images toward each of {', '.join(n.targets)} (a sigmoid for categories), trained "
        f"with a cosine loss (Adam, learning rate {n.transfer_learning_rate:g}, epsilon "
        f"{n.transfer_eps:g}, batch {n.transfer_batch_size}, {n.transfer_epochs} epochs, "
        f"cosine annealing) on the images in id order but {held}, which are held out (the "
        "paper: the last 2,000 of NSD's 73,000); images without a target (no category) are "
        "left out. Score: the mean held-out cosine similarity; floor: that of the mean "
        "training target."
    ]


ANALYSIS = Analysis(
    name="networks",
    configs={"networks": NetworksConfig},
    plan=plan,
    data_options=data_options,
    check=check,
    export=export,
    methods=methods,
    sections=(
        ReportSection(
            "networks", "Networks", _section, tables=("network_learning", "transfer", "zoo_ranking")
        ),
    ),
    tables=(
        Table(
            "training_curves",
            "Training curves",
            "Per network and epoch (epochs_done 0: before training): training loss, held-out "
            "loss and cosine similarity, for each network and its shuffled-target control.",
            shown=False,
        ),
        Table(
            "network_learning",
            "Did the networks learn?",
            "Per trained network: its mean held-out score (cosine similarity to the target for "
            "caption embeddings, binary cross-entropy for categories; trained_map/shuffled_map: "
            "mean average precision), the same network trained on shuffled targets, a constant "
            "prediction (floor), gain over the control (positive is better), paired t-test over "
            "the validation images.",
            formats={"p": "sci"},
        ),
        Table(
            "network_layers",
            "Layers read",
            "Per vision model: the layer (and timestep) its brain comparisons read and how it "
            "was chosen.",
            shown=False,
        ),
        Table(
            "ground_truth_contrasts",
            "RQ4 contrasts against the planted truth",
            "Per ROI and contrast a − b (the paper's Fig. 4 pairs and the run's searchlight "
            "contrasts): the oracle difference and its paired t-test over subjects (the "
            "prediction), the measured ROI RSA difference and its test, and their agreement.",
            formats={"oracle_p": "sci", "measured_p": "sci"},
            shown=False,
        ),
        Table(
            "network_training_images",
            "Network training images",
            "The ids of every image each network trained on (one row per image and network).",
            shown=False,
        ),
        Table(
            "transfer",
            "Transfer readouts",
            "The paper's Fig. 4b: per trained network, seed and target, the mean held-out cosine "
            "similarity of a linear readout from the frozen network's last layer and timestep "
            "(own: the network's own target), the floor (the mean training target's cosine with "
            "each held-out target), the gain over it, and the images it trained and was scored "
            "on; rows with seed 'mean': the mean over seeds (sd: their SD).",
        ),
    ),
)
