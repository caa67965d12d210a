"""On-disk caches of the features stage: text embeddings and whole feature spaces.

``EmbeddingStore`` keeps one folder per encoder identity. Rows are written as *shards*: a pair of
``.npy`` files (``<shard>.vecs.npy`` float32 rows, ``<shard>.keys.npy`` 16-byte text hashes). Each
file is renamed into place atomically and the keys file is written last, so it is the commit marker:
a killed run leaves at most an unused ``.vecs.npy``, and concurrent writers never touch each other's
shards (every shard has a unique name). Many small shards are merged under a lock file.

``FeatureSpaceCache`` stores a finished feature space as ``X.npy`` + ``meta.json`` in a folder named
by a hash of its inputs and parameters, so a changed input never serves a stale result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brainalign.errors import IntegrityError
from brainalign.utils import atomic_save_npy, atomic_write_json, default_cache_dir
from brainalign.utils.hashing import file_digest

_KEY_BYTES = 16
_MERGE_AT = 32  # shards; merging keeps the look-up fast after many small runs


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """16-byte sha256 prefixes of the UTF-8 texts, as a ``(n,)`` ``|V16`` array."""
    out = np.empty(len(texts), dtype=f"V{_KEY_BYTES}")
    for i, t in enumerate(texts):
        out[i] = hashlib.sha256(t.encode("utf-8")).digest()[:_KEY_BYTES]
    return out


def _safe_name(identity: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in identity)[:60]
    return f"{stem}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


class EmbeddingStore:
    """Persistent map ``text → embedding row`` for one encoder identity.

    Parameters
    ----------
    identity : str
        The encoder's identity (model name + weights hash). Rows of different identities never mix.
    dim : int
        Embedding width; a shard of another width is reported as corrupt.
    root : path, optional
        Cache root; defaults to ``default_cache_dir() / "embeddings"``.
    """

    def __init__(self, identity: str, dim: int, root: str | os.PathLike | None = None):
        self.identity = identity
        self.dim = int(dim)
        base = Path(root) if root is not None else default_cache_dir() / "embeddings"
        self.path = base / _safe_name(identity)
        self.path.mkdir(parents=True, exist_ok=True)
        info = self.path / "identity.json"
        if not info.exists():
            atomic_write_json(info, {"identity": identity, "dim": self.dim})
        self._shards: dict[str, np.ndarray] = {}
        self._names: list[str] = []
        self._keys = np.empty((0, 2), np.uint64)
        self._owner = np.empty(0, np.int32)
        self._rows = np.empty(0, np.int64)

    # -- reading ---------------------------------------------------------------------------
    def _shard_names(self) -> list[str]:
        return sorted(p.name[: -len(".keys.npy")] for p in self.path.glob("*.keys.npy"))

    def refresh(self) -> None:
        """Pick up shards written since the last look (by this or another process)."""
        names = self._shard_names()
        if set(names) == set(self._shards):
            return
        shards: dict[str, np.ndarray] = {}
        keys_list, owner, rows = [], [], []
        for name in names:
            try:
                keys = np.load(self.path / f"{name}.keys.npy", allow_pickle=False)
                vecs = np.load(self.path / f"{name}.vecs.npy", mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                continue  # merged away by another process meanwhile; its rows live elsewhere
            except ValueError as exc:
                raise IntegrityError(
                    f"embedding cache shard {self.path / name}.*.npy is unreadable ({exc}); "
                    f"delete {self.path} to rebuild it"
                ) from None
            if (
                vecs.ndim != 2
                or vecs.shape != (len(keys), self.dim)
                or keys.dtype.itemsize != _KEY_BYTES
            ):
                raise IntegrityError(
                    f"embedding cache shard {self.path / name}: expected ({len(keys)}, {self.dim}) "
                    f"rows, found {vecs.shape}; delete {self.path} to rebuild it"
                )
            shards[name] = vecs
            keys_list.append(_as_u64(keys))
            owner.append(np.full(len(keys), len(shards) - 1, dtype=np.int32))
            rows.append(np.arange(len(keys), dtype=np.int64))
        # a sorted key table searched with searchsorted: no per-text Python work at look-up
        table = np.concatenate(keys_list) if keys_list else np.empty((0, 2), np.uint64)
        order = np.lexsort((table[:, 1], table[:, 0])) if len(table) else np.empty(0, np.int64)
        self._keys = table[order]
        self._owner = np.concatenate(owner)[order] if owner else np.empty(0, np.int32)
        self._rows = np.concatenate(rows)[order] if rows else np.empty(0, np.int64)
        self._shards = shards
        self._names = list(shards)

    def __len__(self) -> int:
        self.refresh()
        return len(self._keys)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``keys``.

        Returns
        -------
        vectors : (n, dim) float32
            Cached rows; rows of missing keys are zero.
        found : (n,) bool
        """
        self.refresh()
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        if not len(self._keys) or not len(keys):
            return out, found
        q = _as_u64(keys)
        n = len(self._keys)
        pos = np.minimum(np.searchsorted(self._keys[:, 0], q[:, 0], side="left"), n - 1)
        found = np.all(self._keys[pos] == q, axis=1)
        # texts sharing the first 8 hash bytes (practically never): step to the exact key
        for i in np.flatnonzero(~found & (self._keys[pos, 0] == q[:, 0])):
            p = pos[i]
            while p < n and self._keys[p, 0] == q[i, 0] and not (self._keys[p] == q[i]).all():
                p += 1
            if p < n and (self._keys[p] == q[i]).all():
                pos[i], found[i] = p, True
        hit = np.flatnonzero(found)
        owners = self._owner[pos[hit]]
        for s in np.unique(owners):
            sel = hit[owners == s]
            rows = self._rows[pos[sel]]
            order = np.argsort(rows)  # ascending rows read the memory map front to back
            out[sel[order]] = self._shards[self._names[s]][rows[order]]
        return out, found

    # -- writing ---------------------------------------------------------------------------
    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Append rows as one new shard (atomic; safe with concurrent writers)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) == 0:
            return
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected ({len(keys)}, {self.dim}) vectors, got {vectors.shape}")
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        atomic_save_npy(self.path / f"{name}.vecs.npy", vectors)
        atomic_save_npy(self.path / f"{name}.keys.npy", np.ascontiguousarray(keys))
        if len(self._shard_names()) >= _MERGE_AT:
            self.merge()

    def merge(self) -> None:
        """Merge all shards into one (under a lock file; a busy lock means someone else merges)."""
        lock = self.path / "merge.lock"
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if time.time() - _mtime(lock) < 600:
                return
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale lock of a killed merge
            return
        try:
            os.close(fd)
            self._shards = {}
            self.refresh()
            old = list(self._shards)
            if len(old) < 2:
                return
            keys = np.concatenate(
                [np.load(self.path / f"{n}.keys.npy", allow_pickle=False) for n in old]
            )
            vecs = np.concatenate([np.asarray(self._shards[n]) for n in old])
            _, first = np.unique(
                keys.view(np.uint8).reshape(len(keys), -1), axis=0, return_index=True
            )
            first.sort()
            name = f"{time.time_ns():020d}-{os.getpid()}-merged"
            atomic_save_npy(self.path / f"{name}.vecs.npy", vecs[first])
            atomic_save_npy(self.path / f"{name}.keys.npy", keys[first])
            # the merged shard is a superset, so readers never lose a row while old ones go
            for n in old:
                for suffix in (".keys.npy", ".vecs.npy"):
                    with contextlib.suppress(FileNotFoundError):
                        (self.path / f"{n}{suffix}").unlink()
            self._shards = {}
            self.refresh()
        finally:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()


