"""Lazy row (and column) selections of large, usually memory-mapped, 2-D arrays.

``betas[~shared]`` on a memory-mapped ``(n_images, n_vertices)`` array copies every selected row
into memory (11.8 GB for NSD's ~9,000 training images on full fsaverage). :class:`RowView` selects
the rows without reading them; the solvers that work in blocks of targets (ridge, encoding scores)
then read one column block of the selected rows at a time, so their extra memory is
O(n_rows × block) instead of O(n_rows × n_columns)::

    train = RowView(sub.betas, ~sub.shared)          # nothing read yet
    train.shape                                      # (n_train, n_vertices)
    block = train[:, 0:5000]                         # (n_train, 5000) float32, read now

Anything that needs the whole array still gets it through ``np.asarray(view)`` (a copy).
"""

from __future__ import annotations

import numpy as np

from brainalign.errors import InputError


class RowView:
    """Selected rows (and optionally columns) of a 2-D array, read on indexing.

    Parameters
    ----------
    array : (n, m) array-like supporting numpy indexing
        Usually an ``np.memmap`` (e.g. ``SubjectResponses.betas``); also any in-memory ndarray.
    rows : bool mask (n,), index array, slice or None
        The rows to expose, in this order (``None``: all rows).
    columns : bool mask (m,), index array, slice or None, keyword-only
        The columns to expose (``None``: all columns).
    dtype : numpy dtype, keyword-only
        Values are converted to this dtype when read (default float32).

    Attributes
    ----------
    shape : (n_rows, n_columns)
    ndim : 2
    dtype : numpy.dtype
    rows, columns : (k,) int64 or None
        Row (column) indices into ``array``; ``columns`` is None for all columns.

    Notes
    -----
    Indexing (``view[:, a:b]``, ``view[rows, cols]``, ``view[i]``) returns a new in-memory ndarray
    of ``dtype`` holding only the requested part, read from ``array`` (for a memory map: only the
    pages of those rows and columns). A contiguous run of rows is read as a slice, which is faster
    on a memory map than an index array. ``np.asarray(view)`` reads everything (a full copy).
    """

    def __init__(self, array, rows=None, *, columns=None, dtype=np.float32):
        shape = getattr(array, "shape", None)
        if shape is None:
            array = np.asarray(array)
            shape = array.shape
        if len(shape) != 2:
            raise InputError(
                f"RowView: expected a 2-D array (n_images × n_units), got shape {tuple(shape)}"
            )
        self.array = array
        self.rows = _indices(rows, shape[0], "rows")
        self.columns = None if columns is None else _indices(columns, shape[1], "columns")
        self.dtype = np.dtype(dtype)
        n_cols = shape[1] if self.columns is None else len(self.columns)
        self.shape = (len(self.rows), n_cols)
        self._row_run = _as_run(self.rows)

    ndim = 2

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes the view would take if read in full."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"RowView({type(self.array).__name__} {tuple(self.array.shape)}, "
            f"shape={self.shape}, dtype={self.dtype})"
        )

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) == 1:
            key = (key[0], slice(None))
        if len(key) != 2:
            raise InputError(f"RowView: expected at most 2 indices (rows, columns), got {key!r}")
        key = tuple(slice(None) if k is Ellipsis else k for k in key)
        r_key, c_key = key
        rows = self._select_rows(r_key)
        cols = c_key if self.columns is None else _take(self.columns, c_key)
        if isinstance(cols, np.ndarray) and cols.dtype == bool:
            cols = np.flatnonzero(cols)
        if isinstance(rows, np.ndarray) and isinstance(cols, (np.ndarray, list)):
            out = self.array[np.ix_(rows, np.asarray(cols))]
        else:
            out = self.array[rows, cols]
        out = np.asarray(out)
        # a slice of a memory map (or of an in-memory array) is a view of it: copy that out
        view = isinstance(self.array, np.ndarray) and np.may_share_memory(out, self.array)
        return out.astype(self.dtype, copy=view)

    def _select_rows(self, r_key):
        """Row indices (or a slice, for a contiguous run) into ``array`` for the view's ``r_key``."""
        if isinstance(r_key, slice) and r_key == slice(None) and self._row_run is not None:
            return self._row_run
        rows = _take(self.rows, r_key)
        if isinstance(rows, np.ndarray):
            run = _as_run(rows)
            return run if run is not None else rows
        return rows

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("RowView: reading it into an array always copies")
        out = self[:, :]
        return out if dtype is None else out.astype(dtype, copy=False)


def row_view(array, rows=None, *, columns=None, dtype=np.float32) -> RowView:
    """Rows (and columns) of a 2-D array without copying them: see :class:`RowView`."""
    return RowView(array, rows, columns=columns, dtype=dtype)


def as_targets(Y):
    """``Y`` as an array the block-wise solvers read column blocks from, without a copy.

    An ``np.ndarray`` (a memory map included) or a :class:`RowView` is returned as it is; anything
    else goes through ``np.asarray``.
    """
    if isinstance(Y, (np.ndarray, RowView)):
        return Y
    return np.asarray(Y)


def _indices(sel, n: int, name: str) -> np.ndarray:
    """``sel`` (None, slice, bool mask or integer indices) as int64 indices into ``range(n)``."""
    if sel is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(sel, slice):
        return np.arange(n, dtype=np.int64)[sel]
    sel = np.asarray(sel)
    if sel.dtype == bool:
        if sel.shape != (n,):
            raise InputError(f"RowView: {name}: expected a ({n},) mask, got shape {sel.shape}")
        return np.flatnonzero(sel).astype(np.int64)
    if sel.ndim != 1 or not np.issubdtype(sel.dtype, np.integer):
        raise InputError(
            f"RowView: {name}: expected a boolean mask, a 1-D integer index array or a slice, "
            f"got dtype {sel.dtype} and shape {sel.shape}"
        )
    if sel.size and (sel.min() < -n or sel.max() >= n):
        raise InputError(f"RowView: {name}: indices outside 0..{n - 1}")
    return np.where(sel < 0, sel + n, sel).astype(np.int64)


def _take(idx: np.ndarray, key):
    """``idx[key]`` for a view's index array; an int key gives an int."""
    out = idx[key]
    return int(out) if np.ndim(out) == 0 else out


def _as_run(idx: np.ndarray):
    """A slice equal to ``idx`` when it is a contiguous ascending run, else None."""
    if idx.size == 0:
        return slice(0, 0)
    if idx[-1] - idx[0] == idx.size - 1 and (idx.size == 1 or np.all(np.diff(idx) == 1)):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return None
