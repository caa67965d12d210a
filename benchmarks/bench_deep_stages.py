"""Throughput of the demo's three deep-learning stages, as a fraction of the machine's GEMM peak.

    python benchmarks/bench_deep_stages.py [--threads 1] [--captions 400] [--images 200]

Measures, on one small virtual NSD with a training pool (built in a temporary folder):

- the float32 GEMM peak of this machine (numpy, 4096³), with ``--threads`` threads;
- caption embedding (MPNet, as the ``caption_embeddings`` / ``features`` stages run it, cache off):
  captions per second and GFLOP/s at ~2.7 GFLOP per caption;
- EfficientNet-lite0 features (the ``zoo_features`` stage's call): images per second, 0.77 GFLOP
  per image;
- BLT-vNet training at the demo's settings (the ``train_network`` stage's call on the pool):
  images per second, with the network's forward FLOPs counted by hooks (training ≈ 3× forward);
- reading images from NSD's HDF5 brick: the old fancy-indexing read against the per-image read
  the stages use now (the same bytes).

The pipeline runs each task single-threaded (``compute.threads_per_task = 1``), so ``--threads 1``
gives the numbers that matter for a run; the stages use both cores by running side by side.
Run it on an idle machine: every number is a median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

MPNET_GFLOP_PER_CAPTION = 2.7  # 2 × 110 M parameters × ~12 tokens
# EfficientNet-lite0 at 224 px, 2 FLOPs per multiply-add (torch's FlopCounterMode; 0.4 before
# counted multiply-adds, which halved the fraction of peak: see bench_vision.py)
EFFNET_GFLOP_PER_IMAGE = 0.77


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_peak(repeats: int) -> float:
    """Float32 GEMM GFLOP/s (4096 × 4096 × 4096)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4096, 4096), dtype=np.float32)
    b = rng.standard_normal((4096, 4096), dtype=np.float32)
    a @ b  # warm-up
    return 2 * 4096**3 / _median_time(lambda: a @ b, repeats) / 1e9


def conv_forward_flops(net, image_size: int) -> float:
    """Forward FLOPs of one image through ``net`` (convolutions and linear layers, 2 × MACs)."""
    import torch

    total = [0.0]

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total[0] += 2.0 * k * output.numel()
        elif isinstance(module, torch.nn.Linear):
            total[0] += 2.0 * module.in_features * output.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.inference_mode():
        net(torch.zeros(1, 3, image_size, image_size))
    for h in handles:
        h.remove()
    return total[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--captions", type=int, default=400)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from brainalign.datasets import load_stimuli, make_virtual_nsd
    from brainalign.datasets.nsd import ImageBrick
    from brainalign.features import SentenceEncoder, embed_texts
    from brainalign.networks import BLTNet, train
    from brainalign.networks.data import from_coco
    from brainalign.networks.zoo import model_features

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_deep_"))
    root = make_virtual_nsd(
        tmp / "nsd", n_subjects=1, n_shared=60, n_unique=160, n_sessions=4,
        spaces=("fsaverage",), n_training_pool=args.images, verbose=False,
    )  # fmt: skip
    stim = load_stimuli(root)
    rows = []
    with threadpool_limits(args.threads):
        peak = gemm_peak(args.repeats)
        print(f"GEMM peak ({args.threads} thread(s)): {peak:.0f} GFLOP/s")

        texts = sorted({c for caps in stim.captions for c in caps})[: args.captions]
        enc = SentenceEncoder("all-mpnet-base-v2")
        embed_texts(texts[:8], enc, cache=False)  # load the model
        t = _median_time(lambda: embed_texts(texts, enc, cache=False), args.repeats)
        rate = len(texts) / t
        rows.append(("caption embedding (MPNet)", f"{rate:.1f} captions/s",
                     rate * MPNET_GFLOP_PER_CAPTION))  # fmt: skip

        ids = stim.image_ids[: min(args.images, len(stim.image_ids))]
        load = lambda i: stim.images(np.asarray(i, dtype=np.int64))  # noqa: E731
        model_features("efficientnet-lite0", load, ids=ids[:8], verbose=False)
        t = _median_time(
            lambda: model_features("efficientnet-lite0", load, ids=ids, verbose=False),
            args.repeats,
        )
        rate = len(ids) / t
        rows.append(("vision features (EfficientNet-lite0)", f"{rate:.1f} images/s",
                     rate * EFFNET_GFLOP_PER_IMAGE))  # fmt: skip

        data = from_coco(root / "training_pool", "train2017", targets=("multihot",))
        settings = {"epochs": 1, "batch_size": 32, "lr": 2e-3, "random_state": 0}

        def run_training():
            net = BLTNet(n_outputs=data.target("multihot").shape[1], n_layers=10, timesteps=2,
                         width=0.125, image_size=64)  # fmt: skip
            train(net, data, "multihot", verbose=False, resume=False, **settings)

        t = _median_time(run_training, args.repeats)
        rate = len(data) / t
        flops = conv_forward_flops(
            BLTNet(n_outputs=18, n_layers=10, timesteps=2, width=0.125, image_size=64), 64
        )
        rows.append(("network training (BLT-vNet, demo)", f"{rate:.1f} images/s",
                     rate * 3 * flops / 1e9))  # fmt: skip

        brick = ImageBrick(root / "nsddata_stimuli" / "stimuli" / "nsd" / "nsd_stimuli.hdf5")
        sel = np.sort(np.random.default_rng(0).choice(stim.image_ids, 32, replace=False))
        import h5py

        def fancy():
            with h5py.File(brick.path, "r") as f:
                return f["imgBrick"][sel]

        t_old = _median_time(fancy, args.repeats)
        t_new = _median_time(lambda: brick(sel), args.repeats)
        assert np.array_equal(fancy(), brick(sel))
        print(f"image brick, 32 images: fancy indexing {t_old * 1e3:.0f} ms, "
              f"per-image reads {t_new * 1e3:.0f} ms ({t_old / t_new:.0f}x), same bytes")  # fmt: skip

    print(f"\n{'stage':<40} {'throughput':>18} {'GFLOP/s':>9} {'of peak':>8}")
    for name, rate, gflops in rows:
        print(f"{name:<40} {rate:>18} {gflops:>9.1f} {gflops / peak:>8.0%}")


if __name__ == "__main__":
    main()
