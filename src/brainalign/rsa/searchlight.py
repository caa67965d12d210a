"""Fast searchlight RSA over many centres and many models in one pass.

Two exact routes (see :mod:`brainalign.rsa._kernels`), same values either way:

- ``materialised``: each centre's n × n brain RDM, formed for a batch of centres with one
  symmetric Gram product each (n (n + 1) / 2 · v multiply-adds per centre). Cheapest for
  small image sets such as the paper's 100-image subsets; the only route for Spearman, cosine
  and Kendall's tau-a.
- ``rdm_free`` (Pearson only): sums over the RDMs' pairs from v × v moments, cost per centre
  O(n · v · (v + d)) and no n × n memory, so full-n searchlights over all of a subject's images
  are feasible.

``path="auto"`` takes the cheaper one for Pearson by the cost rule of
:func:`~brainalign.rsa._kernels.explicit_route_cheaper`, judged at the median centre width.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainalign.backend import get_backend
from brainalign.errors import InputError
from brainalign.rsa._kernels import (
    PairSums,
    centre_similarities,
    condensed_compare,
    explicit_route_cheaper,
    gram_pearson,
    prepare_block,
    rdm_free_pearson,
    standardise_gathered,
)
from brainalign.rsa.compare import COMPARE_METHODS
from brainalign.rsa.models import parse_models
from brainalign.rsa.neighbourhoods import Neighbourhoods
from brainalign.rsa.subsets import check_subsets
from brainalign.utils.hashing import hash_array, hash_json
from brainalign.utils.io import atomic_save_npy, atomic_write_json
from brainalign.utils.progress import progress
from brainalign.utils.validation import check_2d

MODES = ("full", "subsets")
PATHS = ("auto", "rdm_free", "materialised")


def finite_units(betas: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Boolean (n_units,): units whose betas are finite for every image (read in column chunks)."""
    valid = np.empty(betas.shape[1], dtype=bool)
    for s in range(0, betas.shape[1], chunk):
        valid[s : s + chunk] = np.isfinite(betas[:, s : s + chunk]).all(axis=0)
    return valid


