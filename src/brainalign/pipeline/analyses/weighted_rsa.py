"""Weighted RSA and RDM commonality (issue 22, RQ2): what a target model RDM (MPNet) explains
in each ROI beyond its controls (nouns, categories).

Per ROI: a non-negative combination of the target's and the controls' RDMs is fitted on training
stimuli and subjects and scored on held-out ones (:func:`brainalign.rsa.weighted_rsa.weighted_rsa`,
rsatoolbox's ``ModelWeighted`` + ``bootstrap_crossval``), beside each model alone; and the ROI
RDMs' variance is split into each model's unique part and the parts they share
(:func:`brainalign.rsa.commonality.rdm_commonality`), with bootstrap intervals.

Two data families run it: NSD-like responses (the ROI RDMs of every subject on the shared images
every subject saw, so that subjects can be cross-validated) and RDM folders (each data set's ROI
RDMs; objects92: MPNet beyond animacy and categories in IT). On the virtual NSD the same
commonality runs on the RDMs of the noiseless planted responses (the oracle), and the report
says, per ROI, whether the measurement finds the target's unique variance where the oracle does.

With ``searchlight = true`` (responses on fsaverage) the same fit runs at every searchlight centre
of every subject (:func:`brainalign.rsa.weighted_searchlight.weighted_searchlight`, stimulus folds
only), in chunks of centres as the searchlight does: group t-maps of the combination's held-out
score and of the target's held-out gain over the controls' own combination.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from brainalign.datasets import virtual_planted_signal
from brainalign.datasets.base import STREAMS_ROIS
from brainalign.datasets.rdms import load_rdm_dataset
from brainalign.errors import DataFormatError
from brainalign.pipeline.analyses.rdm_rsa import features_task
from brainalign.pipeline.analyses.searchlight import neighbourhoods_task, surface_chunks
from brainalign.pipeline.analysis import Analysis, ReportSection, Table, run_section
from brainalign.pipeline.core import Task, TaskId, stage, upstream
from brainalign.pipeline.data_kinds.rdms import data_sets, ensure_imported, set_key
from brainalign.pipeline.inputs import feature_rows, load_subject
from brainalign.report import plots
from brainalign.report.commonality_plots import commonality_bar_figure
from brainalign.report.html import img_html, maps_html
from brainalign.rsa import SURFACE_RADIUS_MM, Neighbourhoods, compute_rdm
from brainalign.rsa.commonality import MAX_MODELS, rdm_commonality
from brainalign.rsa.shared import common_shared_images
from brainalign.rsa.weighted_rsa import WEIGHTED_NAME, weighted_rsa
from brainalign.rsa.weighted_searchlight import weighted_searchlight
from brainalign.utils.arrays import RowView
from brainalign.utils.settings import Section

_Fraction = Annotated[float, Field(gt=0, lt=1)]
#: fewest stimuli a ROI's RDMs need: 3 per fold for rsatoolbox's smallest 2-fold split
MIN_STIMULI = 6


class WeightedRsaConfig(Section):
    """``[analyses.weighted_rsa]``: what a target model explains beyond its controls (RQ2)."""

    # fit and cross-validate target + controls as one non-negative combination of RDMs, and
    # split each ROI's RDM variance into unique and common parts (NSD-like data and RDM folders)
    enabled: bool = False
    # the model whose unique contribution is asked for (a feature space of features.spaces)
    target: str = "mpnet"
    # the models it must beat (feature spaces; on RDM folders also a data model "rdm:<name>");
    # with the target at most 4 models
    controls: list[str] = Field(default_factory=lambda: ["multihot", "mpnet_nouns"])
    # the ROIs analysed (NSD streams / virtual ROIs, or an RDM folder's ROIs; a data set without
    # one of them skips it)
    rois: list[str] = Field(default_factory=lambda: ["early", "ventral", "lateral", "parietal"])
    # the comparison the weights are fitted for and the held-out score (rsatoolbox: corr, cosine)
    method: Literal["pearson", "cosine"] = "pearson"
    # stimulus folds (default: rsatoolbox's, 2-5 from the number of stimuli)
    k_stimuli: Annotated[int, Field(ge=1)] | None = None
    # subject folds (default: rsatoolbox's, 1 for one subject)
    k_subjects: Annotated[int, Field(ge=1)] | None = None
    # bootstrap samples of the weighted RSA (subjects and stimuli), 0 for none
    n_bootstrap: Annotated[int, Field(ge=0)] = 100
    # fold assignments per bootstrap sample (rsatoolbox's n_cv; >= 2 corrects the variance)
    n_cv: Annotated[int, Field(ge=1)] = 2
    # bootstrap samples of the commonality intervals (subjects and stimuli), 0 for none
    commonality_bootstrap: Annotated[int, Field(ge=0)] = 1000
    # confidence level of every interval
    ci: _Fraction = 0.95
    # NSD-like data: at most this many of the shared images (the first by NSD id; default all)
    max_images: Annotated[int, Field(ge=MIN_STIMULI)] | None = None
    # also map it (betas on fsaverage): at every searchlight centre, each subject's held-out
    # score of the combination and the gain of adding the target to the controls, on the same
    # shared images, with group t-maps and FDR (chunks and FDR q of [analyses.searchlight])
    searchlight: bool = False
    # radius (mm) of the geodesic discs of that map
    searchlight_radius: Annotated[float, Field(gt=0)] = SURFACE_RADIUS_MM


def _models(a) -> list[str]:
    return [a.target, *a.controls]


def _analyse(M, D, names, p, random_state) -> dict:
    """Weighted RSA and commonality of one ROI: JSON-able rows."""
    w = weighted_rsa(
        M,
        D,
        names,
        method=p["method"],
        k_subjects=p["k_subjects"] if D.shape[0] > 1 else 1,
        k_stimuli=p["k_stimuli"],
        n_bootstrap=p["n_bootstrap"],
        n_cv=p["n_cv"],
        random_state=random_state,
    )
    lo, hi = w.ci(p["ci"])
    gain = w.p_gain() if w.samples.shape[0] >= 2 else np.full(len(names), np.nan)
    rows = [
        {
            "model": name,
            "score": float(w.score[i]),
            "ci_low": float(lo[i]),
            "ci_high": float(hi[i]),
            "weight": float(w.weights[i - 1]) if i else float("nan"),
            "p_weighted_vs_model": float(gain[i - 1]) if i else float("nan"),
        }
        for i, name in enumerate(w.names)
    ]
    c = rdm_commonality(
        M,
        D,
        names,
        n_bootstrap=p["commonality_bootstrap"],
        level=p["ci"],
        random_state=random_state,
    )
    return {
        "weighted": rows,
        "commonality": c.to_rows(),
        "n_subjects": int(D.shape[0]),
        "n_bootstrap_ok": int(w.samples.shape[0]),
    }


def _settings(a, cfg) -> dict:
    return {
        "models": _models(a),
        "method": a.method,
        "k_stimuli": a.k_stimuli,
        "k_subjects": a.k_subjects,
        "n_bootstrap": a.n_bootstrap,
        "n_cv": a.n_cv,
        "commonality_bootstrap": a.commonality_bootstrap,
        "ci": a.ci,
        "random_state": cfg.compute.random_state,
    }


# ------------------------------------------------------------------------------------- stages
def _shared_images(params, ctx) -> tuple[dict, np.ndarray]:
    """Every subject's responses and the NSD ids of the shared images all of them saw (at most
    ``max_images``, the first by id)."""
    subs = {s: load_subject(params, ctx, subject=s) for s in params["subjects"]}
    common = common_shared_images(list(subs.values()))
    if params["max_images"] is not None:
        common = common[: params["max_images"]]
    return subs, common


@stage("weighted_rsa")
def weighted_rsa_stage(params, inputs, ctx):
    """Weighted RSA and commonality of the target and controls in every ROI, on the shared images
    every subject saw (NSD-like data); on the virtual NSD also the planted oracle's commonality."""
    subs, common = _shared_images(params, ctx)
    if len(common) < MIN_STIMULI:
        # not a reason to stop the study's other analyses: the export says so
        return {
            "rois": [],
            "n_images": len(common),
            "skipped": f"only {len(common)} shared images seen by every subject; weighted RSA "
            f"needs at least {MIN_STIMULI} (use subjects that share images)",
        }
    names = list(params["models"])
    M = np.stack([compute_rdm(feature_rows(inputs[f"model:{n}"], common)) for n in names])
    # ROIs the virtual NSD planted a representation in (nsdgeneral carries none)
    planted = set(inputs["data"].get("truth_rois") or ()) if params["oracle"] else set()
    out = {"rois": [], "n_images": len(common)}
    for j, roi in enumerate(params["rois"]):
        have = [s for s, sub in subs.items() if roi in sub.rois]
        if not have:
            continue
        D, oracle = [], []
        for s in have:
            sub = subs[s]
            rows = np.searchsorted(sub.image_ids, common)
            cols = np.flatnonzero(np.asarray(sub.rois[roi], dtype=bool))
            B = np.asarray(RowView(sub.betas, rows, columns=cols, dtype=np.float64))
            keep = np.isfinite(B).all(axis=0)
            D.append(compute_rdm(B[:, keep]))
            if roi in planted:
                P = virtual_planted_signal(params["root"], s, common, roi)[:, keep]
                oracle.append(compute_rdm(P))
        seed = params["random_state"] * 1000 + j
        res = {"roi": roi, **_analyse(M, np.stack(D), names, params, seed)}
        if oracle:
            c = rdm_commonality(
                M,
                np.stack(oracle),
                names,
                n_bootstrap=params["commonality_bootstrap"],
                level=params["ci"],
                random_state=seed,
            )
            res["oracle"] = c.to_rows()
        out["rois"].append(res)
    return out


