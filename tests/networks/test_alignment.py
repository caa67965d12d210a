"""Embedding-trained vs category-trained networks on the virtual NSD's planted regions.

The virtual NSD plants "objects" in the ventral ROI and "events" (agent–action–patient) in the
lateral ROI. The paper's claim transposed: a net trained on caption embeddings should align
better with the lateral (events) region than a category-trained net of the same size and
budget, and the category net better with the ventral (objects) region.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainalign.datasets import load_nsd, load_stimuli
from brainalign.networks import activations, from_stimuli
from brainalign.networks.compare import compare_models

SUBJECTS = (1, 2, 5, 7)  # the subjects with every image seen 3 times


@pytest.fixture(scope="module")
def vnsd(virtual_nsd_root):
    subjects = [load_nsd(virtual_nsd_root, s) for s in SUBJECTS]
    ids = np.unique(np.concatenate([s.image_ids for s in subjects]))
    stim = load_stimuli(virtual_nsd_root, image_ids=ids)
    data = from_stimuli(stim, targets={})
    # read the 425-px images once, at the networks' 64 px
    from brainalign.networks.augment import resize_square, to_tensor

    small = []
    for start in range(0, len(ids), 60):
        block = data.load_images(np.arange(start, min(start + 60, len(ids))))
        small.append((resize_square(to_tensor(block), 64) * 255).round().clamp(0, 255).byte())
    images = np.concatenate([s.permute(0, 2, 3, 1).numpy() for s in small])
    truth = json.loads((virtual_nsd_root / "virtual_truth.json").read_text())
    return subjects, ids, images, truth


def test_planted_regions_are_the_expected_ones(vnsd):
    _, _, _, truth = vnsd
    assert truth["rois"]["ventral"]["representations"] == {"objects": 1.0}
    assert truth["rois"]["lateral"]["representations"] == {"events": 1.0}


def test_embedding_net_vs_category_net(vnsd, trained):
    subjects, ids, images, _ = vnsd
    feats = {}
    for name in ("mpnet", "multihot"):
        net = trained[name].net
        acts = activations(net, images, layers="last", ids=ids)
        feats[name] = acts[net.layer_names[-1]]
        assert feats[name].shape == (len(ids), net.channels[-1])
    res = compare_models(feats, subjects, ids, rois=("ventral", "lateral"), subset_size=90)
    table = res.table.set_index(["model", "roi"])["mean"]
    assert np.isfinite(table.to_numpy()).all()
    assert (res.subjects["ceiling"] > 0).all()  # the planted regions carry reliable signal
    emb_lat, cat_lat = table["mpnet", "lateral"], table["multihot", "lateral"]
    emb_ven, cat_ven = table["mpnet", "ventral"], table["multihot", "ventral"]
    numbers = (
        f"noise-ceiling-normalised r (mean of {len(subjects)} subjects): lateral/events "
        f"embedding-net {emb_lat:.3f} vs category-net {cat_lat:.3f}; ventral/objects "
        f"embedding-net {emb_ven:.3f} vs category-net {cat_ven:.3f}"
    )
    print(numbers)
    if max(emb_lat, cat_lat, emb_ven, cat_ven) < 0.05:
        # a direction between near-zero numbers would be noise, so it is not claimed either way
        pytest.xfail(
            "at test scale (150 steps, 240 64-px scenes, width 1/8) neither net's last layer "
            "aligns with the planted regions (the category net stays near base rates), so the "
            "comparison is not meaningful: " + numbers
        )
    assert emb_lat > cat_lat, numbers
    assert cat_ven > emb_ven, numbers
