"""BLTNet activations: the one extractor (brainalign.features.vision.activations, forward hooks
on the network's layer × timestep taps) vs the network's own pooled forward
(``net(x, return_activations=True)``, what the networks read before there was one extractor),
on the same net and images. Prints both timings, the ratio and whether the results agree.

    python benchmarks/bench_networks.py [--n 256] [--width 0.125] [--timesteps 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

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

    t0 = time.perf_counter()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in layers}
    with torch.inference_mode():
        for lo in range(0, args.n, 64):
            x = preprocess_images(images[lo : lo + 64], net.image_size)
            for k, v in net(x, return_activations=True)[1].items():
                parts[k].append(v.numpy())
    t_own = time.perf_counter() - t0
    own = {k: np.concatenate(v) for k, v in parts.items()}
    err = max(float(np.abs(ours[k] - own[k]).max()) for k in layers)
    print(
        f"{args.n} images, {len(layers)} layer×timestep outputs, width {args.width}, {args.image_size} px"
    )
    print(f"activations() (hooks)          : {t_ours:.2f} s ({args.n / t_ours:.1f} images/s)")
    print(f"the network's own pooled forward: {t_own:.2f} s ({args.n / t_own:.1f} images/s)")
    print(
        f"ratio extractor/own: {t_ours / t_own:.2f}; max |difference| {err:.2e}; agree: {err < 1e-5}"
    )


if __name__ == "__main__":
    main()
