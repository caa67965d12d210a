"""``brainalign embed ROOT --space ...`` on the shared virtual NSD."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from brainalign.cli import _register, app


@pytest.fixture(scope="module")
def runner():
    _register()
    return CliRunner()


def test_embed_computes_caches_and_exports(runner, virtual_nsd_root, tmp_path):
    from brainalign.datasets import load_stimuli
    from brainalign.features import feature_space

    args = [
        "embed",
        str(virtual_nsd_root),
        "--space",
        "multihot",
        "--space",
        "glove_all",
        "--out",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stim = load_stimuli(virtual_nsd_root)
    n, n_cats = len(stim), len(stim.category_names)
    assert f"multihot: {n} × {n_cats}" in result.output and f"glove_all: {n} × 50" in result.output
    X = np.load(tmp_path / "glove_all.npy", allow_pickle=False)
    ids = np.load(tmp_path / "glove_all_image_ids.npy", allow_pickle=False)
    np.testing.assert_array_equal(ids, stim.image_ids)
    np.testing.assert_array_equal(X, feature_space("glove_all", stim).X)
    again = runner.invoke(app, args)  # served from the cache
    assert again.exit_code == 0, again.output


def test_embed_activations_from_stimuli_images(virtual_nsd_root):
    from brainalign.datasets import load_stimuli
    from brainalign.features import activations, load_vision_model

    stim = load_stimuli(virtual_nsd_root)
    sub = stim.subset(stim.image_ids[:3])
    acts = activations(
        load_vision_model("efficientnet-lite0"), sub, layers=["_conv_head"], batch_size=2
    )
    assert acts["_conv_head"].shape == (3, 1280)


def test_embed_unknown_space(runner, virtual_nsd_root):
    result = runner.invoke(app, ["embed", str(virtual_nsd_root), "--space", "nope"])
    assert result.exit_code != 0
    assert "unknown feature space 'nope'" in str(result.exception)


def test_embed_lists_spaces(runner, tmp_path):
    result = runner.invoke(app, ["embed", str(tmp_path), "--space", "list"])
    assert result.exit_code == 0 and "mpnet_nouns" in result.output
