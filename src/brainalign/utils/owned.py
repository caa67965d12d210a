"""Folders brainalign owns: a manifest in each, locks, and replacing only what it wrote.

brainalign never deletes or overwrites a folder it did not create. Every folder it makes (a run
folder, a virtual NSD) holds a small manifest, ``.brainalign.json``, naming its kind and, for a
folder that may later be *replaced* as a whole, the files written into it. A folder may be
written into only when it does not exist, is empty or carries the manifest of the same kind; it
may be replaced only when, besides, every file in it is one brainalign wrote. Anything else is
refused with a message naming the folder and the files brainalign did not write.

Folders are built next to their final place (``.<name>.partial-<pid>``) under an exclusive lock
(``.<name>.lock`` beside it), then renamed into place, so a killed build leaves no half-written
folder; partial folders left by killed builds are removed by the next build. Locks are
``fcntl.flock`` locks, released by the operating system when their process dies, so a killed
run never leaves a stale lock (where ``fcntl`` does not exist, no lock is taken).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from brainalign import __version__
from brainalign.errors import FolderInUseError, InputError
from brainalign.utils.io import atomic_write_json

#: the manifest file of every folder brainalign owns
MARK = ".brainalign.json"
FORMAT = "brainalign.folder"


# ------------------------------------------------------------------------------ manifests
def read_mark(folder: str | os.PathLike) -> dict | None:
    """The manifest of ``folder`` (a dict with ``kind``), or None when it has none."""
    path = Path(folder) / MARK
    try:
        mark = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) and mark.get("format") == FORMAT else None


def write_mark(folder: str | os.PathLike, kind: str, *, stamp: bool = True, **info) -> Path:
    """Write ``folder``'s manifest: kind, brainalign version, ``info`` and (with ``stamp``) the
    creation time (left out where equal inputs must give equal bytes)."""
    mark = {"format": FORMAT, "kind": kind, "brainalign": __version__, **info}
    if stamp:
        mark["created"] = _dt.datetime.now().isoformat(timespec="seconds")
    return atomic_write_json(Path(folder) / MARK, mark)


def update_mark(folder: str | os.PathLike, **info) -> Path:
    """Add or replace ``info``'s entries in ``folder``'s manifest (which must exist), keeping
    the rest; a value of None removes its entry."""
    mark = read_mark(folder)
    if mark is None:
        raise InputError(f"{folder}: no {MARK}; brainalign writes only into folders it made")
    mark.update(info)
    return atomic_write_json(Path(folder) / MARK, {k: v for k, v in mark.items() if v is not None})


def list_files(folder: str | os.PathLike) -> dict[str, int]:
    """``{relative path: size}`` of every file under ``folder`` (the manifest left out)."""
    folder = Path(folder)
    out = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            rel = p.relative_to(folder).as_posix()
            if rel != MARK:
                out[rel] = p.stat().st_size
    return dict(sorted(out.items()))


#: ``(names, markers)``: a folder without a manifest that an older brainalign wrote holds only
#: top-level entries among ``names`` and at least one of the ``markers`` (relative paths)
Legacy = tuple[tuple[str, ...], tuple[str, ...]]


def describe_folder(
    folder: str | os.PathLike, kind: str, legacy: Legacy | None = None
) -> tuple[str, list[str]]:
    """What ``folder`` is, for a writer of ``kind``: ``(state, foreign)``.

    ``state`` is one of ``"missing"``, ``"file"``, ``"empty"``, ``"ours"`` (its manifest names
    ``kind``), ``"legacy"`` (no manifest, but written by an older brainalign: see
    :data:`Legacy`) or ``"foreign"``. ``foreign`` lists the entries brainalign did not write
    (for ``"ours"``: files absent from the manifest's file list, when it has one).
    """
    folder = Path(folder)
    if not folder.exists():
        return "missing", []
    if not folder.is_dir():
        return "file", [folder.name]
    entries = sorted(p.name for p in folder.iterdir())
    if not entries:
        return "empty", []
    mark = read_mark(folder)
    if mark is not None and mark.get("kind") == kind:
        listed = mark.get("files")
        if listed is None:
            return "ours", []
        return "ours", sorted(set(list_files(folder)) - set(listed))
    if (
        mark is None
        and legacy is not None
        and set(entries) <= set(legacy[0])
        and any((folder / m).exists() for m in legacy[1])
    ):
        return "legacy", []
    if mark is not None:
        return "foreign", [f"{MARK} (a brainalign {mark.get('kind')!r} folder)"]
    return "foreign", some_files(folder)


#: how many of a foreign folder's files a message lists (the walk stops there: it may be ``~``)
_LISTED = 50


def some_files(folder: str | os.PathLike, limit: int = _LISTED) -> list[str]:
    """The first ``limit`` files under ``folder`` (relative paths, in walk order, sorted per
    folder; an empty folder as ``name/``), with ``"…"`` last when there are more. The names are
    what a refusal shows, e.g. ``tables/roi_rsa.csv`` rather than ``tables``."""
    folder = Path(folder)
    out: list[str] = []
    for dirpath, dirs, files in os.walk(folder):
        dirs.sort()
        rel = Path(dirpath).relative_to(folder)
        names = [(rel / f).as_posix() for f in sorted(files)]
        if not files and not dirs and rel != Path("."):
            names = [f"{rel.as_posix()}/"]
        for name in names:
            if len(out) == limit:
                return [*out, "…"]
            out.append(name)
    return out


def _shown(names: list[str], n: int = 5) -> str:
    if names and names[-1] == "…":  # a capped listing: the count is not known
        more = " and more" if len(names) > n + 1 else ""
        return ", ".join(names[: min(n, len(names) - 1)]) + more
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def ownership_problem(
    folder: str | os.PathLike,
    kind: str,
    key: str,
    *,
    replace: bool = False,
    legacy: Legacy | None = None,
    what: str = "",
) -> str | None:
    """Why brainalign may not write into (or, with ``replace``, replace) ``folder``; None if it may.

    ``key`` names the option or argument that chose the folder; ``what`` says what brainalign
    would put there (for the message).
    """
    folder = Path(folder)
    state, foreign = describe_folder(folder, kind, legacy)
    what = what or f"a brainalign {kind} folder"
    if state == "file":
        return (
            f"{key}: {folder} is a file, not a folder; choose a folder path for {what} "
            "(brainalign never replaces a file it did not write)"
        )
    if state == "foreign":
        return (
            f"{key}: refused: {folder} exists, is not empty and was not created by brainalign "
            f"(it holds {_shown(foreign)}; no {MARK} of a {kind} folder); brainalign never "
            f"deletes or overwrites files it did not write: choose a new or empty folder for "
            f"{what}, or move those files away"
        )
    if state == "ours" and foreign and replace:
        return (
            f"{key}: {folder} was written by brainalign but now also holds files it did not write "
            f"({_shown(foreign)}); replacing it would delete them: move them away or choose "
            "another folder"
        )
    return None


# ------------------------------------------------------------------------------ run folders
#: the kind of a run folder (``output.dir``): here, not in the pipeline, because the report and
#: its writer (:mod:`brainalign.report`) check it too
RUN_KIND = "run"
#: what runs wrote into output.dir before run folders carried a manifest, and their markers
RUN_LEGACY = (
    (
        "cache", "virtual_nsd", "tables", "maps", "arrays", "work", "datasets", "run.json",
        "report.html", "report.png", "run.log", ".virtual_nsd.lock",
    ),
    # only the stage cache: a user's folder holding a run.json, tables/ and a report.html of
    # their own looked like an old run folder and was overwritten (issue 23)
    ("cache/stages",),
)  # fmt: skip


def run_folder_problem(run_dir: str | os.PathLike, key: str = "run_dir") -> str | None:
    """Why ``run_dir`` is not a run folder brainalign may update (write its report, export its
    results into); None when it is one (its manifest, or a run folder from before manifests)."""
    run_dir = Path(run_dir)
    state, foreign = describe_folder(run_dir, RUN_KIND, RUN_LEGACY)
    if state in ("ours", "legacy"):
        return None
    if state == "missing":
        return (
            f"{key}: {run_dir} does not exist; give the output folder of a run "
            "(`brainalign run CONFIG` makes it)"
        )
    if state == "file":
        return f"{key}: {run_dir} is a file, not a folder; give the output folder of a run"
    if state == "empty":
        return f"{key}: {run_dir} is empty, not a run folder; run `brainalign run CONFIG` first"
    return (
        f"{key}: refused: {run_dir} is not a brainalign run folder (it holds {_shown(foreign)}; "
        f"no {MARK}); brainalign never overwrites files it did not write: give the output "
        "folder of `brainalign run CONFIG`"
    )


def check_run_folder(run_dir: str | os.PathLike, key: str = "run_dir") -> Path:
    """``run_dir`` if brainalign may update it, else :class:`InputError` (before any work)."""
    problem = run_folder_problem(run_dir, key)
    if problem is not None:
        raise InputError(problem)
    return Path(run_dir)


# ------------------------------------------------------------------------------ locks
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def read_holder(lock_path: str | os.PathLike) -> dict:
    """Who holds (or last held) the lock file ``lock_path``: pid, host, start time, command."""
    try:
        info = json.loads(Path(lock_path).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _holder_text(info: dict) -> str:
    if not info:
        return "another process"
    cmd = info.get("command", "")
    cmd = f": {cmd}" if cmd else ""
    return (
        f"process {info.get('pid', '?')} on {info.get('host', '?')}, started "
        f"{info.get('started', '?')}{cmd}"
    )


@contextlib.contextmanager
def folder_lock(
    lock_path: str | os.PathLike,
    *,
    wait: bool = True,
    what: str = "",
    on_wait: Callable[[str], None] | None = None,
    hint: str = "wait for it to finish, stop it, or choose another folder",
) -> Iterator[Path]:
    """Hold an exclusive lock on ``lock_path`` (created, and removed again at the end).

    With ``wait=False`` a lock held by another process raises :class:`FolderInUseError` naming
    that process (pid, host, start time, command); with ``wait=True`` the call blocks until the
    lock is free, telling ``on_wait`` once who it waits for. The holder's details are written
    into the lock file while it is held.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield lock_path
        return
    told = False
    while True:
        handle = open(lock_path, "a+")  # noqa: SIM115 - closed below, after the lock's release
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder_text(read_holder(lock_path))
            if not wait:
                handle.close()
                raise FolderInUseError(
                    f"{what or lock_path}: in use by another brainalign run ({holder}); {hint}"
                ) from None
            if on_wait is not None and not told:
                on_wait(f"waiting for {holder} to release {what or lock_path}")
                told = True
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        # the holder before us removes the file when it is done: lock the file that is there
        try:
            same = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(info))
        handle.flush()
        yield lock_path
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


