"""Content hashes used as cache keys: a changed input never serves a stale result."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np


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
