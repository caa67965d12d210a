"""Variance partitioning (RQ2): what a feature space explains per vertex beyond the others.

Per subject: banded ridge from the bands (e.g. MPNet | MPNet of the nouns | categories) and every
sub-model, trained on the non-shared images, scored on the shared ones
(:func:`brainalign.encoding.variance_partition`); each band's unique variance, the shared
variance and the joint model's R² per vertex and per ROI. Group: one-sample t over subjects with
FDR per map, an ROI table of the parts with 95 % intervals, an ROI bar chart. On the virtual NSD
the same partition of the noiseless planted responses (the oracle) says which ROIs truly hold
unique variance of the first band, and the truth table sets it beside the measurement.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from brainalign.datasets import virtual_planted_signal
from brainalign.datasets.base import STREAMS_ROIS
from brainalign.encoding import DEFAULT_ALPHAS, RowView, variance_partition
from brainalign.encoding.partition import MAX_PARTITION_BANDS
from brainalign.errors import InputError
from brainalign.pipeline.analysis import Analysis, ReportSection, Table
from brainalign.pipeline.core import Task, TaskId, stage, upstream
from brainalign.pipeline.inputs import feature_rows, load_subject
from brainalign.report import plots
from brainalign.report.html import img_html, maps_html
from brainalign.stats import group_map, one_sample_t
from brainalign.utils.settings import Section

_Fraction = Annotated[float, Field(gt=0, lt=1)]


class VariancePartitioningConfig(Section):
    """``[analyses.variance_partitioning]``: unique and shared variance of feature bands."""

    # fit banded ridge and its sub-models per vertex (fsaverage space only)
    enabled: bool = False
    # the feature bands (2 to 6 feature spaces); the first is the one whose unique variance the
    # truth check follows (e.g. MPNet beyond its nouns and the categories)
    bands: list[str] = Field(
        default_factory=lambda: ["mpnet", "mpnet_nouns", "multihot"],
        min_length=2,
        max_length=MAX_PARTITION_BANDS,
    )
    # band weightings searched per model (random search on the simplex; the first is uniform)
    n_iter: Annotated[int, Field(ge=1)] = 10
    # Dirichlet concentrations the search cycles through (small values favour one band)
    concentration: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [0.1, 1.0], min_length=1
    )
    # overall ridge penalties tried with every weighting (band k is penalised by alpha / weight_k)
    alphas: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [float(a) for a in DEFAULT_ALPHAS], min_length=1
    )
    # folds of the cross-validation that picks each vertex's weighting and penalty
    cv: Annotated[int, Field(ge=2)] = 5
    # "hyper_gradient": refine each vertex's band penalties from the random search's choice by
    # gradient steps on its CV loss (about four times the random search's time at 10 steps)
    solver: Literal["random_search", "hyper_gradient"] = "random_search"
    # gradient steps per vertex and model with solver = "hyper_gradient"
    max_iter: Annotated[int, Field(ge=1)] = 10
    # ROIs of the table and bar chart (default: every streams ROI the data has)
    rois: list[str] | None = None
    # fit only this ROI's vertices (e.g. "nsdgeneral", NSD's visual mask: 2^n − 1 models per
    # vertex cost); the maps are empty elsewhere. None: every vertex
    mask: str | None = None
    # Benjamini-Hochberg level of the group maps
    fdr_q: _Fraction = 0.05


def _parts(bands) -> list[str]:
    return [f"unique {b}" for b in bands] + ["shared", "joint"]


# ------------------------------------------------------------------------------------- stages
@stage("variance_partitioning")
def variance_partitioning(params, inputs, ctx):
    """One subject's partition per vertex (train non-shared, test shared) and per ROI, with the
    oracle's per ROI on the virtual NSD."""
    sub = load_subject(params, ctx)
    bands = params["bands"]
    Xs = {b: feature_rows(inputs[f"band_{b}"], sub.image_ids) for b in bands}
    train = ~np.asarray(sub.shared, bool)
    test = ~train
    kw = dict(
        alphas=params["alphas"],
        n_iter=params["n_iter"],
        concentration=params["concentration"],
        cv=params["cv"],
        random_state=params["random_state"],
        backend=ctx.get("backend", "numpy"),
        solver=params.get("solver", "random_search"),
        max_iter=params.get("max_iter", 10),
    )
    if kw["backend"] != "numpy":
        kw["device"] = ctx.get("device")
    cols = None
    if params.get("mask") is not None:
        if params["mask"] not in sub.rois:
            raise InputError(
                f"analyses.variance_partitioning.mask: subject {sub.subject} has no ROI "
                f"{params['mask']!r} (it has {sorted(sub.rois)})"
            )
        cols = np.flatnonzero(np.asarray(sub.rois[params["mask"]], bool))
    res = variance_partition(
        {b: X[train] for b, X in Xs.items()},
        RowView(sub.betas, train, columns=cols),
        test=({b: X[test] for b, X in Xs.items()}, RowView(sub.betas, test, columns=cols)),
        **kw,
    )
    parts = np.concatenate([res.unique, res.shared[None], res.joint_r2[None]])
    maps = np.full((parts.shape[0], sub.n_units), np.nan, np.float32)  # (n_parts, units)
    maps[:, slice(None) if cols is None else cols] = parts
    rois = [r for r in params["rois"] if r in sub.rois]
    roi_parts = np.full((len(rois), maps.shape[0]), np.nan, np.float32)
    for i, r in enumerate(rois):
        vals = maps[:, np.asarray(sub.rois[r], bool)]
        fitted = np.isfinite(vals).all(axis=0)  # a ROI outside the mask stays NaN
        if fitted.any():
            roi_parts[i] = vals[:, fitted].mean(axis=1)
    out = {
        "maps": maps.astype(np.float32),
        "split": res.split_r2,
        "rois": rois,
        "roi_parts": np.asarray(roi_parts, np.float32),
    }
    data = inputs.get("data")
    planted = set(data.get("truth_rois") or ()) if data is not None else set()
    if planted:
        out["oracle_roi_parts"] = _oracle(params, sub, Xs, train, test, rois, planted, kw)
    return out


