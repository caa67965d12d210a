"""Content hashes used as cache keys: a changed input never serves a stale result.

Two kinds of fingerprint serve the caches:

* :func:`file_digest` hashes a file's bytes (BLAKE2b, read in chunks: about 1 GB/s on one
  core, faster than sha256 without SHA instructions). Used for every file small enough to read
  on each plan (:data:`CONTENT_HASH_LIMIT`) and for every cached result.
* :func:`file_fingerprint` is the key of one input file: its content hash when the file is
  small, else its size, nanosecond modification time and inode. A rewrite within the same
  second with the same size changes the nanosecond time; a file replaced by a copy (``cp``,
  ``rsync``: write elsewhere, rename) changes the inode. Large inputs (NSD's betas, 250 MB per
  session and hemisphere; the 37 GB image brick) are not read on every plan.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

#: files up to this size (bytes) are fingerprinted by their content, larger ones by their
#: size, nanosecond mtime and inode (reading NSD's ~200 GB of betas on every plan is not cheap)
CONTENT_HASH_LIMIT = 64 << 20

#: digests this process computed, by (path, size, mtime_ns, inode): a plan reads each shared
#: file (the design, every subject's behavioural file) once, not once per subject
_DIGESTS: dict[tuple, str] = {}


def hash_array(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (hex, 64 characters)."""
    array = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(str(array.dtype).encode())
    h.update(str(array.shape).encode())
    h.update(memoryview(array).cast("B"))
    return h.hexdigest()


def hash_json(obj) -> str:
    """sha256 of a JSON-serialisable object with sorted keys."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def hash_file(path: str | os.PathLike, chunk_size: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: str | os.PathLike, chunk_size: int = 1 << 22) -> str:
    """BLAKE2b (128-bit) of a file's bytes, read in 4 MiB chunks (hex, 32 characters)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike, content_limit: int | None = None) -> list | None:
    """The key of one input file: ``["blake2b", digest]`` for a file of at most
    ``content_limit`` bytes (default :data:`CONTENT_HASH_LIMIT`), else ``["stat", size,
    mtime_ns, inode]``; ``None`` for a missing file.

    A small file's key does not change when it is only touched or copied with the same bytes.
    """
    limit = CONTENT_HASH_LIMIT if content_limit is None else content_limit
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if st.st_size <= limit:
        at = (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ino)
        if at not in _DIGESTS:
            _DIGESTS[at] = file_digest(path)
        return ["blake2b", _DIGESTS[at]]
    return ["stat", st.st_size, st.st_mtime_ns, st.st_ino]


def files_fingerprint(
    root: str | os.PathLike, paths: Iterable[str | os.PathLike], content_limit: int | None = None
) -> dict[str, list | None]:
    """``{path relative to root: file_fingerprint}`` of ``paths`` (sorted; missing ones None)."""
    root = Path(root)
    out = {}
    for p in sorted({Path(p) for p in paths}):
        name = str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
        out[name] = file_fingerprint(p, content_limit)
    return out


__all__ = [
    "CONTENT_HASH_LIMIT",
    "file_digest",
    "file_fingerprint",
    "files_fingerprint",
    "hash_array",
    "hash_file",
    "hash_json",
]
