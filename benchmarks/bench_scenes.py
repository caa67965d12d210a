"""Timing of the stimulus layer: procedural scenes and COCO folders.

There is no peer tool for procedural scenes; the requirement (issue 2) is that rendering 2,000
images at 425 px takes well under a minute on one core. For COCO, the peer is a plain reading of
the JSON files (what pycocotools' ``COCO`` index does) compared for equality with brainalign's
readers.

Usage: python benchmarks/bench_scenes.py [--n 2000] [--coco ../shared/data/coco_mini]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from brainalign.datasets.coco import load_coco_folder, read_coco_captions, read_coco_instances
from brainalign.datasets.scenes import make_scenes


def _plain_captions(path):
    data = json.loads(Path(path).read_text())
    out = {}
    for a in data["annotations"]:
        out.setdefault(a["image_id"], []).append(a["caption"])
    return out


def _plain_instances(path):
    data = json.loads(Path(path).read_text())
    ids = sorted(c["id"] for c in data["categories"])
    out = {im["id"]: np.zeros(len(ids), np.uint8) for im in data["images"]}
    for a in data["annotations"]:
        out[a["image_id"]][ids.index(a["category_id"])] = 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument(
        "--coco", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data"
    )
    args = ap.parse_args()

    with threadpool_limits(1):
        t = time.perf_counter()
        s = make_scenes(args.n, random_state=0)
        t_make = time.perf_counter() - t
        t = time.perf_counter()
        imgs = s.render(np.arange(args.n), size=425)
        t_render = time.perf_counter() - t
    again = make_scenes(args.n, random_state=0)
    k = min(args.n, 200)
    same = again.render(np.arange(k), 425).tobytes() == imgs[:k].tobytes()
    print(f"make_scenes({args.n}) incl. captions + representations: {t_make:.2f} s")
    print(
        f"render {args.n} × 425 px, one thread: {t_render:.2f} s ({1e3 * t_render / args.n:.2f} ms/img)"
    )
    print(f"deterministic bytes: {same}")

    mini = args.coco / "coco_mini"
    if mini.exists():
        cap = mini / "annotations" / "captions_train2017.json"
        inst = mini / "annotations" / "instances_train2017.json"
        t = time.perf_counter()
        ref_c, ref_i = _plain_captions(cap), _plain_instances(inst)
        t_plain = time.perf_counter() - t
        t = time.perf_counter()
        got_c, (got_i, _) = read_coco_captions(cap), read_coco_instances(inst)
        t_ours = time.perf_counter() - t
        agree = ref_c == got_c and all(np.array_equal(ref_i[k], got_i[k]) for k in ref_i)
        print(
            f"COCO readers: plain json {t_plain * 1e3:.1f} ms, brainalign {t_ours * 1e3:.1f} ms "
            f"(ratio {t_ours / t_plain:.2f}), agree: {agree}"
        )
        full = args.coco / "coco_val2017_captions" / "captions_val2017.json"
        t = time.perf_counter()
        cs = load_coco_folder(mini, caption_files=[full])
        print(f"load_coco_folder(coco_mini, {len(cs)} images): {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
