from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from brainalign.errors import ConfigError, InputError
from brainalign.networks import ImageData, train
from brainalign.networks.train import (
    TrainConfig,
    bce_loss,
    cosine_distance,
    default_loss,
    sigmoid_cosine_distance,
)

IMAGE_SIZE = 64


def test_losses_match_references(rng):
    out = rng.standard_normal((7, 5)).astype(np.float32)
    y = rng.standard_normal((7, 5)).astype(np.float32)
    hot = (rng.random((7, 5)) < 0.3).astype(np.float32)
    hot[:, 0] = 1.0  # cosine needs a non-zero target
    to = torch.from_numpy
    expected = np.mean(np.diag(cdist(out, y, "cosine")))
    assert float(cosine_distance(to(out), to(y))) == pytest.approx(expected, rel=1e-5)
    p = 1 / (1 + np.exp(-out.astype(np.float64)))
    bce = -np.mean(hot * np.log(p) + (1 - hot) * np.log(1 - p))
    assert float(bce_loss(to(out), to(hot))) == pytest.approx(bce, rel=1e-5)
    sig = np.mean(np.diag(cdist(p, hot, "cosine")))
    assert float(sigmoid_cosine_distance(to(out), to(hot))) == pytest.approx(sig, rel=1e-5)
    assert default_loss("multihot") == "bce" and default_loss("mpnet") == "cosine"


def test_mpnet_targets_path(mpnet, scenes, make_net):
    """The paper's encoder end to end on a few scenes: 768-d targets, one training epoch runs."""
    from brainalign.networks import from_scenes

    data = from_scenes(
        scenes.subset(np.arange(6)), ("mpnet",), encoder=mpnet, image_size=IMAGE_SIZE
    )
    assert data.target("mpnet").shape == (6, 768)
    res = train(make_net(768), data, "mpnet", epochs=1, batch_size=6, augment=False)
    assert res.step == 1 and np.isfinite(res.history[-1]["train_loss"])


def test_train_rejects_bad_input(scene_data, make_net):
    train_data, _ = scene_data
    with pytest.raises(InputError, match="n_outputs"):
        train(make_net(3), train_data, "mpnet", epochs=1)
    with pytest.raises(InputError, match="not in this data"):
        train(make_net(3), train_data, "captions", epochs=1)
    with pytest.raises(ConfigError, match="loss"):
        TrainConfig(loss="hinge")
    with pytest.raises(InputError, match="ImageData"):
        train(make_net(3), np.zeros((2, 64, 64, 3), np.uint8), "mpnet")


def test_train_takes_a_config_or_keywords(scene_data, make_net):
    train_data, _ = scene_data
    small = train_data.subset(np.arange(24))
    d = small.target("mpnet").shape[1]
    cfg = TrainConfig(target="mpnet", epochs=1, batch_size=12, augment=False)
    assert cfg.loss == "cosine" and TrainConfig(target="multihot").loss == "bce"
    a = train(make_net(d, seed=3), small, cfg)
    b = train(make_net(d, seed=3), small, "mpnet", epochs=1, batch_size=12, augment=False)
    assert a.history == b.history and a.step == b.step == 2
    with pytest.raises(InputError, match="one or the other"):
        train(make_net(d), small, cfg, epochs=2)
    with pytest.raises(InputError, match="given twice"):
        train(make_net(d), small, "mpnet", target="multihot")
    with pytest.raises(ConfigError, match="momentum: unknown key"):
        train(make_net(d), small, "mpnet", momentum=0.9)
    with pytest.raises(ConfigError, match="epochs: must be > 0"):
        TrainConfig(epochs=0)


def test_train_is_deterministic(scene_data, make_net):
    train_data, _ = scene_data
    small = train_data.subset(np.arange(24))
    runs = []
    for _ in range(2):
        res = train(
            make_net(small.target("mpnet").shape[1], seed=3),
            small,
            "mpnet",
            epochs=1,
            batch_size=12,
        )
        runs.append([p.detach().clone() for p in res.net.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_image_data_validation():
    with pytest.raises(InputError, match="uint8"):
        ImageData(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(InputError, match="aligned"):
        ImageData(np.zeros((2, 8, 8, 3), np.uint8), {"mpnet": np.zeros((3, 4))})
    with pytest.raises(InputError, match="NaN"):
        ImageData(np.zeros((2, 8, 8, 3), np.uint8), {"mpnet": np.full((2, 4), np.nan)})
