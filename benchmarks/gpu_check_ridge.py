"""GPU check for the encoding/decoding kernels (run on a CUDA machine; < 2 min on an H100).

1. ``ridge_cv`` (K-fold, per-target alphas), ``cv="loo"``, ``fracridge_cv`` and the dual solver on
   ``device="cuda"`` agree with the numpy backend (same alphas/fraction, predictions to 1e-4
   relative);
2. timing of the benchmark problem (X 9,000 × 768, 10 alphas, 5 folds) on CUDA, extrapolated to
   327,684 vertices;
3. the caption-bank search on CUDA (bf16 candidates + exact float32) equals the CPU float32 search.

Prints the results; exits with status 1 on any mismatch.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("CUDA is not available here: nothing to check")
        return 1
    from brainalign.decoding import search_embeddings
    from brainalign.encoding import fracridge_cv, ridge_cv

    failures = []
    rng = np.random.default_rng(0)

    def rel(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    # 1. agreement with the numpy backend
    n, p, t = 3000, 256, 2000
    X = rng.standard_normal((n, p), dtype=np.float32)
    Y = X @ (
        rng.standard_normal((p, t), dtype=np.float32) * np.logspace(-2, 0, t, dtype=np.float32) / 16
    )
    Y += rng.standard_normal((n, t), dtype=np.float32) + 3.0
    Xt = rng.standard_normal((200, p), dtype=np.float32)
    alphas = np.logspace(-2, 7, 10)
    for name, kw in [("kfold", dict(cv=5)), ("loo", dict(cv="loo")), ("gcv", dict(cv="gcv"))]:
        a = ridge_cv(X, Y, alphas, backend="numpy", **kw)
        b = ridge_cv(X, Y, alphas, backend="torch", device="cuda", **kw)
        same = float(np.isclose(a.alphas, b.alphas).mean())
        err = rel(b.predict(Xt), a.predict(Xt))
        print(
            f"ridge {name:6s} cuda vs numpy: same alpha {same:.4f}, prediction rel. diff {err:.1e}"
        )
        if same < 0.995 or err > 1e-4:
            failures.append(f"ridge {name}")
    a = fracridge_cv(X, Y[:, :300], backend="numpy")
    b = fracridge_cv(X, Y[:, :300], backend="torch", device="cuda")
    err = rel(b.predict(Xt), a.predict(Xt))
    print(
        f"fracridge cuda vs numpy: fraction {a.fraction:.3f} vs {b.fraction:.3f}, prediction rel. diff {err:.1e}"
    )
    if a.fraction != b.fraction or err > 1e-3:
        failures.append("fracridge")
    Xd = rng.standard_normal((600, 5000), dtype=np.float32)  # decoder shape: units ≫ images
    Yd = Xd[:, :64] + rng.standard_normal((600, 64), dtype=np.float32)
    a = ridge_cv(Xd, Yd, alphas, backend="numpy")
    b = ridge_cv(Xd, Yd, alphas, backend="torch", device="cuda")
    err = rel(b.predict(Xd[:50]), a.predict(Xd[:50]))
    print(
        f"dual (5000 units → 64 dims) cuda vs numpy: same alpha {np.isclose(a.alphas, b.alphas).mean():.3f}, rel. diff {err:.1e}"
    )
    if err > 1e-3:
        failures.append("dual")

    # 2. timing at benchmark size
    n, p = 9000, 768
    X = rng.standard_normal((n, p), dtype=np.float32)
    Y = rng.standard_normal((n, 20000), dtype=np.float32) + X[:, :1]
    ridge_cv(X, Y[:, :500], alphas, backend="torch", device="cuda")  # warm-up
    times = {}
    for t in (5000, 20000):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        ridge_cv(X, Y[:, :t], alphas, backend="torch", device="cuda")
        torch.cuda.synchronize()
        times[t] = time.perf_counter() - t0
    slope = (times[20000] - times[5000]) / 15000
    print(
        f"ridge 5-fold on cuda, 9000 × 768, 10 alphas: {times[5000]:.2f} s (5,000 targets), "
        f"{times[20000]:.2f} s (20,000); 10,000 ≈ {times[5000] + 5000 * slope:.2f} s; "
        f"327,684 vertices ≈ {times[20000] + (327684 - 20000) * slope:.1f} s"
    )

    # 3. bank search on cuda
    E = rng.standard_normal((300_000, 768), dtype=np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    Q = rng.standard_normal((1000, 768), dtype=np.float32)
    s_cpu, i_cpu = search_embeddings(E[:100_000], Q[:200], k=5, method="float32")
    s_gpu, i_gpu = search_embeddings(E[:100_000], Q[:200], k=5, method="bf16", device="cuda")
    same = float((i_cpu == i_gpu).mean())
    print(
        f"bank search cuda bf16+exact vs cpu float32: identical top-5 {same:.4f}, max score diff {np.abs(s_cpu - s_gpu).max():.1e}"
    )
    if same < 1.0 or np.abs(s_cpu - s_gpu).max() > 1e-4:
        failures.append("bank search")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    search_embeddings(E, Q, k=5, device="cuda")
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(
        f"bank search cuda: 1,000 queries × 300,000 × 768 in {dt:.2f} s ({1000 / dt:.0f} queries/s; host→device copies included)"
    )

    if failures:
        print("MISMATCH:", ", ".join(failures))
        return 1
    print("all GPU checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
