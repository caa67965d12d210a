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

import os
import warnings
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

from brainalign.errors import ConfigError
from brainalign.networks.blt import BLTNet
from brainalign.networks.data import ImageData, from_coco, from_hdf5, from_nsd, from_scenes
from brainalign.networks.leakage import ImageIds, check_disjoint, nsd_images

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
    """Keys every ``[data]`` source shares.

    The leak check: ``nsd_root`` names the NSD-layout folder the networks will be scored on.
    The images its subjects saw (``evaluated_subjects``) are the evaluated images, and a
    training image among them stops the run (:func:`~brainalign.networks.leakage.
    check_disjoint`) unless ``exclude_evaluated`` leaves them out first or ``allow_overlap``
    accepts them. The NSD→COCO id list comes from the folder's ``nsd_stim_info_merged.csv``.
    """

    n_val: PositiveInt | NonNegativeFloat = (
        0.05  # validation images: a count or a fraction; 0: none (or a [validation] section)
    )
    split_seed: int = 0
    materialize: bool | None = None  # load every image into memory first (default: scenes only)
    nsd_root: ConfigPath | None = None
    evaluated_subjects: list[PositiveInt] | Literal["all"] = "all"
    exclude_evaluated: bool = False
    allow_overlap: bool = False


class ScenesData(_DataSettings):
    """Procedural scenes (:func:`brainalign.datasets.scenes.make_scenes`)."""

    source: Literal["scenes"]
    n: PositiveInt = 500
    random_state: int = 0
    render_size: PositiveInt = 128
    encoder: str = DEFAULT_ENCODER


class CocoData(_DataSettings):
    """A COCO-format folder (:func:`~brainalign.networks.data.from_coco`).

    With ``nsd_root`` every NSD image is left out by COCO id first: the paper's pool, COCO
    train2017 (or val2017, for validation) minus NSD.
    """

    source: Literal["coco"]
    root: ConfigPath
    split: str = "train2017"
    encoder: str = DEFAULT_ENCODER
    load_size: PositiveInt = 256
    captions_path: ConfigPath | None = None
    instances_path: ConfigPath | None = None


class Hdf5Data(_DataSettings):
    """Images and targets in one HDF5 file (:func:`~brainalign.networks.data.from_hdf5`).

    NSD's own brick (``imgBrick``, the default) holds NSD images: name ``nsd_root`` so they are
    checked against the images the networks are scored on.
    """

    source: Literal["hdf5"]
    path: ConfigPath
    images_key: str = "imgBrick"
    targets: dict[str, str]  # {target name: dataset name}, e.g. { mpnet = "mpnet_embeddings" }
    ids_key: str | None = None  # a dataset of one image id per row (default: the row numbers)
    id_space: Literal["auto", "nsd", "coco"] = "auto"  # what the ids are ("auto": see from_hdf5)


class NsdData(_DataSettings):
    """An NSD-layout folder without its shared test images (:func:`~.data.from_nsd`).

    Its other images are images the subjects saw: ``nsd_root`` defaults to ``root``, so
    training on them stops unless ``evaluated_subjects`` names subjects who did not see them
    (with ``exclude_evaluated = true`` their images are left out).
    """

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
    if cfg.nsd_root is not None:  # the paper's pool: COCO minus every NSD image
        exclude = nsd_images(cfg.nsd_root, "nsd").coco_ids
    return from_coco(
        cfg.root, split=cfg.split, targets=targets, encoder=_encoder(cfg.encoder, targets),
        exclude_ids=exclude, load_size=cfg.load_size, captions_path=cfg.captions_path,
        instances_path=cfg.instances_path,
    )  # fmt: skip


def _data_hdf5(cfg: Hdf5Data, targets) -> ImageData:
    space = None if cfg.id_space == "auto" and cfg.ids_key is not None else cfg.id_space
    return from_hdf5(
        cfg.path, images_key=cfg.images_key, targets=cfg.targets, ids=cfg.ids_key, id_space=space
    )


def _data_nsd(cfg: NsdData, targets) -> ImageData:
    return from_nsd(cfg.root, targets, encoder=_encoder(cfg.encoder, targets))


DATA_SOURCES = {"scenes": _data_scenes, "coco": _data_coco, "hdf5": _data_hdf5, "nsd": _data_nsd}


class _DataSection(Section):
    data: DataSettings


def evaluated_images(cfg: DataSettings) -> ImageIds | None:
    """The images the networks trained from ``[data]`` will be scored on (``nsd_root``'s, seen
    by ``evaluated_subjects``), or None when the section names no NSD folder."""
    root = cfg.root if cfg.source == "nsd" and cfg.nsd_root is None else cfg.nsd_root
    if root is None:
        return None
    return nsd_images(root, cfg.evaluated_subjects)


def _unchecked(cfg: DataSettings, data: ImageData, section: str) -> None:
    """Without an NSD folder the training images cannot be checked now: NSD's own images
    stop the run; any other source warns (the checkpoints record the images for later)."""
    if data.id_space == "nsd":
        raise ConfigError(
            f"{section}.nsd_root: the {cfg.source} images are NSD images (NSD ids); name the "
            "NSD folder the networks will be scored on, so no image a subject saw is trained on"
        )
    if cfg.source != "scenes":
        warnings.warn(
            f"{section}.nsd_root is not set, so the {len(data)} training images of {data.name} "
            "are not checked against the images the networks will be scored on; the "
            "checkpoints record them and compare-models checks them (set nsd_root to check now)",
            UserWarning,
            stacklevel=3,
        )


