"""Published results about the 92-object fMRI data, checked on a study's scores.

Each check states a published claim about the two 92-image data sets (Kriegeskorte et al. 2008;
Cichy et al. 2014, Algonauts 2019 release), computes the numbers that test it from a study's
RDM scores, and says pass or fail — whatever the numbers say; nothing is tuned to them. A check
whose data set, ROI or model is missing is reported as not applicable (``passed`` is None).

1. ``animacy_it_gt_evc``: the animacy model fits IT better than EVC (Cichy): paired t-test over
   subjects of the per-subject scores, one-sided, IT > EVC.
2. ``animacy_human_it``: the animacy model fits human IT (Kriegeskorte): score > 0 by the
   study's test against 0 (dual bootstrap t-test, as rsatoolbox), for the animacy model built
   from the categories and, as a second row, for the animacy RDM published with the data.
3. ``human_it_agrees``: human IT (Kriegeskorte) and Cichy's IT agree: correlation of the two
   group-mean RDMs on the shared stimuli, stimulus-label randomisation test (one-sided).
4. ``efficientnet_evc_before_it``: in EfficientNet-lite0 the layer that best fits EVC comes no
   later than the one that best fits IT (Cichy).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

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
    alpha: float = 0.05,
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

    Returns
    -------
    pandas.DataFrame
        ``check``, ``claim``, ``datasets``, ``passed`` (True / False / None), ``statistic``,
        ``p`` and ``numbers`` (a readable summary).
    """
    import pandas as pd

    from brainalign.rsa.inference import rdm_permutation_test

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
                bool(diff > 0 and p < alpha),
                f"{method}: IT {_fmt(it)}, EVC {_fmt(evc)}; IT − EVC = {diff:+.3f}, paired "
                f"t({len(piv) - 1}) = {t:.2f}, one-sided p = {p:.2g}",
                t,
                p,
            )
        )
    # 2. animacy fits human IT (Kriegeskorte)
    claim = "The animacy model fits human IT (Kriegeskorte et al. 2008)"
    for model, what in (
        (animacy_model, "from the categories"),
        (published_animacy, "the published animacy RDM"),
    ):
        r = _score(scores, KRIEGESKORTE, "IT", model, method)
        check = "animacy_human_it" if model == animacy_model else "animacy_human_it_published"
        if r is None:
            rows.append(
                _row(
                    check,
                    f"{claim} [{what}]",
                    KRIEGESKORTE,
                    None,
                    f"not applicable: needs the {KRIEGESKORTE} IT score of {model!r}",
                )
            )
            continue
        rows.append(
            _row(
                check,
                f"{claim} [{what}]",
                KRIEGESKORTE,
                bool(r["score"] > 0 and r["p_zero"] < alpha),
                f"{method}: {_fmt(r)}, p (against 0, one-sided) = {r['p_zero']:.2g}",
                r["score"],
                r["p_zero"],
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
            from brainalign.rsa.rdm import condense, squareform_rdm

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
                    bool(r > 0 and p < alpha),
                    f"{method} r = {r:.3f} between the group-mean RDMs on {len(common)} stimuli; "
                    f"stimulus-label randomisation p = {p:.2g} ({n_permutations} permutations)",
                    r,
                    p,
                )
            )
    # 4. EfficientNet-lite0: best EVC layer no later than best IT layer
    claim = "In EfficientNet-lite0 the best layer for EVC comes no later than the best for IT"
    layers = scores[
        (scores["dataset"] == CICHY)
        & (scores["model"] == vision_model)
        & (scores["method"] == method)
    ]
    best = {}
    for roi in ("EVC", "IT"):
        sub = layers[layers["roi"] == roi].reset_index(drop=True)
        if len(sub):
            i = int(sub["score"].to_numpy().argmax())
            best[roi] = (i, sub.loc[i, "layer"], float(sub.loc[i, "score"]), len(sub))
    if len(best) < 2:
        rows.append(
            _row(
                "efficientnet_evc_before_it",
                claim,
                CICHY,
                None,
                f"not applicable: needs {vision_model} layer scores in EVC and IT",
            )
        )
    else:
        (ie, le, se, n), (ii, li, si, _) = best["EVC"], best["IT"]
        rows.append(
            _row(
                "efficientnet_evc_before_it",
                claim,
                CICHY,
                bool(ie <= ii),
                f"{method}: best EVC layer {le} (#{ie + 1} of {n}, {se:.3f}); best IT layer {li} "
                f"(#{ii + 1}, {si:.3f})",
                ii - ie,
            )
        )
    return pd.DataFrame(rows)


__all__ = ["objects92_known_results"]
