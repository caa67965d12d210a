"""FDR families of the pairwise model tests (issue 20): the paper corrects Fig. 3's models and
Fig. 4's models as separate Benjamini–Hochberg families; each family here equals a plain BH
(scipy.stats.false_discovery_control) over that family's pairs alone."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from brainalign.errors import InputError
from brainalign.stats import group_model_scores

FIG3 = ["mpnet", "multihot", "glove", "nouns"]
FIG4 = ["net_mpnet", "net_multihot", "mpnet"]  # a model may sit in two families


def _scores():
    rng = np.random.default_rng(7)
    effect = {m: 0.04 * k for k, m in enumerate(FIG3 + FIG4[:2])}
    return pd.DataFrame(
        [
            {"subject": s, "roi": roi, "model": m, "r": e + float(rng.normal(0.2, 0.05))}
            for s in range(1, 9)
            for roi in ("ventral", "lateral")
            for m, e in effect.items()
        ]
    )


def test_each_family_is_its_own_bh_family():
    scores = _scores()
    res = group_model_scores(
        scores, comparison_rois=["ventral", "lateral"], families={"fig3": FIG3, "fig4": FIG4}
    )
    pw = res.pairwise
    assert list(dict.fromkeys(pw.family)) == ["fig3", "fig4"]
    for (roi, family), block in pw.groupby(["roi", "family"]):
        members = FIG3 if family == "fig3" else FIG4
        pairs = {frozenset(p) for p in itertools.combinations(members, 2)}
        assert {
            frozenset((a, b)) for a, b in zip(block.model_a, block.model_b, strict=True)
        } == pairs
        wide = scores[scores.roi == roi].pivot(index="subject", columns="model", values="r")
        p = [
            sps.ttest_rel(wide[a], wide[b]).pvalue
            for a, b in zip(block.model_a, block.model_b, strict=True)
        ]
        np.testing.assert_allclose(block.p, p, rtol=1e-8)
        q = sps.false_discovery_control(np.asarray(p), method="bh")
        np.testing.assert_allclose(block.q, q, rtol=1e-10)
        np.testing.assert_array_equal(block.significant, q <= 0.05)
    # no pair across families (glove × net_mpnet) is tested
    cross = pw[(pw.model_a == "glove") & (pw.model_b == "net_mpnet")]
    assert cross.empty and len(pw) == 2 * (6 + 3)
    # one family of every model (the default) differs: 15 pairs share one correction
    default = group_model_scores(scores, comparison_rois=["ventral"]).pairwise
    assert set(default.family) == {"all"} and len(default) == 15
    q_all = sps.false_discovery_control(default.p.to_numpy(), method="bh")
    np.testing.assert_allclose(default.q, q_all, rtol=1e-10)
    # the same pairs get other q-values in their own family: the correction is per family
    fam = pw[(pw.roi == "ventral") & (pw.family == "fig3")]
    key = {
        frozenset(k): q
        for k, q in zip(zip(default.model_a, default.model_b, strict=True), default.q, strict=True)
    }
    q_in_all = np.array([key[frozenset(k)] for k in zip(fam.model_a, fam.model_b, strict=True)])
    assert not np.allclose(fam.q.to_numpy(), q_in_all)


def test_families_name_unknown_models_and_small_families():
    with pytest.raises(InputError, match=r"families\['fig4'\]: model\(s\) \['resnet'\]"):
        group_model_scores(
            _scores(), comparison_rois=["ventral"], families={"fig4": ["resnet", "mpnet"]}
        )
    with pytest.raises(InputError, match="at least 2 models"):
        group_model_scores(_scores(), comparison_rois=["ventral"], families={"one": ["mpnet"]})
