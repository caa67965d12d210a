"""Vision-feature throughput as a fraction of the GEMM peak: PyTorch eager against ONNX Runtime.

    python benchmarks/bench_vision.py [--threads 1 2] [--images 400] [--repeats 3]

For EfficientNet-lite0 (the pipeline's zoo model, its ImageNet weights, layer ``_avg_pooling``)
and ResNet-18 (random weights, layer ``avgpool``: the user-model path of ``[[models]]``), with
1 and 2 threads (``torch.set_num_threads`` and ONNX Runtime's intra-op threads alike):

- the float32 GEMM peak with the same threads (4096³, the faster of numpy and torch);
- FLOPs per image, counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add,
  convolutions including depthwise ones, and the linear layers);
- images/s of ``features.vision.activations`` on ``--images`` random 425 × 425 uint8 images
  (NSD's size; preprocessing and the ONNX export included), before (``backend="torch"``, the
  path of every earlier version) and after (``backend="onnxruntime"``, what ``"auto"`` takes
  from 128 images on), and of the model alone on preprocessed batches of 4 (export excluded);
- each as a fraction of the peak by wall clock, and by CPU time (images and GEMM FLOPs per
  CPU-second of all threads; other jobs on the cores distort it less);
- the largest difference between the two backends' features, against their largest value.

ResNet-18 comes from torchvision when it imports; without it (PyPI's torchvision for torch 2.13
on Linux is a CUDA build that does not import next to the CPU torch) the same architecture is
read from ``examples/resnet18.py`` as a user's ``module`` model (BasicBlock × [2, 2, 2, 2],
11.7 M parameters, 1.8 G multiply-adds at 224 px).
Every number is the median of ``--repeats`` runs; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _median_times(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds (all threads) of ``fn()``."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def gemm_peak(repeats: int) -> tuple[float, float]:
    """Float32 GEMM GFLOP per second and per CPU-second (4096³, the faster of numpy and torch)."""
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((4096, 4096), dtype=np.float32)
    b = rng.standard_normal((4096, 4096), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    wall, cpu = np.inf, np.inf
    for fn in (lambda: a @ b, lambda: torch.mm(ta, tb)):
        fn()  # warm-up
        w, c = _median_times(fn, repeats)
        wall, cpu = min(wall, w), min(cpu, c)
    return 2 * 4096**3 / wall / 1e9, 2 * 4096**3 / cpu / 1e9


def forward_flops(module, size: int) -> float:
    """FLOPs of one ``size`` × ``size`` image through ``module`` (2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        module(torch.zeros(1, 3, size, size))
    return float(counter.get_total_flops())


def resnet18():
    """torchvision's ResNet-18 (random weights), or the same architecture from
    ``examples/resnet18.py`` read as a user's ``module`` model."""
    try:
        import torchvision

        return torchvision.models.resnet18(weights=None).eval(), "torchvision"
    except (ImportError, RuntimeError, OSError):
        pass
    import torch

    from brainalign.features.vision import load_module_model

    torch.manual_seed(0)
    net = load_module_model("resnet18", EXAMPLES / "resnet18.py").module
    with torch.no_grad():  # non-trivial batch-norm statistics, as trained weights have
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net, "examples/resnet18.py (torchvision does not import)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["efficientnet-lite0", "resnet18"])
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from brainalign.features.onnx_backend import OnnxTaps, onnx_available
    from brainalign.features.vision import Preprocess, VisionModel, activations, load_vision_model

    if not onnx_available():
        raise SystemExit("needs onnxruntime and onnx: pip install 'brainalign[fast]'")
    models = {}
    for name in args.models:
        if name == "efficientnet-lite0":
            models[name] = (load_vision_model(name), "_avg_pooling", "ImageNet weights")
        elif name == "resnet18":
            net, origin = resnet18()
            vm = VisionModel(net, Preprocess(224, 256), "resnet18", "resnet18@bench")
            models[name] = (vm, "avgpool", f"random weights, {origin}")
        else:
            raise SystemExit(f"unknown model {name!r}")
    images = np.random.default_rng(0).integers(0, 256, (args.images, 425, 425, 3), np.uint8)
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.images} images, "
          f"median of {args.repeats}")  # fmt: skip
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(threads):
            peak, cpu_peak = gemm_peak(args.repeats)
            print(f"GEMM peak ({threads} thread(s)): {peak:.1f} GFLOP/s; "
                  f"{cpu_peak:.1f} GFLOP per CPU-second")  # fmt: skip
            for name, (vm, layer, note) in models.items():
                gflop = forward_flops(vm.module, 224) / 1e9
                feats = {}

                def run(backend, vm=vm, layer=layer, feats=feats):
                    feats[backend] = activations(
                        vm, images, layers=[layer], backend=backend, verbose=False
                    )[layer]

                x = vm.preprocess(images[:4])
                taps = OnnxTaps(
                    vm.module, {layer: dict(vm.module.named_modules())[layer]}, "mean", x
                )

                def torch_model(vm=vm, x=x):
                    with torch.inference_mode():
                        vm.module(x)

                rates, cpu_rates = {}, {}
                for label, fn, n in (
                    ("torch, activations()", lambda: run("torch"), args.images),
                    ("onnxruntime, activations()", lambda: run("onnxruntime"), args.images),
                    ("torch, model alone", torch_model, 4),
                    ("onnxruntime, model alone", lambda taps=taps, x=x: taps(x), 4),
                ):
                    fn()  # warm-up (and the features)
                    wall, cpu = _median_times(fn, args.repeats)
                    # per CPU-second: less distorted by other jobs on the cores
                    rates[label], cpu_rates[label] = n / wall, n / cpu
                ref, new = feats["torch"], feats["onnxruntime"]
                diff = float(np.abs(ref - new).max())
                scale = float(np.abs(ref).max())
                for label, rate in rates.items():
                    cpu = cpu_rates[label]
                    rows.append(
                        (name, threads, label, rate, rate * gflop / peak, cpu * gflop / cpu_peak)
                    )
                    print(f"  {name} ({note}), {threads} thread(s), {label}: {rate:.1f} images/s, "
                          f"{rate * gflop:.1f} GFLOP/s = {100 * rate * gflop / peak:.0f} % of peak; "
                          f"by CPU time {100 * cpu * gflop / cpu_peak:.0f} % "
                          f"({gflop:.3f} GFLOP/image)")  # fmt: skip
                print(f"  {name}: features max |onnxruntime - torch| = {diff:.2e} "
                      f"(largest |value| {scale:.3g}; relative {diff / scale:.1e})")  # fmt: skip
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print("\n| model | threads | path | images/s | of GEMM peak | by CPU time |")
    print("|---|---|---|---|---|---|")
    for name, threads, label, rate, frac, cpu_frac in rows:
        print(
            f"| {name} | {threads} | {label} | {rate:.1f} | {100 * frac:.0f} % | {100 * cpu_frac:.0f} % |"
        )


if __name__ == "__main__":
    main()
