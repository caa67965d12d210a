"""The best layer of a network's layer profile, chosen on held-out subjects.

Picking the layer whose mean score is highest and reporting that score uses the same data twice:
the maximum of noisy scores is biased upward. :func:`held_out_best_layer` chooses each subject's
layer on the *other* subjects (leave-one-subject-out) and reports that subject's score at it, so
the reported score never saw the data that chose the layer. With one subject there are no others:
the layer is then chosen on the data it reports, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainalign.errors import InputError

#: how the layer was chosen (the ``chosen_on`` of :class:`LayerChoice`)
HELD_OUT = "other subjects (leave-one-subject-out)"
SAME_DATA = "the same data (one subject: optimistic)"


@dataclass
class LayerChoice:
    """The layer choice of one profile.

    Attributes
    ----------
    best_layer : int
        The layer with the highest mean score over all subjects (in-sample).
    in_sample_score : float
        Its mean score: optimistic, as the layer was chosen on it.
    chosen : (n_subjects,) int
        Per subject, the layer chosen on the other subjects (one subject: ``best_layer``).
    held_out_score : float
        Mean over subjects of each subject's score at the layer chosen without it (one subject:
        ``in_sample_score``).
    chosen_on : str
        :data:`HELD_OUT` or :data:`SAME_DATA`.
    """

    best_layer: int
    in_sample_score: float
    chosen: np.ndarray
    held_out_score: float
    chosen_on: str


def held_out_best_layer(scores) -> LayerChoice:
    """Choose a profile's best layer on held-out subjects.

    Parameters
    ----------
    scores : (n_subjects, n_layers) array_like
        Each subject's score (e.g. RDM correlation) at each layer; NaN where a subject has none.

    Returns
    -------
    LayerChoice
        With two or more subjects, subject ``s``'s layer maximises the mean score of the others
        (ties: the first layer) and ``held_out_score`` is the mean of ``scores[s, chosen[s]]``;
        with one subject, the in-sample choice, labelled :data:`SAME_DATA`.
    """
    S = np.asarray(scores, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] < 1 or S.shape[1] < 1:
        raise InputError(
            f"scores: expected (n_subjects, n_layers) with at least one of each, got {S.shape}"
        )
    if np.isnan(S).all(axis=0).any():
        raise InputError("scores: a layer has no subject's score; drop it from the profile")
    mean = np.nanmean(S, axis=0)
    best = int(np.nanargmax(mean))
    n = S.shape[0]
    if n == 1:
        return LayerChoice(best, float(mean[best]), np.array([best]), float(mean[best]), SAME_DATA)
    total = np.nansum(S, axis=0)
    count = np.sum(~np.isnan(S), axis=0)
    chosen = np.empty(n, dtype=np.int64)
    held = np.empty(n)
    for s in range(n):
        here = ~np.isnan(S[s])
        others = (total - np.where(here, S[s], 0.0)) / np.maximum(count - here, 1)
        others[count - here == 0] = -np.inf  # a layer only this subject has cannot be chosen
        chosen[s] = int(np.argmax(others))
        held[s] = S[s, chosen[s]]
    return LayerChoice(best, float(mean[best]), chosen, float(np.nanmean(held)), HELD_OUT)


__all__ = ["HELD_OUT", "SAME_DATA", "LayerChoice", "held_out_best_layer"]
