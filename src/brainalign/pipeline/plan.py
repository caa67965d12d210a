"""From a :class:`~brainalign.config.StudyConfig` to the task graph (subjects × models × chunks).

The data kind (:mod:`brainalign.pipeline.data_kinds`) gives the data task and the subjects,
whose responses every analysis reads; then every enabled analysis of
the registry (:mod:`brainalign.pipeline.analyses`) adds its tasks through a
:class:`PlanBuilder`. Every task's key is known here, before anything runs, so ``--dry-run`` can
show what is cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from brainalign.config import StudyConfig, data_kind
from brainalign.pipeline.analysis import ModelRef
from brainalign.pipeline.core import Task, TaskId
from brainalign.pipeline.estimates import check_data_fits, check_radius
from brainalign.pipeline.inputs import (
    CAPTION_PARTS,
    caption_space_encoder,
    option_files,
    reads_categories,
)
from brainalign.utils.hashing import files_fingerprint, hash_json


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
    mesh: dict | None = None  # the surface the maps live on (what the data kind found)

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
        self._inputs: dict[tuple, str | None] = {}

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
        """The parameters that locate a subject's responses (see :func:`study_base`)."""
        return study_base(self.config)

    def subject(self, s: int) -> Task:
        return self.plan.subject_tasks[s]

    def inputs(self, group: str, subject: int | None = None, space: str | None = None) -> dict:
        """``{"inputs": fingerprint}`` of the data's files of ``group`` (see
        :attr:`~brainalign.pipeline.analysis.DataKind.inputs`), to merge into the parameters of
        a task that reads them: an edited file reruns that task and its dependents, and only
        them. Empty for a data kind without input groups."""
        kind = data_kind(self.config)
        if kind.inputs is None:
            return {}
        at = (group, subject, space)
        if at not in self._inputs:
            self._inputs[at] = kind.inputs(self.config, group, subject, space)
        return {"inputs": self._inputs[at]}

    def mesh_inputs(self) -> dict:
        """``{"inputs": fingerprint}`` of the surfaces the maps' mesh is read from (the data's
        own ``fsaverage/surf`` or ``fs_dir``); empty for nilearn's packaged fsaverage5."""
        fs_dir = self.mesh.get("fs_dir")
        if not fs_dir:
            return {}
        surf = Path(fs_dir) / "surf"
        return {"inputs": hash_json(files_fingerprint(surf, surf.glob("*")))}

    def responses(self, s: int, space: str | None = None, variant: str | None = None) -> Task:
        """The task of subject ``s``'s responses in ``space`` (default: the study's)."""
        base = {**self.base, "subject": s}
        if space is not None:
            base["space"] = space
        return Task(
            TaskId("responses", subject=s, variant=variant),
            {**base, **self.inputs("subject", s, base["space"])},
            {"data": self.plan.data},
        )

    def feature(self, name: str) -> Task:
        """The task of feature space ``name`` (every image any subject saw)."""
        if name not in self.plan.features:
            options = self.config.features.options.get(name, {})
            deps = {"data": self.plan.data}
            encoder = caption_space_encoder(name, options, self.config.features.encoder)
            if encoder is not None:
                deps.update(self.caption_parts(encoder, {"root": self.root}))
            group = "categories" if reads_categories(name) else "captions"
            self.plan.features[name] = Task(
                TaskId("features", model=name),
                {
                    "root": self.root,
                    "name": name,
                    "options": options,
                    **self.inputs(group),
                    **option_files(options),  # word vectors, a local encoder
                },
                deps,
            )
        return self.plan.features[name]

    def caption_parts(self, encoder: str, source: dict) -> dict[TaskId, Task]:
        """Tasks that embed a source's captions in parallel parts (see ``caption_embeddings``)."""
        variant = "pool" if "pool" in source else "stimuli"
        if "pool" in source:  # a COCO folder's caption file
            path = Path(source["pool"]) / "annotations" / f"captions_{source['split']}.json"
            read = {"inputs": hash_json(files_fingerprint(path.parent, [path]))}
        else:
            read = self.inputs("captions")
        return {
            (tid := TaskId("caption_embeddings", model=encoder, chunk=c, variant=variant)): Task(
                tid,
                {"source": source, "encoder": encoder, "part": [c, CAPTION_PARTS], **read},
                {"data": self.plan.data},
            )
            for c in range(CAPTION_PARTS)
        }

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


def study_base(cfg: StudyConfig) -> dict:
    """The parameters that locate a subject's responses: root, space and test set."""
    return {
        "root": str(cfg.data.root),
        "space": cfg.space,
        "test_set": getattr(cfg.data, "test_set", "all"),
    }


def _stage_cache(cfg: StudyConfig):
    """The run folder's task cache, read-only (None before the first run)."""
    from brainalign.pipeline.cache import StageCache

    folder = cfg.output.dir / "cache" / "stages"
    return StageCache(folder, create=False) if folder.is_dir() else None


def build_plan(cfg: StudyConfig) -> Plan:
    """Every task of the study with its parameters and dependencies (nothing is run)."""
    from brainalign.pipeline.analyses import ANALYSES

    enabled = [a for a in ANALYSES if a.is_enabled(cfg)]
    also = [s for a in enabled if a.spaces for s in a.spaces(cfg) if s != cfg.space]
    options = {k: v for a in enabled if a.data_options for k, v in a.data_options(cfg).items()}
    kind = data_kind(cfg)
    data, mesh = kind.plan(cfg, list(dict.fromkeys(also)), options)
    # the mesh is known only now (a real NSD root says its resolution): a radius that gives
    # empty or absurd discs on it is refused here, before anything runs
    check_radius(cfg, (mesh or {}).get("mesh"))
    subjects = list(cfg.subjects) if cfg.subjects != "all" else kind.subjects(cfg)
    # the data's size is known before its tasks: data that cannot fit the disk are refused
    # before planning (100,000 subjects took minutes to plan)
    check_data_fits(cfg, data, (mesh or {}).get("mesh"), subjects, _stage_cache(cfg))
    plan = Plan(cfg, subjects, data, mesh=mesh)
    builder = PlanBuilder(plan, mesh)
    for s in plan.subjects if kind.provides == "responses" else ():
        plan.subject_tasks[s] = builder.responses(s)
    # feature spaces of the stimuli every subject saw; RDM data sets plan their own per set
    for name in cfg.features.spaces if kind.provides == "responses" else ():
        builder.add_model(ModelRef(name, builder.feature(name)))
    for analysis in enabled:
        plan.analyses[analysis.name] = analysis.plan(builder)
    return plan


__all__ = ["ModelRef", "Plan", "PlanBuilder", "build_plan"]
