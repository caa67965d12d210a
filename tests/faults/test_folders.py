"""Fault injection, folders and options: nothing a user owns is deleted or overwritten,
--dry-run writes nothing and says what a run would create or replace, and each bad option or
path is a one-line error naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brainalign.datasets import make_virtual_nsd
from brainalign.errors import ConfigError, InputError
from brainalign.pipeline.config import load_config, validate_config
from brainalign.pipeline.folders import RUN_LEGACY
from brainalign.pipeline.study import plan_study, run_study
from brainalign.utils.owned import MARK, describe_folder, read_mark
from tests.faults.conftest import OTHER_ANALYSES_OFF, TINY

VIRTUAL = (
    """\
[data]
kind = "virtual"
n_subjects = 2
random_state = 5
{root}
[data.options]
n_shared = 8
n_unique = 8
n_sessions = 4
voxel_size = 10.0
[features]
spaces = ["multihot"]
[analyses.roi_rsa]
subset_size = 8
rois = ["early"]
[analyses.model_comparison]
enabled = false
[analyses.searchlight]
enabled = false
"""
    + OTHER_ANALYSES_OFF
    + """[output]
dir = "{out}"
"""
)


def virtual_study(folder: Path, out: Path, root: Path | None = None) -> Path:
    path = folder / "study.toml"
    line = f'root = "{root}"' if root is not None else ""
    path.write_text(VIRTUAL.format(root=line, out=out))
    return path


def _cli(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "brainalign", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------ user folders
def test_a_config_cannot_delete_a_users_folder(tmp_path):
    """The issue's data loss: data.root pointing at a user's folder with their notes."""
    mine = tmp_path / "my_project"
    (mine / "notes").mkdir(parents=True)
    (mine / "notes" / "ideas.txt").write_text("do not lose me")
    (mine / "results.csv").write_text("a,b\n1,2\n")
    before = _tree(mine)
    config = virtual_study(tmp_path, tmp_path / "out", root=mine)
    with pytest.raises(ConfigError, match=r"data\.root: .*my_project exists, is not empty and was"):
        load_config(config)
    for args in (["run", config], ["run", config, "--dry-run"]):
        proc = _cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert "data.root" in proc.stderr and "notes" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert _tree(mine) == before
    assert not (tmp_path / "out").exists()


def test_output_folder_that_is_not_brainaligns(tmp_path):
    theirs = tmp_path / "documents"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("...")
    config = virtual_study(tmp_path, theirs)
    cfg = load_config(config)
    with pytest.raises(ConfigError, match=r"output\.dir: .*documents exists, is not empty"):
        plan_study(cfg)
    with pytest.raises(ConfigError, match="thesis.tex"):
        run_study(cfg, report=False)
    assert sorted(p.name for p in theirs.iterdir()) == ["thesis.tex"]


def test_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    cfg = load_config(virtual_study(tmp_path, tmp_path / "out"))
    with pytest.raises(ConfigError, match=r"output\.dir: .*out is a file, not a folder"):
        plan_study(cfg)
    proc = _cli("run", tmp_path / "study.toml")
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr
    assert "NotADirectoryError" not in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "out").read_text() == "a file"


def test_a_run_folder_from_before_manifests_is_accepted(tmp_path):
    old = tmp_path / "old_run"
    (old / "cache" / "stages").mkdir(parents=True)
    (old / "run.json").write_text("{}")
    assert describe_folder(old, "run", RUN_LEGACY)[0] == "legacy"
    plan_study(load_config(virtual_study(tmp_path, old)))  # no error


def test_make_virtual_nsd_never_replaces_what_it_did_not_write(tmp_path, tiny_nsd):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.npy").write_bytes(b"precious")
    with pytest.raises(InputError, match=r"root: .*mine exists, is not empty and was not created"):
        make_virtual_nsd(mine, overwrite=True, **TINY)
    assert (mine / "data.npy").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"], "no lock or partial left"
    # brainalign's own virtual NSD with a user's file added: refused as well, the file kept
    ours = tmp_path / "ours"
    import shutil

    shutil.copytree(tiny_nsd, ours)
    (ours / "nsddata" / "my_notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"also holds files it did not write \(nsddata/my_notes"):
        make_virtual_nsd(ours, overwrite=True, **TINY)
    assert (ours / "nsddata" / "my_notes.txt").read_text() == "mine"


def test_virtual_nsd_manifest_lists_its_files_and_is_reproducible(tiny_nsd, tmp_path):
    mark = read_mark(tiny_nsd)
    assert mark["kind"] == "virtual_nsd" and "created" not in mark
    files = {p.relative_to(tiny_nsd).as_posix() for p in tiny_nsd.rglob("*") if p.is_file()}
    assert set(mark["files"]) == files - {MARK}
    # reuse keeps a complete folder made with the same arguments, and rebuilds a damaged one
    root = make_virtual_nsd(tmp_path / "v", **TINY)
    stamp = (root / "virtual_truth.json").stat().st_mtime_ns
    make_virtual_nsd(root, overwrite=True, reuse=True, **TINY)
    assert (root / "virtual_truth.json").stat().st_mtime_ns == stamp
    (root / "virtual_truth.npz").write_bytes(b"truncated")
    make_virtual_nsd(root, overwrite=True, reuse=True, **TINY)
    assert (root / "virtual_truth.npz").read_bytes() == (
        tiny_nsd / "virtual_truth.npz"
    ).read_bytes()


def test_stale_partial_folders_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".nsd.partial-{dead.pid}"
    (stale / "nsddata").mkdir(parents=True)
    alive = tmp_path / ".nsd.partial-1"  # pid 1 is alive: another build, left alone
    alive.mkdir()
    other = tmp_path / ".nsd.partial-notapid"
    other.mkdir()
    make_virtual_nsd(tmp_path / "nsd", **TINY)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".nsd.partial-1", ".nsd.partial-notapid", "nsd"]


def test_caption_bank_overwrite_only_replaces_a_bank(tmp_path, bow_encoder):
    from brainalign.decoding import CaptionBank

    folder = tmp_path / "bank"
    folder.mkdir()
    (folder / "mine.txt").write_text("mine")
    with pytest.raises(InputError, match="is not a caption bank"):
        CaptionBank.build(["a cat"], bow_encoder, folder, overwrite=True)
    assert (folder / "mine.txt").read_text() == "mine"
    bank = CaptionBank.build(["a cat", "a dog"], bow_encoder, tmp_path / "b2")
    again = CaptionBank.build(["a cow"], bow_encoder, bank.path, overwrite=True)
    assert len(again) == 1


# ------------------------------------------------------------------------------ dry run
def test_dry_run_writes_nothing_and_says_what_it_would_write(tmp_path):
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    for d in (home, xdg):
        d.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(xdg)}
    env.pop("BRAINALIGN_CACHE", None)
    out = tmp_path / "out"
    config = virtual_study(tmp_path, out)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = _cli("run", config, "--dry-run", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing new"
    assert not any(home.rglob("*")) and not any(xdg.rglob("*"))
    text = proc.stdout
    assert f"output.dir  {out}  — create" in text
    assert f"data.root   {out / 'virtual_nsd'}  — create" in text


def test_dry_run_says_what_a_run_would_replace(tmp_path, tiny_nsd):
    import shutil

    root = tmp_path / "vnsd"
    shutil.copytree(tiny_nsd, root)
    cfg = load_config(virtual_study(tmp_path, tmp_path / "out", root=root))
    _, _, table = plan_study(cfg)
    assert "data.root" in table and "replace (a virtual NSD brainalign wrote" in table
    # a user's file inside: the dry run says the rebuild would be refused
    (root / "mine.txt").write_text("mine")
    _, _, table = plan_study(cfg)
    assert "REFUSED when rebuilt" in table and "mine.txt" in table


# ------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        ("localhost:notaport", "'localhost:notaport' is not a Dask scheduler address"),
        ("tcp://", "'tcp://' is not a Dask scheduler address"),
        ("tcp://host:99999", "is not a Dask scheduler address"),
        ("GARBAGE", "is not a Dask scheduler file (not JSON"),
        ("NOADDRESS", "has no scheduler 'address'"),
        ("missing.json", "scheduler file missing.json does not exist"),
        ("tls://127.0.0.1:8786", "is a TLS address but no certificates are set"),
    ],
)
def test_bad_scheduler_is_one_line_naming_the_option(scheduler, message, tmp_path, monkeypatch):
    from brainalign.parallel import get_executor

    monkeypatch.chdir(tmp_path)
    (tmp_path / "GARBAGE").write_text("{{{ not json")
    (tmp_path / "NOADDRESS").write_text('{"id": "Scheduler-1"}')
    with pytest.raises(ConfigError) as info:
        get_executor("dask", scheduler=scheduler)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert text.startswith(("compute.scheduler:", "compute.tls"))


def test_tls_scheduler_works_with_a_security_config(tmp_path):
    """A ``tls://`` scheduler: rejected without certificates, used with [compute.tls]."""
    from distributed import LocalCluster, Security

    from brainalign.parallel import get_executor

    sec = Security.temporary()
    files = {"ca_file": sec.tls_ca_file, "cert": sec.tls_client_cert, "key": sec.tls_client_key}
    paths = {}
    for name, pem in files.items():
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_text(pem)
    with LocalCluster(
        n_workers=1,
        processes=False,
        security=sec,
        protocol="tls://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        with get_executor("dask", scheduler=address, security=paths) as ex:
            assert ex.submit(abs, -3).result() == 3
        with pytest.raises(ConfigError, match=r"compute\.tls\.ca_file: 'nope.pem'"):
            get_executor("dask", scheduler=address, security={**paths, "ca_file": "nope.pem"})
    # the config: relative files resolved against the config's folder
    cfg = validate_config(
        {
            "data": {"kind": "virtual"},
            "output": {"dir": "o"},
            "compute": {
                "scheduler": address,
                "executor": "dask",
                "tls": {"ca_file": "ca_file.pem", "cert": "cert.pem", "key": "key.pem"},
            },
        },
        base_dir=tmp_path,
    )
    assert cfg.compute.tls.ca_file == tmp_path / "ca_file.pem"


def test_device_error_says_got_once(tmp_path):
    (tmp_path / "c.toml").write_text(
        '[data]\nkind = "virtual"\n[output]\ndir = "o"\n[compute]\ndevice = "gpu"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.toml")
    assert str(info.value).count("got 'gpu'") == 1 and "compute.device" in str(info.value)


def test_default_cache_respects_xdg(tmp_path, monkeypatch):
    from brainalign.utils.paths import default_cache_dir

    monkeypatch.delenv("BRAINALIGN_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir(create=False) == tmp_path / "xdg" / "brainalign"
    assert not (tmp_path / "xdg").exists()
    assert default_cache_dir() == tmp_path / "xdg" / "brainalign"
    assert (tmp_path / "xdg" / "brainalign").is_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # as the XDG spec says
    assert default_cache_dir(create=False) == tmp_path / "home" / ".cache" / "brainalign"
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir(create=False) == tmp_path / "mine"
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path / "afile"))
    with pytest.raises(InputError, match="is not a folder"):
        default_cache_dir()


def test_report_counts_non_finite_betas(tmp_path, nsd_copy):
    from brainalign.datasets._formats import load_mgh, write_mgh
    from tests.faults.conftest import FS
    from tests.faults.test_processes import write_study

    path = nsd_copy / FS / "rh.betas_session03.mgh"
    data = load_mgh(path)
    data[:7, 2] = np.inf
    write_mgh(path, data)
    config = write_study(tmp_path, nsd_copy, tmp_path / "run")
    cfg = load_config(config)
    cfg = cfg.model_copy(
        update={
            "analyses": cfg.analyses.model_copy(
                update={
                    "searchlight": cfg.analyses.searchlight.model_copy(update={"enabled": False})
                }
            )
        }
    )
    with pytest.warns(UserWarning):
        res = run_study(cfg)
    import json

    quality = json.loads((tmp_path / "run" / "run.json").read_text())["data_quality"]
    assert quality["non_finite_values"] == 7 and quality["non_finite"]["1"]["units"] == 7
    table = (tmp_path / "run" / "tables" / "non_finite_betas.csv").read_text()
    assert "rh.betas_session03.mgh" in table
    html = res.report.read_text()
    assert "Non-finite betas: 7 NaN/Inf values" in html


def test_nsd_root_of_no_fsaverage_resolution_is_named(nsd_copy, tmp_path):
    from brainalign.datasets._formats import load_mgh, write_mgh
    from tests.faults.conftest import FS
    from tests.faults.test_processes import write_study

    path = nsd_copy / FS / "lh.betas_session01.mgh"
    write_mgh(path, load_mgh(path)[:10000])
    with pytest.raises(ConfigError, match=r"lh\.betas_session01\.mgh has 10000 vertices per hemi"):
        load_config(write_study(tmp_path, nsd_copy, tmp_path / "run"))


def test_corrupt_cached_result_is_named(tmp_path):
    from brainalign.errors import DataFormatError
    from brainalign.pipeline.cache import StageCache

    cache = StageCache(tmp_path / "cache")
    folder = cache.save("stage", "k" * 64, {"x": np.arange(3)})
    (folder / "result.json").write_text("{broken")
    # the file is named; what to do is worded by the cache (it discards a damaged result)
    with pytest.raises(DataFormatError, match=r"result\.json is corrupt"):
        cache.load("stage", "k" * 64)


def test_bad_scheduler_from_the_command_line_writes_nothing(tmp_path):
    config = virtual_study(tmp_path, tmp_path / "out")
    proc = _cli("run", config, "--scheduler", "localhost:notaport")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: compute.scheduler: 'localhost:notaport' is not a Dask")
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
