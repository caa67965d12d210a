"""The paper's Fig. 4b in the pipeline: a linear readout from each frozen trained network toward
each target, held out on the last images (issue 20, part 3: the transfer readout in paper mode)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from brainalign.errors import ConfigError, DataFormatError
from brainalign.networks.transfer import linear_readout, mean_target_floor
from brainalign.pipeline.analyses.networks import (
    TRANSFER_WITH_BACKBONE,
    methods,
    transfer_readout,
    transfer_split,
    transfer_table,
)
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.core import all_tasks
from brainalign.pipeline.demo import QUICK_OVERRIDES
from brainalign.pipeline.plan import build_plan
from brainalign.report.network_plots import transfer_figure

_OFF = {
    name: {"enabled": False}
    for name in (
        "roi_rsa", "model_comparison", "searchlight", "searchlight_contrasts", "encoding",
        "insilico", "decoding", "weighted_rsa", "variance_partitioning",
    )
}  # fmt: skip


def _config(out, **networks):
    q = copy.deepcopy(QUICK_OVERRIDES)
    return validate_config(
        {
            # one subject: the readouts read the study's images, not responses
            "data": {"kind": "virtual", **q["data"], "n_subjects": 1},
            "features": {"spaces": ["multihot"]},
            "analyses": {
                **_OFF,
                "networks": {
                    **q["analyses"]["networks"],
                    "epochs": 1,
                    "seeds": [0, 1],
                    "shuffled_control": False,
                    "layers": 2,
                    "transfer_epochs": 5,
                    **networks,
                },  # fmt: skip
            },
            "output": {"dir": str(out)},
        }
    )


# ------------------------------------------------------------------------------ the split
def test_the_split_holds_out_the_last_images_by_id_and_drops_images_without_a_target():
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(100, 130))
    X = rng.normal(size=(30, 4))
    target_ids = np.arange(90, 140)  # a superset, in another order
    Y = (rng.random((50, 5)) < 0.4).astype(float)
    Y[:, 0] = 1
    Y[[10 + 5, 10 + 28]] = 0  # images 105 and 128: no category
    out = transfer_split(X, ids, Y, target_ids, 6)
    kept = np.setdiff1d(np.arange(100, 130), [105, 128])
    assert np.array_equal(out["test_ids"], kept[-6:])
    assert np.array_equal(out["train_ids"], kept[:-6])
    row = {int(i): j for j, i in enumerate(ids)}
    assert np.array_equal(out["X_test"], X[[row[i] for i in kept[-6:]]].astype(np.float32))
    assert np.array_equal(out["Y_train"], Y[kept[:-6] - 90].astype(np.float32))
    # a fraction of the images kept
    assert len(transfer_split(X, ids, Y, target_ids, 0.25)["test_ids"]) == round(0.25 * 28)


@pytest.mark.parametrize("size", [28, 0.01])
def test_a_split_without_training_or_held_out_images_names_the_key(size):
    rng = np.random.default_rng(0)
    X, Y, ids = rng.normal(size=(28, 3)), rng.normal(size=(28, 2)), np.arange(28)
    with pytest.raises(ConfigError, match="analyses.networks.transfer_test_size"):
        transfer_split(X, ids, Y, ids, size)


def test_a_network_image_without_a_target_row_is_named():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(9, 2))
    with pytest.raises(DataFormatError, match="image 9"):
        transfer_split(X, np.arange(10), Y, np.arange(9), 2)


@pytest.mark.parametrize("target", ["mpnet", "multihot"])
def test_the_stage_is_the_libraries_linear_readout_on_that_split(target):
    rng = np.random.default_rng(1)
    ids = np.arange(60)
    X = rng.normal(size=(60, 8)).astype(np.float32)
    Y = X[:, :5] + 0.5 * rng.normal(size=(60, 5)) if target == "mpnet" else X[:, :5] > 0.5
    params = {"network": "mpnet", "target": target, "seed": 3, "test_size": 12, "epochs": 4,
              "batch_size": 16, "learning_rate": 0.05, "eps": 0.1}  # fmt: skip
    inputs = {"network": {"X": X, "ids": ids, "layer": "L"}, "target": {"X": Y, "ids": ids}}
    got = transfer_readout(params, inputs, {})
    split = transfer_split(X, ids, Y, ids, 12)
    ref = linear_readout(
        split["X_train"], split["Y_train"], split["X_test"], split["Y_test"],
        sigmoid=target == "multihot", epochs=4, batch_size=16, lr=0.05, eps=0.1, random_state=3,
    )  # fmt: skip
    assert got["cosine"] == pytest.approx(ref["cosine"], abs=1e-6)
    assert got["floor"] == pytest.approx(
        mean_target_floor(split["Y_train"], split["Y_test"]), abs=1e-9
    )
    assert len(got["history"]) == 4 and np.array_equal(got["test_ids"], split["test_ids"])


def test_the_table_has_a_row_per_seed_and_a_group_row_per_network_and_target():
    results = []
    for network in ("mpnet", "multihot"):
        for target in ("mpnet", "multihot"):
            for seed in (0, 1, 2):
                t = SimpleNamespace(
                    params={"network": network, "target": target, "seed": seed},
                    id=SimpleNamespace(model=f"net_{network}"),
                )
                cos = 0.5 + 0.1 * seed + 0.01 * (network == target)
                res = {"cosine": cos, "floor": 0.4, "train_ids": range(20), "test_ids": range(5)}
                results.append((t, res))
    table = transfer_table(results)
    seeds, groups = table[table["seed"] != "mean"], table[table["seed"] == "mean"]
    assert len(seeds) == 12 and len(groups) == 4
    assert set(seeds["own"]) == {"yes", "no"} and (seeds["n_test"] == 5).all()
    g = groups.set_index(["network", "target"]).loc[("net_mpnet", "mpnet")]
    assert g["cosine"] == pytest.approx(0.61) and g["sd"] == pytest.approx(0.1)
    assert g["gain"] == pytest.approx(0.21) and g["n_seeds"] == 3 and g["own"] == "yes"
    fig = transfer_figure(table)
    ax = fig.get_axes()[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["net_mpnet", "net_multihot"]
    assert len(ax.patches) == 4  # one bar per network and target
    with pytest.raises(Exception, match="missing"):
        transfer_figure(table.drop(columns="floor"))


# ----------------------------------------------------------------------------- the config
@pytest.mark.parametrize(
    "key, value",
    [("transfer_test_size", 0), ("transfer_epochs", 0), ("transfer_batch_size", -1),
     ("transfer_learning_rate", 0.0), ("transfer_eps", -0.1), ("transfer", "sometimes")],
)  # fmt: skip
def test_bad_transfer_keys_name_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        _config(tmp_path / "run", **{key: value})


def test_the_plan_reads_each_network_toward_each_target(tmp_path):
    plan = build_plan(_config(tmp_path / "run"))
    tasks = [t for t in plan.analyses["networks"].values() if t.stage == "transfer_readout"]
    got = {(t.id.model, t.id.instance, t.id.target) for t in tasks}
    assert got == {
        (f"net_{n}", f"seed{s}", t)
        for n in ("mpnet", "multihot")
        for s in (0, 1)
        for t in ("mpnet", "multihot")
    }
    for t in tasks:
        assert t.deps["network"].stage == "train_network"
        assert t.deps["network"].id.model == t.id.model
        assert t.deps["network"].params["seed"] == t.params["seed"]
        space = "minilm" if t.id.target == "mpnet" else "multihot"  # the demo's embedding space
        assert t.deps["target"].stage == "features" and t.deps["target"].id.model == space
    assert not plan.notes


def test_the_backbone_variant_plans_no_readout_and_says_why(tmp_path):
    cfg = _config(tmp_path / "run", backbone="efficientnet-lite0")
    plan = build_plan(cfg)
    assert not [t for t in all_tasks(plan.targets) if t.stage == "transfer_readout"]
    (note,) = [w for w in plan.notes if w.key == "analyses.networks.backbone"]
    assert note.message == TRANSFER_WITH_BACKBONE
    assert any(TRANSFER_WITH_BACKBONE in line for line in methods(cfg))
    off = _config(tmp_path / "run", transfer=False)
    assert not [t for t in all_tasks(build_plan(off).targets) if t.stage == "transfer_readout"]
    assert not any("Transfer readouts" in line for line in methods(off))


def test_the_report_says_why_the_backbone_variant_has_no_readouts():
    from brainalign.pipeline.analyses.networks import _transfer_html

    def run(**networks):
        meta = {"config": {"analyses": {"networks": networks}}}
        return SimpleNamespace(meta=meta, table=lambda name: None)

    html = _transfer_html(run(transfer=True, backbone="efficientnet-lite0"))
    assert "Transfer readouts (Fig. 4b): not run: with a backbone" in html
    assert _transfer_html(run(transfer=True)) == ""  # no table: nothing to show
    assert _transfer_html(run(transfer=False, backbone="efficientnet-lite0")) == ""


def test_the_report_names_the_readouts_not_above_their_floor():
    from brainalign.pipeline.analyses.networks import _transfer_html

    results = []
    for network, target, cos in [("mpnet", "mpnet", 0.7), ("mpnet", "multihot", 0.3)]:
        t = SimpleNamespace(
            params={"network": network, "target": target, "seed": 0},
            id=SimpleNamespace(model=f"net_{network}"),
        )
        results.append((t, {"cosine": cos, "floor": 0.5, "train_ids": [1], "test_ids": [2]}))
    table = transfer_table(results)
    meta = {"config": {"analyses": {"networks": {"transfer": True, "transfer_epochs": 7}}}}
    html = _transfer_html(SimpleNamespace(meta=meta, table=lambda name: table))
    assert "<img" in html and "Not above the floor: net_mpnet → multihot." in html
    assert "transfer_epochs = 7" in html and "net_mpnet → mpnet" not in html


def test_the_full_demo_plans_no_readout_and_says_why(tmp_path):
    from brainalign.pipeline.demo import demo_config

    plan = build_plan(demo_config(tmp_path / "run"))
    assert not [t for t in all_tasks(plan.targets) if t.stage == "transfer_readout"]
    assert [w.message for w in plan.notes if w.key == "analyses.networks.backbone"] == [
        TRANSFER_WITH_BACKBONE
    ]
