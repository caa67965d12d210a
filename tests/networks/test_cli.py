from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from brainalign.errors import ConfigError
from brainalign.networks import load_network
from brainalign.networks.config import run_train_config

REPO = Path(__file__).resolve().parents[2]

TRAIN = """
[network]
width = 0.0625
timesteps = 2
image_size = 64

[data]
source = "scenes"
n = 40
random_state = 77
render_size = 64
n_val = 8

[train]
target = "multihot"
epochs = 2
batch_size = 8
seeds = [1, 2]
out = "runs"
{extra}
"""


@pytest.fixture(scope="module")
def app():
    from brainalign.cli import _register
    from brainalign.cli import app as root

    _register()
    return root


def test_example_configs_parse():
    from brainalign.networks.config import read_toml

    for path in sorted((REPO / "configs").glob("networks_*.toml")):
        cfg = read_toml(path)
        assert {"data"} <= set(cfg), path


def test_train_command_trains_every_seed_and_resumes(app, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text(TRAIN.format(extra="max_steps = 3"))
    runner = CliRunner()
    first = runner.invoke(app, ["train", str(cfg), "--quiet"])
    assert first.exit_code == 0, first.output
    assert "stopped early" in first.output
    cfg.write_text(TRAIN.format(extra=""))
    second = runner.invoke(app, ["train", str(cfg), "--quiet"])
    assert second.exit_code == 0, second.output
    for seed in (1, 2):
        info = json.loads((tmp_path / "runs" / f"seed{seed}" / "latest.json").read_text())
        assert info["step"] == 8  # 32 training scenes / 8 per batch × 2 epochs
    # the resumed run equals one trained without interruption
    cfg2 = tmp_path / "again" / "train.toml"
    cfg2.parent.mkdir()
    cfg2.write_text(TRAIN.format(extra=""))
    run_train_config(cfg2, verbose=False)
    a = load_network(tmp_path / "runs" / "seed1")
    b = load_network(tmp_path / "again" / "runs" / "seed1")
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_train_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TRAIN.format(extra="momentum = 0.9"))
    with pytest.raises(ConfigError, match="unknown keys"):
        run_train_config(bad)
    bad.write_text("[network]\n")
    with pytest.raises(ConfigError, match=r"\[data\]"):
        run_train_config(bad)
    bad.write_text("not toml [")
    with pytest.raises(ConfigError, match="invalid TOML"):
        run_train_config(bad)


def test_compare_models_command(app, virtual_nsd_root, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text(TRAIN.format(extra=""))
    run_train_config(cfg, verbose=False)
    rng = np.random.default_rng(0)
    from brainalign.datasets import load_stimuli

    ids = load_stimuli(virtual_nsd_root).image_ids
    np.save(tmp_path / "rand.npy", rng.standard_normal((len(ids), 16)).astype(np.float32))
    np.save(tmp_path / "ids.npy", ids)
    (tmp_path / "compare.toml").write_text(
        f"""
[data]
root = "{virtual_nsd_root}"
subjects = [1, 2]
rois = ["ventral", "lateral"]

[rsa]
subset_size = 60

[[models]]
name = "tiny RCNN"
kind = "blt"
checkpoints = ["runs/seed1", "runs/seed2"]
training_images = 32

[[models]]
name = "random features"
kind = "features"
path = "rand.npy"
ids_path = "ids.npy"

[output]
dir = "out"
"""
    )
    result = CliRunner().invoke(app, ["compare-models", str(tmp_path / "compare.toml"), "--quiet"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "table.csv")
    assert set(table.model) == {"tiny RCNN", "random features"} and set(table.roi) == {
        "ventral",
        "lateral",
    }
    assert (pd.read_parquet(tmp_path / "out" / "subjects.parquet")["instances"].max()) == 2
    assert (tmp_path / "out" / "figure.png").stat().st_size > 1000
    # activations were cached per model instance and are reused on a rerun
    assert (
        tmp_path / "out" / "activations" / "tiny_RCNN" / "instance_1" / "activations.json"
    ).exists()
