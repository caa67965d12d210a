"""Caption embeddings: brainalign's ``caption_embeddings`` vs plain ``SentenceTransformer.encode``.

Same real COCO val2017 captions, same model (all-mpnet-base-v2, offline), one run:

1. plain: ``SentenceTransformer(path).encode(all captions)`` then the mean per image;
2. brainalign, cold cache: ``caption_embeddings(captions_per_image, encoder)`` (dedup, token-length
   batches, inference mode, persistent cache being written);
3. brainalign, warm cache: the same call again (only look-ups).

Prints captions/s, the speed-up, and the max abs difference of the image embeddings (goal < 1e-5).

    python benchmarks/bench_embeddings.py --images 300            # ~1,500 captions
    python benchmarks/bench_embeddings.py --images 5000 --device cuda:0   # all 25,014 captions
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

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_captions(data: Path, n_images: int) -> list[list[str]]:
    path = data / "coco_val2017_captions" / "captions_val2017.json"
    ann = json.loads(path.read_text())["annotations"]
    by_image: dict[int, list[str]] = {}
    for a in ann:
        by_image.setdefault(a["image_id"], []).append(a["caption"])
    ids = sorted(by_image)[:n_images]
    return [by_image[i] for i in ids]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--images", type=int, default=300, help="COCO val images (about 5 captions each)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--batch-size", type=int, default=32, help="plain encode batch size (its default)"
    )
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("BRAINALIGN_SHARED_DATA", DEFAULT_DATA))
    )
    args = parser.parse_args(argv)

    # a fresh cache, so the first brainalign run really computes everything
    os.environ["BRAINALIGN_CACHE"] = tempfile.mkdtemp(prefix="bench_embeddings_")
    import torch

    from brainalign.features import SentenceEncoder, caption_embeddings

    captions = load_captions(args.data, args.images)
    flat = [c for caps in captions for c in caps]
    n = len(flat)
    print(
        f"{len(captions)} images, {n} captions ({len(set(flat))} unique), device {args.device}, "
        f"torch threads {torch.get_num_threads()}"
    )

    enc = SentenceEncoder("all-mpnet-base-v2", device=args.device)
    plain_model = enc.model  # the very same weights, loaded once
    warm = flat[:64]
    plain_model.encode(warm, batch_size=args.batch_size)
    enc.encode(warm)

    t0 = time.perf_counter()
    plain = plain_model.encode(flat, batch_size=args.batch_size, convert_to_numpy=True)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_plain = time.perf_counter() - t0
    counts = np.array([len(c) for c in captions])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    plain_images = (
        np.add.reduceat(plain.astype(np.float64), starts, axis=0) / counts[:, None]
    ).astype(np.float32)

    t0 = time.perf_counter()
    ours = caption_embeddings(captions, enc)
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    cached = caption_embeddings(captions, enc)
    t_cached = time.perf_counter() - t0

    diff = float(np.abs(ours - plain_images).max())
    same_cache = bool(np.array_equal(ours, cached))
    speedup = t_plain / t_ours
    cache_speedup = t_ours / t_cached
    print(f"plain SentenceTransformer.encode : {t_plain:8.2f} s  {n / t_plain:8.1f} captions/s")
    print(
        f"brainalign caption_embeddings   : {t_ours:8.2f} s  {n / t_ours:8.1f} captions/s  "
        f"(×{speedup:.2f} vs plain; goal ≥ 1.5)"
    )
    print(
        f"brainalign from cache           : {t_cached:8.3f} s  {n / t_cached:8.0f} captions/s  "
        f"(×{cache_speedup:.0f} vs first run; goal ≥ 100)"
    )
    print(
        f"max |brainalign − plain| over image embeddings: {diff:.2e} (goal < 1e-5); "
        f"cache returns identical rows: {same_cache}"
    )
    ok = diff < 1e-5 and same_cache
    print("RESULT:", "agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
