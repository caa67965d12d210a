"""ONNX Runtime activations equal PyTorch's to float32 rounding; every fallback gives PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

import brainalign.features.vision as vision
from brainalign.errors import DataFormatError, InputError
from brainalign.features import Preprocess, activations, load_vision_model
from brainalign.features.onnx_backend import OnnxTaps, onnx_available

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="needs onnxruntime and onnx")
LAYERS = ["_blocks.1", "_blocks.15", "_avg_pooling", "_fc"]


def _close(a, b, tol=1e-5):
    """Max abs difference within ``tol`` × the largest value (float32 rounding of a deep net)."""
    assert a.shape == b.shape
    assert float(np.abs(a - b).max()) <= tol * float(np.abs(a).max())


@pytest.fixture(scope="module")
def lite0():
    return load_vision_model("efficientnet-lite0")


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Three real photographs and a random image, 300 × 400."""
    imgs = [skimage.data.chelsea()[:300, :400], skimage.data.coffee()[:300, :400]]
    imgs.append(skimage.data.astronaut()[100:400, 50:450])
    imgs.append(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    return np.stack(imgs)


class Recurrent(torch.nn.Module):
    """One convolution unrolled over 3 timesteps, then a linear read-out."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3, 5)

    def forward(self, x):
        for _ in range(3):
            x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.mean(dim=(2, 3)))


@needs_onnx
def test_efficientnet_equals_torch(lite0, photos):
    # 112 px instead of 224 keeps the test fast; batches of 3 leave a last batch of 1, smaller
    # than the traced one
    small = Preprocess(size=112, resize=112, mean=(127.0,) * 3, std=(128.0,) * 3, scale=1.0)
    kw = {"layers": LAYERS, "batch_size": 3, "preprocess": small}
    ref = activations(lite0, photos, backend="torch", **kw)
    got = activations(lite0, photos, backend="onnxruntime", **kw)
    assert set(got) == set(LAYERS) and got["_avg_pooling"].shape == (4, 1280)
    for layer in LAYERS:
        assert got[layer].dtype == np.float32
        _close(ref[layer], got[layer])


@needs_onnx
def test_recurrent_module_and_tap_counts():
    torch.manual_seed(0)
    net = Recurrent().eval()
    with torch.no_grad():
        net.bn.running_var.uniform_(0.5, 2.0)
    x = np.random.default_rng(1).standard_normal((5, 3, 9, 9)).astype(np.float32)
    ref = activations(net, x, layers=["conv", "fc"], batch_size=2, backend="torch")
    got = activations(net, x, layers=["conv", "fc"], batch_size=2, backend="onnxruntime")
    assert sorted(got) == ["conv@t0", "conv@t1", "conv@t2", "fc"]
    for key in ref:
        _close(ref[key], got[key])
    ref = activations(net, x, layers=["bn"], pooling=None, batch_size=2, backend="torch")
    got = activations(net, x, layers=["bn"], pooling=None, batch_size=2, backend="onnxruntime")
    assert got["bn@t2"].shape == (5, 3, 9, 9)
    for key in ref:
        _close(ref[key], got[key])
    hooked = {"conv": net.conv}
    taps = OnnxTaps(net, hooked, None, torch.from_numpy(x[:2]), threads=1)
    assert taps.counts == {"conv": 3}
    maps = taps(x)["conv"]
    with torch.no_grad():
        first = net.conv(torch.from_numpy(x)).numpy()
    _close(first, maps[0])
    with pytest.raises(InputError, match="traced for inputs of shape"):
        taps(x[:, :, :8])


@needs_onnx
def test_hooked_output_changed_in_place_later():
    """A hook reads a batch norm's output before ReLU(inplace=True) overwrites it, as in ResNets."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(inplace=True)
    ).eval()
    x = np.random.default_rng(5).standard_normal((3, 3, 7, 7)).astype(np.float32)
    for pooling in ("mean", None):
        ref = activations(net, x, layers=["1"], pooling=pooling, backend="torch")["1"]
        assert ref.min() < 0  # before the ReLU
        got = activations(net, x, layers=["1"], pooling=pooling, backend="onnxruntime")["1"]
        _close(ref, got)


