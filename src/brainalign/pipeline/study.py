"""Run a whole study: plan → compute what is not cached → export maps and tables → report."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainalign import __version__
from brainalign.errors import BrainAlignError, ConfigError, DataFormatError
from brainalign.parallel import check_scheduler, get_executor
from brainalign.pipeline.analyses import ANALYSES
from brainalign.pipeline.analysis import ExportContext, RunWarning
from brainalign.pipeline.cache import StageCache
from brainalign.pipeline.config import (
    StudyConfig,
    config_of_run,
    data_kind,
    load_config,
    validate_config,
    with_effective,
)
from brainalign.pipeline.core import RunReport, all_tasks, describe_plan, run_tasks
from brainalign.pipeline.data_kinds import DATA_KINDS
from brainalign.pipeline.estimates import check_resources
from brainalign.pipeline.folders import (
    add_result,
    begin_run,
    check_run_folder,
    claim_output,
    describe_writes,
    finish_export,
    output_problem,
    read_mark,
    report_files,
    report_lock,
    run_lock,
    supersede,
    unfinished_run,
)
from brainalign.pipeline.inputs import features_methods
from brainalign.pipeline.plan import Plan, build_plan
from brainalign.pipeline.progress import RunProgress
from brainalign.report import RunWriter, build_report
from brainalign.utils.io import atomic_write_text

PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "sentence-transformers",
    "nilearn",
    "nibabel",
    "dask",
    "distributed",
    "spacy",
    "pydantic",
)


@dataclass
class StudyResult:
    """What :func:`run_study` returns."""

    run_dir: Path
    report: Path | None
    plan: Plan
    run: RunReport
    ground_truth: list[dict]
    seconds: float


def _versions() -> dict:
    from importlib import metadata

    out = {"brainalign": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _ctx(cfg: StudyConfig) -> dict:
    out = cfg.output.dir
    nsd_cache = _nsd_cache(cfg)
    return {
        "backend": cfg.compute.backend,
        "device": cfg.compute.device,
        "threads": cfg.compute.threads_per_task,
        "nsd_cache": str(nsd_cache),
        "work_dir": str(out / "work"),
        "verbose": False,
    }


def make_executor(cfg: StudyConfig):
    """The executor of ``cfg.compute`` (serial, local processes, or Dask)."""
    c = cfg.compute
    kind = c.executor
    if c.scheduler is None and kind == "serial" and c.workers > 1:
        kind = "dask"
    shared = cfg.output.dir / "cache" / "shared"
    if kind == "serial":
        return get_executor("serial")
    if kind == "dask" or c.scheduler is not None:
        tls = None if c.tls is None else c.tls.model_dump(mode="json")
        wait = {"worker_timeout": c.worker_timeout} if c.scheduler is not None else {}
        return get_executor(
            kind, workers=c.workers, scheduler=c.scheduler, shared_dir=shared, security=tls, **wait
        )
    return get_executor(kind, workers=c.workers, scheduler=c.scheduler, shared_dir=shared)


def plan_study(config: StudyConfig | str | os.PathLike) -> tuple[Plan, StageCache, str]:
    """The plan of a study and a printable table of what is cached, what would run and which
    folders a run would create, update or replace. Writes nothing.

    Raises :class:`~brainalign.errors.ConfigError` when ``output.dir`` is a file or a
    non-empty folder that brainalign did not create.
    """
    cfg = config if isinstance(config, StudyConfig) else load_config(config)
    problem = output_problem(cfg.output.dir)
    if problem is not None:
        raise ConfigError(problem)
    plan = build_plan(cfg)
    cache = StageCache(cfg.output.dir / "cache" / "stages", create=False)
    table = describe_plan(plan.targets, cache)
    kind = plan.kind
    folders = kind.writes(cfg) if kind.writes is not None else ()
    writes = describe_writes(cfg, folders, cache.has(plan.data.stage, plan.data.key))
    left_out = "".join(f"\nleft out: {w.concerns}: {w.message}" for w in plan.notes)
    return plan, cache, f"{table}{left_out}\n{writes}"


def run_study(
    config: StudyConfig | str | os.PathLike,
    *,
    executor=None,
    report: bool = True,
    log=None,
    progress: bool = False,
    wait: bool = False,
) -> StudyResult:
    """Run every analysis of ``config`` that is not cached, then export and report.

    Parameters
    ----------
    config : StudyConfig or path to a TOML file
    executor : brainalign.parallel.Executor, optional
        Default: built from ``config.compute`` (and closed at the end).
    report : bool
        Write ``report.html`` in the output folder.
    log : callable, optional
        Receives a line for each step after the tasks (default: silent).
    progress : bool
        Show the tasks' progress on stdout while they run (a live table on a terminal, plain
        lines otherwise; see :class:`~brainalign.pipeline.progress.RunProgress`).
    wait : bool
        When another run holds the output folder, wait for it (default: stop with
        :class:`~brainalign.errors.FolderInUseError` naming its process).

    Returns
    -------
    StudyResult
    """
    cfg = config if isinstance(config, StudyConfig) else load_config(config)
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    plan, cache, _ = plan_study(cfg)
    # a study whose steps need more disk or memory than this machine has stops here
    check_resources(plan, cache, None if executor is None else executor.n_workers)
    if executor is None and cfg.compute.scheduler is not None:
        check_scheduler(cfg.compute.scheduler)  # a bad address fails before anything is written
    out = claim_output(cfg.output.dir)
    with run_lock(out, wait=wait, on_wait=log):
        # recorded under the lock: `brainalign report` on a killed run exports from it
        run_id = begin_run(out, cfg.to_dict())
        own = executor is None
        executor = executor or make_executor(cfg)
        shown = RunProgress(workers=executor.n_workers) if progress else None
        try:
            first = None
            kind = data_kind(cfg)
            if kind.present is not None and not kind.present(cfg):
                # its files were deleted (a virtual NSD): write them again
                cache.discard(plan.data.stage, plan.data.key)
            if not cache.has(plan.data.stage, plan.data.key):
                # the data task writes or imports files (a virtual NSD) that the other tasks'
                # keys fingerprint: write them first, then plan again on what was written
                first = run_tasks([plan.data], cache, executor, ctx=_ctx(cfg))
                plan = build_plan(cfg)
            rep = run_tasks(plan.targets, cache, executor, ctx=_ctx(cfg), progress=shown)
            if first is not None:
                rep.computed = first.computed + rep.computed
                rep.reused = [r for r in rep.reused if r not in first.computed]
                rep.warnings = first.warnings + rep.warnings
                for name, sec in first.seconds.items():
                    rep.seconds[name] = rep.seconds.get(name, 0.0) + sec
        finally:
            if own:
                executor.close()
        seconds = time.perf_counter() - t0
        written = _log_warnings(rep, out, log)
        log("exporting maps and tables")
        truth = export_results(
            plan,
            cache,
            rep,
            seconds,
            run_id=run_id,
            also_written=written,
            report=report,
            log=log,
        )
        html = None
        if report:
            html = _write_report(out)
            _record_report(out)
    return StudyResult(out, html, plan, rep, truth, time.perf_counter() - t0)


def _log_warnings(rep: RunReport, out: Path, log) -> list[str]:
    """Every warning of the run into ``run.log``; one line per kind of warning on screen.
    Returns the files written (``["run.log"]``, or none when there was no warning)."""
    if not rep.warnings:
        return []
    lines = [f"{label}\t{text}" for label, text in rep.warnings]
    atomic_write_text(out / "run.log", "\n".join(lines) + "\n")
    for line in rep.warning_summary():
        log(f"warning: {line}")
    log(f"(every warning, task by task: {out / 'run.log'})")
    return ["run.log"]


# -------------------------------------------------------------------------------------- export
def _nsd_cache(cfg: StudyConfig) -> Path:
    return getattr(cfg.data, "cache_dir", None) or (cfg.output.dir / "cache" / "nsd")


def export_results(
    plan: Plan,
    cache: StageCache,
    rep: RunReport | None = None,
    seconds: float = 0.0,
    *,
    partial: bool = False,
    run_id: str | None = None,
    also_written: Sequence[str] = (),
    report: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Write the run folder's tables (CSV), maps (GIFTI/MGH) and arrays from the cached results.

    Each enabled analysis exports its own results; returns the ground-truth rows (virtual NSD).
    Then every result file an earlier run left that this export did not write (nor
    ``also_written`` names, nor the report about to be written) moves to ``superseded/`` (see
    :func:`~brainalign.pipeline.folders.supersede`), and the run folder's manifest records
    this export's files.

    Parameters
    ----------
    partial : bool
        Export only the analyses whose every task is cached (a run killed before its export);
        ``run.json`` then lists the others under ``unfinished``.
    run_id : str, optional
        The run (:func:`~brainalign.pipeline.folders.begin_run`) whose export this is: recorded
        as done in the manifest.
    also_written : sequence of str
        Result files (relative paths) written by this run outside the export (``run.log``):
        not superseded.
    report : bool
        The report is written next: ``report.html`` and the 3-D pages of this export's maps
        (:func:`~brainalign.pipeline.folders.report_files`) are not superseded.
    log : callable, optional
        Told where superseded results went.
    """
    cfg = plan.config
    load = lambda t: cache.load(t.stage, t.key)  # noqa: E731
    first = next(iter(plan.subject_tasks.values()), None)
    # no analysis may have needed the responses (e.g. networks alone): then no maps either
    hemi = load(first)["hemi_sizes"] if first and cache.has(first.stage, first.key) else None
    split = (lambda v: (np.asarray(v)[: hemi[0]], np.asarray(v)[hemi[0] :])) if hemi else None
    ctx = ExportContext(
        plan,
        load,
        RunWriter(cfg.output.dir, cfg.output.formats),
        split,
        extras={"nsd_cache": str(_nsd_cache(cfg))},
    )
    unfinished = []
    for analysis in ANALYSES:
        if analysis.name in plan.analyses and analysis.export is not None:
            targets = plan.analyses[analysis.name]
            if partial and not all(_complete(t, cache) for t in targets.values()):
                unfinished.append(analysis.name)
                continue
            try:
                analysis.export(ctx, targets)
            except DataFormatError:
                if not partial:
                    raise
                # an export may read a task outside its targets' dependencies; not finished
                unfinished.append(analysis.name)
    truth_rows = ctx.extras.get("ground_truth", [])
    quality = _data_quality(plan, cache, ctx.writer)
    warnings = run_warnings(plan, rep, ctx, quality)
    warnings += _kept_task_warnings(cfg.output.dir, rep, warnings)
    now = _dt.datetime.now().isoformat(timespec="seconds")
    effective = ctx.extras.get("effective", {})  # values capped by the data (subset_size)
    ctx.writer.json(
        "run",
        {
            "config": with_effective(cfg.to_dict(), effective),
            **({"effective": effective} if effective else {}),
            "subjects": plan.subjects,
            "versions": _versions(),
            "timing": {
                "total_seconds": seconds,
                "finished": now,
                "computed": len(rep.computed) if rep else 0,
                "reused": len(rep.reused) if rep else 0,
                "seconds_per_stage": rep.seconds if rep else {},
                "stages": rep.timing if rep else [],
            },
            "ground_truth": truth_rows,
            # data without responses (RDM data sets) has no betas to check
            **({"data_quality": quality} if quality is not None else {}),
            "warnings": [w.as_json() for w in warnings],
            **({"unfinished": unfinished} if partial else {}),
        },
    )
    out = cfg.output.dir
    written = [*ctx.writer.written, *also_written]
    moved = supersede(out, written, keep=report_files(written) if report else ())
    if moved and log is not None:
        where = moved[0].relative_to(out).parts[:2]
        log(
            f"moved {len(moved)} result file(s) this configuration no longer writes to "
            f"{out / Path(*where)}"
        )
    finish_export(out, run_id, written)
    return truth_rows


