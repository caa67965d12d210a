from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from brainalign.errors import ConfigError
from brainalign.networks import BLTNet, load_network
from brainalign.networks.config import (
    NetworkSettings,
    load_compare_config,
    load_train_config,
    run_train_config,
)

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


def test_example_configs_validate():
    train_files = sorted((REPO / "configs").glob("networks_train_*.toml"))
    assert train_files
    for path in train_files:
        cfg = load_train_config(path)
        assert cfg.train.seeds and cfg.train.out.is_absolute(), path
    cfg = load_compare_config(REPO / "configs" / "networks_compare.toml")
    assert cfg.rsa.subset_size == 100 and len(cfg.models) >= 2


def test_network_section_mirrors_bltnet():
    """[network] declares exactly BLTNet's arguments (n_outputs comes from the target)."""
    params = set(inspect.signature(BLTNet).parameters) - {"n_outputs"}
    assert set(NetworkSettings.model_fields) == params


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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TRAIN.format(extra="momentum = 0.9"), "train.momentum: unknown key"),
        (TRAIN.format(extra="epochs = 0").replace("epochs = 2\n", ""), "train.epochs: must be > 0"),
        (TRAIN.format(extra="random_state = 3"), "train.random_state: set by the seeds"),
        (TRAIN.format(extra="loss = 'hinge'"), "train.loss: expected one of"),
        (TRAIN.replace("n_val = 8", "n_vall = 8").format(extra=""), "data.n_vall: unknown key"),
        (TRAIN.replace('"scenes"', '"flickr"').format(extra=""), "data: Input tag 'flickr'"),
        (TRAIN.replace("width", "widht").format(extra=""), "network.widht: unknown key"),
        (TRAIN.replace('out = "runs"', "").format(extra=""), "train.out: required key is missing"),
        ("[network]\n", "data: required key is missing"),
    ],
)
def test_train_config_errors_name_file_and_key(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        run_train_config(bad)
    assert f"{str(bad)!r}: {message}" in str(err.value)


def test_train_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        run_train_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        run_train_config(tmp_path / "missing.toml")


def test_train_config_paths_and_seed(tmp_path):
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "train.toml"
    path.write_text(TRAIN.replace("seeds = [1, 2]", "seed = 7").format(extra=""))
    cfg = load_train_config(path)
    assert cfg.train.seeds == [7] and cfg.train.out == tmp_path / "cfg" / "runs"
    assert cfg.train.train_config(7).random_state == 7 and cfg.train.loss == "bce"
    assert cfg.network.build(5).n_outputs == 5
    path.write_text(TRAIN.format(extra="seed = 7"))
    with pytest.raises(ConfigError, match="not both"):
        load_train_config(path)


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
