"""Fault injection, results and folders: a run folder shows only its current configuration's
results (earlier ones move to ``superseded/``); only folders brainalign made are ever updated,
by ``run``, ``report`` or the Python API; ``report`` on a killed run exports what finished; a
read-only folder is a clear error; files get the umask's mode."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.errors import ConfigError, InputError, WriteError
from brainalign.pipeline import write_report
from brainalign.pipeline.config import load_config
from brainalign.pipeline.study import plan_study, run_study
from brainalign.report import RunWriter, build_report
from brainalign.utils.owned import MARK, read_mark
from tests.faults.conftest import OTHER_ANALYSES_OFF

STUDY = (
    """\
name = "superseded test"
[data]
kind = "nsd"
root = "{root}"
[features]
spaces = {spaces}
[analyses.roi_rsa]
enabled = {roi_rsa}
subset_size = 8
rois = ["early", "ventral"]
[analyses.model_comparison]
enabled = false
[analyses.searchlight]
enabled = {searchlight}
models = ["multihot"]
radius = 5.0
"""
    + OTHER_ANALYSES_OFF
    + """[output]
dir = "{out}"
"""
)


def study(folder: Path, root: Path, out: Path, *, spaces=("multihot", "minilm"), roi_rsa=True,
          searchlight=True, name="study") -> Path:  # fmt: skip
    path = folder / f"{name}.toml"
    path.write_text(
        STUDY.format(
            root=root,
            out=out,
            spaces=json.dumps(list(spaces)),
            roi_rsa=str(roi_rsa).lower(),
            searchlight=str(searchlight).lower(),
        )
    )
    return path


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "brainalign", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _users_folder(tmp_path: Path) -> Path:
    """The issue's folder: a user's own run.json, tables/roi_rsa.csv and report.html."""
    mine = tmp_path / "mine"
    (mine / "tables").mkdir(parents=True)
    (mine / "run.json").write_text('{"mine": true}')
    (mine / "tables" / "roi_rsa.csv").write_text("roi,r\nV1,0.3\n")
    (mine / "report.html").write_text("<p>my report</p>")
    return mine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------------------ superseded
def test_results_of_an_old_configuration_are_superseded(tmp_path, tiny_nsd):
    """Disable roi_rsa and drop a model, rerun in the same folder: the report and the folder
    hold only this run's results; the earlier ones are moved, never deleted."""
    out = tmp_path / "run"
    first = run_study(study(tmp_path, tiny_nsd, out))
    page = first.report.read_text()
    assert 'id="roi"' in page and 'id="rdms"' in page
    old_rdm = (out / "arrays" / "rdm__model__minilm.npy").read_bytes()
    mark = read_mark(out)
    assert "tables/roi_rsa.csv" in mark["results"] and "report.html" in mark["results"]
    assert mark["exported"] == mark["run"]

    logged = []
    second = run_study(
        study(tmp_path, tiny_nsd, out, spaces=["multihot"], roi_rsa=False), log=logged.append
    )
    page = second.report.read_text()
    assert 'id="roi"' not in page and 'id="rdms"' not in page and "ROI RSA" not in page
    assert 'id="searchlight"' in page
    for stale in ("tables/roi_rsa.csv", "tables/roi_group.csv", "arrays/rdm__model__minilm.npy"):
        assert not (out / stale).exists(), stale
    (moved,) = (out / "superseded").iterdir()
    assert (moved / "arrays" / "rdm__model__minilm.npy").read_bytes() == old_rdm
    assert (moved / "tables" / "roi_rsa.csv").exists()
    assert any("superseded" in line and "no longer writes" in line for line in logged)
    mark = read_mark(out)
    assert not any(f.startswith("tables/roi") for f in mark["results"])
    assert set(mark["results"]) == {
        p.relative_to(out).as_posix()
        for sub in ("tables", "maps", "arrays")
        for p in (out / sub).rglob("*")
        if p.is_file()
    } | {"run.json", "report.html"}

    # the same configuration again: nothing more is moved
    run_study(study(tmp_path, tiny_nsd, out, spaces=["multihot"], roi_rsa=False))
    assert len(list((out / "superseded").iterdir())) == 1


