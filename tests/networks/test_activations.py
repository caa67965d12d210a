from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainalign.errors import DataFormatError, InputError
from brainalign.networks import activations, from_coco, load_activations
from brainalign.networks.activations import stream_activations
from brainalign.networks.zoo import model_features


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return (rng.random((10, 80, 96, 3)) * 255).astype(np.uint8)


def test_shapes_names_and_determinism(make_net, images):
    net = make_net(5)
    acts = activations(net, images, batch_size=4)
    assert list(acts) == net.layer_names
    for name, value in acts.items():
        layer = int(name.split("_")[2])
        assert value.shape == (10, net.channels[layer]) and value.dtype == np.float32
    again = activations(net, images, batch_size=7)
    assert all(np.allclose(acts[k], again[k], atol=1e-6) for k in acts)
    last = activations(net, images, layers="last")
    assert list(last) == ["layernorm_layer_9_time_1"]
    np.testing.assert_allclose(
        last["layernorm_layer_9_time_1"], acts["layernorm_layer_9_time_1"], atol=1e-6
    )


def test_matches_a_plain_forward_with_spatial_mean(make_net, images):
    from brainalign.networks import preprocess_images

    net = make_net(5).eval()
    name = "layernorm_layer_3_time_1"
    captured = {}
    getattr(net, name).register_forward_hook(lambda m, i, o: captured.__setitem__("x", o))
    with torch.no_grad():
        net(preprocess_images(images, 64))
    expected = captured["x"].mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(activations(net, images, layers=[name])[name], expected, atol=1e-6)


def test_test_time_crop_is_only_a_compat_flag(make_net, images):
    net = make_net(5)
    plain = activations(net, images, layers="last")
    a = activations(net, images, layers="last", test_time_crop=True, random_state=1)
    b = activations(net, images, layers="last", test_time_crop=True, random_state=1)
    key = net.layer_names[-1]
    assert np.array_equal(a[key], b[key])  # seeded
    assert not np.allclose(a[key], plain[key])  # but not the deterministic default


def test_streaming_to_disk_and_resume(make_net, images, tmp_path):
    net = make_net(5)
    mem = activations(net, images, batch_size=3)
    out = tmp_path / "acts"
    disk = activations(net, images, batch_size=3, out=out)
    assert isinstance(disk[net.layer_names[0]], np.memmap)
    assert all(np.allclose(mem[k], disk[k], atol=1e-6) for k in mem)
    loaded, ids = load_activations(out)
    assert np.array_equal(ids, np.arange(10)) and set(loaded) == set(mem)
    # a finished folder is reused, not recomputed
    calls = []
    again = activations(net, images, batch_size=3, out=out, preprocess=calls.append)
    assert not calls and np.array_equal(again[net.layer_names[0]], disk[net.layer_names[0]])


def test_hooked_output_is_read_before_a_later_in_place_op():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 5), torch.nn.ReLU(inplace=True)
    ).eval()
    images = np.random.default_rng(2).integers(0, 256, (4, 2, 2, 3), dtype=np.uint8)

    def prep(im):
        return torch.from_numpy(im).permute(0, 3, 1, 2).float() / 255 - 0.5

    acts = activations(net, images, layers=["1"], preprocess=prep, batch_size=4)
    with torch.no_grad():
        ref = net[1](net[0](prep(images))).numpy()
    assert ref.min() < 0  # the ReLU would have zeroed these
    np.testing.assert_allclose(acts["1"], ref, rtol=1e-6, atol=1e-6)


def test_killed_extraction_resumes(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((11, 4)).astype(np.float32)
    seen = []

    def extract(batch, b, fail_at=None):
        seen.append(b)
        if b == fail_at:
            raise KeyboardInterrupt
        return {"x": torch.from_numpy(batch.astype(np.float32) * 2)}

    def load(idx):
        return data[idx]

    with pytest.raises(KeyboardInterrupt):
        stream_activations(
            lambda x, b: extract(x, b, fail_at=2),
            load,
            np.arange(11),
            ["x"],
            batch_size=4,
            out=tmp_path,
            key="k",
        )
    assert not (tmp_path / "activations.json").exists()
    assert json.loads((tmp_path / ".partial" / "progress.json").read_text())["batches_done"] == 2
    seen.clear()
    res = stream_activations(
        extract, load, np.arange(11), ["x"], batch_size=4, out=tmp_path, key="k"
    )
    assert seen == [2]  # only the unfinished batch ran
    np.testing.assert_array_equal(res["x"], data * 2)
    # a different key (another model) never reuses the files
    seen.clear()
    stream_activations(extract, load, np.arange(11), ["x"], batch_size=4, out=tmp_path, key="other")
    assert seen == [0, 1, 2]


def test_bad_layers_and_inputs(make_net, images):
    net = make_net(5)
    with pytest.raises(InputError, match="not outputs"):
        activations(net, images, layers=["conv1"])
    with pytest.raises(InputError, match="uint8"):
        activations(net, images.astype(np.float32))
    with pytest.raises(InputError, match="preprocess"):
        activations(torch.nn.Linear(3, 3), images, layers=[""])
    with pytest.raises(DataFormatError, match="did not finish"):
        load_activations("/nonexistent/folder")


@pytest.mark.shared_data
def test_efficientnet_lite0_on_real_coco_images(shared_data):
    """ImageNet EfficientNet-lite0 (offline) on real COCO photos: its pooled features classify them."""
    from brainalign.networks.zoo import get_model

    data = from_coco(shared_data / "coco_mini", "val2017", targets=("multihot",))
    names = data.category_names
    hot = data.target("multihot")
    zebra = np.flatnonzero(hot[:, names.index("zebra")])[:1]
    bears = np.flatnonzero(hot[:, names.index("bear")])[:2]
    others = np.setdiff1d(np.arange(8), np.concatenate([zebra, bears]))[:5]
    sub = data.subset(np.concatenate([zebra, bears, others]))
    entry = get_model("efficientnet-lite0")
    (feats,) = model_features(entry, sub, batch_size=4)
    assert feats.shape == (len(sub), 1280) and np.isfinite(feats).all()
    assert np.linalg.matrix_rank(feats) == len(sub)
    # the pooled features are exactly what the ImageNet classifier reads
    fc = entry.instances()[0].module.module._fc
    with torch.no_grad():
        top = fc(torch.from_numpy(feats)).argmax(1).numpy()
    assert top[0] == 340  # ImageNet "zebra"
    assert set(top[1:3]) <= {294, 295, 296, 297}  # brown, black, ice and sloth bears
