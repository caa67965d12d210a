from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from brainalign.datasets.base import SubjectResponses
from brainalign.errors import InputError
from brainalign.networks.compare import compare_models, roi_noise_ceilings


@pytest.fixture(scope="module")
def planted():
    """4 subjects; ROI 'a' is driven by features A, ROI 'b' by features B; 40 shared images."""
    rng = np.random.default_rng(0)
    n_all = 240
    A = rng.standard_normal((n_all, 12))
    B = rng.standard_normal((n_all, 12))
    subjects = []
    for s in range(4):
        own = np.sort(
            np.concatenate([np.arange(40), rng.choice(np.arange(40, n_all), 80, replace=False)])
        )
        Y = np.concatenate(
            [A[own] @ rng.standard_normal((12, 30)), B[own] @ rng.standard_normal((12, 30))], 1
        )
        Y += 1.5 * rng.standard_normal(Y.shape)
        rois = {"a": np.arange(60) < 30, "b": np.arange(60) >= 30}
        subjects.append(
            SubjectResponses(Y.astype(np.float32), own, own < 40, rois, "fsaverage", s + 1)
        )
    return subjects, np.arange(n_all), A, B


def _plain_subset_r(betas, feats, subsets):
    return np.mean(
        [
            np.corrcoef(pdist(betas[r], "correlation"), pdist(feats[r], "correlation"))[0, 1]
            for r in subsets
        ]
    )


def test_table_ranks_the_planted_models(planted, tmp_path):
    subjects, ids, A, B = planted
    noisy_b = [B, B + 0.3 * np.random.default_rng(1).standard_normal(B.shape)]  # two "seeds"
    res = compare_models(
        {"A": A, "B": noisy_b}, subjects, ids, rois=["a", "b"], subset_size=40, out=tmp_path
    )
    t = res.table.set_index(["model", "roi"])
    assert t.loc[("A", "a"), "mean"] > t.loc[("B", "a"), "mean"] + 0.3
    assert t.loc[("B", "b"), "mean"] > t.loc[("A", "b"), "mean"] + 0.3
    assert t.loc[("A", "a"), "p"] < 0.01 and bool(t.loc[("A", "a"), "normalised"])
    assert (res.subjects.query("model == 'B'")["instances"] == 2).all()
    pw = res.pairwise.set_index("roi")
    assert pw.loc["a", "diff"] > 0 and pw.loc["a", "significant"]
    for key in ("table_csv", "table_parquet", "subjects_csv", "pairwise_parquet", "figure"):
        assert res.files[key].exists()
    assert res.files["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pd.testing.assert_frame_equal(
        pd.read_parquet(res.files["table_parquet"]), res.table, check_dtype=False
    )


def test_numbers_match_a_plain_reference(planted):
    """Subject r = mean over the same subsets of Pearson(pdist, pdist); seeds averaged; ÷ ceiling."""
    from brainalign.rsa import make_subsets

    subjects, ids, A, B = planted
    B2 = B + 0.5 * np.random.default_rng(2).standard_normal(B.shape)
    res = compare_models({"B": [B, B2]}, subjects, ids, rois=["b"], subset_size=40, random_state=3)
    shared = np.arange(40)
    rdms = [
        pdist(s.betas[np.searchsorted(s.image_ids, shared)][:, s.rois["b"]], "correlation")
        for s in subjects
    ]
    for si, sub in enumerate(subjects):
        others = np.mean([r for j, r in enumerate(rdms) if j != si], axis=0)
        ceiling = np.corrcoef(rdms[si], others)[0, 1]
        # drawn as the pipeline draws them: seed random_state * 1000 + subject
        subsets = make_subsets(len(sub.image_ids), 40, random_state=3 * 1000 + sub.subject)
        X = sub.betas[:, sub.rois["b"]]
        r = np.mean([_plain_subset_r(X, F[sub.image_ids], subsets) for F in (B, B2)])
        row = res.subjects.query(f"subject == {sub.subject}").iloc[0]
        assert row["ceiling"] == pytest.approx(ceiling, abs=1e-6)
        assert row["r"] == pytest.approx(r, abs=1e-6)
        assert row["r_normalised"] == pytest.approx(r / ceiling, abs=1e-6)
    x = res.subjects["r_normalised"].to_numpy()
    ref = stats.ttest_1samp(x, 0)
    assert res.table["t"].iloc[0] == pytest.approx(ref.statistic) and res.table["p"].iloc[
        0
    ] == pytest.approx(ref.pvalue)


