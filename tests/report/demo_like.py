"""A run folder shaped like the demo's (7 ROIs, 11 models, 8 subjects, fsaverage5 maps), written
through RunWriter in a few seconds: the report's figures without running the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets._anatomy import ROI_REPRESENTATIONS
from brainalign.pipeline.config import PAPER_FEATURE_SPACES
from brainalign.report import RunWriter
from brainalign.stats import group_model_scores

N = 10242
ROIS = ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"]
MODELS = [
    *PAPER_FEATURE_SPACES,
    "net_mpnet",
    "net_multihot",
    "efficientnet-lite0",
]
COMPARISON_ROIS = ["ventral", "lateral", "parietal"]
CATEGORIES = ["people", "food", "animal", "vehicle", "furniture"]
N_SUBJECTS = 8
N_IMAGES = 120  # drawn in the RDM figure, of TOTAL_IMAGES
TOTAL_IMAGES = 300
FDR_Q = 0.05


def config() -> dict:
    return {
        "name": "demo-like study",
        "data": {"kind": "virtual", "n_subjects": N_SUBJECTS},
        "space": "fsaverage",
        "features": {"spaces": MODELS[:8]},
        "analyses": {
            "roi_rsa": {"enabled": True, "rois": ROIS, "error": "sem"},
            "model_comparison": {
                "enabled": True,
                "rois": COMPARISON_ROIS,
                "test": "paired",
                "fdr_q": FDR_Q,
            },
            "searchlight": {"enabled": True, "fdr_q": FDR_Q},
        },
        # a run records its whole config: the report validates it for the methods text
        "output": {"dir": "run"},
    }


def _scores(rng) -> pd.DataFrame:
    """r per subject, ROI and model: model i is better than model j by a clear margin in some
    ROIs, so some pairs are significant and some are not."""
    rows = []
    for s in range(1, N_SUBJECTS + 1):
        for k, roi in enumerate(ROIS):
            ceiling = 0.4 + 0.02 * k
            for i, m in enumerate(MODELS):
                r = 0.02 + 0.025 * ((i * (k + 3)) % 11) + rng.normal(0, 0.01)
                rows.append({"subject": s, "roi": roi, "model": m, "r": r, "ceiling": ceiling})
    return pd.DataFrame(rows)


def _rdm(X: np.ndarray) -> np.ndarray:
    from brainalign.rsa import compute_rdm

    return compute_rdm(X, metric="correlation")


def write_demo_like_run(folder: str | Path, seed: int = 0) -> Path:
    """Write the run folder (tables, RDM arrays, maps) and return it; no report yet."""
    rng = np.random.default_rng(seed)
    w = RunWriter(folder, formats=("gifti", "csv"))
    w.json("run", {"config": config(), "versions": {"numpy": np.__version__}})
    raw = _scores(rng)
    res = group_model_scores(
        raw.drop(columns="ceiling"),
        raw[["subject", "roi", "ceiling"]].drop_duplicates(),
        comparison_rois=COMPARISON_ROIS,
        test="paired",
        fdr_q=FDR_Q,
    )
    w.table("roi_rsa", res.table)
    w.table("noise_ceiling", res.table[["subject", "roi", "ceiling"]].drop_duplicates())
    w.table("roi_group", res.group)
    w.table("model_comparison", res.pairwise)
    # RDMs: images in id order, categories mixed, so ordering them is visible
    codes = rng.integers(0, len(CATEGORIES), N_IMAGES)
    cats = np.array(CATEGORIES)[codes]
    centres = rng.standard_normal((len(CATEGORIES), 40))
    for k, roi in enumerate(ROIS):
        X = centres[codes] * (k / len(ROIS)) + rng.standard_normal((N_IMAGES, 40))
        w.array(f"rdm__{roi}__brain", _rdm(X))
    for i, m in enumerate(MODELS):
        X = centres[codes] * (i % 3) + rng.standard_normal((N_IMAGES, 40))
        w.array(f"rdm__model__{m}", _rdm(X))
    w.array("rdmimages__ids", np.arange(N_IMAGES, dtype=np.int64) * 2)
    w.array("rdmimages__meta", np.array([1, TOTAL_IMAGES], dtype=np.int64))
    w.array("rdmimages__categories", cats.astype(str))
    _write_maps(w, rng)
    _write_truth_tables(w, raw, rng)
    return Path(folder)


#: what the virtual NSD plants in each ROI (the truth tables' "planted" column)
PLANTED = ROI_REPRESENTATIONS
#: the demo's ground-truth tables, each made by the function the pipeline makes it with
TRUTH_TABLES = ("ground_truth", "variance_partitioning_truth", "weighted_rsa_truth")


def _planted(roi: str) -> str:
    return " + ".join(f"{k} ({v:g})" for k, v in PLANTED[roi].items())


def _write_truth_tables(w: RunWriter, raw: pd.DataFrame, rng) -> None:
    """The virtual NSD's truth tables, with the demo's columns (the widest tables of its
    report): the RSA truth, variance partitioning's and weighted RSA's commonality truth."""
    from brainalign.pipeline.analyses.variance_partitioning import truth_table
    from brainalign.pipeline.analyses.weighted_rsa import _truth_row
    from brainalign.pipeline.truth import truth_check

    rows = []
    for roi in ROIS:
        measured = raw[raw["roi"] == roi].pivot(index="subject", columns="model", values="r")
        oracle = measured + rng.normal(0, 0.01, measured.shape)
        rows.append({"roi": roi, "planted": _planted(roi), **truth_check(measured, oracle)})
    w.table("ground_truth", pd.DataFrame(rows))

    parts = [
        {"subject": s, "roi": roi, "part": "unique mpnet", "value": rng.normal(0.03, 0.01)}
        for s in range(1, N_SUBJECTS + 1)
        for roi in ROIS
    ]
    values, oracle = pd.DataFrame(parts), pd.DataFrame(parts).assign(value=lambda d: d.value * 4)
    w.table("variance_partitioning_truth", truth_table(values, oracle, "mpnet", PLANTED))

    def commonality(scale: float) -> list[dict]:
        unique = scale * rng.uniform(1e-4, 0.05)
        return [
            {
                "part": "unique mpnet",
                "estimate": unique,
                "ci_low": unique / 3,
                "ci_high": 2 * unique,
            },
            {"part": "total", "estimate": 2.5 * unique},
        ]

    truth = [
        _truth_row(
            {"roi": roi, "commonality": commonality(1), "oracle": commonality(1.1)},
            "mpnet",
            {"representations": PLANTED[roi]},
        )
        for roi in COMPARISON_ROIS
    ]
    w.table("weighted_rsa_truth", pd.DataFrame(truth))


def _write_maps(w: RunWriter, rng) -> None:
    """A searchlight t map with an FDR mask on the occipito-temporal cortex, an encoding map,
    and the per-vertex ROI labels (``null`` outside the ROIs, as the pipeline writes them)."""
    from brainalign.datasets.surfaces import load_fsaverage

    mesh = load_fsaverage("fsaverage5", surface="inflated")
    maps = []
    for hemi in ("left", "right"):
        xyz = np.asarray(mesh[hemi].coords)
        # posterior (y low) and inferior (z low): where the ventral / lateral streams are
        t = 6.0 * np.exp(-(((xyz[:, 1] + 70) / 25) ** 2 + ((xyz[:, 2] + 15) / 20) ** 2))
        maps.append((t + rng.normal(0, 0.7, len(t))).astype(np.float32))
    lh, rh = maps
    mask = (np.abs(lh) > 3.1, np.abs(rh) > 3.1)
    w.map(
        "searchlight_mpnet_t",
        lh,
        rh,
        title=f"Searchlight RSA: mpnet (group t, FDR q < {FDR_Q})",
        section="searchlight",
        stat="t",
        mask=mask,
    )
    w.map(
        "encoding_r_mean", lh / 20, rh / 20, title="Encoding: mean r", section="encoding", stat="r"
    )
    roi = np.where(np.concatenate([lh, rh]) > 2, "ventral", "null")
    roi[: N // 10] = "early"
    w.array("unit_roi", roi)
    w.array("encoding_r", np.concatenate([lh, rh]) / 20)
    w.array("agreement", np.concatenate([lh, rh]) / 15 + rng.normal(0, 0.05, 2 * N))
