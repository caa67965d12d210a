"""The 92-object known-results checks on synthetic scores: each claim as stated, pass, fail
and not applicable, and one row per claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.rsa import compute_rdm, objects92_known_results

LAYER_CHECK = "efficientnet_evc_early_it_late"
#: per-subject animacy scores of Cichy's IT and EVC (IT clearly above EVC)
IT_ANIMACY, EVC_ANIMACY = np.array([0.3, 0.25, 0.35, 0.28]), np.array([0.0, 0.02, -0.01, 0.03])


def _row(dataset, roi, model, score, p_zero=0.001, layer=""):
    return dict(
        dataset=dataset,
        roi=roi,
        model=model,
        layer=layer,
        method="spearman",
        score=score,
        ci_low=score - 0.1,
        ci_high=score + 0.1,
        p_zero=p_zero,
    )


def _subjects(dataset, roi, model, values):
    return [
        dict(
            dataset=dataset,
            roi=roi,
            model=model,
            layer="",
            method="spearman",
            subject=f"s{i}",
            score=x,
        )
        for i, x in enumerate(values)
    ]


def _scores(it_animacy, evc_animacy, layers_evc, layers_it, layer_p=0.001, human=None):
    """Scores of the Cichy animacy model (per subject), of the network's layers in depth order
    (``(score, p)`` or scores with ``layer_p``) and of Kriegeskorte's IT (``human``: model ->
    (score, p, subject values))."""
    rows, subj = [], []
    for roi, v in (("IT", it_animacy), ("EVC", evc_animacy)):
        rows.append(_row("cichy92", roi, "animacy", float(np.mean(v))))
        subj += _subjects("cichy92", roi, "animacy", v)
    for roi, prof in (("EVC", layers_evc), ("IT", layers_it)):
        for i, x in enumerate(prof):
            score, p = x if isinstance(x, tuple) else (x, layer_p)
            rows.append(_row("cichy92", roi, "efficientnet-lite0", score, p, layer=f"l{i}"))
    human = {"animacy": (0.3, 0.2, [0.1, 0.5, 0.3, 0.3])} if human is None else human
    for model, (score, p, values) in human.items():
        rows.append(_row("kriegeskorte92", "IT", model, score, p))
        subj += _subjects("kriegeskorte92", "IT", model, values)
    return pd.DataFrame(rows), pd.DataFrame(subj)


def _known(scores, subj, rdms=None, ids=None):
    return objects92_known_results(
        scores, subj, rdms or {}, ids or {}, n_permutations=200
    ).set_index("check")


def test_known_results_report_pass_fail_and_not_applicable():
    rng = np.random.default_rng(0)
    scores, subj = _scores(
        0.3 + 0.02 * rng.standard_normal(8),
        0.02 * rng.standard_normal(8),
        [0.3, 0.4, 0.2, 0.1, 0.0],
        [0.0, 0.1, 0.2, 0.3, 0.5],
    )
    X = rng.standard_normal((10, 4))
    rdms = {("kriegeskorte92", "IT"): compute_rdm(X), ("cichy92", "IT"): compute_rdm(X + 0.3)}
    ids = {"kriegeskorte92": list("abcdefghij"), "cichy92": list("abcdefghij")}
    known = _known(scores, subj, rdms, ids)
    assert {c: str(v) for c, v in known["passed"].items()} == {
        "animacy_it_gt_evc": "True",
        "animacy_human_it": "False",  # p against 0 is 0.2
        "human_it_agrees": "True",
        LAYER_CHECK: "True",
    }
    assert "l1 (#2, depth 0.25" in known.loc[LAYER_CHECK, "numbers"]
    assert known.loc[LAYER_CHECK, "statistic"] == pytest.approx(1.0 - 0.25)
    assert known.loc["human_it_agrees", "passed"] is not None
    assert _known(scores, subj).loc["human_it_agrees", "passed"] is None


def test_the_animacy_claim_on_human_it_is_one_row():
    """The published animacy RDM and the one built from the categories are the same RDM on the
    92 images: one claim, one row, which says so; where they differ the row decides on the
    published RDM and gives the other's numbers."""
    same = [0.2, 0.5, 0.4, 0.45]
    scores, subj = _scores(
        IT_ANIMACY,
        EVC_ANIMACY,
        [0.2, 0.1],
        [0.1, 0.2],
        human={"rdm:animacy": (0.39, 0.008, same), "animacy": (0.39, 0.008, same)},
    )
    known = _known(scores, subj)
    assert list(known.index).count("animacy_human_it") == 1 and len(known) == 4
    row = known.loc["animacy_human_it"]
    assert row["passed"] is True and "published animacy RDM" in row["claim"]
    assert "same RDM" in row["numbers"]
    scores, subj = _scores(
        IT_ANIMACY,
        EVC_ANIMACY,
        [0.2, 0.1],
        [0.1, 0.2],
        human={"rdm:animacy": (0.05, 0.3, same), "animacy": (0.4, 0.001, [0.4] * 4)},
    )
    row = _known(scores, subj).loc["animacy_human_it"]
    assert row["passed"] is False and row["statistic"] == 0.05
    assert "animacy (built from the categories): 0.400" in row["numbers"]
    # only the category-built model: it is the one tested
    scores, subj = _scores(IT_ANIMACY, EVC_ANIMACY, [0.2, 0.1], [0.1, 0.2])
    assert "built from the categories" in _known(scores, subj).loc["animacy_human_it", "claim"]


