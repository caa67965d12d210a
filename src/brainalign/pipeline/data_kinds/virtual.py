"""``[data] kind = "virtual"``: a virtual NSD written by make_virtual_nsd before the study runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from brainalign.datasets import _nsdpaths as P
from brainalign.datasets import make_virtual_nsd
from brainalign.datasets.virtual import LEGACY_LAYOUT
from brainalign.pipeline.analysis import DataKind, FolderWrite
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.pipeline.data_kinds import nsd
from brainalign.utils.owned import ownership_problem
from brainalign.utils.settings import Section, resolve_path


class VirtualDataConfig(Section):
    """A virtual NSD built by :func:`brainalign.datasets.make_virtual_nsd` before the study runs.

    ``root`` defaults to ``<output.dir>/virtual_nsd``; ``options`` are passed on verbatim (a
    relative ``fs_dir`` is taken against the config's folder). With ``options.mesh =
    "fsaverage"`` and ``options.fs_dir`` (a FreeSurfer fsaverage folder, or a folder holding an
    fsaverage-topology sphere such as neuropythy's), the maps live on full fsaverage, read from
    the dataset's own ``nsddata/freesurfer/fsaverage``.
    """

    # the data set's kind: a virtual NSD written before the study runs
    kind: Literal["virtual"] = "virtual"
    # where the virtual NSD is written (default: <output.dir>/virtual_nsd)
    root: Path | None = None
    # virtual subjects (NSD has 8)
    n_subjects: Annotated[int, Field(gt=0)] = 8
    # the seed of the virtual world (its scenes, planted representations and noise)
    random_state: int = 0
    # make_virtual_nsd's keyword arguments (n_shared, n_unique, n_sessions, mesh, fs_dir, …)
    options: dict[str, Any] = Field(default_factory=dict)
    #: which subjects define the shared test set: "all" of the experiment's (the paper's 515)
    #: or only those "present"
    test_set: Literal["all", "present"] = "all"


@stage("virtual_nsd")
def virtual_nsd(params, inputs, ctx):
    """Write the virtual NSD (NSD's layout, planted ground truth)."""
    root = Path(params["root"])
    make_virtual_nsd(
        root,
        n_subjects=params["n_subjects"],
        spaces=tuple(dict.fromkeys([params["space"], *params.get("also_spaces", [])])),
        random_state=params["random_state"],
        overwrite=True,  # only a virtual NSD brainalign wrote, holding nothing else
        reuse=True,  # the same virtual NSD (same arguments and code) is kept, not rebuilt
        verbose=ctx.get("verbose"),
        **params["options"],
    )
    truth = json.loads((root / "virtual_truth.json").read_text())
    return {"root": str(root), "truth_rois": truth.get("rois", {})}


def plan(cfg, also_spaces: list[str], options: dict) -> tuple[Task, dict]:
    params = {
        "root": str(cfg.data.root),
        "n_subjects": cfg.data.n_subjects,
        "space": cfg.space,
        "random_state": cfg.data.random_state,
        "options": {**options, **cfg.data.options},
    }
    if also_spaces:
        params["also_spaces"] = also_spaces
    mesh = {"mesh": "fsaverage5", "surface": "pial", "fs_dir": None}
    if params["options"].get("mesh", "fsaverage5") != "fsaverage5":
        # the written dataset's own fsaverage folder: its pial surface, or the sphere that
        # stood in for it (options.fs_dir holding only a sphere)
        fs_dir = P.fsaverage_dir(Path(cfg.data.root))
        mesh = {"mesh": params["options"]["mesh"], "surface": "pial", "fs_dir": str(fs_dir)}
    return Task(TaskId("virtual_nsd"), params), mesh


def present(cfg) -> bool:
    """Whether the virtual NSD is there (its ground truth is written last)."""
    return (Path(cfg.data.root) / "virtual_truth.json").is_file()


def subjects(cfg) -> list[int]:
    return list(range(1, cfg.data.n_subjects + 1))


def resolve(data: VirtualDataConfig, base: Path, out_dir: Path) -> VirtualDataConfig:
    options = data.options
    if options.get("fs_dir") is not None:  # a relative fs_dir is taken against the config's folder
        options = {**options, "fs_dir": str(resolve_path(options["fs_dir"], base))}
    return data.model_copy(
        update={
            "root": resolve_path(data.root, base) or out_dir / "virtual_nsd",
            "options": options,
        }
    )


def writes(cfg) -> list[FolderWrite]:
    """The virtual NSD's folder, replaced as a whole when its task runs."""
    return [
        FolderWrite(
            "data.root", Path(cfg.data.root), "virtual_nsd", "a virtual NSD", True, LEGACY_LAYOUT
        )
    ]


def check(cfg) -> list[str]:
    problems = []
    if isinstance(cfg.subjects, list):
        bad = [s for s in cfg.subjects if s > cfg.data.n_subjects]
        if bad:
            problems.append(
                f"subjects: {bad} exceed data.n_subjects = {cfg.data.n_subjects}; "
                "use subjects between 1 and data.n_subjects"
            )
    for w in writes(cfg):
        # a folder that is not brainalign's is refused here; one of brainalign's holding other
        # files too is refused when (and only if) the task would replace it
        problem = ownership_problem(w.path, w.kind, w.key, legacy=w.legacy, what=w.what)
        if problem is not None:
            problems.append(problem)
    return problems


def methods(cfg) -> list[str]:
    data = cfg.data
    return [
        f"Data: a virtual NSD ({data.n_subjects} subjects, random_state "
        f"{data.random_state}, options {data.options or 'default'}) read with the "
        "same loader as the real NSD: per-session z-scoring of every unit over all trials, "
        "images seen three times kept, repetitions averaged."
    ]


def summary(run) -> list:
    """NSD's summary lines, then the ground-truth check of each ROI (rows green where the
    measurement agrees with the planted truth; roi_rsa's section draws it)."""
    blocks = nsd.summary(run)
    good = {"yes", "true", "1"}
    truth = run.show(
        "ground_truth",
        row_class=lambda r: "good" if str(r.get("agreement", "")).lower() in good else "bad",
    )
    return blocks + ([truth] if truth is not None else [])


DATA_KIND = DataKind(
    name="virtual",
    config=VirtualDataConfig,
    plan=plan,
    subjects=subjects,
    resolve=resolve,
    check=check,
    methods=methods,
    writes=writes,
    # the written files, once they exist, are keyed like a real NSD's: an edit inside the
    # virtual NSD reruns the tasks that read the edited file (the study plans again after
    # writing it, see run_study)
    inputs=nsd.inputs,
    present=present,
    summary=summary,
    tables=(nsd.NON_FINITE_BETAS,),
)
