"""Brain RDMs (or response patterns) of any stimulus set: the folder format, its reader and writer,
and importers for the two public fMRI data sets of the 92-object image set.

The format (``docs/datasets.md`` has the full specification) is written with numpy and a text
editor::

    my_dataset/
      dataset.json          {"name": ..., "source": ..., "dissimilarity": ..., "subjects": [...]}
      stimuli.tsv           stimulus  label  [image]  [category]  [caption_1  caption_2 …]
      images/…              one image per stimulus (path in the ``image`` column), optional
      rdms/<ROI>.npy        (n_subjects, n_stimuli, n_stimuli) dissimilarities, or
      responses/<ROI>.npy   (n_subjects, n_stimuli, n_units) patterns (RDMs computed here)
      models/<name>.npy     optional model RDMs, (n_stimuli, n_stimuli)

Rows of ``stimuli.tsv`` are in RDM order. :func:`load_rdm_dataset` checks everything (shapes,
symmetry, zero diagonals, finite values, an image per stimulus where the ``image`` column is
given) and names the file and the
problem when something is wrong; :func:`write_rdm_dataset` writes a folder atomically (into a
temporary folder, checked by :func:`load_rdm_dataset`, then renamed), so a failed write leaves
nothing behind.

Memory: ``rdms/<ROI>.npy`` and ``models/<name>.npy`` are memory-mapped, never read whole. They
are checked in tiles of ``_TILE × _TILE`` stimuli (a tile and its mirror tile, as float64), and
the analyses take them as condensed upper triangles built tile by tile
(:meth:`RdmDataset.condensed`: 8 bytes per pair and subject, half an n × n float64 matrix); the
square, symmetrised float64 stacks (:class:`RdmStack`) are built only when asked for. A data set
of 2 subjects × 10,000 stimuli (800 MB of float32) is checked in a few tens of MB and gives its
condensed RDMs in 800 MB.

>>> ds = load_rdm_dataset("datasets/cichy92")
>>> ds.rdms["IT"].shape, ds.stimuli["label"][0]
((15, 92, 92), 'hand_1')
"""

from __future__ import annotations

import contextlib
import csv
import json
import mmap
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist, squareform

from brainalign.datasets.base import Stimuli
from brainalign.errors import DataFormatError, InputError
from brainalign.utils.io import as_created
from brainalign.utils.validation import did_you_mean

#: version of the folder format written by :func:`write_rdm_dataset`
FORMAT_VERSION = 1
REQUIRED_COLUMNS = ("stimulus", "label")
#: optional columns that, when present, every stimulus must fill (no image-less rows among
#: images: a vision model would score a stimulus without its image)
FILLED_IF_GIVEN = ("image", "category")
_CAPTION_COLUMN = re.compile(r"^caption_(\d+)$")
_ROI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
#: relative tolerance of the symmetry and zero-diagonal checks (float32 files round at ~1e-7)
SYMMETRY_TOLERANCE = 1e-5
#: response metrics accepted for ``responses/<ROI>.npy`` (those of
#: :func:`scipy.spatial.distance.pdist` and :func:`brainalign.rsa.compute_rdm`)
RESPONSE_METRICS = ("correlation", "cosine", "euclidean")
#: stimuli per side of the tiles RDM files are checked and condensed in (two float64 tiles of
#: 1024 × 1024 = 16 MiB at a time, whatever the number of stimuli)
_TILE = 1024


# ------------------------------------------------------------------------------ RDM stacks
def _n_from_pairs(n_pairs: int) -> int:
    """``n`` with ``n (n - 1) / 2 == n_pairs`` (the caller checked that there is one)."""
    return int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))


def _pair_offset(i: int, n: int) -> int:
    """Position of pair ``(i, i + 1)`` in the condensed upper triangle of ``n`` stimuli."""
    return i * n - i * (i + 1) // 2


def _tile_pairs(n: int, tile: int = _TILE):
    """``(rows, cols)`` row and column slices of the tiles on and above the diagonal."""
    starts = range(0, n, tile)
    for i0 in starts:
        for j0 in starts:
            if j0 >= i0:
                yield slice(i0, min(i0 + tile, n)), slice(j0, min(j0 + tile, n))


def _sym_tile(R, rows: slice, cols: slice) -> np.ndarray:
    """``(d_ij + d_ji) / 2`` over the tile ``rows × cols`` of one square RDM ``R``, as float64."""
    a = np.asarray(R[rows, cols], dtype=np.float64)
    b = np.asarray(R[cols, rows], dtype=np.float64).T
    return (a + b) / 2