def _as_u64(keys: np.ndarray) -> np.ndarray:
    """``(n,)`` 16-byte keys as ``(n, 2)`` big-endian-ordered uint64 words (sortable)."""
    return np.ascontiguousarray(keys).view(">u8").reshape(-1, 2).astype(np.uint64)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


class FeatureSpaceCache:
    """Finished feature spaces on disk, one folder per key (a hash of inputs and parameters)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir() / "feature_spaces"

    def _folder(self, name: str, key: str) -> Path:
        return self.root / name / key

    def load(self, name: str, key: str):
        """Return ``(X, meta)``, or ``None`` when absent or damaged.

        A damaged entry (``X.npy`` truncated or overwritten: its size or checksum differs from
        ``meta.json``'s; an unreadable file) is named in a warning, removed and recomputed by the
        caller, never used.
        """
        folder = self._folder(name, key)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            return None
        problem = None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            x_path = folder / "X.npy"
            if "blake2b" in meta and (
                x_path.stat().st_size != meta.get("bytes") or file_digest(x_path) != meta["blake2b"]
            ):
                problem = f"{x_path} does not match its size or checksum in {meta_path}"
            else:
                X = np.load(x_path, allow_pickle=False)
                if meta.get("shape") != list(X.shape):
                    problem = (
                        f"{meta_path} says shape {meta.get('shape')}, X.npy has {list(X.shape)}"
                    )
        except (OSError, ValueError) as exc:
            problem = f"{folder} is unreadable ({exc})"
        if problem is not None:
            warnings.warn(
                f"feature-space cache: {problem}; removed, the feature space is computed again",
                stacklevel=2,
            )
            self._discard(folder)
            return None
        return X, meta

    def save(self, name: str, key: str, X: np.ndarray, meta: dict) -> Path:
        folder = self._folder(name, key)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_save_npy(folder / "X.npy", X)
        # meta.json is written last: its presence marks a complete entry; it holds X.npy's
        # size and checksum, verified on load
        sums = {
            "bytes": (folder / "X.npy").stat().st_size,
            "blake2b": file_digest(folder / "X.npy"),
        }
        atomic_write_json(folder / "meta.json", {**meta, "shape": list(X.shape), **sums})
        return folder

    @staticmethod
    def _discard(folder: Path) -> None:
        """Remove a damaged entry: ``meta.json`` (its commit marker) first, then the rest."""
        with contextlib.suppress(FileNotFoundError):
            (folder / "meta.json").unlink()
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["EmbeddingStore", "FeatureSpaceCache", "text_keys"]
