"""``[data] kind = "virtual"``: a virtual NSD written by make_virtual_nsd before the study runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from brainalign.pipeline.analysis import DataKind
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.utils.settings import Section, resolve_path


class VirtualDataConfig(Section):
    """A virtual NSD built by :func:`brainalign.datasets.make_virtual_nsd` before the study runs.

    ``root`` defaults to ``<output.dir>/virtual_nsd``; ``options`` are passed on verbatim.
    """

    kind: Literal["virtual"] = "virtual"
    root: Path | None = None
    n_subjects: Annotated[int, Field(gt=0)] = 8
    random_state: int = 0
    options: dict[str, Any] = Field(default_factory=dict)


@stage("virtual_nsd")
def virtual_nsd(params, inputs, ctx):
    """Write the virtual NSD (NSD's layout, planted ground truth)."""
    from brainalign.datasets import make_virtual_nsd

    root = Path(params["root"])
    make_virtual_nsd(
        root,
        n_subjects=params["n_subjects"],
        spaces=tuple(dict.fromkeys([params["space"], *params.get("also_spaces", [])])),
        random_state=params["random_state"],
        overwrite=True,
        verbose=ctx.get("verbose"),
        **params["options"],
    )
    truth = json.loads((root / "virtual_truth.json").read_text())
    return {"root": str(root), "truth_rois": truth.get("rois", {})}


def plan(cfg, also_spaces: list[str]) -> tuple[Task, dict]:
    params = {
        "root": str(cfg.data.root),
        "n_subjects": cfg.data.n_subjects,
        "space": cfg.space,
        "random_state": cfg.data.random_state,
        "options": cfg.data.options,
    }
    if also_spaces:
        params["also_spaces"] = also_spaces
    mesh = {"mesh": "fsaverage5", "surface": "pial", "fs_dir": None}
    return Task(TaskId("virtual_nsd"), params), mesh


def subjects(cfg) -> list[int]:
    return list(range(1, cfg.data.n_subjects + 1))


def resolve(data: VirtualDataConfig, base: Path, out_dir: Path) -> VirtualDataConfig:
    return data.model_copy(
        update={"root": resolve_path(data.root, base) or out_dir / "virtual_nsd"}
    )


def check(cfg) -> list[str]:
    if isinstance(cfg.subjects, list):
        bad = [s for s in cfg.subjects if s > cfg.data.n_subjects]
        if bad:
            return [
                f"subjects: {bad} exceed data.n_subjects = {cfg.data.n_subjects}; "
                "use subjects between 1 and data.n_subjects"
            ]
    return []


def methods(cfg: dict) -> list[str]:
    data = cfg.get("data", {})
    return [
        f"Data: a virtual NSD ({data.get('n_subjects')} subjects, random_state "
        f"{data.get('random_state')}, options {data.get('options') or 'default'}) read with the "
        "same loader as the real NSD: per-session z-scoring of every unit over all trials, "
        "images seen three times kept, repetitions averaged."
    ]


DATA_KIND = DataKind(
    name="virtual",
    config=VirtualDataConfig,
    plan=plan,
    subjects=subjects,
    resolve=resolve,
    check=check,
    methods=methods,
)