def build_data(
    cfg: DataSettings | dict,
    base_dir: str | os.PathLike | None,
    target: str,
    *,
    section: str = "data",
    split: bool = True,
) -> tuple[ImageData, ImageData | None, ImageIds | None]:
    """The ``[data]`` section (validated, or a dict) → (train, validation, evaluated images).

    ``base_dir`` resolves the relative paths of a dict (a validated section has resolved them).
    With ``exclude_evaluated`` the evaluated images are left out of the training images; the
    check itself runs in :func:`~brainalign.networks.train` (``evaluated=``). ``split=False``
    splits no validation images off (a ``[validation]`` section names them); ``section``
    "validation" reads that section (no warning for an unnamed NSD folder there).
    """
    if isinstance(cfg, dict):
        cfg = validate_model(_DataSection, {"data": cfg}, base_dir=base_dir).data
    data = DATA_SOURCES[cfg.source](cfg, (target,))
    evaluated = evaluated_images(cfg)
    if evaluated is None and section == "data":
        _unchecked(cfg, data, section)
    elif cfg.exclude_evaluated:
        data = data.without(evaluated, what=f"{evaluated.name} ({section}.exclude_evaluated)")
    materialize = cfg.source == "scenes" if cfg.materialize is None else cfg.materialize
    if materialize:
        data = ImageData(
            data.load_images(np.arange(len(data))), data.targets, ids=data.ids, name=data.name,
            id_space=data.id_space, coco_ids=data.coco_ids,
        )  # fmt: skip
    if not cfg.n_val or not split:
        return data, None, evaluated
    train_data, val_data = data.split(cfg.n_val, random_state=cfg.split_seed)
    return train_data, val_data, evaluated


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
    """A ``brainalign train`` config: ``[network]``, ``[data]``, ``[train]`` and optionally
    ``[validation]``.

    ``[validation]`` is a data source of its own (same keys as ``[data]``), e.g. COCO val2017
    minus NSD as the paper: every seed then trains on the whole of ``[data]``. Without it,
    ``data.n_val`` images are split off ``[data]`` once (``split_seed``), the same for every seed.
    """

    network: NetworkSettings = Field(default_factory=NetworkSettings)
    data: DataSettings
    validation: DataSettings | None = None
    train: TrainSettings

    @model_validator(mode="after")
    def _one_validation_set(self) -> TrainFile:
        if (
            self.validation is not None
            and "n_val" in self.data.model_fields_set
            and self.data.n_val
        ):
            raise ValueError(
                "data.n_val splits validation images off [data] and [validation] names a "
                "validation set: keep one (the paper validates on COCO val2017 minus NSD)"
            )
        return self


def load_train_config(path: str | os.PathLike) -> TrainFile:
    """Read and validate a ``brainalign train`` config (relative paths: the file's folder)."""
    return load_model(TrainFile, path)


def run_train_config(path: str | os.PathLike, *, verbose: bool | None = True) -> list[TrainResult]:
    """Train one network per seed as a TOML config says; returns the results (checkpoints in ``out``)."""
    cfg = load_train_config(path)
    run = cfg.train
    try:
        separate = cfg.validation is not None
        train_data, val_data, evaluated = build_data(cfg.data, None, run.target, split=not separate)
        if separate:
            val_data, _, _ = build_data(
                cfg.validation, None, run.target, section="validation", split=False
            )
    except ConfigError as exc:
        raise ConfigError(f"{str(path)!r}: {exc}") from None
    if evaluated is not None:  # before any seed trains, with the keys that fix it
        check_disjoint(
            train_data.image_ids(f"{path}: training images of {train_data.name}"), evaluated,
            allow_overlap=cfg.data.allow_overlap,
            fix="Set data.exclude_evaluated = true to leave them out, name the subjects the "
            "networks will be scored on (data.evaluated_subjects), or accept the overlap "
            "(data.allow_overlap = true; the checkpoints record it).",
        )  # fmt: skip
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
                evaluated=evaluated,
                allow_overlap=cfg.data.allow_overlap,
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
    #: score trained networks on images their checkpoints record as training images
    allow_overlap: bool = False


class CompareRsa(Section):
    """``[rsa]``: the paper's disjoint random subsets of images.

    ``run``: a pipeline run folder whose saved subsets (``arrays/subsets__sub-XX.npy``) and
    statistical choices (``run.json``: test, FDR q, error bars) compare-models reuses, so both
    score the same images with the same tests. Without it the subsets are drawn as the
    pipeline draws them (``random_state`` is its ``compute.random_state``).
    """

    subset_size: PositiveInt = 100
    random_state: int = 0
    run: ConfigPath | None = None


class CompareStats(Section):
    """``[stats]``: the pairwise tests and error bars (unset: the ``[rsa] run``'s choices, else
    paired t, q = 0.05, SEM and one FDR family of every model)."""

    test: Literal["paired", "paper"] | None = None
    fdr_q: Annotated[float, Field(gt=0, lt=1)] | None = None
    error: Literal["sem", "paper"] | None = None
    families: dict[str, list[str]] | None = None


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
    stats: CompareStats = Field(default_factory=CompareStats)
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
