"""Spatially averaged activations of image models, per layer (× timestep), streamed to disk.

:func:`activations` runs a :class:`~brainalign.networks.BLTNet` (or any module, through forward
hooks) over an image set in batches and returns ``{layer_name: (n_images, n_channels)}``
float32. With ``out=`` every layer is written to ``out/<layer>.npy`` as it goes (memory-mapped),
so the 73,000 NSD images never sit in memory, and a killed run resumes from the last finished
batch. Test-time preprocessing is deterministic (centre square, resize); the paper's code
random-cropped at test time, which ``test_time_crop=True`` reproduces for comparisons only.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from brainalign.errors import DataFormatError, InputError
from brainalign.networks.augment import preprocess_images, step_generator
from brainalign.networks.data import ImageData
from brainalign.utils import atomic_write_json, hash_array, hash_json, progress
from brainalign.utils.disk import create_memmap, open_memmap_reserved

#: what to do when the activation cache cannot be written (completes the message)
_ACTIVATIONS_HINT = "write the activations to a folder on a disk with more room"

Extractor = Callable[[np.ndarray, int], dict[str, torch.Tensor]]
MANIFEST = "activations.json"


def state_hash(module: torch.nn.Module) -> str:
    """sha256 over a module's parameters and buffers (names, dtypes, shapes, bytes)."""
    parts = {}
    for name, value in module.state_dict().items():
        parts[name] = hash_array(value.detach().to("cpu").contiguous().numpy())
    return hash_json(parts)


def pool_output(x) -> torch.Tensor:
    """Average a module output over its spatial / token axes: (n, C, H, W) → (n, C); (n, T, D) → (n, D)."""
    if isinstance(x, (tuple, list)):
        x = x[0]
    if not isinstance(x, torch.Tensor):
        raise InputError(f"layer output: expected a tensor, got {type(x).__name__}")
    if x.ndim == 4:
        return x.mean(dim=(2, 3))
    if x.ndim == 3:
        return x.mean(dim=1)
    if x.ndim == 2:
        return x
    return x.reshape(x.shape[0], -1)


def hook_extractor(
    model: torch.nn.Module,
    layers: Sequence[str],
    preprocess: Callable[[np.ndarray], torch.Tensor],
    device="cpu",
    forward: Callable[[torch.nn.Module, torch.Tensor], object] | None = None,
) -> Extractor:
    """Build an extractor from forward hooks on named modules of any ``torch.nn.Module``.

    ``preprocess(uint8 (n, H, W, 3)) -> input tensor``; each hooked output is pooled with
    :func:`pool_output`. A module called several times per forward keeps its last output.
    """
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        some = [n for n in modules if n][:8]
        raise InputError(
            f"layers: {missing[:5]} are not modules of this model; some names: {some} …"
        )
    dev = torch.device(device)

    def extract(images: np.ndarray, batch_index: int) -> dict[str, torch.Tensor]:
        captured: dict[str, torch.Tensor] = {}
        handles = []
        for name in layers:

            def hook(_m, _inp, output, _name=name):
                # a copy: a 2-D output is not pooled, and a later in-place op (ReLU(inplace=True))
                # would otherwise change it before it is read
                captured[_name] = pool_output(output).float().clone()

            handles.append(modules[name].register_forward_hook(hook))
        try:
            x = preprocess(images).to(dev)
            with torch.no_grad():
                (forward or (lambda m, t: m(t)))(model, x)
        finally:
            for h in handles:
                h.remove()
        return captured

    return extract


def blt_extractor(
    net: torch.nn.Module,
    layers: Sequence[str],
    device="cpu",
    test_time_crop: bool = False,
    random_state: int = 0,
    mixed_precision: bool = False,
) -> Extractor:
    """Extractor for :class:`~brainalign.networks.BLTNet`: pooled inside the forward (no full maps kept)."""
    dev = torch.device(device)

    def extract(images: np.ndarray, batch_index: int) -> dict[str, torch.Tensor]:
        gen = step_generator(random_state, 2, batch_index) if test_time_crop else None
        x = preprocess_images(
            images, net.image_size, random_crop=test_time_crop, generator=gen, device=dev
        )
        ctx = (
            torch.autocast(device_type="cuda", dtype=torch.bfloat16)
            if mixed_precision and dev.type == "cuda"
            else torch.autocast(device_type="cpu", enabled=False)
        )
        with torch.no_grad(), ctx:
            _, acts = net(x, return_activations=True, layers=layers)
        return {k: v.float() for k, v in acts.items()}

    return extract


