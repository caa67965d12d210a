"""Which layer each zoo model is read from (issue 20: say which layer every comparison reads)."""

from __future__ import annotations

import pytest

from brainalign.networks import zoo


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(zoo, "ZOO", dict(zoo.ZOO))
    return zoo


def test_model_layer_is_the_entry_s_or_its_kind_s_default(registry):
    assert registry.model_layer("efficientnet-lite0") == "_avg_pooling"
    registry.register_model(registry.ZooModel("rn", "torchvision", options={"arch": "resnet18"}))
    registry.register_model(registry.ZooModel("rn_l3", "torchvision", layer="layer3"))
    registry.register_model(registry.ZooModel("mine", "blt"))
    registry.register_model(registry.ZooModel("pre", "features"))
    assert registry.model_layer("rn") == "avgpool"
    assert registry.model_layer("rn_l3") == "layer3"
    assert registry.model_layer("mine") == "last"
    assert registry.model_layer("pre") is None
