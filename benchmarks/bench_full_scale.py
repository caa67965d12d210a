"""One NSD subject at the real size on full fsaverage, step by step: wall time and peak memory.

    python benchmarks/bench_full_scale.py --root /big/disk/folder \\
        [--images 10000] [--shared 1000] [--sessions 40] [--fs-dir PATH] [--steps ...]

Issue 15. Writes one virtual subject (``--images`` images seen 3 times over ``--sessions``
sessions) on full fsaverage (327,684 vertices; the mesh comes from ``--fs-dir``: a FreeSurfer
fsaverage folder or the neuropythy sphere folder in ``../shared/data``), then runs each step in
its own process and records its wall time and its peak memory:

- ``write``: the virtual NSD's betas (float32 MGH per session and hemisphere, ~1 GB a session);
- ``prepare``: z-scoring per session and the repetition average into the on-disk cache;
- ``roi_rsa_subsets`` / ``roi_rsa_full``: ROI RSA of two feature models (the planted
  representations, 64-d and 768-d) in every streams ROI and nsdgeneral, with the paper's
  100-image subsets and over all images;
- ``encoding``: cross-validated ridge (5 folds, per-vertex alpha) from the 768-d model to all
  327,684 vertices on the non-shared images, scored on the shared ones (``betas_view``: no copy);
- ``decoding``: nsdgeneral → 768-d embedding ridge and identification on the shared images;
- ``model_setup``: the RSA model side (``prepare_block``) of a 768-d feature model over all
  images at 5,000, 10,000 and 20,000 images, before (the n × n path of brainalign ≤ e57d3aa,
  loaded from git) and after;
- ``searchlight``: a full-n searchlight (10 mm discs) on a slice of the full-fsaverage centres,
  extrapolated to all of them.

Memory is the peak *anonymous* memory (``RssAnon`` sampled every 20 ms), what a process really
holds: pages of memory-mapped files count in RSS while they are read but the kernel drops them
under pressure. The peak RSS (``VmHWM``) is printed beside it. Disk use is ``du`` of the betas
and of the prepared cache. Run it on an idle machine with ~60 GB free under ``--root``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

STEPS = (
    "write",
    "prepare",
    "roi_rsa_subsets",
    "roi_rsa_full",
    "encoding",
    "decoding",
    "model_setup",
    "searchlight",
)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsaverage_atlases_neuropythy"


# ------------------------------------------------------------------------------ measuring


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class PeakMemory:
    """Samples this process's anonymous memory in a thread; ``peak_gb`` after ``stop``."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb("RssAnon"))
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, _status_kb("RssAnon"))

    @property
    def peak_gb(self) -> float:
        return self.peak_kb / 2**20


def _du_gb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 2**20


# ------------------------------------------------------------------------------ steps


def _subject(args):
    import brainalign as ba

    return ba.datasets.load_nsd(args.root / "nsd", 1, "fsaverage", cache_dir=args.root / "cache")


def _models(sub, root: Path) -> dict:
    """The planted representations for the subject's images, as feature models."""
    truth = np.load(root / "nsd" / "virtual_truth.npz")
    pos = np.searchsorted(truth["nsd_ids"], sub.image_ids)
    reps = {
        k.removeprefix("representation_"): truth[k]
        for k in truth.files
        if k.startswith("representation_")
    }
    by_dim = sorted(reps.items(), key=lambda kv: kv[1].shape[1])
    small = by_dim[0][1][pos]
    # a 768-d model (MPNet's size): the widest representation through a fixed random map
    wide = by_dim[-1][1][pos]
    rng = np.random.default_rng(0)
    big = np.tanh(wide @ rng.standard_normal((wide.shape[1], 768)) / np.sqrt(wide.shape[1]))
    return {f"{by_dim[0][0]}_{small.shape[1]}d": small, "model_768d": big.astype(np.float32)}


def step_write(args) -> dict:
    import brainalign as ba

    ba.datasets.make_virtual_nsd(
        args.root / "nsd",
        n_subjects=1,
        n_shared=args.shared,
        n_unique=args.images - args.shared,
        n_sessions=args.sessions,
        mesh="fsaverage",
        fs_dir=args.fs_dir,
        spaces=("fsaverage",),
        random_state=0,
        overwrite=True,
        verbose=False,
    )
    return {"disk_betas_gb": _du_gb(args.root / "nsd" / "nsddata_betas")}


def step_prepare(args) -> dict:
    sub = _subject(args)
    return {
        "n_images": int(sub.betas.shape[0]),
        "n_vertices": int(sub.betas.shape[1]),
        "disk_prepared_gb": _du_gb(args.root / "cache"),
    }


def _roi_rsa(args, sampling: str) -> dict:
    import brainalign as ba

    sub = _subject(args)
    models = _models(sub, args.root)
    rois = {k: v for k, v in sub.rois.items() if v.any()}
    subsets = ba.rsa.make_subsets(len(sub.image_ids), 100, random_state=0)
    scores = ba.rsa.roi_rsa(
        sub.betas,
        models,
        rois,
        sampling="subsets" if sampling == "subsets" else "full",
        subsets=subsets if sampling == "subsets" else None,
    )
    return {
        "rois": {k: int(v.sum()) for k, v in rois.items()},
        "r": scores.round(4).to_dict(),
    }


def step_roi_rsa_subsets(args) -> dict:
    return _roi_rsa(args, "subsets")


def step_roi_rsa_full(args) -> dict:
    return _roi_rsa(args, "full")


