"""The pipeline's result cache: one folder per task result, keyed by a hash of everything it used.

A key is ``sha256(stage, task name, parameters, the keys of its inputs, the stage's code
version)``, so a changed input, parameter or stage implementation never serves a stale result,
and keys of downstream tasks are known before anything runs (``--dry-run`` can tell what is
cached). A result is a dict of arrays (stored as ``.npy``, opened memory-mapped) and JSON values.
It is written into a temporary folder that is renamed into place in one step, so a killed run
leaves either the whole result or nothing.

Each result's record (``result.json``) holds the size and BLAKE2b checksum of every array file
and of its JSON values. :meth:`StageCache.check` verifies them (the run checks every result it
would reuse; :meth:`StageCache.load` checks what it opens): a truncated or overwritten file is
named, and the run discards that result and computes it again. Files up to
:data:`~brainalign.utils.hashing.CONTENT_HASH_LIMIT` are hashed on every check; larger ones
only when their size, nanosecond mtime or inode differ from those recorded at writing (and
once per process), so reusing a large result does not mean reading it all.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from brainalign.errors import DataFormatError, InputError
from brainalign.utils.hashing import CONTENT_HASH_LIMIT, file_digest, hash_json
from brainalign.utils.io import _json_default, as_created, atomic_write_json

_META = "result.json"

#: files this process found intact: path -> (size, mtime_ns, inode) when checked
_VERIFIED: dict[str, tuple[int, int, int]] = {}


class Result(dict):
    """A task's result: ``{name: ndarray | JSON value}``, with ``.path`` when read from disk."""

    path: Path | None = None


