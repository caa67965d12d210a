"""Checkpoints: weights and optimizer state as safetensors, everything else as JSON.

A checkpoint ``ckpt_{step:08d}`` in a folder is three files::

    ckpt_00000120.safetensors        network weights
    ckpt_00000120.optim.safetensors  optimizer tensors (Adam moments, step counts)
    ckpt_00000120.json               network config, training config, step, history, hashes

and ``latest.json`` names the newest complete one. Every file is written atomically and
``latest.json`` last, so a run killed while saving leaves the previous checkpoint usable.
Loading checks the stored sha256 of the weight files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from brainalign.errors import DataFormatError, IntegrityError
from brainalign.utils import atomic_path, atomic_write_json, hash_file

LATEST = "latest.json"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars[f"state.{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    directory: str | os.PathLike,
    net: torch.nn.Module,
    *,
    step: int,
    metadata: dict,
    optimizer: torch.optim.Optimizer | None = None,
    keep_last: int | None = 2,
) -> Path:
    """Write checkpoint ``ckpt_{step:08d}`` into ``directory`` and point ``latest.json`` at it.

    Parameters
    ----------
    directory : path
    net : torch.nn.Module
        Its ``config()`` (when present) is stored so :func:`load_network` can rebuild it.
    step : int
        Optimiser steps done.
    metadata : dict
        JSON-serialisable extras (training config, history, data fingerprint …).
    optimizer : torch.optim.Optimizer, optional
    keep_last : int or None
        Delete all but the newest ``keep_last`` checkpoints (None keeps all).

    Returns
    -------
    Path of the checkpoint's JSON file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"ckpt_{int(step):08d}"
    weights = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    wpath = directory / f"{stem}.safetensors"
    with atomic_path(wpath) as tmp:
        save_file(weights, str(tmp))
    info = {
        "step": int(step),
        "weights": wpath.name,
        "weights_sha256": hash_file(wpath),
        "net_class": type(net).__name__,
        "net_config": net.config() if hasattr(net, "config") else None,
        **metadata,
    }
    if optimizer is not None:
        tensors, meta = _optimizer_tensors(optimizer)
        opath = directory / f"{stem}.optim.safetensors"
        with atomic_path(opath) as tmp:
            save_file(tensors, str(tmp))
        info["optimizer"] = {"file": opath.name, "sha256": hash_file(opath), **meta}
    jpath = atomic_write_json(directory / f"{stem}.json", info)
    atomic_write_json(directory / LATEST, {"checkpoint": jpath.name, "step": int(step)})
    if keep_last is not None:
        old = sorted(directory.glob("ckpt_*.json"))[:-keep_last]
        for j in old:
            for p in (j, j.with_suffix(".safetensors"), j.with_suffix(".optim.safetensors")):
                p.unlink(missing_ok=True)
    return jpath


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The JSON of the newest complete checkpoint in ``directory``, or None."""
    pointer = Path(directory) / LATEST
    if not pointer.exists():
        return None
    try:
        name = json.loads(pointer.read_text())["checkpoint"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise DataFormatError(
            f"{pointer}: corrupt checkpoint pointer ({exc}); delete it to start over"
        ) from None
    return Path(directory) / name


def _resolve(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise DataFormatError(f"{path}: no checkpoint here (no {LATEST}); train first")
        return found
    if path.suffix == ".safetensors":
        path = Path(
            str(path).removesuffix(".optim.safetensors").removesuffix(".safetensors") + ".json"
        )
    if not path.exists():
        raise DataFormatError(f"{path}: checkpoint file not found")
    return path


def read_checkpoint_info(path: str | os.PathLike) -> tuple[dict, Path]:
    """A checkpoint's JSON (its folder, JSON or weights file) without reading the weights.

    Returns
    -------
    info : dict
    path : Path
        The JSON file it came from.
    """
    jpath = _resolve(path)
    try:
        return json.loads(jpath.read_text()), jpath
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{jpath}: corrupt checkpoint JSON ({exc})") from None


def read_checkpoint(path: str | os.PathLike, device="cpu") -> tuple[dict, dict, dict | None]:
    """Read a checkpoint (its folder, JSON or weights file).

    Returns
    -------
    info : dict
        The checkpoint's JSON.
    weights : dict of str -> tensor
    optimizer_tensors : dict of str -> tensor, or None
    """
    info, jpath = read_checkpoint_info(path)
    wpath = jpath.parent / info["weights"]
    if not wpath.exists():
        raise DataFormatError(f"{wpath}: weights of checkpoint {jpath.name} are missing")
    if hash_file(wpath) != info["weights_sha256"]:
        raise IntegrityError(
            f"{wpath}: sha256 differs from the one stored in {jpath.name}; the file is corrupt"
        )
    weights = load_file(str(wpath), device=str(device))
    opt = None
    if "optimizer" in info:
        opath = jpath.parent / info["optimizer"]["file"]
        if hash_file(opath) != info["optimizer"]["sha256"]:
            raise IntegrityError(f"{opath}: sha256 differs from the one stored in {jpath.name}")
        opt = load_file(str(opath), device=str(device))
    return info, weights, opt


def load_network(path: str | os.PathLike, device="cpu") -> torch.nn.Module:
    """Rebuild a trained :class:`~brainalign.networks.BLTNet` from a checkpoint (folder or file), in eval mode."""
    from brainalign.networks.blt import BLTNet

    info, weights, _ = read_checkpoint(path, device=device)
    if info.get("net_class") != "BLTNet" or info.get("net_config") is None:
        raise DataFormatError(
            f"{path}: holds a {info.get('net_class')!r} without a config; cannot rebuild it"
        )
    net = BLTNet.from_config(info["net_config"])
    net.load_state_dict(weights)
    return net.to(device).eval()


def restore_optimizer(optimizer: torch.optim.Optimizer, info: dict, tensors: dict | None) -> None:
    """Load saved optimizer state (from :func:`read_checkpoint`) into ``optimizer``."""
    if tensors is None or "optimizer" not in info:
        raise DataFormatError("checkpoint has no optimizer state; cannot resume training exactly")
    _restore_optimizer(optimizer, tensors, info["optimizer"])


__all__ = [
    "latest_checkpoint",
    "load_network",
    "read_checkpoint",
    "read_checkpoint_info",
    "restore_optimizer",
    "save_checkpoint",
]