@stage("weighted_searchlight")
def weighted_searchlight_stage(params, inputs, ctx):
    """Cross-validated weighted RSA of one subject over one chunk of searchlight centres, on the
    shared images every subject saw: the combination's held-out score and the target's gain."""
    subs, common = _shared_images(params, ctx)
    start, stop = params["centres"]
    if len(common) < MIN_STIMULI:  # the ROI task says why, once
        return dict.fromkeys(MAPS, np.full(stop - start, np.nan, np.float32))
    sub = subs[params["subject"]]
    rows = np.searchsorted(sub.image_ids, common)
    betas = np.asarray(RowView(sub.betas, rows, dtype=np.float32))
    nb = Neighbourhoods.from_arrays(inputs["neighbourhoods"], start, stop)
    names = list(params["models"])
    res = weighted_searchlight(
        betas,
        {n: feature_rows(inputs[f"model:{n}"], common) for n in names},
        nb,
        method=params["method"],
        k_stimuli=params["k_stimuli"],
        random_state=params["random_state"],
        reduced=[names[0]],
        backend=ctx.get("backend", "numpy"),
        device=ctx.get("device"),
        n_jobs=1,  # the scheduler already runs one task per core
        verbose=False,
    )
    return {
        "score": res.score.astype(np.float32),
        "gain": res.gain(names[0]).astype(np.float32),
    }