def searchlight(
    betas,
    models,
    neighbourhoods: Neighbourhoods,
    *,
    method: str = "pearson",
    mode: str = "full",
    subsets=None,
    backend: str = "numpy",
    device=None,
    batch_size="auto",
    checkpoint_dir=None,
    dtype="float32",
    path: str = "auto",
    min_units: int = 2,
    memory_budget: int | None = None,
    chunk_size: int = 4096,
    zero_pad_limit: int = 4 << 30,
    n_jobs: int | None = -1,
    verbose=None,
) -> np.ndarray:
    """RSA at every searchlight centre for every model.

    Parameters
    ----------
    betas : array, shape (n_images, n_units)
        Responses; units with any non-finite value are dropped from every neighbourhood (as the
        paper drops NaN vertices).
    models : array, list or dict of arrays
        Feature matrices (n_images × d), turned into correlation-distance RDMs as in the paper,
        and/or condensed RDMs (n_images (n_images − 1) / 2,). All are evaluated in one pass.
    neighbourhoods : Neighbourhoods
        From :func:`surface_neighbourhoods` or :func:`volume_neighbourhoods`; ``n_units`` must
        equal the betas' columns.
    method : {"pearson", "spearman", "cosine", "kendall_tau_a"}
        RDM comparison; the paper uses Pearson. Kendall's tau-a is computed on the CPU (scipy)
        per centre and model whatever the backend, so it suits small searchlights only.
    mode : {"full", "subsets"}
        ``full``: one comparison over all images. ``subsets``: the paper's mode, the mean over
        ``subsets`` (see :func:`make_subsets`) of the comparisons on each subset.
    subsets : array (n_subsets, size), optional
        Required for ``mode="subsets"``.
    backend, device : str
        ``"numpy"`` or ``"torch"`` (``device`` "cpu", "cuda", ...).
    batch_size : int or "auto"
        Centres per batch; "auto" keeps a batch's working memory near ``memory_budget`` bytes.
    checkpoint_dir : path, optional
        Results are written per chunk of ``chunk_size`` centres (atomic ``.npy`` files) under a
        folder keyed by a hash of the inputs; a rerun after a kill resumes from them.
    dtype : {"float32", "float64"}
        Precision of the matrix products; sums are combined in float64.
    path : {"auto", "rdm_free", "materialised"}
        Route (see the module docstring): "materialised" forms each centre's brain RDM,
        "rdm_free" (Pearson only) never does; "auto" takes, for Pearson, the one with fewer
        multiply-adds per centre at the median centre width (the materialised one for
        100-image subsets, the RDM-free one for thousands of images), and "materialised" for
        the other methods. Values agree to float rounding.
    memory_budget : int, optional
        Bytes of working memory per batch of centres; default 256 MiB for the RDM-free route
        (large matrix products), 16 MiB for the materialised one (small products that run
        best in cache).
    n_jobs : int, optional
        Threads working on batches of centres at once (numpy backend; torch uses its own thread
        pool). ``-1`` (the default) means all cores, ``None`` or 1 one thread (e.g. when several
        searchlights already share the cores). Results do not depend on it.
    min_units : int
        Centres with fewer valid units get NaN (with a warning that counts them). At least 2,
        since a correlation over one unit is undefined.

    Returns
    -------
    maps : ndarray, shape (n_models, n_centres), float64
        One value per model and centre (in ``neighbourhoods.centres`` order). NaN only at centres
        with fewer than ``min_units`` valid units or with a constant brain RDM; both are warned
        about. Images whose pattern is constant over a centre's units get correlation 0 with all
        other images (distance 1) at that centre.
    """
    betas = check_2d(betas, "betas")
    n_images = betas.shape[0]
    dtype = _check_arguments(betas, neighbourhoods, method, mode, path, min_units, dtype)
    _check_batch_size(batch_size)
    n_jobs = _check_n_jobs(n_jobs)
    names, parsed = parse_models(models, n_images)
    return block_values(
        betas,
        names,
        parsed,
        neighbourhoods,
        _block_rows(mode, subsets, n_images),
        mean=True,
        method=method,
        backend=backend,
        device=device,
        batch_size=batch_size,
        checkpoint_dir=checkpoint_dir,
        dtype=dtype,
        path=path,
        min_units=min_units,
        memory_budget=memory_budget,
        chunk_size=chunk_size,
        zero_pad_limit=zero_pad_limit,
        n_jobs=n_jobs,
        verbose=verbose,
    )


