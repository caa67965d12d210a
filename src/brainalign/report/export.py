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
from brainalign.utils.io import atomic_path, atomic_save_npy, atomic_write_json, make_dirs
from brainalign.utils.owned import RUN_KIND, check_run_folder, describe_folder, write_mark


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

    Attributes
    ----------
    written : list of str
        Every file written so far, relative to ``run_dir`` (what the run folder's manifest
        records; results an earlier run wrote and this one did not are superseded).

    Raises
    ------
    InputError
        When ``run_dir`` is a non-empty folder brainalign did not make (it is never written
        into); a new or empty folder becomes a run folder (it gets its manifest).
    """

    def __init__(self, run_dir: str | os.PathLike, formats=("gifti", "mgh", "csv")):
        self.run_dir = _claim(run_dir)
        self.formats = tuple(formats)
        for sub in ("maps", "tables", "arrays"):
            make_dirs(self.run_dir / sub, "run folder")
            # temporary files of an export killed mid-write (atomic_path's ".<name>.*.tmp*");
            # the run that writes holds the folder's lock, so no other writer owns them
            for tmp in (self.run_dir / sub).glob(".*.tmp*"):
                tmp.unlink(missing_ok=True)
        self._index: list[dict] = []
        self.written: list[str] = []

    def _wrote(self, *paths: Path) -> None:
        for p in paths:
            rel = Path(p).relative_to(self.run_dir).as_posix()
            if rel not in self.written:
                self.written.append(rel)

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
        self._wrote(*write_hemisphere_maps(maps / _safe_name(name), lh, rh, fmts))
        entry = {"name": name, "title": title, "section": section, "stat": stat, "note": note}
        if mask is not None:
            lh_mask, rh_mask = (np.asarray(m, np.float32) for m in mask)
            self._wrote(*write_hemisphere_maps(maps / f"{name}.mask", lh_mask, rh_mask, fmts))
            entry["mask"] = f"{name}.mask"
        self._index = [e for e in self._index if e["name"] != name] + [entry]
        self._wrote(atomic_write_json(self.run_dir / "maps" / "index.json", self._index))

    def table(self, name: str, df) -> Path:
        path = self.run_dir / "tables" / f"{_safe_name(name)}.csv"
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)
        self._wrote(path)
        if "parquet" in self.formats:
            with atomic_path(path.with_suffix(".parquet")) as tmp:
                df.to_parquet(tmp, index=False)
            self._wrote(path.with_suffix(".parquet"))
        return path

    def array(self, name: str, values: np.ndarray) -> Path:
        values = np.asarray(values)
        if values.dtype == object:
            values = values.astype(str)
        path = atomic_save_npy(self.run_dir / "arrays" / f"{_safe_name(name)}.npy", values)
        self._wrote(path)
        return path

    def json(self, name: str, obj) -> Path:
        path = atomic_write_json(self.run_dir / f"{_safe_name(name)}.json", obj)
        self._wrote(path)
        return path


def _claim(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` made a run folder (created, with its manifest), if it is new or empty;
    kept when it is one already; :class:`InputError` naming its files otherwise."""
    run_dir = Path(run_dir)
    if describe_folder(run_dir, RUN_KIND)[0] in ("missing", "empty"):
        make_dirs(run_dir, "run folder")
        write_mark(run_dir, RUN_KIND)
    return check_run_folder(run_dir)


def read_index(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / "maps" / "index.json"
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: corrupt map index ({exc}); rerun the pipeline") from None


__all__ = ["RunWriter", "read_index"]
