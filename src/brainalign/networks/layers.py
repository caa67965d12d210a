"""Every layer of a vision model as an RDM: the layer profiles of RDM studies.

:func:`layer_rdms` reads a model of the zoo (:mod:`brainalign.networks.zoo`) layer by layer and
turns each layer's activations into an RDM over the images:

* ``efficientnet-lite0`` (``-lite1``, ``-lite2``): the stem, each of the 16 (21) MBConv blocks,
  the head convolution, the pooled features and the logits (:data:`EFFICIENTNET_LITE_LAYERS`),
  read in one forward pass.
  By default a layer's whole feature map is one pattern (``pooling=None``: channels × height ×
  width, as the Algonauts 2019 baselines and Cichy et al. 2016 compared layers with the brain);
  ``pooling="mean"`` averages over space first.
* ``blt``: a trained :class:`~brainalign.networks.BLTNet`, every layer × timestep
  (``layernorm_layer_{l}_time_{t}``, spatially averaged); several checkpoints (seeds) give one
  RDM per seed, averaged.
* ``torchvision`` / ``timm`` / ``open_clip`` / ``module``: the modules in ``options["layers"]``
  (else the model's ``layer``); ``features``: the precomputed features, one "layer".

RDMs are condensed upper triangles (:func:`brainalign.rsa.compute_rdm`), in layer order.
"""

from __future__ import annotations

import numpy as np

from brainalign.errors import InputError
from brainalign.features.vision import activations
from brainalign.networks.zoo import ZooModel, get_model

#: EfficientNet-lite0 read block by block: (label, module output); ``_swish`` is called twice
#: per forward pass (after the stem and after the head), hence ``@t0`` / ``@t1``
EFFICIENTNET_LITE0_LAYERS: tuple[tuple[str, str], ...] = (
    ("stem", "_swish@t0"),
    *((f"block{i:02d}", f"_blocks.{i}") for i in range(16)),
    ("head", "_swish@t1"),
    ("avgpool", "_avg_pooling"),
    ("logits", "_fc"),
)


def _efficientnet_lite_layers(n_blocks: int) -> tuple[tuple[str, str], ...]:
    return (
        ("stem", "_swish@t0"),
        *((f"block{i:02d}", f"_blocks.{i}") for i in range(n_blocks)),
        ("head", "_swish@t1"),
        ("avgpool", "_avg_pooling"),
        ("logits", "_fc"),
    )


#: every packaged EfficientNet-lite read block by block (lite1 and lite2 have 21 MBConv blocks)
EFFICIENTNET_LITE_LAYERS: dict[str, tuple[tuple[str, str], ...]] = {
    "efficientnet-lite0": EFFICIENTNET_LITE0_LAYERS,
    "efficientnet-lite1": _efficientnet_lite_layers(21),
    "efficientnet-lite2": _efficientnet_lite_layers(21),
}


def network_layers(model: str | ZooModel) -> list[str]:
    """Labels of the layers :func:`layer_rdms` reads for ``model`` (in order).

    For ``blt`` models they are known only once a checkpoint is loaded (an empty list here).
    """
    entry = get_model(model) if isinstance(model, str) else model
    if entry.kind in EFFICIENTNET_LITE_LAYERS:
        return [label for label, _ in EFFICIENTNET_LITE_LAYERS[entry.kind]]
    if entry.kind in ("torchvision", "timm", "open_clip", "module"):
        return list(entry.options.get("layers") or [entry.layer])
    if entry.kind == "features":
        return ["features"]
    return []


def _hooked(entry: ZooModel) -> list[tuple[str, str]]:
    """(label, module output) pairs to read; empty: the model's own layers (``activations``'s
    ``layers=None``; a BLT's every layer × timestep, whatever its comparison ``layer``)."""
    if entry.kind in EFFICIENTNET_LITE_LAYERS:
        return list(EFFICIENTNET_LITE_LAYERS[entry.kind])
    layers = entry.options.get("layers") or (
        [entry.layer] if entry.layer and entry.kind != "blt" else []
    )
    return [(name, name) for name in layers]


def _rdm(X: np.ndarray, metric: str, name: str) -> np.ndarray:
    from brainalign.rsa import compute_rdm

    X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    keep = np.ptp(X, axis=0) > 0  # units that never vary carry no information
    if not keep.any():
        raise InputError(f"layer {name!r}: every unit is constant over the images")
    return compute_rdm(X[:, keep], metric=metric)


def layer_rdms(
    model: str | ZooModel,
    images: np.ndarray,
    *,
    pooling: str | None = None,
    metric: str = "correlation",
    batch_size: int = 16,
    device: str = "cpu",
    verbose: bool | None = False,
) -> dict[str, np.ndarray]:
    """One RDM per layer of a zoo model over ``images``.

    Parameters
    ----------
    model : str or ZooModel
        A registered zoo name (e.g. ``"efficientnet-lite0"``) or an entry.
    images : uint8 array (n_images, H, W, 3)
    pooling : {None, "mean"}
        ``None``: a layer's whole feature map is the pattern; ``"mean"``: spatial average.
        (BLT networks are always spatially averaged.)
    metric : {"correlation", "cosine", "euclidean"}
    batch_size : int
    device : str

    Returns
    -------
    dict of str -> (n_images * (n_images - 1) / 2,) float64
        Layer label → condensed RDM, in layer order.
    """
    if pooling not in (None, "mean"):
        raise InputError(f"pooling: expected None or 'mean', got {pooling!r}")
    entry = get_model(model) if isinstance(model, str) else model
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InputError(f"images: expected uint8 (n, H, W, 3), got {images.dtype} {images.shape}")
    out: dict[str, list[np.ndarray]] = {}
    for inst in entry.instances(device):
        if inst.features is not None:
            X, ids = inst.features
            pos = np.searchsorted(ids, np.arange(len(images)))
            out.setdefault("features", []).append(_rdm(np.asarray(X)[pos], metric, "features"))
            continue
        pairs = _hooked(entry)
        # no pairs: the model's own layers (a BLT's every layer × timestep)
        modules = list(dict.fromkeys(m.split("@")[0] for _, m in pairs)) or None
        acts = activations(
            inst.module,
            images,
            layers=modules,
            # a BLT's taps are compared spatially averaged, as in the paper
            pooling="mean" if pooling or entry.kind == "blt" else None,
            batch_size=batch_size,
            device=device,
            verbose=verbose,
        )
        pairs = pairs or [(name, name) for name in acts]
        for label, key in pairs:
            if key not in acts:
                raise InputError(
                    f"models.{entry.name}: layer {key!r} gave no output; got {sorted(acts)}"
                )
            out.setdefault(label, []).append(_rdm(acts.pop(key), metric, label))
    return {k: np.mean(v, axis=0) for k, v in out.items()}


__all__ = ["EFFICIENTNET_LITE0_LAYERS", "layer_rdms", "network_layers"]
