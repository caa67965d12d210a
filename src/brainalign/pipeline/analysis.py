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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for annotations only: the config imports this registry
    from brainalign.config import StudyConfig
    from brainalign.pipeline.plan import Plan, PlanBuilder


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
        ``methods(config dict) -> list[str]``: its paragraphs of the report's methods text.
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
    enabled: Callable[[StudyConfig], bool] | None = None
    spaces: Callable[[StudyConfig], list[str]] | None = None
    data_options: Callable[[StudyConfig], dict] | None = None
    feature_spaces: Callable[[StudyConfig], list[tuple[str, str]]] | None = None
    check: Callable[[StudyConfig], list[str]] | None = None
    export: Callable[[ExportContext, dict], None] | None = None
    methods: Callable[[dict], list[str]] | None = None
    sections: tuple[ReportSection, ...] = ()
    tables: tuple[Table, ...] = ()
    warning_keys: dict[str, str | None] = field(default_factory=dict)

    def is_enabled(self, cfg: StudyConfig) -> bool:
        from brainalign.config import data_kind

        if data_kind(cfg).provides != self.needs:
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
        ``methods(config dict) -> list[str]``: the data paragraph of the methods text.
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
        run folder (:class:`brainalign.report.html.RunFolder`).
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
class ExportContext:
    """What an analysis's export sees: the plan, a loader of cached results, and the writer."""

    plan: Plan
    load: Callable
    writer: Any
    hemi_split: Callable | None
    extras: dict = field(default_factory=dict)
    warnings: list[RunWarning] = field(default_factory=list)

    @property
    def config(self) -> StudyConfig:
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
    "ReportSection",
    "RunWarning",
    "Table",
]