class StageCache:
    """Results of pipeline tasks under ``root/<stage>/<key>/``.

    Parameters
    ----------
    root : path
        Cache folder (created if needed; with ``create=False`` only when a result is saved, so
        looking at a plan writes nothing). Safe to share between runs of different configs.
    """

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        if create:
            _make_folder(self.root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def has(self, stage: str, key: str) -> bool:
        return (self.path(stage, key) / _META).is_file()

    def save(self, stage: str, key: str, result: dict[str, Any]) -> Path:
        """Write ``result`` atomically; return its folder. An existing complete result is kept."""
        final = self.path(stage, key)
        if self.has(stage, key):
            return final
        _make_folder(final.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", suffix=".tmp", dir=final.parent))
        as_created(tmp, folder=True)  # mkdtemp gives 0o700: a lab's shared cache needs the umask's
        try:
            arrays, values, files = {}, {}, {}
            for name, value in result.items():
                if not isinstance(name, str) or not name.isidentifier():
                    raise InputError(f"result key {name!r}: expected a Python identifier")
                if isinstance(value, np.ndarray):
                    if value.dtype == object:
                        raise InputError(f"result[{name!r}]: object arrays cannot be stored")
                    np.save(tmp / f"{name}.npy", value, allow_pickle=False)
                    arrays[name] = [list(value.shape), str(value.dtype)]
                    files[f"{name}.npy"] = _file_record(tmp / f"{name}.npy")
                else:
                    values[name] = value
            # the metadata file is written last: its presence marks a complete result
            record = {"stage": stage, "key": key, "arrays": arrays, "values": values}
            # the values' checksum as they will read back (numpy scalars become numbers)
            as_read = json.loads(json.dumps(values, default=_json_default))
            record["checksums"] = {"files": files, "values": _values_digest(as_read)}
            atomic_write_json(tmp / _META, record)
            try:
                os.rename(tmp, final)
            except OSError:
                # another worker finished the same task first: keep theirs
                if not self.has(stage, key):
                    raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(tmp)
        return final

    def check(self, stage: str, key: str) -> str | None:
        """Whether a stored result is intact: ``None``, or what is wrong, naming the file.

        Checks the record, each array file's size and checksum (see the module docstring) and
        the JSON values' checksum. A result written before records held checksums is checked
        by its arrays' headers and sizes.
        """
        folder = self.path(stage, key)
        try:
            meta = _read_record(folder)
        except DataFormatError as exc:
            return str(exc)
        sums = meta.get("checksums")
        if sums is None:  # written by an older brainalign: its .npy headers must fit the sizes
            return next(
                filter(None, (_npy_problem(folder / f"{n}.npy") for n in meta["arrays"])), None
            )
        if _values_digest(meta["values"]) != sums.get("values"):
            return f"{folder / _META}: its values do not match their checksum (edited or damaged)"
        missing = [n for n in meta["arrays"] if f"{n}.npy" not in sums["files"]]
        if missing:
            return f"{folder / _META}: no checksum for arrays {missing}"
        for name, record in sums["files"].items():
            problem = _file_problem(folder / name, record)
            if problem is not None:
                return problem
        return None

    def discard(self, stage: str, key: str) -> None:
        """Remove a stored result (e.g. a damaged one) so that it is computed again.

        Renamed to a temporary name first, so that a killed removal leaves a folder that
        :meth:`clean_temporaries` removes, never a partial result under the final name.
        """
        folder = self.path(stage, key)
        if not folder.exists():
            return
        trash = folder.with_name(f".{key[:12]}.damaged-{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        for name in list(_VERIFIED):
            if name.startswith(str(folder) + os.sep):
                del _VERIFIED[name]

    def load(self, stage: str, key: str, mmap: bool = True) -> Result:
        """Read a result (arrays memory-mapped read-only by default), checked first.

        Raises
        ------
        DataFormatError
            Naming the damaged file (truncated, overwritten, unreadable record) and what to do.
        """
        folder = self.path(stage, key)
        if not (folder / _META).is_file():
            raise DataFormatError(
                f"cache: no complete result for stage {stage!r} key {key[:12]} in {folder}; "
                "run the pipeline (it computes what is missing)"
            )
        problem = self.check(stage, key)
        if problem is not None:
            raise DataFormatError(
                f"cache: {problem}; delete {folder} and rerun (a run discards a damaged result "
                "and computes it again)"
            )
        meta = _read_record(folder)
        out = Result(meta["values"])
        for name, (shape, dtype) in meta["arrays"].items():
            path = folder / f"{name}.npy"
            try:
                arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataFormatError(
                    f"cache: {path} is not a readable .npy file ({exc}); delete {folder} and rerun"
                ) from None
            if list(arr.shape) != shape or str(arr.dtype) != dtype:
                raise DataFormatError(
                    f"cache: {path} has shape {arr.shape} {arr.dtype}, expected "
                    f"{tuple(shape)} {dtype}; delete {folder} and rerun"
                )
            out[name] = arr
        out.path = folder
        return out

    def clean_temporaries(self) -> int:
        """Remove folders left by killed writers; return how many were removed.

        Call it only while no other process writes to this cache (the run folder's lock).
        """
        n = 0
        for tmp in self.root.glob("*/.*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)
            n += 1
        return n


def _read_record(folder: Path) -> dict:
    """A result's ``result.json``, or a :class:`DataFormatError` naming it."""
    path = folder / _META
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta.get("arrays"), dict) or not isinstance(meta.get("values"), dict):
            raise ValueError("no 'arrays' and 'values'")
    except FileNotFoundError:
        raise DataFormatError(f"{path}: missing") from None
    except (ValueError, UnicodeDecodeError, AttributeError) as exc:
        raise DataFormatError(f"{path} is corrupt ({exc})") from None
    return meta


def _values_digest(values: dict) -> str:
    return hash_json(values)


def _stat(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino


def _file_record(path: Path) -> dict:
    """What a result's record keeps of one of its files: size, checksum, and the stat that
    lets a later check skip rereading a large file nobody rewrote."""
    size, mtime_ns, inode = _stat(path)
    return {"size": size, "blake2b": file_digest(path), "mtime_ns": mtime_ns, "inode": inode}


def _file_problem(path: Path, record: dict) -> str | None:
    """``None`` if ``path`` matches its record, else what is wrong with it (naming it)."""
    try:
        stat = _stat(path)
    except FileNotFoundError:
        return f"{path} is missing"
    if stat[0] != record["size"]:
        return (
            f"{path} has {stat[0]} bytes, its record says {record['size']} (truncated or damaged)"
        )
    if _VERIFIED.get(str(path)) == stat:
        return None
    unchanged = stat[1:] == (record.get("mtime_ns"), record.get("inode"))
    if stat[0] > CONTENT_HASH_LIMIT and unchanged:
        return None  # a large file nobody rewrote since it was written: not reread
    if file_digest(path) != record["blake2b"]:
        return f"{path} does not match its checksum (overwritten or damaged, same size)"
    _VERIFIED[str(path)] = stat
    return None


def _npy_problem(path: Path) -> str | None:
    """For a record without checksums: ``path``'s ``.npy`` header and its size agree."""
    try:
        fmt = np.lib.format
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
            if version not in read:
                return None  # a newer header: np.load checks it
            shape, _, dtype = read[version](f)
            offset = f.tell()
        expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        size = os.path.getsize(path)
    except FileNotFoundError:
        return f"{path} is missing"
    except (OSError, ValueError) as exc:
        return f"{path} is not a readable .npy file ({exc})"
    if size != expected:
        return f"{path} has {size} bytes, its header says {expected} (truncated or damaged)"
    return None


def _make_folder(path: Path) -> None:
    """``mkdir -p path``, or a one-line error naming the part of the path that is a file."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), path)
        raise InputError(
            f"cache: cannot create the folder {path}: {blocker} is a file, not a folder; "
            "choose another output.dir (or move that file away)"
        ) from None


__all__ = ["Result", "StageCache"]
