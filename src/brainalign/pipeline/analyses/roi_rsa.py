"""ROI RSA (paper §3.4, Fig. 3): every model in every ROI of every subject, the noise ceiling,
group statistics and the pairwise model comparison."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from brainalign.datasets import load_stimuli
from brainalign.datasets.base import STREAMS_ROIS
from brainalign.errors import BrainAlignError
from brainalign.pipeline.analysis import Analysis, ReportSection, Table, run_section
from brainalign.pipeline.core import Task, TaskId, stage, upstream
from brainalign.pipeline.inputs import feature_rows, load_subject
from brainalign.pipeline.truth import write_ground_truth
from brainalign.report import plots, rdm_plots
from brainalign.report.html import esc, img_html, table_html
from brainalign.report.rdm_plots import primary_categories
from brainalign.report.truth_plots import truth_section
from brainalign.rsa import compute_rdm
from brainalign.rsa import roi_rsa as _roi_rsa
from brainalign.rsa.shared import roi_noise_ceilings
from brainalign.stats import group_model_scores
from brainalign.utils.settings import Section

_Fraction = Annotated[float, Field(gt=0, lt=1)]
_KNOWN_ROIS = (*STREAMS_ROIS, "nsdgeneral")


class RoiRsaConfig(Section):
    """``[analyses.roi_rsa]``: RSA of each feature space in each ROI (paper Fig. 3)."""

    # score every feature space and model in each ROI (NSD or virtual data)
    enabled: bool = True
    # the ROIs scored (streams ROIs of NSD, or the virtual NSD's regions)
    rois: list[str] = Field(default_factory=lambda: ["early", "ventral", "lateral", "parietal"])
    # paper: RDMs over disjoint random subsets of subset_size images, scores averaged over
    # subsets (the paper's §3.4); full: one RDM over all the subject's images
    sampling: Literal["paper", "full"] = "paper"
    # images per subset (the paper: 100)
    subset_size: Annotated[int, Field(ge=3)] = 100
    # at most this many subsets per subject (default: as many disjoint ones as the images give)
    max_subsets: Annotated[int, Field(gt=0)] | None = None
    # the distance of the brain and model RDMs (correlation: 1 - Pearson r)
    metric: Literal["correlation", "cosine", "euclidean"] = "correlation"
    # how a model RDM is compared with the brain RDM (the paper: Pearson)
    method: Literal["pearson", "spearman", "cosine", "kendall_tau_a"] = "pearson"
    #: precision in which the ROIs' betas are read and multiplied (sums in float64); the paper's
    #: pdist works in float64, which gives the same r to about 1e-6
    dtype: Literal["float32", "float64"] = "float32"
    # also compute each ROI's noise ceiling (split-half of the repetitions)
    noise_ceiling: bool = True
    #: error bars: "sem" (SD, ddof 1, / √n) or "paper" (the paper's SD with ddof 0 / √n)
    error: Literal["sem", "paper"] = "sem"


class ModelComparisonConfig(Section):
    """``[analyses.model_comparison]``: pairwise tests between models on the ROI RSA scores."""

    # test every pair of models in the ROIs below (needs roi_rsa)
    enabled: bool = True
    # the ROIs whose models are compared pairwise
    rois: list[str] = Field(default_factory=lambda: ["ventral", "lateral", "parietal"])
    # paired: paired t across subjects; paper: the paper's unpaired two-sided t-test
    test: Literal["paired", "paper"] = "paired"
    # Benjamini-Hochberg level within each ROI and family
    fdr_q: _Fraction = 0.05
    #: FDR families: {name = [models]}; every pair within a family is tested and BH-FDR runs
    #: within each ROI × family (the paper: Fig. 3's ten models and Fig. 4's networks apart).
    #: Default: one family "all" of every model of the run
    families: dict[str, list[str]] | None = None


# ------------------------------------------------------------------------------------- stages
@stage("roi_rsa")
def roi_rsa(params, inputs, ctx):
    """RSA of one model in every ROI of one subject (paper §3.4)."""
    sub = load_subject(params, ctx)
    X = feature_rows(inputs["model"], sub.image_ids)
    rois = {r: sub.rois[r] for r in params["rois"] if r in sub.rois}
    paper = params["sampling"] == "paper"
    scores = _roi_rsa(
        sub.betas,
        {params["model"]: X},
        rois,
        sampling="subsets" if paper else "full",
        subsets=np.asarray(inputs["sampling"]["subsets"]) if paper else None,
        method=params["method"],
        metric=params["metric"],
        dtype=params["dtype"],
        backend=ctx.get("backend", "numpy"),
        device=ctx.get("device"),
    )
    r = np.array([float(scores.loc[roi, params["model"]]) for roi in rois], dtype=np.float64)
    return {"rois": list(rois), "r": r}


@stage("model_similarity")
def model_similarity(params, inputs, ctx):
    """Model-vs-model RDM correlations of one subject, on the images and subsets its ROI RSA
    uses (the paper's ``correlate_model_rdms_figure.py``)."""
    from brainalign.rsa import model_similarity as _similarity

    ids = np.asarray(inputs["subject"]["image_ids"], dtype=np.int64)
    labels = [_ref_label(name, instance) for name, instance in params["models"]]
    models = {label: feature_rows(inputs[f"model:{i}"], ids) for i, label in enumerate(labels)}
    paper = params["sampling"] == "paper"
    sim = _similarity(
        models,
        len(ids),
        sampling="subsets" if paper else "full",
        subsets=np.asarray(inputs["sampling"]["subsets"]) if paper else None,
        method=params["method"],
    )
    return {"labels": labels, "r": sim.to_numpy(dtype=np.float64)}


def _ref_label(name: str, instance) -> str:
    """A model instance's label in the similarity stage (``net_mpnet#1`` for seed 1)."""
    return name if instance is None else f"{name}#{instance}"


def similarity_by_model(labels, r, models) -> np.ndarray:
    """An instance-by-instance similarity matrix as one row and column per model: a pair of
    models is the mean over their instances' pairs; a model's diagonal is the mean over pairs
    of its distinct instances (its seeds' agreement; 1 for a single instance).

    Parameters
    ----------
    labels : list of str
        The instances' labels (rows and columns of ``r``).
    r : (n, n) array
    models : list of (name, instance)
        Aligned with ``labels``.

    Returns
    -------
    names : list of str
        The models, in first-seen order.
    (n_models, n_models) float64 array
    """
    r = np.asarray(r, dtype=np.float64)
    names = list(dict.fromkeys(name for name, _ in models))
    where = {n: [i for i, (name, _) in enumerate(models) if name == n] for n in names}
    out = np.empty((len(names), len(names)))
    for a, na in enumerate(names):
        for b, nb in enumerate(names):
            block = r[np.ix_(where[na], where[nb])]
            if na == nb and len(where[na]) > 1:
                block = block[~np.eye(len(where[na]), dtype=bool)]
            out[a, b] = float(np.mean(block))
    return names, out


@stage("noise_ceiling")
def noise_ceiling(params, inputs, ctx):
    """Leave-one-subject-out ceiling per ROI on the images every subject saw (paper §3.4)."""
    subs = [load_subject(params, ctx, subject=s) for s in params["subjects"]]
    res = roi_noise_ceilings(subs, params["rois"])
    first = params["rois"][0]
    return {
        "rois": list(params["rois"]),
        "n_images": int(len(res["image_ids"])),
        f"rdm_{first}": np.asarray(res["rdms"][first], dtype=np.float32),
        "ceiling": res["ceiling"],
        "subjects": list(params["subjects"]),
    }


@stage("roi_group")
def roi_group(params, inputs, ctx):
    """Subject × ROI × model table, ceiling-normalised, with group and pairwise tests."""
    import pandas as pd

    rows = [
        {"subject": tid.subject, "roi": roi, "model": tid.model, "instance": tid.instance, "r": r}
        for tid, res in upstream(inputs, "roi_rsa")
        for roi, r in zip(res["rois"], np.asarray(res["r"]).tolist(), strict=True)
    ]
    ceilings = None
    if "ceiling" in inputs:
        ceil = inputs["ceiling"]
        C = np.asarray(ceil["ceiling"])
        ceilings = pd.DataFrame(
            [
                {"subject": s, "roi": roi, "ceiling": float(C[i, j])}
                for i, s in enumerate(ceil["subjects"])
                for j, roi in enumerate(ceil["rois"])
            ]
        )
    res = group_model_scores(
        pd.DataFrame(rows),
        ceilings,
        comparison_rois=params["comparison_rois"],
        test=params["test"],
        fdr_q=params["fdr_q"],
        error=params["error"],
        families=params.get("families"),
    )
    return {
        "table": res.table.to_dict("list"),
        "group": res.group.to_dict("list"),
        "pairwise": res.pairwise.to_dict("list"),
        "value": res.value,
    }


# --------------------------------------------------------------------------------------- plan
def plan(b) -> dict[str, Task]:
    cfg = b.config
    a = cfg.analyses.roi_rsa
    deps: dict = {}
    for s in b.subjects:
        for m in b.plan.models:
            tid = TaskId("roi_rsa", subject=s, model=m.name, instance=m.instance)
            deps[tid] = Task(
                tid,
                {
                    **b.base,
                    "subject": s,
                    "model": m.name,
                    "rois": list(a.rois),
                    "sampling": a.sampling,
                    "method": a.method,
                    "metric": a.metric,
                    "dtype": a.dtype,
                },
                {"model": m.task, "sampling": b.sampling(s), "subject": b.subject(s)},
            )
    # model-vs-model RDM correlations per subject, on the same images and subsets
    similarity = {
        f"similarity:sub-{s:02d}": Task(
            TaskId("model_similarity", subject=s),
            {
                **b.base,
                "subject": s,
                "models": [[m.name, m.instance] for m in b.plan.models],
                "sampling": a.sampling,
                "method": a.method,
            },
            {
                "sampling": b.sampling(s),
                "subject": b.subject(s),
                **{f"model:{i}": m.task for i, m in enumerate(b.plan.models)},
            },
        )
        for s in b.subjects
        if len(b.plan.models) >= 2
    }
    if a.noise_ceiling and len(b.subjects) >= 3:
        deps["ceiling"] = Task(
            TaskId("noise_ceiling"),
            {**b.base, "subjects": b.subjects, "rois": list(a.rois)},
            {TaskId("responses", subject=s): b.subject(s) for s in b.subjects},
        )
    mc = cfg.analyses.model_comparison
    group = Task(
        TaskId("roi_group"),
        {
            "comparison_rois": list(mc.rois) if mc.enabled else [],
            "test": mc.test,
            "fdr_q": mc.fdr_q,
            "error": a.error,
            "families": mc.families,
        },
        deps,
    )
    return {"group": group, **similarity}


def check(cfg) -> list[str]:
    a = cfg.analyses
    problems = []
    for key, rois in (
        ("analyses.roi_rsa.rois", a.roi_rsa.rois),
        ("analyses.model_comparison.rois", a.model_comparison.rois),
    ):
        bad = [r for r in rois if r not in _KNOWN_ROIS]
        if bad:
            problems.append(
                f"{key}: unknown ROI(s) {bad}; expected names from {list(STREAMS_ROIS)}"
            )
    if a.model_comparison.enabled and a.model_comparison.rois:
        missing = [r for r in a.model_comparison.rois if r not in a.roi_rsa.rois]
        if missing:
            problems.append(
                f"analyses.model_comparison.rois: {missing} are not in analyses.roi_rsa.rois "
                f"{a.roi_rsa.rois}; model comparison uses the ROI RSA scores"
            )
        if not a.roi_rsa.enabled:
            problems.append(
                "analyses.model_comparison.enabled: needs analyses.roi_rsa.enabled = true"
            )
        problems += _family_problems(cfg)
    return problems


def _family_problems(cfg) -> list[str]:
    """Each FDR family names at least two of the run's models."""
    a = cfg.analyses
    families = a.model_comparison.families
    if families is None:
        return []
    nets = {f"net_{t}" for t in a.networks.targets} if a.networks.enabled else set()
    known = set(cfg.features.spaces) | nets | (set(a.networks.zoo) if a.networks.enabled else set())
    problems = [] if families else ["analyses.model_comparison.families: give at least one family"]
    for name, members in families.items():
        bad = [m for m in members if m not in known]
        if bad:
            problems.append(
                f"analyses.model_comparison.families.{name}: unknown model(s) {bad}; use "
                f"features.spaces, trained networks or zoo models: {sorted(known)}"
            )
        elif len(set(members)) < 2:
            problems.append(
                f"analyses.model_comparison.families.{name}: a family needs at least 2 models"
            )
    return problems


# ------------------------------------------------------------------------------------- export
def export(ctx, targets) -> None:
    import pandas as pd

    w, plan = ctx.writer, ctx.plan
    g = ctx.load(targets["group"])
    table = pd.DataFrame(g["table"])
    w.table("roi_rsa", table)
    if table["ceiling"].notna().any():
        w.table("noise_ceiling", table[["subject", "roi", "ceiling"]].drop_duplicates())
    group = pd.DataFrame(g["group"])
    group = _order(
        group.sort_values(["roi", "rank"]), ["roi", "rank", "model", "mean", "sem", "t", "p"]
    )
    w.table("roi_group", group)
    pairs = pd.DataFrame(g["pairwise"])
    if len(pairs):
        w.table(
            "model_comparison",
            _order(pairs, ["roi", "family", "model_a", "model_b", "mean_diff", "t", "p", "q"]),
        )
    vision = plan.vision_models
    if vision:
        zoo = group[group["model"].isin(vision)].sort_values(
            ["roi", "mean"], ascending=[True, False]
        )
        w.table("zoo_ranking", zoo)
    _export_similarity(ctx, targets)
    write_ground_truth(ctx, targets, table)  # virtual NSD: measured vs the planted oracle
    _export_subsets(ctx, targets)
    used = used_subset_sizes(ctx, targets)
    if used is not None:  # run.json's config and the methods then give the size used
        ctx.extras.setdefault("effective", {})["analyses.roi_rsa.subset_size"] = used
    _export_rdms(ctx)


def _export_similarity(ctx, targets) -> None:
    """``tables/model_similarity.csv``: each pair of models' RDM correlation, the mean over
    subjects (a row and a column per model, network instances averaged), and
    ``tables/model_similarity_subjects.csv`` with every subject's."""
    import pandas as pd

    per_subject = []
    for name, task in targets.items():
        if not name.startswith("similarity:"):
            continue
        res = ctx.load(task)
        names, r = similarity_by_model(res["labels"], res["r"], task.params["models"])
        per_subject.append((task.id.subject, names, r))
    if not per_subject:
        return
    names = per_subject[0][1]
    mean = np.mean([r for _, n, r in per_subject if n == names], axis=0)
    table = pd.DataFrame(mean, columns=names)
    table.insert(0, "model", names)
    ctx.writer.table("model_similarity", table)
    long = [
        {"subject": s, "model_a": a, "model_b": b, "r": float(r[i, j])}
        for s, n, r in per_subject
        for i, a in enumerate(n)
        for j, b in enumerate(n)
        if i < j
    ]
    ctx.writer.table("model_similarity_subjects", pd.DataFrame(long))


def _export_subsets(ctx, targets) -> None:
    """Each subject's image subsets as NSD ids, ``arrays/subsets__sub-XX.npy`` (one row per
    subset), so ``brainalign compare-models`` (``[rsa] run``) scores models on the same ones."""
    seen = set()
    for dep in targets["group"].deps.values():
        if dep.stage != "roi_rsa" or dep.params.get("sampling") != "paper":
            continue
        if dep.id.subject in seen:
            continue
        seen.add(dep.id.subject)
        sampling = dep.deps["sampling"]
        rows = np.asarray(ctx.load(sampling)["subsets"], dtype=np.int64)
        ids = np.asarray(ctx.load(sampling.deps["subject"])["image_ids"], dtype=np.int64)
        ctx.writer.array(f"subsets__sub-{int(dep.id.subject):02d}", ids[rows])


def used_subset_sizes(ctx, targets) -> dict | None:
    """The subset size each subject's sampling used, when it is less than the config's.

    ``subset_size`` is capped at a subject's images (one subset of every image); the record
    names the requested size, the size used (the smallest over subjects) and each subject's.
    """
    a = ctx.config.analyses.roi_rsa
    if a.sampling != "paper":
        return None
    samplings = {
        d.id.subject: d
        for t in targets["group"].deps.values()
        if t.stage == "roi_rsa"
        for d in t.deps.values()
        if d.stage == "sampling"
    }
    sizes = {s: int(np.asarray(ctx.load(t)["subsets"]).shape[-1]) for s, t in samplings.items()}
    if not sizes or min(sizes.values()) >= a.subset_size:
        return None
    return {
        "requested": a.subset_size,
        "used": min(sizes.values()),
        "per_subject": {str(s): n for s, n in sorted(sizes.items())},
        "why": "capped at each subject's number of images (one subset of every image)",
    }


def _order(df, first):
    """``df`` with the columns ``first`` (those present) leading."""
    cols = [c for c in first if c in df.columns]
    return df[cols + [c for c in df.columns if c not in cols]].reset_index(drop=True)


#: images of the RDM figure: an RDM of n images is n² pixels per panel and n(n-1)/2 floats per
#: array, so a real NSD subject's ~10,000 images are cut to this many (the caption says so)
RDM_FIGURE_IMAGES = 120


def _export_rdms(ctx) -> None:
    """RDM images for the report: one subject's ROI RDMs and the model RDMs on the same images,
    every ROI and every model, with each image's category for the display order."""
    plan, w = ctx.plan, ctx.writer
    cfg = plan.config
    s = plan.subjects[0]
    params = {**plan.subject_tasks[s].params}
    sub = load_subject(params, {"nsd_cache": ctx.extras["nsd_cache"]})
    rows = np.arange(min(RDM_FIGURE_IMAGES, sub.n_images))
    for roi in cfg.analyses.roi_rsa.rois:
        if roi in sub.rois:
            B = np.asarray(sub.betas)[rows][:, np.asarray(sub.rois[roi], bool)]
            B = B[:, np.isfinite(B).all(0)]
            w.array(f"rdm__{roi}__brain", compute_rdm(B, metric="correlation"))
    ids = np.asarray(sub.image_ids)[rows]
    for name, t in plan.features.items():
        X = feature_rows(ctx.load(t), ids)
        w.array(f"rdm__model__{name}", compute_rdm(X, metric="correlation"))
    w.array("rdmimages__ids", ids.astype(np.int64))
    # subject, and how many images it has: the caption says which part of them is drawn
    w.array("rdmimages__meta", np.array([int(s), int(sub.n_images)], dtype=np.int64))
    cats = _image_categories(params["root"], ids)
    if cats is not None:
        w.array("rdmimages__categories", np.asarray(cats, dtype=str))


def _image_categories(root, ids: np.ndarray) -> list[str] | None:
    """Each image's category for the RDM figure's order (COCO images have several: the one
    most frequent among these images), or None when the data have no categories."""
    try:
        stim = load_stimuli(root, image_ids=ids, categories=True)
    except BrainAlignError:  # a figure's order is no reason to fail the export
        return None
    if stim.categories is None or not stim.category_names:
        return None
    return primary_categories(stim.categories, stim.category_names)


# ------------------------------------------------------------------------------------- report
def _roi_section(run) -> str:
    scores = run.table("roi_rsa")
    if scores is None:
        return ""
    ceiling = run.table("noise_ceiling")
    error = run_section(run, "roi_rsa", RoiRsaConfig).error
    bars = "SD (ddof 0) / √n, as in the paper" if error == "paper" else "SEM"
    parts = [
        img_html(
            plots.figure_to_base64(
                plots.roi_bar_figure(
                    scores,
                    value="r",
                    ceiling=ceiling,
                    ylabel="Pearson r (brain RDM vs model RDM)",
                    title=f"ROI RSA: subject dots, mean ± {bars}, grey band = noise ceiling",
                    error=error,
                )
            ),
            "Raw RDM correlations per ROI and model; grey bands are the leave-one-subject-out "
            "noise ceilings.",
        )
    ]
    if "r_norm" in scores and scores["r_norm"].notna().any():
        parts.append(
            img_html(
                plots.figure_to_base64(
                    plots.roi_bar_figure(
                        scores,
                        value="r_norm",
                        ylabel="r / noise ceiling",
                        title=f"Noise-ceiling-normalised ROI RSA (mean ± {bars})",
                        error=error,
                    )
                ),
                "Each subject's r divided by that subject's ceiling.",
            )
        )
    return "".join(parts)


def _comparison_section(run) -> str:
    import pandas as pd

    parts = []
    mc = run.table("model_comparison")
    if mc is not None and len(mc):
        if "family" not in mc.columns:  # a run written before families existed
            mc = mc.assign(family="all")
        names = list(dict.fromkeys(mc["family"]))
        fams = (
            "one family of every model"
            if names == ["all"]
            else f"{len(names)} families ({', '.join(esc(n) for n in names)}), each corrected "
            "apart; pairs across families are not tested"
        )
        parts.append(
            "<p class='note'>Pairwise t-tests across subjects on noise-ceiling-normalised "
            f"scores, BH-FDR within each ROI and FDR family: {fams}. Each cell: mean "
            "difference row − column; * q &lt; 0.05. All statistics are in "
            "<code>tables/model_comparison.csv</code>.</p>"
        )
        col = "mean_diff" if "mean_diff" in mc.columns else "t"
        for (roi, family), d in mc.groupby(["roi", "family"], sort=False):
            title = esc(roi) if names == ["all"] else f"{esc(roi)} · family {esc(family)}"
            parts.append(f"<h3>{title}</h3>" + _comparison_figure(run, roi, d, family))
            models = list(dict.fromkeys([*d["model_a"], *d["model_b"]]))
            grid = pd.DataFrame("", index=models, columns=models)
            for _, r in d.iterrows():
                star = "*" if bool(r.get("significant", False)) else ""
                grid.loc[r["model_a"], r["model_b"]] = f"{r[col]:+.3f}{star}"
                grid.loc[r["model_b"], r["model_a"]] = f"{-r[col]:+.3f}{star}"
            grid.insert(0, "model", models)
            parts.append(table_html(grid))
        run.mark_shown("model_comparison")  # as these grids
    return "".join(parts)


def _comparison_figure(run, roi: str, pairs, family: str = "all") -> str:
    """rsatoolbox-style model comparison of one ROI, its significance lines drawn from
    ``pairs`` (the rows of ``tables/model_comparison.csv`` the grid below prints)."""
    scores = run.table("roi_rsa")
    if scores is None:
        return ""
    scores = scores[scores["roi"] == roi]
    # the tests ran on the normalised scores when there was a ceiling (stats.group_model_scores)
    value = "r_norm" if "r_norm" in scores and scores["r_norm"].notna().any() else "r"
    error = run_section(run, "roi_rsa", RoiRsaConfig).error
    comparison = run_section(run, "model_comparison", ModelComparisonConfig)
    q = comparison.fdr_q
    test = (
        "independent-samples t-test (paper mode)"
        if comparison.test == "paper"
        else "paired t-test across subjects"
    )
    if family != "all":  # the family's models only
        members = set(pairs["model_a"]) | set(pairs["model_b"])
        scores = scores[scores["model"].isin(members)]
    models = list(dict.fromkeys(scores["model"]))
    ceiling, band = _ceiling_band(run, roi, value)
    fig = plots.model_comparison_figure(
        scores,
        pairs,
        value=value,
        ceiling=ceiling,
        ceiling_label=band,
        error=error,
        title=f"Model comparison · {roi}",
        ylabel="r / noise ceiling" if value == "r_norm" else "Pearson r (brain vs model RDM)",
    )
    n_sig = len(plots.significant_pairs(pairs, models))
    bars = "SD (ddof 0) / √n, as in the paper" if error == "paper" else "SEM"
    return img_html(
        plots.figure_to_base64(fig),
        f"{roi}: bars = mean over subjects ± {bars}, dots = subjects, models by descending "
        f"score; grey = {band}. Lines above the bars (Golan wings): pairs of models that differ, "
        f"{n_sig} ({test}, Benjamini–Hochberg FDR q < {q} over all "
        f"{len(pairs)} pairs of the {len(models)} models in {roi}"
        + ("" if family == "all" else f", FDR family {family}")
        + "; a dot marks the better model, "
        "a tick each model it beats); every pair is in the table below and in "
        "tables/model_comparison.csv.",
    )


def _ceiling_band(run, roi: str, value: str):
    """The noise ceiling drawn with ``value``: 1 for normalised scores, else the subjects'
    mean ± SEM of the leave-one-subject-out ceiling (None without a ceiling)."""
    if value == "r_norm":
        return (1.0, 1.0), "noise ceiling (each subject's r / own ceiling = 1)"
    ceil = run.table("noise_ceiling")
    c = None if ceil is None else ceil.loc[ceil["roi"] == roi, "ceiling"].to_numpy(float)
    c = None if c is None else c[np.isfinite(c)]
    if c is None or not c.size:
        return None, ""
    sem = c.std(ddof=1) / np.sqrt(c.size) if c.size > 1 else 0.0
    return (c.mean() - sem, c.mean() + sem), "noise ceiling (mean ± SEM over subjects)"


def _rdms_section(run) -> str:
    rdms = run.arrays("rdm__")
    if not rdms:
        return ""
    brain = {k.split("__")[1]: v for k, v in rdms.items() if k.endswith("__brain")}
    models = {
        k.removeprefix("rdm__model__"): v for k, v in rdms.items() if k.startswith("rdm__model__")
    }
    # anything else (older run folders: rdm__<roi>__<model>) is drawn too, never dropped
    other = {
        k.removeprefix("rdm__").replace("__", " · "): v
        for k, v in rdms.items()
        if not k.endswith("__brain") and not k.startswith("rdm__model__")
    }
    cats = run.array("rdmimages__categories")
    n = len(next(iter(rdms.values())))
    n_images = int((1 + np.sqrt(1 + 8 * n)) / 2) if np.ndim(next(iter(rdms.values()))) == 1 else n
    order = rdm_plots.category_order(cats) if cats is not None else None
    cats = None if cats is None else [str(c) for c in cats]
    which = _rdm_images_text(run, n_images)
    how = (
        "images ordered by category (for COCO images the category most frequent among these "
        "images), white lines between categories"
        if cats is not None
        else "images in NSD id order (the data have no categories)"
    )
    brain = _in_order(brain, run_section(run, "roi_rsa", RoiRsaConfig).rois)
    models = _in_order(models, run.config.features.spaces if run.config is not None else [])
    parts = []
    for what, group in (("Brain RDMs", brain), ("Model RDMs", models), ("RDMs", other)):
        if group:
            fig = rdm_plots.ordered_rdms_figure(group, order, cats, title=f"{what} ({len(group)})")
            parts.append(
                img_html(
                    plots.figure_to_base64(fig),
                    f"{what}: all {len(group)} ({', '.join(group)}), {which}; {how}; "
                    "colour: percentile of dissimilarity (1 − Pearson r).",
                )
            )
    return "".join(parts)


def _in_order(rdms: dict, first: list) -> dict:
    """``rdms`` with the names of ``first`` (the config's order) leading, then the others."""
    names = [n for n in first if n in rdms] + sorted(n for n in rdms if n not in first)
    return {n: rdms[n] for n in names}


def _rdm_images_text(run, n_images: int) -> str:
    """Which images the RDM figure shows, and of how many (nothing is cut silently)."""
    meta = run.array("rdmimages__meta")
    if meta is None:
        return f"on {n_images} images"
    subject, total = int(meta[0]), int(meta[1])
    if n_images < total:
        return (
            f"on the first {n_images} of subject {subject}'s {total} images by NSD id (an RDM of "
            "every image is n² pixels; the ids are in arrays/rdmimages__ids.npy and every RDM in "
            "arrays/rdm__*.npy)"
        )
    return f"on all {total} images of subject {subject}"


def _truth_section(run) -> str:
    return truth_section(run)


def methods(cfg) -> list[str]:
    a = cfg.analyses
    seed = cfg.compute.random_state
    p = []
    r = a.roi_rsa
    if r.enabled:
        mode = (
            f"disjoint random subsets of {r.subset_size} images (seed {seed}, shared by all "
            "models and ROIs), mean over subsets"
            if r.sampling == "paper"
            else "all images at once"
        )
        p.append(
            f"ROI RSA in {', '.join(r.rois)}: {r.metric}-distance RDMs compared by "
            f"{r.method} correlation on {mode}. Noise ceiling: each subject's RDM on the shared "
            "images against the mean of the other subjects'; scores divided by each subject's ceiling. "
            "Group: one-sample t-test against 0; error bars "
            + ("SD (ddof 0) / √n, as in the paper." if r.error == "paper" else "SEM.")
        )
    m = a.model_comparison
    if m.enabled:
        p.append(
            f"Model comparison in {', '.join(m.rois)}: "
            f"{'paired' if m.test == 'paired' else 'independent-samples (paper mode)'} t-tests "
            f"on normalised scores, BH-FDR q = {m.fdr_q} within each ROI and FDR family ("
            + (
                "; ".join(f"{k}: {', '.join(v)}" for k, v in m.families.items())
                if m.families
                else "one family of every model"
            )
            + ")."
        )
    return p


ANALYSIS = Analysis(
    name="roi_rsa",
    configs={"roi_rsa": RoiRsaConfig, "model_comparison": ModelComparisonConfig},
    plan=plan,
    check=check,
    export=export,
    methods=methods,
    sections=(
        ReportSection("roi", "ROI RSA", _roi_section, tables=("roi_group",)),
        ReportSection(
            "comparison", "Model comparison", _comparison_section, tables=("model_similarity",)
        ),
        ReportSection("rdms", "RDMs", _rdms_section),
        ReportSection("truth", "Ground truth (virtual NSD)", _truth_section),
    ),
    tables=(
        Table(
            "roi_rsa",
            "ROI RSA scores",
            "Per subject, ROI and model: r, the subject's noise ceiling and r / ceiling (the bars).",
            shown=False,
        ),
        Table("noise_ceiling", "Noise ceilings", "Per subject and ROI.", shown=False),
        Table(
            "roi_group",
            "Group statistics",
            "Per ROI and model: mean over subjects, SEM, one-sample t and p, and the rank.",
            max_rows=250,
        ),
        Table(
            "model_comparison",
            "Pairwise model comparisons",
            "Per ROI, FDR family and pair of models: mean difference, t, p and the FDR q "
            "(within the ROI and family).",
            shown=False,
        ),
        Table(
            "model_similarity",
            "Model–model RDM correlations",
            "Correlation between each pair of models' RDMs (the ROI RSA's comparison method) "
            "on each subject's images and subsets, mean over subjects; a network's instances "
            "are averaged, and its diagonal is the agreement between its instances (1 for a "
            "single one).",
            formats={"model": "text"},
            max_rows=100,
        ),
        Table(
            "model_similarity_subjects",
            "Model–model RDM correlations per subject",
            "Per subject and pair of models.",
            shown=False,
        ),
        Table(
            "zoo_ranking",
            "Model zoo ranking",
            "Noise-ceiling-normalised ROI RSA (mean over subjects), the form of the paper's "
            "Fig. 4 table.",
            max_rows=100,
        ),
        Table(
            "ground_truth",
            "Ground truth (virtual NSD)",
            "For each ROI: the representation planted by the virtual NSD, the best model "
            "measured and the oracle's, and whether the two agree.",
        ),
        Table(
            "ground_truth_scores",
            "Ground truth: measured and oracle scores",
            "Per ROI and model: the measured group score and the oracle's (the figure).",
            shown=False,
        ),
    ),
)
