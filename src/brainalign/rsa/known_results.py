"""Published results about the 92-object fMRI data, checked on a study's scores.

Each check states a published claim about the two 92-image data sets (Kriegeskorte et al. 2008;
Cichy et al. 2014, Algonauts 2019 release), computes the numbers that test it from a study's
RDM scores, and says pass or fail — whatever the numbers say; nothing is tuned to them. A check
whose data set, ROI or model is missing is reported as not applicable (``passed`` is None).

1. ``animacy_it_gt_evc``: the animacy model fits IT better than EVC (Cichy): paired t-test over
   subjects of the per-subject scores, one-sided, IT > EVC.
2. ``animacy_human_it``: the animacy model fits human IT (Kriegeskorte): score > 0 by the
   study's test against 0 (dual bootstrap t-test, as rsatoolbox). One claim, one row: it tests
   the animacy RDM published with the data (``rdm:animacy``) where the study has it, else the
   animacy model built from the categories; the row says whether the other one is the same RDM
   (identical per-subject scores, as on the 92 images) or gives its numbers.
3. ``human_it_agrees``: human IT (Kriegeskorte) and Cichy's IT agree: correlation of the two
   group-mean RDMs on the shared stimuli, stimulus-label randomisation test (one-sided).
4. ``efficientnet_evc_early_it_late``: "in deep vision networks, early layers match EVC best and
   late layers match IT best" (Cichy et al. 2016, Sci. Rep. 6:27755; the Algonauts 2019
   baselines, Cichy et al. 2019, arXiv:1905.05675; as the shared data's ``real_rdms/README.md``,
   "Known results to expect", states it). Tested as stated, with the network's layers in depth
   order (the order the study scores them) at relative depth ``i / (n_layers - 1)``: EVC's best
   layer lies in the first half (depth < 0.5) and IT's best in the second half (depth > 0.5),
   and each best layer's score is above 0 by the study's test (a best layer that does not fit
   the ROI matches nothing). The row also says how many layers correlate negatively with EVC.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from brainalign.rsa.inference import rdm_permutation_test
from brainalign.rsa.rdm import condense, squareform_rdm

KRIEGESKORTE, CICHY = "kriegeskorte92", "cichy92"


def _row(check, claim, datasets, passed, numbers, statistic=np.nan, p=np.nan):
    return {
        "check": check,
        "claim": claim,
        "datasets": datasets,
        "passed": passed,
        "statistic": float(statistic),
        "p": float(p),
        "numbers": numbers,
    }


def _score(scores, dataset, roi, model, method, layer=""):
    sel = scores[
        (scores["dataset"] == dataset)
        & (scores["roi"] == roi)
        & (scores["model"] == model)
        & (scores["method"] == method)
        & (scores["layer"].fillna("") == layer)
    ]
    return None if sel.empty else sel.iloc[0]


def _fmt(row) -> str:
    return f"{row['score']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def objects92_known_results(
    scores,
    subject_scores,
    group_rdms: dict,
    stimulus_ids: dict,
    *,
    method: str = "spearman",
    animacy_model: str = "animacy",
    published_animacy: str = "rdm:animacy",
    vision_model: str = "efficientnet-lite0",
    p_threshold: float = 0.05,
    n_permutations: int = 10_000,
    random_state=0,
):
    """The known-results table of a study on the 92-object data sets.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per data set, ROI, model, layer and method with ``score``, ``ci_low``,
        ``ci_high``, ``p_zero`` (the study's ``rdm_scores`` plus ``p_zero``).
    subject_scores : pandas.DataFrame
        ``dataset``, ``roi``, ``model``, ``layer``, ``method``, ``subject``, ``score``.
    group_rdms : dict
        ``(dataset, roi) -> condensed group-mean RDM``.
    stimulus_ids : dict
        ``dataset -> list of stimulus ids`` in RDM order (to match the two data sets).
    method : str
        The comparison method the checks use.
    p_threshold : float
        Significance level of the checks' tests (p < p_threshold).

    Returns
    -------
    pandas.DataFrame
        ``check``, ``claim``, ``datasets``, ``passed`` (True / False / None), ``statistic``,
        ``p`` and ``numbers`` (a readable summary).
    """
    import pandas as pd

    rows = []
    # 1. animacy: IT > EVC in Cichy
    claim = "The animacy model fits IT better than EVC (Cichy et al. 2014)"
    it, evc = (_score(scores, CICHY, r, animacy_model, method) for r in ("IT", "EVC"))
    if it is None or evc is None:
        rows.append(
            _row(
                "animacy_it_gt_evc",
                claim,
                CICHY,
                None,
                f"not applicable: needs {CICHY} IT and EVC scores of {animacy_model!r}",
            )
        )
    else:
        ss = subject_scores[
            (subject_scores["dataset"] == CICHY)
            & (subject_scores["model"] == animacy_model)
            & (subject_scores["method"] == method)
            & (subject_scores["layer"].fillna("") == "")
        ]
        piv = ss.pivot_table(index="subject", columns="roi", values="score")
        t, p = stats.ttest_rel(piv["IT"], piv["EVC"], alternative="greater")
        diff = float((piv["IT"] - piv["EVC"]).mean())
        rows.append(
            _row(
                "animacy_it_gt_evc",
                claim,
                CICHY,
                bool(diff > 0 and p < p_threshold),
                f"{method}: IT {_fmt(it)}, EVC {_fmt(evc)}; IT − EVC = {diff:+.3f}, paired "
                f"t({len(piv) - 1}) = {t:.2f}, one-sided p = {p:.2g}",
                t,
                p,
            )
        )
    # 2. animacy fits human IT (Kriegeskorte): one claim, one row
    rows.append(
        _animacy_human_it(
            scores, subject_scores, method, animacy_model, published_animacy, p_threshold
        )
    )
    # 3. human IT (Kriegeskorte) agrees with Cichy's IT
    claim = "Human IT of Kriegeskorte et al. and the Cichy et al. IT group RDM agree"
    a, b = group_rdms.get((KRIEGESKORTE, "IT")), group_rdms.get((CICHY, "IT"))
    if a is None or b is None:
        rows.append(
            _row(
                "human_it_agrees",
                claim,
                f"{KRIEGESKORTE}, {CICHY}",
                None,
                "not applicable: needs both data sets' IT",
            )
        )
    else:
        ida, idb = list(stimulus_ids[KRIEGESKORTE]), list(stimulus_ids[CICHY])
        common = [s for s in ida if s in set(idb)]
        if len(common) < 3:
            rows.append(
                _row(
                    "human_it_agrees",
                    claim,
                    f"{KRIEGESKORTE}, {CICHY}",
                    None,
                    "not applicable: fewer than 3 shared stimulus ids",
                )
            )
        else:
            pa = [ida.index(s) for s in common]
            pb = [idb.index(s) for s in common]
            A = condense(squareform_rdm(np.asarray(a))[np.ix_(pa, pa)])
            B = condense(squareform_rdm(np.asarray(b))[np.ix_(pb, pb)])
            r, p = rdm_permutation_test(A, B, method, n_permutations, random_state)
            rows.append(
                _row(
                    "human_it_agrees",
                    claim,
                    f"{KRIEGESKORTE}, {CICHY}",
                    bool(r > 0 and p < p_threshold),
                    f"{method} r = {r:.3f} between the group-mean RDMs on {len(common)} stimuli; "
                    f"stimulus-label randomisation p = {p:.2g} ({n_permutations} permutations)",
                    r,
                    p,
                )
            )
    # 4. EfficientNet-lite0: an early layer fits EVC best, a late layer IT
    rows.append(_layers_early_late(scores, method, vision_model, p_threshold))
    return pd.DataFrame(rows)


def _animacy_human_it(scores, subject_scores, method, animacy_model, published, p_threshold):
    """Check 2: the published animacy RDM (else the category-built model) fits human IT."""
    claim = "The animacy model fits human IT (Kriegeskorte et al. 2008)"
    found = {
        m: r
        for m in (published, animacy_model)
        if (r := _score(scores, KRIEGESKORTE, "IT", m, method)) is not None
    }
    if not found:
        return _row(
            "animacy_human_it",
            claim,
            KRIEGESKORTE,
            None,
            f"not applicable: needs the {KRIEGESKORTE} IT score of {published!r} or "
            f"{animacy_model!r}",
        )
    model, r = next(iter(found.items()))
    what = "the published animacy RDM" if model == published else "built from the categories"
    numbers = f"{method}, {model} ({what}): {_fmt(r)}, p (against 0, one-sided) = {r['p_zero']:.2g}"
    if len(found) == 2:
        other = found[animacy_model]
        same = np.array_equal(
            _subject_values(subject_scores, KRIEGESKORTE, "IT", model, method),
            _subject_values(subject_scores, KRIEGESKORTE, "IT", animacy_model, method),
        )
        numbers += (
            f"; {animacy_model} (built from the categories) is the same RDM (identical "
            "per-subject scores)"
            if same
            else f"; {animacy_model} (built from the categories): {_fmt(other)}, p = "
            f"{other['p_zero']:.2g}"
        )
    return _row(
        "animacy_human_it",
        f"{claim} [{what}]",
        KRIEGESKORTE,
        bool(r["score"] > 0 and r["p_zero"] < p_threshold),
        numbers,
        r["score"],
        r["p_zero"],
    )


def _subject_values(subject_scores, dataset, roi, model, method) -> np.ndarray:
    """One model's per-subject scores in one ROI, in subject order."""
    sel = subject_scores[
        (subject_scores["dataset"] == dataset)
        & (subject_scores["roi"] == roi)
        & (subject_scores["model"] == model)
        & (subject_scores["method"] == method)
        & (subject_scores["layer"].fillna("") == "")
    ]
    return sel.sort_values("subject")["score"].to_numpy()


def _layers_early_late(scores, method, vision_model, p_threshold):
    """Check 4: EVC's best layer in the first half of the network, IT's in the second."""
    claim = (
        f"In {vision_model} an early layer fits EVC best and a late layer fits IT best (Cichy "
        "et al. 2016; Algonauts 2019 baselines): best EVC layer in the first half, best IT "
        "layer in the second, each above 0"
    )
    check = "efficientnet_evc_early_it_late"
    layers = scores[
        (scores["dataset"] == CICHY)
        & (scores["model"] == vision_model)
        & (scores["method"] == method)
    ]
    profile = {roi: layers[layers["roi"] == roi].reset_index(drop=True) for roi in ("EVC", "IT")}
    n = {len(v) for v in profile.values()}
    if min(n) < 2 or len(n) != 1:
        return _row(
            check,
            claim,
            CICHY,
            None,
            f"not applicable: needs {vision_model} scores of the same >= 2 layers in EVC and IT",
        )
    (n_layers,) = n
    best = {}
    for roi, sub in profile.items():
        i = int(sub["score"].to_numpy().argmax())
        best[roi] = (i, i / (n_layers - 1), sub.loc[i])
    (ie, de, re), (ii, di, ri) = best["EVC"], best["IT"]
    fits = {
        roi: bool(r["score"] > 0 and r["p_zero"] < p_threshold) for roi, (_, _, r) in best.items()
    }
    passed = de < 0.5 and fits["EVC"] and di > 0.5 and fits["IT"]
    evc = profile["EVC"]["score"].to_numpy()
    first = evc[: (n_layers + 1) // 2]
    numbers = (
        f"{method} over {n_layers} layers in depth order: best EVC layer {re['layer']} "
        f"(#{ie + 1}, depth {de:.2f}, {_fmt(re)}, p = {re['p_zero']:.2g}); best IT layer "
        f"{ri['layer']} (#{ii + 1}, depth {di:.2f}, {_fmt(ri)}, p = {ri['p_zero']:.2g}); "
        f"{int((evc < 0).sum())} of {n_layers} layers correlate negatively with EVC (first-half "
        f"mean {first.mean():+.3f})"
    )
    return _row(check, claim, CICHY, passed, numbers, di - de)


__all__ = ["objects92_known_results"]