def _oracle(params, sub, Xs, train, test, rois, planted, kw) -> np.ndarray:
    """The partition of each planted ROI's noiseless responses, averaged over its units (NaN for
    ROIs without a planted representation)."""
    n_parts = len(params["bands"]) + 2
    out = np.full((len(rois), n_parts), np.nan, np.float32)
    for i, roi in enumerate(rois):
        if roi not in planted:
            continue
        cols = np.flatnonzero(np.asarray(sub.rois[roi], bool))
        finite = np.isfinite(np.asarray(RowView(sub.betas, columns=cols))).all(axis=0)
        P = virtual_planted_signal(params["root"], sub.subject, sub.image_ids, roi)[:, finite]
        if P.shape[1] == 0:
            continue
        res = variance_partition(
            {b: X[train] for b, X in Xs.items()},
            P[train],
            test=({b: X[test] for b, X in Xs.items()}, P[test]),
            **kw,
        )
        parts = np.concatenate([res.unique, res.shared[None], res.joint_r2[None]])
        out[i] = np.nanmean(parts, axis=1)
    return out


@stage("variance_partitioning_group")
def variance_partitioning_group(params, inputs, ctx):
    """Group maps (one-sample t, FDR) of every part, and the subjects' ROI values."""
    per_subject = upstream(inputs, "variance_partitioning")
    M = np.stack([np.asarray(res["maps"]) for _, res in per_subject])  # (subj, parts, units)
    out = {"subjects": np.array([tid.subject for tid, _ in per_subject], dtype=np.int64)}
    for k in range(M.shape[1]):
        g = group_map(M[:, k], fdr_q=params["fdr_q"])
        out[f"mean_{k}"], out[f"t_{k}"], out[f"significant_{k}"] = (
            g["mean"],
            g["t"],
            g["significant"],
        )
    parts = _parts(params["bands"])
    rows, oracle = [], []
    for tid, res in per_subject:
        for i, roi in enumerate(res["rois"]):
            for k, part in enumerate(parts):
                rows.append((tid.subject, roi, part, float(res["roi_parts"][i][k])))
                if "oracle_roi_parts" in res:
                    oracle.append((tid.subject, roi, part, float(res["oracle_roi_parts"][i][k])))
    out["roi_values"] = rows
    out["oracle_values"] = oracle
    return out


# --------------------------------------------------------------------------------------- plan
def plan(b) -> dict[str, Task]:
    cfg = b.config
    vp = cfg.analyses.variance_partitioning
    rois = list(vp.rois) if vp.rois is not None else list(STREAMS_ROIS)
    virtual = cfg.data.kind == "virtual"
    deps = {}
    for s in b.subjects:
        tdeps = {f"band_{band}": b.feature(band) for band in vp.bands}
        tdeps["subject"] = b.subject(s)
        if virtual:
            tdeps["data"] = b.plan.data  # the planted ROIs, for the oracle
        tid = TaskId("variance_partitioning", subject=s)
        deps[tid] = Task(
            tid,
            {
                **b.base,
                "subject": s,
                "bands": list(vp.bands),
                "alphas": list(vp.alphas),
                "n_iter": vp.n_iter,
                "concentration": list(vp.concentration),
                "cv": vp.cv,
                **(
                    {"solver": vp.solver, "max_iter": vp.max_iter}
                    if vp.solver != "random_search"
                    else {}
                ),
                "rois": rois,
                "mask": vp.mask,
                "random_state": cfg.compute.random_state,
            },
            tdeps,
        )
    group = Task(
        TaskId("variance_partitioning_group"),
        {**b.base, "fdr_q": vp.fdr_q, "bands": list(vp.bands)},
        deps,
    )
    return {"group": group}