@stage("weighted_rsa_rdms")
def weighted_rsa_rdms(params, inputs, ctx):
    """Weighted RSA and commonality of the target and controls in every ROI of one RDM data set."""
    ensure_imported(params["set"])
    ds = load_rdm_dataset(params["root"], None, metric=params.get("metric"))
    rois = [r for r in params["rois"] if r in ds.rois]
    feats = {tid.model: res for tid, res in upstream(inputs, "rdm_features")}
    names = list(params["models"])
    missing = [n for n in names if n.startswith("rdm:") and n[4:] not in ds.models]
    if missing:
        raise DataFormatError(
            f"{params['label']}: no model RDM {missing} in {ds.root / 'models'} (it has "
            f"{sorted(ds.models)}); fix analyses.weighted_rsa.target or controls"
        )
    M = np.stack(
        [
            ds.models[n.removeprefix("rdm:")].condensed()
            if n.startswith("rdm:")
            else np.asarray(feats[n]["rdm"])
            for n in names
        ]
    ).astype(np.float64)
    out = {"dataset": params["label"], "rois": [], "n_images": int(ds.n_stimuli)}
    for j, roi in enumerate(rois):
        D = np.asarray(ds.condensed(roi), dtype=np.float64)
        seed = params["random_state"] * 1000 + j
        out["rois"].append({"roi": roi, **_analyse(M, D, names, params, seed)})
    return out


