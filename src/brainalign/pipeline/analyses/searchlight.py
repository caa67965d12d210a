"""Searchlight RSA (paper §3.3, Fig. 3): surface discs on fsaverage, or the paper's volume
spheres on func1pt8mm projected to fsaverage; group t-maps with FDR."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from brainalign.datasets import _nsdpaths as P
from brainalign.datasets import load_fsaverage
from brainalign.datasets.surfaces import FSAVERAGE_SIZES, HEMIS
from brainalign.errors import DataFormatError
from brainalign.pipeline.analysis import Analysis, ModelRef, ReportSection
from brainalign.pipeline.core import Task, TaskId, stage, upstream
from brainalign.pipeline.inputs import feature_rows, load_subject
from brainalign.report.html import maps_html
from brainalign.rsa import (
    SURFACE_RADIUS_MM,
    VOLUME_RADIUS_VOXELS,
    Neighbourhoods,
    centres_to_volume,
    project_to_fsaverage,
    surface_neighbourhoods,
)
from brainalign.rsa import searchlight as _searchlight
from brainalign.rsa import volume_neighbourhoods as _spheres
from brainalign.stats import group_map
from brainalign.utils.settings import Section

#: default searchlight radius per space: geodesic mm on fsaverage, voxels on func1pt8mm (the
#: paper's 6 voxels ≈ 10.8 mm); the values are the neighbourhood functions' defaults
SEARCHLIGHT_RADIUS = {"fsaverage": SURFACE_RADIUS_MM, "func1pt8mm": VOLUME_RADIUS_VOXELS}
#: largest volume radius accepted (voxels); beyond it the value was most likely given in mm
MAX_VOLUME_RADIUS = 20.0
#: brain-mask voxels assumed when a func1pt8mm mask cannot be read at plan time (chunking only)
VOLUME_UNITS_NSD = 250_000
VOLUME_UNITS_VIRTUAL = 24_000


class SearchlightConfig(Section):
    """``[analyses.searchlight]``: searchlight RSA maps (paper Fig. 3).

    ``space = "fsaverage"`` runs geodesic discs of ``radius`` mm on the fsaverage surface;
    ``space = "func1pt8mm"`` runs the paper's spheres of ``radius`` voxels in each subject's
    func1pt8mm volume and projects the maps to fsaverage (NSD's transforms).
    """

    # compute the searchlight RSA map of every feature space and model (NSD or virtual data)
    enabled: bool = True
    # where the searchlight runs: surface discs on fsaverage or the paper's volume spheres
    space: Literal["fsaverage", "func1pt8mm"] = "fsaverage"
    # mm on the surface, voxels in the volume; the default depends on the space
    # (_default_radius): SEARCHLIGHT_RADIUS
    radius: Annotated[float, Field(gt=0)] = SEARCHLIGHT_RADIUS["fsaverage"]
    # a centre is kept when at least this fraction of its neighbourhood has data
    min_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    # the feature spaces (or networks) mapped
    models: list[str] = Field(default_factory=lambda: ["mpnet"])
    # how a model RDM is compared with each neighbourhood's RDM
    method: Literal["pearson", "spearman"] = "pearson"
    # full: one RDM over every image (the RDM-free path); paper: the ROI RSA's image subsets
    sampling: Literal["paper", "full"] = "full"
    # Benjamini-Hochberg level of the group t-maps
    fdr_q: Annotated[float, Field(gt=0, lt=1)] = 0.05
    # centres per task (smaller: less memory per task, more tasks)
    chunk_size: Annotated[int, Field(gt=0)] = 4096

    @model_validator(mode="before")
    @classmethod
    def _default_radius(cls, data: Any) -> Any:
        # the radius's unit depends on the space, so its default does too
        if isinstance(data, dict) and data.get("radius") is None:
            space = data.get("space", "fsaverage")
            if space in SEARCHLIGHT_RADIUS:
                data = {**data, "radius": SEARCHLIGHT_RADIUS[space]}
        return data


# ------------------------------------------------------------------------------------- stages
@stage("neighbourhoods")
def neighbourhoods(params, inputs, ctx):
    """Geodesic surface discs of the given radius on fsaverage(5), both hemispheres."""
    mesh = load_fsaverage(params["mesh"], surface=params["surface"], fs_dir=params.get("fs_dir"))
    nb = surface_neighbourhoods(
        [mesh["left"], mesh["right"]], radius=params["radius"], verbose=False
    )
    return nb.to_arrays()


def _searchlight_maps(sub, nb, params, inputs, ctx) -> dict:
    """One model's searchlight r over ``nb``'s centres, full-n or on the paper's subsets."""
    X = feature_rows(inputs["model"], sub.image_ids)
    paper = params["sampling"] == "paper"
    maps = _searchlight(
        sub.betas,
        {params["model"]: X},
        nb,
        method=params["method"],
        mode="subsets" if paper else "full",
        subsets=np.asarray(inputs["sampling"]["subsets"]) if paper else None,
        backend=ctx.get("backend", "numpy"),
        device=ctx.get("device"),
        # the scheduler already runs one task per core
        n_jobs=1,
        verbose=False,
    )
    return {"r": np.asarray(maps[0], dtype=np.float32)}


@stage("searchlight")
def searchlight(params, inputs, ctx):
    """Searchlight RSA of one subject and model over one chunk of centres."""
    sub = load_subject(params, ctx)
    start, stop = params["centres"]
    nb = Neighbourhoods.from_arrays(inputs["neighbourhoods"], start, stop)
    return _searchlight_maps(sub, nb, params, inputs, ctx)


@stage("searchlight_group")
def searchlight_group(params, inputs, ctx):
    """Group map of one model: mean r (or the subjects' maps' ``value``), two-tailed one-sample t
    across subjects, BH-FDR."""
    per_subject: dict[int, list] = {}
    for tid, res in upstream(inputs, params["map_stage"]):
        per_subject.setdefault(tid.subject, []).append(np.asarray(res[params.get("value", "r")]))
    R = np.stack([np.concatenate(chunks) for chunks in per_subject.values()])
    return {"r": R.astype(np.float32), **group_map(R, fdr_q=params["fdr_q"])}


@stage("volume_neighbourhoods")
def volume_neighbourhoods(params, inputs, ctx):
    """Spheres of ``radius`` voxels on one subject's func1pt8mm brain mask (paper §3.3)."""
    sub = load_subject(params, ctx)
    if sub.mask is None:
        raise DataFormatError(
            f"subject {params['subject']}: the func1pt8mm responses carry no brain mask; "
            "expected nsddata/ppdata/subjXX/func1pt8mm/brainmask.nii.gz"
        )
    nb = _spheres(sub.mask, radius=params["radius"], min_fraction=params["min_fraction"])
    return {**nb.to_arrays(), "mask": np.asarray(sub.mask, dtype=bool)}


def _part(n: int, part) -> tuple[int, int]:
    """Bounds of share ``c`` of ``n_parts`` equal shares of ``n`` items."""
    c, n_parts = part
    bounds = np.linspace(0, n, n_parts + 1).round().astype(np.int64)
    return int(bounds[c]), int(bounds[c + 1])


@stage("volume_searchlight")
def volume_searchlight(params, inputs, ctx):
    """Volume searchlight RSA of one subject and model over one share of the sphere centres."""
    sub = load_subject(params, ctx)
    nbr = inputs["neighbourhoods"]
    start, stop = _part(len(nbr["indptr"]) - 1, params["part"])
    if stop == start:
        return {"r": np.zeros(0, dtype=np.float32)}
    nb = Neighbourhoods.from_arrays(nbr, start, stop)
    if params["sampling"] == "paper":
        # the subsets index the study space's image order; the volume must list the same images
        ids = np.asarray(inputs["sampling_subject"]["image_ids"])
        if not np.array_equal(ids, np.asarray(sub.image_ids)):
            raise DataFormatError(
                f"subject {params['subject']}: the func1pt8mm betas cover other images "
                f"({len(sub.image_ids)}) than the study's space ({len(ids)}); the paper's subsets "
                "need the same images in both; rebuild the prepared betas or use sampling = 'full'"
            )
    return _searchlight_maps(sub, nb, params, inputs, ctx)


@stage("volume_projection")
def volume_projection(params, inputs, ctx):
    """One subject's volume searchlight map, assembled and projected to fsaverage (paper §3.3)."""
    nbr = inputs["neighbourhoods"]
    r = np.concatenate([np.asarray(res["r"]) for _, res in upstream(inputs, "volume_searchlight")])
    volume = centres_to_volume(r, np.asarray(nbr["mask"], bool), np.asarray(nbr["centres"]))
    projected = project_to_fsaverage(volume, params["subject"], params["root"])
    import nibabel as nib

    root, s = Path(params["root"]), params["subject"]
    hemi_sizes = [
        int(np.prod(nib.load(str(P.transform(root, s, h, "white-to-fsaverage"))).shape))
        for h in HEMIS
    ]
    return {
        "r": np.asarray(projected, dtype=np.float32),
        "hemi_sizes": hemi_sizes,
        "n_centres": int(len(nbr["centres"])),
        "volume": volume.astype(np.float32),
    }


# --------------------------------------------------------------------------------------- plan
def spaces(cfg) -> list[str]:
    """The volume searchlight needs func1pt8mm betas besides the study's space."""
    sl = cfg.analyses.searchlight
    return ["func1pt8mm"] if sl.space == "func1pt8mm" else []


def map_stage(cfg) -> str:
    """The stage whose tasks hold each subject's map (in chunks on the surface)."""
    return "volume_projection" if cfg.analyses.searchlight.space == "func1pt8mm" else "searchlight"


def map_tasks(b, model: ModelRef) -> dict[TaskId, Task]:
    """The tasks holding each subject's searchlight map of ``model``, keyed by their ids.

    On the surface: one task per subject and chunk of centres; in the volume: one projection
    per subject. Ids carry the subject, the model, the chunk and the model's instance.
    """
    if b.config.analyses.searchlight.space == "func1pt8mm":
        return _volume_maps(b, model)
    return _surface_maps(b, model)


def plan(b) -> dict[str, Task]:
    sl = b.config.analyses.searchlight
    return {
        m: Task(
            TaskId("searchlight_group", model=m),
            {"map_stage": map_stage(b.config), "fdr_q": sl.fdr_q},
            map_tasks(b, ModelRef(m, b.feature(m))),
        )
        for m in sl.models
    }


def neighbourhoods_task(b, radius: float) -> Task:
    """The geodesic discs of ``radius`` mm on the study's mesh (one task, shared by every
    analysis that maps on it)."""
    mesh = b.mesh
    return Task(
        TaskId("neighbourhoods", space=mesh["mesh"], radius=radius),
        {**mesh, "radius": radius, **b.mesh_inputs()},
    )


def surface_chunks(b) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk of the mesh's centres (``analyses.searchlight.chunk_size``)."""
    size = b.config.analyses.searchlight.chunk_size
    n_centres = _n_centres(b.mesh["mesh"])
    return [(c, min(c + size, n_centres)) for c in range(0, n_centres, size)]


def _surface_maps(b, model: ModelRef) -> dict[TaskId, Task]:
    sl = b.config.analyses.searchlight
    nb = neighbourhoods_task(b, sl.radius)
    tasks = {}
    for s in b.subjects:
        for c, (start, stop) in enumerate(surface_chunks(b)):
            deps = {"model": model.task, "neighbourhoods": nb, "subject": b.subject(s)}
            if sl.sampling == "paper":
                deps["sampling"] = b.sampling(s)
            tid = TaskId(
                "searchlight", subject=s, model=model.name, chunk=c, instance=model.instance
            )
            tasks[tid] = Task(
                tid,
                {
                    **b.base,
                    "subject": s,
                    "model": model.name,
                    "centres": [start, stop],
                    "method": sl.method,
                    "sampling": sl.sampling,
                },
                deps,
            )
    return tasks


def _n_centres(mesh: str) -> int:
    """Searchlight centres (both hemispheres) of an fsaverage resolution (any the data give)."""
    return 2 * FSAVERAGE_SIZES[mesh]


def _volume_units(cfg, subject: int) -> int:
    """Brain-mask voxels of a subject's func1pt8mm volume, to size the searchlight's chunks.

    Read from NSD's ``brainmask.nii.gz`` when it exists at plan time; a virtual NSD is written
    later, so its size is estimated (its 4-mm volume holds ~21k voxels). Only the number of
    chunks depends on it: a chunk is a fixed share of the centres, whatever their count.
    """
    if cfg.data.kind == "nsd":
        path = P.brainmask(Path(cfg.data.root), subject)
        if path.is_file():
            import nibabel as nib

            return int(np.count_nonzero(np.asarray(nib.load(str(path)).dataobj)))
        return VOLUME_UNITS_NSD
    return VOLUME_UNITS_VIRTUAL


def _volume_maps(b, model: ModelRef) -> dict[TaskId, Task]:
    """The paper's searchlight: volume spheres per subject → RSA in parts → fsaverage.

    Per subject: ``volume_neighbourhoods`` (spheres of ``radius`` voxels on the subject's mask),
    ``volume_searchlight`` tasks over equal shares of the centres, and one ``volume_projection``
    that assembles them into a volume and projects it with NSD's transforms.
    """
    cfg = b.config
    sl = cfg.analyses.searchlight
    vbase = {**b.base, "space": "func1pt8mm"}
    tasks = {}
    for s in b.subjects:
        if cfg.space == "func1pt8mm":
            subject = b.subject(s)
        else:
            subject = b.responses(s, "func1pt8mm")
        nb = Task(
            TaskId("volume_neighbourhoods", subject=s, space="func1pt8mm", radius=sl.radius),
            {**vbase, "subject": s, "radius": sl.radius, "min_fraction": sl.min_fraction},
            {"subject": subject},
        )
        n_parts = max(1, math.ceil(_volume_units(cfg, s) / sl.chunk_size))
        parts = {}
        for c in range(n_parts):
            deps = {"model": model.task, "neighbourhoods": nb, "subject": subject}
            if sl.sampling == "paper":
                # the study's subsets, drawn on the study space's image order (checked equal)
                deps["sampling"] = b.sampling(s)
                deps["sampling_subject"] = b.subject(s)
            tid = TaskId(
                "volume_searchlight", subject=s, model=model.name, chunk=c, instance=model.instance
            )
            parts[tid] = Task(
                tid,
                {
                    **vbase,
                    "subject": s,
                    "model": model.name,
                    "part": [c, n_parts],
                    "method": sl.method,
                    "sampling": sl.sampling,
                },
                deps,
            )
        tid = TaskId("volume_projection", subject=s, model=model.name, instance=model.instance)
        tasks[tid] = Task(
            tid,
            {"root": b.root, "subject": s, **b.inputs("transforms", s)},
            {**parts, "neighbourhoods": nb},
        )
    return tasks


def check(cfg) -> list[str]:
    sl = cfg.analyses.searchlight
    problems = []
    if not sl.enabled:
        return problems
    if sl.space == "func1pt8mm" and not (1.0 < sl.radius <= MAX_VOLUME_RADIUS):
        problems.append(
            f"analyses.searchlight.radius: with space = 'func1pt8mm' the radius is in voxels and "
            f"must be > 1 (a sphere of radius <= 1 holds only its centre) and <= "
            f"{MAX_VOLUME_RADIUS:g} (was it given in mm?), got {sl.radius!r}; the paper uses 6 "
            "voxels (~10.8 mm)"
        )
    if cfg.space != "fsaverage" and sl.space == "fsaverage":
        problems.append(
            f"space: {cfg.space!r} — analyses.searchlight.space = 'fsaverage' needs the fsaverage "
            "betas; set analyses.searchlight.space = 'func1pt8mm' (the paper's volume searchlight, "
            "projected to fsaverage) or space = 'fsaverage'"
        )
    return problems


def feature_spaces(cfg) -> list[tuple[str, str]]:
    return [("analyses.searchlight.models", m) for m in cfg.analyses.searchlight.models]


# ------------------------------------------------------------------------------------- export
def hemi_split(ctx, task: Task):
    """Left/right splitter of a group map: the projection's hemispheres for the volume path.

    The volume path's maps live on the fsaverage mesh of NSD's transforms (fsaverage5 for a
    virtual NSD), whatever the study's space, so their hemisphere sizes come from the projection.
    """
    projections = [d for d in task.deps.values() if d.stage == "volume_projection"]
    if not projections:
        return ctx.hemi_split
    n_lh = int(ctx.load(projections[0])["hemi_sizes"][0])
    return lambda v: (np.asarray(v)[:n_lh], np.asarray(v)[n_lh:])


def export(ctx, targets) -> None:
    q = ctx.config.analyses.searchlight.fdr_q
    for m, task in targets.items():
        split = hemi_split(ctx, task)
        if split is None:
            continue
        res = ctx.load(task)
        ctx.writer.map(
            f"searchlight_{m}_t",
            *split(res["t"]),
            title=f"Searchlight RSA: {m} (group t, FDR q < {q})",
            section="searchlight",
            stat="t",
            mask=split(res["significant"]),
            note=f"Mean r over subjects ranges {np.nanmin(res['mean']):.3f} to "
            f"{np.nanmax(res['mean']):.3f}.",
        )
        ctx.writer.map(
            f"searchlight_{m}_mean_r",
            *split(res["mean"]),
            title=f"Searchlight RSA: {m} (mean r)",
            section="searchlight",
            stat="r",
        )


def _section(run) -> str:
    return maps_html(run, "searchlight")


def methods(cfg) -> list[str]:
    s = cfg.analyses.searchlight
    if not s.enabled:
        return []
    where = (
        f"Volume searchlight (as in the paper): spheres of radius {s.radius} voxels in each "
        f"subject's func1pt8mm volume (kept when ≥ {s.min_fraction:.0%} of the sphere "
        "is in the brain mask), each subject's map projected to fsaverage with NSD's transforms "
        "(mean of three cortical depths, cubic interpolation)"
        if s.space == "func1pt8mm"
        else f"Surface searchlight: geodesic discs of radius {s.radius} mm on the cortical mesh"
    )
    return [
        f"{where}, models {', '.join(s.models)}, {s.method} correlation "
        f"({s.sampling} sampling); group two-tailed one-sample t-test across subjects, "
        f"Benjamini–Hochberg FDR q = {s.fdr_q}."
    ]


ANALYSIS = Analysis(
    name="searchlight",
    configs={"searchlight": SearchlightConfig},
    plan=plan,
    spaces=spaces,
    check=check,
    feature_spaces=feature_spaces,
    export=export,
    methods=methods,
    sections=(ReportSection("searchlight", "Searchlight", _section),),
)
