from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainalign.errors import DataFormatError, InputError
from brainalign.networks import activations, from_coco, load_activations
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
    handle = net.register_forward_pre_hook(lambda m, i: calls.append(1))
    again = activations(net, images, batch_size=3, out=out)
    handle.remove()
    assert not calls and np.array_equal(again[net.layer_names[0]], disk[net.layer_names[0]])


def test_hooked_output_is_read_before_a_later_in_place_op():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 5), torch.nn.ReLU(inplace=True)
    ).eval()
    images = np.random.default_rng(2).integers(0, 256, (4, 2, 2, 3), dtype=np.uint8)

    def prep(im, device="cpu"):
        return torch.from_numpy(im).permute(0, 3, 1, 2).float().to(device) / 255 - 0.5

    acts = activations(net, images, layers=["1"], preprocess=prep, batch_size=4)
    with torch.no_grad():
        ref = net[1](net[0](prep(images))).numpy()
    assert ref.min() < 0  # the ReLU would have zeroed these
    np.testing.assert_allclose(acts["1"], ref, rtol=1e-6, atol=1e-6)


def test_killed_extraction_resumes(make_net, images, tmp_path):
    net = make_net(5)
    full = activations(net, images, layers="last", batch_size=4)
    seen = []

    def count(_m, _i, fail_at=None):
        seen.append(len(seen))
        if seen[-1] == fail_at:
            raise KeyboardInterrupt

    handle = net.register_forward_pre_hook(lambda m, i: count(m, i, fail_at=2))
    with pytest.raises(KeyboardInterrupt):
        activations(net, images, layers="last", batch_size=4, out=tmp_path)
    handle.remove()
    assert not (tmp_path / "activations.json").exists()
    assert json.loads((tmp_path / "progress.json").read_text())["done"] == 8
    seen.clear()
    handle = net.register_forward_pre_hook(count)
    res = activations(net, images, layers="last", batch_size=4, out=tmp_path)
    assert seen == [0]  # only the unfinished batch ran
    key = net.layer_names[-1]
    np.testing.assert_array_equal(res[key], full[key])
    # other options (another crop) never reuse the files
    seen.clear()
    activations(net, images, layers="last", batch_size=4, out=tmp_path, test_time_crop=True)
    handle.remove()
    assert seen == [0, 1, 2]


def test_bad_layers_and_inputs(make_net, images):
    net = make_net(5)
    with pytest.raises(InputError, match="not modules"):
        activations(net, images, layers=["conv1"])
    with pytest.raises(InputError, match=r"\(n, 3, H, W\)"):
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


def test_one_extractor_one_call_for_zoo_blt_and_user_models(
    make_net, images, tmp_path, monkeypatch
):
    """A zoo model, a BLT network and a user module go through the same function with the same
    keywords, and each gives what its own lower-level forward gives."""
    import brainalign.features.vision as vision
    from brainalign.networks import preprocess_images
    from brainalign.networks.augment import step_generator
    from brainalign.networks.zoo import get_model, model_features

    assert activations is vision.activations  # one implementation, two import paths
    zoo = get_model("efficientnet-lite0").instances()[0].module
    blt = make_net(5).eval()
    torch.manual_seed(3)
    user = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.Conv2d(6, 4, 3)
    ).eval()

    def user_prep(im, device="cpu"):
        return torch.as_tensor(im, device=device).permute(0, 3, 1, 2).float() / 255

    def hooked_mean(module, name, x):
        got = {}
        handle = dict(module.named_modules())[name].register_forward_hook(
            lambda m, i, o: got.__setitem__("x", o.mean(dim=(2, 3)))
        )
        with torch.no_grad():
            module(x)
        handle.remove()
        return got["x"].numpy()

    # the previous BLT path: pooled inside the network's own forward
    with torch.no_grad():
        _, blt_ref = blt(preprocess_images(images, 64), return_activations=True)
    cases = [
        (zoo, "_blocks.2", None, hooked_mean(zoo.module, "_blocks.2", zoo.preprocess(images))),
        (blt, blt.layer_names[-1], None, blt_ref[blt.layer_names[-1]].numpy()),
        (user, "2", user_prep, hooked_mean(user, "2", user_prep(images))),
    ]
    for model, layer, prep, ref in cases:
        kw = dict(layers=[layer], pooling="mean", batch_size=4, device="cpu", preprocess=prep)
        got = activations(model, images, **kw, out=tmp_path / layer)[layer]
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)

    # the paper code's test-time crop: the crop of each batch drawn as the networks drew it
    crop = activations(
        blt, images, layers="last", batch_size=4, test_time_crop=True, random_state=7
    )
    parts = []
    for b, lo in enumerate(range(0, len(images), 4)):
        x = preprocess_images(
            images[lo : lo + 4], 64, random_crop=True, generator=step_generator(7, 2, b)
        )
        with torch.no_grad():
            parts.append(blt(x, return_activations=True)[1][blt.layer_names[-1]].numpy())
    np.testing.assert_allclose(crop[blt.layer_names[-1]], np.concatenate(parts), atol=1e-6)

    # the zoo's model_features reads a BLT entry through it, as any other model
    from brainalign.networks.zoo import KINDS, VisionModel, ZooModel

    monkeypatch.setitem(KINDS, "blt", lambda entry, device: [VisionModel("seed0", blt, "last")])
    (feats,) = model_features(ZooModel("blt_seed", "blt"), images, batch_size=4)
    np.testing.assert_allclose(feats, blt_ref[blt.layer_names[-1]].numpy(), atol=1e-6)
