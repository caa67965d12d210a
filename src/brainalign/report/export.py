"""Results for other tools: surface maps as GIFTI and MGH (one file per hemisphere), tables as CSV.

A run folder holds ``maps/<name>.{lh,rh}.{func.gii,mgh}`` with ``maps/index.json`` describing each
map (title, section, statistic, significance mask), ``tables/<name>.csv`` and
``arrays/<name>.npy``. :func:`brainalign.report.build_report` reads only these files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from brainalign.errors import DataFormatError, InputError
from brainalign.utils.io import atomic_path, atomic_save_npy, atomic_write_json

HEMIS = ("lh", "rh")
MAP_FORMATS = ("gifti", "mgh")


def _safe_name(name: str) -> str:
    if not name or any(c in name for c in "/\\\0") or name.startswith("."):
        raise InputError(f"name: {name!r} cannot be used as a file name")
    return name


def write_surface_map(
    folder: str | os.PathLike,
    name: str,
    lh: np.ndarray,
    rh: np.ndarray,
    formats=MAP_FORMATS,
) -> list[Path]:
    """Write one map per hemisphere as GIFTI (``.func.gii``) and/or MGH (``.mgh``), atomically.

    Parameters
    ----------
    folder : path
    name : str
        Base name (``<name>.lh.func.gii`` …).
    lh, rh : (n_vertices,) float
        Values per vertex of each hemisphere (float32 on disk; NaN kept).
    formats : iterable of {"gifti", "mgh"}
    """
    import nibabel as nib

    folder = Path(folder)
    name = _safe_name(name)
    written = []
    for hemi, values in zip(HEMIS, (lh, rh), strict=True):
        values = np.asarray(values, dtype=np.float32).ravel()
        for fmt in formats:
            if fmt == "gifti":
                path = folder / f"{name}.{hemi}.func.gii"
                darray = nib.gifti.GiftiDataArray(
                    values, intent="NIFTI_INTENT_NONE", datatype="NIFTI_TYPE_FLOAT32"
                )
                img = nib.gifti.GiftiImage(darrays=[darray])
                with atomic_path(path, suffix=".gii") as tmp:
                    nib.save(img, tmp)
            elif fmt == "mgh":
                path = folder / f"{name}.{hemi}.mgh"
                img = nib.MGHImage(values.reshape(-1, 1, 1), np.eye(4))
                with atomic_path(path, suffix=".mgh") as tmp:
                    nib.save(img, tmp)
            else:
                raise InputError(f"formats: unknown map format {fmt!r}; expected {MAP_FORMATS}")
            written.append(path)
    return written


def read_surface_map(folder: str | os.PathLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a map written by :func:`write_surface_map` (GIFTI preferred, else MGH)."""
    import nibabel as nib

    folder = Path(folder)
    out = []
    for hemi in HEMIS:
        gii, mgh = folder / f"{name}.{hemi}.func.gii", folder / f"{name}.{hemi}.mgh"
        try:
            if gii.exists():
                out.append(np.asarray(nib.load(gii).darrays[0].data, dtype=np.float32))
            elif mgh.exists():
                out.append(np.asarray(nib.load(mgh).get_fdata(), dtype=np.float32).ravel())
            else:
                raise DataFormatError(f"map {name!r}: neither {gii} nor {mgh} exists")
        except DataFormatError:
            raise
        except Exception as exc:
            raise DataFormatError(
                f"map {name!r} ({hemi}): cannot read ({exc}); rerun the pipeline"
            ) from None
    return out[0], out[1]


class RunWriter:
    """Writes the files of a run folder that the report and other tools read.

    Parameters
    ----------
    run_dir : path
    formats : iterable
        Map formats (``"gifti"``, ``"mgh"``); tables are always CSV, and also Parquet when
        ``"parquet"`` is listed.
    """

    def __init__(self, run_dir: str | os.PathLike, formats=("gifti", "mgh", "csv")):
        self.run_dir = Path(run_dir)
        self.formats = tuple(formats)
        for sub in ("maps", "tables", "arrays"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        self._index: list[dict] = []

    def map(
        self,
        name: str,
        lh,
        rh,
        *,
        title: str,
        section: str,
        stat: str = "",
        mask: tuple[np.ndarray, np.ndarray] | None = None,
        note: str = "",
    ) -> None:
        fmts = [f for f in self.formats if f in MAP_FORMATS] or ["gifti"]
        write_surface_map(self.run_dir / "maps", name, lh, rh, fmts)
        entry = {"name": name, "title": title, "section": section, "stat": stat, "note": note}
        if mask is not None:
            write_surface_map(
                self.run_dir / "maps",
                f"{name}.mask",
                *(np.asarray(m, np.float32) for m in mask),
                fmts,
            )
            entry["mask"] = f"{name}.mask"
        self._index = [e for e in self._index if e["name"] != name] + [entry]
        atomic_write_json(self.run_dir / "maps" / "index.json", self._index)

    def table(self, name: str, df) -> Path:
        path = self.run_dir / "tables" / f"{_safe_name(name)}.csv"
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)
        if "parquet" in self.formats:
            with atomic_path(path.with_suffix(".parquet")) as tmp:
                df.to_parquet(tmp, index=False)
        return path

    def array(self, name: str, values: np.ndarray) -> Path:
        values = np.asarray(values)
        if values.dtype == object:
            values = values.astype(str)
        return atomic_save_npy(self.run_dir / "arrays" / f"{_safe_name(name)}.npy", values)

    def json(self, name: str, obj) -> Path:
        return atomic_write_json(self.run_dir / f"{_safe_name(name)}.json", obj)


def read_index(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / "maps" / "index.json"
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: corrupt map index ({exc}); rerun the pipeline") from None


__all__ = ["RunWriter", "read_index", "read_surface_map", "write_surface_map"]
