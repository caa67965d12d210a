"""Vision-model activations: EfficientNet-Lite0 offline on real photographs, hooks, streaming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from brainalign.errors import InputError, ModelNotFoundError
from brainalign.features import Preprocess, activations, load_vision_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

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
        activations(lite0, photos, layers=["_conv_head"], batch_size=1, out=tmp_path)
    calls.clear()
    out = activations(lite0, photos, layers=["_conv_head"], batch_size=1, out=tmp_path)
    assert len(calls) == 1  # only the missing image was computed
    assert isinstance(out["_conv_head"], np.memmap)
    np.testing.assert_allclose(out["_conv_head"], ref["_conv_head"], atol=1e-5)
    calls.clear()
    again = activations(lite0, photos, layers=["_conv_head"], batch_size=1, out=tmp_path)
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


def test_a_transformers_tokens_are_pooled_not_its_features():
    """A (n, tokens, dim) output (a ViT block) is averaged over its tokens → (n, dim), on both
    backends; averaging over the features would give ~0 after a layer norm."""

    class Tokens(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 6, 4, stride=4)
            self.norm = torch.nn.LayerNorm(6)

        def forward(self, x):
            return self.norm(self.embed(x).flatten(2).transpose(1, 2))  # (n, 16 tokens, 6)

    torch.manual_seed(0)
    net = Tokens().eval()
    x = np.random.default_rng(1).standard_normal((4, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).mean(1).numpy()
    for backend in ("torch", "auto"):
        got = activations(net, x, layers=["norm"], batch_size=2, backend=backend)["norm"]
        assert got.shape == (4, 6)
        np.testing.assert_allclose(got, want, atol=1e-5)


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


class _Described(torch.nn.Module):
    """A module that describes itself to activations() (as a BLTNet does), on 2×2 images."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))

    def activation_spec(self):
        from brainalign.features.vision import ActivationSpec

        def prep(images, device="cpu", crop=None):
            x = torch.as_tensor(images, device=device).permute(0, 3, 1, 2).float() / 255
            if crop is not None:  # a "crop" that shows which seed and batch it was given
                x = x + float(crop[0] * 100 + crop[1])
            return x

        return ActivationSpec(
            layers=("conv", "fc"), preprocess=prep, batch_size=3, random_crop=True
        )


def test_a_module_describing_itself_gets_its_layers_preprocessing_and_crop():
    net = _Described()
    images = np.random.default_rng(0).integers(0, 256, (7, 2, 2, 3), dtype=np.uint8)
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        conv = net.conv(x)
        ref = {"conv": conv.mean(dim=(2, 3)).numpy(), "fc": net.fc(conv.mean(dim=(2, 3))).numpy()}
    acts = activations(net, images)  # the spec's layers and preprocessing
    assert list(acts) == ["conv", "fc"]
    for k in ref:
        np.testing.assert_allclose(acts[k], ref[k], rtol=1e-6, atol=1e-6)
    assert list(activations(net, images, layers="last")) == ["fc"]
    # test_time_crop hands the preprocessing (random_state, batch index) per batch of 3
    crop = activations(net, images, layers=["conv"], test_time_crop=True, random_state=2)["conv"]
    shift = np.repeat([200.0, 201.0, 202.0], 3)[:7, None]
    np.testing.assert_allclose(
        crop, ref["conv"] + shift * net.conv.weight.detach().sum((1, 2, 3)).numpy(), rtol=1e-5
    )


def test_options_a_model_cannot_honour_are_errors(photos):
    from brainalign.features.vision import ActivationSpec

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1))
    x = photos[:2, :8, :8].astype(np.float32).transpose(0, 3, 1, 2)
    with pytest.raises(InputError, match="test_time_crop: Sequential"):
        activations(net, x, layers=["0"], test_time_crop=True)
    with pytest.raises(InputError, match="layers: name the modules of Sequential"):
        activations(net, x)
    with pytest.raises(InputError, match="mixed_precision"):
        activations(net, x, layers=["0"], mixed_precision=True)
    with pytest.raises(InputError, match="allow_tf32"):
        activations(net, x, layers=["0"], allow_tf32=True)
    described = _Described()
    with pytest.raises(InputError, match="test_time_crop: the crop"):
        activations(described, photos, test_time_crop=True, preprocess=Preprocess(2, 2))
    no_onnx = ActivationSpec(layers=("conv",), preprocess=lambda im, device="cpu": None, onnx=False)
    described.activation_spec = lambda: no_onnx
    with pytest.raises(InputError, match="backend: _Described cannot run in ONNX Runtime"):
        activations(described, photos, backend="onnxruntime")


