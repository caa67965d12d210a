"""Benchmark: exact top-5 cosine search of 1,000 queries in a 1,000,000 × 768 caption bank.

brainalign ``search_embeddings`` (the caption bank's search: bf16 candidates + exact float32
re-scoring, and plain float32) vs faiss-cpu ``IndexFlatIP`` (as installed, and with
``OPENBLAS_CORETYPE=SkylakeX``, which the OpenBLAS inside the faiss wheel needs to pick fast kernels
on this processor) vs chunked numpy (matmul + argpartition) vs torch (matmul + topk), all on the
same memory-mapped float32 file (one copy on disk; each method runs in its own process, faiss holds
its own copy while it runs). Also: the float16 bank's scores against float32, and identical top-1.

    python benchmarks/bench_bank.py                 # 1,000,000 × 768 (3 GB in a temp folder)
    python benchmarks/bench_bank.py --n 200000      # smaller

Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_bank(path, n, d, seed=0, chunk=100_000):
    rng = np.random.default_rng(seed)
    E = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, chunk):
        blk = rng.standard_normal((min(chunk, n - s), d), dtype=np.float32)
        E[s : s + len(blk)] = blk / np.linalg.norm(blk, axis=1, keepdims=True)
    E.flush()
    del E
    Q = rng.standard_normal((args_queries, d), dtype=np.float32)
    return Q / np.linalg.norm(Q, axis=1, keepdims=True)


args_queries = 1000


def worker(method, bank_path, q_path, out_path, k):
    E = np.load(bank_path, mmap_mode="r")
    Q = np.load(q_path)
    # warm the page cache so every method starts from the same state
    for s in range(0, len(E), 262_144):
        np.asarray(E[s : s + 262_144]).sum()
    t0 = time.perf_counter()
    if method.startswith("brainalign"):
        from brainalign.decoding import search_embeddings

        m = method.split(":")[1]
        scores, idx = search_embeddings(E, Q, k=k, method=m)
    elif method.startswith("faiss"):
        import faiss

        index = faiss.IndexFlatIP(E.shape[1])
        for s in range(0, len(E), 262_144):
            index.add(np.ascontiguousarray(E[s : s + 262_144]))
        t0 = time.perf_counter()  # search time only (adding copies the bank into faiss)
        scores, idx = index.search(Q, k)
    elif method == "numpy":
        best_s = np.full((len(Q), k), -np.inf, np.float32)
        best_i = np.zeros((len(Q), k), np.int64)
        for s in range(0, len(E), 65536):
            S = Q @ np.asarray(E[s : s + 65536]).T
            part = np.argpartition(-S, k - 1, axis=1)[:, :k]
            cs = np.concatenate([best_s, np.take_along_axis(S, part, 1)], 1)
            ci = np.concatenate([best_i, part + s], 1)
            o = np.argsort(-cs, axis=1)[:, :k]
            best_s, best_i = np.take_along_axis(cs, o, 1), np.take_along_axis(ci, o, 1)
        scores, idx = best_s, best_i
    elif method == "torch":
        import torch

        q = torch.from_numpy(Q)
        best_s = best_i = None
        with torch.inference_mode():
            for s in range(0, len(E), 65536):
                S = q @ torch.from_numpy(np.asarray(E[s : s + 65536])).T
                v, i = torch.topk(S, k, dim=1)
                if best_s is not None:
                    v, p = torch.topk(torch.cat([best_s, v], 1), k, dim=1)
                    i = torch.gather(torch.cat([best_i, i + s], 1), 1, p)
                else:
                    i = i + s
                best_s, best_i = v, i
        scores, idx = best_s.numpy(), best_i.numpy()
    else:
        raise SystemExit(f"unknown method {method}")
    elapsed = time.perf_counter() - t0
    np.savez(out_path, scores=scores, idx=idx)
    print(json.dumps({"method": method, "time_s": elapsed, "qps": len(Q) / elapsed}))


def run(method, bank, qpath, folder, k, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    out = Path(folder) / f"{method.replace(':', '_')}.npz"
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            method,
            "--bank",
            str(bank),
            "--queries-file",
            str(qpath),
            "--out",
            str(out),
            "-k",
            str(k),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        print(f"  {method}: failed\n{proc.stderr[-2000:]}")
        return None
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    z = np.load(out)
    res["scores"], res["idx"] = z["scores"], z["idx"]
    return res


def main():
    global args_queries
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--folder", default=None, help="where to put the bank (default: a temp folder)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", default=None)
    ap.add_argument("--bank", default=None)
    ap.add_argument("--queries-file", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.bank, a.queries_file, a.out, a.k)
    args_queries = a.queries
    with tempfile.TemporaryDirectory(dir=a.folder) as folder:
        bank = Path(folder) / "bank.npy"
        t0 = time.perf_counter()
        Q = make_bank(bank, a.n, a.d)
        qpath = Path(folder) / "q.npy"
        np.save(qpath, Q)
        print(
            f"bank {a.n} × {a.d} float32 ({bank.stat().st_size / 1e9:.1f} GB) made in {time.perf_counter() - t0:.0f} s; "
            f"{a.queries} queries, exact top-{a.k}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        plan = [
            ("brainalign:bf16", None),
            ("brainalign:float32", None),
            ("faiss", None),
            ("faiss+SkylakeX", {"OPENBLAS_CORETYPE": "SkylakeX"}),
            ("numpy", None),
            ("torch", None),
        ]
        results = {}
        for method, env in plan:
            r = run(
                "faiss" if method.startswith("faiss") else method, bank, qpath, folder, a.k, env
            )
            if r is None:
                continue
            results[method] = r
            print(f"  {method:20s} {r['time_s']:8.2f} s  {r['qps']:8.1f} queries/s", flush=True)
        ref = results.get("torch") or results.get("brainalign:float32")
        best_peer = max(
            (r["qps"] for m, r in results.items() if not m.startswith("brainalign")), default=None
        )
        summary = {}
        for m in ("brainalign:bf16", "brainalign:float32"):
            if m in results and best_peer:
                summary[f"{m} / fastest peer (qps ratio)"] = results[m]["qps"] / best_peer
        for m, r in results.items():
            if ref is not None:
                summary[f"top1 identical to torch: {m}"] = float(
                    (r["idx"][:, 0] == ref["idx"][:, 0]).mean()
                )
                summary[f"top5 identical to torch: {m}"] = float((r["idx"] == ref["idx"]).mean())
        # float16 bank: same search on a float16 copy
        E = np.load(bank, mmap_mode="r")
        bank16 = Path(folder) / "bank16.npy"
        E16 = np.lib.format.open_memmap(bank16, mode="w+", dtype=np.float16, shape=E.shape)
        for s in range(0, len(E), 100_000):
            E16[s : s + 100_000] = E[s : s + 100_000]
        E16.flush()
        del E16, E
        bank.unlink()  # keep one copy
        r16 = run("brainalign:bf16", bank16, qpath, folder, a.k)
        if r16 is not None and ref is not None:
            print(
                f"  {'float16 bank (bf16)':20s} {r16['time_s']:8.2f} s  {r16['qps']:8.1f} queries/s"
            )
            summary["float16 bank: max |score − float32 score|"] = float(
                np.abs(r16["scores"] - ref["scores"]).max()
            )
            summary["float16 bank: top1 identical"] = float(
                (r16["idx"][:, 0] == ref["idx"][:, 0]).mean()
            )
            results["brainalign:bf16 (float16 bank)"] = r16
        print("\nsummary:")
        for kk, v in summary.items():
            print(f"  {kk:55s} {v:.4g}")
        if a.json:
            Path(a.json).write_text(
                json.dumps(
                    {
                        "results": {
                            m: {kk: vv for kk, vv in r.items() if kk not in ("scores", "idx")}
                            for m, r in results.items()
                        },
                        "summary": summary,
                    },
                    indent=2,
                )
            )


if __name__ == "__main__":
    main()
