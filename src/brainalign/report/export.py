"""Results for other tools: surface maps as GIFTI and MGH (one file per hemisphere), tables as CSV.

A run folder holds ``maps/<name>.{lh,rh}.{func.gii,mgh}`` (written and read by
:func:`brainalign.datasets.surfaces.write_hemisphere_maps` / ``read_hemisphere_maps``) with
``maps/index.json`` describing each map (title, section, statistic, significance mask),
``tables/<name>.csv`` and ``arrays/<name>.npy``. :func:`brainalign.report.build_report` reads only
these files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from brainalign.datasets.surfaces import MAP_SUFFIXES, write_hemisphere_maps
from brainalign.errors import DataFormatError, InputError
from brainalign.utils.io import atomic_path, atomic_save_npy, atomic_write_json


def _safe_name(name: str) -> str:
    if not name or any(c in name for c in "/\\\0") or name.startswith("."):
        raise InputError(f"name: {name!r} cannot be used as a file name")
    return name


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
        fmts = [f for f in self.formats if f in MAP_SUFFIXES] or ["gifti"]
        maps = self.run_dir / "maps"
        write_hemisphere_maps(maps / _safe_name(name), lh, rh, fmts)
        entry = {"name": name, "title": title, "section": section, "stat": stat, "note": note}
        if mask is not None:
            lh_mask, rh_mask = (np.asarray(m, np.float32) for m in mask)
            write_hemisphere_maps(maps / f"{name}.mask", lh_mask, rh_mask, fmts)
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


__all__ = ["RunWriter", "read_index"]
