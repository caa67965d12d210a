"""A torchvision model from a local weights file, through the ``torchvision`` kind, and the same
state dict through the ``module`` kind with ``examples/resnet18.py``.

Runs where torchvision imports. On this project's CPU torch (2.13) PyPI's torchvision does not
(``operator torchvision::nms does not exist``) and no CPU build of a matching pair is on the
package index, so CI skips it; it was run in a separate environment with torch 2.14.1 and
torchvision 0.29.1 (benchmarks/README.md, "torchvision")."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch  # noqa: E402

try:
    import torchvision
except (ImportError, RuntimeError) as exc:  # PyPI's build beside a CPU torch: RuntimeError
    pytest.skip(
        f"torchvision does not import beside this torch build ({exc}; see the module doc)",
        allow_module_level=True,
    )

from brainalign.features import Preprocess, activations, load_vision_model  # noqa: E402
from brainalign.features.vision import load_module_model  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    """A torchvision ResNet-18, randomly initialised (no download), with non-trivial batch-norm
    statistics, saved as a state dict the way a lab keeps its weights."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("tv") / "resnet18.pth"
    torch.save(net.state_dict(), path)
    return net, path


@pytest.fixture(scope="module")
def photos():
    imgs = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    return np.stack([im[:300, :400] if im.shape[0] < 500 else im[100:400, 50:450] for im in imgs])


def test_torchvision_kind_reads_named_layers_of_the_local_weights(resnet18_weights, photos):
    net, path = resnet18_weights
    model = load_vision_model("torchvision:resnet18", weights=path)
    acts = activations(model, photos, layers=["layer3", "avgpool"], batch_size=2)
    x = Preprocess(224, 256)(photos)
    with torch.no_grad():
        h = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))))
        pooled = net.avgpool(net.layer4(h)).flatten(1)
    np.testing.assert_allclose(acts["layer3"], h.mean((2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["avgpool"], pooled.numpy(), atol=1e-5)


def test_the_example_module_takes_torchvision_state_dicts(resnet18_weights, photos):
    """examples/resnet18.py names its modules as torchvision does: the same file gives the same
    features through the ``module`` kind."""
    _, path = resnet18_weights
    tv = activations(
        load_vision_model("torchvision:resnet18", weights=path), photos, layers=["avgpool"]
    )
    ours = activations(
        load_module_model("resnet18", EXAMPLES / "resnet18.py", path), photos, layers=["avgpool"]
    )
    np.testing.assert_allclose(ours["avgpool"], tv["avgpool"], atol=1e-5)


def _hooked(module, layer, x):
    """``layer``'s output of ``module`` for the preprocessed batch ``x``, mean over positions
    (the space of a map, the tokens of a sequence)."""
    got = {}
    handle = module.get_submodule(layer).register_forward_hook(lambda m, i, o: got.update(o=o))
    with torch.no_grad():
        module(x)
    handle.remove()
    out = got["o"]
    return (out.mean((2, 3)) if out.ndim == 4 else out.mean(1)).numpy()


def _timm_resnet18():
    return importlib.import_module("timm").create_model("resnet18", pretrained=False)


def _open_clip_vit():
    return importlib.import_module("open_clip").create_model("ViT-S-32", pretrained=None)


@pytest.mark.parametrize(
    "name,build,tower,layer",
    [
        # timm: its own preprocessing (resolve_data_config)
        ("timm:resnet18", _timm_resnet18, "", "layer3"),
        # open_clip: the image tower of the whole CLIP checkpoint, a ViT's tokens
        ("open_clip:ViT-S-32", _open_clip_vit, "visual", "ln_post"),
    ],
)
def test_timm_and_open_clip_kinds_from_local_weights(photos, tmp_path, name, build, tower, layer):
    pytest.importorskip(name.split(":")[0])
    torch.manual_seed(1)
    net = build().eval()
    path = tmp_path / "weights.pth"
    torch.save(net.state_dict(), path)
    model = load_vision_model(name, weights=path)
    acts = activations(model, photos, layers=[layer], batch_size=2)
    module = net.get_submodule(tower) if tower else net
    np.testing.assert_allclose(
        acts[layer], _hooked(module, layer, model.preprocess(photos)), atol=1e-4
    )
