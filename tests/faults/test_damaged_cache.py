"""Fault injection, damaged caches: a cached result whose file was truncated or overwritten (same
size) is named in a warning, discarded and computed again, never used and never a bare
``ValueError: mmap length is greater than file size``; a leftover temporary file of a killed
export is ignored and removed."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from brainalign.errors import DataFormatError
from brainalign.pipeline.cache import StageCache
from brainalign.pipeline.config import load_config
from brainalign.pipeline.study import plan_study, run_study, write_report
from tests.faults.conftest import OTHER_ANALYSES_OFF

STUDY = (
    """\
name = "damaged cache"
[data]
kind = "nsd"
root = "{root}"
[features]
spaces = ["multihot"]
[analyses.roi_rsa]
subset_size = 8
rois = ["early", "ventral"]
[analyses.model_comparison]
rois = ["ventral"]
[analyses.searchlight]
enabled = false
"""
    + OTHER_ANALYSES_OFF
    + """[output]
dir = "{out}"
formats = ["csv"]
"""
)


@pytest.fixture(scope="module")
def study(tiny_nsd, tmp_path_factory):
    """A small study of a hard-linked copy of the tiny NSD, run once; its tables."""
    folder = tmp_path_factory.mktemp("damaged_cache")
    root = Path(shutil.copytree(tiny_nsd, folder / "nsd", copy_function=os.link))
    path = folder / "study.toml"
    path.write_text(STUDY.format(root=root, out=folder / "run"))
    cfg = load_config(path)
    run_study(cfg, report=False)
    return cfg, _tables(cfg.output.dir)


def _tables(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "tables").glob("*.csv"))}


def _folder(cfg, which: str) -> Path:
    """The cached result folder of the multihot features or subject 1's responses."""
    plan, cache, _ = plan_study(cfg)
    task = plan.features["multihot"] if which == "features" else plan.subject_tasks[1]
    return cache.path(task.stage, task.key)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def overwrite_same_size(path: Path) -> None:
    """Flip the last bytes in place (the array's data): size, name and inode unchanged."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size - 8)
        tail = f.read(8)
        f.seek(size - 8)
        f.write(bytes(255 - b for b in tail))
    assert path.stat().st_size == size


def edit_value(path: Path) -> None:
    """A valid record whose JSON value was changed (``n_units``)."""
    meta = json.loads(path.read_text())
    meta["values"]["n_units"] += 1
    path.write_text(json.dumps(meta))


def break_record(path: Path) -> None:
    path.write_text("{broken")


CASES = {
    "truncated .npy": ("features", "X.npy", truncate, "features:multihot"),
    "same-size overwritten .npy": ("features", "X.npy", overwrite_same_size, "features:multihot"),
    "edited value in result.json": ("responses", "result.json", edit_value, "responses:sub-01"),
    "unreadable result.json": ("features", "result.json", break_record, "features:multihot"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_cached_result_is_named_discarded_and_recomputed(study, case):
    cfg, tables = study
    which, name, damage, label = CASES[case]
    path = _folder(cfg, which) / name
    damage(path)
    # loading it names the file (it was `ValueError: mmap length is greater than file size`)
    with pytest.raises(DataFormatError, match=re.escape(str(path.parent))):
        StageCache(path.parents[2]).load(path.parent.parent.name, path.parent.name)
    # --dry-run shows it as to run, and leaves it where it is
    _, _, table = plan_study(cfg)
    assert "1 to run" in table and path.exists()
    named = re.escape(str(path if name != "result.json" else path.parent))
    with pytest.warns(UserWarning, match=rf"{named}.*discarded .* computed again"):
        res = run_study(cfg, report=False)
    # only the damaged task is computed: the same inputs give the same key and the same bytes,
    # so every task after it is reused
    assert res.run.computed == [label]
    assert any(str(path.parent) in text for _, text in res.run.warnings)
    assert _tables(cfg.output.dir) == tables
    assert run_study(cfg, report=False).run.computed == []


def test_a_damaged_result_written_before_checksums_is_recomputed(study):
    """Records of older runs carry no checksums: their .npy headers are checked against sizes."""
    cfg, tables = study
    folder = _folder(cfg, "features")
    meta = json.loads((folder / "result.json").read_text())
    del meta["checksums"]
    (folder / "result.json").write_text(json.dumps(meta))
    assert run_study(cfg, report=False).run.computed == []  # intact: reused as it is
    truncate(folder / "X.npy")
    with pytest.warns(UserWarning, match=r"X\.npy has \d+ bytes, its header says \d+"):
        res = run_study(cfg, report=False)
    assert res.run.computed == ["features:multihot"]
    assert "checksums" in json.loads((folder / "result.json").read_text())
    assert _tables(cfg.output.dir) == tables


def test_checksums_are_in_each_record(study):
    cfg, _ = study
    meta = json.loads((_folder(cfg, "features") / "result.json").read_text())
    sums = meta["checksums"]
    assert set(sums["files"]) == {"X.npy", "ids.npy"}
    record = sums["files"]["X.npy"]
    assert record["size"] == (_folder(cfg, "features") / "X.npy").stat().st_size
    assert len(record["blake2b"]) == 32 and isinstance(sums["values"], str)


def test_a_damaged_feature_space_cache_entry_is_recomputed(tmp_path, monkeypatch):
    from brainalign.features import FeatureSpaceCache

    cache = FeatureSpaceCache(tmp_path)
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    folder = cache.save("space", "k", X, {"params": {}})
    overwrite_same_size(folder / "X.npy")
    with pytest.warns(UserWarning, match=r"X\.npy does not match its size or checksum"):
        assert cache.load("space", "k") is None
    assert not folder.exists()


def test_a_killed_exports_temporary_files_are_ignored_and_removed(study):
    """A half-written ``tables/.roi_rsa.*.tmp.csv`` (an export killed mid-write) made every later
    ``run`` and ``report`` fail with "cannot read table"."""
    cfg, tables = study
    out = cfg.output.dir
    leftovers = [
        out / "tables" / ".roi_rsa.k1ll3d.tmp.csv",
        out / "arrays" / ".rdm__model__multihot.k1ll3d.tmp.npy",
    ]
    for p in leftovers:
        p.write_bytes(b'"subject","ro\x00\xff')
    report = write_report(out)  # the report ignores them
    assert ".roi_rsa" not in report.read_text()
    res = run_study(cfg)  # the run (which holds the folder's lock) removes them
    assert res.report is not None
    assert not any(p.exists() for p in leftovers)
    assert _tables(out) == tables
