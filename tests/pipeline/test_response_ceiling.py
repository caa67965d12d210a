"""The noise ceiling of response encoding: split-half with repetitions, the other subjects'
mean response with two or more subjects and none, and none (with the reason) otherwise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import load_rdm_dataset
from brainalign.encoding import split_half_reliability
from brainalign.pipeline.analyses.response_encoding import (
    NO_CEILING_ONE_SUBJECT,
    NO_CEILING_UNITS,
    OTHER_SUBJECTS,
    SPLIT_HALF,
    unit_ceilings,
)
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.study import run_study
from tests.datasets.rdm_folder import write_by_hand
from tests.pipeline.test_rdm_study import tiny_config


def _plain(Y):
    """Each subject's unit against the mean of the others' same unit, written out."""
    S, _, U = Y.shape
    out = np.empty((S, U))
    for s in range(S):
        others = np.delete(Y, s, axis=0).mean(axis=0)
        out[s] = [np.corrcoef(Y[s, :, u], others[:, u])[0, 1] for u in range(U)]
    return np.clip(out, 0, None)


def test_between_subject_ceiling_is_the_other_subjects_mean():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((8, 5))
    Y = shared + rng.standard_normal((3, 8, 5))
    kind, c = unit_ceilings(Y)
    assert kind == OTHER_SUBJECTS and c.shape == (3, 5)
    np.testing.assert_allclose(c, _plain(Y), atol=1e-6)
    assert unit_ceilings(Y, units_correspond=False) == (NO_CEILING_UNITS, None)
    assert unit_ceilings(Y[:1]) == (NO_CEILING_ONE_SUBJECT, None)
    reps = rng.standard_normal((2, 4, 8, 5))
    kind, c = unit_ceilings(reps)
    assert kind == SPLIT_HALF
    np.testing.assert_allclose(c[1], np.sqrt(np.clip(split_half_reliability(reps[1]), 0, None)))


def test_two_or_more_subjects_without_repetitions_get_a_ceiling(tmp_path):
    root = tmp_path / "tiny"
    write_by_hand(root)
    cfg = tiny_config(root, tmp_path / "run", methods=["pearson"])
    cfg["features"]["spaces"] = ["animacy"]
    cfg["analyses"]["response_decoding"]["enabled"] = False
    run_study(validate_config(cfg), report=False)
    subj = pd.read_csv(tmp_path / "run" / "tables" / "response_encoding_subjects.csv")
    Y = np.load(root / "responses" / "V1.npy")
    ceilings = _plain(Y).mean(axis=1)
    assert len(subj) == len(Y) >= 2 and (subj["ceiling_kind"] == OTHER_SUBJECTS).all()
    for s, row in subj.iterrows():
        assert row["ceiling"] == pytest.approx(ceilings[s], abs=1e-6)
        assert row["r_normalised"] == pytest.approx(row["r"] / row["ceiling"], rel=1e-9)
    group = pd.read_csv(tmp_path / "run" / "tables" / "response_encoding.csv")
    assert (group["ceiling_kind"] == OTHER_SUBJECTS).all()


def test_a_data_set_says_its_units_differ(tmp_path):
    root = tmp_path / "tiny"
    write_by_hand(root)
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**meta, "units_correspond": False}))
    assert load_rdm_dataset(root).meta["units_correspond"] is False