def block_values(
    betas,
    names: list[str],
    parsed: list,
    neighbourhoods: Neighbourhoods,
    blocks_rows: list,
    *,
    mean: bool,
    method: str,
    backend: str,
    device,
    batch_size,
    checkpoint_dir,
    dtype: np.dtype,
    path: str,
    min_units: int,
    memory_budget: int | None,
    chunk_size: int,
    zero_pad_limit: int,
    n_jobs: int,
    verbose,
    pairs: PairSums | None = None,
) -> np.ndarray:
    """Every model's value at every centre on each block of images (rows of ``betas``).

    The engine of :func:`searchlight` (arguments checked there; ``names`` and ``parsed`` from
    :func:`~brainalign.rsa.models.parse_models`). Returns (n_models, n_centres), the mean over
    blocks, with ``mean``; else (n_blocks, n_models, n_centres), one value per block (the
    cross-validated weighted searchlight fits on some blocks and tests on others). With
    ``pairs`` (a :class:`~brainalign.rsa._kernels.PairSums`; ``blocks_rows`` one block of every
    image), each centre's brain RDM is formed once over every image and ``pairs`` gives the values
    on its own blocks.
    """
    n_images = betas.shape[0]
    valid = finite_units(betas)
    nb = neighbourhoods.restrict(valid) if not valid.all() else neighbourhoods
    order = _usable_centres(nb.sizes, min_units)
    materialised = pairs is not None or _materialised(
        path, method, parsed, blocks_rows, nb.sizes[order]
    )
    xp = get_backend(backend, device)
    blocks = [
        prepare_block(xp, parsed, n_images, rows, not materialised, dtype) for rows in blocks_rows
    ]

    ckpt = None
    if checkpoint_dir is not None:
        key = {
            "betas": hash_array(np.ascontiguousarray(betas)),
            "models": [hash_array(np.ascontiguousarray(v)) for _, v in parsed],
            "nb": [hash_array(nb.indptr), hash_array(nb.indices)],
            "rows": [hash_array(r) for r in blocks_rows],
            "method": method,
            "materialised": materialised,
            "dtype": str(dtype),
            "chunk": int(chunk_size),
            "min_units": int(min_units),
            **({} if mean else {"per_block": True}),
            **({} if pairs is None else {"pairs": hash_array(pairs.P)}),
        }
        ckpt = _checkpoint_folder(checkpoint_dir, key, names, len(nb))
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    if materialised:
        kernel = _explicit_kernel(
            xp, betas, valid, nb, blocks, method, dtype, zero_pad_limit, rtol, mean, pairs
        )
    else:
        X, pad_unit, zero_padded = _upload_betas(xp, betas, valid, dtype, zero_pad_limit)
        kernel = _Kernel(
            xp=xp,
            X=X,
            nb=nb,
            blocks=blocks,
            # one block of every image in order (mode "full") needs no rows taken
            per_block_rows=not (
                len(blocks_rows) == 1 and np.array_equal(blocks_rows[0], np.arange(n_images))
            ),
            pad_unit=pad_unit,
            zero_padded=zero_padded,
            rtol=rtol,
            mean=mean,
        )
    if batch_size == "auto":
        if memory_budget is None:
            memory_budget = (16 << 20) if materialised else (256 << 20)
        batch_for = _batch_sizer(parsed, blocks, materialised, dtype, memory_budget, n_images)
    else:
        batch_for = None
    out = np.full((kernel.n_values, len(nb)), np.nan)
    bar = progress(total=order.size, desc="searchlight", verbose=verbose, unit="centre")
    # batches are independent; where the backend allows, threads share the cores while each
    # BLAS call stays single-threaded (see NumpyBackend.bmm)
    pool = ThreadPoolExecutor(n_jobs) if n_jobs > 1 and xp.parallel_batches else None
    try:
        for c_start in range(0, order.size, chunk_size):
            chunk_ids = order[c_start : c_start + chunk_size]
            chunk_file = None if ckpt is None else ckpt / f"chunk_{c_start // chunk_size:06d}.npy"
            out[:, chunk_ids] = _run_chunk(
                kernel, chunk_ids, nb.sizes, batch_size, batch_for, pool, bar, chunk_file
            )
    finally:
        if pool is not None:
            pool.shutdown()
        bar.close()
    _warn_constant(out[:, order])
    return out if mean else out.reshape(-1, len(parsed), len(nb))


# --------------------------------------------------------------------------------------------------
# argument checks


def _check_arguments(betas, neighbourhoods, method, mode, path, min_units, dtype) -> np.dtype:
    """Check the arguments that need no models; return ``dtype`` as a numpy dtype."""
    n_images, n_units = betas.shape
    if not isinstance(neighbourhoods, Neighbourhoods):
        raise InputError(
            f"neighbourhoods: expected a Neighbourhoods, got {type(neighbourhoods).__name__}"
        )
    if neighbourhoods.n_units != n_units:
        raise InputError(
            f"neighbourhoods: built for {neighbourhoods.n_units} units but betas have {n_units} columns; "
            "build the neighbourhoods on the same mesh or mask as the betas"
        )
    if method not in COMPARE_METHODS:
        raise InputError(f"method={method!r}: expected one of {COMPARE_METHODS}")
    if mode not in MODES:
        raise InputError(f"mode={mode!r}: expected one of {MODES}")
    if path not in PATHS:
        raise InputError(f"path={path!r}: expected one of {PATHS}")
    if path == "rdm_free" and method != "pearson":
        raise InputError(
            f"path='rdm_free' computes Pearson only; method={method!r} needs path='materialised'"
        )
    if int(min_units) < 2:
        raise InputError(f"min_units={min_units}: must be at least 2")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"dtype={dtype}: expected float32 or float64")
    if n_images < 3:
        raise InputError(f"betas: need at least 3 images, got {n_images}")
    return dtype