def _complete(task, cache: StageCache, seen: set | None = None) -> bool:
    """Whether ``task`` and everything it depends on are cached."""
    seen = set() if seen is None else seen
    if task.key in seen:
        return True
    seen.add(task.key)
    return cache.has(task.stage, task.key) and all(
        _complete(d, cache, seen) for d in task.deps.values()
    )


def run_warnings(
    plan: Plan, rep: RunReport | None, ctx: ExportContext, quality: dict | None = None
) -> list[RunWarning]:
    """The run's warnings for ``run.json`` and the report, each naming what it concerns and the
    config key that changes it: those the exports found (alpha edges, capped options) first,
    then one per kind of warning the computed tasks raised (the tasks named), keyed by the
    analysis whose task raised it (:attr:`Analysis.warning_keys`).

    A task's warnings come with its result, so they are those of the tasks this run computed;
    what an export finds is found again at every export.
    """
    found = list(plan.notes) + list(ctx.warnings)
    for key, record in ctx.extras.get("effective", {}).items():
        found.append(
            RunWarning(
                key,
                f"{key} = {record.get('requested')} was not possible: {record.get('used')} used "
                f"({record.get('why', 'capped by the data')})",
                key,
            )
        )
    for subject, v in ((quality or {}).get("non_finite") or {}).items():
        if v.get("values"):
            found.append(
                RunWarning(
                    f"subject {subject}",
                    f"{v['values']} NaN/Inf betas in {v.get('units', 0)} units, left out by "
                    "NaN-aware z-scoring; units without a value for an image are dropped by the "
                    "analyses (tables/non_finite_betas.csv)",
                    None,
                )
            )
    return found + _task_warnings(plan, rep, {w.key for w in found if w.key is not None})