def step_encoding(args) -> dict:
    import brainalign as ba

    sub = _subject(args)
    X = _models(sub, args.root)["model_768d"]
    train, test = ~sub.shared, sub.shared
    enc = ba.encoding.RidgeEncoder(cv=5).fit(X[train], sub.betas_view(train))
    r = enc.score(X[test], sub.betas_view(test))
    return {
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "n_targets": int(r.size),
        "median_r_in_rois": float(np.nanmedian(r[sub.rois["nsdgeneral"]])),
        "alphas_at_edges": [int(c) for c in enc.edge_counts_],
    }


def step_decoding(args) -> dict:
    import brainalign as ba

    sub = _subject(args)
    E = _models(sub, args.root)["model_768d"]
    res = ba.decoding.decode_subject(sub, E, rois=["nsdgeneral"], n_ways=(2, 50))
    return {
        "n_units": int(res.units.size),
        "median_prediction_r": float(np.median(res.scores)),
        "identification": {k: v.get("top1") for k, v in res.identification.items()},
    }


def _old_kernels():
    """``brainalign.rsa._kernels`` as of e57d3aa (the n × n model path), loaded from git."""
    repo = Path(__file__).resolve().parents[1]
    src = subprocess.run(
        ["git", "show", "e57d3aa:src/brainalign/rsa/_kernels.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(args_global.root) / "old_kernels.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_kernels", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_kernels"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def step_model_setup(args) -> dict:
    """Run in a child per (version, n): the model side of a full-n searchlight / ROI RSA."""
    from brainalign.backend import get_backend
    from brainalign.rsa import _kernels
    from brainalign.rsa.models import parse_models

    kernels = _old_kernels() if args.version == "before" else _kernels
    n = args.n
    feats = np.random.default_rng(0).standard_normal((n, 768)).astype(np.float32)
    _, parsed = parse_models({"m": feats}, n)
    t0 = time.perf_counter()
    block = kernels.prepare_block(get_backend("numpy"), parsed, n, np.arange(n), True, np.float32)
    return {"setup_s": time.perf_counter() - t0, "S_K": float(block.S_K[0])}


def step_searchlight(args) -> dict:
    import brainalign as ba
    from brainalign.rsa import Neighbourhoods

    sub = _subject(args)
    X = _models(sub, args.root)["model_768d"]
    fs_dir = args.root / "nsd" / "nsddata" / "freesurfer" / "fsaverage"
    mesh = ba.datasets.load_fsaverage("fsaverage", "pial", fs_dir=fs_dir)
    t0 = time.perf_counter()
    nb = ba.rsa.surface_neighbourhoods(mesh, radius=10.0, cache_dir=args.root / "nbcache")
    t_nb = time.perf_counter() - t0
    # an evenly spread slice of the centres (every k-th), so sizes match the whole map's
    step = max(1, len(nb) // args.centres)
    pick = np.arange(0, len(nb), step)[: args.centres]
    indptr = nb.indptr
    parts = [nb.indices[indptr[c] : indptr[c + 1]] for c in pick]
    sl = Neighbourhoods.from_lists(parts, nb.n_units, kind="surface")
    t0 = time.perf_counter()
    vals = ba.rsa.searchlight(sub.betas, {"m": X}, sl, n_jobs=-1)
    seconds = time.perf_counter() - t0
    return {
        "neighbourhoods_s": t_nb,
        "centres_timed": int(len(pick)),
        "centres_total": int(len(nb)),
        "median_units_per_centre": float(np.median(nb.sizes)),
        "slice_s": seconds,
        "extrapolated_h": seconds * len(nb) / len(pick) / 3600,
        "median_r": float(np.nanmedian(vals)),
    }


# ------------------------------------------------------------------------------ runner

args_global = None


def run_child(args) -> None:
    global args_global
    args_global = args
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        extra = globals()[f"step_{args.step}"](args)
        wall = time.perf_counter() - t0
    out = {
        "step": args.step,
        "wall_s": wall,
        "peak_anon_gb": mem.peak_gb,
        "peak_rss_gb": _status_kb("VmHWM") / 2**20,
        **extra,
    }
    print("RESULT " + json.dumps(out, default=str))


def _spawn(args, step: str, **extra) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--root",
        str(args.root),
        "--images",
        str(args.images),
        "--shared",
        str(args.shared),
        "--sessions",
        str(args.sessions),
        "--fs-dir",
        str(args.fs_dir),
        "--centres",
        str(args.centres),
        "--step",
        step,
    ]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
        raise SystemExit(f"step {step} failed (exit {proc.returncode})")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--shared", type=int, default=1_000)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--fs-dir", type=Path, default=SHARED)
    parser.add_argument("--centres", type=int, default=3000)
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--version", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.step:
        run_child(args)
        return
    args.root.mkdir(parents=True, exist_ok=True)
    results = []
    for step in args.steps:
        if step == "model_setup":
            for n in (5_000, 10_000, 20_000):
                for version in ("before", "after"):
                    res = _spawn(args, step, version=version, n=n)
                    res["step"] = f"model_setup {version} n={n}"
                    results.append(res)
                    print(json.dumps(res, default=str), flush=True)
            continue
        res = _spawn(args, step)
        results.append(res)
        print(json.dumps(res, default=str), flush=True)
    print("\n| step | wall (s) | peak anonymous memory (GB) | peak RSS (GB) |")
    print("|---|---|---|---|")
    for res in results:
        print(
            f"| {res['step']} | {res['wall_s']:.1f} | {res['peak_anon_gb']:.2f} | "
            f"{res['peak_rss_gb']:.2f} |"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
