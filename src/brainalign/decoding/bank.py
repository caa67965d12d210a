"""Caption banks: a corpus of captions with their sentence embeddings, searched exactly by cosine.

A bank is a folder::

    captions.txt       one caption per line (UTF-8; whitespace in a caption collapsed to spaces)
    embeddings.npy     (n_captions, dim) float16 or float32, unit-norm rows, memory-mapped on open
    meta.json          encoder identity, dim, dtype, count, source, sha256 of both files

``CaptionBank.build`` writes into ``<path>.partial`` and renames it into place when complete, so a
killed build leaves no bank under ``path``; rerunning the same build resumes from the last saved
chunk. ``CaptionBank.open`` checks the hashes (a corrupt or edited bank raises
:class:`~brainalign.errors.IntegrityError`) and queries embedded by another encoder are refused.

Search is exact top-k cosine in blocks. On CPUs with bfloat16 units (and on GPUs) scores are first
computed in bfloat16, then every candidate within a proven error bound of the k-th best is re-scored
in float32, so the result equals a float32 brute-force search while most arithmetic runs at bf16
speed (see :func:`search_embeddings`).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from brainalign.backend import get_backend
from brainalign.errors import DataFormatError, InputError, IntegrityError
from brainalign.utils.disk import create_memmap, open_memmap_reserved
from brainalign.utils.hashing import hash_file, hash_json
from brainalign.utils.io import atomic_write_json, atomic_write_text
from brainalign.utils.progress import progress

FORMAT_VERSION = 1
_DTYPES = {"float16": np.float16, "float32": np.float32}
_BF16_U = 2.0**-8  # unit roundoff of bfloat16


# --------------------------------------------------------------------------------------------------
# corpora


def normalise_caption(text) -> str:
    """A caption as a bank stores it: whitespace runs collapsed to one space, ends stripped."""
    return " ".join(str(text).split())


def read_corpus(path, dedupe: bool = True) -> list[str]:
    """Captions from a corpus file.

    Formats (by extension): ``.tsv`` — Conceptual Captions (``caption<TAB>url``, first column);
    ``.json`` — COCO caption annotations (``{"annotations": [{"caption": …}]}``), a list of strings,
    or ``{key: [captions]}``; anything else — plain text, one caption per line. Empty lines are
    skipped, whitespace collapsed, and exact duplicates removed (first kept) when ``dedupe``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(
            f"{path}: corpus file not found; give a .tsv, .json or .txt file of captions"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict) and "annotations" in data:
                raw = [a["caption"] for a in data["annotations"]]
            elif isinstance(data, list):
                raw = [x if isinstance(x, str) else x["caption"] for x in data]
            elif isinstance(data, dict):
                raw = [c for v in data.values() for c in (v if isinstance(v, list) else [v])]
            else:
                raise TypeError(type(data).__name__)
        else:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
            raw = [line.split("\t", 1)[0] for line in lines] if suffix == ".tsv" else lines
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DataFormatError(
            f"{path}: could not read captions ({type(exc).__name__}: {exc}); expected Conceptual "
            "Captions TSV, COCO caption JSON or plain text with one caption per line"
        ) from None
    captions = [normalise_caption(c) for c in raw]
    captions = [c for c in captions if c]
    if dedupe:
        captions = list(dict.fromkeys(captions))
    if not captions:
        raise DataFormatError(f"{path}: no captions found")
    return captions


def _check_encoder(encoder):
    for attr in ("encode", "identity", "dim"):
        if not hasattr(encoder, attr):
            raise InputError(
                f"encoder: expected a sentence encoder with .encode, .identity and .dim (e.g. "
                f"brainalign.features.SentenceEncoder), got {type(encoder).__name__} without .{attr}"
            )


def _normalise(E):
    E = np.asarray(E, dtype=np.float32)
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    return E / np.where(norms > 0, norms, 1)


# --------------------------------------------------------------------------------------------------
# the bank