def test_readers_image_sets_ids_and_the_out_manifest(tmp_path):
    from brainalign.features.vision import ImageSource, load_activations

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).eval()
    images = np.random.default_rng(1).random((5, 3, 2, 2)).astype(np.float32)
    ids = np.array([40, 10, 30, 20, 50])
    ref = activations(net, images, layers=["1"], batch_size=2)["1"]

    def read(wanted):
        return images[[int(np.flatnonzero(ids == i)[0]) for i in wanted]]

    np.testing.assert_array_equal(activations(net, read, layers=["1"], ids=ids)["1"], ref)
    with pytest.raises(InputError, match="ids: a reader"):
        activations(net, read, layers=["1"])

    class Set:  # the image-set protocol of networks.ImageData
        def __init__(self):
            self.ids = ids

        def load_images(self, positions):
            return images[positions]

    source = ImageSource(Set())
    assert np.array_equal(source.ids, ids) and np.array_equal(source.batch(1, 3), images[1:3])
    with pytest.raises(InputError, match="these differ"):
        ImageSource(Set(), ids=ids[::-1])
    with pytest.raises(InputError, match="ids: expected 5 ids"):
        ImageSource(images, ids=ids[:3])
    with pytest.raises(InputError, match="empty"):
        ImageSource(images[:0])
    out = activations(net, Set(), layers=["1"], batch_size=2, out=tmp_path)
    np.testing.assert_array_equal(out["1"], ref)
    loaded, got_ids = load_activations(tmp_path)
    assert np.array_equal(got_ids, ids) and np.array_equal(loaded["1"], ref)


def test_an_out_folder_is_never_reused_for_other_weights(tmp_path):
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 100 * 100, 2)).eval()
    b = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 100 * 100, 2)).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b[1].weight[1, -1] += 1.0  # past the first 64 kB of the tensor
    x = np.ones((2, 3, 100, 100), np.float32)
    first = np.array(activations(a, x, layers=["1"], out=tmp_path)["1"])
    second = activations(b, x, layers=["1"], out=tmp_path)["1"]
    np.testing.assert_allclose(second[:, 1] - first[:, 1], 1.0, rtol=1e-4)


def test_your_own_module_from_a_file_with_its_weights(photos, tmp_path, monkeypatch):
    """A ``module`` model: a factory in the user's .py file, the user's weights, ImageNet
    preprocessing; its activations are a plain forward of the same module."""
    import importlib.util

    from safetensors.torch import save_file

    from brainalign.features.vision import load_module_model

    source = EXAMPLES / "resnet18.py"
    spec = importlib.util.spec_from_file_location("resnet18_example", source)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    torch.manual_seed(3)
    net = example.resnet18(num_classes=10).eval()
    for m in net.modules():  # non-trivial running statistics, so eval-mode BN matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    weights = tmp_path / "resnet18.safetensors"
    save_file(net.state_dict(), str(weights))
    model = load_module_model("resnet18", source, weights, num_classes=10)
    assert model.identity.startswith("module:resnet18.resnet18@")
    acts = activations(model, photos[:3], layers=["layer2", "avgpool"], batch_size=2)
    x = Preprocess(224, 256)(photos[:3])
    with torch.no_grad():
        h = net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))
        pooled = net.avgpool(net.layer4(net.layer3(h))).flatten(1)
    np.testing.assert_allclose(acts["layer2"], h.mean((2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["avgpool"], pooled.numpy(), atol=1e-5)
    # an importable factory works the same; the weights key the identity
    monkeypatch.syspath_prepend(str(EXAMPLES))
    again = load_module_model("resnet18:resnet18", weights=weights, num_classes=10)
    assert again.identity.split("@")[1] == model.identity.split("@")[1][:16]
    with pytest.raises(ModelNotFoundError, match="no function or class 'resnet34'"):
        load_module_model("resnet34", source)
    with pytest.raises(ModelNotFoundError, match="is not a file"):
        load_module_model("resnet18", tmp_path / "missing.py")
    with pytest.raises(InputError, match="not a torch.nn.Module"):
        load_module_model("numpy:zeros", shape=3)
    with pytest.raises(InputError, match="package.module:name"):
        load_module_model("resnet18")