def check(cfg) -> list[str]:
    vp = cfg.analyses.variance_partitioning
    problems = []
    if vp.enabled and cfg.space != "fsaverage":
        problems.append(
            f"space: {cfg.space!r} — variance partitioning maps are surface maps; use space = "
            "'fsaverage', or disable analyses.variance_partitioning"
        )
    if len(set(vp.bands)) != len(vp.bands):
        problems.append(f"analyses.variance_partitioning.bands: repeated names in {vp.bands}")
    return problems


def feature_spaces(cfg) -> list[tuple[str, str]]:
    vp = cfg.analyses.variance_partitioning
    return [(f"analyses.variance_partitioning.bands[{i}]", b) for i, b in enumerate(vp.bands)]


# ------------------------------------------------------------------------------------- tables
def roi_table(values: pd.DataFrame) -> pd.DataFrame:
    """Per ROI and part: group mean, 95 % t interval over subjects, t and p (one-sample, vs 0).

    ``values``: columns ``subject``, ``roi``, ``part``, ``value``.
    """
    from scipy import stats

    rows = []
    for (roi, part), g in values.groupby(["roi", "part"], sort=False):
        v = g["value"].to_numpy(np.float64)
        v = v[np.isfinite(v)]
        n = v.size
        mean = float(v.mean()) if n else np.nan
        half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n)) if n >= 2 else np.nan
        t, p = one_sample_t(v[:, None]) if n >= 2 else (np.array([np.nan]), np.array([np.nan]))
        rows.append(
            {
                "roi": roi,
                "part": part,
                "mean": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "t": float(np.asarray(t).ravel()[0]),
                "p": float(np.asarray(p).ravel()[0]),
                "n_subjects": n,
            }
        )
    return pd.DataFrame(
        rows, columns=["roi", "part", "mean", "ci_low", "ci_high", "t", "p", "n_subjects"]
    )


