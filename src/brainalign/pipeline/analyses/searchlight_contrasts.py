"""Searchlight contrasts between models (paper Fig. 4): per subject, the searchlight map of one
model minus another's (e.g. the LLM-trained network − MPNet), paired t across subjects, FDR."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from brainalign.pipeline.analyses import searchlight
from brainalign.pipeline.analysis import Analysis, ModelRef, ReportSection
from brainalign.pipeline.core import Task, TaskId, stage, upstream
from brainalign.report.html import maps_html
from brainalign.stats import group_map, subject_mean
from brainalign.utils.settings import Section


class SearchlightContrastsConfig(Section):
    """``[analyses.searchlight_contrasts]``: ``contrasts = [["net_mpnet", "mpnet"], …]``.

    Each pair is contrasted on the searchlight of ``[analyses.searchlight]`` (same geometry,
    sampling and method). A model is a feature space, a trained network (``net_<target>``,
    seeds averaged per subject first) or a zoo model. ``enabled = false`` turns the contrasts
    off while keeping them listed, as for every other analysis.
    """

    # compute the contrasts listed (needs analyses.searchlight.enabled)
    enabled: bool = True
    # pairs [a, b] of models: the group map of a − b (paired t across subjects)
    contrasts: list[tuple[str, str]] = Field(default_factory=list)
    # Benjamini-Hochberg level of each contrast map
    fdr_q: Annotated[float, Field(gt=0, lt=1)] = 0.05


@stage("searchlight_contrast")
def searchlight_contrast(params, inputs, ctx):
    """Group map of model a − model b: per-subject differences, paired t across subjects, FDR."""
    maps: dict = {params["a"]: {}, params["b"]: {}}
    for tid, res in upstream(inputs, params["map_stage"]):
        chunks = maps[tid.model].setdefault(tid.subject, {}).setdefault(tid.instance, [])
        chunks.append(np.asarray(res["r"], dtype=np.float64))
    subjects = sorted(set(maps[params["a"]]) & set(maps[params["b"]]))

    def subject_map(model, s):
        # a network's instances (seeds) are averaged per subject before the test, as in the paper
        return np.mean([np.concatenate(c) for c in maps[model][s].values()], axis=0)

    A = np.stack([subject_map(params["a"], s) for s in subjects])
    B = np.stack([subject_map(params["b"], s) for s in subjects])
    g = group_map(A - B, fdr_q=params["fdr_q"])
    return {
        "subjects": subjects,
        "diff": (A - B).astype(np.float32),
        "mean_a": subject_mean(A),
        "mean_b": subject_mean(B),
        **g,
    }


def enabled(cfg) -> bool:
    c = cfg.analyses.searchlight_contrasts
    return c.enabled and bool(c.contrasts) and cfg.analyses.searchlight.enabled


def _models(b) -> dict[str, list[ModelRef]]:
    refs: dict[str, list[ModelRef]] = {}
    for m in b.plan.models:
        refs.setdefault(m.name, []).append(m)
    return refs


def plan(b) -> dict[str, Task]:
    cfg = b.config
    c = cfg.analyses.searchlight_contrasts
    refs = _models(b)
    targets = {}
    for x, y in c.contrasts:
        deps = {}
        for name in (x, y):
            for ref in refs.get(name) or [ModelRef(name, b.feature(name))]:
                deps.update(searchlight.map_tasks(b, ref))
        task = Task(
            TaskId("searchlight_contrast", model=x, versus=y),
            {"a": x, "b": y, "map_stage": searchlight.map_stage(cfg), "fdr_q": c.fdr_q},
            deps,
        )
        targets[f"{x}_minus_{y}"] = task
    return targets


def check(cfg) -> list[str]:
    a = cfg.analyses
    c = a.searchlight_contrasts
    if not (c.enabled and c.contrasts):
        return []
    problems = []
    if not a.searchlight.enabled:
        problems.append(
            "analyses.searchlight_contrasts.contrasts: the contrasts use the searchlight; set "
            "analyses.searchlight.enabled = true"
        )
    nets = {f"net_{t}" for t in a.networks.targets} if a.networks.enabled else set()
    known = set(cfg.features.spaces) | nets | (set(a.networks.zoo) if a.networks.enabled else set())
    for i, pair in enumerate(c.contrasts):
        if pair[0] == pair[1]:
            problems.append(f"analyses.searchlight_contrasts.contrasts[{i}]: a model minus itself")
        bad = [m for m in pair if m not in known]
        if bad:
            problems.append(
                f"analyses.searchlight_contrasts.contrasts[{i}]: unknown model(s) {bad}; use "
                f"features.spaces, trained networks or zoo models: {sorted(known)}"
            )
    return problems


def export(ctx, targets) -> None:
    q = ctx.config.analyses.searchlight_contrasts.fdr_q
    for name, task in targets.items():
        split = searchlight.hemi_split(ctx, task)
        if split is None:
            continue
        res = ctx.load(task)
        a, b = task.params["a"], task.params["b"]
        ctx.writer.map(
            f"searchlight_{name}_t",
            *split(res["t"]),
            title=f"Searchlight contrast: {a} − {b} (paired t, FDR q < {q})",
            section="searchlight_contrasts",
            stat="t",
            mask=split(res["significant"]),
            note=f"{len(res['subjects'])} subjects; positive where {a} explains the brain "
            f"better than {b}.",
        )


def methods(cfg) -> list[str]:
    c = cfg.analyses.searchlight_contrasts
    if not (c.enabled and c.contrasts):
        return []
    pairs = ", ".join(f"{x} − {y}" for x, y in c.contrasts)
    return [
        f"Searchlight contrasts ({pairs}): each subject's searchlight map of one model minus the "
        "other's (network seeds averaged per subject first), two-tailed paired t-test across "
        f"subjects, Benjamini–Hochberg FDR q = {c.fdr_q}, as in the paper's Fig. 4."
    ]


def _section(run) -> str:
    return maps_html(run, "searchlight_contrasts")


ANALYSIS = Analysis(
    name="searchlight_contrasts",
    configs={"searchlight_contrasts": SearchlightContrastsConfig},
    plan=plan,
    enabled=enabled,
    check=check,
    export=export,
    methods=methods,
    sections=(ReportSection("searchlight_contrasts", "Searchlight contrasts", _section),),
)