def test_map_pages_belong_to_the_run_that_wrote_their_maps(tmp_path, tiny_nsd):
    """The report's stand-alone 3-D pages (maps/<name>.html) are recorded with the run's
    results, move to superseded/ with their maps, and a report written elsewhere puts its pages
    beside itself, never into the run folder."""
    out = tmp_path / "run"
    run_study(study(tmp_path, tiny_nsd, out))
    pages = sorted(p.relative_to(out).as_posix() for p in (out / "maps").glob("*.html"))
    assert pages and set(pages) <= set(read_mark(out)["results"])

    run_study(study(tmp_path, tiny_nsd, out, searchlight=False))
    assert not list((out / "maps").glob("*.html"))
    (moved,) = (out / "superseded").iterdir()
    assert sorted(p.relative_to(moved).as_posix() for p in moved.glob("maps/*.html")) == pages

    run_study(study(tmp_path, tiny_nsd, out))
    before = _tree(out)
    elsewhere = tmp_path / "elsewhere" / "r.html"
    elsewhere.parent.mkdir()
    write_report(out, elsewhere)
    assert _tree(out) == before
    assert sorted(p.name for p in (elsewhere.parent / "maps").glob("*.html")) == [
        Path(p).name for p in pages
    ]


def test_no_report_supersedes_the_old_report(tmp_path, tiny_nsd):
    out = tmp_path / "run"
    run_study(study(tmp_path, tiny_nsd, out, searchlight=False))
    run_study(study(tmp_path, tiny_nsd, out, spaces=["multihot"], searchlight=False), report=False)
    assert not (out / "report.html").exists(), "the report of the earlier run is not current"
    assert list((out / "superseded").glob("*/report.html"))


# ------------------------------------------------------------------------------ users' folders
def test_run_refuses_a_users_folder_with_run_json_tables_and_report(tmp_path, tiny_nsd):
    """Issue 23, case 4: taken for an old run folder and overwritten (--dry-run said update)."""
    mine = _users_folder(tmp_path)
    before = _tree(mine)
    config = study(tmp_path, tiny_nsd, mine)
    with pytest.raises(ConfigError, match=r"output\.dir: refused: .*tables/roi_rsa\.csv"):
        plan_study(load_config(config))
    with pytest.raises(ConfigError, match="report.html, run.json, tables/roi_rsa.csv"):
        run_study(config)
    for args in (["run", config], ["run", config, "--dry-run"]):
        proc = _cli(*args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "refused" in proc.stderr and "tables/roi_rsa.csv" in proc.stderr
        assert "update" not in proc.stdout and "Traceback" not in proc.stderr
    assert _tree(mine) == before


def test_report_refuses_a_users_folder(tmp_path):
    """Issue 23, case 5: `brainalign report DIR` replaced DIR/report.html."""
    mine = _users_folder(tmp_path)
    before = _tree(mine)
    for write in (write_report, build_report):
        with pytest.raises(InputError, match=r"run_dir: refused: .*report\.html, run\.json"):
            write(mine)
    with pytest.raises(InputError, match="not a brainalign run folder"):
        write_report(mine, tmp_path / "elsewhere.html")
    proc = _cli("report", mine)
    assert proc.returncode == 2 and "refused" in proc.stderr and "run.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _tree(mine) == before and not (tmp_path / "elsewhere.html").exists()


def test_run_writer_refuses_a_users_folder(tmp_path):
    """The Python API that writes run folders: RunWriter claims new or empty folders only."""
    mine = _users_folder(tmp_path)
    before = _tree(mine)
    with pytest.raises(InputError, match="tables/roi_rsa.csv"):
        RunWriter(mine)
    assert _tree(mine) == before
    w = RunWriter(tmp_path / "new")
    assert read_mark(tmp_path / "new")["kind"] == "run"
    w.table("t", pd.DataFrame({"a": [1]}))
    w.array("x", np.arange(3))
    assert w.written == ["tables/t.csv", "arrays/x.npy"]
    RunWriter(tmp_path / "new")  # its own folder: fine


# ------------------------------------------------------------------------------ killed runs
def test_report_on_a_run_killed_before_export(tmp_path, tiny_nsd, monkeypatch):
    """The docs: `brainalign report` works from whatever has finished."""
    import brainalign.pipeline.study as study_module

    out = tmp_path / "run"
    config = study(tmp_path, tiny_nsd, out, spaces=["multihot"])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill between the last task and the export

    monkeypatch.setattr(study_module, "export_results", killed)
    with pytest.raises(KeyboardInterrupt):
        run_study(config)
    monkeypatch.undo()
    assert not (out / "run.json").exists() and not (out / "tables").exists()
    proc = _cli("report", out)
    assert proc.returncode == 0, proc.stderr
    page = (out / "report.html").read_text()
    assert "did not finish" in page and 'id="roi"' in page and 'id="searchlight"' in page
    assert (out / "tables" / "roi_rsa.csv").exists()


def test_report_on_a_run_killed_before_any_task(tmp_path, tiny_nsd, monkeypatch):
    import brainalign.pipeline.study as study_module

    out = tmp_path / "run"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study_module, "run_tasks", killed)
    with pytest.raises(KeyboardInterrupt):
        run_study(study(tmp_path, tiny_nsd, out, spaces=["multihot"], searchlight=False))
    monkeypatch.undo()
    page = write_report(out).read_text()
    assert "did not finish" in page and "Analyses not finished, so left out: roi_rsa" in page


