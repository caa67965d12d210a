"""Layer profiles of a sentence encoder in an RDM study (``language_layers``), and every
profile's best layer chosen on held-out subjects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.errors import ConfigError
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.study import run_study
from brainalign.rsa.layer_choice import HELD_OUT, held_out_best_layer
from tests.datasets.rdm_folder import write_by_hand
from tests.pipeline.test_rdm_study import tiny_config


@pytest.fixture(scope="module")
def layered_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rdm_layers")
    root = folder / "tiny"
    write_by_hand(root)
    cfg = tiny_config(
        root, folder / "run", methods=["pearson"], language_layers=["minilm@0", "minilm@6"]
    )
    cfg["features"]["spaces"] = ["minilm", "animacy"]
    cfg["analyses"]["response_encoding"] = {"enabled": False}
    cfg["analyses"]["response_decoding"] = {"enabled": False}
    res = run_study(validate_config(cfg))
    return folder / "run", res


def test_language_layers_are_scored_as_a_layer_profile(layered_run):
    out, res = layered_run
    scores = pd.read_csv(out / "tables" / "rdm_scores.csv")
    layered = scores[scores["model"] == "minilm"].set_index(["roi", "layer"])["score"]
    assert {lay for _, lay in layered.index.dropna()} >= {"layer00", "layer06"}
    # the last layer with the model's head is the plain minilm space
    plain = scores[(scores["model"] == "minilm") & scores["layer"].isna()].set_index("roi")
    for roi in plain.index:
        assert layered[(roi, "layer06")] == pytest.approx(plain.loc[roi, "score"], abs=1e-5)
    assert layered[("IT", "layer00")] != pytest.approx(layered[("IT", "layer06")], abs=1e-6)
    html = res.report.read_text()
    assert "tiny · minilm" in html and "Best layer on held-out subjects" in html


def test_the_best_layer_is_chosen_on_held_out_subjects(layered_run):
    out, _ = layered_run
    choice = pd.read_csv(out / "tables" / "rdm_layer_choice.csv")
    subj = pd.read_csv(out / "tables" / "rdm_subject_scores.csv")
    for _, row in choice.iterrows():
        v = subj[(subj["roi"] == row["roi"]) & (subj["model"] == row["model"])]
        S = v.pivot_table(index="subject", columns="layer", values="score")[["layer00", "layer06"]]
        want = held_out_best_layer(S.to_numpy())
        assert row["held_out_score"] == pytest.approx(want.held_out_score, abs=1e-12)
        assert row["n_subjects"] == len(S) >= 2 and row["chosen_on"] == HELD_OUT
        assert row["best_layer_in_sample"] == S.columns[int(np.argmax(S.mean(0)))]


def test_an_unknown_layer_gets_a_suggestion(tmp_path):
    root = tmp_path / "tiny"
    write_by_hand(root)
    with pytest.raises(ConfigError, match="mpnet@0 … mpnet@12"):
        validate_config(tiny_config(root, tmp_path / "run", language_layers=["mpnet@13"]))
    with pytest.raises(ConfigError, match="did you mean 'mpnet@6'"):
        validate_config(tiny_config(root, tmp_path / "run", language_layers=["mpnt@6"]))


def test_a_layer_space_reads_the_captions_only():
    from brainalign.pipeline.inputs import reads_categories

    assert not reads_categories("mpnet@6") and not reads_categories("minilm@0")
    assert reads_categories("multihot") and reads_categories("mpnet@13")  # not a layer space


def test_the_layer_choice_table_reads_in_order(layered_run):
    out, _ = layered_run
    choice = pd.read_csv(out / "tables" / "rdm_layer_choice.csv")
    assert list(choice.columns[:4]) == ["dataset", "roi", "method", "model"]
    assert list(choice.columns[-2:]) == ["held_out_score", "chosen_on"]
