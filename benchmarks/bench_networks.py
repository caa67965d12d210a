"""BLTNet activations: brainalign.networks.activations (pooled inside the forward) vs the
generic forward-hook extractor brainalign.features.vision.activations on the same net and
images. Prints both timings, the ratio and whether the results agree.

    python benchmarks/bench_networks.py [--n 256] [--width 0.125] [--timesteps 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from brainalign.features.vision import activations as hook_activations
from brainalign.networks import BLTNet, activations, preprocess_images


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--width", type=float, default=0.125)
    p.add_argument("--timesteps", type=int, default=6)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = BLTNet(768, width=args.width, timesteps=args.timesteps, image_size=args.image_size).eval()
    images = (np.random.default_rng(0).random((args.n, 160, 160, 3)) * 255).astype(np.uint8)
    layers = net.layer_names

    t0 = time.perf_counter()
    ours = activations(net, images, batch_size=64)
    t_ours = time.perf_counter() - t0

    def prep(x, device="cpu"):
        return preprocess_images(x, net.image_size, device=device)

    t0 = time.perf_counter()
    hooks = hook_activations(net, images, layers=layers, batch_size=64, preprocess=prep)
    t_hooks = time.perf_counter() - t0
    err = max(float(np.abs(ours[k] - hooks[k]).max()) for k in layers)
    print(
        f"{args.n} images, {len(layers)} layer×timestep outputs, width {args.width}, {args.image_size} px"
    )
    print(f"brainalign.networks.activations : {t_ours:.2f} s ({args.n / t_ours:.1f} images/s)")
    print(f"features.vision.activations (hooks): {t_hooks:.2f} s ({args.n / t_hooks:.1f} images/s)")
    print(
        f"ratio hooks/ours: {t_hooks / t_ours:.2f}; max |difference| {err:.2e}; agree: {err < 1e-5}"
    )


if __name__ == "__main__":
    main()