# --------------------------------------------------------------------------------------- plan
def plan(b) -> dict[str, Task]:
    cfg = b.config
    a = cfg.analyses.weighted_rsa
    truth = cfg.data.kind == "virtual" and cfg.space == "fsaverage"
    deps = {
        "data": b.plan.data,
        **{TaskId("responses", subject=s): b.subject(s) for s in b.subjects},
    }
    deps.update({f"model:{n}": b.feature(n) for n in _models(a)})
    params = {
        **b.base,
        "subjects": list(b.subjects),
        "rois": list(a.rois),
        "max_images": a.max_images,
        **_settings(a, cfg),
        "oracle": truth,
    }
    task = Task(TaskId("weighted_rsa"), params, deps)
    targets = {"weighted_rsa": task}
    if a.searchlight:
        targets.update(_map_plan(b, params, deps))
    return targets


#: the group maps of the weighted searchlight: what each subject's task holds, and its title
MAPS = {
    "gain": "held-out gain of adding {target} to {controls}",
    "score": "held-out score of {target} + {controls} combined",
}


def _map_plan(b, params: dict, deps: dict) -> dict[str, Task]:
    """Each subject's weighted searchlight in chunks of centres, and a group map of each value."""
    a = b.config.analyses.weighted_rsa
    nb = neighbourhoods_task(b, a.searchlight_radius)
    chunks = {}
    for s in b.subjects:
        for c, (start, stop) in enumerate(surface_chunks(b)):
            tid = TaskId("weighted_searchlight", subject=s, chunk=c, radius=a.searchlight_radius)
            chunks[tid] = Task(
                tid,
                {
                    **b.base,
                    **{k: params[k] for k in _MAP_PARAMS},
                    "subject": s,
                    "centres": [start, stop],
                },
                {**deps, "neighbourhoods": nb},
            )
    q = b.config.analyses.searchlight.fdr_q
    return {
        f"weighted_rsa_{value}": Task(
            TaskId("searchlight_group", model=f"weighted_rsa_{value}"),
            {"map_stage": "weighted_searchlight", "value": value, "fdr_q": q},
            chunks,
        )
        for value in MAPS
    }


#: what a subject's weighted searchlight reads of the ROI task's parameters
_MAP_PARAMS = ("subjects", "max_images", "models", "method", "k_stimuli", "random_state")


def plan_rdms(b) -> dict[str, Task]:
    cfg = b.config
    a = cfg.analyses.weighted_rsa
    d = cfg.data
    shared = b.plan.analyses.get("rdm_rsa", {})
    targets = {}
    for s in data_sets(cfg):
        at = {"root": s["root"], "set": s, "metric": d.metric}
        deps = {}
        for name in _models(a):
            if name.startswith("rdm:"):
                continue
            # the RDM RSA's task of this feature space when it runs, else the same task
            t = shared.get(f"features/{s['label']}/{name}") or features_task(b, s, name)
            deps[t.id] = t
        targets[f"weighted_rsa/{s['label']}"] = Task(
            TaskId("weighted_rsa_rdms", dataset=s["label"]),
            {
                **at,
                "label": s["label"],
                "rois": list(a.rois),
                **_settings(a, cfg),
                "inputs": set_key(s, "all"),
            },
            deps,
            (b.plan.data,),
        )
    return targets