def _task_warnings(plan: Plan, rep: RunReport | None, said: set) -> list[RunWarning]:
    """One warning per kind of warning the computed tasks raised, naming the tasks; those whose
    key an export's warning already covers (with its counts) are left out."""
    if rep is None or not rep.warnings:
        return []
    owners = _task_owners(plan)
    grouped: dict[tuple, list[tuple[str, str]]] = {}
    for label, text in rep.warnings:
        category, _, rest = text.partition(": ")
        message = rest if category.endswith("Warning") else text
        key = _warning_key(owners.get(label), label, message)
        if key is None or key not in said:
            grouped.setdefault((key, _warning_kind(message)), []).append((label, message))
    out = []
    for (key, _), items in grouped.items():
        labels = [label for label, _ in items]
        concerns = ", ".join(labels[:4]) + (
            f" and {len(labels) - 4} more" if len(labels) > 4 else ""
        )
        first = items[0][1] + (" (the first of these tasks)" if len(items) > 1 else "")
        out.append(RunWarning(concerns, first, key, tuple(labels)))
    return out


def _kept_task_warnings(run_dir: Path, rep: RunReport | None, found: list) -> list[RunWarning]:
    """The task warnings of the last export whose tasks this run reused from the cache (a
    task's warnings come only when it is computed), so a rerun still reports them; all of them
    for an export without a run (``brainalign report`` on a killed run)."""
    reused = None if rep is None else set(rep.reused)
    said = {(w.key, w.message) for w in found}
    kept = []
    for w in load_run_meta(run_dir).get("warnings") or []:
        tasks = tuple(w.get("tasks") or ())
        if not tasks or (w.get("key"), w.get("message")) in said:
            continue
        if reused is None or set(tasks) <= reused:
            kept.append(RunWarning(w["concerns"], w["message"], w.get("key"), tasks))
    return kept


