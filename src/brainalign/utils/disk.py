"""Disk space: reserve a file before it is memory-mapped for writing, and say clearly when a
disk is full or a folder cannot be written.

A write into a memory map does not fail like a ``write()`` call: when the file is sparse (as
``np.lib.format.open_memmap(mode="w+")`` makes it) the blocks are allocated on first touch,
and on a full disk the kernel answers with ``SIGBUS`` — the process dies with ``Bus error``
(exit status 135) and no message, possibly hours into a preparation. So every file brainalign
maps for writing is created by :func:`create_memmap`, which allocates all of its blocks first
(``os.posix_fallocate``; where that does not exist or the file system does not support it,
by writing zeros over the data, which allocates them just as well) and turns a full disk into a
:class:`~brainalign.errors.WriteError` naming the file, the bytes needed and free and what
to do, before any work. Copy-on-write file systems (btrfs, ZFS) can still run out of space on
a later write; elsewhere a reserved file never does.

:func:`storage_errors` turns the ``OSError`` of ordinary writes on a full disk or into a read-only
folder into the same kind of message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from brainalign.errors import WriteError
from brainalign.utils.io import write_error

#: errno values of a full disk or an exceeded quota
NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
#: errno values of ``posix_fallocate`` on a file system that cannot preallocate
_NO_FALLOCATE = frozenset({errno.EINVAL, errno.ENOSYS, getattr(errno, "EOPNOTSUPP", errno.EINVAL)})
#: room for a ``.npy`` header in size estimates (numpy pads headers to 64 bytes; ours are < 256)
NPY_HEADER_BYTES = 4096
#: zeros written at a time where ``posix_fallocate`` is unavailable
_ZERO_CHUNK = 8 << 20


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units, e.g. ``'1.5 GiB'``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop always returns


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes free (for this user) on the file system of ``path`` or of its nearest existing
    parent; None when it cannot be told."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return int(shutil.disk_usage(p).free)
    except OSError:
        return None


def npy_nbytes(shape, dtype) -> int:
    """Bytes a ``.npy`` file of ``shape`` and ``dtype`` takes on disk (header included)."""
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize + NPY_HEADER_BYTES


def no_space_error(path, needed: int | None, hint: str) -> WriteError:
    """The :class:`WriteError` of a full disk while writing ``path``."""
    free = free_bytes(path)
    need = f"it needs {format_bytes(needed)}" if needed else "it needs more room"
    have = f"{format_bytes(free)} free" if free is not None else "too little free"
    return WriteError(
        f"{path}: not enough disk space: {need} and its disk has {have}; free space there or {hint}"
    )


def reserve(path: str | os.PathLike, offset: int, length: int, *, hint: str) -> None:
    """Allocate the disk blocks of bytes ``offset … offset + length`` of the file ``path``.

    The range must hold zeros (a freshly created sparse file): where ``posix_fallocate`` is
    missing or unsupported, zeros are written over it. A full disk raises :class:`WriteError`
    (``hint`` says where else the file could go).
    """
    if length <= 0:
        return
    with open(path, "r+b") as f:
        try:
            _allocate(f, offset, length)
        except OSError as exc:
            if _is_no_space(exc):
                raise no_space_error(path, offset + length, hint) from None
            raise


def _allocate(f, offset: int, length: int) -> None:
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(f.fileno(), offset, length)
            return
        except OSError as exc:
            if exc.errno not in _NO_FALLOCATE:
                raise
    # no preallocation here: writing the (zero) bytes allocates them the ordinary way, and a
    # full disk is an ENOSPC from write(), not a SIGBUS later
    f.seek(offset)
    zeros = bytes(min(_ZERO_CHUNK, length))
    left = length
    while left > 0:
        f.write(zeros[: min(left, len(zeros))])
        left -= min(left, len(zeros))
    f.flush()
    os.fsync(f.fileno())


def create_memmap(path: str | os.PathLike, shape, dtype, *, hint: str) -> np.memmap:
    """A new ``.npy`` at ``path``, its blocks reserved, open as a writable memory map.

    Parameters
    ----------
    path : path
        The file to create (replaced if it exists).
    shape : tuple of int
    dtype : numpy dtype
    hint : str
        What the user can do instead when the disk is full, e.g. ``"set BRAINALIGN_CACHE to a
        folder on a larger disk"`` (completes the message).

    Returns
    -------
    numpy.memmap
        Zero-filled, opened ``r+``.

    Raises
    ------
    WriteError
        The disk has too little room (the file is removed again) or the folder cannot be
        written.
    """
    path = Path(path)
    with storage_errors(path, hint):
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
        offset, length = int(arr.offset), int(arr.nbytes)
        del arr  # the header is written and the file sparse at its final size
        try:
            reserve(path, offset, length, hint=hint)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return np.lib.format.open_memmap(path, mode="r+")


def _is_no_space(exc: OSError) -> bool:
    # h5py reports a full disk as an OSError without errno, the C library's text in its
    # message; numpy's ``tofile`` (``np.save``) as a short write, "N requested and M written"
    text = str(exc)
    return (
        exc.errno in NO_SPACE
        or "No space left on device" in text
        or (exc.errno is None and "requested and" in text and "written" in text)
    )


def open_memmap_reserved(path: str | os.PathLike, *, hint: str) -> np.memmap:
    """Reopen an existing ``.npy`` as a writable memory map (``r+``, to resume work), first
    allocating any blocks it lacks (a file made sparse by an older brainalign or a sparse
    copy).

    Only ``posix_fallocate`` is used here (it never changes data already written); where it
    is missing or unsupported the file is opened as it is.

    Raises
    ------
    WriteError
        The disk has too little room for the file's missing blocks.
    """
    path = Path(path)
    with storage_errors(path, hint):
        arr = np.lib.format.open_memmap(path, mode="r+")
        if hasattr(os, "posix_fallocate") and arr.nbytes:
            with open(path, "r+b") as f:
                try:
                    os.posix_fallocate(f.fileno(), int(arr.offset), int(arr.nbytes))
                except OSError as exc:
                    if _is_no_space(exc):
                        del arr
                        raise no_space_error(path, None, hint) from None
                    if exc.errno not in _NO_FALLOCATE:
                        raise
        return arr


@contextlib.contextmanager
def storage_errors(where: str | os.PathLike, hint: str) -> Iterator[None]:
    """Turn a full disk or an unwritable folder inside the block into a :class:`WriteError`.

    A full disk names the file of the failed call (else ``where``), the free space and
    ``hint`` (what to do instead); a read-only folder or missing permission is
    :func:`brainalign.utils.io.write_error`'s message for ``where``. Other ``OSError`` pass
    through unchanged.
    """
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        if _is_no_space(exc):
            raise no_space_error(exc.filename or where, None, hint) from exc
        err = write_error(exc, where)
        if err is exc:
            raise
        raise err from exc


__all__ = [
    "NPY_HEADER_BYTES",
    "create_memmap",
    "format_bytes",
    "free_bytes",
    "no_space_error",
    "npy_nbytes",
    "open_memmap_reserved",
    "reserve",
    "storage_errors",
]
