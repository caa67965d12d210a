"""The pipeline's result cache: one folder per task result, keyed by a hash of everything it used.

A key is ``sha256(stage, task name, parameters, the keys of its inputs, the stage's code
version)``, so a changed input, parameter or stage implementation never serves a stale result,
and keys of downstream tasks are known before anything runs (``--dry-run`` can tell what is
cached). A result is a dict of arrays (stored as ``.npy``, opened memory-mapped) and JSON values.
It is written into a temporary folder that is renamed into place in one step, so a killed run
leaves either the whole result or nothing.
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
from brainalign.utils.io import as_created, atomic_write_json

_META = "result.json"


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
            arrays, values = {}, {}
            for name, value in result.items():
                if not isinstance(name, str) or not name.isidentifier():
                    raise InputError(f"result key {name!r}: expected a Python identifier")
                if isinstance(value, np.ndarray):
                    if value.dtype == object:
                        raise InputError(f"result[{name!r}]: object arrays cannot be stored")
                    np.save(tmp / f"{name}.npy", value, allow_pickle=False)
                    arrays[name] = [list(value.shape), str(value.dtype)]
                else:
                    values[name] = value
            # the metadata file is written last: its presence marks a complete result
            atomic_write_json(
                tmp / _META, {"stage": stage, "key": key, "arrays": arrays, "values": values}
            )
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

    def load(self, stage: str, key: str, mmap: bool = True) -> Result:
        """Read a result (arrays memory-mapped read-only by default)."""
        folder = self.path(stage, key)
        meta_path = folder / _META
        if not meta_path.is_file():
            raise DataFormatError(
                f"cache: no complete result for stage {stage!r} key {key[:12]} in {folder}; "
                "run the pipeline (it computes what is missing)"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"cache: {meta_path} is corrupt ({exc}); delete {folder} and rerun"
            ) from None
        out = Result(meta["values"])
        for name, (shape, dtype) in meta["arrays"].items():
            arr = np.load(
                folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False
            )
            if list(arr.shape) != shape or str(arr.dtype) != dtype:
                raise DataFormatError(
                    f"cache: {folder / name}.npy has shape {arr.shape} {arr.dtype}, expected "
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
