"""Image preprocessing and the paper's training augmentations, in plain torch (CPU or CUDA).

The authors' TensorFlow pipeline (paper_methods §7.2): a random square crop of at least 1/3 of
the image area resized to ``image_size``; for training a horizontal flip, brightness ±32/255,
saturation 0.5–1.5 and contrast 0.5–1.5; pixels scaled to [-1, 1]. Here crops, flips and the
resize are one batched ``grid_sample`` call, and every random draw comes from an explicit
``torch.Generator``, so a batch's augmentation is a function of the seed and the step alone.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from brainalign.errors import InputError


def to_tensor(images: np.ndarray, device="cpu") -> torch.Tensor:
    """``(n, H, W, 3)`` uint8 images → ``(n, 3, H, W)`` float32 in [0, 1] on ``device``."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise InputError(
            f"images: expected (n, H, W, 3) uint8 RGB images, got shape {images.shape}"
        )
    if images.dtype != np.uint8:
        raise InputError(
            f"images: expected dtype uint8 (0–255), got {images.dtype}; convert with "
            "np.clip(x * 255, 0, 255).astype(np.uint8) if they are floats in [0, 1]"
        )
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def _crop_grid(
    n: int, size: int, scale: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    # affine_grid works in normalised coordinates [-1, 1]: a crop of side fraction s centred at
    # (cx, cy) maps output [-1, 1] to input [c - s, c + s]; a flip negates the x scale
    theta = torch.zeros(n, 2, 3, dtype=torch.float32, device=scale.device)
    theta[:, 0, 0] = scale * torch.where(flip, -1.0, 1.0)
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = scale
    theta[:, 1, 2] = cy
    return F.affine_grid(theta, (n, 3, size, size), align_corners=False)


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop ``(n, 3, H, W)`` images to a square and resize to ``size`` (bilinear, antialiased)."""
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top : top + side, left : left + side]
    if side == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def random_crop_resize(
    x: torch.Tensor,
    size: int,
    generator: torch.Generator,
    min_area: float = 1 / 3,
    flip: bool = False,
) -> torch.Tensor:
    """Random square crops covering ``min_area``–1 of each image's area, resized to ``size``.

    Parameters
    ----------
    x : (n, 3, H, W) float tensor
    size : int
        Output side in pixels.
    generator : torch.Generator
        Source of randomness (on the CPU; draws are moved to ``x``'s device).
    min_area : float
        Smallest crop area as a fraction of the (square) image area (paper: 1/3).
    flip : bool
        Also flip each image horizontally with probability 1/2.
    """
    if not 0 < min_area <= 1:
        raise InputError(f"min_area: expected a fraction in (0, 1], got {min_area}")
    x = resize_square(x, max(size, min(x.shape[-2:])))
    n = x.shape[0]
    area = min_area + (1 - min_area) * torch.rand(n, generator=generator)
    scale = area.sqrt()
    # the crop centre keeps the whole crop inside the image
    cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - scale)
    cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - scale)
    flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    dev = x.device
    grid = _crop_grid(n, size, scale.to(dev), cx.to(dev), cy.to(dev), flips.to(dev))
    if x.shape[-1] > 2 * size:
        # shrink first so bilinear sampling does not alias on large sources
        x = F.interpolate(
            x, size=(2 * size, 2 * size), mode="bilinear", align_corners=False, antialias=True
        )
    return F.grid_sample(
        x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def color_jitter(
    x: torch.Tensor,
    generator: torch.Generator,
    brightness: float = 32 / 255,
    saturation: tuple[float, float] = (0.5, 1.5),
    contrast: tuple[float, float] = (0.5, 1.5),
) -> torch.Tensor:
    """Random brightness shift, saturation and contrast factors per image (TF semantics), clipped to [0, 1]."""
    n = x.shape[0]
    dev = x.device

    def draw(lo, hi):
        return (lo + (hi - lo) * torch.rand(n, generator=generator)).to(dev).view(n, 1, 1, 1)

    x = x + draw(-brightness, brightness)
    gray = _grayscale(x)
    x = gray + (x - gray) * draw(*saturation)
    mean = _grayscale(x).mean(dim=(2, 3), keepdim=True)
    x = mean + (x - mean) * draw(*contrast)
    return x.clamp_(0.0, 1.0)


def preprocess_images(
    images: np.ndarray | torch.Tensor,
    image_size: int,
    *,
    augment: bool = False,
    random_crop: bool = False,
    generator: torch.Generator | None = None,
    device="cpu",
) -> torch.Tensor:
    """uint8 images → the network's input: ``(n, 3, image_size, image_size)`` in [-1, 1].

    Parameters
    ----------
    images : (n, H, W, 3) uint8 array, or (n, 3, H, W) float tensor in [0, 1]
    image_size : int
        Output side in pixels.
    augment : bool
        Training augmentations: random crop ≥ 1/3 of the area, flip, brightness, saturation,
        contrast. Needs ``generator``.
    random_crop : bool
        Random crop without the other augmentations: the behaviour of the paper's code at test
        time, kept only as a compatibility flag. Needs ``generator``.
    generator : torch.Generator, optional
        Randomness for ``augment`` / ``random_crop``.
    device : str or torch.device
        Where the result lives.

    Without ``augment`` and ``random_crop`` the result is deterministic: centre square crop and
    an antialiased bilinear resize.
    """
    x = images if isinstance(images, torch.Tensor) else to_tensor(images, device)
    x = x.to(device)
    if (augment or random_crop) and generator is None:
        raise InputError("generator: augment=True or random_crop=True needs a torch.Generator")
    if augment or random_crop:
        x = random_crop_resize(x, image_size, generator, flip=augment)
        if augment:
            x = color_jitter(x, generator)
    else:
        x = resize_square(x, image_size)
    return x * 2.0 - 1.0


def step_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``(seed, *keys)`` (e.g. seed, epoch, step)."""
    ss = np.random.SeedSequence([int(seed), *[int(k) for k in keys]])
    g = torch.Generator()
    g.manual_seed(int(ss.generate_state(1, dtype=np.uint64)[0] % (2**63 - 1)))
    return g


__all__ = [
    "color_jitter",
    "preprocess_images",
    "random_crop_resize",
    "resize_square",
    "step_generator",
    "to_tensor",
]
