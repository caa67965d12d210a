"""Vision models layer by layer as RDMs: EfficientNet-lite0 block by block, a trained BLT network
layer × timestep (from its checkpoints), precomputed features."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.networks import BLTNet, activations, layer_rdms, network_layers, save_checkpoint
from brainalign.networks.zoo import ZooModel
from brainalign.rsa import compute_rdm


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(5, 40, 40, 3), dtype=np.uint8)


def test_efficientnet_block_by_block(images):
    from brainalign.features.vision import activations as vision_activations
    from brainalign.features.vision import load_vision_model

    rdms = layer_rdms("efficientnet-lite0", images)
    labels = network_layers("efficientnet-lite0")
    assert list(rdms) == labels and labels[0] == "stem" and labels[-1] == "logits"
    assert len(labels) == 20 and all(r.shape == (10,) for r in rdms.values())
    model = load_vision_model("efficientnet-lite0")
    acts = vision_activations(model, images, layers=["_blocks.3"], pooling=None)
    X = acts["_blocks.3"].reshape(5, -1)
    np.testing.assert_allclose(rdms["block03"], compute_rdm(X[:, np.ptp(X, 0) > 0]), atol=1e-5)
    pooled = layer_rdms("efficientnet-lite0", images, pooling="mean")
    assert not np.allclose(pooled["block03"], rdms["block03"])
    np.testing.assert_allclose(pooled["avgpool"], rdms["avgpool"], atol=1e-6)


def test_trained_network_every_layer_and_timestep(images, tmp_path):
    import torch

    torch.manual_seed(0)
    net = BLTNet(n_outputs=4, n_layers=3, timesteps=2, width=0.03, image_size=32)
    ckpt = save_checkpoint(tmp_path / "ckpt", net, step=1, metadata={})
    entry = ZooModel("tiny_blt", "blt", options={"checkpoints": [str(ckpt)]})
    rdms = layer_rdms(entry, images)
    assert list(rdms) == list(net.layer_names) and len(rdms) == 6
    acts = activations(net.eval(), images, layers=None)
    name = net.layer_names[3]
    np.testing.assert_allclose(rdms[name], compute_rdm(acts[name]), atol=1e-5)


def test_precomputed_features(images, tmp_path):
    X = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "ids.npy", np.arange(5))
    entry = ZooModel(
        "feat",
        "features",
        options={"path": str(tmp_path / "X.npy"), "ids_path": str(tmp_path / "ids.npy")},
    )
    rdms = layer_rdms(entry, images)
    np.testing.assert_allclose(rdms["features"], compute_rdm(X), atol=1e-6)
