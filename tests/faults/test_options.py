"""Fault injection, options: every option out of range is refused at the door naming its key,
capped values are reported as used, names that become file names are checked before any work,
and the command line's help shows every TOML section name it mentions."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from brainalign.errors import ConfigError
from brainalign.pipeline.config import load_config, validate_config
from tests.faults.test_folders import virtual_study


# ------------------------------------------------------------------------------ --help
def _commands(cmd, path=()):
    """Every (command path, click command) of the ``brainalign`` tree, groups included."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _help_texts(cmd) -> str:
    return " ".join([cmd.help or "", *(getattr(p, "help", None) or "" for p in cmd.params)])


def test_every_help_keeps_bracketed_names():
    """``[data]``, ``[[models]]`` in a help text survive (rich markup ate them as style tags)."""
    import typer
    from typer.testing import CliRunner

    from brainalign.cli import _register, app

    _register()
    root = typer.main.get_command(app)
    runner = CliRunner()
    checked = 0
    for path, cmd in _commands(root):
        res = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert res.exit_code == 0, (path, res.output)
        for name in re.findall(r"\[\[?[A-Za-z_.]+\]\]?", _help_texts(cmd)):
            assert name in res.output, f"brainalign {' '.join(path)} --help lost {name}"
            checked += 1
    assert checked >= 6  # compare-models and train name their sections


# ------------------------------------------------------------------------------ ranges


def _virtual(tmp_path, **analyses) -> dict:
    """A small virtual-NSD study (2 subjects, ROI RSA and searchlight of one feature space);
    ``analyses`` replace sections of ``[analyses]``."""
    off = {"enabled": False}
    return {
        "data": {"kind": "virtual", "n_subjects": 2},
        "features": {"spaces": ["multihot"]},
        "analyses": {
            "searchlight": {"models": ["multihot"]},
            **{a: off for a in ("encoding", "insilico", "decoding", "networks")},
            **analyses,
        },
        "output": {"dir": str(tmp_path / "out")},
    }


@pytest.mark.parametrize("analysis", ["encoding", "decoding"])
def test_empty_alphas_are_refused_at_load(tmp_path, analysis):
    """``alphas = []`` failed after 6 s without naming the key."""
    data = _virtual(tmp_path, **{analysis: {"alphas": []}})
    with pytest.raises(ConfigError, match=rf"analyses\.{analysis}\.alphas: .*at least 1 item"):
        validate_config(data, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("radius", "message"),
    [
        (1e-6, r"below the fsaverage5 mesh's vertex spacing \(2.2 mm.*only their centre"),
        (1.0, r"below the fsaverage5 mesh's vertex spacing"),
        (
            1e9,
            r"is more than 50 mm .*10,242 of a hemisphere's 10,242 vertices.*needs about 6\.\d GiB",
        ),
    ],
)
def test_surface_radius_out_of_range_is_refused_before_any_work(tmp_path, radius, message):
    """``radius = 1e-6`` exited 0 with an all-NaN map; ``1e9`` took 6.9 GB."""
    from brainalign.pipeline.study import plan_study

    data = _virtual(tmp_path, searchlight={"models": ["multihot"], "radius": radius})
    cfg = validate_config(data, base_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"^analyses\.searchlight\.radius: \S+ mm (is )?" + message
    ):
        plan_study(cfg)
    assert not (tmp_path / "out").exists()


def test_radius_a_few_mm_is_accepted(tmp_path):
    from brainalign.pipeline.plan import build_plan

    data = _virtual(tmp_path, searchlight={"models": ["multihot"], "radius": 3.0})
    assert build_plan(validate_config(data, base_dir=tmp_path)).mesh["mesh"] == "fsaverage5"


def test_virtual_nsd_larger_than_nsd_is_refused_at_load(tmp_path):
    """``n_subjects = 100000`` planned 400,009 tasks before the build refused it."""
    data = _virtual(tmp_path)
    data["data"]["n_subjects"] = 100_000
    with pytest.raises(ConfigError, match=r"data\.n_subjects: .* exceeds NSD's 73000 images"):
        validate_config(data, base_dir=tmp_path)


