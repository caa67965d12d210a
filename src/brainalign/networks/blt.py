"""BLT-vNet: a recurrent convolutional network with bottom-up, lateral and top-down connections.

The paper's image→LLM networks (Doerig et al. 2025, Fig. 4a; paper_methods §7.1) are a BLT
(Spoerer et al. 2020) version of vNet (Mehrer et al. 2021): ten convolutional layers with kernel
sizes 7,7,5,5,3,3,3,3,1,1, 2×2 max-pooling before layers 3, 4, 7, 8, 9, 10 (1-based), a layer norm
after every layer, global average pooling and a linear readout, unrolled for 6 timesteps with the
readout applied at every timestep. The paper used half of vNet's channels.

At timestep ``t`` layer ``l`` computes::

    h[l, t] = LayerNorm(ReLU(B_l(pool(h[l-1, t])) + L_l(h[l, t-1]) + T_l(up(h[l+1, t-1]))))

with ``h[-1, t]`` the image, ``B``/``L``/``T`` convolutions ("same" padding), ``pool`` the 2×2
max-pool where vNet has one and ``up`` a nearest-neighbour resize to layer ``l``'s grid. At
``t = 0`` only the bottom-up drive exists. Each ``h[l, t]`` passes through an identity module
named ``layernorm_layer_{l}_time_{t}`` (the authors' names), so forward hooks by module name
(e.g. :func:`brainalign.features.vision.activations`) see every layer × timestep;
:meth:`BLTNet.activation_spec` tells that extractor the names, the preprocessing and the
test-time crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from brainalign.errors import InputError
from brainalign.features.vision import ActivationSpec
from brainalign.networks.augment import preprocess_images, step_generator

VNET_KERNEL_SIZES = (7, 7, 5, 5, 3, 3, 3, 3, 1, 1)
VNET_CHANNELS = (128, 128, 256, 256, 512, 512, 1024, 1024, 2048, 2048)
# 0-based indices of the layers preceded by a 2×2 max-pool (vNet's layers 3, 4, 7, 8, 9, 10)
VNET_POOL_BEFORE = (2, 3, 6, 7, 8, 9)


def layer_name(layer: int, time: int) -> str:
    """The name of layer ``layer``'s normalised output at timestep ``time`` (both 0-based)."""
    return f"layernorm_layer_{layer}_time_{time}"


def half_vnet_channels(width: float = 1.0, n_layers: int = 10) -> tuple[int, ...]:
    """vNet's channels halved (the paper's "half_channels"), times ``width``, at least 4 each."""
    if width <= 0:
        raise InputError(f"width: expected a positive multiplier, got {width}")
    if not 1 <= n_layers <= len(VNET_CHANNELS):
        raise InputError(
            f"n_layers: the default vNet layout has 1–10 layers, got {n_layers}; "
            "give channels, kernel_sizes and pool_before explicitly for other depths"
        )
    return tuple(max(4, int(round(c * width / 2))) for c in VNET_CHANNELS[:n_layers])


