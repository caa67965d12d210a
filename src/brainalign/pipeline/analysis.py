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
class ReportSection:
    """One section of the HTML report: ``build(run) -> html`` over a run folder."""

    key: str
    heading: str
    build: Callable[[Any], str]


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

    @property
    def config(self) -> StudyConfig:
        return self.plan.config


__all__ = ["Analysis", "DataKind", "ExportContext", "FolderWrite", "ModelRef", "ReportSection"]