def _warning_kind(message: str) -> str:
    """A warning with its numbers masked: the same kind of warning from several tasks."""
    import re

    return re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "N", message)


def _task_owners(plan: Plan) -> dict:
    """Task label → the analysis whose task it is (the shared stages belong to none)."""
    owners = {}
    for analysis in ANALYSES:
        targets = plan.analyses.get(analysis.name) or {}
        for t in all_tasks(list(targets.values())):
            if t.stage not in _SHARED_STAGES:
                owners.setdefault(t.label, analysis)
    return owners


def _warning_key(analysis, label: str, message: str) -> str | None:
    """The config key that changes a task's warning: its analysis's declared key for the
    warning's start, else the analysis's section; ``data`` for the shared stages' tasks."""
    if analysis is None:
        return "data" if label.split(":")[0] in _SHARED_STAGES else None
    for start, key in analysis.warning_keys.items():
        if message.startswith(start):
            return key
    return f"analyses.{analysis.name}"


#: Stages every analysis shares (the data, each subject's responses, the feature spaces): their
#: warnings concern the data, not an analysis.
_SHARED_STAGES = {
    *("responses", "features", "caption_embeddings", "sampling"),
    *("virtual_nsd", "nsd_root", "rdm_data"),
}


def _data_quality(plan: Plan, cache: StageCache, writer) -> dict | None:
    """Non-finite betas per subject (from each subject's responses task) for run.json, and
    ``tables/non_finite_betas.csv`` (one row per subject and session) when there are any.
    Subjects whose responses no analysis needed (so never prepared) are left out; None for
    data without responses (RDM data sets)."""
    import pandas as pd

    if not plan.subject_tasks:
        return None

    per_subject, rows = {}, []
    for s, task in plan.subject_tasks.items():
        if not cache.has(task.stage, task.key):
            continue
        info = cache.load(task.stage, task.key).get("non_finite") or {}
        per_subject[str(s)] = {k: v for k, v in info.items() if k != "sessions"}
        for session, v in (info.get("sessions") or {}).items():
            rows.append(
                {
                    "subject": s,
                    "session": int(session),
                    "values": v["values"],
                    "nan": v["nan"],
                    "inf": v["inf"],
                    "units": v["units"],
                    "files": "; ".join(v["files"]),
                }
            )
    if rows:  # else a table an earlier run wrote is superseded with the other stale results
        writer.table("non_finite_betas", pd.DataFrame(rows))
    total = sum(v.get("values", 0) for v in per_subject.values())
    return {"non_finite_values": total, "non_finite": per_subject}


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """The HTML report of a run folder, with every registered analysis's sections and methods.

    ``run_dir`` must be a run folder brainalign made (its ``.brainalign.json``): any other
    folder is refused, naming its files, before anything is written. When its last run was
    killed before its export, the results of every analysis whose tasks all finished are
    exported first (the others are named in the report). Raises
    :class:`~brainalign.errors.FolderInUseError` while a run works in the folder.

    Parameters
    ----------
    run_dir : path
        The output folder of ``brainalign run``.
    out : path, optional
        The HTML file (default ``run_dir/report.html``).

    Returns
    -------
    Path
        The HTML file.
    """
    run_dir = check_run_folder(run_dir)
    with report_lock(run_dir):
        notes = _export_unfinished(run_dir)
        path = _write_report(run_dir, out, notes=notes)
    if out is None:
        _record_report(run_dir)
    return path


