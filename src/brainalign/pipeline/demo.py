"""``brainalign demo``: the whole study on a virtual NSD, and a ground-truth summary.

The demo runs ``configs/demo.toml`` (a copy ships inside the package as ``demo.toml``). With
``quick=True`` it runs a reduced version for CI: 3 subjects, a few dozen images each, the small
MiniLM encoder instead of MPNet, tiny networks, no model zoo.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from brainalign.pipeline.config import StudyConfig, load_config
from brainalign.pipeline.study import StudyResult
from brainalign.pipeline.truth import P_THRESHOLD

#: What ``quick=True`` changes in the demo config (a reduced study that still runs every stage).
QUICK_OVERRIDES = {
    "name": "brainalign demo (quick, virtual NSD)",
    "data": {
        "n_subjects": 3,
        "options": {"n_shared": 36, "n_unique": 36, "n_sessions": 4, "n_training_pool": 48},
    },
    "features": {"spaces": ["minilm", "multihot", "mpnet_category_all"]},
    "analyses": {
        "roi_rsa": {"subset_size": 24},
        "searchlight": {"models": ["minilm"], "radius": 6.0},
        "searchlight_contrasts": {"contrasts": [["net_mpnet", "minilm"]]},
        "encoding": {"feature_space": "minilm", "alphas": [1.0, 100.0, 10000.0], "cv": 3},
        "variance_partitioning": {"bands": ["minilm", "mpnet_category_all", "multihot"]},
        "weighted_rsa": {"target": "minilm", "controls": ["multihot", "mpnet_category_all"]},
        "decoding": {
            "feature_space": "minilm",
            "alphas": [10.0, 1000.0, 100000.0],
            "n_examples": 4,
        },
        "networks": {
            # the BLT networks of the paper (the demo's transfer variant is tested on its own)
            "backbone": None,
            "learning_rate": 0.003,
            "embedding_space": "minilm",
            "epochs": 1,
            "image_size": 32,
            "width": 0.0625,
            "layers": 4,
            "timesteps": 2,
            "zoo": [],
            # Fig. 4b's transfer readouts, end to end at a token budget
            "transfer": True,
            "transfer_test_size": 0.2,
            "transfer_epochs": 10,
            "transfer_batch_size": 32,
        },
    },
}


def demo_config_path() -> Path:
    """The packaged copy of ``configs/demo.toml``."""
    return Path(str(resources.files("brainalign.pipeline").joinpath("demo.toml")))


def demo_config(
    output: str | os.PathLike | None = None, *, quick: bool = False, workers: int | None = None
) -> StudyConfig:
    """The demo's :class:`StudyConfig` (output folder default ``./brainalign-demo``)."""
    overrides: dict = {}
    if quick:
        import copy

        overrides = copy.deepcopy(QUICK_OVERRIDES)
    out = (
        Path(output)
        if output is not None
        else Path.cwd() / ("brainalign-demo-quick" if quick else "brainalign-demo")
    )
    overrides["output"] = {"dir": str(out.resolve())}
    if workers is not None and workers > 1:
        overrides["compute"] = {"workers": workers, "executor": "dask"}
    return load_config(demo_config_path(), overrides=overrides)


def ground_truth_summary(result: StudyResult) -> str:
    """The oracle check, one line per ROI (see :mod:`brainalign.pipeline.truth`): planted
    representation, measured and oracle best models with the paired test between them,
    Spearman's ρ over models with its bootstrap interval and whether it was tested, and whether
    the ROI agrees (yes/no); then why each ROI that does not agree does not."""
    rows = result.ground_truth
    if not rows:
        return "no ground truth (not a virtual NSD, or ROI RSA disabled)"

    def best(r):
        if r["measured_best"] == r["oracle_best"]:
            return "same"
        verdict = "tie" if r["best_p"] >= P_THRESHOLD else "REVERSAL"
        return f"{verdict} ({r['best_diff']:+.3f}, p = {r['best_p']:.2g})"

    cols = [
        ("ROI", [r["roi"] for r in rows]),
        ("planted", [r["planted"] for r in rows]),
        ("measured best", [r["measured_best"] for r in rows]),
        ("oracle best", [r["oracle_best"] for r in rows]),
        ("best vs oracle's", [best(r) for r in rows]),
        (
            "Spearman ρ [95% CI]",
            [
                f"{r['rank_rho']:+.2f} [{r['rank_ci_low']:+.2f}, {r['rank_ci_high']:+.2f}]"
                for r in rows
            ],
        ),
        ("ranks", [r["rank_check"] for r in rows]),
    ]
    widths = [max(len(h), *(len(v) for v in vals)) for h, vals in cols]
    lines = ["  ".join(f"{h:<{w}}" for (h, _), w in zip(cols, widths, strict=True)) + "  agrees"]
    for i, r in enumerate(rows):
        cells = [f"{vals[i]:<{w}}" for (_, vals), w in zip(cols, widths, strict=True)]
        lines.append("  ".join(cells) + f"  {r['agreement']}")
    n_yes = sum(r["agreement"] == "yes" for r in rows)
    lines.append(
        f"{n_yes} of {len(rows)} ROIs agree with the oracle (the models' RSA with each ROI's "
        "noiseless planted responses)"
    )
    # why each ROI that does not agree does not, and where the ranks could not be tested
    lines += [
        f"  {r['roi']}: {r['why']}"
        for r in rows
        if r["agreement"] != "yes" or r["rank_check"] == "untested"
    ]
    return "\n".join(lines)


def networks_summary(output_dir) -> str:
    """Whether each trained network beat its shuffled-target control (held out), one line
    each, from the run's ``tables/network_learning.csv`` ("" when there is none)."""
    import pandas as pd

    path = Path(output_dir) / "tables" / "network_learning.csv"
    if not path.exists():
        return ""
    lines = []
    for _, r in pd.read_csv(path).iterrows():
        if not isinstance(r.get("learned"), str):
            continue
        better = "higher" if r["metric"] == "cosine" else "lower"
        lines.append(
            f"{r['network']}: held-out {r['metric']} {r['trained']:.4f} vs shuffled-target "
            f"control {r['shuffled']:.4f} ({better} is better, p = {r['p']:.2g}): "
            + ("learned" if r["learned"] == "yes" else "NOT learned beyond the control")
        )
    return "\n".join(lines)


__all__ = [
    "QUICK_OVERRIDES",
    "demo_config",
    "demo_config_path",
    "ground_truth_summary",
    "networks_summary",
]