# ------------------------------------------------------------------------------ building
def _partial_pattern(name: str) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(name)}\.(partial|old)-(\d+)$")


def remove_stale_partials(root: str | os.PathLike) -> list[Path]:
    """Remove ``.<name>.partial-<pid>`` / ``.<name>.old-<pid>`` folders beside ``root`` whose
    process is gone (left by killed builds); return them. Call it holding the build lock."""
    root = Path(root)
    removed = []
    if not root.parent.is_dir():
        return removed
    pattern = _partial_pattern(root.name)
    for p in root.parent.iterdir():
        m = pattern.match(p.name)
        if m is None or not p.is_dir():
            continue
        pid = int(m.group(2))
        if pid != os.getpid() and _pid_alive(pid):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def reusable(root: str | os.PathLike, kind: str, arguments) -> bool:
    """Whether ``root`` is a complete brainalign folder of ``kind`` made with ``arguments``:
    its manifest records them, and every file it lists is present with its size."""
    root = Path(root)
    mark = read_mark(root)
    if mark is None or mark.get("kind") != kind or mark.get("arguments") != arguments:
        return False
    listed = mark.get("files")
    if not isinstance(listed, dict):
        return False
    for rel, size in listed.items():
        try:
            if (root / rel).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


@contextlib.contextmanager
def building(
    root: str | os.PathLike,
    kind: str,
    *,
    overwrite: bool = False,
    arguments=None,
    reuse: bool = False,
    key: str = "root",
    legacy: Legacy | None = None,
    what: str = "",
) -> Iterator[Path | None]:
    """Build a folder of ``kind`` at ``root``: yields a sibling build folder to write into.

    Under a lock on ``root`` (a second builder waits): stale partial folders are removed; with
    ``reuse``, a complete folder made with the same ``arguments`` is kept and ``None`` is
    yielded; otherwise ``root`` must be missing or empty, or (with ``overwrite``) a folder of
    ``kind`` holding only files brainalign wrote — anything else raises :class:`InputError`
    before any work. When the block ends normally the build folder gets its manifest (kind,
    ``arguments``, every file with its size) and replaces ``root``; when it raises, the build
    folder is removed and ``root`` is left as it was.
    """
    root = Path(root)
    # refused before anything is created; checked again under the lock
    problem = ownership_problem(root, kind, key, replace=True, legacy=legacy, what=what)
    if problem is not None and not (reuse and reusable(root, kind, arguments)):
        raise InputError(problem)
    root.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(root.parent / f".{root.name}.lock", wait=True, what=str(root)):
        remove_stale_partials(root)
        if reuse and reusable(root, kind, arguments):
            yield None
            return
        state, _ = describe_folder(root, kind, legacy)
        if state in ("ours", "legacy") and not overwrite:
            raise InputError(
                f"{key}: {root} exists and is not empty; choose a new folder or pass "
                "overwrite=True (it holds a brainalign folder that would be replaced)"
            )
        problem = ownership_problem(root, kind, key, replace=True, legacy=legacy, what=what)
        if problem is not None:
            raise InputError(problem)
        build = root.parent / f".{root.name}.partial-{os.getpid()}"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        write_mark(build, f"{kind}.partial", pid=os.getpid(), host=socket.gethostname())
        old = root.parent / f".{root.name}.old-{os.getpid()}"
        try:
            yield build
            write_mark(build, kind, stamp=False, arguments=arguments, files=list_files(build))
            if root.exists():  # a folder of ours, or empty (checked above)
                os.replace(root, old)
            os.replace(build, root)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            if old.exists() and not root.exists():
                os.replace(old, root)
            raise
        shutil.rmtree(old, ignore_errors=True)


__all__ = [
    "MARK",
    "RUN_KIND",
    "RUN_LEGACY",
    "Legacy",
    "building",
    "check_run_folder",
    "describe_folder",
    "folder_lock",
    "list_files",
    "ownership_problem",
    "read_holder",
    "read_mark",
    "remove_stale_partials",
    "reusable",
    "run_folder_problem",
    "some_files",
    "update_mark",
    "write_mark",
]