def check(cfg) -> list[str]:
    a = cfg.analyses.weighted_rsa
    if not a.enabled:
        return []
    problems = []
    models = _models(a)
    if len(set(models)) != len(models) or not a.controls:
        problems.append(
            f"analyses.weighted_rsa.controls: give 1 to {MAX_MODELS - 1} models other than the "
            f"target {a.target!r}, each once; got {a.controls}"
        )
    if len(models) > MAX_MODELS:
        problems.append(
            f"analyses.weighted_rsa.controls: at most {MAX_MODELS - 1} controls (commonality "
            f"splits 2^k - 1 parts), got {len(a.controls)}"
        )
    if WEIGHTED_NAME in models:
        problems.append(f"analyses.weighted_rsa: {WEIGHTED_NAME!r} names the fitted combination")
    rdms = cfg.data.kind == "rdms"
    spaces = set(cfg.features.spaces)
    for key, name in [("target", a.target)] + [("controls", c) for c in a.controls]:
        if name.startswith("rdm:") and rdms:
            continue
        if name not in spaces:
            problems.append(
                f"analyses.weighted_rsa.{key}: {name!r} is not in features.spaces "
                f"{sorted(spaces)}" + ("; data models are named 'rdm:<name>'" if rdms else "")
            )
    if a.searchlight and (rdms or cfg.space != "fsaverage"):
        problems.append(
            "analyses.weighted_rsa.searchlight: maps need responses on fsaverage "
            f"(data kind {cfg.data.kind!r}, space {cfg.space!r}); set it to false or use "
            "space = 'fsaverage'"
        )
    # an RDM folder's ROIs are known once it is read: a data set without one skips it (export)
    if not rdms:
        bad = [r for r in a.rois if r not in (*STREAMS_ROIS, "nsdgeneral")]
        if bad:
            problems.append(
                f"analyses.weighted_rsa.rois: unknown ROI(s) {bad}; expected names from "
                f"{list(STREAMS_ROIS)}"
            )
    return problems


# ------------------------------------------------------------------------------------- export
def _export_results(ctx, results: list[dict]) -> None:
    import pandas as pd

    weighted, parts, truth = [], [], []
    planted = {}
    if ctx.config.data.kind == "virtual":
        planted = ctx.load(ctx.plan.data).get("truth_rois") or {}
    target = ctx.config.analyses.weighted_rsa.target
    for res in results:
        at = {"dataset": res["dataset"]} if "dataset" in res else {}
        for r in res["rois"]:
            base = {
                **at,
                "roi": r["roi"],
                "n_subjects": r["n_subjects"],
                "n_images": res["n_images"],
            }
            weighted += [{**base, **row} for row in r["weighted"]]
            parts += [{**base, **row} for row in r["commonality"]]
            if "oracle" in r:
                truth.append(_truth_row(r, target, planted.get(r["roi"], {})))
    if weighted:
        ctx.writer.table("weighted_rsa", pd.DataFrame(weighted))
        ctx.writer.table("weighted_rsa_commonality", pd.DataFrame(parts))
    if truth:
        ctx.writer.table("weighted_rsa_truth", pd.DataFrame(truth))