class BLTNet(nn.Module):
    """BLT-vNet: recurrent convolutional network with a linear readout at every timestep.

    Parameters
    ----------
    n_outputs : int
        Size of the readout (768 for MPNet embeddings, the number of categories for multi-hot).
    n_layers : int, default=10
        Number of recurrent convolutional layers.
    timesteps : int, default=6
        Number of unrolled timesteps; the readout is applied at each one.
    channels : sequence of int, optional
        Channels per layer. Default: vNet's channels halved (64, 64, 128, …, 1024), as in the
        paper, times ``width``.
    width : float, default=1.0
        Multiplier on the default channels (ignored when ``channels`` is given). Small values
        (0.0625–0.125) give networks that train on a CPU in minutes.
    kernel_sizes : sequence of int, optional
        Bottom-up kernel sizes. Default vNet's 7,7,5,5,3,3,3,3,1,1 (first ``n_layers``).
    pool_before : sequence of int, optional
        0-based layers preceded by a 2×2 max-pool. Default vNet's (2, 3, 6, 7, 8, 9).
    lateral_kernel_size, topdown_kernel_size : int, default=3
        Kernel sizes of the lateral and top-down convolutions (never larger than the layer's
        bottom-up kernel).
    lateral, topdown : bool, default=True
        Include lateral / top-down connections (both off gives a feedforward vNet unrolled in
        time).
    image_size : int, default=128
        Side of the square input images in pixels (the paper's 128).

    Attributes
    ----------
    layer_names : list of str
        ``layernorm_layer_{l}_time_{t}`` for every layer × timestep, layer-major.
    spatial_sizes : list of int
        Side of each layer's feature map for ``image_size`` inputs.

    Notes
    -----
    ``forward(x)`` takes ``(n, 3, image_size, image_size)`` float images scaled to [-1, 1] and
    returns a list of ``timesteps`` tensors of shape ``(n, n_outputs)``. ``forward(x,
    return_activations=True)`` also returns a dict of spatially averaged activations
    ``{layer_name: (n, channels[l])}``.
    """

    def __init__(
        self,
        n_outputs: int,
        n_layers: int = 10,
        timesteps: int = 6,
        channels: Sequence[int] | None = None,
        width: float = 1.0,
        kernel_sizes: Sequence[int] | None = None,
        pool_before: Sequence[int] | None = None,
        lateral_kernel_size: int = 3,
        topdown_kernel_size: int = 3,
        lateral: bool = True,
        topdown: bool = True,
        image_size: int = 128,
    ):
        super().__init__()
        if n_outputs < 1:
            raise InputError(f"n_outputs: expected a positive readout size, got {n_outputs}")
        if timesteps < 1:
            raise InputError(f"timesteps: expected at least 1, got {timesteps}")
        channels = tuple(half_vnet_channels(width, n_layers) if channels is None else channels)
        kernel_sizes = tuple(VNET_KERNEL_SIZES[:n_layers] if kernel_sizes is None else kernel_sizes)
        if pool_before is None:
            pool_before = tuple(p for p in VNET_POOL_BEFORE if p < n_layers)
        pool_before = tuple(sorted(int(p) for p in pool_before))
        for name, seq in (("channels", channels), ("kernel_sizes", kernel_sizes)):
            if len(seq) != n_layers:
                raise InputError(
                    f"{name}: expected {n_layers} values (one per layer), got {len(seq)}"
                )
        if any(p < 0 or p >= n_layers for p in pool_before):
            raise InputError(
                f"pool_before: layer indices must lie in 0..{n_layers - 1}, got {pool_before}"
            )
        sizes, side = [], int(image_size)
        for layer in range(n_layers):
            if layer in pool_before:
                side //= 2
            sizes.append(side)
        if sizes[-1] < 1:
            raise InputError(
                f"image_size: {image_size} px is too small for {len(pool_before)} 2×2 poolings; "
                f"use at least {2 ** len(pool_before)} px"
            )
        self.n_outputs = int(n_outputs)
        self.n_layers = int(n_layers)
        self.timesteps = int(timesteps)
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        self.pool_before = pool_before
        self.lateral_kernel_size = int(lateral_kernel_size)
        self.topdown_kernel_size = int(topdown_kernel_size)
        self.lateral = bool(lateral)
        self.topdown = bool(topdown)
        self.image_size = int(image_size)
        self.spatial_sizes = sizes

        self.bottom_up = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.topdown_convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for layer in range(n_layers):
            c_in = 3 if layer == 0 else channels[layer - 1]
            c = channels[layer]
            k = kernel_sizes[layer]
            self.bottom_up.append(nn.Conv2d(c_in, c, k, padding="same"))
            if self.lateral:
                kl = min(self.lateral_kernel_size, k)
                self.lateral_convs.append(nn.Conv2d(c, c, kl, padding="same", bias=False))
            if self.topdown and layer < n_layers - 1:
                kt = min(self.topdown_kernel_size, k)
                self.topdown_convs.append(
                    nn.Conv2d(channels[layer + 1], c, kt, padding="same", bias=False)
                )
            # one group = layer norm over (C, H, W), as vNet's GroupNorm(num_groups=1)
            self.norms.append(nn.GroupNorm(1, c))
        self.readout = nn.Linear(channels[-1], self.n_outputs)
        self.layer_names = [layer_name(l_, t) for l_ in range(n_layers) for t in range(timesteps)]
        # identity taps so hooks by module name see every layer × timestep
        for name in self.layer_names:
            self.add_module(name, nn.Identity())

    def config(self) -> dict:
        """The constructor arguments, JSON-serialisable (saved beside checkpoints)."""
        return {
            "n_outputs": self.n_outputs,
            "n_layers": self.n_layers,
            "timesteps": self.timesteps,
            "channels": list(self.channels),
            "kernel_sizes": list(self.kernel_sizes),
            "pool_before": list(self.pool_before),
            "lateral_kernel_size": self.lateral_kernel_size,
            "topdown_kernel_size": self.topdown_kernel_size,
            "lateral": self.lateral,
            "topdown": self.topdown,
            "image_size": self.image_size,
        }

    @classmethod
    def from_config(cls, config: dict) -> BLTNet:
        """Rebuild a network from :meth:`config` output."""
        known = {
            "n_outputs", "n_layers", "timesteps", "channels", "width", "kernel_sizes",
            "pool_before", "lateral_kernel_size", "topdown_kernel_size", "lateral", "topdown",
            "image_size",
        }  # fmt: skip
        unknown = set(config) - known
        if unknown:
            raise InputError(
                f"BLTNet config: unknown keys {sorted(unknown)}; expected some of {sorted(known)}"
            )
        return cls(**config)

    def activation_spec(self) -> ActivationSpec:
        """How :func:`brainalign.features.vision.activations` reads this network.

        Every ``layer_names`` tap by default (``"last"``: the last layer at the last timestep),
        uint8 images to the network's input by :func:`preprocess_images` (centre square,
        resize to ``image_size``, [-1, 1]), 64 images per batch; ``test_time_crop`` draws the
        paper code's random crop from ``step_generator(random_state, 2, batch_index)``.
        """
        return ActivationSpec(
            layers=tuple(self.layer_names),
            preprocess=_BLTInput(self.image_size),
            params={"image_size": self.image_size, "range": [-1, 1]},
            batch_size=64,
            random_crop=True,
            onnx=False,  # the exporter cannot trace the unrolled loop (SystemError in tracing)
        )

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"images: expected a (n, 3, H, W) tensor, got shape {tuple(x.shape)}")
        if x.shape[2] != self.image_size or x.shape[3] != self.image_size:
            raise InputError(
                f"images: this network takes {self.image_size}×{self.image_size} px inputs, got "
                f"{x.shape[2]}×{x.shape[3]}; resize them (brainalign.networks.preprocess_images)"
            )

    def forward(
        self,
        x: torch.Tensor,
        return_activations: bool = False,
        layers: Sequence[str] | None = None,
    ):
        """Run the unrolled network.

        Parameters
        ----------
        x : (n, 3, image_size, image_size) float tensor in [-1, 1]
        return_activations : bool
            Also return spatially averaged activations.
        layers : sequence of str, optional
            Names of the activations to return (default all ``layer_names``).

        Returns
        -------
        outputs : list of ``timesteps`` tensors (n, n_outputs)
        activations : dict of str -> (n, channels[l]) tensor, only if ``return_activations``
        """
        self._check_input(x)
        wanted = None
        if return_activations:
            wanted = set(self.layer_names if layers is None else layers)
            missing = wanted - set(self.layer_names)
            if missing:
                raise InputError(
                    f"layers: unknown names {sorted(missing)[:5]}; this network has "
                    f"{self.layer_names[0]} … {self.layer_names[-1]}"
                )
        acts: dict[str, torch.Tensor] = {}
        outputs: list[torch.Tensor] = []
        prev: list[torch.Tensor | None] = [None] * self.n_layers
        for t in range(self.timesteps):
            cur: list[torch.Tensor | None] = [None] * self.n_layers
            below = x
            for layer in range(self.n_layers):
                if layer in self.pool_before:
                    below = F.max_pool2d(below, 2)
                drive = self.bottom_up[layer](below)
                if t > 0:
                    if self.lateral:
                        drive = drive + self.lateral_convs[layer](prev[layer])
                    if self.topdown and layer < self.n_layers - 1:
                        above = prev[layer + 1]
                        if above.shape[-1] != drive.shape[-1] or above.shape[-2] != drive.shape[-2]:
                            above = F.interpolate(above, size=drive.shape[-2:], mode="nearest")
                        drive = drive + self.topdown_convs[layer](above)
                h = self.norms[layer](F.relu(drive))
                name = layer_name(layer, t)
                h = getattr(self, name)(h)
                if wanted is not None and name in wanted:
                    acts[name] = h.mean(dim=(2, 3))
                cur[layer] = h
                below = h
            outputs.append(self.readout(below.mean(dim=(2, 3))))
            prev = cur
        if return_activations:
            return outputs, acts
        return outputs


class _BLTInput:
    """uint8 images → a BLTNet's input; ``crop=(random_state, batch_index)``: a seeded random crop."""

    def __init__(self, image_size: int):
        self.image_size = image_size

    def __call__(self, images, device="cpu", crop: tuple[int, int] | None = None):
        gen = None if crop is None else step_generator(crop[0], 2, crop[1])
        return preprocess_images(
            images, self.image_size, random_crop=crop is not None, generator=gen, device=device
        )


__all__ = [
    "BLTNet",
    "VNET_CHANNELS",
    "VNET_KERNEL_SIZES",
    "VNET_POOL_BEFORE",
    "half_vnet_channels",
    "layer_name",
]