# ------------------------------------------------------------------------------ read-only
needs_non_root = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders"
)


def _read_only(monkeypatch):
    """Every file creation fails as on a read-only file system (works as root too; a real
    read-only mount needs privileges a test should not have)."""
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir", ""))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def test_read_only_output_folder_is_a_clear_error(tmp_path, tiny_nsd, monkeypatch):
    out = tmp_path / "run"
    config = study(tmp_path, tiny_nsd, out, spaces=["multihot"], searchlight=False)
    run_study(config)
    before = _tree(out)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    assert "REFUSED: cannot write into it" in plan_study(load_config(config))[2]
    _read_only(monkeypatch)
    with pytest.raises(WriteError, match=rf"cannot write into {out} \(output\.dir\): Read-only"):
        run_study(config)
    with pytest.raises(WriteError, match=rf"cannot write into {out}: Read-only file system; choo"):
        write_report(out)
    monkeypatch.undo()
    assert _tree(out) == before


def test_read_only_output_folder_from_the_command_line(tmp_path, tiny_nsd, monkeypatch, capsys):
    """`brainalign run` and `report`: one line naming the folder, exit 2, no traceback."""
    from brainalign.cli import main

    out = tmp_path / "run"
    config = study(tmp_path, tiny_nsd, out, spaces=["multihot"], searchlight=False)
    run_study(config)
    _read_only(monkeypatch)
    for args in (["run", str(config)], ["report", str(out)]):
        monkeypatch.setattr(sys, "argv", ["brainalign", *args])
        with pytest.raises(SystemExit) as info:
            main()
        err = capsys.readouterr().err
        assert info.value.code == 2, err
        assert err.startswith(f"error: cannot write into {out}") and "writable file sys" in err
        assert "Traceback" not in err


@needs_non_root
def test_folder_without_write_permission(tmp_path, tiny_nsd):
    out = tmp_path / "run"
    config = study(tmp_path, tiny_nsd, out, spaces=["multihot"], searchlight=False)
    run_study(config)
    out.chmod(0o555)
    try:
        for args in (["run", config], ["report", out]):
            proc = _cli(*args)
            assert proc.returncode == 2, proc.stderr
            assert f"cannot write into {out}" in proc.stderr and "chmod u+w" in proc.stderr
            assert "Traceback" not in proc.stderr
    finally:
        out.chmod(0o755)


# ------------------------------------------------------------------------------ umask
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["022", "002"])
def test_files_respect_the_umask(umask, tmp_path, tiny_nsd):
    """A lab's shared cache and report must be readable by the group (mkstemp gives 0600)."""
    old = os.umask(umask)
    try:
        out = tmp_path / "run"
        run_study(study(tmp_path, tiny_nsd, out, spaces=["multihot"], searchlight=False))
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != ".brainalign.lock"]
    folders = [p for p in out.rglob("*") if p.is_dir()]
    assert out / "report.html" in files and out / MARK in files
    assert any("cache" in p.parts for p in files)
    assert {oct(_mode(p)) for p in files} == {oct(0o666 & ~umask)}
    assert {oct(_mode(p)) for p in folders} == {oct(0o777 & ~umask)}