def _check_batch_size(batch_size) -> None:
    if batch_size == "auto":
        return
    if (
        not isinstance(batch_size, (int, np.integer))
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise InputError(f"batch_size={batch_size!r}: expected a positive int or 'auto'")


def _check_n_jobs(n_jobs) -> int:
    if n_jobs is None:
        return 1
    if n_jobs == -1:
        return os.cpu_count() or 1
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise InputError(f"n_jobs={n_jobs!r}: expected None, -1 or a positive int")
    return n_jobs


def _block_rows(mode: str, subsets, n_images: int) -> list[np.ndarray]:
    """The image rows of each block: the subsets, or all images."""
    if mode == "full":
        return [np.arange(n_images)]
    if subsets is None:
        raise InputError(
            "mode='subsets' needs subsets=...; make them once with make_subsets and reuse them"
        )
    return list(check_subsets(subsets, n_images))


def _materialised(path: str, method: str, parsed, blocks_rows, sizes) -> bool:
    """Whether to form brain RDMs: asked for, needed by the method, or cheaper (Pearson, "auto";
    judged on the largest block at the median width of the usable centres)."""
    if path != "auto":
        return path == "materialised"
    if method != "pearson":
        return True
    width = int(np.median(sizes)) if sizes.size else 1
    n_b = max(int(r.size) for r in blocks_rows)
    dims = [v.shape[1] for kind, v in parsed if kind == "features"]
    n_rdm = sum(1 for kind, _ in parsed if kind == "rdm")
    return explicit_route_cheaper(n_b, width, dims, n_rdm)


# --------------------------------------------------------------------------------------------------
# centres, checkpoints and batches


def _usable_centres(sizes: np.ndarray, min_units: int) -> np.ndarray:
    """Centres with at least ``min_units`` valid units, smallest first (warns about the others)."""
    usable = np.flatnonzero(sizes >= min_units)
    if usable.size < sizes.size:
        warnings.warn(
            f"searchlight: {sizes.size - usable.size} of {sizes.size} centres have fewer than {min_units} "
            "valid units (after dropping non-finite units); their values are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    return usable[np.argsort(sizes[usable], kind="stable")]


def _checkpoint_folder(checkpoint_dir, key: dict, names: list, n_centres: int) -> Path:
    """The chunk folder for these inputs (named by a hash of ``key``), with its manifest."""
    digest = hash_json(key)
    folder = Path(checkpoint_dir) / f"searchlight_{digest[:24]}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        folder / "manifest.json", {"key": digest, "models": names, "n_centres": n_centres}
    )
    return folder


def _auto_batch(n_gather, n_block, width, k_total, n_rdm, materialised, itemsize, budget):
    """Centres per batch whose working arrays take about ``budget`` bytes."""
    if materialised:
        # the gathered patterns (all images when gathered by columns) and two n × n matrices
        per = itemsize * (width * (n_gather + n_block) + 2 * n_block * n_block)
        if n_block >= 256:
            per += 8 * n_block * n_block  # the float64 copy of the correlations
    else:
        per = itemsize * width * (3 * n_gather + 2 * n_block + k_total + 2 * n_rdm * n_block)
    return int(np.clip(budget // max(per, 1), 1, 8192))


def _batch_sizer(parsed, blocks, materialised, dtype, memory_budget, n_images):
    """A function: centre width → centres per batch that keep a batch near ``memory_budget``."""
    k_total = sum(int(F.shape[0]) for F in blocks[0].feature_factors)
    n_rdm = sum(1 for kind, _ in parsed if kind == "rdm")
    n_block = max(b.rows.size for b in blocks)

    def batch_for(width: int) -> int:
        return _auto_batch(
            n_images, n_block, width, k_total, n_rdm, materialised, dtype.itemsize, memory_budget
        )

    return batch_for


def _split_batches(chunk_ids, sizes, batch_size, batch_for) -> list[np.ndarray]:
    """Split a chunk of centres (sorted by size) into batches."""
    batches, pos = [], 0
    while pos < chunk_ids.size:
        if batch_size == "auto":
            # centres are sorted by size, so a batch's widest centre is its last one
            bsz = batch_for(int(sizes[chunk_ids[pos]]))
            last = chunk_ids[min(pos + bsz, chunk_ids.size) - 1]
            bsz = min(bsz, batch_for(int(sizes[last])))
        else:
            bsz = int(batch_size)
        batches.append(chunk_ids[pos : pos + bsz])
        pos += bsz
    return batches


def _run_chunk(kernel, chunk_ids, sizes, batch_size, batch_for, pool, bar, chunk_file):
    """Values (n_models, chunk size) of one chunk of centres, read from or written to
    ``chunk_file`` when checkpointing."""
    if chunk_file is not None and chunk_file.exists():
        bar.update(chunk_ids.size)
        return np.load(chunk_file, allow_pickle=False)
    batches = _split_batches(chunk_ids, sizes, batch_size, batch_for)
    results = pool.map(kernel, batches) if pool is not None else map(kernel, batches)
    parts = []
    for ids, acc in zip(batches, results, strict=True):
        parts.append(acc)
        bar.update(ids.size)
    res = np.concatenate(parts, axis=1) if parts else np.empty((kernel.n_values, 0))
    if chunk_file is not None:
        atomic_save_npy(chunk_file, res)
    return res


def _warn_constant(values: np.ndarray) -> None:
    bad = np.isnan(values).any(axis=0)
    if bad.any():
        warnings.warn(
            f"searchlight: {int(bad.sum())} centres have a constant brain RDM (every image pattern constant "
            "over the centre); their values are NaN",
            RuntimeWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------------
# the per-batch computation


def _upload_betas(xp, betas, valid, dtype, zero_pad_limit):
    """The betas on the backend, the unit that padded slots gather, and whether it is a zero column.

    Padded slots gather an appended zero column, which keeps every sum a plain sum; for betas too
    large to copy they gather a finite unit and the sums are masked instead.
    """
    n_images, n_units = betas.shape
    zero_padded = betas.nbytes * dtype.itemsize / betas.itemsize <= zero_pad_limit
    if zero_padded:
        padded = np.concatenate([np.asarray(betas, dtype=dtype), np.zeros((n_images, 1), dtype)], 1)
        return xp.asarray(padded, dtype=dtype), n_units, True
    pad_unit = int(np.argmax(valid)) if valid.any() else 0
    return xp.asarray(betas, dtype=dtype), pad_unit, False


def _n_values(kernel) -> int:
    """Rows of a kernel's output: one per model, or one per block and model."""
    if getattr(kernel, "pairs", None) is not None:
        return kernel.pairs.n_values
    n_models = kernel.blocks[0].S_K.size
    return n_models if kernel.mean else n_models * len(kernel.blocks)


def _combine(values: list, mean: bool) -> np.ndarray:
    """Blocks' (n_models, batch) values: their mean, or stacked block by block."""
    return sum(values) / len(values) if mean else np.concatenate(values, axis=0)


@dataclass(frozen=True)
class _Kernel:
    """RDM-free Pearson r of every model at a batch of centres: gather, standardise, sum."""

    xp: object
    X: object  # betas on the backend, (n_images, n_units [+ 1 zero column])
    nb: Neighbourhoods
    blocks: list
    per_block_rows: bool  # subsets mode: each block takes its images' rows
    pad_unit: int
    zero_padded: bool
    rtol: float
    mean: bool = True  # the mean over blocks, or every block's values

    n_values = property(_n_values)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        xp = self.xp
        idx, mask = self.nb.padded(ids, fill=self.pad_unit)
        Xg = xp.take(self.X, xp.asarray(idx, dtype=np.int64), 1)  # (n, B, w)
        Z, q = standardise_gathered(xp, Xg, mask, self.rtol, self.zero_padded)
        values = []
        for block in self.blocks:
            Zb, qb = Z, q
            if self.per_block_rows:
                rows = xp.asarray(block.rows, dtype=np.int64)
                Zb, qb = xp.take(Z, rows, 0), xp.take(q, rows, 0)
            values.append(rdm_free_pearson(xp, Zb, qb, block))
        return _combine(values, self.mean)


def _explicit_kernel(
    xp, betas, valid, nb, blocks, method, dtype, zero_pad_limit, rtol, mean, pairs=None
):
    """The materialised route's kernel, with the betas laid out for it.

    Each block's betas are copied once as (n_units + 1, n_b): a centre's units are then rows,
    gathered whole, and the appended zero row fills padded slots. Copies larger in all than
    ``zero_pad_limit`` bytes are not made: the kernel then gathers columns of the betas.
    """
    n_units = betas.shape[1]
    total = n_units * sum(b.rows.size for b in blocks) * dtype.itemsize
    if total <= zero_pad_limit:
        copies = [xp.asarray(_transposed_rows(betas, b.rows, dtype), dtype=dtype) for b in blocks]
        return _ExplicitKernel(xp, nb, blocks, method, rtol, copies, None, n_units, mean, pairs)
    pad_unit = int(np.argmax(valid)) if valid.any() else 0
    X = xp.asarray(betas, dtype=dtype)
    return _ExplicitKernel(xp, nb, blocks, method, rtol, None, X, pad_unit, mean, pairs)


def _transposed_rows(betas, rows: np.ndarray, dtype, chunk: int = 8192) -> np.ndarray:
    """``betas[rows].T`` with a zero row appended, (n_units + 1, rows.size), read in column
    chunks (betas may be a memory map)."""
    n_units = betas.shape[1]
    out = np.zeros((n_units + 1, rows.size), dtype=dtype)
    for s in range(0, n_units, chunk):
        e = min(s + chunk, n_units)
        out[s:e] = np.asarray(betas[:, s:e], dtype=dtype)[rows].T
    return out


@dataclass(frozen=True)
class _ExplicitKernel:
    """Every model's value at a batch of centres from the centres' brain RDMs, block by block."""

    xp: object
    nb: Neighbourhoods
    blocks: list
    method: str
    rtol: float
    copies: list | None  # per block (n_units + 1, n_b), or None: gather columns of X
    X: object  # (n_images, n_units) betas when there are no copies
    pad_unit: int  # the zero row of the copies, or a valid unit of X
    mean: bool = True  # the mean over blocks, or every block's values
    pairs: PairSums | None = None  # values on other blocks from the one block's brain RDMs

    n_values = property(_n_values)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        xp = self.xp
        idx, mask = self.nb.padded(ids, fill=self.pad_unit)
        dtype = self.X.dtype if self.copies is None else self.copies[0].dtype
        count = xp.asarray(mask.sum(1), dtype=dtype)
        maskf = None if mask.all() else xp.asarray(mask[:, :, None], dtype=dtype)
        idx = xp.asarray(idx, dtype=np.int64)
        if self.copies is None:
            Xg = xp.take(self.X, idx, 1)  # (n, B, w)
        values = []
        for b, block in enumerate(self.blocks):
            if self.copies is not None:
                A = xp.take(self.copies[b], idx, 0)  # (B, w, n_b)
            else:
                rows = xp.asarray(block.rows, dtype=np.int64)
                A = xp.bmm_layout(xp.permute_dims(xp.take(Xg, rows, 0), (1, 2, 0)))
            R, q = centre_similarities(
                xp, A, count, maskf, self.rtol, pads_zero=self.copies is not None
            )
            if self.pairs is not None:
                return self.pairs(xp, R, q)
            if self.method == "pearson":
                values.append(gram_pearson(xp, R, q, block))
            else:
                values.append(condensed_compare(xp, R, block, self.method))
        return _combine(values, self.mean)