def truth_table(
    measured: pd.DataFrame,
    oracle: pd.DataFrame,
    band: str,
    representations: dict,
    p_threshold: float = 0.05,
) -> pd.DataFrame:
    """Per planted ROI: does ``band`` hold unique variance (group mean > 0, one-sample t over
    subjects, p < ``p_threshold``) in the oracle and in the measurement, and do they agree?

    ``measured``, ``oracle``: :func:`roi_table`'s input tables (``subject``, ``roi``, ``part``,
    ``value``); ``representations``: ROI → {representation: weight} as planted.
    """
    part = f"unique {band}"
    m = roi_table(measured[measured["part"] == part]).set_index("roi")
    o = roi_table(oracle[oracle["part"] == part]).set_index("roi")
    rows = []
    for roi in o.index:
        if roi not in m.index or not np.isfinite(o.loc[roi, "mean"]):
            continue
        o_yes = bool(o.loc[roi, "mean"] > 0 and o.loc[roi, "p"] < p_threshold)
        m_yes = bool(m.loc[roi, "mean"] > 0 and m.loc[roi, "p"] < p_threshold)
        reps = representations.get(roi, {})
        rows.append(
            {
                "roi": roi,
                "planted": " + ".join(f"{k} ({v:g})" for k, v in reps.items()),
                "part": part,
                "oracle_mean": float(o.loc[roi, "mean"]),
                "oracle_p": float(o.loc[roi, "p"]),
                "oracle_unique": "yes" if o_yes else "no",
                "measured_mean": float(m.loc[roi, "mean"]),
                "measured_ci_low": float(m.loc[roi, "ci_low"]),
                "measured_ci_high": float(m.loc[roi, "ci_high"]),
                "measured_p": float(m.loc[roi, "p"]),
                "measured_unique": "yes" if m_yes else "no",
                "agrees": o_yes == m_yes,
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- export
def export(ctx, targets) -> None:
    split, w, cfg = ctx.hemi_split, ctx.writer, ctx.config
    vp = cfg.analyses.variance_partitioning
    res = ctx.load(targets["group"])
    parts = _parts(vp.bands)
    if split is not None:
        for k, part in enumerate(parts[:-1]):  # the joint R² is in the ROI table
            name = "vp_" + part.replace(" ", "_")
            what = f"{part} variance (R²)"
            w.map(
                name,
                *split(res[f"mean_{k}"]),
                title=f"Variance partitioning: {what}, mean over subjects (FDR q < {vp.fdr_q})",
                section="variance_partitioning",
                stat="R²",
                mask=split(res[f"significant_{k}"]),
            )
    cols = ["subject", "roi", "part", "value"]
    values = pd.DataFrame(list(res["roi_values"]), columns=cols)
    w.table("variance_partitioning_subjects", values)
    w.table("variance_partitioning_roi", roi_table(values))
    oracle = pd.DataFrame(list(res.get("oracle_values") or []), columns=cols)
    if len(oracle):
        data = ctx.load(ctx.plan.data)
        reps = {
            roi: info.get("representations", {})
            for roi, info in (data.get("truth_rois") or {}).items()
        }
        table = truth_table(values, oracle, vp.bands[0], reps)
        if len(table):
            w.table("variance_partitioning_truth", table)


# ------------------------------------------------------------------------------------- report
def _section(run) -> str:
    parts = [maps_html(run, "variance_partitioning")]
    values = run.table("variance_partitioning_subjects")
    if values is not None and len(values):
        shown = values[values["part"] != "joint"].rename(columns={"part": "model"})
        fig = plots.roi_bar_figure(
            shown,
            value="value",
            ylabel="held-out R² (shared images)",
            title="Variance partitioning per ROI: subject dots, mean ± SEM",
        )
        parts.append(
            img_html(
                plots.figure_to_base64(fig),
                "Unique variance of each band (R² of the joint model minus that of the model "
                "without it) and the variance the bands share, averaged over each ROI's vertices.",
            )
        )
    return "".join(parts)


def methods(cfg) -> list[str]:
    vp = cfg.analyses.variance_partitioning
    if not vp.enabled:
        return []
    bands = ", ".join(vp.bands)
    refine = (
        f"; then {vp.max_iter} hyper-gradient steps per vertex on its CV loss from that choice, "
        "himalaya's 1/L steps, keeping the best iterate"
        if vp.solver == "hyper_gradient"
        else ""
    )
    return [
        f"Variance partitioning: banded ridge (one penalty per band and vertex: {vp.n_iter} band "
        f"weightings from a random search on the simplex, Dirichlet concentrations "
        f"{list(vp.concentration)}, × {len(vp.alphas)} penalties, {vp.cv}-fold CV, as himalaya's "
        f"BandedRidgeCV{refine}) from the bands {bands} and from every subset of them, trained on each "
        "subject's non-shared images and scored on the shared images (R²). Unique variance of a "
        "band: R² of the joint model minus that of the model without it; shared: the joint R² "
        "minus the unique parts (de Heer et al. 2017). Group maps: one-sample t over subjects, "
        f"FDR q = {vp.fdr_q}; ROI values: means over the ROI's vertices, 95 % t intervals."
    ]


ANALYSIS = Analysis(
    name="variance_partitioning",
    configs={"variance_partitioning": VariancePartitioningConfig},
    plan=plan,
    check=check,
    feature_spaces=feature_spaces,
    export=export,
    methods=methods,
    sections=(
        ReportSection(
            "variance_partitioning",
            "Variance partitioning",
            _section,
            tables=("variance_partitioning_roi",),
        ),
        ReportSection(
            "variance_partitioning_truth",
            "Ground truth: variance partitioning (virtual NSD)",
            None,
            tables=("variance_partitioning_truth",),
        ),
    ),
    tables=(
        Table(
            "variance_partitioning_roi",
            "Variance partitioning per ROI",
            "Group mean over subjects of each band's unique variance, the shared variance and the "
            "joint model's R² (held-out, shared images), averaged over the ROI's vertices, with "
            "95 % t intervals and one-sample t-tests against 0.",
            formats={c: "{:.4f}" for c in ("mean", "ci_low", "ci_high")}
            | {"t": "{:.2f}", "p": "{:.3g}"},
        ),
        Table(
            "variance_partitioning_subjects",
            "Variance partitioning per subject and ROI",
            "Each subject's ROI means of every part (the bar chart's dots).",
            formats={"value": "{:.4f}"},
            shown=False,
        ),
        Table(
            "variance_partitioning_truth",
            "Ground truth: unique variance of the first band (virtual NSD)",
            "Per ROI with a planted representation: the same partition of the noiseless planted "
            "responses (the oracle) and of the measured responses; a band 'holds unique variance' "
            "when its group mean is above 0 with p < 0.05 (one-sample t over subjects). The check "
            "agrees when both say the same.",
            formats={
                c: "{:.4f}"
                for c in ("oracle_mean", "measured_mean", "measured_ci_low", "measured_ci_high")
            }
            | {"oracle_p": "{:.3g}", "measured_p": "{:.3g}"},
        ),
    ),
    warning_keys={"alphas:": "analyses.variance_partitioning.alphas", "Y:": None},
)