@pytest.mark.parametrize(
    ("evc", "it", "passed"),
    [
        # the finding of issue 20: EVC's best layer is the second-last, IT's the last, early
        # layers correlate negatively with EVC: "EVC's best no later than IT's" held, the
        # published claim does not
        (
            [-0.05, -0.04, 0.0, 0.05, 0.08, 0.1, 0.12, 0.11],
            [0.0, 0.1, 0.1, 0.1, 0.2, 0.3, 0.3, 0.4],
            False,
        ),
        # early best for EVC, late best for IT
        ([0.3, 0.2, 0.1, 0.0], [0.0, 0.1, 0.2, 0.3], True),
        # both peak early
        ([0.3, 0.2, 0.1, 0.0], [0.3, 0.2, 0.1, 0.0], False),
        # the middle of an odd number of layers is neither early nor late
        ([0.1, 0.2, 0.3, 0.2, 0.1], [0.0, 0.1, 0.2, 0.3, 0.4], False),
        # EVC's best layer (early) does not fit EVC: its score is not above 0
        ([(0.05, 0.3), 0.0, -0.1, -0.2], [0.0, 0.1, 0.2, 0.3], False),
        ([-0.1, -0.2, -0.3, -0.4], [0.0, 0.1, 0.2, 0.3], False),
    ],
)
def test_early_layers_fit_evc_and_late_layers_it_as_stated(evc, it, passed):
    scores, subj = _scores(IT_ANIMACY, EVC_ANIMACY, evc, it)
    row = _known(scores, subj).loc[LAYER_CHECK]
    assert row["passed"] is passed
    n_negative = sum((x[0] if isinstance(x, tuple) else x) < 0 for x in evc)
    assert f"{n_negative} of {len(evc)} layers correlate negatively with EVC" in row["numbers"]


def test_the_layer_check_needs_the_same_layers_in_both_rois():
    scores, subj = _scores(IT_ANIMACY, EVC_ANIMACY, [0.3, 0.2, 0.1], [0.1, 0.2])
    assert _known(scores, subj).loc[LAYER_CHECK, "passed"] is None
    scores, subj = _scores(IT_ANIMACY, EVC_ANIMACY, [0.3], [0.1])
    assert _known(scores, subj).loc[LAYER_CHECK, "passed"] is None
