"""Fast searchlight RSA over many centres and many models in one pass.

Pearson comparisons use the RDM-free kernel (see :mod:`brainalign.rsa._kernels`): cost per
centre O(n · v · (v + d)) and no n × n memory, so full-n searchlights over all of a subject's
images are feasible. Spearman, cosine and Kendall's tau-a use a materialised path (one brain
RDM per centre, batched). Both paths give the same Pearson values.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from brainalign.backend import get_backend
from brainalign.errors import InputError
from brainalign.rsa._kernels import (
    Ops,
    materialised_compare,
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


def _auto_batch(
    n_gather, n_block, width, k_total, n_rdm, materialised, itemsize, budget, block=None
):
    per = itemsize * width * (3 * n_gather + 2 * n_block + k_total + 2 * n_rdm * n_block)
    if materialised or (block is not None and block.use_nspace(width)):
        per += itemsize * 3 * n_block * n_block
    return int(np.clip(budget // max(per, 1), 1, 8192))


def searchlight(
    betas,
    models,
    neighbourhoods: Neighbourhoods,
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
    n_jobs: int | None = None,
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
        Kernel choice; "auto" takes the RDM-free kernel for Pearson.
    memory_budget : int, optional
        Bytes of working memory per batch of centres; default 256 MiB when the kernel works
        in unit space (large matrix products), 16 MiB when it works with n × n Gram matrices
        (small products that run best in cache).
    n_jobs : int, optional
        Threads working on batches of centres at once (numpy backend; torch uses its own thread
        pool). ``None`` means 1, ``-1`` all cores. Results do not depend on it.
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
    materialised = path == "materialised" or (path == "auto" and method != "pearson")
    if n_images < 3:
        raise InputError(f"betas: need at least 3 images, got {n_images}")

    names, parsed = parse_models(models, n_images)
    if mode == "subsets":
        if subsets is None:
            raise InputError(
                "mode='subsets' needs subsets=...; make them once with make_subsets and reuse them"
            )
        blocks_rows = list(check_subsets(subsets, n_images))
    else:
        blocks_rows = [np.arange(n_images)]

    ops = Ops(get_backend(backend, device), dtype)
    if n_jobs is None:
        n_jobs = 1
    elif n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    elif not isinstance(n_jobs, int) or n_jobs < 1:
        raise InputError(f"n_jobs={n_jobs!r}: expected None, -1 or a positive int")
    blocks = [prepare_block(ops, parsed, n_images, rows, not materialised) for rows in blocks_rows]

    valid = finite_units(betas)
    nb = neighbourhoods.restrict(valid) if not valid.all() else neighbourhoods
    sizes = nb.sizes
    n_centres = len(nb)
    out = np.full((len(parsed), n_centres), np.nan)
    usable = np.flatnonzero(sizes >= min_units)
    if usable.size < n_centres:
        warnings.warn(
            f"searchlight: {n_centres - usable.size} of {n_centres} centres have fewer than {min_units} "
            "valid units (after dropping non-finite units); their values are NaN",
            RuntimeWarning,
            stacklevel=2,
        )
    order = usable[np.argsort(sizes[usable], kind="stable")]

    ckpt = None
    if checkpoint_dir is not None:
        key = hash_json(
            {
                "betas": hash_array(np.ascontiguousarray(betas)),
                "models": [hash_array(np.ascontiguousarray(v)) for _, v in parsed],
                "nb": [hash_array(nb.indptr), hash_array(nb.indices)],
                "rows": [hash_array(r) for r in blocks_rows],
                "method": method,
                "materialised": materialised,
                "dtype": str(dtype),
                "chunk": int(chunk_size),
                "min_units": int(min_units),
            }
        )
        ckpt = Path(checkpoint_dir) / f"searchlight_{key[:24]}"
        ckpt.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            ckpt / "manifest.json", {"key": key, "models": names, "n_centres": n_centres}
        )

    # padded slots gather an appended zero column, which keeps every sum a plain sum; for
    # betas too large to copy they gather a finite unit and the sums are masked instead
    zero_padded = betas.nbytes * np.dtype(dtype).itemsize / betas.itemsize <= zero_pad_limit
    if zero_padded:
        X = ops.asarray(
            np.concatenate([np.asarray(betas, dtype=dtype), np.zeros((n_images, 1), dtype)], 1)
        )
        pad_unit = n_units
    else:
        X = ops.asarray(betas)
        pad_unit = int(np.argmax(valid)) if valid.any() else 0
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    k_total = sum(int(F.shape[0]) for F in blocks[0].feature_factors)
    if memory_budget is None:
        typical = int(np.median(sizes[order])) if order.size else 1
        nspace = materialised or blocks[0].use_nspace(typical)
        memory_budget = (16 << 20) if nspace else (256 << 20)
    n_rdm = sum(1 for kind, _ in parsed if kind == "rdm")
    n_block = max(r.size for r in blocks_rows)

    def batch_for(size: int) -> int:
        """Centres per batch that keep a batch of ``size``-unit centres near the memory budget."""
        return _auto_batch(
            n_images,
            n_block,
            size,
            k_total,
            n_rdm,
            materialised,
            dtype.itemsize,
            memory_budget,
            blocks[0],
        )

    bar = progress(total=order.size, desc="searchlight", verbose=verbose, unit="centre")
    # batches are independent and numpy's products release the GIL, so threads share the cores
    # while each BLAS call stays single-threaded (see _kernels._single_thread_blas)
    pool = ThreadPoolExecutor(n_jobs) if n_jobs > 1 and not ops.is_torch else None
    for c_start in range(0, order.size, chunk_size):
        chunk_ids = order[c_start : c_start + chunk_size]
        chunk_file = None if ckpt is None else ckpt / f"chunk_{c_start // chunk_size:06d}.npy"
        if chunk_file is not None and chunk_file.exists():
            out[:, chunk_ids] = np.load(chunk_file, allow_pickle=False)
            bar.update(chunk_ids.size)
            continue
        batches, pos = [], 0
        while pos < chunk_ids.size:
            if batch_size == "auto":
                # centres are sorted by size, so a batch's widest centre is its last one
                bsz = batch_for(int(sizes[chunk_ids[pos]]))
                last = chunk_ids[min(pos + bsz, chunk_ids.size) - 1]
                bsz = min(bsz, batch_for(int(sizes[last])))
            else:
                bsz = int(batch_size)
                if bsz < 1:
                    raise InputError(
                        f"batch_size={batch_size!r}: expected a positive int or 'auto'"
                    )
            batches.append(chunk_ids[pos : pos + bsz])
            pos += bsz

        def run_batch(ids):
            idx, mask = nb.padded(ids, fill=pad_unit)
            Z, q = standardise_gathered(
                ops, ops.take_cols(X, ops.asindex(idx)), ops.asmask(mask), rtol, zero_padded
            )
            acc = np.zeros((len(parsed), ids.size))
            for block in blocks:
                if mode == "full":
                    Zb, qb = Z, q
                else:
                    rows = ops.asindex(block.rows)
                    Zb, qb = ops.take_rows(Z, rows), ops.take_rows(q, rows)
                if materialised:
                    acc += materialised_compare(ops, Zb, block, method)
                else:
                    acc += rdm_free_pearson(ops, Zb, qb, block)
            return acc / len(blocks)

        results = pool.map(run_batch, batches) if pool is not None else map(run_batch, batches)
        parts = []
        for ids, acc in zip(batches, results, strict=True):
            parts.append(acc)
            bar.update(ids.size)
        res = np.concatenate(parts, axis=1) if parts else np.empty((len(parsed), 0))
        if chunk_file is not None:
            atomic_save_npy(chunk_file, res)
        out[:, chunk_ids] = res
    if pool is not None:
        pool.shutdown()
    bar.close()
    bad = np.isnan(out[:, usable]).any(axis=0)
    if bad.any():
        warnings.warn(
            f"searchlight: {int(bad.sum())} centres have a constant brain RDM (every image pattern constant "
            "over the centre); their values are NaN",
            RuntimeWarning,
            stacklevel=2,
        )
    return out