def _record_report(run_dir: Path) -> None:
    """Add the report and the map pages it wrote to the files the manifest says the run wrote."""
    for rel in report_files((read_mark(run_dir) or {}).get("results") or ()):
        if (run_dir / rel).exists():
            add_result(run_dir, rel)


def _export_unfinished(run_dir: Path) -> list[str]:
    """Export what a run killed before its export finished; the report's notes about it."""
    mark = unfinished_run(run_dir)
    if mark is None:
        return []
    note = (
        f"This run (started {mark.get('started', '?')}) did not finish: it stopped before "
        "its export. "
    )
    try:
        data = {
            **mark["config"],
            # where the folder is now (it may have moved since), absolute: not re-resolved
            "output": {**mark["config"].get("output", {}), "dir": str(run_dir.resolve())},
        }
        cfg = validate_config(data, base_dir=run_dir)
        plan = build_plan(cfg)
        cache = StageCache(run_dir / "cache" / "stages", create=False)
        export_results(plan, cache, partial=True)
    except BrainAlignError as exc:
        return [note + f"Its finished tasks could not be exported ({exc}); rerun it."]
    missing = load_run_meta(run_dir).get("unfinished", [])
    rest = (
        f"Analyses not finished, so left out: {', '.join(missing)}. "
        if missing
        else "Every analysis had finished. "
    )
    return [note + rest + "Rerun the same `brainalign run` command to finish it."]


