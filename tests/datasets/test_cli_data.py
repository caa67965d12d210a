"""The data commands: ``brainalign virtual-nsd`` and ``brainalign nsd prepare``."""

from __future__ import annotations

import json
import subprocess
import sys

import typer
from typer.testing import CliRunner

from brainalign.cli import data


def _app():
    app = typer.Typer()

    @app.callback()
    def _root():
        """test root"""

    data.register(app)
    return app


def test_virtual_nsd_then_prepare(tmp_path):
    runner = CliRunner()
    root = tmp_path / "nsd"
    args = ["virtual-nsd", str(root), "--subjects", "2", "--shared", "6", "--unique", "6"]
    result = runner.invoke(_app(), [*args, "--sessions", "4", "--voxel-size", "10", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "virtual NSD written" in result.output
    truth = json.loads((root / "virtual_truth.json").read_text())
    assert truth["random_state"] == 4 and truth["parameters"]["n_subjects"] == 2
    cache = tmp_path / "cache"
    cmd = ["nsd", "prepare", str(root), "--subject", "1", "--subject", "2"]
    result = runner.invoke(_app(), [*cmd, "--space", "func1pt8mm", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    assert "subj01 func1pt8mm" in result.output and "subj02 func1pt8mm" in result.output
    assert len(list(cache.rglob("betas.npy"))) == 2
    # ROOT is not empty now: a second run refuses unless --overwrite
    result = runner.invoke(_app(), [*args, "--sessions", "4"])
    assert result.exit_code != 0


def test_errors_exit_cleanly(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "brainalign", "nsd", "prepare", str(tmp_path), "--subject", "1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "not an NSD root" in proc.stderr and "Traceback" not in proc.stderr