def test_pairwise_tests_match_scipy(planted):
    subjects, ids, A, B = planted
    C = A + B
    res = compare_models({"A": A, "B": B, "C": C}, subjects, ids, rois=["a"], subset_size=40)
    wide = res.subjects.pivot(index="subject", columns="model", values="r_normalised")
    p = []
    for _, row in res.pairwise.iterrows():
        ref = stats.ttest_rel(wide[row.model_a], wide[row.model_b])
        assert row.t == pytest.approx(ref.statistic) and row.p == pytest.approx(ref.pvalue)
        p.append(ref.pvalue)
    np.testing.assert_allclose(res.pairwise["q"], stats.false_discovery_control(p, method="bh"))
    assert set(res.pairwise["family"]) == {"all"}


def test_the_papers_test_error_bars_and_families(planted):
    """test="paper" is scipy's ttest_ind, error="paper" SD (ddof 0) / √n, and each FDR family
    is its own BH family."""
    subjects, ids, A, B = planted
    feats = {"A": A, "B": B, "C": A + B, "D": A - B}
    families = {"ab": ["A", "B"], "rest": ["C", "D", "A"]}
    res = compare_models(
        feats, subjects, ids, rois=["a"], subset_size=40, test="paper", error="paper",
        fdr_q=0.1, families=families,
    )  # fmt: skip
    wide = res.subjects.pivot(index="subject", columns="model", values="r_normalised")
    for family, members in families.items():
        block = res.pairwise[res.pairwise.family == family]
        assert len(block) == len(members) * (len(members) - 1) // 2
        p = [
            stats.ttest_ind(wide[a], wide[b]).pvalue
            for a, b in zip(block.model_a, block.model_b, strict=True)
        ]
        np.testing.assert_allclose(block.p, p, rtol=1e-8)
        q = stats.false_discovery_control(p, method="bh")
        np.testing.assert_allclose(block.q, q, rtol=1e-10)
        np.testing.assert_array_equal(block.significant, q <= 0.1)
    for _, row in res.table.iterrows():
        x = wide[row.model].to_numpy()
        assert row.error_bar == pytest.approx(x.std(ddof=0) / np.sqrt(len(x)))
    with pytest.raises(InputError, match="families"):
        compare_models(feats, subjects, ids, rois=["a"], subset_size=40, families={"x": ["A", "Z"]})


def test_given_subsets_are_the_ones_scored(planted):
    """A pipeline run's subsets (image ids per subject) replace the drawn ones."""
    subjects, ids, A, _ = planted
    given = {s.subject: np.asarray(s.image_ids)[np.arange(60).reshape(2, 30)] for s in subjects}
    res = compare_models({"A": A}, subjects, ids, rois=["a"], subsets=given)
    for sub in subjects:
        X = sub.betas[:, sub.rois["a"]]
        r = _plain_subset_r(X, A[sub.image_ids], np.arange(60).reshape(2, 30))
        row = res.subjects.query(f"subject == {sub.subject}").iloc[0]
        assert row["r"] == pytest.approx(r, abs=1e-6)
    bad = {**given, 1: given[1] + 10_000}
    with pytest.raises(InputError, match=r"subsets\[1\]: .* not among them"):
        compare_models({"A": A}, subjects, ids, rois=["a"], subsets=bad)
    with pytest.raises(InputError, match="none for subject 2"):
        compare_models({"A": A}, subjects, ids, rois=["a"], subsets={1: given[1]})


def test_noise_ceiling_needs_two_subjects_and_shared_images(planted):
    subjects, *_ = planted
    with pytest.raises(InputError, match="at least 2"):
        roi_noise_ceilings(subjects[:1], "a", np.arange(40))
    with pytest.raises(InputError, match="did not see"):
        roi_noise_ceilings(subjects, "a", np.arange(200, 240))


def test_bad_inputs(planted):
    subjects, ids, A, _ = planted
    with pytest.raises(InputError, match="has no ROI"):
        compare_models({"A": A}, subjects, ids, rois=["ventral"])
    with pytest.raises(InputError, match="aligned with the ids"):
        compare_models({"A": A[:10]}, subjects, ids, rois=["a"])
    with pytest.raises(InputError, match="lack"):
        compare_models({"A": A[:100]}, subjects, ids[:100], rois=["a"])
