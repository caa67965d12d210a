"""TOML configs of ``brainalign train`` and ``brainalign compare-models``.

A training config (see ``configs/networks_train_*.toml``)::

    [network]            # BLTNet arguments (n_outputs comes from the target)
    width = 0.0625
    timesteps = 2
    image_size = 64

    [data]               # source = "scenes" | "coco" | "hdf5" | "nsd"
    source = "scenes"
    n = 600
    random_state = 1000
    n_val = 0.1
    encoder = "all-mpnet-base-v2"

    [train]              # TrainConfig fields, plus seeds, out and the run's device
    target = "mpnet"
    epochs = 5
    batch_size = 32
    seeds = [1, 2]
    out = "runs/mpnet"   # one folder per seed: runs/mpnet/seed1, …
    device = "cpu"

Both files are validated by the models below (:mod:`brainalign.utils.settings`): an unknown or
invalid key is a :class:`~brainalign.errors.ConfigError` naming the file and the dotted key.
Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from brainalign.networks.blt import BLTNet
from brainalign.networks.data import ImageData, from_coco, from_hdf5, from_nsd, from_scenes

# _TrainSettings: TrainConfig's fields without its ConfigError-raising __init__ (nestable)
from brainalign.networks.train import TrainConfig, TrainResult, _TrainSettings, train
from brainalign.utils.settings import ConfigPath, Section, load_model, read_toml, validate_model

DEFAULT_ENCODER = "all-mpnet-base-v2"

# ---------------------------------------------------------------------------------- [network]


class NetworkSettings(Section):
    """``[network]``: :class:`~brainalign.networks.BLTNet` arguments; unset ones keep its defaults.

    ``n_outputs`` is not a key: it comes from the target's dimension.
    """

    n_layers: PositiveInt | None = None
    timesteps: PositiveInt | None = None
    channels: list[PositiveInt] | None = None
    width: PositiveFloat | None = None
    kernel_sizes: list[PositiveInt] | None = None
    pool_before: list[int] | None = None
    lateral_kernel_size: PositiveInt | None = None
    topdown_kernel_size: PositiveInt | None = None
    lateral: bool | None = None
    topdown: bool | None = None
    image_size: PositiveInt | None = None

    def build(self, n_outputs: int) -> BLTNet:
        return BLTNet(n_outputs=n_outputs, **self.model_dump(exclude_none=True))


# ------------------------------------------------------------------------------------- [data]


class _DataSettings(Section):
    """Keys every ``[data]`` source shares."""

    n_val: PositiveInt | NonNegativeFloat = (
        0.05  # validation images: a count or a fraction; 0: none
    )
    split_seed: int = 0
    materialize: bool | None = None  # load every image into memory first (default: scenes only)


class ScenesData(_DataSettings):
    """Procedural scenes (:func:`brainalign.datasets.scenes.make_scenes`)."""

    source: Literal["scenes"]
    n: PositiveInt = 500
    random_state: int = 0
    render_size: PositiveInt = 128
    encoder: str = DEFAULT_ENCODER


class CocoData(_DataSettings):
    """A COCO-format folder (:func:`~brainalign.networks.data.from_coco`)."""

    source: Literal["coco"]
    root: ConfigPath
    split: str = "train2017"
    encoder: str = DEFAULT_ENCODER
    exclude_ids_path: ConfigPath | None = None  # a JSON list of COCO ids to leave out
    load_size: PositiveInt = 256
    captions_path: ConfigPath | None = None
    instances_path: ConfigPath | None = None


class Hdf5Data(_DataSettings):
    """Images and targets in one HDF5 file (:func:`~brainalign.networks.data.from_hdf5`)."""

    source: Literal["hdf5"]
    path: ConfigPath
    images_key: str = "imgBrick"
    targets: dict[str, str]  # {target name: dataset name}, e.g. { mpnet = "mpnet_embeddings" }


class NsdData(_DataSettings):
    """An NSD-layout folder without its shared test images (:func:`~.data.from_nsd`)."""

    source: Literal["nsd"]
    root: ConfigPath
    encoder: str = DEFAULT_ENCODER


DataSettings = Annotated[ScenesData | CocoData | Hdf5Data | NsdData, Field(discriminator="source")]


def _encoder(name: str, targets):
    if "mpnet" not in targets:
        return None
    from brainalign.features import SentenceEncoder

    return SentenceEncoder(name)


def _data_scenes(cfg: ScenesData, targets) -> ImageData:
    from brainalign.datasets.scenes import make_scenes

    scenes = make_scenes(cfg.n, random_state=cfg.random_state)
    enc = _encoder(cfg.encoder, targets)
    return from_scenes(scenes, targets, encoder=enc, image_size=cfg.render_size)


def _data_coco(cfg: CocoData, targets) -> ImageData:
    exclude = None
    if cfg.exclude_ids_path is not None:
        exclude = np.asarray(json.loads(cfg.exclude_ids_path.read_text()), dtype=np.int64)
    return from_coco(
        cfg.root, split=cfg.split, targets=targets, encoder=_encoder(cfg.encoder, targets),
        exclude_ids=exclude, load_size=cfg.load_size, captions_path=cfg.captions_path,
        instances_path=cfg.instances_path,
    )  # fmt: skip


def _data_hdf5(cfg: Hdf5Data, targets) -> ImageData:
    return from_hdf5(cfg.path, images_key=cfg.images_key, targets=cfg.targets)


def _data_nsd(cfg: NsdData, targets) -> ImageData:
    return from_nsd(cfg.root, targets, encoder=_encoder(cfg.encoder, targets))


DATA_SOURCES = {"scenes": _data_scenes, "coco": _data_coco, "hdf5": _data_hdf5, "nsd": _data_nsd}


class _DataSection(Section):
    data: DataSettings


def build_data(
    cfg: DataSettings | dict, base_dir: str | os.PathLike | None, target: str
) -> tuple[ImageData, ImageData | None]:
    """The ``[data]`` section (validated, or a dict) → (train, validation) :class:`ImageData`.

    ``base_dir`` resolves the relative paths of a dict (a validated section has resolved them).
    """
    if isinstance(cfg, dict):
        cfg = validate_model(_DataSection, {"data": cfg}, base_dir=base_dir).data
    data = DATA_SOURCES[cfg.source](cfg, (target,))
    materialize = cfg.source == "scenes" if cfg.materialize is None else cfg.materialize
    if materialize:
        data = ImageData(
            data.load_images(np.arange(len(data))), data.targets, ids=data.ids, name=data.name
        )
    if not cfg.n_val:
        return data, None
    return data.split(cfg.n_val, random_state=cfg.split_seed)


# ------------------------------------------------------------------------------------ [train]


class TrainSettings(_TrainSettings):
    """``[train]``: the :class:`~brainalign.networks.train.TrainConfig` fields but
    ``random_state``, plus how to run them.

    Each seed trains one network whose initialisation (``torch.manual_seed``) and data order
    (``random_state``) both come from the seed, as the paper's seeds do.
    """

    seeds: list[int] = Field(default_factory=lambda: [0])
    out: ConfigPath  # folder of the checkpoints: one sub-folder per seed (seed1, …)
    device: str = "cpu"
    keep_last: PositiveInt | None = 2
    resume: bool = True
    verbose: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_seed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "seed" in data:
            if "seeds" in data:
                raise ValueError("give seeds = [...] or seed = N, not both")
            data = {k: v for k, v in data.items() if k != "seed"} | {"seeds": [data["seed"]]}
        return data

    @field_validator("random_state")
    @classmethod
    def _seeded_by_seeds(cls, value: int) -> int:
        raise ValueError("set by the seeds (one network per seed); use seeds = [...]")

    def train_config(self, seed: int) -> TrainConfig:
        """The :class:`TrainConfig` of the network trained with ``seed``."""
        fields = self.model_dump(include=set(TrainConfig.model_fields))
        return TrainConfig(**{**fields, "random_state": int(seed)})


class TrainFile(Section):
    """A ``brainalign train`` config: ``[network]``, ``[data]`` and ``[train]``."""

    network: NetworkSettings = Field(default_factory=NetworkSettings)
    data: DataSettings
    train: TrainSettings


def load_train_config(path: str | os.PathLike) -> TrainFile:
    """Read and validate a ``brainalign train`` config (relative paths: the file's folder)."""
    return load_model(TrainFile, path)


def run_train_config(path: str | os.PathLike, *, verbose: bool | None = True) -> list[TrainResult]:
    """Train one network per seed as a TOML config says; returns the results (checkpoints in ``out``)."""
    cfg = load_train_config(path)
    run = cfg.train
    train_data, val_data = build_data(cfg.data, None, run.target)
    n_outputs = train_data.target(run.target).shape[1]
    results = []
    for seed in run.seeds:
        torch.manual_seed(int(seed))
        net = cfg.network.build(n_outputs)
        results.append(
            train(
                net,
                train_data,
                run.train_config(seed),
                val_data=val_data,
                device=run.device,
                checkpoint_dir=run.out / f"seed{seed}",
                keep_last=run.keep_last,
                resume=run.resume,
                verbose=verbose if run.verbose is None else run.verbose,
            )  # fmt: skip
        )
    return results


# ---------------------------------------------------------------------------- compare-models


class CompareData(Section):
    """``[data]`` of ``brainalign compare-models``: an NSD-layout folder (real or virtual)."""

    root: ConfigPath
    subjects: list[PositiveInt] = Field(default_factory=lambda: [1])
    space: Literal["fsaverage", "func1pt8mm"] = "fsaverage"
    rois: list[str] = Field(default_factory=lambda: ["ventral", "lateral", "parietal"])


class CompareRsa(Section):
    """``[rsa]``: the paper's disjoint random subsets of images."""

    subset_size: PositiveInt = 100
    random_state: int = 0


class CompareOutput(Section):
    """``[output]``: where the tables and the figure go, and where models run."""

    dir: ConfigPath = Field(default=Path("compare_models"), validate_default=True)
    device: str = "cpu"
    batch_size: PositiveInt = 32
    title: str = "Representational agreement"


class CompareFile(Section):
    """A ``brainalign compare-models`` config.

    ``[[models]]`` tables are :class:`~brainalign.networks.zoo.ZooModel` specs (``name``,
    ``kind``, ``layer``, ``training_images`` and kind-specific options), checked by
    :meth:`ZooModel.from_dict`.
    """

    data: CompareData
    rsa: CompareRsa = Field(default_factory=CompareRsa)
    models: list[dict[str, Any]] = Field(min_length=1)
    output: CompareOutput


def load_compare_config(path: str | os.PathLike) -> CompareFile:
    """Read and validate a ``brainalign compare-models`` config."""
    return load_model(CompareFile, path)


__all__ = [
    "DATA_SOURCES",
    "CompareFile",
    "NetworkSettings",
    "TrainFile",
    "TrainSettings",
    "build_data",
    "load_compare_config",
    "load_train_config",
    "read_toml",
    "run_train_config",
]
