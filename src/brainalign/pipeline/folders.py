"""The run folder and the folders a study writes: checked before any work, locked while a run
uses them, and listed by ``--dry-run``.

A run folder (``output.dir``) must be new, empty, or a run folder brainalign made (its
``.brainalign.json``); brainalign refuses any other non-empty folder, so no config can make it
overwrite a user's files. While a run works in it, the run holds ``output.dir/.brainalign.lock``:
a second run on the same folder stops with a message naming the first run's process, or waits
for it (``brainalign run --wait``). Each data kind lists the folders its data task writes
(:attr:`~brainalign.pipeline.analysis.DataKind.writes`, e.g. the virtual NSD's ``data.root``),
checked the same way (:mod:`brainalign.utils.owned`).

The run folder's manifest also records each run: the config of the run that last started
(``config``, ``run``, ``started``) and, once its export is done, the files it wrote
(``results``, ``exported``). An export moves every result an earlier run wrote and this one did
not (a table, map or array of an analysis since disabled, a model since removed) into
``superseded/<time of that earlier export>/``, so the folder and its report hold only the
current configuration's results and nothing is deleted. A run killed before its export leaves
``run`` ≠ ``exported``: ``brainalign report`` then exports whatever its finished tasks allow.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from brainalign.errors import ConfigError
from brainalign.utils.io import make_dirs, probe_writable
from brainalign.utils.owned import (
    MARK,
    RUN_KIND,
    RUN_LEGACY,
    check_run_folder,
    describe_folder,
    folder_lock,
    ownership_problem,
    read_mark,
    run_folder_problem,
    update_mark,
    write_mark,
)

LOCK = ".brainalign.lock"
#: where an export's results live: these subfolders (every file in them) and top-level files
RESULT_FOLDERS = ("tables", "maps", "arrays")
RESULT_FILES = ("run.json", "report.html", "report.png", "run.log")
SUPERSEDED = "superseded"


def output_problem(out: str | os.PathLike) -> str | None:
    """Why ``out`` cannot be a run folder (a file, or a folder brainalign did not make)."""
    return ownership_problem(
        out, RUN_KIND, "output.dir", legacy=RUN_LEGACY, what="the run's results"
    )


def claim_output(out: str | os.PathLike) -> Path:
    """Make ``out`` a run folder (create it, write its manifest) or raise :class:`ConfigError`."""
    out = Path(out)
    problem = output_problem(out)
    if problem is not None:
        raise ConfigError(problem)
    make_dirs(out, "output.dir")
    mark = read_mark(out)
    if mark is None or mark.get("kind") != RUN_KIND:
        write_mark(out, RUN_KIND)
    # a read-only folder fails here, before any task runs, not at the export
    probe_writable(out, "output.dir")
    return out


# ------------------------------------------------------------------------------ runs and results
def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def begin_run(out: str | os.PathLike, config: dict) -> str:
    """Record in the manifest that a run of ``config`` starts; return its id. Call it holding
    the run lock (a second run must not overwrite the first's record)."""
    started = _now()
    run_id = f"{started}/{os.getpid()}"
    update_mark(out, config=config, run=run_id, started=started)
    return run_id


def unfinished_run(run_dir: str | os.PathLike) -> dict | None:
    """The manifest of ``run_dir`` when its last run started but did not finish its export
    (killed, interrupted, failed) and recorded its config; None otherwise."""
    mark = read_mark(run_dir)
    if mark is None or not mark.get("run") or not isinstance(mark.get("config"), dict):
        return None
    return None if mark.get("exported") == mark["run"] else mark


def result_files(run_dir: str | os.PathLike, listed: Iterable[str] = ()) -> set[str]:
    """Every result file in ``run_dir`` (relative paths): all files under :data:`RESULT_FOLDERS`
    but hidden ones (temporary files of a write in progress), the top-level
    :data:`RESULT_FILES`, and the ``listed`` files of an earlier run that still exist."""
    run_dir = Path(run_dir)
    found = set()
    for sub in RESULT_FOLDERS:
        for dirpath, dirs, files in os.walk(run_dir / sub):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = Path(dirpath).relative_to(run_dir)
            found |= {(rel / f).as_posix() for f in files if not f.startswith(".")}
    found |= {f for f in (*RESULT_FILES, *listed) if (run_dir / f).is_file()}
    # a listed name is never taken outside the folder or into its cache
    return {f for f in found if ".." not in Path(f).parts and not f.startswith(".")}


def _superseded_folder(run_dir: Path, mark: dict) -> Path:
    """A new ``superseded/<time>/`` folder, named after the export whose results move there."""
    stamp = mark.get("exported_at") or mark.get("created")
    if not stamp:
        run_json = run_dir / "run.json"
        when = run_json.stat().st_mtime if run_json.exists() else None
        stamp = _dt.datetime.fromtimestamp(when).isoformat(timespec="seconds") if when else _now()
    name = stamp.replace(":", "-")
    dest, n = run_dir / SUPERSEDED / name, 1
    while dest.exists():
        n += 1
        dest = run_dir / SUPERSEDED / f"{name}-{n}"
    return dest


def supersede(
    run_dir: str | os.PathLike, written: Iterable[str], keep: Iterable[str] = ()
) -> list[Path]:
    """Move every result of an earlier run that ``written`` (this run's files, relative paths)
    does not hold, ``keep`` aside, into ``superseded/<time>/``; return where they went.

    Nothing is deleted: a file someone put among the results moves with them.
    """
    run_dir = Path(run_dir)
    mark = read_mark(run_dir) or {}
    stale = sorted(result_files(run_dir, mark.get("results") or ()) - set(written) - set(keep))
    if not stale:
        return []
    dest = _superseded_folder(run_dir, mark)
    moved = []
    for rel in stale:
        target = dest / rel
        make_dirs(target.parent, "superseded results")
        os.replace(run_dir / rel, target)
        moved.append(target)
    return moved


def finish_export(run_dir: str | os.PathLike, run_id: str | None, written: Iterable[str]) -> None:
    """Record in the manifest the files this run's export wrote (and, with ``run_id``, that the
    run finished its export: a later ``brainalign report`` need not export again)."""
    info = {"results": sorted(set(written)), "exported_at": _now()}
    if run_id is not None:
        info["exported"] = run_id
    update_mark(run_dir, **info)


_MAP_FILE = re.compile(r"^maps/(.+)\.(?:lh|rh)\.(?:func\.gii|mgh)$")


def report_files(written: Iterable[str]) -> list[str]:
    """What the report writes for these results: ``report.html`` and the stand-alone 3-D page of
    each map among ``written`` (``maps/<name>.html``, beside the map's files)."""
    names = {m.group(1) for rel in written if (m := _MAP_FILE.match(rel))}
    return ["report.html", *(f"maps/{name}.html" for name in sorted(names))]


def add_result(run_dir: str | os.PathLike, rel: str) -> None:
    """Add ``rel`` (e.g. ``report.html``) to the files the manifest says the last run wrote."""
    mark = read_mark(run_dir)
    if mark is not None and rel not in (mark.get("results") or []):
        update_mark(run_dir, results=sorted({*(mark.get("results") or []), rel}))


@contextlib.contextmanager
def run_lock(
    out: str | os.PathLike, *, wait: bool = False, on_wait: Callable[[str], None] | None = None
) -> Iterator[Path]:
    """Hold the run folder's lock; a second run stops (naming the first's process) or waits."""
    out = Path(out)
    hint = (
        "wait for it to finish (`brainalign run --wait` waits for it), stop it, or choose "
        "another output folder"
    )
    with folder_lock(
        out / LOCK, wait=wait, what=f"output.dir {out}", on_wait=on_wait, hint=hint
    ) as path:
        yield path


@contextlib.contextmanager
def report_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """The run lock for ``brainalign report``: it never waits, and a read-only folder (whose
    report goes elsewhere, ``--out``) is read without a lock."""
    run_dir = Path(run_dir)
    try:
        probe_writable(run_dir, "run_dir")
    except OSError:
        yield run_dir
        return
    with folder_lock(
        run_dir / LOCK,
        wait=False,
        what=f"run_dir {run_dir}",
        hint="wait for it to finish; its report is written at its end",
    ) as path:
        yield path


def _state_text(state: str, foreign: list[str], replace: bool, what: str) -> str:
    if state == "missing":
        return "create"
    if state == "empty":
        return "use (an empty folder)"
    if state == "file":
        return "REFUSED: a file is there (choose a folder path)"
    if state == "foreign":
        return f"REFUSED: not brainalign's (holds {', '.join(foreign[:3])})"
    if not replace:
        return "update (brainalign's)"
    if foreign:
        return f"REFUSED when rebuilt: also holds files brainalign did not write ({foreign[0]}…)"
    return f"replace ({what} brainalign wrote; kept when made with the same settings)"


def describe_writes(cfg, writes: Iterable, data_cached: bool) -> str:
    """What a run of ``cfg`` would create, update or replace, one line per folder: its output
    folder and ``writes``, the :class:`~brainalign.pipeline.analysis.FolderWrite` of its data
    task (``data_cached``: that task's result is cached)."""
    out = Path(cfg.output.dir)
    rows = []
    state, foreign = describe_folder(out, RUN_KIND, RUN_LEGACY)
    action = _state_text(state, foreign, False, "")
    if state in ("ours", "legacy"):
        action = (
            "update (a brainalign run folder: tables/, maps/, arrays/, run.json and report.html "
            f"are rewritten, results this config no longer makes move to {SUPERSEDED}/, cached "
            "results kept)"
        )
    if state in ("ours", "legacy", "empty") and not os.access(out, os.W_OK):
        # --dry-run writes nothing, so no probe file: the permission bits only
        action = "REFUSED: cannot write into it (make it writable or choose another folder)"
    rows.append(("output.dir", out, action))
    for w in writes:
        if data_cached and w.path.exists():
            rows.append((w.key, w.path, "keep (its task is cached)"))
            continue
        state, foreign = describe_folder(w.path, w.kind, w.legacy)
        rows.append((w.key, w.path, _state_text(state, foreign, w.replace, w.what)))
    width = max(len(k) for k, _, _ in rows)
    lines = [f"  {k:<{width}}  {p}  — {a}" for k, p, a in rows]
    return (
        "would write (brainalign writes only into folders it created, marked by "
        f"{MARK}; --dry-run writes nothing):\n" + "\n".join(lines)
    )


__all__ = [
    "LOCK",
    "RESULT_FILES",
    "RESULT_FOLDERS",
    "RUN_KIND",
    "RUN_LEGACY",
    "SUPERSEDED",
    "add_result",
    "begin_run",
    "check_run_folder",
    "claim_output",
    "describe_writes",
    "finish_export",
    "output_problem",
    "report_lock",
    "result_files",
    "run_folder_problem",
    "run_lock",
    "supersede",
    "unfinished_run",
]