def _write_report(
    run_dir: str | os.PathLike, out: str | os.PathLike | None = None, notes: Sequence[str] = ()
) -> Path:
    recorded = load_run_meta(run_dir).get("config", {})
    cfg = _recorded_config(recorded)
    # the kind as recorded picks the summary also where the rest cannot be read
    kind = cfg.data.kind if cfg is not None else recorded.get("data", {}).get("kind")
    data = DATA_KINDS.get(kind)
    return build_report(
        run_dir,
        out,
        title=cfg.name if cfg is not None else None,
        config=cfg,
        sections=[section for analysis in ANALYSES for section in analysis.sections],
        methods=_run_methods(recorded, kind),
        notes=notes,
        # every declared table, so the report shows each once and lists only the others
        tables=[
            *(t for analysis in ANALYSES for t in analysis.tables),
            *(t for d in DATA_KINDS.values() for t in d.tables),
        ],
        data_summary=data.summary if data is not None else None,
    )


def _recorded_config(recorded: dict) -> StudyConfig | None:
    """The run's recorded config validated (the values it used, defaults filled); None when
    there is none or this version cannot read it (the methods section then says why)."""
    if not recorded:
        return None
    try:
        return config_of_run(recorded)
    except ConfigError:
        return None


def _run_methods(recorded: dict, kind: str | None) -> list:
    """The report's methods writers for a run: each writer reads the run's recorded config
    validated (:func:`~brainalign.pipeline.config.config_of_run`: the values the run used,
    defaults filled), never the raw dict (the report calls them with it). A record this version
    cannot read gives one paragraph that says so; the full configuration follows it anyway."""
    if not recorded:
        return []
    try:
        cfg = config_of_run(recorded)
    except ConfigError as exc:
        text = (
            f"The methods text needs the run's configuration, which brainalign {__version__} "
            f"cannot read ({exc}); the configuration as recorded is below."
        )
        return [lambda _recorded: [text]]
    return [lambda _recorded, write=write: write(cfg) for write in methods_writers(kind)]


def methods_writers(kind: str | None) -> list:
    """The methods paragraphs' writers, each ``write(cfg: StudyConfig) -> list[str]``: the data
    kind's, the features', each analysis's that runs on that kind of data, then the compute's."""
    data = DATA_KINDS.get(kind)
    writers = [data.methods] if data is not None and data.methods is not None else []
    writers.append(features_methods)
    return [
        *writers,
        *(
            a.methods
            for a in ANALYSES
            if a.methods is not None and (data is None or a.needs == data.provides)
        ),
        compute_methods,
    ]


def compute_methods(cfg: StudyConfig) -> list[str]:
    """The methods paragraph of how the run computed (backend, executor, cache)."""
    c = cfg.compute
    return [
        f"Compute: backend {c.backend} on {c.device}, executor {c.executor} with {c.workers} "
        "worker(s); every result cached by a hash of its inputs, parameters and code."
    ]


def methods_text(cfg: StudyConfig) -> list[str]:
    """The methods paragraphs of ``cfg`` (what the report will say), e.g. for ``--dry-run``."""
    return [p for write in methods_writers(cfg.data.kind) for p in write(cfg)]


def load_run_meta(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


__all__ = [
    "StudyResult",
    "export_results",
    "make_executor",
    "plan_study",
    "run_study",
    "methods_text",
    "write_report",
]
