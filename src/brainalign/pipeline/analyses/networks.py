"""Vision networks as models (paper §7, Fig. 4): BLT networks trained toward caption embeddings
or categories, and the model zoo; each becomes a model the RSA analyses score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from brainalign.datasets import load_stimuli
from brainalign.datasets._training_pool import POOL_FOLDER
from brainalign.errors import ConfigError, DataFormatError
from brainalign.features import SentenceEncoder
from brainalign.pipeline.analysis import Analysis, ModelRef, ReportSection, Table
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.pipeline.inputs import encoder_of_space
from brainalign.report import plots
from brainalign.report.html import esc, img_html, maps_html
from brainalign.utils.hashing import files_fingerprint, hash_json
from brainalign.utils.settings import ConfigPath, Section

# brainalign.networks imports torch: its functions are imported inside the functions that
# use them, so importing the pipeline (`brainalign run`, `report`) does not load torch

_Positive = Annotated[float, Field(gt=0)]
_PositiveInt = Annotated[int, Field(gt=0)]


class NetworksConfig(Section):
    """``[analyses.networks]``: BLT networks trained on the stimuli, and zoo models."""

    enabled: bool = True
    targets: list[Literal["mpnet", "multihot"]] = Field(
        default_factory=lambda: ["mpnet", "multihot"]
    )
    embedding_space: str = "mpnet"  # the caption embeddings the "mpnet" target means
    seeds: list[int] = Field(default_factory=lambda: [0])
    epochs: _PositiveInt = 4
    batch_size: _PositiveInt = 32
    image_size: _PositiveInt = 64
    width: _Positive = 0.125
    timesteps: _PositiveInt = 2
    layers: _PositiveInt = 10
    learning_rate: _Positive = 1e-3
    zoo: list[str] = Field(default_factory=list)
    #: a COCO-format folder of training images (images + captions_*.json + instances_*.json);
    #: every NSD image is left out by COCO id. Default: a virtual NSD's own training_pool/
    training_pool: ConfigPath | None = None
    training_split: str = "train2017"
    #: the validation images: a split of the same folder minus every NSD image (the paper:
    #: "val2017", COCO val minus NSD); every seed then trains on the whole pool. Default: a
    #: held-out part of the pool (validation_size images), the same for every seed
    validation_split: str | None = None
    validation_size: _Positive = 0.1
    #: train even on images the study evaluates (a leak: the report says so in red)
    allow_overlap: bool = False
    #: the readout at test time: centre images as they are (False) or the paper's random crop
    #: of at least a third of the area, which its code also applied at test time (True)
    test_time_crop: bool = False


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
    read its last layer on every image of the study."""
    import torch

    from brainalign.networks import BLTNet, activations, layer_name, train
    from brainalign.networks.data import from_coco

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
    last = layer_name(params["layers"] - 1, params["timesteps"] - 1)
    stim = load_stimuli(params["root"], categories=False)
    reader = stim.images

    def load_all(ids_):
        return np.asarray(reader(np.asarray(ids_, dtype=np.int64)))

    acts = activations(
        res.net, load_all, layers=[last], ids=stim.image_ids, device=device, verbose=False,
        test_time_crop=bool(params.get("test_time_crop", False)), random_state=params["seed"],
    )  # fmt: skip
    hist = [
        {
            "epoch": h.get("epoch"),
            "train_loss": h.get("train_loss"),
            "val_cosine": h.get("val_cosine"),
        }
        for h in res.history
    ]
    return {
        "X": np.asarray(acts[last], np.float32),
        "ids": np.asarray(stim.image_ids, np.int64),
        "train_ids": np.asarray(data.ids, np.int64),
        "val_ids": np.asarray(val.ids, np.int64),
        "history": hist,
        "initial_val_cosine": res.initial.get("val_cosine"),
        "checkpoint": str(res.checkpoint),
    }


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
    X = (
        np.mean(np.stack([np.asarray(f, np.float32) for f in feats]), axis=0)
        if len(feats) > 1
        else np.asarray(feats[0], np.float32)
    )
    return {"X": X, "ids": np.asarray(stim.image_ids, np.int64)}


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
    for target in net.targets:
        for sd in net.seeds:
            task = Task(
                TaskId("train_network", model=f"net_{target}", instance=f"seed{sd}"),
                {
                    "root": b.root,
                    "pool": pool_folder(cfg),
                    "split": net.training_split,
                    "encoder": encoder_of_space(net.embedding_space, cfg.features.encoder),
                    "name": f"{target}_seed{sd}",
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
                    "test_time_crop": net.test_time_crop,
                    # the study's images, whose activations it records at the end
                    **b.inputs("images"),
                },
                {
                    "data": b.plan.data,
                    "pool": pool,
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
            b.add_model(ModelRef(f"net_{target}", task, instance=f"seed{sd}", vision=True))
    for z in net.zoo:
        task = Task(
            TaskId("zoo_features", model=z),
            {"root": b.root, "model": z, **b.inputs("stimuli")},
            {"data": b.plan.data},
        )
        targets[task.name] = task
        b.add_model(ModelRef(z, task, vision=True))
    return targets


def check(cfg) -> list[str]:
    net = cfg.analyses.networks
    if not (net.enabled and net.targets):
        return []
    problems = []
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
def export(ctx, targets) -> None:
    import pandas as pd

    curves, images = [], []
    for t in targets.values():
        if t.stage != "train_network":
            continue
        res = ctx.load(t)
        images += [
            {"image_id": int(i), "target": t.params["target"], "seed": t.params["seed"]}
            for i in np.asarray(res["train_ids"])
        ]
        for h in res.get("history", []) or []:
            # zoo models have no training history
            curves.append({"network": f"{t.id.model}@s{t.params['seed']}", **h})
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


def _section(run) -> str:
    parts = [_pool_html(run)]
    curves = run.table("training_curves")
    if curves is not None and len(curves):
        parts.append(
            img_html(
                plots.figure_to_base64(plots.training_curves_figure(curves)),
                "Training loss and held-out cosine similarity per epoch.",
            )
        )
    parts.append(maps_html(run, "networks"))
    return "".join(parts)


def methods(cfg) -> list[str]:
    n = cfg.analyses.networks
    if not n.enabled:
        return []
    return [
        f"Networks: BLT recurrent convolutional networks ({n.layers} layers, width × "
        f"{n.width}, {n.timesteps} timesteps, {n.image_size} px) trained "
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
        + "last layer and timestep compared with the brain by ROI RSA"
        + (
            ", read through the paper code's random crop at test time"
            if n.test_time_crop
            else ", read from the whole image (no test-time crop)"
        )
        + "."
    ]


ANALYSIS = Analysis(
    name="networks",
    configs={"networks": NetworksConfig},
    plan=plan,
    data_options=data_options,
    check=check,
    export=export,
    methods=methods,
    sections=(ReportSection("networks", "Networks", _section, tables=("transfer", "zoo_ranking")),),
    tables=(
        Table(
            "training_curves",
            "Training curves",
            "Per network and epoch: training loss and held-out cosine similarity (the figure).",
            shown=False,
        ),
        Table(
            "network_training_images",
            "Network training images",
            "The ids of every image each network trained on (one row per image and network).",
            shown=False,
        ),
        Table("transfer", "Transfer readouts"),
    ),
)