class CaptionBank:
    """Captions and their unit-norm embeddings, searchable by exact top-k cosine.

    Use :meth:`build`, :meth:`open` or :meth:`from_embeddings` rather than the constructor.

    Attributes
    ----------
    embeddings : (n, dim) float16/float32 array (memory-mapped for banks on disk)
    captions : list of str
    identity : str
        The sentence encoder's identity; queries from another encoder are refused.
    path : Path or None
    """

    def __init__(self, embeddings, captions, identity: str, path=None, meta=None):
        self.embeddings = embeddings
        self.captions = list(captions)
        self.identity = str(identity)
        self.path = None if path is None else Path(path)
        self.meta = dict(meta or {})
        self._index = None

    def __len__(self) -> int:
        return len(self.captions)

    def __repr__(self) -> str:
        return f"CaptionBank(n={len(self)}, dim={self.dim}, dtype={self.dtype}, identity={self.identity!r})"

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def dtype(self) -> str:
        return str(self.embeddings.dtype)

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_embeddings(
        cls, embeddings, captions: Sequence[str], identity: str, dtype: str = "float32"
    ):
        """An in-memory bank from precomputed embeddings (rows are normalised to unit length)."""
        E = _normalise(embeddings)
        if E.ndim != 2 or len(E) != len(captions):
            raise InputError(
                f"embeddings: expected ({len(captions)}, dim) for {len(captions)} captions, got {E.shape}"
            )
        if dtype not in _DTYPES:
            raise InputError(f"dtype={dtype!r}: expected one of {sorted(_DTYPES)}")
        return cls(E.astype(_DTYPES[dtype]), [str(c) for c in captions], identity)

    @classmethod
    def build(
        cls,
        captions,
        encoder,
        path=None,
        dtype: str = "float16",
        chunk_size: int = 2048,
        overwrite: bool = False,
        verbose: bool | None = None,
    ) -> CaptionBank:
        """Embed ``captions`` with ``encoder`` and write the bank to ``path`` (or keep it in memory).

        Parameters
        ----------
        captions : sequence of str, or a corpus file path (see :func:`read_corpus`)
        encoder : object with ``.encode(list[str]) -> (n, dim)``, ``.identity`` and ``.dim``
        path : folder, optional
            Where to write. Resumes an interrupted build of the same captions and encoder.
        dtype : ``"float16"`` (half the disk and memory, scores within ~1e-3) or ``"float32"``
        chunk_size : int
            Captions embedded (and saved) per step.
        """
        _check_encoder(encoder)
        if dtype not in _DTYPES:
            raise InputError(f"dtype={dtype!r}: expected one of {sorted(_DTYPES)}")
        source = None
        if isinstance(captions, (str, os.PathLike)):
            source = str(captions)
            captions = read_corpus(captions)
        captions = [normalise_caption(c) for c in captions]
        if not captions or any(not c for c in captions):
            raise InputError("captions: expected a non-empty list of non-empty strings")
        n, dim = len(captions), int(encoder.dim)
        if path is None:
            E = np.empty((n, dim), dtype=_DTYPES[dtype])
            for start in progress(
                range(0, n, chunk_size), desc="caption bank", verbose=verbose, unit="chunk"
            ):
                E[start : start + chunk_size] = _normalise(
                    encoder.encode(captions[start : start + chunk_size])
                )
            return cls(E, captions, encoder.identity)

        path = Path(path)
        if path.exists():
            if not overwrite:
                raise InputError(
                    f"{path}: a bank (or file) already exists here; pass overwrite=True to replace it"
                )
            if not _is_bank(path):  # overwrite replaces a caption bank, never anything else
                raise InputError(
                    f"{path}: exists and is not a caption bank (no meta.json of a bank); "
                    "brainalign never deletes files it did not write: choose another path"
                )
        partial = path.with_name(path.name + ".partial")
        key = hash_json(
            {
                "captions": hash_json(captions),
                "identity": encoder.identity,
                "dtype": dtype,
                "dim": dim,
            }
        )
        state_file = partial / "state.json"
        state = None
        if state_file.exists():
            try:
                state = json.loads(state_file.read_text())
            except json.JSONDecodeError:
                state = None
        if state is None or state.get("key") != key:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            atomic_write_text(partial / "captions.txt", "\n".join(captions) + "\n")
            # reserved before mapping: a full disk is a clear error, not a Bus error
            create_memmap(
                partial / "embeddings.npy",
                (n, dim),
                _DTYPES[dtype],
                hint="build the bank in a folder on a disk with more room",
            ).flush()
            state = {"key": key, "n_done": 0}
            atomic_write_json(state_file, state)
        E = open_memmap_reserved(  # resuming: missing blocks allocated first
            partial / "embeddings.npy", hint="build the bank in a folder on a disk with more room"
        )
        starts = range(int(state["n_done"]), n, chunk_size)
        for start in progress(
            starts, total=len(starts), desc="caption bank", verbose=verbose, unit="chunk"
        ):
            stop = min(start + chunk_size, n)
            rows = np.asarray(encoder.encode(captions[start:stop]))
            if rows.shape != (stop - start, dim):
                raise InputError(
                    f"encoder: returned shape {rows.shape} for {stop - start} captions (dim {dim})"
                )
            E[start:stop] = _normalise(rows)
            E.flush()
            atomic_write_json(state_file, {"key": key, "n_done": stop})
        del E
        meta = {
            "format_version": FORMAT_VERSION,
            "identity": encoder.identity,
            "dim": dim,
            "dtype": dtype,
            "n_captions": n,
            "source": source,
            "normalised": True,
            "sha256_embeddings": hash_file(partial / "embeddings.npy"),
            "sha256_captions": hash_file(partial / "captions.txt"),
        }
        atomic_write_json(partial / "meta.json", meta)
        state_file.unlink()
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(partial, path)
        return cls.open(path, verify=False)

    @classmethod
    def open(cls, path, verify: bool = True) -> CaptionBank:
        """Open a bank folder (embeddings memory-mapped). ``verify`` checks both files' sha256."""
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            partial = path.with_name(path.name + ".partial")
            hint = (
                f" (an unfinished build is in {partial}; rerun the build to resume)"
                if partial.exists()
                else ""
            )
            raise DataFormatError(f"{path}: not a caption bank (no meta.json){hint}")
        try:
            meta = json.loads(meta_file.read_text())
            for key in (
                "identity",
                "dim",
                "dtype",
                "n_captions",
                "sha256_embeddings",
                "sha256_captions",
            ):
                meta[key]
        except (json.JSONDecodeError, KeyError) as exc:
            raise DataFormatError(
                f"{meta_file}: unreadable bank metadata ({exc}); rebuild the bank"
            ) from None
        for name, key in (
            ("embeddings.npy", "sha256_embeddings"),
            ("captions.txt", "sha256_captions"),
        ):
            f = path / name
            if not f.is_file():
                raise DataFormatError(f"{f}: missing; the bank is incomplete — rebuild it")
            if verify and hash_file(f) != meta[key]:
                raise IntegrityError(
                    f"{f}: sha256 does not match the bank's meta.json (the file is corrupt or was "
                    "changed); rebuild the bank with `brainalign bank build`"
                )
        try:
            E = np.load(path / "embeddings.npy", mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise DataFormatError(
                f"{path / 'embeddings.npy'}: unreadable ({exc}); rebuild the bank"
            ) from None
        captions = (
            (path / "captions.txt").read_text(encoding="utf-8").split("\n")[: meta["n_captions"]]
        )
        if E.shape != (meta["n_captions"], meta["dim"]) or len(captions) != meta["n_captions"]:
            raise DataFormatError(
                f"{path}: expected {meta['n_captions']} captions × {meta['dim']} dims, found embeddings "
                f"{E.shape} and {len(captions)} captions; rebuild the bank"
            )
        return cls(E, captions, meta["identity"], path=path, meta=meta)

    # ---- search ---------------------------------------------------------------------------------
    def indices_of(self, captions: Iterable[str]) -> np.ndarray:
        """Bank indices of the given caption strings (those absent are ignored)."""
        if self._index is None:
            self._index = {c: i for i, c in enumerate(self.captions)}
        out = [self._index.get(normalise_caption(c)) for c in captions]
        return np.asarray(sorted({i for i in out if i is not None}), dtype=np.int64)

    def search(
        self,
        queries,
        k: int = 5,
        exclude=None,
        encoder=None,
        identity: str | None = None,
        block_size: int = 65536,
        device: str = "cpu",
        method: str = "auto",
    ):
        """Exact top-k cosine neighbours of each query.

        Parameters
        ----------
        queries : (m, dim) array or list of str
            Embeddings (e.g. decoded from the brain) or texts (embedded with ``encoder``).
        k : int
        exclude : index array, bool mask (n,) or list of caption strings, optional
            Bank entries never returned (e.g. the training captions).
        encoder : sentence encoder, optional
            Needed for text queries; its identity must match the bank's.
        identity : str, optional
            The identity of the encoder that made array queries; refused if it differs.
        device : str
            Torch device for the search (``"cuda"`` on a GPU).
        method : ``"auto"``, ``"bf16"`` or ``"float32"``
            See :func:`search_embeddings` (all give the exact float32 result).

        Returns
        -------
        scores : (m, k) float32 cosine similarities, descending
        indices : (m, k) int64 bank indices (``self.captions[i]`` is the caption)
        """
        if encoder is not None:
            _check_encoder(encoder)
            identity = encoder.identity
        if identity is not None and identity != self.identity:
            raise InputError(
                f"queries: made with encoder {identity!r} but the bank was built with "
                f"{self.identity!r}; embed the queries with the bank's encoder or rebuild the bank"
            )
        if isinstance(queries, str) or (
            isinstance(queries, Sequence) and queries and isinstance(queries[0], str)
        ):
            if encoder is None:
                raise InputError(
                    "queries: text queries need encoder= (the encoder the bank was built with)"
                )
            queries = encoder.encode([queries] if isinstance(queries, str) else list(queries))
        Q = np.asarray(queries, dtype=np.float32)
        if Q.ndim == 1:
            Q = Q[None]
        if Q.ndim != 2 or Q.shape[1] != self.dim:
            raise InputError(
                f"queries: expected (m, {self.dim}) embeddings for this bank, got shape {Q.shape}"
            )
        mask = self._exclude_mask(exclude)
        return search_embeddings(
            self.embeddings,
            Q,
            k=k,
            exclude=mask,
            block_size=block_size,
            device=device,
            method=method,
        )

    def search_captions(self, queries, k: int = 5, **kwargs) -> list[list[str]]:
        """Like :meth:`search` but returns the captions (m lists of k strings)."""
        _, idx = self.search(queries, k=k, **kwargs)
        return [[self.captions[i] for i in row] for row in idx]

    def _exclude_mask(self, exclude):
        if exclude is None:
            return None
        if isinstance(exclude, np.ndarray) and exclude.dtype == bool:
            if exclude.shape != (len(self),):
                raise InputError(
                    f"exclude: expected a ({len(self)},) mask, got shape {exclude.shape}"
                )
            return exclude
        items = list(exclude)
        mask = np.zeros(len(self), bool)
        if items and isinstance(items[0], str):
            mask[self.indices_of(items)] = True
        else:
            idx = np.asarray(items, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
                raise InputError(f"exclude: indices must be in 0..{len(self) - 1}")
            mask[idx] = True
        return mask


# --------------------------------------------------------------------------------------------------
# exact blocked search


def _bf16_supported(device) -> bool:
    if str(device).startswith("cuda"):
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read(200_000)
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def search_embeddings(
    bank,
    queries,
    k: int = 5,
    exclude=None,
    block_size: int = 65536,
    query_block: int = 1024,
    device: str = "cpu",
    method: str = "auto",
):
    """Exact top-k inner-product search of ``queries`` (m, d) in ``bank`` (n, d), in blocks.

    Queries are normalised to unit length (cosine for the unit-norm rows of a bank).

    The search runs on the torch backend on ``device`` (``"cpu"``, ``"cuda"``, ...).
    ``method="float32"`` computes every score in float32 and keeps a running top-k (torch
    matmul + topk). ``method="bf16"`` computes the scores in bfloat16 and keeps the top ``K'``
    candidates; with unit roundoff u = 2⁻⁸ each bf16 score is within ε = (4u + d·2⁻²²)·‖q‖·max‖e‖
    of the exact one, so every true top-k item has a bf16 score ≥ c_(k) − 2ε (c_(k): k-th best bf16
    score). All kept candidates are re-scored exactly in float32; a query whose ``K'``-th candidate
    is still above that bound (the window may hold more items than were kept) is searched again in
    float32. The result is therefore the float32 brute-force result. ``"auto"`` picks ``"bf16"``
    on CUDA and on CPUs with bf16 instructions.

    Returns
    -------
    scores : (m, k) float32, indices : (m, k) int64
    """
    import torch

    n, d = bank.shape
    Q = _normalise(queries)
    m = Q.shape[0]
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k: expected a positive int, got {k!r}")
    n_allowed = n - (int(exclude.sum()) if exclude is not None else 0)
    if k > n_allowed:
        raise InputError(f"k={k}: the bank has only {n_allowed} searchable captions")
    if method == "auto":
        method = "bf16" if _bf16_supported(device) else "float32"
    if method not in ("bf16", "float32"):
        raise InputError(f"method={method!r}: expected 'auto', 'bf16' or 'float32'")
    xp = get_backend("torch", device)
    dev = torch.device(xp.device)
    excl_t = None if exclude is None else xp.asarray(exclude, dtype=bool)
    out_s = np.empty((m, k), np.float32)
    out_i = np.empty((m, k), np.int64)
    with torch.inference_mode():
        for q0 in range(0, m, query_block):
            q = xp.asarray(Q[q0 : q0 + query_block])
            if method == "bf16":
                s, i = _search_bf16(bank, q, k, excl_t, block_size, dev)
            else:
                s, i = _search_f32(bank, q, k, excl_t, block_size, dev)
            out_s[q0 : q0 + len(q)] = xp.to_numpy(s)
            out_i[q0 : q0 + len(q)] = xp.to_numpy(i)
    return out_s, out_i


def _blocks(bank, block_size, dev, dtype):
    import torch

    n = bank.shape[0]
    for start in range(0, n, block_size):
        blk = np.asarray(bank[start : start + block_size])
        with warnings.catch_warnings():  # read-only memory map: the tensor is never written
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(blk).to(dev)
        yield start, t if t.dtype == dtype else t.to(dtype)


def _merge(best_s, best_i, s, i, k):
    import torch

    if best_s is None:
        return s, i
    cat_s = torch.cat([best_s, s], 1)
    cat_i = torch.cat([best_i, i], 1)
    top_s, pos = torch.topk(cat_s, k, dim=1)
    return top_s, torch.gather(cat_i, 1, pos)


def _search_f32(bank, q, k, excl, block_size, dev):
    import torch

    best_s = best_i = None
    for start, E in _blocks(bank, block_size, dev, torch.float32):
        S = q @ E.T
        if excl is not None:
            S.masked_fill_(excl[start : start + E.shape[0]][None, :], float("-inf"))
        kk = min(k, E.shape[0])
        s, i = torch.topk(S, kk, dim=1)
        best_s, best_i = _merge(best_s, best_i, s, i + start, k)
    return best_s, best_i


def _bf16_error(c, a, u=_BF16_U):
    """Upper bound of |bf16 score − exact score| for bf16 scores ``c``: ``a`` bounds the input
    rounding and float32 accumulation ((2u + u²)·‖q‖·‖e‖ + d·2⁻²³·‖q‖·‖e‖), and the bf16 output
    rounding adds u·|exact| ≤ u·|c| / (1 − u)."""
    return a + c.abs() * (u / (1 - u))


def _search_bf16(bank, q, k, excl, block_size, dev):
    """bf16 candidates per block, then exact float32 re-scoring (see :func:`search_embeddings`)."""
    import torch

    n, d = bank.shape
    m = q.shape[0]
    kc = max(8 * k, 64)  # candidates kept per query and block
    max_row_norm = 1.001  # bank rows are unit norm (float16 storage rounds within 1e-3)
    a = ((2 * _BF16_U + _BF16_U**2) + d * 2.0**-23) * q.norm(dim=1, keepdim=True) * max_row_norm
    qb = q.to(torch.bfloat16)
    pool_c, pool_i, block_floor = [], [], []
    for start, E in _blocks(bank, block_size, dev, torch.bfloat16):
        S = qb @ E.T
        if excl is not None:
            S.masked_fill_(excl[start : start + E.shape[0]][None, :], float("-inf"))
        kk = min(kc, E.shape[0])
        c, i = torch.topk(S, kk, dim=1)
        c = c.float()
        pool_c.append(c)
        pool_i.append(i + start)
        # the best score this block did NOT keep is at most its kk-th kept one
        block_floor.append(
            c[:, -1] if kk < E.shape[0] else torch.full((m,), float("-inf"), device=q.device)
        )
    C = torch.cat(pool_c, 1)
    idx = torch.cat(pool_i, 1)
    err = _bf16_error(C, a)
    # L: a proven lower bound of the k-th best exact score
    L = torch.topk(C - err, k, dim=1).values[:, -1]
    cand = (C + err) >= L[:, None]
    # blocks whose dropped items might still reach L are searched exactly for those queries
    floors = torch.stack(block_floor, 1)
    incomplete = (floors + _bf16_error(floors, a)) >= L[:, None]
    top_s = torch.empty((m, k), device=q.device)
    top_i = torch.empty((m, k), dtype=torch.int64, device=q.device)
    chunk = 64
    for q0 in range(0, m, chunk):
        sl = slice(q0, min(q0 + chunk, m))
        cm = cand[sl]
        width = int(cm.sum(1).max())
        order = torch.argsort(cm.to(torch.int8), dim=1, descending=True, stable=True)[:, :width]
        ci = torch.gather(idx[sl], 1, order)
        valid = torch.gather(cm, 1, order)
        flat = ci[valid].cpu().numpy()
        uniq, inv = np.unique(flat, return_inverse=True)
        rows = torch.from_numpy(np.asarray(bank[uniq], dtype=np.float32)).to(q.device)
        pos = torch.zeros_like(ci)
        pos[valid] = torch.as_tensor(inv, device=q.device)
        exact = torch.bmm(rows[pos], q[sl][:, :, None])[:, :, 0]
        exact = exact.masked_fill(~valid, float("-inf"))
        s_, p_ = torch.topk(exact, min(k, width), dim=1)
        if width < k:  # cannot happen unless the bank is tiny; pad from the pool
            s_ = torch.cat(
                [s_, torch.full((s_.shape[0], k - width), float("-inf"), device=q.device)], 1
            )
            p_ = torch.cat(
                [p_, torch.zeros((p_.shape[0], k - width), dtype=torch.int64, device=q.device)], 1
            )
        top_s[sl] = s_
        top_i[sl] = torch.gather(ci, 1, p_)
    redo_q, redo_b = torch.nonzero(incomplete, as_tuple=True)
    if len(redo_q):
        for b in torch.unique(redo_b).tolist():
            qs = redo_q[redo_b == b]
            start = b * block_size
            E = torch.from_numpy(np.asarray(bank[start : start + block_size], dtype=np.float32)).to(
                q.device
            )
            S = q[qs] @ E.T
            if excl is not None:
                S.masked_fill_(excl[start : start + E.shape[0]][None, :], float("-inf"))
            s2, i2 = torch.topk(S, min(k, E.shape[0]), dim=1)
            top_s[qs], top_i[qs] = _merge_unique(top_s[qs], top_i[qs], s2, i2 + start, k)
    return top_s, top_i


def _merge_unique(s1, i1, s2, i2, k):
    """Merge two top-k lists that may share items (keep each index once)."""
    import torch

    cat_s = torch.cat([s1, s2], 1)
    cat_i = torch.cat([i1, i2], 1)
    order = torch.argsort(cat_s, dim=1, descending=True, stable=True)
    cat_s = torch.gather(cat_s, 1, order)
    cat_i = torch.gather(cat_i, 1, order)
    out_s = torch.empty((s1.shape[0], k), dtype=s1.dtype, device=s1.device)
    out_i = torch.empty((s1.shape[0], k), dtype=i1.dtype, device=i1.device)
    for r in range(cat_s.shape[0]):
        seen, ks = [], []
        for val, ix in zip(cat_s[r].tolist(), cat_i[r].tolist(), strict=True):
            if ix not in seen:
                seen.append(ix)
                ks.append(val)
            if len(seen) == k:
                break
        out_s[r] = torch.tensor(ks, dtype=s1.dtype)
        out_i[r] = torch.tensor(seen, dtype=i1.dtype)
    return out_s, out_i


def _is_bank(path: Path) -> bool:
    """Whether ``path`` is a caption bank folder (its ``meta.json`` names a format version)."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "format_version" in meta
