"""The run folder and the folders a study writes: checked before any work, locked while a run
uses them, and listed by ``--dry-run``.

A run folder (``output.dir``) must be new, empty, or a run folder brainalign made (its
``.brainalign.json``); brainalign refuses any other non-empty folder, so no config can make it
overwrite a user's files. While a run works in it, the run holds ``output.dir/.brainalign.lock``:
a second run on the same folder stops with a message naming the first run's process, or waits
for it (``brainalign run --wait``). Each data kind lists the folders its data task writes
(:attr:`~brainalign.pipeline.analysis.DataKind.writes`, e.g. the virtual NSD's ``data.root``),
checked the same way (:mod:`brainalign.utils.owned`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from brainalign.errors import ConfigError
from brainalign.utils.owned import (
    MARK,
    describe_folder,
    folder_lock,
    ownership_problem,
    read_mark,
    write_mark,
)

RUN_KIND = "run"
#: what runs wrote into output.dir before run folders carried a manifest, and their markers
RUN_LEGACY = (
    (
        "cache", "virtual_nsd", "tables", "maps", "arrays", "work", "datasets", "run.json",
        "report.html", "report.png", "run.log", ".virtual_nsd.lock",
    ),
    ("run.json", "cache/stages"),
)  # fmt: skip
LOCK = ".brainalign.lock"


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
    out.mkdir(parents=True, exist_ok=True)
    mark = read_mark(out)
    if mark is None or mark.get("kind") != RUN_KIND:
        write_mark(out, RUN_KIND)
    return out


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


def describe_writes(cfg, data_cached: bool) -> str:
    """What a run of ``cfg`` would create, update or replace, one line per folder."""
    from brainalign.config import data_kind

    out = Path(cfg.output.dir)
    rows = []
    state, foreign = describe_folder(out, RUN_KIND, RUN_LEGACY)
    action = _state_text(state, foreign, False, "")
    if state in ("ours", "legacy"):
        action = (
            "update (a brainalign run folder: tables/, maps/, arrays/, run.json and report.html "
            "are rewritten, cached results kept)"
        )
    rows.append(("output.dir", out, action))
    kind = data_kind(cfg)
    for w in kind.writes(cfg) if kind.writes is not None else ():
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
    "RUN_KIND",
    "RUN_LEGACY",
    "claim_output",
    "describe_writes",
    "output_problem",
    "run_lock",
]