class RdmStack:
    """One ROI's RDMs, ``(n_subjects, n_stimuli, n_stimuli)``, read from their file on demand.

    The values are those the analyses use: float64, symmetrised (``(d_ij + d_ji) / 2``) with a
    zero diagonal. Nothing of size n × n is held: :meth:`condensed` builds upper triangles tile
    by tile from the (memory-mapped) file; ``np.asarray(stack)``, ``stack[s]`` and
    ``stack.mean(0)`` build square float64 matrices (8 n² bytes each) only when asked for.

    Parameters
    ----------
    square : array (n_subjects, n, n), optional
        The RDMs as stored (any real dtype, usually a read-only memory map), already checked.
    condensed : array (n_subjects, n_pairs) float64, optional
        Or the condensed RDMs (e.g. computed from response patterns).
    """

    ndim = 3
    dtype = np.dtype(np.float64)

    def __init__(self, square=None, condensed=None):
        if (square is None) == (condensed is None):
            raise InputError("RdmStack: give either square or condensed RDMs")
        self._square = square
        self._condensed = condensed
        if square is not None:
            self.shape = tuple(int(v) for v in square.shape)
        else:
            n = _n_from_pairs(condensed.shape[1])
            self.shape = (int(condensed.shape[0]), n, n)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def n_stimuli(self) -> int:
        return self.shape[1]

    def condensed_subject(self, s: int, out: np.ndarray | None = None) -> np.ndarray:
        """Subject ``s``'s RDM as a condensed upper triangle ``(n_pairs,)`` float64."""
        n = self.n_stimuli
        if out is None:
            out = np.empty(n * (n - 1) // 2)
        if self._condensed is not None:
            out[:] = self._condensed[s]
            _drop_pages(self._condensed)
            return out
        R = self._square[s]
        for rows, cols in _tile_pairs(n):
            sym = _sym_tile(R, rows, cols)
            for i in range(rows.start, min(rows.stop, cols.stop - 1)):
                first = max(cols.start, i + 1)  # columns right of the diagonal in this tile
                at = _pair_offset(i, n) + first - i - 1
                out[at : at + cols.stop - first] = sym[i - rows.start, first - cols.start :]
        _drop_pages(R)  # read once: the file's pages need not stay in this process
        return out

    def condensed(self, subjects=None) -> np.ndarray:
        """Condensed upper triangles ``(n_subjects, n_pairs)`` float64 (8 bytes per pair and
        subject), built tile by tile; ``subjects`` selects some (default all)."""
        subjects = range(len(self)) if subjects is None else list(subjects)
        n = self.n_stimuli
        out = np.empty((len(subjects), n * (n - 1) // 2))
        for row, s in enumerate(subjects):
            self.condensed_subject(s, out[row])
        return out

    def mean_condensed(self) -> np.ndarray:
        """The mean over subjects, condensed ``(n_pairs,)`` (two condensed rows in memory)."""
        acc = self.condensed_subject(0).copy()
        row = np.empty_like(acc)
        for s in range(1, len(self)):
            acc += self.condensed_subject(s, row)
        return acc / len(self)

    def __getitem__(self, key):
        if isinstance(key, int | np.integer):
            return squareform(self.condensed_subject(int(key) % len(self)), checks=False)
        return np.asarray(self)[key]

    def mean(self, axis=None, **kwargs):
        """As ``np.mean`` of the square stack; ``axis=0`` (the group RDM) without building it."""
        if axis == 0 and not kwargs:
            return squareform(self.mean_condensed(), checks=False)
        return np.asarray(self).mean(axis=axis, **kwargs)

    def __array__(self, dtype=None, copy=None):
        out = np.stack(
            [squareform(self.condensed_subject(s), checks=False) for s in range(len(self))]
        )
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"RdmStack(shape={self.shape}, float64, read on demand)"


class ModelRdm(RdmStack):
    """A model RDM that came with the data, ``(n_stimuli, n_stimuli)``, read on demand (as
    :class:`RdmStack` of one subject: ``square`` ``(1, n, n)`` or ``condensed``
    ``(1, n_pairs)``); :meth:`condensed` gives ``(n_pairs,)``."""

    ndim = 2

    def __init__(self, square=None, condensed=None):
        super().__init__(square=square, condensed=condensed)
        self.shape = self.shape[1:]

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def n_stimuli(self) -> int:
        return self.shape[0]

    def condensed(self) -> np.ndarray:  # type: ignore[override]
        return self.condensed_subject(0)

    def __getitem__(self, key):
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        out = squareform(self.condensed_subject(0), checks=False)
        return out if dtype is None else out.astype(dtype, copy=False)

    def mean(self, axis=None, **kwargs):
        return np.asarray(self).mean(axis=axis, **kwargs)

    def __repr__(self) -> str:
        return f"ModelRdm(shape={self.shape}, float64, read on demand)"


@dataclass
class RdmDataset:
    """A data set of brain RDMs over one stimulus set.

    Attributes
    ----------
    root : Path
        The folder it was read from.
    name : str
        ``dataset.json``'s ``name``.
    stimuli : pandas.DataFrame
        ``stimuli.tsv`` in file (= RDM) order; columns ``stimulus``, ``image``, ``label`` and the
        optional ``category``, ``caption_<k>`` and any others, all as strings.
    rdms : dict of str -> RdmStack (n_subjects, n_stimuli, n_stimuli) float64
        Brain RDMs per ROI, in file name order (``responses/`` ROIs turned into RDMs), read
        from their memory-mapped files on demand (``np.asarray`` gives the square array).
    subjects : dict of str -> list of str
        Subject names per ROI (``dataset.json``'s ``subjects``, else ``sub-01`` …).
    models : dict of str -> ModelRdm (n_stimuli, n_stimuli) float64
        Model RDMs that came with the data (``models/<name>.npy``), read on demand
        (``.condensed()`` gives the upper triangle).
    meta : dict
        ``dataset.json`` as read.
    origin : dict of str -> str
        Per ROI: ``"rdms"`` or ``"responses:<metric>"``.
    """

    root: Path
    name: str
    stimuli: object
    rdms: dict[str, RdmStack]
    subjects: dict[str, list[str]]
    models: dict[str, ModelRdm] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def n_stimuli(self) -> int:
        return len(self.stimuli)

    @property
    def rois(self) -> list[str]:
        return list(self.rdms)

    @property
    def labels(self) -> list[str]:
        return list(self.stimuli["label"])

    @property
    def stimulus_ids(self) -> list[str]:
        return list(self.stimuli["stimulus"])

    @property
    def categories(self) -> list[str] | None:
        """The ``category`` column, or None when the table has none."""
        return list(self.stimuli["category"]) if "category" in self.stimuli else None

    @property
    def captions(self) -> list[list[str]] | None:
        """Per stimulus its non-empty ``caption_<k>`` cells (k ascending), or None without any."""
        cols = caption_columns(self.stimuli.columns)
        if not cols:
            return None
        return [[c for c in row if c] for row in self.stimuli[cols].itertuples(index=False)]

    @property
    def has_images(self) -> bool:
        """Whether ``stimuli.tsv`` names an image per stimulus (label-only data sets do not)."""
        return "image" in self.stimuli.columns

    def image_paths(self) -> list[Path]:
        if not self.has_images:
            raise InputError(
                f"{self.root / 'stimuli.tsv'}: no image column; vision models need an image per "
                "stimulus (add an image column and images/, or use caption and label models)"
            )
        return [self.root / p for p in self.stimuli["image"]]

    def read_images(self, indices: Sequence[int] | None = None, size: int | None = None):
        """Images as ``uint8 (n, H, W, 3)`` RGB, in stimulus order (or ``indices``).

        With ``size`` each image's shorter side is resized to ``size`` (bilinear) and the centre
        ``size × size`` square kept; without it, every image must have the same size.
        """
        from PIL import Image

        paths = self.image_paths()
        idx = range(len(paths)) if indices is None else [int(i) for i in indices]
        out = []
        for i in idx:
            try:
                with Image.open(paths[i]) as im:
                    im = im.convert("RGB")
                    if size is not None:
                        im = _square(im, size)
                    out.append(np.asarray(im, dtype=np.uint8))
            except OSError as exc:
                raise DataFormatError(f"{paths[i]}: cannot read the image ({exc})") from None
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise DataFormatError(
                f"{self.root / 'images'}: images of different sizes {sorted(shapes)[:3]}; "
                "pass size= to read them resized to one square size"
            )
        return np.stack(out) if out else np.zeros((0, 1, 1, 3), np.uint8)

    def condensed(self, roi: str) -> np.ndarray:
        """The ROI's RDMs as condensed upper triangles, ``(n_subjects, n_pairs)`` float64,
        built tile by tile from the file (8 bytes per pair and subject)."""
        return self._roi(roi).condensed()

    def group_condensed(self, roi: str) -> np.ndarray:
        """The mean RDM of the ROI's subjects, condensed ``(n_pairs,)`` (two rows in memory)."""
        return self._roi(roi).mean_condensed()

    def group_rdm(self, roi: str) -> np.ndarray:
        """The mean RDM of the ROI's subjects, ``(n_stimuli, n_stimuli)``."""
        return self._roi(roi).mean(axis=0)

    def category_order(self) -> np.ndarray:
        """Stimulus positions sorted by category (categories in order of first appearance),
        file order within a category; the identity without a ``category`` column."""
        cats = self.categories
        if cats is None:
            return np.arange(self.n_stimuli)
        first = {c: i for i, c in reversed(list(enumerate(cats)))}
        return np.array(sorted(range(len(cats)), key=lambda i: (first[cats[i]], i)))

    def to_stimuli(self, captions: Sequence[Sequence[str]] | None = None):
        """This data set as :class:`~brainalign.datasets.Stimuli` (what the feature spaces take).

        Image ids are the stimulus positions ``0 … n-1``; ``categories`` is the one-hot matrix of
        the ``category`` column (columns in order of first appearance); ``metadata`` holds the
        labels, stimulus ids and the optional ``animate`` column.

        Parameters
        ----------
        captions : list of list of str, optional
            Captions per stimulus (e.g. from label templates,
            :func:`brainalign.features.label_captions`); default the table's ``caption_<k>``.
        """
        caps = captions if captions is not None else self.captions
        if caps is None:
            raise InputError(
                f"{self.root / 'stimuli.tsv'}: no caption_<k> columns; give captions (e.g. "
                "brainalign.features.label_captions(labels)) or add caption columns"
            )
        cats = self.categories
        onehot, names = None, []
        if cats is not None:
            names = list(dict.fromkeys(cats))
            onehot = np.zeros((len(cats), len(names)), np.uint8)
            onehot[np.arange(len(cats)), [names.index(c) for c in cats]] = 1
        meta = {"labels": self.labels, "stimulus_ids": self.stimulus_ids, "dataset": self.name}
        if "animate" in self.stimuli:
            meta["animate"] = list(self.stimuli["animate"])
        return Stimuli(
            image_ids=np.arange(self.n_stimuli),
            captions=[list(c) for c in caps],
            categories=onehot,
            category_names=names,
            images=(lambda ids: self.read_images(ids)) if self.has_images else None,
            metadata=meta,
        )

    def _roi(self, roi: str) -> RdmStack:
        if roi not in self.rdms:
            raise InputError(
                f"roi: {roi!r} is not an ROI of {self.root}; it has {', '.join(self.rdms)}"
            )
        return self.rdms[roi]


def _square(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def caption_columns(columns) -> list[str]:
    """The ``caption_<k>`` columns of a stimulus table, by ``k``."""
    found = [(int(m.group(1)), c) for c in columns if (m := _CAPTION_COLUMN.match(str(c)))]
    return [c for _, c in sorted(found)]


# ---------------------------------------------------------------------------------- reading
def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataFormatError(
            f"{path}: missing; every data set folder needs a dataset.json with at least "
            '{"name": "..."} (see docs/datasets.md)'
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DataFormatError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    name = meta.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DataFormatError(f'{path}: needs a non-empty "name" (e.g. "my_dataset")')
    return meta


def read_stimulus_table(root: str | os.PathLike, check_images: bool = True):
    """``root/stimuli.tsv`` as a DataFrame of strings, checked (columns, ids, images, captions)."""
    import pandas as pd

    root = Path(root)
    path = root / "stimuli.tsv"
    if not path.is_file():
        raise DataFormatError(
            f"{path}: missing; list the stimuli in RDM order, tab-separated, with columns "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    try:
        table = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataFormatError(f"{path}: cannot read it as a tab-separated table ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {missing}; found {list(table.columns)} (the file must be "
            "tab-separated with a header row)"
        )
    if len(table) < 3:
        raise DataFormatError(f"{path}: {len(table)} stimuli; an RDM needs at least 3")
    table = table.apply(lambda col: col.str.strip())
    required = list(REQUIRED_COLUMNS) + [c for c in FILLED_IF_GIVEN if c in table.columns]
    for col in required:
        empty = np.flatnonzero(table[col].to_numpy() == "")
        if empty.size:
            raise DataFormatError(
                f"{path}: empty {col!r} in row(s) {(empty + 2)[:10].tolist()} (line numbers); every "
                f"stimulus needs a {col}"
            )
    dup = table["stimulus"][table["stimulus"].duplicated()].tolist()
    if dup:
        raise DataFormatError(f"{path}: duplicate stimulus id(s) {dup[:10]}; ids must be unique")
    caps = caption_columns(table.columns)
    if caps:
        none = np.flatnonzero((table[caps].to_numpy() == "").all(axis=1))
        if none.size:
            raise DataFormatError(
                f"{path}: row(s) {(none + 2)[:10].tolist()} have no caption in {caps}; give every "
                "stimulus at least one caption, or drop the caption columns to use label templates"
            )
    if "animate" in table.columns:
        bad = sorted(set(table["animate"]) - {"0", "1"})
        if bad:
            raise DataFormatError(f"{path}: column 'animate' must hold 0 or 1, found {bad[:5]}")
    resolved = root.resolve()
    for i, rel in enumerate(table["image"] if "image" in table.columns else ()):
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts:
            raise DataFormatError(
                f"{path}: row {i + 2}: image path {rel!r} must be relative to the folder and "
                "stay inside it (e.g. images/obj01.png)"
            )
        if check_images and not (resolved / p).is_file():
            raise DataFormatError(
                f"{path}: row {i + 2} (stimulus {table['stimulus'][i]!r}): image {rel!r} not "
                f"found in {root}; every stimulus needs its image"
            )
    return table


def _map_npy(path: Path) -> np.ndarray:
    """A read-only memory map of a ``.npy`` (its stored dtype) whose pages
    :func:`_drop_pages` can hand back; ``np.load(mmap_mode="r")`` for header versions other
    than 1.0 and 2.0 and for empty arrays."""
    from numpy.lib import format as npy

    with open(path, "rb") as f:
        version = npy.read_magic(f)
        read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
        if read is None:
            return np.load(path, allow_pickle=False, mmap_mode="r")
        shape, fortran, dtype = read(f)
        if dtype.hasobject:
            raise ValueError("it holds Python objects")
        offset = f.tell()
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        size = os.fstat(f.fileno()).st_size
        if offset + nbytes > size:
            raise DataFormatError(
                f"{path}: truncated: {size} bytes, its header describes {offset + nbytes} "
                f"({shape} {dtype}); write it again"
            )
        if nbytes == 0:
            return np.load(path, allow_pickle=False, mmap_mode="r")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.ndarray(shape, dtype, buffer=mm, offset=offset, order="F" if fortran else "C")


def _drop_pages(arr) -> None:
    """Hand the pages of ``arr``'s file mapping back to the kernel (they stay in the page
    cache): a file read once through the map no longer counts as this process's memory."""
    base = arr
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)


def _load_npy(path: Path, mapped: bool = False) -> np.ndarray:
    """A numeric ``.npy`` as float64 in memory, or (``mapped``) as a read-only memory map of
    its stored dtype (nothing read until used)."""
    try:
        arr = _map_npy(path) if mapped else np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataFormatError(
            f"{path}: cannot read it without unpickling ({exc}); save a plain numeric array "
            "with numpy.save"
        ) from None
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable .npy file ({exc})") from None
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataFormatError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DataFormatError(f"{path}: expected real dissimilarities, got dtype {arr.dtype}")
    return arr if mapped else np.asarray(arr, dtype=np.float64)


def check_rdm_stack(
    rdms: np.ndarray, n_stimuli: int, where: str, subjects: Sequence[str] | None = None
) -> np.ndarray:
    """Check ``(n_subjects, n, n)`` RDMs: shape, size, finite, symmetric, zero diagonal, no
    negative dissimilarity, no constant RDM.

    ``where`` names the source in the messages (a file), ``subjects`` the subjects (default
    their positions). Returns float64 RDMs, exactly symmetric (the mean of the matrix and its
    transpose). :func:`load_rdm_dataset` runs the same checks tile by tile on memory maps
    (:func:`_check_square_stack`) and never builds this array.
    """
    R = np.asarray(rdms)
    _check_square_stack(R, n_stimuli, where, subjects)
    return np.asarray(RdmStack(square=R))


def _check_shape(R, n_stimuli: int, where: str) -> None:
    if R.ndim == 2 and R.shape[0] == R.shape[1]:
        raise DataFormatError(
            f"{where}: a single {R.shape[0]}×{R.shape[1]} matrix; expected (n_subjects, "
            f"n_stimuli, n_stimuli): save it as rdm[None] for one subject"
        )
    if R.ndim != 3:
        raise DataFormatError(
            f"{where}: expected (n_subjects, n_stimuli, n_stimuli), got shape {R.shape}"
        )
    if R.shape[1] != R.shape[2]:
        raise DataFormatError(
            f"{where}: RDMs are not square: shape {R.shape} (each subject's RDM must be "
            "n_stimuli × n_stimuli)"
        )
    if R.shape[1] != n_stimuli:
        raise DataFormatError(
            f"{where}: RDMs are {R.shape[1]}×{R.shape[2]} but stimuli.tsv lists {n_stimuli} "
            "stimuli; the table must have one row per RDM row, in the same order"
        )
    if R.shape[0] < 1:
        raise DataFormatError(f"{where}: holds no subject")


class _TileStats:
    """What the checks need from one subject's RDM, gathered tile by tile: non-finite count
    and first place, largest |d|, largest asymmetry, largest |diagonal|, smallest off-diagonal
    value, and the range of the symmetrised upper triangle."""

    def __init__(self):
        self.n_bad, self.first_bad = 0, None
        self.max_abs = 0.0
        self.asym = (-1.0, None)
        self.diag = (-1.0, None)
        self.low = (np.inf, None)
        self.lo, self.hi = np.inf, -np.inf

    def add(self, a: np.ndarray, b: np.ndarray, rows: slice, cols: slice) -> None:
        """``a`` = d[rows, cols], ``b`` = d[cols, rows]ᵀ (both float64, shape |rows| × |cols|)."""
        bad = ~(np.isfinite(a) & np.isfinite(b))
        if bad.any():
            self.n_bad += int((~np.isfinite(a)).sum())
            if rows != cols:
                self.n_bad += int((~np.isfinite(b)).sum())
            if self.first_bad is None:
                i, j = np.argwhere(bad)[0]
                bad_a = not np.isfinite(a[i, j])
                i, j = int(i) + rows.start, int(j) + cols.start
                self.first_bad = (i, j) if bad_a else (j, i)
            return
        self.max_abs = max(self.max_abs, float(np.abs(a).max()), float(np.abs(b).max()))
        self._keep("asym", np.abs(a - b), rows.start, cols.start, largest=True)
        if rows == cols:
            diag = np.abs(np.diagonal(a))
            k = int(diag.argmax())
            if diag[k] > self.diag[0]:
                self.diag = (float(diag[k]), (rows.start + k, rows.start + k))
            off = ~np.eye(*a.shape, dtype=bool)
            a, b = np.where(off, a, np.inf), np.where(off, b, np.inf)
            upper = np.triu(np.ones(a.shape, bool), k=1)
        else:
            upper = np.ones(a.shape, bool)
        self._keep("low", a, rows.start, cols.start, largest=False)
        self._keep("low", b.T, cols.start, rows.start, largest=False)
        if upper.any():
            sym = ((a + b) / 2)[upper]
            self.lo, self.hi = min(self.lo, float(sym.min())), max(self.hi, float(sym.max()))

    def _keep(self, name: str, values: np.ndarray, i0: int, j0: int, largest: bool) -> None:
        """Keep the largest (smallest) of ``values`` (a tile at ``(i0, j0)``) and its place."""
        k = int(values.argmax() if largest else values.argmin())
        i, j = np.unravel_index(k, values.shape)
        v = float(values[i, j])
        if (v > getattr(self, name)[0]) if largest else (v < getattr(self, name)[0]):
            setattr(self, name, (v, (int(i) + i0, int(j) + j0)))


def _check_square_stack(R, n_stimuli: int, where: str, subjects=None, roi=None) -> None:
    """Check square RDMs ``R`` (n_subjects, n, n), any real dtype (a memory map is read tile
    by tile: two float64 tiles in memory); raise :class:`DataFormatError` naming ``where``."""
    _check_shape(R, n_stimuli, where)
    names = list(subjects) if subjects is not None else [str(s) for s in range(R.shape[0])]
    stats = []
    for s in range(R.shape[0]):
        st = _TileStats()
        for rows, cols in _tile_pairs(n_stimuli):
            a = np.asarray(R[s, rows, cols], dtype=np.float64)
            b = np.asarray(R[s, cols, rows], dtype=np.float64).T
            st.add(a, b, rows, cols)
        stats.append(st)
        _drop_pages(R)  # read once: the file's pages need not stay in this process
    _raise_first_problem(R, stats, names, where, roi)


def _raise_first_problem(R, stats, names, where, roi) -> None:
    """The checks' errors, in order: non-finite, asymmetric, diagonal, negative, constant."""
    n_bad = sum(st.n_bad for st in stats)
    if n_bad:
        s = next(k for k, st in enumerate(stats) if st.n_bad)
        i, j = stats[s].first_bad
        raise DataFormatError(
            f"{where}: {n_bad} NaN or infinite value(s), first at subject {s}, stimuli "
            f"({i}, {j}); fill or drop the missing conditions before saving"
        )
    scale = max(1.0, max(st.max_abs for st in stats))
    tol = SYMMETRY_TOLERANCE * scale
    s = int(np.argmax([st.asym[0] for st in stats]))
    if stats[s].asym[0] > tol:
        i, j = stats[s].asym[1]
        raise DataFormatError(
            f"{where}: RDM of subject {s} is not symmetric: d[{i},{j}] = {R[s, i, j]:.6g} but "
            f"d[{j},{i}] = {R[s, j, i]:.6g}; an RDM holds one dissimilarity per pair"
        )
    s = int(np.argmax([st.diag[0] for st in stats]))
    if stats[s].diag[0] > tol:
        i = stats[s].diag[1][0]
        raise DataFormatError(
            f"{where}: RDM of subject {s} has a non-zero diagonal (d[{i},{i}] = "
            f"{R[s, i, i]:.6g}); a stimulus's dissimilarity with itself must be 0"
        )
    s = int(np.argmin([st.low[0] for st in stats]))
    if stats[s].low[0] < -tol:
        i, j = stats[s].low[1]
        raise DataFormatError(
            f"{where}: RDM of subject {s} ({names[s]}) holds negative dissimilarities "
            f"(d[{i},{j}] = {stats[s].low[0]:.6g}); dissimilarities are >= 0: if these are "
            "similarities or correlations, save a dissimilarity such as 1 - r instead"
        )
    for s, st in enumerate(stats):
        if st.hi - st.lo <= 0:
            at = f" of ROI {roi!r}" if roi else ""
            raise DataFormatError(
                f"{where}: RDM of subject {s} ({names[s]}){at} is constant (every "
                f"dissimilarity = {st.lo:.6g}); it carries no information and would score 0 "
                "with a zero-width CI against every model: fix that subject's RDM or drop it"
            )


def mean_patterns(X: np.ndarray, subject: int) -> np.ndarray:
    """One subject's response patterns ``(n_stimuli, n_units)`` float64 of a
    ``responses/<ROI>.npy`` array: as stored, or the mean over its repetitions (4-D files)."""
    x = np.asarray(X[subject], dtype=np.float64)
    return x.mean(axis=0) if X.ndim == 4 else x


def _responses_to_rdms(X: np.ndarray, n_stimuli: int, metric: str, where: str) -> np.ndarray:
    """Each subject's condensed RDM ``(n_subjects, n_pairs)`` float64 of response patterns
    ``X`` ``(n_subjects, n_stimuli, n_units)`` — or ``(n_subjects, n_repetitions, n_stimuli,
    n_units)``, the RDM then of the mean over repetitions — by
    :func:`scipy.spatial.distance.pdist` (whose metrics :func:`brainalign.rsa.compute_rdm`
    equals)."""
    if X.ndim not in (3, 4):
        raise DataFormatError(
            f"{where}: expected (n_subjects, n_stimuli, n_units) response patterns, or "
            f"(n_subjects, n_repetitions, n_stimuli, n_units), got shape {X.shape}"
        )
    if X.ndim == 4 and X.shape[1] < 2:
        raise DataFormatError(
            f"{where}: {X.shape[1]} repetition (axis 1); a 4-D file holds >= 2 repetitions, "
            "otherwise save (n_subjects, n_stimuli, n_units)"
        )
    axis = X.ndim - 2
    if X.shape[axis] != n_stimuli:
        raise DataFormatError(
            f"{where}: {X.shape[axis]} stimuli (axis {axis}) but stimuli.tsv lists {n_stimuli}; "
            "the table must have one row per pattern row, in the same order"
        )
    if X.shape[-1] < 2:
        raise DataFormatError(f"{where}: {X.shape[-1]} unit(s) per pattern; need at least 2")
    bad = ~np.isfinite(X)
    if bad.any():
        first = [int(v) for v in np.argwhere(bad)[0]]
        raise DataFormatError(
            f"{where}: {int(bad.sum())} NaN or infinite value(s), first at subject {first[0]}, "
            f"stimulus {first[-2]}, unit {first[-1]}; drop those units before saving"
        )
    out = []
    for s in range(X.shape[0]):  # one subject's patterns in memory at a time
        x = mean_patterns(X, s)
        if metric != "euclidean":
            # a pattern without variance (correlation) or length (cosine) has no such distance
            spread = np.ptp(x, axis=1) if metric == "correlation" else np.abs(x).max(axis=1)
            flat = np.flatnonzero(spread == 0)
            if flat.size:
                raise DataFormatError(
                    f"{where}: subject {s}: stimuli {flat[:10].tolist()} ({flat.size} in all) "
                    f"have constant patterns, so their {metric} distance to other stimuli is "
                    "undefined; drop those stimuli or use metric = 'euclidean'"
                )
        out.append(pdist(x, metric=metric))
    return np.stack(out)


def _check_constant_rows(cond: np.ndarray, where: str, names, roi) -> None:
    """A constant RDM (computed from responses) is refused, naming the subject and ROI."""
    for s, row in enumerate(cond):
        if np.ptp(row) == 0:
            raise DataFormatError(
                f"{where}: RDM of subject {s} ({names[s]}) of ROI {roi!r} is constant (every "
                f"dissimilarity = {row[0]:.6g}); it carries no information and would score 0 "
                "with a zero-width CI against every model: fix that subject's patterns or drop it"
            )


def _load_model(path: Path, n: int) -> ModelRdm:
    """``models/<name>.npy``: square ``(n, n)`` or condensed ``(n_pairs,)``, memory-mapped and
    checked in blocks (finite, symmetric, zero diagonal, >= 0, not constant)."""
    arr = _load_npy(path, mapped=True)
    if arr.ndim == 1:
        m = n * (n - 1) // 2
        if arr.shape[0] != m:
            raise DataFormatError(
                f"{path}: a condensed model RDM over {n} stimuli has {m} entries, got "
                f"{arr.shape[0]}"
            )
        _check_condensed(arr, path)
        return ModelRdm(condensed=arr[None])
    if arr.ndim != 2:
        raise DataFormatError(
            f"{path}: a model RDM is (n_stimuli, n_stimuli) or condensed, got shape {arr.shape}"
        )
    try:
        _check_square_stack(arr[None], n, str(path))
    except DataFormatError as exc:
        if "is constant" not in str(exc):
            raise
        raise DataFormatError(
            f"{path}: constant model RDM; it cannot be compared with data"
        ) from None
    return ModelRdm(square=arr[None])


def _check_condensed(arr: np.ndarray, path: Path, block: int = 1 << 22) -> None:
    """Finite, >= 0 and not constant, read ``block`` entries at a time."""
    lo, hi, max_abs, n_bad = np.inf, -np.inf, 0.0, 0
    for start in range(0, arr.shape[0], block):
        v = np.asarray(arr[start : start + block], dtype=np.float64)
        finite = np.isfinite(v)
        n_bad += int((~finite).sum())
        if n_bad:
            continue
        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
        max_abs = max(max_abs, float(np.abs(v).max()))
    _drop_pages(arr)  # read once: the file's pages need not stay in this process
    if n_bad:
        raise DataFormatError(
            f"{path}: {n_bad} NaN or infinite value(s); a model RDM needs a finite "
            "dissimilarity for every pair"
        )
    if lo < -SYMMETRY_TOLERANCE * max(1.0, max_abs):
        raise DataFormatError(
            f"{path}: negative dissimilarities (down to {lo:.6g}); dissimilarities are >= 0: if "
            "these are similarities or correlations, save a dissimilarity such as 1 - r instead"
        )
    if hi - lo <= 0:
        raise DataFormatError(f"{path}: constant model RDM; it cannot be compared with data")


def _subject_names(meta: dict, roi: str, n: int, path: Path) -> list[str]:
    subs = meta.get("subjects")
    if isinstance(subs, Mapping):
        subs = subs.get(roi)
    if subs is None:
        return [f"sub-{i + 1:02d}" for i in range(n)]
    if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
        raise DataFormatError(
            f'{path}: "subjects" must be a list of names (or a mapping ROI -> list), got {subs!r}'
        )
    if len(subs) != n:
        raise DataFormatError(
            f'{path}: "subjects" names {len(subs)} subject(s) for ROI {roi!r}, whose array holds '
            f"{n}; give one name per subject (axis 0)"
        )
    return list(subs)


def load_rdm_dataset(
    root: str | os.PathLike,
    rois: Sequence[str] | None = None,
    *,
    metric: str | None = None,
    check_images: bool = True,
) -> RdmDataset:
    """Read and check a data set folder in the RDM format (``docs/datasets.md``).

    Parameters
    ----------
    root : path
        The folder (``dataset.json``, ``stimuli.tsv``, ``images/``, ``rdms/`` or
        ``responses/``, optional ``models/``).
    rois : list of str, optional
        ROIs to read (default all); an unknown name is an error.
    metric : {"correlation", "cosine", "euclidean"}, optional
        Dissimilarity for ``responses/<ROI>.npy`` (default ``dataset.json``'s ``metric``, else
        ``"correlation"``: 1 − Pearson r).
    check_images : bool
        Check that every stimulus's image file exists.

    Returns
    -------
    RdmDataset

    Raises
    ------
    DataFormatError
        Naming the file and the problem: a missing file or column, a non-square, asymmetric or
        mis-sized RDM, NaNs, a non-zero diagonal, a missing image, an unknown ROI.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(
            f"{root}: not a folder; give a data set folder in the RDM format (docs/datasets.md) "
            "or make one with `brainalign rdms import`"
        )
    meta = _read_json(root / "dataset.json")
    table = read_stimulus_table(root, check_images=check_images)
    n = len(table)
    metric = metric or meta.get("metric") or "correlation"
    if metric not in RESPONSE_METRICS:
        raise DataFormatError(
            f"{root / 'dataset.json'}: metric {metric!r} is not one of {RESPONSE_METRICS}"
        )
    files: dict[str, tuple[str, Path]] = {}
    for sub in ("rdms", "responses"):
        for p in sorted((root / sub).glob("*.npy")):
            if not _ROI_NAME.match(p.stem):
                raise DataFormatError(
                    f"{p}: ROI names use letters, digits and _ . + - (got {p.stem!r})"
                )
            if p.stem in files:
                raise DataFormatError(
                    f"{p}: ROI {p.stem!r} is given twice ({files[p.stem][1]} too); keep one of "
                    "rdms/ and responses/ per ROI"
                )
            files[p.stem] = (sub, p)
    if not files:
        raise DataFormatError(
            f"{root}: no rdms/<ROI>.npy or responses/<ROI>.npy; a data set needs at least one ROI"
        )
    wanted = list(files) if rois is None else list(rois)
    unknown = [r for r in wanted if r not in files]
    if unknown:
        raise DataFormatError(
            f"{root}: unknown ROI name(s) {unknown}{did_you_mean(unknown, files)}; this data set "
            f"has {', '.join(files)}"
        )
    rdms, subjects, origin = {}, {}, {}
    for roi in wanted:
        sub, path = files[roi]
        if sub == "rdms":
            # memory-mapped and checked tile by tile: never an n × n float64 copy (issue 23)
            arr = _load_npy(path, mapped=True)
            _check_shape(arr, n, str(path))
            subjects[roi] = _subject_names(meta, roi, arr.shape[0], root / "dataset.json")
            _check_square_stack(arr, n, str(path), subjects[roi], roi)
            rdms[roi] = RdmStack(square=arr)
            origin[roi] = "rdms"
        else:
            cond = _responses_to_rdms(_load_npy(path, mapped=True), n, metric, str(path))
            subjects[roi] = _subject_names(meta, roi, cond.shape[0], root / "dataset.json")
            _check_constant_rows(cond, str(path), subjects[roi], roi)
            rdms[roi] = RdmStack(condensed=cond)
            origin[roi] = f"responses:{metric}"
    models = {p.stem: _load_model(p, n) for p in sorted((root / "models").glob("*.npy"))}
    return RdmDataset(
        root=root,
        name=str(meta["name"]),
        stimuli=table,
        rdms=rdms,
        subjects=subjects,
        models=models,
        meta=meta,
        origin=origin,
    )


# ---------------------------------------------------------------------------------- writing
@contextlib.contextmanager
def _staging_folder(out: Path, overwrite: bool):
    """A temporary sibling of ``out`` that replaces ``out`` only when the block succeeds."""
    if out.exists() and not overwrite:
        raise InputError(f"{out}: already exists; pass overwrite=True (--overwrite) to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    as_created(tmp, folder=True)  # mkdtemp gives 0o700: a shared data set needs the umask's mode
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_image(dst: Path, image) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image, bytes | bytearray):
        dst.write_bytes(bytes(image))
    elif isinstance(image, str | os.PathLike):
        shutil.copyfile(image, dst)
    else:
        from PIL import Image

        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(
                f"images[{dst.name!r}]: expected bytes, a file path or uint8 (H, W, 3), got "
                f"{arr.dtype} {arr.shape}"
            )
        Image.fromarray(arr).save(dst)


def write_rdm_dataset(
    out: str | os.PathLike,
    *,
    name: str,
    stimuli,
    images: Mapping[str, object],
    rdms: Mapping[str, np.ndarray] | None = None,
    responses: Mapping[str, np.ndarray] | None = None,
    models: Mapping[str, np.ndarray] | None = None,
    meta: Mapping | None = None,
    overwrite: bool = False,
) -> RdmDataset:
    """Write a data set folder in the RDM format, atomically, and return it as read back.

    Parameters
    ----------
    out : path
        The folder to create.
    name : str
        ``dataset.json``'s name.
    stimuli : pandas.DataFrame
        The stimulus table in RDM order (``stimulus``, ``image``, ``label``, …).
    images : mapping
        ``image`` path (as in the table) → bytes of the file, a file to copy, or a uint8
        ``(H, W, 3)`` array (saved as PNG when the path ends in ``.png``).
    rdms, responses : mapping of ROI -> array
        ``(n_subjects, n, n)`` RDMs or ``(n_subjects, n, n_units)`` patterns per ROI.
    models : mapping of name -> (n, n) array, optional
    meta : mapping, optional
        Further ``dataset.json`` entries (``source``, ``dissimilarity``, ``subjects`` …).
    overwrite : bool
        Replace an existing ``out`` (only once the new folder is complete and valid).

    Returns
    -------
    RdmDataset
        The written folder, read back with :func:`load_rdm_dataset` (so it is known valid).
    """
    out = Path(out)
    with _staging_folder(out, overwrite) as tmp:
        info = {"name": name, "format_version": FORMAT_VERSION, **dict(meta or {})}
        (tmp / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        stimuli.to_csv(tmp / "stimuli.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)
        for rel, image in images.items():
            _write_image(tmp / rel, image)
        for sub, arrays in (("rdms", rdms), ("responses", responses), ("models", models)):
            for roi, arr in (arrays or {}).items():
                (tmp / sub).mkdir(exist_ok=True)
                np.save(tmp / sub / f"{roi}.npy", np.asarray(arr), allow_pickle=False)
        load_rdm_dataset(tmp)  # a folder that does not read back is never renamed into place
    return load_rdm_dataset(out)


# -------------------------------------------------------------------------------- importers
#: stimulus ids of the 92-object image set in both importers (Kriegeskorte et al. 2008 order)
OBJECTS92_IDS = tuple(f"obj{i:02d}" for i in range(1, 93))


def _objects92_folder(source: Path, sub: str) -> tuple[Path, Path]:
    """(the data set's folder, the folder holding labels_92.json) from SOURCE."""
    source = Path(source)
    if (source / sub).is_dir():
        return source / sub, source
    if source.name == sub and source.is_dir():
        return source, source.parent
    raise DataFormatError(
        f"{source}: expected the real_rdms folder (holding {sub}/ and labels_92.json) or its "
        f"{sub}/ folder"
    )


def _labels92(folder: Path) -> tuple[list[str], list[str]]:
    path = folder / "labels_92.json"
    if not path.is_file():
        raise DataFormatError(f"{path}: missing; the importers take the object names from it")
    data = json.loads(path.read_text(encoding="utf-8"))
    names, synsets = data.get("names"), data.get("synsets", [""] * 92)
    if not isinstance(names, list) or len(names) != 92:
        raise DataFormatError(f"{path}: expected 92 'names', got {type(names).__name__}")
    return [str(n) for n in names], [str(s) for s in synsets]


def _supplemental92(kfolder: Path):
    """Categories and images of the 92 objects from Kriegeskorte et al.'s supplemental data."""
    import scipy.io as sio

    path = kfolder / "Kriegeskorte_Neuron2008_supplementalData.mat"
    if not path.is_file():
        raise DataFormatError(f"{path}: missing; it holds the 92 images and their categories")
    sup = sio.loadmat(path)
    st = sup["stimuli_92objs"][0]
    cats = [str(np.ravel(s["category"])[0]) for s in st]
    animate = [int(np.ravel(s["animal"])[0]) for s in st]
    images = [np.asarray(s["image"], dtype=np.uint8) for s in st]
    return cats, animate, images, sup


def _stimulus_table92(names, synsets, cats, animate, ext: str):
    import pandas as pd

    return pd.DataFrame(
        {
            "stimulus": list(OBJECTS92_IDS),
            "image": [f"images/{s}.{ext}" for s in OBJECTS92_IDS],
            "label": names,
            "category": cats,
            "animate": [str(a) for a in animate],
            "synset": synsets,
        }
    )


def import_kriegeskorte92(
    source: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False
) -> RdmDataset:
    """Kriegeskorte et al. (2008) human IT RDMs of the 92 objects, in the RDM format.

    Reads ``92_brainRDMs.mat`` (4 subjects × 2 sessions of human IT, 1 − Pearson r; the two
    sessions of each subject are averaged), ``92_behavRDMs.mat`` (16 people's similarity
    judgements, ROI ``judgements``), ``92_modelRDMs.mat`` (8 model RDMs, including monkey IT, to
    ``models/``), the images and categories of the supplemental data and the object names of
    ``labels_92.json``.

    Parameters
    ----------
    source : path
        The ``real_rdms`` folder (holding ``kriegeskorte92/`` and ``labels_92.json``) or its
        ``kriegeskorte92/`` folder.
    out : path
        The folder to write.
    overwrite : bool
        Replace an existing ``out``.
    """
    import scipy.io as sio

    kfolder, top = _objects92_folder(Path(source), "kriegeskorte92")
    names, synsets = _labels92(top)
    cats, animate, images, _ = _supplemental92(kfolder)
    brain = kfolder / "92_brainRDMs.mat"
    if not brain.is_file():
        raise DataFormatError(f"{brain}: missing")
    R = sio.loadmat(brain)["RDMs"]  # struct (1, 4 subjects, 2 sessions)
    it = np.stack(
        [np.mean([R[0, s, k]["RDM"] for k in range(R.shape[2])], axis=0) for s in range(R.shape[1])]
    ).astype(np.float64)
    subjects = [str(np.ravel(R[0, s, 0]["name"])[0]).split("|")[1].strip() for s in range(4)]
    rdms = {"IT": it}
    subject_names: dict[str, list[str]] = {"IT": subjects}
    behav = kfolder / "92_behavRDMs.mat"
    if behav.is_file():
        B = sio.loadmat(behav)["rdms_behav_92"][0]
        rdms["judgements"] = np.stack([b["RDM"] for b in B]).astype(np.float64)
        subject_names["judgements"] = [f"judge-{i + 1:02d}" for i in range(len(B))]
    models = {}
    mfile = kfolder / "92_modelRDMs.mat"
    if mfile.is_file():
        for m in sio.loadmat(mfile)["Models"][0]:
            models[str(np.ravel(m["name"])[0])] = np.asarray(m["RDM"], dtype=np.float64)
    table = _stimulus_table92(names, synsets, cats, animate, "png")
    return write_rdm_dataset(
        out,
        name="kriegeskorte92",
        stimuli=table,
        images=dict(zip(table["image"], images, strict=True)),
        rdms=rdms,
        models=models,
        meta={
            "source": "Kriegeskorte, Mur, Ruff et al. (2008) Neuron 60:1126 (rsatoolbox "
            "demos/92imageData); similarity judgements: Mur et al. (2013)",
            "dissimilarity": "IT: 1 - Pearson r between fMRI response patterns of human IT, "
            "the two sessions of each subject averaged; judgements: dissimilarity from "
            "similarity judgements (multi-arrangement)",
            "subjects": subject_names,
            "importer": "kriegeskorte92",
            "models": "from 92_modelRDMs.mat: " + ", ".join(models),
        },
        overwrite=overwrite,
    )


def import_cichy92(
    source: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False
) -> RdmDataset:
    """Cichy, Pantazis & Oliva (2014) EVC and IT RDMs of the 92 objects (Algonauts 2019 release).

    Reads ``target_fmri_92.mat`` (MATLAB v7.3, read with h5py: ``EVC_RDMs`` and ``IT_RDMs`` stored
    (92, 92, 15), transposed to (15, 92, 92)), the 92 images, the object names of
    ``labels_92.json`` and, when the ``kriegeskorte92/`` folder is beside it, the categories of
    Kriegeskorte et al.'s supplemental data (same image order).

    Parameters
    ----------
    source : path
        The ``real_rdms`` folder (holding ``cichy92/`` and ``labels_92.json``) or ``cichy92/``.
    out : path
    overwrite : bool
    """
    import h5py

    cfolder, top = _objects92_folder(Path(source), "cichy92")
    names, synsets = _labels92(top)
    mat = cfolder / "target_fmri_92.mat"
    if not mat.is_file():
        raise DataFormatError(f"{mat}: missing")
    try:
        with h5py.File(mat, "r") as f:
            rdms = {
                roi: np.transpose(np.asarray(f[f"{roi}_RDMs"], dtype=np.float64), (2, 1, 0))
                for roi in ("EVC", "IT")
            }
    except (OSError, KeyError) as exc:
        raise DataFormatError(
            f"{mat}: expected a MATLAB v7.3 (HDF5) file with EVC_RDMs and IT_RDMs ({exc})"
        ) from None
    kfolder = top / "kriegeskorte92"
    if (kfolder / "Kriegeskorte_Neuron2008_supplementalData.mat").is_file():
        cats, animate, _, _ = _supplemental92(kfolder)
        table = _stimulus_table92(names, synsets, cats, animate, "jpg")
    else:
        table = _stimulus_table92(names, synsets, ["?"] * 92, [0] * 92, "jpg")
        table = table.drop(columns=["category", "animate"])
    images = {}
    for i, rel in enumerate(table["image"] if "image" in table.columns else ()):
        src = cfolder / "images" / f"image_{i + 1:02d}.jpg"
        if not src.is_file():
            raise DataFormatError(f"{src}: missing; the importer needs all 92 images")
        images[rel] = src
    n_sub = rdms["IT"].shape[0]
    return write_rdm_dataset(
        out,
        name="cichy92",
        stimuli=table,
        images=images,
        rdms=rdms,
        meta={
            "source": "Cichy, Pantazis & Oliva (2014) Nat Neurosci 17:455, as released by the "
            "Algonauts Project 2019 (92-image training set, target_fmri_92.mat)",
            "dissimilarity": "1 - Pearson r between fMRI response patterns (EVC, IT)",
            "subjects": [f"sub-{i + 1:02d}" for i in range(n_sub)],
            "importer": "cichy92",
            "published_noise_ceiling_r2": {"EVC": 0.1589, "IT": 0.3075},
        },
        overwrite=overwrite,
    )


#: importers by name (``brainalign rdms import NAME SOURCE OUT``)
IMPORTERS: dict[str, Callable[..., RdmDataset]] = {
    "kriegeskorte92": import_kriegeskorte92,
    "cichy92": import_cichy92,
}


def import_rdm_dataset(
    name: str, source: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False
) -> RdmDataset:
    """Convert a known public source into the RDM format with the importer ``name``."""
    if name not in IMPORTERS:
        raise InputError(f"importer {name!r}: expected one of {sorted(IMPORTERS)}")
    return IMPORTERS[name](source, out, overwrite=overwrite)


__all__ = [
    "FORMAT_VERSION",
    "IMPORTERS",
    "OBJECTS92_IDS",
    "ModelRdm",
    "RdmDataset",
    "RdmStack",
    "caption_columns",
    "check_rdm_stack",
    "import_cichy92",
    "import_kriegeskorte92",
    "import_rdm_dataset",
    "load_rdm_dataset",
    "mean_patterns",
    "read_stimulus_table",
    "write_rdm_dataset",
]