def test_data_too_big_for_the_disk_is_refused_before_planning(tmp_path, monkeypatch):
    """100,000 subjects of shared images only: a size estimate, not minutes of planning."""
    import time

    from brainalign.pipeline import estimates
    from brainalign.pipeline.study import plan_study

    monkeypatch.setattr(estimates, "free_disk", lambda p: (tmp_path, 10 << 30))
    data = _virtual(tmp_path)
    data["data"].update(n_subjects=100_000, options={"n_unique": 0})
    cfg = validate_config(data, base_dir=tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        plan_study(cfg)
    text = str(info.value)
    assert "100,000 subject(s) × 120 images × 20,484 units" in text
    assert "data.n_subjects" in text and "10.0 GiB free" in text and "TiB" in text
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "out").exists()


def test_estimates_compare_memory_with_the_machine(tmp_path, monkeypatch):
    """Each step's memory against the machine's: too much is an error naming the step."""
    from brainalign.pipeline import estimates
    from brainalign.pipeline.plan import build_plan

    plan = build_plan(validate_config(_virtual(tmp_path), base_dir=tmp_path))
    steps = estimates.estimate_steps(plan)
    names = [s.name for s in steps]
    assert names[:2] == ["virtual NSD build", "prepared betas (per subject)"]
    assert "searchlight discs" in names and "ROI RSA (per subject and model)" in names
    table = estimates.describe_steps(steps, estimates.n_tasks(plan))
    assert "memory/task" in table and "free disk under" in table
    estimates.check_resources(plan)  # fits this machine
    monkeypatch.setattr(estimates, "machine_memory", lambda: (8 << 20, 4 << 20))
    with pytest.raises(ConfigError, match=r"memory: .* needs about .*this machine has 8\.0 MiB"):
        estimates.check_resources(plan)


def test_rdm_evaluations_are_estimated(tmp_path, monkeypatch):
    """RDM data sets: each evaluation's memory from the set's headers, against the machine."""
    from brainalign.pipeline import estimates
    from brainalign.pipeline.plan import build_plan
    from tests.datasets.rdm_folder import write_by_hand
    from tests.pipeline.test_rdm_study import tiny_config

    write_by_hand(tmp_path / "tiny")
    cfg = validate_config(tiny_config(tmp_path / "tiny", tmp_path / "run"))
    plan = build_plan(cfg)
    steps = estimates.estimate_steps(plan)
    assert steps and all(s.name.startswith("RDM evaluation (tiny, ") for s in steps)
    assert all(s.memory > 0 for s in steps)
    monkeypatch.setattr(estimates, "machine_memory", lambda: (1 << 20, 1 << 20))
    with pytest.raises(ConfigError, match=r"memory: RDM evaluation \(tiny, "):
        estimates.check_resources(plan)


def test_machine_memory_respects_a_cgroup_limit(tmp_path, monkeypatch):
    """A SLURM job or a container is killed at its cgroup's limit, not the node's memory."""
    from brainalign.pipeline import estimates

    limit = tmp_path / "memory.max"
    monkeypatch.setattr(estimates, "CGROUP_LIMIT_FILES", (str(limit),))
    limit.write_text(f"{64 << 20}\n")
    assert estimates.machine_memory() == (64 << 20, 64 << 20)
    limit.write_text("max\n")
    # no limit: the machine's total (available memory moves between two reads)
    assert estimates.machine_memory()[0] == estimates._system_memory()[0]


def test_machine_memory_is_read():
    from brainalign.pipeline.estimates import machine_memory

    total, avail = machine_memory()
    assert total > 100 << 20 and (avail is None or 0 < avail <= total)


