"""The pipeline's unit: an analysis declares its config, its tasks, its export and its report.

An :class:`Analysis` is registered once (``pipeline/analyses/__init__.py``); everything else
(config validation, planning, export, report) iterates over the registry, so a new analysis is
one new module plus the line that registers it. Its stage functions live in the same module and
only load inputs, call the science package's public function and return the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainalign.pipeline.core import Task, TaskId
from brainalign.pipeline.inputs import (
    CAPTION_PARTS,
    caption_space_encoder,
    option_files,
    reads_categories,
)
from brainalign.utils.hashing import files_fingerprint, hash_json
from brainalign.utils.settings import Section

# ``cfg`` below is the validated study config (:class:`brainalign.pipeline.config.StudyConfig`),
# annotated by its base class: that config's [data] and [analyses] are composed from the
# registries of data kinds and analyses, which are built from this module.


@dataclass(frozen=True)
class ModelRef:
    """A model the RSA analyses score: its name, the instance (a network's seed) and its task."""

    name: str
    task: Any
    instance: str | None = None
    vision: bool = False


@dataclass(frozen=True)
class Table:
    """A table an analysis (or a data kind) writes as ``tables/<name>.csv``, and how the report
    shows it: the report knows a table only from these declarations, so a new analysis's table
    is shown once, where its section says, and listed with its title among the run's files.

    Attributes
    ----------
    name : str
        The file's stem (``tables/<name>.csv``).
    title : str
        Its heading in the report and in the list of files.
    caption : str
        A sentence under the heading: what a row is, what the columns mean.
    formats : dict
        Column → format, where the type alone does not say it: ``"int"``, ``"sci"``
        (scientific), ``"pct"``, ``"text"`` or a format string (``"{:.4f}"``). Other columns
        format by type (:func:`brainalign.report.html.format_column`).
    max_rows : int
        Rows shown on the page; the CSV, linked under the table, has them all.
    shown : bool
        False for a table too long to read on a page (a list of ids): the report links it from
        the list of files instead of printing it.
    """

    name: str
    title: str
    caption: str = ""
    formats: dict[str, str] = field(default_factory=dict)
    max_rows: int = 60
    shown: bool = True


@dataclass(frozen=True)
class ReportSection:
    """One section of the HTML report.

    ``build(run)`` returns the section's content over a run folder
    (:class:`brainalign.report.html.RunFolder`): a list of blocks (``Figure``, ``Text``,
    ``Heading``, ``Links``, ``Html``, a table from ``run.show(name)``), or an HTML fragment made
    by the helpers of :mod:`brainalign.report.html`. Then the declared ``tables`` named here are
    shown, in order, each with its title and caption. A section with neither is left out.
    """

    key: str
    heading: str
    build: Callable[[Any], Any] | None = None
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunWarning:
    """A warning of the run, for the report and ``run.json``: what it concerns, what happened,
    and the config key that changes it (``None`` where no setting does, e.g. bad data).
    ``tasks`` are the labels of the tasks that raised it (none for an export's warning)."""

    concerns: str
    message: str
    key: str | None = None
    tasks: tuple[str, ...] = ()

    def as_json(self) -> dict:
        out = {"concerns": self.concerns, "message": self.message, "key": self.key}
        return {**out, "tasks": list(self.tasks)} if self.tasks else out


@dataclass(frozen=True)
class Analysis:
    """An analysis of the study.

    Attributes
    ----------
    name : str
        Its name (and the name of its main ``[analyses.<name>]`` section).
    configs : dict
        The config sections it owns: section name → pydantic model (``[analyses.<section>]``).
    plan : callable
        ``plan(builder) -> dict[str, Task]``: adds its tasks and returns its targets by name.
        Called only when the analysis is enabled, in registry order.
    needs : str
        What the data must provide (:attr:`DataKind.provides`): ``"responses"`` (each
        subject's responses per image, e.g. NSD) or ``"rdms"`` (brain RDMs per ROI). An
        analysis whose needs the data kind does not meet is left out of the plan.
    enabled : callable, optional
        ``enabled(cfg) -> bool`` (default: its main section's ``enabled``).
    spaces : callable, optional
        ``spaces(cfg) -> list[str]``: data spaces it needs besides the study's own.
    data_options : callable, optional
        ``data_options(cfg) -> dict``: defaults it needs from data the study builds (e.g. a
        virtual NSD's training pool); the config's own ``data.options`` win.
    feature_spaces : callable, optional
        ``feature_spaces(cfg) -> list[(key, name)]``: the feature spaces it uses, by config key,
        checked against the registry and ``features.spaces`` before any work.
    check : callable, optional
        ``check(cfg) -> list[str]``: problems found before any work (each ``key: message``).
    export : callable, optional
        ``export(ctx, targets)``: writes its tables, maps and arrays into the run folder.
    methods : callable, optional
        ``methods(cfg: StudyConfig) -> list[str]``: its paragraphs of the report's methods text,
        from the validated config (the run's, for a report), so defaults are never restated.
    sections : tuple of ReportSection
        Its sections of the HTML report, in order.
    tables : tuple of Table
        The tables its export writes, with their titles and formats (see :class:`Table`).
    warning_keys : dict
        Start of a warning its tasks raise → the config key that changes it (``"alphas:"`` →
        ``"analyses.encoding.alphas"``; None where no setting does); other warnings of its
        tasks name its section.
    """

    name: str
    configs: dict[str, type]
    plan: Callable[[PlanBuilder], dict]
    needs: str = "responses"
    enabled: Callable[[Section], bool] | None = None
    spaces: Callable[[Section], list[str]] | None = None
    data_options: Callable[[Section], dict] | None = None
    feature_spaces: Callable[[Section], list[tuple[str, str]]] | None = None
    check: Callable[[Section], list[str]] | None = None
    export: Callable[[ExportContext, dict], None] | None = None
    methods: Callable[[dict], list[str]] | None = None
    sections: tuple[ReportSection, ...] = ()
    tables: tuple[Table, ...] = ()
    warning_keys: dict[str, str | None] = field(default_factory=dict)

    def is_enabled(self, cfg: Section, provides: str) -> bool:
        """Whether it runs in study ``cfg`` on data that provide ``provides``
        (:attr:`DataKind.provides`)."""
        if provides != self.needs:
            return False
        if self.enabled is not None:
            return self.enabled(cfg)
        return bool(getattr(cfg.analyses, self.name).enabled)


@dataclass(frozen=True)
class DataKind:
    """A kind of data a study runs on (``[data] kind = name``).

    Attributes
    ----------
    name : str
        The value of ``data.kind``.
    config : type
        Its ``[data]`` model (a Section with ``kind: Literal[name]``).
    plan : callable
        ``plan(cfg, also_spaces, options) -> (data task, mesh)``: the task that makes or checks
        the data (``also_spaces``: spaces the analyses need besides the study's; ``options``:
        the analyses' ``data_options``), and the surface mesh the maps live on (``mesh``,
        ``surface``, ``fs_dir``).
    subjects : callable
        ``subjects(cfg) -> list[int]``: the subjects of ``subjects = "all"``.
    resolve : callable
        ``resolve(data_config, base_dir, output_dir) -> data_config``: paths made absolute.
    provides : str
        What its data holds for the analyses (see :attr:`Analysis.needs`): ``"responses"``
        (a ``responses`` task per subject is planned) or ``"rdms"``.
    check : callable, optional
        ``check(cfg) -> list[str]``: problems found before any work.
    methods : callable, optional
        ``methods(cfg: StudyConfig) -> list[str]``: the data paragraph of the methods text.
    writes : callable, optional
        ``writes(cfg) -> list[FolderWrite]``: the folders its data task creates or replaces
        (checked before any work and listed by ``--dry-run``).
    inputs : callable, optional
        ``inputs(cfg, group, subject=None, space=None) -> str``: the fingerprint of the files
        of one input group (``"captions"``, ``"subject"``, …), part of the keys of the tasks
        that read them, so an edited file reruns those tasks and only those.
    present : callable, optional
        ``present(cfg) -> bool``: whether the files its data task writes are there; when they
        are not (a deleted virtual NSD), the cached data task is discarded and runs again.
    summary : callable, optional
        ``summary(run) -> list of blocks``: the data's lines of the report's summary, over the
        run folder (:class:`brainalign.report.html.RunFolder`; its ``config`` is the run's
        validated config, None when it could not be read).
    tables : tuple of Table
        The tables written about its data (e.g. non-finite betas).
    """

    name: str
    config: type
    plan: Callable
    subjects: Callable
    resolve: Callable
    provides: str = "responses"
    check: Callable | None = None
    methods: Callable | None = None
    writes: Callable | None = None
    inputs: Callable | None = None
    present: Callable | None = None
    summary: Callable | None = None
    tables: tuple[Table, ...] = ()


@dataclass(frozen=True)
class FolderWrite:
    """A folder a task writes: the config key that chose it, what it holds, and whether the
    task replaces it as a whole (see :mod:`brainalign.utils.owned`)."""

    key: str
    path: Path
    kind: str
    what: str
    replace: bool = False
    legacy: tuple | None = None


@dataclass
class Plan:
    """The study's tasks: the data, each subject's responses, and each analysis's targets."""

    config: Section
    kind: DataKind  # the data kind of ``config.data.kind``
    subjects: list[int]
    data: Task
    subject_tasks: dict[int, Task] = field(default_factory=dict)
    features: dict[str, Task] = field(default_factory=dict)  # feature space -> task
    models: list[ModelRef] = field(default_factory=list)  # what the RSA analyses score
    analyses: dict[str, dict[str, Task]] = field(default_factory=dict)  # analysis -> targets
    mesh: dict | None = None  # the surface the maps live on (what the data kind found)
    # what the plan left out and why (a vision model of a data set without images): shown
    # with the plan and kept among the run's warnings
    notes: list[RunWarning] = field(default_factory=list)

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
    def config(self) -> Section:
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
        kind = self.plan.kind
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

    def responses(self, s: int, space: str | None = None) -> Task:
        """The task of subject ``s``'s responses in ``space`` (default: the study's; another
        space is part of the task's id)."""
        base = {**self.base, "subject": s}
        if space is not None:
            base["space"] = space
        return Task(
            TaskId("responses", subject=s, space=space),
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
        images = "pool" if "pool" in source else "stimuli"
        if "pool" in source:  # a COCO folder's caption file
            path = Path(source["pool"]) / "annotations" / f"captions_{source['split']}.json"
            read = {"inputs": hash_json(files_fingerprint(path.parent, [path]))}
        else:
            read = self.inputs("captions")
        return {
            (tid := TaskId("caption_embeddings", model=encoder, chunk=c, images=images)): Task(
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


def run_section(run, name: str, model: type[Section]) -> Section:
    """The ``[analyses.<name>]`` section of the config a run folder was written with
    (``run.json``), validated by its model: a key the run did not write takes the model's
    default, so a report never restates a default of its own."""
    raw = run.meta.get("config", {}).get("analyses", {}).get(name, {})
    return model.model_validate(raw)


def study_base(cfg: Section) -> dict:
    """The parameters that locate a subject's responses: root, space and test set."""
    return {
        "root": str(cfg.data.root),
        "space": cfg.space,
        "test_set": getattr(cfg.data, "test_set", "all"),
    }


@dataclass
class ExportContext:
    """What an analysis's export sees: the plan, a loader of cached results, and the writer."""

    plan: Plan
    load: Callable
    writer: Any
    hemi_split: Callable | None
    extras: dict = field(default_factory=dict)
    warnings: list[RunWarning] = field(default_factory=list)

    @property
    def config(self) -> Section:
        return self.plan.config

    def warn(self, concerns: str, message: str, key: str | None = None) -> None:
        """Record a warning found while exporting (into ``run.json`` and the report)."""
        self.warnings.append(RunWarning(concerns, message, key))


__all__ = [
    "Analysis",
    "DataKind",
    "ExportContext",
    "FolderWrite",
    "ModelRef",
    "Plan",
    "PlanBuilder",
    "ReportSection",
    "RunWarning",
    "Table",
    "study_base",
]
