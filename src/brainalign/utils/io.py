"""Atomic file writes: a killed process never leaves a half-written file under the final name.

Files and folders are created with the permissions the umask gives (``0o666 & ~umask`` for a
file, ``0o777 & ~umask`` for a folder), as ``open`` and ``mkdir`` would: :mod:`tempfile` creates
them ``0o600`` / ``0o700``, which would keep a lab's shared cache or report from its group. A
folder that cannot be written (read-only, no permission, disk full) is a :class:`WriteError`
naming the folder and what to do, not a bare ``OSError``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from brainalign.errors import WriteError

#: errno values that mean "this folder cannot be written", and what to do about each
_CANNOT_WRITE = {
    errno.EACCES: "make it writable (chmod u+w) or choose another folder",
    errno.EPERM: "make it writable (chmod u+w) or choose another folder",
    errno.EROFS: "choose a folder on a writable file system",
    errno.ENOSPC: "the disk is full: free space or choose a folder on another disk",
    errno.EDQUOT: "the disk quota is exceeded: free space or choose another folder",
}


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    # elsewhere the only way is to set it and set it back (a brief window for other threads)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_created(path: str | os.PathLike, folder: bool = False) -> None:
    """Give ``path`` the mode ``open``/``mkdir`` would have given it under the current umask.

    Best effort: where the file system refuses ``chmod`` (some network mounts), the file keeps
    :mod:`tempfile`'s private mode rather than failing the write.
    """
    with contextlib.suppress(PermissionError, NotImplementedError):
        os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def write_error(exc: OSError, folder: str | os.PathLike, what: str = "") -> OSError:
    """``exc`` as a :class:`WriteError` naming ``folder`` when it means the folder cannot be
    written (permissions, read-only file system, full disk); other errors are returned as they
    are. Use as ``raise write_error(exc, folder) from None``."""
    hint = _CANNOT_WRITE.get(exc.errno)
    if hint is None or isinstance(exc, WriteError):
        return exc
    what = f" ({what})" if what else ""
    # the file is named only when it is not one of our temporary files in that folder
    name = exc.filename
    name = f" ({name})" if name and Path(folder) not in (Path(name), Path(name).parent) else ""
    err = WriteError(f"cannot write into {folder}{what}: {exc.strerror or exc}{name}; {hint}")
    err.errno = exc.errno
    return err


def make_dirs(folder: str | os.PathLike, what: str = "") -> Path:
    """``mkdir -p folder``, or a :class:`WriteError` naming it when it cannot be created."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, folder, what) from None
    return folder


def probe_writable(folder: str | os.PathLike, what: str = "") -> Path:
    """Check that files can be created in ``folder`` (create and remove one) before any work:
    a :class:`WriteError` naming it otherwise. A real write, because ``os.access`` does not
    see a full disk or a quota, and network file systems may answer it wrongly."""
    folder = Path(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".brainalign-probe.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise write_error(exc, folder, what) from None
    return folder


def make_temp_dir(dir: str | os.PathLike, prefix: str = "", suffix: str = "") -> Path:
    """:func:`tempfile.mkdtemp` in ``dir``, with the umask's mode (``mkdtemp`` gives 0o700)."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=dir))
    except OSError as exc:
        raise write_error(exc, dir) from None
    as_created(tmp, folder=True)
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic.
    ``suffix`` defaults to the target's suffix (so libraries that infer the format from the
    extension, such as nibabel or numpy, write the right format). The file gets the mode the
    umask gives; a folder that cannot be written raises :class:`WriteError` naming it.
    """
    path = Path(path)
    make_dirs(path.parent)
    suffix = "".join(path.suffixes) if suffix is None else suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
        os.close(fd)
        as_created(tmp)
    except OSError as exc:
        raise write_error(exc, path.parent) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        err = write_error(exc, path.parent) if isinstance(exc, OSError) else exc
        if err is not exc:
            raise err from None
        raise


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy`` atomically (never pickled)."""
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
