"""Vision networks as models (paper §7, Fig. 4): BLT networks trained toward caption embeddings
or categories, and the model zoo; each becomes a model the RSA analyses score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from brainalign.errors import DataFormatError
from brainalign.pipeline.analysis import Analysis, ModelRef, ReportSection
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.pipeline.inputs import feature_rows
from brainalign.utils.settings import Section

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


# ------------------------------------------------------------------------------------- stages
@stage("train_network")
def train_network(params, inputs, ctx):
    """Train a small BLT network toward caption embeddings or categories; read its last layer."""
    import torch

    from brainalign.datasets import load_stimuli, read_shared_ids
    from brainalign.networks import BLTNet, activations, layer_name, train
    from brainalign.networks.data import ImageData

    torch.manual_seed(params["seed"])
    stim = load_stimuli(params["root"])
    # the shared test images never train a network (paper §7.2)
    test_ids = read_shared_ids(params["root"])
    keep = ~np.isin(stim.image_ids, test_ids)
    if params["target"] == "multihot":
        if stim.categories is None:
            raise DataFormatError(
                "networks: target 'multihot' needs COCO categories in the stimuli"
            )
        T = np.asarray(stim.categories, np.float32)
    else:
        T = feature_rows(inputs["target"], stim.image_ids)
    ids = stim.image_ids
    reader = stim.images

    def load(indices, _ids=ids[keep]):
        return np.asarray(reader(_ids[np.asarray(indices, dtype=np.int64)]))

    data_all = ImageData(load, {params["target"]: T[keep]}, ids=ids[keep], name="train")
    data, val = data_all.split(n_val=max(8, int(keep.sum()) // 10), random_state=params["seed"])
    net = BLTNet(
        n_outputs=T.shape[1],
        n_layers=params["layers"],
        timesteps=params["timesteps"],
        width=params["width"],
        image_size=params["image_size"],
    )
    device = ctx.get("device", "cpu")
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
    )
    last = layer_name(params["layers"] - 1, params["timesteps"] - 1)

    def load_all(ids_):
        return np.asarray(reader(np.asarray(ids_, dtype=np.int64)))

    acts = activations(res.net, load_all, layers=[last], ids=ids, device=device, verbose=False)
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
        "ids": np.asarray(ids, np.int64),
        "history": hist,
        "initial_val_cosine": res.initial.get("val_cosine"),
        "checkpoint": str(res.checkpoint),
    }


@stage("zoo_features")
def zoo_features(params, inputs, ctx):
    """Features of a registered vision model (e.g. EfficientNet-lite0) for every image."""
    from brainalign.datasets import load_stimuli
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
def plan(b) -> dict[str, Task]:
    net = b.config.analyses.networks
    targets = {}
    for target in net.targets:
        for sd in net.seeds:
            deps = {"data": b.plan.data}
            if target == "mpnet":
                deps["target"] = b.feature(net.embedding_space)
            task = Task(
                TaskId("train_network", model=f"net_{target}", variant=f"seed{sd}"),
                {
                    "root": b.root,
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
                },
                deps,
            )
            targets[task.name] = task
            b.add_model(ModelRef(f"net_{target}", task, instance=f"seed{sd}", vision=True))
    for z in net.zoo:
        task = Task(
            TaskId("zoo_features", model=z), {"root": b.root, "model": z}, {"data": b.plan.data}
        )
        targets[task.name] = task
        b.add_model(ModelRef(z, task, vision=True))
    return targets


def feature_spaces(cfg) -> list[tuple[str, str]]:
    net = cfg.analyses.networks
    return (
        [("analyses.networks.embedding_space", net.embedding_space)]
        if "mpnet" in net.targets
        else []
    )


# ------------------------------------------------------------------------------------- export
def export(ctx, targets) -> None:
    import pandas as pd

    curves = []
    for t in targets.values():
        res = ctx.load(t)
        for h in res.get("history", []) or []:
            # zoo models have no training history
            curves.append({"network": f"{t.id.model}@s{t.params['seed']}", **h})
    if curves:
        ctx.writer.table("training_curves", pd.DataFrame(curves))


def _section(run) -> str:
    from brainalign.report import plots
    from brainalign.report.html import img_html, maps_html, table_html

    parts = []
    curves = run.table("training_curves")
    if curves is not None and len(curves):
        parts.append(
            img_html(
                plots.figure_to_base64(plots.training_curves_figure(curves)),
                "Training loss and held-out cosine similarity per epoch.",
            )
        )
    transfer = run.table("transfer")
    if transfer is not None:
        parts.append("<h3>Transfer readouts</h3>" + table_html(transfer))
    zoo = run.table("zoo_ranking")
    if zoo is not None:
        parts.append(
            "<h3>Model zoo ranking</h3><p class='note'>Noise-ceiling-normalised ROI RSA "
            "(mean over subjects), the form of the paper's Fig. 4 table.</p>"
            + table_html(zoo, max_rows=100)
        )
    parts.append(maps_html(run, "networks"))
    return "".join(parts)


def methods(cfg: dict) -> list[str]:
    n = cfg.get("analyses", {}).get("networks", {})
    if not n.get("enabled"):
        return []
    return [
        f"Networks: BLT recurrent convolutional networks ({n.get('layers')} layers, width × "
        f"{n.get('width')}, {n.get('timesteps')} timesteps, {n.get('image_size')} px) trained "
        f"toward {', '.join(n.get('targets', []))} for {n.get('epochs')} epochs (seeds "
        f"{n.get('seeds')}); last layer and timestep compared with the brain by ROI RSA."
    ]


ANALYSIS = Analysis(
    name="networks",
    configs={"networks": NetworksConfig},
    plan=plan,
    feature_spaces=feature_spaces,
    export=export,
    methods=methods,
    sections=(ReportSection("networks", "Networks", _section),),
)