def test_dry_run_prints_the_estimates(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "brainalign", "run", str(virtual_study(tmp_path, out)), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "estimates (still to run)" in proc.stdout
    assert "prepared betas (per subject)" in proc.stdout and "free disk under" in proc.stdout
    assert not out.exists()


# ------------------------------------------------------------------------------ subset_size
def test_capped_subset_size_is_reported_as_used(tmp_path):
    """``subset_size = 100000`` was capped at the subjects' images while the methods said
    100000: the dry run warns, run.json and the methods give the size used."""
    from brainalign.pipeline.config import config_of_run
    from brainalign.pipeline.estimates import config_notes
    from brainalign.pipeline.study import methods_writers, run_study

    out = tmp_path / "out"
    path = virtual_study(tmp_path, out)
    path.write_text(path.read_text().replace("subset_size = 8", "subset_size = 100000"))
    cfg = load_config(path)
    (note,) = config_notes(cfg)
    assert note.startswith("analyses.roi_rsa.subset_size = 100,000 is more than the 16 images")
    assert "data.options.n_shared + n_unique = 8 + 8" in note
    run_study(cfg, report=False)
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["analyses"]["roi_rsa"]["subset_size"] == 16
    assert meta["effective"]["analyses.roi_rsa.subset_size"]["requested"] == 100_000
    recorded = config_of_run(meta["config"])
    text = " ".join(p for w in methods_writers("virtual") for p in w(recorded))
    assert "subsets of 16 images" in text and "100000" not in text


# ------------------------------------------------------------------------------ names
def test_searchlight_contrasts_can_be_disabled(tmp_path):
    """``[analyses.searchlight_contrasts]`` had no ``enabled`` key."""
    from brainalign.pipeline.plan import build_plan

    on = _virtual(tmp_path, searchlight_contrasts={"contrasts": [["multihot", "nosuchmodel"]]})
    with pytest.raises(ConfigError, match=r"searchlight_contrasts\.contrasts\[0\]: unknown"):
        validate_config(on, base_dir=tmp_path)
    on["analyses"]["searchlight_contrasts"]["enabled"] = False
    plan = build_plan(validate_config(on, base_dir=tmp_path))
    assert "searchlight_contrasts" not in plan.analyses


@pytest.mark.parametrize("name", ["lab/set", "..", "a__b", "tab\there", " "])
def test_data_set_name_that_is_no_file_name_is_refused_at_load(tmp_path, name):
    """A data-set name with ``/`` passed every check and failed at export, after all the work."""
    data = {
        "data": {"kind": "rdms", "sets": [{"root": str(tmp_path / "set"), "name": name}]},
        "features": {"spaces": ["multihot"]},
        "output": {"dir": str(tmp_path / "out")},
    }
    with pytest.raises(ConfigError) as info:
        validate_config(data, base_dir=tmp_path)
    assert f"data.sets[0].name: {name!r}" in str(info.value)


def test_insilico_category_that_is_no_file_name_is_refused_at_load(tmp_path):
    data = _virtual(tmp_path, encoding={}, insilico={"contrasts": [["people", "a/b"]]})
    data["features"]["spaces"] = ["mpnet"]
    with pytest.raises(ConfigError, match=r"analyses\.insilico\.contrasts\[0\]: 'a/b' holds '/'"):
        validate_config(data, base_dir=tmp_path)


def test_dollars_in_names_are_drawn_as_written():
    """A category with ``$…$`` crashed the report (matplotlib parsed it as TeX)."""
    import pandas as pd

    from brainalign.report import plots, rdm_plots

    odd = ["$x^2$", "$\\frac{$", "cost$$", "a $ b"]
    scores = pd.DataFrame(
        [
            {"subject": s, "roi": roi, "model": m, "r": 0.1 * s}
            for s in (1, 2)
            for roi in odd[:2]
            for m in odd[2:]
        ]
    )
    assert plots.figure_to_base64(plots.roi_bar_figure(scores, title="$\\frac$", ylabel="$"))
    rng = np.random.default_rng(0)
    cats = [odd[i % 4] for i in range(8)]
    assert plots.figure_to_base64(rdm_plots.mds_figure(rng.normal(size=(8, 2)), cats, title="$a"))
    rdm = rng.random(28)
    fig = rdm_plots.ordered_rdms_figure({"$bad$": rdm}, np.arange(8), cats, title="$\\frac$")
    assert plots.figure_to_base64(fig)
    plt = plots._plt()
    fig, ax = plt.subplots()
    ax.bar(odd, [1, 2, 3, 4])  # categorical tick labels
    ax.set_yscale("log")  # numeric tick labels keep their own mathtext
    assert plots.figure_to_base64(fig)


# ------------------------------------------------------------------------------ Dask
def test_scheduler_without_workers_stops_naming_it(tmp_path):
    """A Dask scheduler with no workers: the run waited forever."""
    import time

    from distributed import LocalCluster

    from brainalign.parallel import get_executor

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        t0 = time.perf_counter()
        with pytest.raises(ConfigError) as info:
            get_executor("dask", scheduler=address, worker_timeout=2)
        assert time.perf_counter() - t0 < 30
    text = str(info.value)
    assert text.startswith("compute.scheduler: ") and "\n" not in text
    assert f"{address!r} has 0 worker(s) after 2 s" in text and "compute.worker_timeout" in text


def test_worker_timeout_is_a_positive_option(tmp_path):
    data = {**_virtual(tmp_path), "compute": {"worker_timeout": 0}}
    with pytest.raises(ConfigError, match=r"compute\.worker_timeout"):
        validate_config(data, base_dir=tmp_path)
    data["compute"]["worker_timeout"] = 5
    assert validate_config(data, base_dir=tmp_path).compute.worker_timeout == 5