def _truth_row(r: dict, target: str, info: dict) -> dict:
    """Whether the measured unique variance of the target is above 0 (interval) where the
    oracle's is: measured vs oracle, no expectation written by hand."""
    part = f"unique {target}"
    m = next(row for row in r["commonality"] if row["part"] == part)
    o = next(row for row in r["oracle"] if row["part"] == part)
    m_total = next(row for row in r["commonality"] if row["part"] == "total")["estimate"]
    o_total = next(row for row in r["oracle"] if row["part"] == "total")["estimate"]
    m_shows, o_shows = m["ci_low"] > 0, o["ci_low"] > 0
    reps = info.get("representations", {})
    return {
        "roi": r["roi"],
        "planted": " + ".join(f"{k} ({v:g})" for k, v in reps.items()),
        "measured_unique": m["estimate"],
        "measured_ci_low": m["ci_low"],
        "measured_ci_high": m["ci_high"],
        "oracle_unique": o["estimate"],
        "oracle_ci_low": o["ci_low"],
        "oracle_ci_high": o["ci_high"],
        # the target's unique part as a share of all models' R² (how much of the explained
        # structure only the target carries)
        "measured_share": m["estimate"] / m_total if m_total > 0 else float("nan"),
        "oracle_share": o["estimate"] / o_total if o_total > 0 else float("nan"),
        "measured_shows": bool(m_shows),
        "oracle_shows": bool(o_shows),
        "agrees": bool(m_shows == o_shows),
    }


def export(ctx, targets) -> None:
    res = ctx.load(targets["weighted_rsa"])
    if res.get("skipped"):
        ctx.warn("weighted RSA", res["skipped"], "analyses.weighted_rsa.enabled")
    _export_results(ctx, [res])
    if ctx.hemi_split is None or res.get("skipped"):
        return
    a = ctx.config.analyses.weighted_rsa
    q = ctx.config.analyses.searchlight.fdr_q
    for value, what in MAPS.items():
        task = targets.get(f"weighted_rsa_{value}")
        if task is None:
            continue
        g = ctx.load(task)
        what = what.format(target=a.target, controls=" + ".join(a.controls))
        ctx.writer.map(
            f"weighted_rsa_{value}_t",
            *ctx.hemi_split(g["t"]),
            title=f"Weighted searchlight: {what} (group t, FDR q < {q})",
            section="weighted_rsa",
            stat="t",
            mask=ctx.hemi_split(g["significant"]),
            note=f"Mean over subjects ranges {np.nanmin(g['mean']):.3f} to "
            f"{np.nanmax(g['mean']):.3f}.",
        )


def export_rdms(ctx, targets) -> None:
    results = [ctx.load(t) for t in targets.values()]
    for res in results:
        if not res["rois"]:
            ctx.warn(
                f"weighted RSA · {res['dataset']}",
                f"none of the ROIs {ctx.config.analyses.weighted_rsa.rois} is in this data set",
                "analyses.weighted_rsa.rois",
            )
    _export_results(ctx, results)


# ------------------------------------------------------------------------------------- report
def _section(run):
    parts = run.table("weighted_rsa_commonality")
    if parts is None or not len(parts):
        return ""
    cfg = run_section(run, "weighted_rsa", WeightedRsaConfig)
    target = cfg.target
    out = []
    groups = parts.groupby("dataset", sort=False) if "dataset" in parts else [("", parts)]
    for label, df in groups:
        fig = commonality_bar_figure(
            df, title=f"RDM commonality{f' · {label}' if label else ''}: unique and common R²"
        )
        out.append(
            img_html(
                plots.figure_to_base64(fig),
                f"Each ROI's RDM regressed on every subset of {', '.join(cfg.controls)} "
                f"and {target}: unique parts (what one model explains that no other does) and "
                "common parts (inclusion–exclusion), mean over subjects; error bars: bootstrap "
                "percentile intervals over subjects and stimuli; dotted line: all models' R².",
            )
        )
    return "".join(out) + maps_html(run, "weighted_rsa")


