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

    [train]              # brainalign.networks.train arguments, plus seeds and out
    target = "mpnet"
    epochs = 5
    batch_size = 32
    seeds = [1, 2]
    out = "runs/mpnet"   # one folder per seed: runs/mpnet/seed1, …
    device = "cpu"

Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import numpy as np
import torch

from brainalign.errors import ConfigError
from brainalign.networks.blt import BLTNet
from brainalign.networks.data import ImageData, from_coco, from_hdf5, from_nsd, from_scenes
from brainalign.networks.train import TrainResult, train

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file, naming it in errors."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None


def _resolve(base: Path, value):
    return None if value is None else str(value if Path(value).is_absolute() else base / value)


def _check_keys(section: str, given: dict, allowed) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        raise ConfigError(f"[{section}]: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")


def _encoder(name: str | None):
    from brainalign.features import SentenceEncoder

    return SentenceEncoder(name or "all-mpnet-base-v2")


def _data_scenes(cfg, base, targets):
    from brainalign.datasets.scenes import make_scenes

    scenes = make_scenes(int(cfg.get("n", 500)), random_state=int(cfg.get("random_state", 0)))
    enc = _encoder(cfg.get("encoder")) if "mpnet" in targets else None
    data = from_scenes(scenes, targets, encoder=enc, image_size=int(cfg.get("render_size", 128)))
    return data


def _data_coco(cfg, base, targets):
    enc = _encoder(cfg.get("encoder")) if "mpnet" in targets else None
    exclude = None
    if cfg.get("exclude_ids_path"):
        exclude = np.asarray(
            json.loads(Path(_resolve(base, cfg["exclude_ids_path"])).read_text()), dtype=np.int64
        )
    return from_coco(
        _resolve(base, cfg.get("root")), split=cfg.get("split", "train2017"), targets=targets,
        encoder=enc, exclude_ids=exclude, load_size=int(cfg.get("load_size", 256)),
        captions_path=_resolve(base, cfg.get("captions_path")),
        instances_path=_resolve(base, cfg.get("instances_path")),
    )  # fmt: skip


def _data_hdf5(cfg, base, targets):
    keys = cfg.get("targets")
    if not isinstance(keys, dict):
        raise ConfigError(
            "[data] hdf5: give targets = { mpnet = 'dataset_name', ... } naming datasets in the file"
        )
    return from_hdf5(
        _resolve(base, cfg.get("path")), images_key=cfg.get("images_key", "imgBrick"), targets=keys
    )


def _data_nsd(cfg, base, targets):
    enc = _encoder(cfg.get("encoder")) if "mpnet" in targets else None
    return from_nsd(_resolve(base, cfg.get("root")), targets, encoder=enc)


DATA_SOURCES = {"scenes": _data_scenes, "coco": _data_coco, "hdf5": _data_hdf5, "nsd": _data_nsd}


def build_data(
    cfg: dict, base_dir: str | os.PathLike, target: str
) -> tuple[ImageData, ImageData | None]:
    """The ``[data]`` section → (train, validation) :class:`ImageData`."""
    source = cfg.get("source")
    if source not in DATA_SOURCES:
        raise ConfigError(f"[data] source: expected one of {sorted(DATA_SOURCES)}, got {source!r}")
    data = DATA_SOURCES[source](cfg, Path(base_dir), (target,))
    if cfg.get("materialize", source == "scenes"):
        data = ImageData(
            data.load_images(np.arange(len(data))), data.targets, ids=data.ids, name=data.name
        )
    n_val = cfg.get("n_val", 0.05)
    if not n_val:
        return data, None
    return data.split(n_val, random_state=int(cfg.get("split_seed", 0)))


# a seed sets both the initialisation and the data order (random_state), as the paper's seeds do
_TRAIN_KEYS = set(inspect.signature(train).parameters) - {
    "net", "data", "val_data", "checkpoint_dir", "random_state",
}  # fmt: skip


def run_train_config(path: str | os.PathLike, *, verbose: bool | None = True) -> list[TrainResult]:
    """Train one network per seed as a TOML config says; returns the results (checkpoints in ``out``)."""
    path = Path(path)
    cfg = read_toml(path)
    base = path.parent
    for section in ("network", "data", "train"):
        if section not in cfg:
            raise ConfigError(f"{path}: missing section [{section}]")
    tcfg = dict(cfg["train"])
    seeds = tcfg.pop("seeds", [tcfg.pop("seed", 0)])
    out = tcfg.pop("out", None)
    if out is None:
        raise ConfigError(f"{path}: [train] needs out = 'folder for checkpoints'")
    _check_keys("train", tcfg, _TRAIN_KEYS)
    target = tcfg.setdefault("target", "mpnet")
    train_data, val_data = build_data(cfg["data"], base, target)
    n_outputs = train_data.target(target).shape[1]
    net_cfg = dict(cfg["network"])
    _check_keys("network", net_cfg, set(inspect.signature(BLTNet).parameters) - {"n_outputs"})
    results = []
    for seed in seeds:
        torch.manual_seed(int(seed))
        net = BLTNet(n_outputs=n_outputs, **net_cfg)
        results.append(
            train(
                net,
                train_data,
                val_data=val_data,
                checkpoint_dir=Path(_resolve(base, out)) / f"seed{seed}",
                random_state=int(seed),
                **{"verbose": verbose, **tcfg},
            )  # fmt: skip
        )
    return results


__all__ = ["DATA_SOURCES", "build_data", "read_toml", "run_train_config"]
