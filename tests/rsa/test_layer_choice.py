"""The best layer of a profile chosen on held-out subjects (leave-one-subject-out)."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.errors import InputError
from brainalign.rsa.layer_choice import HELD_OUT, SAME_DATA, held_out_best_layer


def _plain(S):
    """Leave-one-subject-out written out: each subject's layer from the others' mean."""
    picks = [int(np.argmax(np.delete(S, s, axis=0).mean(0))) for s in range(len(S))]
    return picks, float(np.mean([S[s, p] for s, p in enumerate(picks)]))


def test_matches_a_plain_leave_one_out_on_random_scores():
    rng = np.random.default_rng(0)
    for _ in range(20):
        S = rng.normal(size=(rng.integers(2, 8), rng.integers(1, 12)))
        got = held_out_best_layer(S)
        picks, score = _plain(S)
        assert got.chosen.tolist() == picks and got.held_out_score == pytest.approx(score)
        assert got.best_layer == int(np.argmax(S.mean(0))) and got.chosen_on == HELD_OUT
        assert got.in_sample_score == pytest.approx(S.mean(0).max())


def test_the_held_out_score_removes_the_selection_bias():
    """Pure noise: the in-sample best layer scores above zero, the held-out choice does not."""
    rng = np.random.default_rng(1)
    in_sample, held = [], []
    for _ in range(300):
        choice = held_out_best_layer(rng.normal(size=(6, 13)))
        in_sample.append(choice.in_sample_score)
        held.append(choice.held_out_score)
    assert np.mean(in_sample) > 0.5  # the maximum of 13 noisy means
    assert abs(np.mean(held)) < 0.1  # unbiased: each score is from a subject that did not choose


def test_one_subject_says_the_layer_is_chosen_on_the_same_data():
    got = held_out_best_layer([[0.1, 0.4, 0.2]])
    assert got.chosen_on == SAME_DATA and got.best_layer == 1
    assert got.held_out_score == got.in_sample_score == pytest.approx(0.4)


def test_missing_scores_and_bad_input():
    S = np.array([[0.1, np.nan, 0.3], [0.2, 0.9, 0.1], [0.0, 0.8, 0.4]])
    got = held_out_best_layer(S)
    # subject 0 has no score at layer 1: it is chosen for it on the others, then is NaN there
    assert got.chosen.tolist() == [1, 1, 1] and got.held_out_score == pytest.approx(0.85)
    with pytest.raises(InputError, match="n_subjects, n_layers"):
        held_out_best_layer(np.zeros(3))
    with pytest.raises(InputError, match="no subject's score"):
        held_out_best_layer([[np.nan, 1.0], [np.nan, 2.0]])