@needs_onnx
def test_streamed_to_disk(tmp_path):
    torch.manual_seed(0)
    net = Recurrent().eval()
    x = np.random.default_rng(6).standard_normal((7, 3, 8, 8)).astype(np.float32)
    ref = activations(net, x, layers=["fc"], batch_size=3, backend="torch")
    out = activations(net, x, ["fc"], batch_size=3, backend="onnxruntime", out=tmp_path)
    assert isinstance(out["fc"], np.memmap)
    _close(ref["fc"], out["fc"])


def test_auto_without_onnxruntime_is_torch(monkeypatch):
    """``backend="auto"`` without the packages (or on few images) runs PyTorch, bit for bit."""
    torch.manual_seed(0)
    net = Recurrent().eval()
    x = np.random.default_rng(2).standard_normal((6, 3, 8, 8)).astype(np.float32)
    ref = activations(net, x, layers=["fc"], batch_size=4, backend="torch")
    built = []
    monkeypatch.setattr(vision, "OnnxTaps", lambda *a, **k: built.append(1))
    monkeypatch.setattr(vision, "ONNX_MIN_IMAGES", 1)
    monkeypatch.setattr(vision, "onnx_available", lambda: False)
    auto = activations(net, x, layers=["fc"], batch_size=4)
    assert built == []
    np.testing.assert_array_equal(auto["fc"], ref["fc"])
    monkeypatch.setattr(vision, "onnx_available", lambda: True)
    monkeypatch.setattr(vision, "ONNX_MIN_IMAGES", 7)  # 6 images: too few to pay the export
    np.testing.assert_array_equal(activations(net, x, layers=["fc"])["fc"], ref["fc"])
    assert built == []


@needs_onnx
def test_auto_takes_onnxruntime_and_falls_back_on_a_bad_trace(monkeypatch):
    torch.manual_seed(0)
    net = Recurrent().eval()
    x = np.random.default_rng(3).standard_normal((6, 3, 8, 8)).astype(np.float32)
    ref = activations(net, x, layers=["fc"], batch_size=4, backend="torch")
    monkeypatch.setattr(vision, "ONNX_MIN_IMAGES", 1)
    built = []
    real = vision.OnnxTaps

    def spy(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(vision, "OnnxTaps", spy)
    auto = activations(net, x, layers=["fc"], batch_size=4)
    assert built == [1]
    _close(ref["fc"], auto["fc"])

    class ValueBranch(Recurrent):
        """Python control flow on values: a trace would freeze one branch."""

        def forward(self, x):
            out = super().forward(x)
            return out * 2 if float(x.sum()) > 0 else out

    branchy = ValueBranch().eval()
    branchy.load_state_dict(net.state_dict())
    ref = activations(branchy, x, layers=["fc", "conv"], batch_size=4, backend="torch")
    with pytest.warns(RuntimeWarning, match="using PyTorch"):
        auto = activations(branchy, x, layers=["fc", "conv"], batch_size=4)
    np.testing.assert_array_equal(auto["fc"], ref["fc"])
    with pytest.raises(Exception, match="backend='torch'"):
        activations(branchy, x, layers=["fc"], batch_size=4, backend="onnxruntime")


@needs_onnx
def test_disagreeing_graph_is_refused(monkeypatch):
    """A graph whose activations differ from PyTorch's beyond float32 rounding is not used."""
    torch.manual_seed(0)
    net = Recurrent().eval()
    x = np.random.default_rng(4).standard_normal((5, 3, 8, 8)).astype(np.float32)
    ref = activations(net, x, layers=["fc"], batch_size=4, backend="torch")
    real_call = OnnxTaps.__call__

    def off_by_a_little(self, batch):
        return {
            k: [v + 1e-3 * np.abs(v).max() for v in vs] for k, vs in real_call(self, batch).items()
        }

    monkeypatch.setattr(OnnxTaps, "__call__", off_by_a_little)
    with pytest.raises(DataFormatError, match="differ from PyTorch"):
        activations(net, x, layers=["fc"], batch_size=4, backend="onnxruntime")
    monkeypatch.setattr(vision, "ONNX_MIN_IMAGES", 1)
    with pytest.warns(RuntimeWarning, match="using PyTorch"):
        auto = activations(net, x, layers=["fc"], batch_size=4)
    np.testing.assert_array_equal(auto["fc"], ref["fc"])


def test_bad_backend():
    net = Recurrent().eval()
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(InputError, match="backend: expected"):
        activations(net, x, layers=["fc"], backend="tensorrt")
    with pytest.raises(InputError, match="CPU only"):
        activations(net, x, layers=["fc"], backend="onnxruntime", device="cuda:0")
