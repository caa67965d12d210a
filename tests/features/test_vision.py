"""Vision-model activations: EfficientNet-Lite0 offline on real photographs, hooks, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from brainalign.errors import InputError, ModelNotFoundError
from brainalign.features import Preprocess, activations, load_vision_model

# ImageNet-1k class indices (the standard synset order)
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {504, 967, 968}  # coffee mug, espresso, cup
LAYERS = ["_blocks.3", "_blocks.15", "_conv_head", "_fc"]


@pytest.fixture(scope="session")
def lite0():
    return load_vision_model("efficientnet-lite0")


@pytest.fixture(scope="session")
def photos() -> np.ndarray:
    """Real photographs (skimage samples), centre-cropped to a common 300 × 400 size."""
    imgs = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    return np.stack([im[:300, :400] if im.shape[0] < 500 else im[100:400, 50:450] for im in imgs])


def test_lite0_classifies_real_images(lite0, photos):
    assert lite0.identity.startswith("efficientnet-lite0@")
    probs = lite0(photos[:2]).softmax(-1)
    top = probs.argmax(-1).tolist()
    assert top[0] in CAT_CLASSES  # Chelsea the cat
    assert top[1] in COFFEE_CLASSES  # a cup of coffee
    assert float(probs[0, sorted(CAT_CLASSES)].sum()) > 0.5


def test_activations_shapes_and_equal_to_direct_forward(lite0, photos):
    acts = activations(lite0, photos, layers=LAYERS, batch_size=2)
    assert set(acts) == set(LAYERS)
    assert acts["_blocks.3"].shape == (3, 40) and acts["_conv_head"].shape == (3, 1280)
    assert acts["_fc"].shape == (3, 1000)
    assert all(a.dtype == np.float32 for a in acts.values())
    logits = lite0(photos).numpy()
    np.testing.assert_allclose(acts["_fc"], logits, atol=1e-4)
    full = activations(lite0, photos[:1], layers=["_conv_head"], pooling=None)["_conv_head"]
    assert full.shape == (1, 1280, 7, 7)
    np.testing.assert_allclose(full.mean(axis=(2, 3)), acts["_conv_head"][:1], atol=1e-5)


def test_preprocessing_is_deterministic_and_centre_crops(photos):
    pre = Preprocess(size=224, resize=256)
    a, b = pre(photos), pre(photos)
    assert a.shape == (3, 3, 224, 224)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    square = np.zeros((1, 256, 256, 3), np.uint8)
    square[:, 16:240, 16:240] = 255  # the crop keeps exactly the white centre
    x = Preprocess(size=224, resize=256, mean=(0, 0, 0), std=(1, 1, 1))(square)
    assert float(x.min()) == 1.0


def test_streaming_to_disk_resumes_and_reuses(lite0, photos, tmp_path, monkeypatch):
    ref = activations(lite0, photos, layers=["_conv_head"], batch_size=1)
    calls = []
    real_forward = lite0.module.forward

    def killed_after_two(x):
        calls.append(len(x))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed during the third batch
        return real_forward(x)

    monkeypatch.setattr(lite0.module, "forward", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        activations(lite0, photos, layers=["_conv_head"], batch_size=1, out_dir=tmp_path)
    calls.clear()
    out = activations(lite0, photos, layers=["_conv_head"], batch_size=1, out_dir=tmp_path)
    assert len(calls) == 1  # only the missing image was computed
    assert isinstance(out["_conv_head"], np.memmap)
    np.testing.assert_allclose(out["_conv_head"], ref["_conv_head"], atol=1e-5)
    calls.clear()
    again = activations(lite0, photos, layers=["_conv_head"], batch_size=1, out_dir=tmp_path)
    assert calls == []
    np.testing.assert_array_equal(again["_conv_head"], out["_conv_head"])


def test_plain_module_and_repeated_calls():
    class Recurrent(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            for _ in range(3):  # one module unrolled over 3 timesteps
                x = torch.relu(self.conv(x)[:, :3])
            return x

    torch.manual_seed(0)
    net = Recurrent()
    x = np.random.default_rng(0).standard_normal((5, 3, 8, 8)).astype(np.float32)
    acts = activations(net, x, layers=["conv"], batch_size=2)
    assert sorted(acts) == ["conv@t0", "conv@t1", "conv@t2"]
    with torch.no_grad():
        first = net.conv(torch.from_numpy(x)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(acts["conv@t0"], first, atol=1e-5)


def test_bad_inputs(lite0, photos):
    with pytest.raises(InputError, match="expected a 4-D batch"):
        activations(lite0, photos[0], layers=["_fc"])
    with pytest.raises(InputError, match=r"\(n, H, W, 3\)"):
        activations(lite0, photos[..., :2], layers=["_fc"])
    with pytest.raises(InputError, match="dtype int64"):
        activations(lite0, photos.astype(np.int64), layers=["_fc"])
    with pytest.raises(InputError, match="not modules of this model"):
        activations(lite0, photos, layers=["_blocks.99"])
    with pytest.raises(InputError, match="pooling"):
        activations(lite0, photos, layers=["_fc"], pooling="max")
    with pytest.raises(InputError, match="unknown vision model"):
        load_vision_model("resnet50-imagenet:x:y")
    with pytest.raises((ModelNotFoundError, InputError)):
        load_vision_model("timm:resnet50", weights="missing.safetensors")
