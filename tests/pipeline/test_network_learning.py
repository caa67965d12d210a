"""Do the networks learn what they are trained for? The shuffled-target control, the held-out
scores and the table that compares them (issue 20, part 2)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from brainalign.networks import BLTNet, ImageData
from brainalign.networks.train import default_loss, predict
from brainalign.pipeline.analyses.networks import (
    _curve_rows,
    held_out_scores,
    learning_table,
    shuffled_targets,
)
from brainalign.report.plots import training_curves_figure


def _data(n=24, d=6, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
    return ImageData(
        images, {"mpnet": rng.normal(size=(n, d)), "multihot": rng.random((n, d)) < 0.3}
    )


def test_shuffled_targets_permute_rows_and_keep_the_images():
    data = _data()
    out = shuffled_targets(data, "mpnet", random_state=3)
    T, S = data.target("mpnet"), out.target("mpnet")
    assert not np.array_equal(S, T)
    # the same rows, in another order; images, ids and the other target unchanged
    assert np.array_equal(np.sort(S, axis=0), np.sort(T, axis=0))
    assert sorted(map(tuple, S)) == sorted(map(tuple, T))
    assert np.array_equal(
        out.load_images(np.arange(len(data))), data.load_images(np.arange(len(data)))
    )
    assert np.array_equal(out.ids, data.ids)
    assert np.array_equal(out.target("multihot"), data.target("multihot"))
    assert np.array_equal(shuffled_targets(data, "mpnet", random_state=3).target("mpnet"), S)
    assert not np.array_equal(shuffled_targets(data, "mpnet", random_state=4).target("mpnet"), S)
    assert out.fingerprint() != data.fingerprint()  # a checkpoint of one does not resume the other


@pytest.mark.parametrize("target", ["mpnet", "multihot"])
def test_held_out_scores_per_image_with_the_constant_floor(target):
    torch.manual_seed(0)
    data, val = _data(seed=0), _data(n=10, seed=1)
    net = BLTNet(6, n_layers=2, timesteps=1, width=1 / 16, image_size=16)
    P = predict(net, val, loss=default_loss(target))
    out = held_out_scores(P, data.target(target), val.target(target), target)
    assert out["val_score"].shape == out["floor_score"].shape == (10,)
    Y = val.target(target).astype(float)
    mean = data.target(target).astype(float).mean(0)
    if target == "mpnet":
        expected = Y @ mean / np.linalg.norm(Y, axis=1) / np.linalg.norm(mean)
        assert out["floor_score"] == pytest.approx(expected, abs=1e-6)
        assert "val_map" not in out
    else:
        p = np.clip(mean, 1e-7, 1 - 1e-7)
        expected = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).mean(1)
        assert out["floor_score"] == pytest.approx(expected, abs=1e-6)
        assert 0 < out["val_map"] <= 1


def _task(target, shuffled=False, seed=0):
    params = {"target": target, "seed": seed, **({"shuffled": True} if shuffled else {})}
    model = f"net_{target}" + ("_shuffled" if shuffled else "")
    return SimpleNamespace(params=params, id=SimpleNamespace(model=model))


def test_learning_table_compares_each_network_with_its_control():
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.05, 40)
    results = [
        # a caption network clearly better than its control (higher cosine is better)
        (_task("mpnet"), {"val_score": base + 0.05, "floor_score": base - 0.01, "steps": 10}),
        (_task("mpnet", True), {"val_score": base + rng.normal(0, 0.01, 40), "floor_score": base}),
        # a category network no better than its control (lower BCE is better)
        (_task("multihot"), {"val_score": base + 0.02, "floor_score": base, "val_map": 0.3}),
        (_task("multihot", True), {"val_score": base, "floor_score": base, "val_map": 0.3}),
    ]
    t = learning_table(results).set_index("target")
    assert list(t.index) == ["mpnet", "multihot"]  # controls are not rows of their own
    assert t.loc["mpnet", "learned"] == "yes" and t.loc["mpnet", "gain"] > 0.04
    assert t.loc["mpnet", "metric"] == "cosine" and t.loc["mpnet", "p"] < 1e-6
    # worse BCE than the control: a negative gain, not learned
    assert t.loc["multihot", "learned"] == "no" and t.loc["multihot", "gain"] < 0
    assert t.loc["multihot", "metric"] == "BCE" and t.loc["multihot", "trained_map"] == 0.3
    # without a control the network is listed with no verdict
    alone = learning_table(results[:1])
    assert "learned" not in alone or alone["learned"].isna().all()


def test_training_curves_figure_draws_each_target_with_its_control():
    rows = []
    for target in ("mpnet", "multihot"):
        for shuffled in (False, True):
            t = _task(target, shuffled)
            hist = [{"epoch": e, "step": 3 * (e + 1), "train_loss": 1.0, "val_loss": 0.5,
                     "val_cosine": 0.5 + 0.1 * e * (not shuffled)} for e in range(3)]  # fmt: skip
            rows += _curve_rows(
                t, {"history": hist, "initial": {"val_loss": 0.7, "val_cosine": 0.1}}
            )
    curves = pd.DataFrame(rows)
    assert set(curves["training"]) == {"trained", "shuffled targets"}
    assert sorted(set(curves["epochs_done"])) == [0, 1, 2, 3]
    fig = training_curves_figure(curves)
    axes = fig.get_axes()
    assert [a.get_title() for a in axes] == ["mpnet", "multihot"]
    styles = [line.get_linestyle() for line in axes[0].get_lines()]
    assert styles == ["-", "--"]
    assert list(axes[0].get_lines()[0].get_ydata()) == pytest.approx([0.1, 0.5, 0.6, 0.7])


def test_demo_prints_each_network_against_its_control(tmp_path):
    from brainalign.pipeline.demo import networks_summary

    assert networks_summary(tmp_path) == ""
    (tmp_path / "tables").mkdir()
    rows = [
        _task("mpnet"),
        _task("mpnet", True),
        _task("multihot"),
        _task("multihot", True),
    ]
    base = np.linspace(0.4, 0.6, 20)
    noise = np.random.default_rng(0).normal(0, 0.005, 20)
    # the caption net beats its control; the category net's BCE is higher than its control's
    scores = [base + 0.05 + noise, base, base + noise, base - 0.01]
    results = [
        (t, {"val_score": s, "floor_score": base}) for t, s in zip(rows, scores, strict=True)
    ]
    learning_table(results).to_csv(tmp_path / "tables" / "network_learning.csv", index=False)
    lines = networks_summary(tmp_path).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"net_mpnet@s0: held-out cosine {0.5 + 0.05 + noise.mean():.4f} vs shuffled-target control 0.5000"
    )
    assert lines[0].endswith(": learned")
    assert lines[1].startswith("net_multihot@s0: held-out BCE") and lines[1].endswith("control")


def test_in_memory_keeps_ids_targets_and_pixels():
    from brainalign.pipeline.analyses.networks import in_memory

    data = _data()
    calls = []
    lazy = ImageData(
        lambda idx: calls.append(len(idx)) or data.load_images(idx),
        data.targets,
        ids=data.ids + 100,
        name="lazy",
        id_space="coco",
    )
    out = in_memory(lazy)
    assert calls == [len(data)]  # decoded once
    assert np.array_equal(out.load_images([3, 1]), data.load_images([3, 1])) and calls == [24]
    assert np.array_equal(out.ids, lazy.ids) and out.fingerprint() == lazy.fingerprint()
    assert np.array_equal(out.coco_ids, lazy.coco_ids) and out.name == "lazy"
    assert in_memory(lazy, max_images=10) is lazy  # too many: read on demand
