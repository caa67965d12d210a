"""The tiny trained networks (``trained``: caption-embedding, multi-hot and shuffled-target
nets of the same size and budget), in one file so that one worker trains them once.

What training achieves (held-out cosine against the shuffled control, category scores), what
the nets are used for (a frozen net's transfer readout), and the embedding- vs category-trained
nets on the virtual NSD's planted regions: the virtual NSD plants "objects" in the ventral ROI
and "events" (agent–action–patient) in the lateral ROI; the paper's claim transposed is that a
net trained on caption embeddings aligns better with the lateral (events) region than a
category-trained net, and the category net better with the ventral (objects) region.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from brainalign.datasets import load_nsd, load_stimuli
from brainalign.networks import ImageData, activations, evaluate, from_stimuli, predict
from brainalign.networks.compare import compare_models
from brainalign.networks.transfer import transfer_readout


def test_training_beats_initial_and_shuffled_control(trained):
    """Held-out cosine distance falls clearly below its start and below a shuffled-target net."""
    emb, shuffled = trained["mpnet"], trained["shuffled"]
    start = 1 - emb.initial["val_cosine"]
    final = 1 - emb.history[-1]["val_cosine"]
    control = 1 - shuffled.history[-1]["val_cosine"]
    msg = f"held-out cosine distance: initial {start:.4f}, trained {final:.4f}, shuffled control {control:.4f}"
    print(msg)
    assert final < 0.5 * start, msg
    assert final < control, msg
    # the training loss went down as well
    assert emb.history[-1]["train_loss"] < emb.history[0]["train_loss"]


def test_multihot_training_learns_categories(trained, scene_data):
    """The category net's held-out loss falls, and present categories get higher probabilities.

    At this budget (100 steps, 240 images) it stays close to the base rates: the measured
    held-out BCE is printed next to the base-rate BCE for the record.
    """
    res = trained["multihot"]
    train_data, val = scene_data
    y = val.target("multihot").astype(np.float64)
    prior = np.clip(train_data.target("multihot").mean(0), 1e-6, 1 - 1e-6)
    prior_bce = -np.mean(y * np.log(prior) + (1 - y) * np.log(1 - prior))
    assert res.history[-1]["val_loss"] < res.initial["val_loss"]
    pred = predict(res.net, val, loss="bce")
    last_bce = -np.mean(y * np.log(pred + 1e-7) + (1 - y) * np.log(1 - pred + 1e-7))
    print(f"held-out BCE {last_bce:.4f} vs base-rate BCE {prior_bce:.4f}")
    assert last_bce < 1.05 * prior_bce
    assert pred[y == 1].mean() > pred[y == 0].mean()


def test_evaluate_matches_predict(trained, scene_data):
    _, val = scene_data
    net = trained["mpnet"].net
    pred = predict(net, val)
    y = val.target("mpnet")
    cos = 1 - np.diag(cdist(pred.astype(np.float64), y.astype(np.float64), "cosine"))
    assert evaluate(net, val, "mpnet")["val_cosine"] == pytest.approx(cos.mean(), abs=1e-5)



def test_transfer_readout_from_a_frozen_net(trained, scene_data):
    train_data, val = scene_data
    data = ImageData(
        np.concatenate([train_data.load_images(np.arange(120)), val.load_images(np.arange(40))]),
        {
            k: np.concatenate([train_data.target(k)[:120], val.target(k)[:40]])
            for k in ("mpnet", "multihot")
        },
    )
    net = trained["mpnet"].net
    before = [p.detach().clone() for p in net.parameters()]
    res = transfer_readout(net, data, "multihot", n_test=40, epochs=20)
    assert res["n_train"] == 120 and res["layer"] == net.layer_names[-1]
    assert 0 < res["floor"] < 1 and np.isfinite(res["cosine"])
    assert all((a == b).all() for a, b in zip(before, net.parameters(), strict=True))  # frozen



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
            "at test scale (100 steps, 240 64-px scenes, width 1/8) neither net's last layer "
            "aligns with the planted regions (the category net stays near base rates), so the "
            "comparison is not meaningful: " + numbers
        )
    assert emb_lat > cat_lat, numbers
    assert cat_ven > emb_ven, numbers
