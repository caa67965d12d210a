from __future__ import annotations

import pytest
import torch

from brainalign.errors import InputError
from brainalign.networks import BLTNet, half_vnet_channels, layer_name
from brainalign.networks.blt import VNET_KERNEL_SIZES


def test_paper_defaults():
    net = BLTNet(768)
    assert net.channels == (64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024)  # half vNet
    assert net.kernel_sizes == VNET_KERNEL_SIZES
    assert net.pool_before == (2, 3, 6, 7, 8, 9)  # before 1-based layers 3, 4, 7, 8, 9, 10
    assert net.timesteps == 6 and net.image_size == 128
    assert net.spatial_sizes == [128, 128, 64, 32, 32, 32, 16, 8, 4, 2]
    assert len(net.layer_names) == 60
    assert net.layer_names[-1] == "layernorm_layer_9_time_5"


def test_forward_shapes_and_names(make_net):
    net = make_net(7)
    x = torch.randn(3, 3, 64, 64)
    outs, acts = net(x, return_activations=True)
    assert len(outs) == 2 and all(o.shape == (3, 7) for o in outs)
    assert sorted(acts) == sorted(net.layer_names)
    for l_ in range(net.n_layers):
        for t in range(net.timesteps):
            assert acts[layer_name(l_, t)].shape == (3, net.channels[l_])
    only = net(x, return_activations=True, layers=["layernorm_layer_9_time_1"])[1]
    assert list(only) == ["layernorm_layer_9_time_1"]
    assert torch.allclose(only["layernorm_layer_9_time_1"], acts["layernorm_layer_9_time_1"])


def test_named_modules_expose_every_layer_and_timestep(make_net):
    """Generic forward hooks by module name see the same pooled outputs as the built-in path."""
    net = make_net(5).eval()
    seen = {}
    handles = [
        getattr(net, name).register_forward_hook(
            lambda m, i, o, n=name: seen.__setitem__(n, o.mean(dim=(2, 3)))
        )
        for name in net.layer_names
    ]
    x = torch.randn(2, 3, 64, 64)
    _, acts = net(x, return_activations=True)
    for h in handles:
        h.remove()
    assert all(torch.allclose(seen[n], acts[n]) for n in net.layer_names)


def test_recurrence_changes_later_timesteps():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    ff = BLTNet(4, width=1 / 16, timesteps=3, image_size=64, lateral=False, topdown=False).eval()
    outs = ff(x)
    # without lateral and top-down connections every timestep computes the same thing
    assert torch.allclose(outs[0], outs[2])
    blt = BLTNet(4, width=1 / 16, timesteps=3, image_size=64).eval()
    outs = blt(x)
    assert not torch.allclose(outs[0], outs[1])
    # top-down alone also makes a difference
    td = BLTNet(4, width=1 / 16, timesteps=2, image_size=64, lateral=False).eval()
    assert not torch.allclose(*td(x))


def test_layer_norm_normalises_each_map(make_net):
    net = make_net(3).eval()
    h = {}
    name = "layernorm_layer_4_time_1"
    getattr(net, name).register_forward_hook(lambda m, i, o: h.__setitem__("x", o))
    net(torch.randn(2, 3, 64, 64))
    flat = h["x"].flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(2), atol=1e-4)
    assert torch.allclose(flat.var(1, unbiased=False), torch.ones(2), atol=1e-2)


def test_config_roundtrip(make_net):
    net = make_net(6)
    again = BLTNet.from_config(net.config())
    assert again.config() == net.config()
    again.load_state_dict(net.state_dict())
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(net.eval()(x)[-1], again.eval()(x)[-1])


def test_width_and_depth_options():
    assert half_vnet_channels(0.25) == (16, 16, 32, 32, 64, 64, 128, 128, 256, 256)
    net = BLTNet(3, n_layers=4, width=1 / 16, timesteps=2, image_size=32)
    assert net.pool_before == (2, 3) and net.spatial_sizes == [32, 32, 16, 8]
    assert net(torch.randn(1, 3, 32, 32))[0].shape == (1, 3)


def test_bad_arguments():
    with pytest.raises(InputError, match="too small"):
        BLTNet(3, image_size=32)
    with pytest.raises(InputError, match="kernel_sizes"):
        BLTNet(3, kernel_sizes=(3, 3))
    with pytest.raises(InputError, match="n_layers"):
        BLTNet(3, n_layers=12)
    with pytest.raises(InputError, match="unknown keys"):
        BLTNet.from_config({"n_outputs": 3, "depth": 4})
    net = BLTNet(3, width=1 / 16, timesteps=2, image_size=64)
    with pytest.raises(InputError, match="64×64"):
        net(torch.randn(1, 3, 32, 32))
    with pytest.raises(InputError, match="unknown names"):
        net(torch.randn(1, 3, 64, 64), return_activations=True, layers=["layer_1"])
