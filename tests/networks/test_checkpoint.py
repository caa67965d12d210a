from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainalign.errors import ConfigError, DataFormatError, IntegrityError
from brainalign.networks import latest_checkpoint, load_network, train
from brainalign.networks.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def small(scene_data):
    train_data, val_data = scene_data
    return train_data.subset(np.arange(48)), val_data.subset(np.arange(12))


def _params(net):
    return [p.detach().clone() for p in net.state_dict().values()]


def test_checkpoint_reload_is_bit_identical(small, make_net, tmp_path):
    data, val = small
    d = data.target("mpnet").shape[1]
    res = train(
        make_net(d), data, "mpnet", val_data=val, epochs=1, batch_size=16, checkpoint_dir=tmp_path
    )
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "latest.json" in files and any(f.endswith(".optim.safetensors") for f in files)
    assert res.checkpoint == latest_checkpoint(tmp_path)
    info = json.loads(res.checkpoint.read_text())
    assert info["net_config"] == res.net.config() and info["step"] == 3
    again = load_network(tmp_path)
    x = torch.from_numpy(
        np.random.default_rng(0).standard_normal((4, 3, 64, 64)).astype(np.float32)
    )
    net = res.net.eval()
    with torch.no_grad():
        for a, b in zip(
            net(x, return_activations=True)[1].values(),
            again(x, return_activations=True)[1].values(),
            strict=True,
        ):
            assert torch.equal(a, b)
        assert all(torch.equal(a, b) for a, b in zip(net(x), again(x), strict=True))


def test_killed_training_resumes_to_the_same_weights(small, make_net, tmp_path):
    data, val = small
    d = data.target("mpnet").shape[1]
    kw = {"val_data": val, "epochs": 3, "batch_size": 16, "random_state": 5}
    full = train(make_net(d, seed=1), data, "mpnet", checkpoint_dir=tmp_path / "full", **kw)
    # a run "killed" after 4 of 9 steps (mid-epoch), then restarted from scratch by a new process
    part = train(
        make_net(d, seed=1), data, "mpnet", checkpoint_dir=tmp_path / "cut", max_steps=4, **kw
    )
    assert part.step == 4 and not part.completed
    fresh = make_net(d, seed=99)  # different init: everything must come from the checkpoint
    resumed = train(fresh, data, "mpnet", checkpoint_dir=tmp_path / "cut", **kw)
    assert resumed.step == full.step == 9 and resumed.completed
    assert all(
        torch.equal(a, b) for a, b in zip(_params(full.net), _params(resumed.net), strict=True)
    )
    # and without the optimizer state it would not have matched: Adam moments matter
    assert resumed.history[-1]["val_cosine"] == pytest.approx(full.history[-1]["val_cosine"], abs=0)


def test_resume_refuses_a_different_run(small, make_net, tmp_path):
    data, _ = small
    d = data.target("mpnet").shape[1]
    train(make_net(d), data, "mpnet", epochs=1, batch_size=16, checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="batch_size"):
        train(make_net(d), data, "mpnet", epochs=1, batch_size=8, checkpoint_dir=tmp_path)
    with pytest.raises(DataFormatError, match="different data"):
        train(
            make_net(d),
            data.subset(np.arange(32)),
            "mpnet",
            epochs=1,
            batch_size=16,
            checkpoint_dir=tmp_path,
        )


def test_corrupt_checkpoint_is_detected(small, make_net, tmp_path):
    data, _ = small
    d = data.target("mpnet").shape[1]
    res = train(make_net(d), data, "mpnet", epochs=1, batch_size=16, checkpoint_dir=tmp_path)
    weights = res.checkpoint.with_suffix(".safetensors")
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="sha256"):
        read_checkpoint(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no checkpoint"):
        load_network(tmp_path / "empty")
