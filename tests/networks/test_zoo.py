"""The zoo's packaged EfficientNet-lite1 and -lite2: offline ImageNet weights, their own input
resolution, features of the documented shape, read block by block."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from brainalign.features.vision import load_vision_model
from brainalign.networks import layer_rdms, network_layers
from brainalign.networks.zoo import list_models, model_features, model_layer

CAT_CLASSES = {281, 282, 283, 284, 285}  # ImageNet-1k: tabby, tiger cat, Persian, Siamese, Egyptian


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Two real photographs of different sizes' crops: a cat and a cup of coffee (300 × 400)."""
    return np.stack([skimage.data.chelsea()[:300, :400], skimage.data.coffee()[100:400, 50:450]])


@pytest.mark.parametrize("name, size", [("efficientnet-lite1", 240), ("efficientnet-lite2", 260)])
def test_lite1_lite2_offline(name, size, photos):
    assert name in list_models() and model_layer(name) == "_avg_pooling"
    model = load_vision_model(name)
    assert model.identity.startswith(f"{name}@")
    assert model.preprocess.size == size  # each variant's own resolution, not lite0's 224
    x = model.preprocess(photos)
    assert tuple(x.shape) == (2, 3, size, size)
    # the packaged ImageNet weights, not a random init: the cat is a cat
    assert int(model(photos[:1]).argmax(-1)) in CAT_CLASSES
    (X,) = model_features(name, photos)
    assert X.shape == (2, 1280) and X.dtype == np.float32 and np.isfinite(X).all()
    assert not np.allclose(X[0], X[1])


def test_lite2_block_by_block():
    labels = network_layers("efficientnet-lite2")
    assert labels[0] == "stem" and labels[-1] == "logits" and len(labels) == 21 + 4
    images = np.random.default_rng(0).integers(0, 255, size=(3, 32, 32, 3), dtype=np.uint8)
    rdms = layer_rdms("efficientnet-lite2", images, pooling="mean")
    assert list(rdms) == labels and all(r.shape == (3,) for r in rdms.values())
