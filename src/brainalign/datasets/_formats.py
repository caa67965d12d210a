"""Reading and writing NSD's file formats (MGH/MGZ, NIfTI, MAT, ctab) with clear errors.

Writers are atomic and byte-deterministic: gzip members carry ``mtime=0`` and no file name, and
the MAT header carries a fixed text instead of the creation date, so the same data always gives
the same bytes.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np

from brainalign.errors import DataFormatError
from brainalign.utils.io import atomic_path

_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by brainalign"


def _write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def _gzip(data: bytes, level: int = 6) -> bytes:
    buf = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header independent of time and temp names
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=level, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def write_mgh(path: str | os.PathLike, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Write ``data`` as FreeSurfer MGH (``.mgh``) or gzipped MGZ (``.mgz``), atomically.

    ``data`` is (V,), (V, T) or already 3/4-D; 1-D/2-D are written as (V, 1, 1[, T]) like NSD.
    """
    import nibabel as nib

    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None, None]
    elif data.ndim == 2:
        data = data[:, None, None, :]
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    img = nib.MGHImage(data, np.eye(4) if affine is None else affine)
    raw = img.to_bytes()
    path = Path(path)
    return _write_bytes(path, _gzip(raw, level=1) if path.suffix == ".mgz" else raw)


def write_nifti(
    path: str | os.PathLike,
    data: np.ndarray,
    affine: np.ndarray,
    zooms: tuple[float, ...] | None = None,
    level: int = 1,
) -> Path:
    """Write a NIfTI-1 image (gzipped when the name ends in ``.gz``), atomically."""
    import nibabel as nib

    data = np.asarray(data)
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    # scl_slope/inter stay NaN (= no scaling): readers see the stored integers
    if zooms is not None:
        img.header.set_zooms(zooms)
    img.header.set_xyzt_units("mm", "sec")
    raw = img.to_bytes()
    path = Path(path)
    return _write_bytes(path, _gzip(raw, level=level) if path.name.endswith(".gz") else raw)


def write_mat(path: str | os.PathLike, variables: dict) -> Path:
    """Write a MATLAB v5 file with scipy, with a fixed (date-free) header."""
    import scipy.io as sio

    buf = io.BytesIO()
    sio.savemat(buf, variables, format="5", do_compression=False, oned_as="row")
    raw = bytearray(buf.getvalue())
    raw[:116] = _MAT_HEADER.ljust(116, b" ")
    return _write_bytes(path, bytes(raw))


def write_ctab(path: str | os.PathLike, names: dict[int, str]) -> Path:
    """Write an NSD-style label table: ``id name`` per line, ``0 Unknown`` first, no padding."""
    table = {0: "Unknown", **{int(k): v for k, v in names.items()}}
    text = "".join(f"{k} {table[k]}\n" for k in sorted(table))
    return _write_bytes(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------------- readers


def _fail(path, what, exc=None):
    # the library's own message, on one line (nibabel's span several)
    detail = f" ({type(exc).__name__}: {' '.join(str(exc).split())})" if exc is not None else ""
    return DataFormatError(f"{path}: {what}{detail}")


def load_mgh(path: str | os.PathLike, dtype=np.float32) -> np.ndarray:
    """Read an MGH/MGZ file fully; returns its data squeezed to (V,) or (V, T) in ``dtype``.

    ``dtype=None`` keeps the stored dtype (big-endian, as MGH stores it) and avoids a copy.

    Raises
    ------
    DataFormatError
        Missing, truncated or corrupt file.
    """
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise _fail(path, "file not found; expected an MGH/MGZ file here")
    try:
        # from the bytes: nib.load leaves the file open (a ResourceWarning per file read)
        raw = path.read_bytes()
        if path.name.endswith((".mgz", ".gz")):
            import gzip

            raw = gzip.decompress(raw)
        data = np.asarray(nib.MGHImage.from_bytes(raw).dataobj)
    except Exception as exc:
        raise _fail(
            path,
            "not a readable MGH/MGZ file (corrupt or truncated); re-download or re-create it",
            exc,
        ) from exc
    if data.ndim >= 3 and all(s == 1 for s in data.shape[1:3]):
        data = data.reshape((data.shape[0],) + data.shape[3:])
    elif data.ndim == 3 and data.shape[:2] == (1, 1):
        data = data.reshape(-1)
    return data if dtype is None else np.asarray(data, dtype=dtype)


def load_nifti(path: str | os.PathLike, raw: bool = True):
    """Read a NIfTI image; returns ``(data, affine, header)``.

    ``raw=True`` returns the stored values (int16 stays int16), unscaled.
    """
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise _fail(path, "file not found; expected a NIfTI file here")
    try:
        img = nib.load(str(path))
        if raw:
            data = np.asarray(img.dataobj.get_unscaled())
            slope, inter = img.dataobj.slope, img.dataobj.inter
            if not (slope in (0, 1) or np.isnan(slope)) or not (inter == 0 or np.isnan(inter)):
                data = data * slope + inter
        else:
            data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:
        raise _fail(
            path,
            "not a readable NIfTI file (corrupt or truncated); re-download or re-create it",
            exc,
        ) from exc
    return data, np.asarray(img.affine, dtype=np.float64), img.header


def nifti_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """Shape from a NIfTI header without reading the data."""
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise _fail(path, "file not found; expected a NIfTI file here")
    try:
        return tuple(int(s) for s in nib.load(str(path)).shape)
    except Exception as exc:
        raise _fail(path, "not a readable NIfTI header", exc) from exc


def mgh_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """Shape from an MGH/MGZ header without reading the data (the file is closed again)."""
    import gzip

    from nibabel.freesurfer.mghformat import MGHHeader

    path = Path(path)
    if not path.exists():
        raise _fail(path, "file not found; expected an MGH/MGZ file here")
    opener = gzip.open if path.name.endswith((".mgz", ".gz")) else open
    try:
        with opener(path, "rb") as f:
            return tuple(int(s) for s in MGHHeader.from_fileobj(f).get_data_shape())
    except Exception as exc:
        raise _fail(path, "not a readable MGH/MGZ header", exc) from exc


def load_mat(path: str | os.PathLike, variables: tuple[str, ...] = ()) -> dict:
    """Read a MAT v5 file with scipy; check that ``variables`` are present."""
    import scipy.io as sio

    path = Path(path)
    if not path.exists():
        raise _fail(path, "file not found; expected NSD's experiment design MAT file")
    try:
        mat = sio.loadmat(str(path))
    except Exception as exc:
        raise _fail(path, "not a readable MAT v5 file (corrupt or truncated)", exc) from exc
    missing = [v for v in variables if v not in mat]
    if missing:
        raise DataFormatError(
            f"{path}: expected variables {list(variables)}, missing {missing}; found "
            f"{sorted(k for k in mat if not k.startswith('__'))}"
        )
    return mat
