"""The tiny trained networks (``trained``: caption-embedding, multi-hot and shuffled-target
nets of the same size and budget), in one file so that one worker trains them once.

What training achieves (held-out cosine against the shuffled control, category scores) and what
the nets are used for (a frozen net's transfer readout). How trained networks align with the
virtual NSD's planted regions (RQ4) is checked at the demo's scale, against the oracle
(tests/pipeline/test_study.py, test_truth.py): at this scale neither net's last layer aligns
with any region, so a comparison here would only compare noise.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from brainalign.networks import ImageData, evaluate, predict
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


def test_multihot_training_learns_categories(trained, category_data):
    """The category net's held-out loss falls, and present categories get higher probabilities.

    At this budget (50 steps, 240 images) it stays close to the base rates: the measured
    held-out BCE is printed next to the base-rate BCE for the record.
    """
    res = trained["multihot"]
    train_data, val = category_data
    y = val.target("multihot").astype(np.float64)
    prior = np.clip(train_data.target("multihot").mean(0), 1e-6, 1 - 1e-6)
    prior_bce = -np.mean(y * np.log(prior) + (1 - y) * np.log(1 - prior))
    assert res.history[-1]["val_loss"] < res.initial["val_loss"]
    pred = predict(res.net, val, loss="bce")
    last_bce = -np.mean(y * np.log(pred + 1e-7) + (1 - y) * np.log(1 - pred + 1e-7))
    print(f"held-out BCE {last_bce:.4f} vs base-rate BCE {prior_bce:.4f}")
    assert last_bce < 1.05 * prior_bce
    assert pred[y == 1].mean() > pred[y == 0].mean()


def test_evaluate_matches_predict(trained, trained_data):
    _, val = trained_data
    net = trained["mpnet"].net
    pred = predict(net, val)
    y = val.target("mpnet")
    cos = 1 - np.diag(cdist(pred.astype(np.float64), y.astype(np.float64), "cosine"))
    assert evaluate(net, val, "mpnet")["val_cosine"] == pytest.approx(cos.mean(), abs=1e-5)


def test_transfer_readout_from_a_frozen_net(trained, trained_data):
    train_data, val = trained_data
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