def _image_source(images, ids=None) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    if isinstance(images, ImageData):
        return images.load_images, images.ids
    if callable(images):
        if ids is None:
            raise InputError("ids: a callable image source needs the ids to read (ids=...)")
        ids = np.asarray(ids, dtype=np.int64)

        def load(idx, _ids=ids, _read=images):
            return np.asarray(_read(_ids[idx]))

        return load, ids
    arr = np.asarray(images) if not hasattr(images, "shape") else images
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise InputError(
            f"images: expected (n, H, W, 3) uint8, ImageData or a reader; got shape {arr.shape}"
        )
    return (lambda idx, _a=arr: np.asarray(_a[idx])), (
        np.arange(len(arr), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    )


def stream_activations(
    extract: Extractor,
    load: Callable[[np.ndarray], np.ndarray],
    ids: np.ndarray,
    layers: Sequence[str],
    *,
    batch_size: int = 64,
    out: str | os.PathLike | None = None,
    key: str | None = None,
    verbose: bool | None = None,
) -> dict[str, np.ndarray]:
    """Run ``extract`` over all images in batches; gather in memory or stream to ``out``.

    With ``out``: ``out/<layer>.npy`` (float32, ``(n, c)``) plus ``out/activations.json``
    (ids, layers, ``key``). Partial results live in ``out/.partial`` with a progress file, so a
    rerun with the same ``key`` continues after the last finished batch; a finished folder with
    the same ``key`` is returned as read-only memory maps without recomputing.
    """
    n = len(ids)
    if n == 0:
        raise InputError("images: the image set is empty")
    layers = list(layers)
    if out is None:
        chunks: dict[str, list[np.ndarray]] = {name: [] for name in layers}
        for b, start in enumerate(
            progress(range(0, n, batch_size), desc="activations", verbose=verbose)
        ):
            acts = extract(load(np.arange(start, min(start + batch_size, n))), b)
            for name in layers:
                chunks[name].append(acts[name].cpu().numpy().astype(np.float32))
        return {name: np.concatenate(chunks[name]) for name in layers}

    out = Path(out)
    manifest = out / MANIFEST
    meta = {
        "key": key,
        "ids_sha256": hash_array(np.asarray(ids, dtype=np.int64)),
        "layers": layers,
        "n": n,
    }
    if manifest.exists():
        done = json.loads(manifest.read_text())
        if {k: done.get(k) for k in meta} == meta:
            return {
                name: np.load(out / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                for name in layers
            }
    partial = out / ".partial"
    state_file = partial / "progress.json"
    start_batch = 0
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if {k: state.get(k) for k in meta} == meta:
            start_batch = int(state["batches_done"])
        else:
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.memmap] = {}
    starts = list(range(0, n, batch_size))
    for b in progress(range(len(starts)), desc="activations", verbose=verbose, unit="batch"):
        if b < start_batch:
            continue
        start = starts[b]
        acts = extract(load(np.arange(start, min(start + batch_size, n))), b)
        for name in layers:
            block = acts[name].cpu().numpy().astype(np.float32)
            if name not in arrays:
                path = partial / f"{name}.npy"
                if path.exists() and start_batch > 0:
                    arrays[name] = open_memmap_reserved(path, hint=_ACTIVATIONS_HINT)
                else:
                    # reserved before mapping: a full disk is a clear error, not a Bus error
                    arrays[name] = create_memmap(
                        path, (n, block.shape[1]), np.float32, hint=_ACTIVATIONS_HINT
                    )
            arrays[name][start : start + len(block)] = block
        for arr in arrays.values():
            arr.flush()
        atomic_write_json(state_file, {**meta, "batches_done": b + 1})
    for name in layers:
        if name not in arrays:  # resumed after the last batch: reopen what is there
            arrays[name] = open_memmap_reserved(partial / f"{name}.npy", hint=_ACTIVATIONS_HINT)
        arrays[name].flush()
        del arrays[name]
        os.replace(partial / f"{name}.npy", out / f"{name}.npy")
    atomic_write_json(manifest, {**meta, "ids": np.asarray(ids).tolist()})
    shutil.rmtree(partial, ignore_errors=True)
    return {
        name: np.load(out / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in layers
    }


def activations(
    model: torch.nn.Module,
    images,
    layers: Sequence[str] | str | None = None,
    *,
    ids: Sequence[int] | None = None,
    batch_size: int = 64,
    device="cpu",
    out: str | os.PathLike | None = None,
    test_time_crop: bool = False,
    random_state: int = 0,
    mixed_precision: bool = False,
    preprocess: Callable[[np.ndarray], torch.Tensor] | None = None,
    verbose: bool | None = None,
) -> dict[str, np.ndarray]:
    """Spatially averaged activations of ``model`` for every image, per layer (× timestep).

    Parameters
    ----------
    model : BLTNet or torch.nn.Module
        A BLTNet is read through its named outputs ``layernorm_layer_{l}_time_{t}``; any other
        module through forward hooks on the named submodules ``layers`` (then ``preprocess`` is
        required).
    images : ImageData, (n, H, W, 3) uint8 array, or callable ``read(ids) -> uint8`` with ``ids``
    layers : str or sequence of str, optional
        Layer names. For a BLTNet: default all layers × timesteps; ``"last"`` means the last
        layer at the last timestep (the paper's comparison layer).
    ids : sequence of int, optional
        Ids of the images (required for a callable source; stored with the output).
    batch_size : int
    device : str or torch.device
    out : path, optional
        Stream to ``out/<layer>.npy`` (resumable; returns read-only memory maps).
    test_time_crop : bool
        Reproduce the paper code's random crop at test time (a bug there; compatibility only).
    random_state : int
        Seed of ``test_time_crop``.
    mixed_precision : bool
        bfloat16 autocast on CUDA.
    preprocess : callable, optional
        For non-BLT models: ``uint8 (n, H, W, 3) -> input tensor``.
    verbose : bool, optional

    Returns
    -------
    dict of str -> (n_images, n_channels) float32 array
    """
    from brainalign.networks.blt import BLTNet

    load, ids_arr = _image_source(images, ids)
    model.eval()
    dev = torch.device(device)
    model.to(dev)
    if isinstance(model, BLTNet):
        if layers is None:
            layers = list(model.layer_names)
        elif layers == "last":
            layers = [model.layer_names[-1]]
        elif isinstance(layers, str):
            layers = [layers]
        unknown = [name for name in layers if name not in model.layer_names]
        if unknown:
            raise InputError(
                f"layers: {unknown[:5]} are not outputs of this BLTNet; names run from "
                f"{model.layer_names[0]} to {model.layer_names[-1]}"
            )
        extract = blt_extractor(model, layers, dev, test_time_crop, random_state, mixed_precision)
        key_extra = {
            "test_time_crop": test_time_crop,
            "random_state": random_state if test_time_crop else None,
        }
    else:
        if layers is None or isinstance(layers, str) and layers == "last":
            raise InputError("layers: name the modules to read for a non-BLT model")
        if preprocess is None:
            raise InputError(
                "preprocess: a non-BLT model needs its preprocessing (uint8 images -> tensor)"
            )
        layers = [layers] if isinstance(layers, str) else list(layers)
        extract = hook_extractor(model, layers, preprocess, dev)
        key_extra = {"preprocess": getattr(preprocess, "__qualname__", str(preprocess))}
    key = None
    if out is not None:
        key = hash_json({"model": state_hash(model), "class": type(model).__name__, **key_extra})
    return stream_activations(
        extract, load, ids_arr, layers, batch_size=batch_size, out=out, key=key, verbose=verbose
    )


def load_activations(folder: str | os.PathLike) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read a finished ``out`` folder of :func:`activations`: ``({layer: memmap}, ids)``."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.exists():
        raise DataFormatError(
            f"{folder}: no {MANIFEST}; the extraction did not finish (rerun it to resume)"
        )
    meta = json.loads(manifest.read_text())
    acts = {
        name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        for name in meta["layers"]
    }
    return acts, np.asarray(meta["ids"], dtype=np.int64)


__all__ = [
    "activations",
    "blt_extractor",
    "hook_extractor",
    "load_activations",
    "pool_output",
    "state_hash",
    "stream_activations",
]
