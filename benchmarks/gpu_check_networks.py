"""GPU check of brainalign.networks: the paper-size BLT-vNet on CUDA with mixed precision.

Self-contained (random data, no files needed); < 2 min on an H100. It

1. checks that the paper's network (half vNet channels, 10 layers, 6 timesteps, 128 px) gives
   the same outputs on CUDA (float32, TF32 off) as on the CPU;
2. trains it for a few dozen steps (batch 96, bfloat16 autocast, the paper's augmentations,
   cosine-distance loss at every timestep) on random images whose targets depend on the image,
   checks that the loss decreases, and reports training images/s;
3. extracts all 60 layer × timestep activations with mixed precision and reports images/s.

Exits non-zero on any mismatch.  Usage: ``python benchmarks/gpu_check_networks.py [--steps 36]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from brainalign.networks import BLTNet, ImageData, activations, train


def make_data(n: int, d: int, seed: int = 0) -> ImageData:
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 160, 160, 3)) * 255).astype(np.uint8)
    # targets: a shared direction (as caption embeddings have) + a function of the image colours
    colour = images.reshape(n, -1, 3).mean(1) / 255.0 - 0.5
    W = rng.standard_normal((3, d))
    mean = rng.standard_normal(d)
    targets = (0.5 * mean + 4.0 * colour @ W + 0.1 * rng.standard_normal((n, d))).astype(np.float32)
    return ImageData(images, {"mpnet": targets}, name="random")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=36)
    parser.add_argument("--batch-size", type=int, default=96)
    parser.add_argument("--device", default="cuda", help="'cpu' with --width 0.0625 is a smoke run")
    parser.add_argument("--width", type=float, default=1.0, help="1.0 = the paper's half channels")
    args = parser.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("FAIL: no CUDA device")
        return 1
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda *a: None)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}; width {args.width}")
    failures = []

    # 1. CPU vs CUDA forward (float32, no TF32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    net = BLTNet(768, width=args.width).eval()
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        cpu_out, cpu_acts = net(x, return_activations=True)
        net.to(dev)
        gpu_out, gpu_acts = net(x.to(dev), return_activations=True)
    err = max(float((a - b.cpu()).abs().max()) for a, b in zip(cpu_out, gpu_out, strict=True))
    act_err = max(float((cpu_acts[k] - gpu_acts[k].cpu()).abs().max()) for k in cpu_acts)
    ok = err < 1e-3 and act_err < 1e-3
    print(
        f"[1] CPU vs CUDA float32: max |Δ output| {err:.2e}, max |Δ activation| {act_err:.2e} -> {'ok' if ok else 'FAIL'}"
    )
    if not ok:
        failures.append("cpu/cuda mismatch")
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True

    # 2. training with mixed precision
    bs = args.batch_size
    n_train = bs * 4
    epochs = max(1, args.steps // 4)
    data = make_data(n_train + 2 * bs, 768)
    train_data = data.subset(np.arange(n_train))
    val = data.subset(np.arange(n_train, n_train + 2 * bs))
    torch.manual_seed(1)
    net = BLTNet(768, width=args.width)
    # warm-up (cuDNN autotuning, allocator) outside the timed run
    train(
        net,
        train_data.subset(np.arange(bs)),
        "mpnet",
        epochs=1,
        batch_size=bs,
        device=dev,
        verbose=False,
    )
    torch.manual_seed(1)
    net = BLTNet(768, width=args.width)
    sync()
    t0 = time.perf_counter()
    res = train(
        net, train_data, "mpnet", val_data=val, epochs=epochs, batch_size=bs, lr=1e-3, device=dev,
        mixed_precision=True, verbose=False,
    )  # fmt: skip
    sync()
    dt = time.perf_counter() - t0
    steps = res.step
    first, last = res.history[0]["train_loss"], res.history[-1]["train_loss"]
    v0, v1 = 1 - res.initial["val_cosine"], 1 - res.history[-1]["val_cosine"]
    ok = last < first and v1 < v0
    print(
        f"[2] train {steps} steps × {bs} images (6 timesteps, 128 px, bf16): {steps * bs / dt:.1f} images/s "
        f"(incl. {len(res.history)} validations); train loss {first:.4f} -> {last:.4f}; "
        f"held-out cosine distance {v0:.4f} -> {v1:.4f} -> {'ok' if ok else 'FAIL'}"
    )
    if dev.type == "cuda":
        print(f"    peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2**30:.1f} GiB")
    if not ok:
        failures.append("loss did not decrease")

    # 3. activations (all 60 layer × timestep outputs), mixed precision
    imgs = (np.random.default_rng(2).random((512, 128, 128, 3)) * 255).astype(np.uint8)
    activations(res.net, imgs[:64], batch_size=64, device=dev, mixed_precision=dev.type == "cuda")
    sync()
    t0 = time.perf_counter()
    acts = activations(
        res.net, imgs, batch_size=128, device=dev, mixed_precision=dev.type == "cuda"
    )
    sync()
    dt = time.perf_counter() - t0
    finite = all(np.isfinite(a).all() for a in acts.values())
    ok = len(acts) == 60 and finite
    print(
        f"[3] activations: {len(acts)} layers × timesteps, {len(imgs) / dt:.1f} images/s, finite={finite} -> {'ok' if ok else 'FAIL'}"
    )
    if not ok:
        failures.append("activations")

    print("RESULT:", "ok" if not failures else "FAIL " + ", ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
