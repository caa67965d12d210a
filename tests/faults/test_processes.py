"""Fault injection, processes: a run killed at a random task resumes to identical tables; Ctrl-C
stops every worker and leaves only complete results; workers die with their parent; two runs on
one folder never work under each other."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from brainalign.errors import FolderInUseError
from brainalign.pipeline.config import load_config
from brainalign.pipeline.core import all_tasks
from brainalign.pipeline.folders import claim_output, run_lock
from brainalign.pipeline.study import plan_study, run_study
from tests.faults.conftest import OTHER_ANALYSES_OFF

STUDY = (
    """\
name = "fault test"
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
models = ["multihot"]
radius = 5.0
chunk_size = {chunk}
"""
    + OTHER_ANALYSES_OFF
    + """[output]
dir = "{out}"
"""
)


def write_study(folder: Path, root: Path, out: Path, chunk: int = 1024) -> Path:
    """A small study of the tiny NSD read as ``kind = "nsd"`` (searchlight on fsaverage5)."""
    path = folder / f"{out.name}.toml"
    path.write_text(STUDY.format(root=root, out=out, chunk=chunk))
    return path


def _brainalign(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "brainalign", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _results(out: Path) -> list[Path]:
    return list((out / "cache" / "stages").glob("*/*/result.json"))


def _outputs(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("tables", "arrays")
        for p in sorted((out / sub).glob("*"))
    }


@pytest.fixture(scope="module")
def reference(tiny_nsd, tmp_path_factory):
    """An uninterrupted serial run: ``kind = "nsd"`` on a prebuilt fsaverage5 virtual NSD with
    the searchlight on (the plan reads the resolution from the data)."""
    folder = tmp_path_factory.mktemp("reference")
    cfg = load_config(write_study(folder, tiny_nsd, folder / "run"))
    res = run_study(cfg, report=False)
    return folder / "run", res


def test_kind_nsd_runs_on_a_prebuilt_fsaverage5_root(reference):
    import nibabel as nib

    out, res = reference
    plan = res.plan
    nb = next(t for t in all_tasks(plan.targets) if t.stage == "neighbourhoods")
    assert nb.params["mesh"] == "fsaverage5"
    chunks = [t for t in all_tasks(plan.targets) if t.stage == "searchlight"]
    assert max(t.params["centres"][1] for t in chunks) == 2 * 10242
    lh = nib.load(out / "maps" / "searchlight_multihot_t.lh.func.gii").darrays[0].data
    assert lh.shape == (10242,)


def test_killed_at_a_random_task_resumes_to_identical_tables(reference, tiny_nsd, tmp_path):
    ref_out, ref = reference
    n_tasks = len(ref.run.computed)
    k = random.Random(13).randint(3, n_tasks - 10)  # a random task, the same every run
    out = tmp_path / "run"
    config = write_study(tmp_path, tiny_nsd, out)
    proc = _brainalign("run", config, "--no-report")
    try:
        while len(_results(out)) < k and proc.poll() is None:
            time.sleep(0.005)
        proc.kill()  # SIGKILL: no cleanup at all
    finally:
        proc.wait(timeout=60)
    done = len(_results(out))
    assert k <= done < n_tasks, f"killed after {done} of {n_tasks} tasks"
    plan, cache, table = plan_study(load_config(config))
    assert f"{n_tasks - done} to run" in table
    resumed = run_study(load_config(config), report=False)
    assert len(resumed.run.reused) == done and len(resumed.run.computed) == n_tasks - done
    a, b = _outputs(ref_out), _outputs(out)
    assert a.keys() == b.keys() and a, "same tables and arrays"
    for name in a:
        assert a[name] == b[name], name


def test_ctrl_c_stops_workers_and_keeps_only_complete_results(tiny_nsd, tmp_path):
    out = tmp_path / "run"
    # many small searchlight tasks: the run must still be busy when the signal comes, even when
    # this process is descheduled for a while on loaded cores (the tasks take milliseconds)
    config = write_study(tmp_path, tiny_nsd, out, chunk=32)
    # a terminal's foreground job takes Ctrl-C; this test process may have inherited SIGINT
    # ignored (as a background job does), which the run would inherit in turn
    proc = _brainalign(
        "run", config, "--no-report", "--executor", "processes", "-w", "2",
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        while len(_results(out)) < 3 and proc.poll() is None:
            time.sleep(0.01)
        workers = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the whole group
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    # the pool's workers were stopped by the run; its resource tracker follows within a moment
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert workers and not [w for w in alive if _alive(w)]
    # only complete results: no temporary folder, every result folder has its metadata
    assert not list((out / "cache").rglob("*.tmp"))
    for folder in (out / "cache" / "stages").glob("*/*"):
        assert (folder / "result.json").is_file(), folder
    assert not (out / ".brainalign.lock").exists()


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


PARENT = """
import sys, time
from brainalign.parallel import get_executor
ex = get_executor(sys.argv[1], workers=2)
futures = [ex.submit(time.sleep, 120) for _ in range(2)]
time.sleep(1.5)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_workers_exit_when_the_parent_is_killed(kind):
    proc = subprocess.Popen(
        [sys.executable, "-c", PARENT, kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the killed parent's leaked-semaphore notices
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) >= 2
        proc.kill()  # kill -9: the parent gets no chance to clean up
        proc.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not [w for w in alive if _alive(w)], alive
    finally:
        for w in psutil.Process().children(recursive=True):
            if w.pid != proc.pid:
                w.kill()


# ------------------------------------------------------------------------------ one folder
def test_second_run_stops_naming_the_first(tiny_nsd, tmp_path):
    out = tmp_path / "run"
    config = write_study(tmp_path, tiny_nsd, out)
    claim_output(out)
    with run_lock(out):  # "the first run": this test's process
        proc = _brainalign("run", config, "--no-report")
        _, err = proc.communicate(timeout=120)
        with pytest.raises(FolderInUseError, match=rf"process {os.getpid()} on "):
            run_study(load_config(config), report=False)
    assert proc.returncode == 2
    assert f"in use by another brainalign run (process {os.getpid()} on" in err
    assert "--wait" in err and "Traceback" not in err
    assert not _results(out), "the second run did no work"


def test_second_run_waits_with_wait(tiny_nsd, tmp_path):
    out = tmp_path / "run"
    cfg = load_config(write_study(tmp_path, tiny_nsd, out))
    claim_output(out)
    held, release = threading.Event(), threading.Event()

    def first():
        with run_lock(out):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    lines = []
    threading.Timer(1.0, release.set).start()
    t0 = time.perf_counter()
    res = run_study(cfg, report=False, wait=True, log=lines.append)
    thread.join()
    assert time.perf_counter() - t0 >= 0.9
    assert any(line.startswith(f"waiting for process {os.getpid()}") for line in lines)
    assert res.run.computed


def test_two_builds_of_one_virtual_nsd(tmp_path):
    """Two processes build the same virtual NSD at once: one waits for the other and reuses
    it; stale partial folders of killed builds are removed, other files are left alone."""
    from tests.faults.conftest import TINY

    dead = _dead_pid()
    stale = tmp_path / f".nsd.partial-{dead}"
    (stale / "nsddata").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("mine")
    script = textwrap.dedent(
        f"""
        from brainalign.datasets import make_virtual_nsd
        make_virtual_nsd({str(tmp_path / "nsd")!r}, overwrite=True, reuse=True, **{TINY!r})
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "nsd"]
    assert (tmp_path / "nsd" / "virtual_truth.json").is_file()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_reference_tables_hold_numbers(reference):
    """Guard for the comparison above: the reference's tables hold numbers."""
    out, _ = reference
    import pandas as pd

    table = pd.read_csv(out / "tables" / "roi_rsa.csv")
    assert len(table) and np.isfinite(table.select_dtypes("number").to_numpy()).any()