def methods(cfg) -> list[str]:
    a = cfg.analyses.weighted_rsa
    if not a.enabled:
        return []
    where = (
        "each data set's ROI RDMs"
        if cfg.data.kind == "rdms"
        else "every subject's ROI RDMs on the shared images all subjects saw"
        + (f" (at most {a.max_images})" if a.max_images else "")
    )
    return [
        f"Weighted RSA and RDM commonality in {', '.join(a.rois)} on {where}: {a.target} with "
        f"the controls {', '.join(a.controls)}. Weighted RSA: non-negative least-squares weights "
        f"of the model RDMs (rsatoolbox's fit_regress_nn, {a.method}) fitted on training stimuli "
        "and subjects, scored on held-out ones "
        f"({'rsatoolbox default' if a.k_stimuli is None else a.k_stimuli} stimulus folds), beside "
        f"each model alone; variance from {a.n_bootstrap} bootstrap samples over subjects and "
        f"stimuli with {a.n_cv} fold assignments each (rsatoolbox's bootstrap_crossval). "
        "Commonality: R² of the ROI RDM on every subset of the models (OLS with intercept), unique "
        "and common parts by inclusion–exclusion, mean over subjects, "
        f"{a.commonality_bootstrap} bootstrap samples for {a.ci:.0%} percentile intervals."
        + (
            " Virtual NSD: the same commonality on the RDMs of the noiseless planted responses "
            f"is the oracle; a ROI agrees when the measured unique {a.target} interval excludes 0 "
            "exactly where the oracle's does."
            if cfg.data.kind == "virtual"
            else ""
        )
        + (
            f" Weighted searchlight: the same fit and held-out score (one subject at a time, "
            f"stimulus folds only) at every centre of geodesic discs of {a.searchlight_radius:g} "
            f"mm, on the same images, and the combination refitted without {a.target}; maps of "
            f"the held-out score and of {a.target}'s gain (score − score without it), group "
            "two-tailed one-sample t-test across subjects, Benjamini–Hochberg FDR "
            f"q = {cfg.analyses.searchlight.fdr_q}."
            if a.searchlight
            else ""
        )
    ]


_TABLES = (
    Table(
        "weighted_rsa",
        "Weighted RSA: the fitted combination vs each model",
        "Per ROI (and data set): the held-out score of the non-negative combination "
        f"('{WEIGHTED_NAME}') and of each model alone, their bootstrap intervals, each model's "
        "weight in the combination (unit norm) and the p of combination − model.",
        formats={"model": "text"},
        max_rows=80,
    ),
    Table(
        "weighted_rsa_commonality",
        "RDM commonality: unique and common variance",
        "Per ROI: each part's R² (mean over subjects) with its bootstrap interval; 'total' is all "
        "models together.",
        formats={"part": "text", "models": "text"},
        max_rows=80,
    ),
    Table(
        "weighted_rsa_truth",
        "Commonality ground truth (virtual NSD)",
        "Per planted ROI: the measured unique variance of the target and the oracle's (the same "
        "analysis on the noiseless planted responses), each as a share of all models' R², "
        "whether each interval is above 0, and whether they agree.",
    ),
)

ANALYSIS = Analysis(
    name="weighted_rsa",
    configs={"weighted_rsa": WeightedRsaConfig},
    plan=plan,
    check=check,
    export=export,
    methods=methods,
    sections=(
        ReportSection(
            "weighted_rsa",
            "Beyond the controls: weighted RSA and RDM commonality",
            _section,
            tables=("weighted_rsa", "weighted_rsa_commonality", "weighted_rsa_truth"),
        ),
    ),
    tables=_TABLES,
)

#: the same analysis on RDM folders (objects92): its config is ``[analyses.weighted_rsa]``, its
#: report the section above (the report reads the tables, whichever data wrote them)
RDM_ANALYSIS = Analysis(
    name="weighted_rsa_rdms",
    configs={},
    plan=plan_rdms,
    needs="rdms",
    enabled=lambda cfg: bool(cfg.analyses.weighted_rsa.enabled),
    export=export_rdms,
    methods=methods,
    warning_keys={"": "analyses.weighted_rsa"},
)
