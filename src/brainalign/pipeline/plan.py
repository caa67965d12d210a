"""From a :class:`~brainalign.config.StudyConfig` to the task graph (subjects × models × chunks).

The data kind gives the data task and each subject's responses; then every enabled analysis of
the registry (:mod:`brainalign.pipeline.analyses`) adds its tasks through a
:class:`PlanBuilder`. Every task's key is known here, before anything runs, so ``--dry-run`` can
show what is cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from brainalign.config import NSDDataConfig, StudyConfig
from brainalign.errors import ConfigError
from brainalign.pipeline.analysis import ModelRef
from brainalign.pipeline.core import Task, TaskId
from brainalign.pipeline.inputs import nsd_fingerprint
from brainalign.utils.hashing import hash_json


@dataclass
class Plan:
    """The study's tasks: the data, each subject's responses, and each analysis's targets."""

    config: StudyConfig
    subjects: list[int]
    data: Task
    subject_tasks: dict[int, Task] = field(default_factory=dict)
    features: dict[str, Task] = field(default_factory=dict)  # feature space -> task
    models: list[ModelRef] = field(default_factory=list)  # what the RSA analyses score
    analyses: dict[str, dict[str, Task]] = field(default_factory=dict)  # analysis -> targets

    @property
    def targets(self) -> list[Task]:
        out = [t for targets in self.analyses.values() for t in targets.values()]
        return out + list(self.features.values())

    @property
    def vision_models(self) -> set[str]:
        return {m.name for m in self.models if m.vision}


class PlanBuilder:
    """What an analysis's ``plan`` uses: the config, the subjects and the shared upstream tasks.

    Shared tasks (a feature space, a subject's image subsets) are created once, on first use.
    """

    def __init__(self, plan: Plan, mesh: dict):
        self.plan = plan
        self.mesh = mesh
        self._samplings: dict[int, Task] = {}

    @property
    def config(self) -> StudyConfig:
        return self.plan.config

    @property
    def subjects(self) -> list[int]:
        return self.plan.subjects

    @property
    def root(self) -> str:
        return str(self.config.data.root)

    @property
    def base(self) -> dict:
        """The parameters that locate a subject's responses (root and space)."""
        return {"root": self.root, "space": self.config.space}

    def subject(self, s: int) -> Task:
        return self.plan.subject_tasks[s]

    def feature(self, name: str) -> Task:
        """The task of feature space ``name`` (every image any subject saw)."""
        if name not in self.plan.features:
            self.plan.features[name] = Task(
                TaskId("features", model=name),
                {
                    "root": self.root,
                    "name": name,
                    "options": self.config.features.options.get(name, {}),
                },
                {"data": self.plan.data},
            )
        return self.plan.features[name]

    def add_model(self, ref: ModelRef) -> None:
        """Make ``ref`` one of the models the RSA analyses score."""
        self.plan.models.append(ref)

    def sampling(self, s: int) -> Task:
        """Subject ``s``'s paper subsets (disjoint random image subsets shared by all models)."""
        if s not in self._samplings:
            rsa = self.config.analyses.roi_rsa
            self._samplings[s] = Task(
                TaskId("sampling", subject=s),
                {
                    "subset_size": rsa.subset_size,
                    "max_subsets": rsa.max_subsets,
                    "random_state": self.config.compute.random_state * 1000 + s,
                },
                {"subject": self.subject(s)},
            )
        return self._samplings[s]


def _subjects(cfg: StudyConfig) -> list[int]:
    if cfg.subjects != "all":
        return list(cfg.subjects)
    if isinstance(cfg.data, NSDDataConfig):
        from brainalign.datasets import list_subjects

        subs = list_subjects(cfg.data.root)
        if not subs:
            raise ConfigError(
                f"data.root: no subjects found under {cfg.data.root} (nsddata/ppdata/subjNN)"
            )
        return subs
    return list(range(1, cfg.data.n_subjects + 1))


def _data_task(cfg: StudyConfig, also_spaces: list[str]) -> tuple[Task, dict]:
    """The data kind's task and the surface mesh its maps live on."""
    root = str(cfg.data.root)
    if isinstance(cfg.data, NSDDataConfig):
        data = Task(
            TaskId("nsd_root"), {"root": root, "fingerprint": hash_json(nsd_fingerprint(root))}
        )
        mesh = {
            "mesh": "fsaverage",
            "surface": "white",
            "fs_dir": str(Path(root) / "nsddata" / "freesurfer" / "fsaverage"),
        }
        return data, mesh
    params = {
        "root": root,
        "n_subjects": cfg.data.n_subjects,
        "space": cfg.space,
        "random_state": cfg.data.random_state,
        "options": cfg.data.options,
    }
    if also_spaces:
        params["also_spaces"] = also_spaces
    return Task(TaskId("virtual_nsd"), params), {
        "mesh": "fsaverage5",
        "surface": "pial",
        "fs_dir": None,
    }


def build_plan(cfg: StudyConfig) -> Plan:
    """Every task of the study with its parameters and dependencies (nothing is run)."""
    from brainalign.pipeline.analyses import ANALYSES

    enabled = [a for a in ANALYSES if a.is_enabled(cfg)]
    also = [s for a in enabled if a.spaces for s in a.spaces(cfg) if s != cfg.space]
    data, mesh = _data_task(cfg, list(dict.fromkeys(also)))
    plan = Plan(cfg, _subjects(cfg), data)
    base = {"root": str(cfg.data.root), "space": cfg.space}
    for s in plan.subjects:
        plan.subject_tasks[s] = Task(
            TaskId("responses", subject=s), {**base, "subject": s}, {"data": data}
        )
    builder = PlanBuilder(plan, mesh)
    for name in cfg.features.spaces:
        builder.add_model(ModelRef(name, builder.feature(name)))
    for analysis in enabled:
        plan.analyses[analysis.name] = analysis.plan(builder)
    return plan


__all__ = ["ModelRef", "Plan", "PlanBuilder", "build_plan"]
