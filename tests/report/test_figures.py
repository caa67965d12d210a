"""The report's figures (issue 24): every ROI and model drawn, colour bars, category order,
rsatoolbox-style model comparisons whose significance marks come from the table the report
prints, surface maps with their threshold, and 3-D views with controls and a page of their own."""

from __future__ import annotations

import re
from html import escape, unescape
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from brainalign.pipeline import write_report
from brainalign.pipeline.analyses import ANALYSES, rdm_rsa, roi_rsa
from brainalign.report import check_in_browser, find_chromium, plots, rdm_plots
from brainalign.report.html import RunFolder
from brainalign.report.surface_views import VIEWS, SurfaceViews, write_view_page
from tests.report import demo_like

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed (apt-get install chromium); CI installs it",
)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A demo-shaped run folder (7 ROIs, 11 models, maps) and its report."""
    out = demo_like.write_demo_like_run(tmp_path_factory.mktemp("demo_like") / "run")
    return out, write_report(out)


@pytest.fixture
def captured(monkeypatch):
    """Every call of the figure functions the sections use, with its arguments."""
    calls: dict[str, list] = {"rdms": [], "comparison": []}
    rdms, comparison = rdm_plots.ordered_rdms_figure, plots.model_comparison_figure

    def spy_rdms(*args, **kwargs):
        calls["rdms"].append((args, kwargs))
        return rdms(*args, **kwargs)

    def spy_comparison(*args, **kwargs):
        calls["comparison"].append((args, kwargs))
        return comparison(*args, **kwargs)

    monkeypatch.setattr(rdm_plots, "ordered_rdms_figure", spy_rdms)
    monkeypatch.setattr(plots, "model_comparison_figure", spy_comparison)
    return calls


def _image_axes(fig) -> list:
    """Axes that show an RDM (the colour bar's axes has no title)."""
    return [ax for ax in fig.axes if ax.images and ax.get_title()]


def _colour_bars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


# ------------------------------------------------------------------------------------- RDMs
def test_rdm_figure_draws_every_rdm_with_one_colour_bar_in_category_order(rng):
    n = 30
    rdms = {f"rdm {i}": rng.random(n * (n - 1) // 2) for i in range(13)}
    cats = list(rng.choice(["b", "a", "c"], n))
    order = rdm_plots.category_order(cats)
    fig = rdm_plots.ordered_rdms_figure(rdms, order, cats)
    shown = _image_axes(fig)
    assert [ax.get_title() for ax in shown] == list(rdms)  # all 13, in order, none cut
    bars = _colour_bars(fig)
    assert len(bars) == 1 and "percentile" in bars[0].get_ylabel()
    # rows and columns in category order: the drawn matrix is the ranked RDM permuted
    from brainalign.report.rdm_plots import _ranked_square

    drawn = shown[0].images[0].get_array()
    np.testing.assert_allclose(drawn, _ranked_square(rdms["rdm 0"])[np.ix_(order, order)] * 100)
    grouped = [cats[i] for i in order]
    assert grouped == sorted(grouped, key=lambda c: (-cats.count(c), c))
    # the largest category first, file order kept inside each
    first = grouped[0]
    assert list(order[: cats.count(first)]) == [i for i, c in enumerate(cats) if c == first]


def test_primary_category_of_multi_hot_labels_is_the_most_frequent_one():
    names = ["person", "dog", "pizza"]
    M = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0], [1, 0, 1]])
    # person 3, dog 2, pizza 3: ties go to the first column
    assert rdm_plots.primary_categories(M, names) == [
        "person",
        "person",
        "pizza",
        "pizza",
        "(none)",
        "person",
    ]


def test_demo_rdm_section_shows_every_roi_and_model_and_says_which_images(demo_run, captured):
    out, _ = demo_run
    html = unescape(roi_rsa._rdms_section(RunFolder(out)))
    (brain, _), (models, _) = captured["rdms"]
    assert list(brain[0]) == demo_like.ROIS  # all 7, in the config's order
    assert set(models[0]) == set(demo_like.MODELS) and len(models[0]) == 11
    cats = list(np.load(out / "arrays" / "rdmimages__categories.npy"))
    order, given = brain[1], brain[2]
    assert given == cats and list(order) == list(rdm_plots.category_order(cats))
    assert "first 120 of subject 1's 300 images" in html
    assert "all 7 (early, midventral" in html and "all 11 (" in html


def test_export_writes_an_rdm_for_every_roi_and_model(tmp_path, monkeypatch):
    """The export behind the RDM figure keeps every ROI and model (it kept 4 and 6)."""
    rois = demo_like.ROIS
    rng = np.random.default_rng(1)
    n_img = 150
    sub = SimpleNamespace(
        n_images=n_img,
        betas=rng.standard_normal((n_img, 70)).astype(np.float32),
        image_ids=np.arange(n_img) * 3,
        rois={r: np.arange(70) % len(rois) == k for k, r in enumerate(rois)},
    )
    features = {m: f"task-{m}" for m in demo_like.MODELS}
    plan = SimpleNamespace(
        subjects=[2],
        subject_tasks={2: SimpleNamespace(params={"root": "nowhere"})},
        features=features,
        config=SimpleNamespace(analyses=SimpleNamespace(roi_rsa=SimpleNamespace(rois=rois))),
    )
    written: dict[str, np.ndarray] = {}
    ctx = SimpleNamespace(
        plan=plan,
        writer=SimpleNamespace(array=lambda name, a: written.__setitem__(name, np.asarray(a))),
        extras={"nsd_cache": None},
        load=lambda t: {"X": rng.standard_normal((n_img, 5)), "ids": sub.image_ids},
    )
    monkeypatch.setattr(roi_rsa, "load_subject", lambda params, c: sub)
    monkeypatch.setattr(roi_rsa, "_image_categories", lambda root, ids: ["x"] * len(ids))
    roi_rsa._export_rdms(ctx)
    assert {k for k in written if k.endswith("__brain")} == {f"rdm__{r}__brain" for r in rois}
    assert {k for k in written if k.startswith("rdm__model__")} == {
        f"rdm__model__{m}" for m in demo_like.MODELS
    }
    k = roi_rsa.RDM_FIGURE_IMAGES
    assert len(written["rdm__early__brain"]) == k * (k - 1) // 2
    np.testing.assert_array_equal(written["rdmimages__ids"], sub.image_ids[:k])
    np.testing.assert_array_equal(written["rdmimages__meta"], [2, n_img])
    assert list(written["rdmimages__categories"]) == ["x"] * k


# ------------------------------------------------------------------------- model comparison
def _pair_gids(fig) -> set[tuple[str, str]]:
    gids = {a.get_gid() for ax in fig.axes for a in ax.get_lines()}
    return {tuple(g[5:].split("|")) for g in gids if g and g.startswith("pair:")}


def test_model_comparison_figure_has_every_model_ceiling_dots_and_table_pairs(rng):
    models = [f"m{i}" for i in range(9)]
    scores = pd.DataFrame(
        [
            {"subject": s, "model": m, "score": 0.05 * i + rng.normal(0, 0.01)}
            for s in range(6)
            for i, m in enumerate(models)
        ]
    )
    pairs = pd.DataFrame(
        [
            {"model_a": a, "model_b": b, "diff": 0.05 * (i - j), "significant": abs(i - j) > 4}
            for i, a in enumerate(models)
            for j, b in enumerate(models)
            if i < j
        ]
    )
    fig = plots.model_comparison_figure(scores, pairs, ceiling=(0.3, 0.4), title="x")
    bars_ax = next(ax for ax in fig.axes if ax.get_xticklabels())
    ticks = [t.get_text() for t in bars_ax.get_xticklabels()]
    assert ticks == models[::-1]  # every model, best first
    assert len(bars_ax.patches) >= len(models)  # bars (and the ceiling band)
    from matplotlib.collections import PathCollection

    dots = sum(len(c.get_offsets()) for c in bars_ax.collections if isinstance(c, PathCollection))
    assert dots == len(scores)
    assert any(
        "noise ceiling" in t.get_text() for t in bars_ax.get_legend().get_texts()
    )  # the band
    want = {(b, a) if d < 0 else (a, b) for a, b, d, s in pairs.itertuples(index=False) if s}
    assert _pair_gids(fig) == want == set(plots.significant_pairs(pairs, models))


def test_roi_comparison_marks_come_from_the_printed_table(demo_run, captured):
    out, report = demo_run
    run = RunFolder(out)
    html = unescape(roi_rsa._comparison_section(run))
    table = pd.read_csv(out / "tables" / "model_comparison.csv")
    assert len(captured["comparison"]) == len(demo_like.COMPARISON_ROIS)
    for args, kwargs in captured["comparison"]:
        scores, pairs = args
        (roi,) = set(scores["roi"])
        want = table[table["roi"] == roi]
        pd.testing.assert_frame_equal(pairs.reset_index(drop=True), want.reset_index(drop=True))
        assert kwargs["value"] == "r_norm" and set(scores["model"]) == set(demo_like.MODELS)
    # the caption states the FDR family
    assert "Benjamini–Hochberg FDR q < 0.05 over all 55 pairs of the 11 models in ventral" in html


def test_rdm_study_comparison_uses_its_pairwise_table(tmp_path, captured):
    """RDM data sets: bars with CIs, subject dots and marks from tables/rdm_pairwise.csv."""
    from brainalign.report import RunWriter

    w = RunWriter(tmp_path / "run")
    w.json("run", {"config": {"analyses": {"rdm_rsa": {"methods": ["spearman"], "fdr_q": 0.05}}}})
    models = [("animacy", ""), ("multihot", ""), ("net", "l1"), ("net", "l2")]
    at = {"dataset": "set", "roi": "IT", "method": "spearman"}
    w.table(
        "rdm_inference",
        pd.DataFrame(
            [
                {
                    **at,
                    "model": m,
                    "layer": la,
                    "score": s,
                    "ci_low": s - 0.05,
                    "ci_high": s + 0.05,
                    "p_zero": 0.01,
                    "p_noise": 0.2,
                }
                for (m, la), s in zip(models, [0.3, 0.1, 0.2, 0.25], strict=True)
            ]
        ),
    )
    w.table("noise_ceiling", pd.DataFrame([{**at, "lower": 0.4, "upper": 0.5}]))
    w.table(
        "rdm_subject_scores",
        pd.DataFrame(
            [
                {**at, "model": m, "layer": la, "subject": s, "score": 0.1 * s}
                for m, la in models
                for s in range(4)
            ]
        ),
    )
    pw = pd.DataFrame(
        [
            {
                **at,
                "model_a": a[0],
                "layer_a": a[1],
                "model_b": b[0],
                "layer_b": b[1],
                "diff": 0.1,
                "p": 0.001,
                "q": 0.01,
                "significant": True,
            }
            for i, a in enumerate(models)
            for b in models[i + 1 :]
        ]
    )
    w.table("rdm_pairwise", pw)
    html = unescape(rdm_rsa._scores_section(RunFolder(tmp_path / "run")))
    ((subj, pairs), kwargs) = captured["comparison"][0]
    # the best layer of the network is shown (l2), l1 is not; pairs relabelled "net · l2"
    assert set(subj["model"]) == {"animacy", "multihot", "net · l2"} and len(subj) == 12
    assert len(pairs) == len(pw) and "net · l1" in set(pairs["model_a"]) | set(pairs["model_b"])
    assert kwargs["ceiling"] == (0.4, 0.5)
    assert "over all 6 pairs of the 4 models, every layer of each network" in html


# ---------------------------------------------------------------------------- surface maps
def test_significance_threshold_and_its_mark_on_the_colour_bar(rng):
    lh, rh = rng.standard_normal(10242), rng.standard_normal(10242)
    sig = (np.abs(lh) > 2.5, np.abs(rh) > 2.5)
    thr = plots.significance_threshold(lh, rh, sig)
    assert thr == pytest.approx(min(np.abs(lh[sig[0]]).min(), np.abs(rh[sig[1]]).min()))
    assert plots.significance_threshold(lh, rh, None) is None
    none = (np.zeros(10242, bool), np.zeros(10242, bool))
    assert plots.significance_threshold(lh, rh, none) is None
    fig = plots.surface_map_figure(lh, rh, significant=sig, vmax=4.0, colorbar_label="t")
    (cb,) = [ax for ax in fig.axes if ax.get_ylabel() == "t"]
    assert any(t.get_text() == f"threshold\n±{thr:.3g}" for t in cb.texts)
    assert sorted(round(ln.get_ydata()[0], 6) for ln in cb.lines) == [
        round(-thr, 6),
        round(thr, 6),
    ]


def test_scatter_legend_names_vertices_outside_the_rois(rng):
    x = rng.standard_normal(40)
    fig = plots.scatter_figure(x, x, groups=np.array(["ventral", "null"] * 20))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["ventral", "outside the streams ROIs"]


def test_figures_say_what_they_leave_out(rng):
    x = rng.standard_normal(500)
    texts = [t.get_text() for t in plots.scatter_figure(x, x, max_points=100).axes[0].texts]
    assert texts == ["100 of 500 points drawn (at random); r over all"]
    assert not plots.scatter_figure(x, x).axes[0].texts  # every point by default
    full = rng.standard_normal(163842)
    fig = plots.surface_map_figure(full, full, vmax=3.0)
    assert any("first 10,242 of 163,842 vertices" in t.get_text() for t in fig.texts)


def test_view_has_controls_threshold_and_a_stand_alone_page(rng, tmp_path):
    lh, rh = rng.standard_normal(10242), rng.standard_normal(10242)
    sig = (np.abs(lh) > 2.5, np.abs(rh) > 2.5)
    thr = plots.significance_threshold(lh, rh, sig)
    views = SurfaceViews()
    page = tmp_path / "maps" / "m.html"
    frag = views.view(
        lh, rh, title="t <map>", stat="t", significant=sig, vmax=4, page=page, href="maps/m.html"
    )
    for v in VIEWS:
        assert f'data-view="{v}"' in frag
    assert 'data-view="lateral" class="on"' in frag  # opens lateral
    for control in ("hemi", "threshold", "significant", "cmap", "vmax"):
        assert f'data-control="{control}"' in frag
    assert f"significance threshold: |t| ≥ {thr:.4g}" in frag
    assert '<a href="maps/m.html">' in frag and "t &lt;map&gt;" in frag
    text = page.read_text()
    assert (
        text.count('id="surf3d-plotly"') == 1
        and '<details class="surface-3d" id="surf3d-1" open>' in text
    )
    assert not re.search(r"<(script|link)[^>]+(src|href)=", text)  # offline
    # a map with no fsaverage mesh: no page, no link
    assert (
        write_view_page(tmp_path / "odd.html", np.zeros(5), np.zeros(5), title="odd", vmax=1)
        is None
    )
    assert not (tmp_path / "odd.html").exists()


def test_report_links_each_maps_page(demo_run):
    out, report = demo_run
    page = report.read_text()
    for name in ("searchlight_mpnet_t", "encoding_r_mean"):
        assert f'href="maps/{name}.html"' in page
        assert (out / "maps" / f"{name}.html").is_file()


def _truth_titles() -> list[str]:
    declared = {t.name: t.title for a in ANALYSES for t in a.tables}
    return [declared[name] for name in demo_like.TRUTH_TABLES]


def test_truth_tables_sit_in_named_boxes_limited_to_the_page(demo_run):
    """The demo's widest tables (its ground truths): each in a box as wide as the page at most,
    which scrolls what does not fit, named by the table's title; no cell is cut."""
    out, report = demo_run
    page = report.read_text()
    assert ".table-wrap { max-width: 100%; overflow-x: auto;" in page
    for name, title in zip(demo_like.TRUTH_TABLES, _truth_titles(), strict=True):
        box = re.search(
            rf'<div class="table-wrap" role="region" aria-label="{re.escape(escape(title))}"[^>]*>'
            r"<table>(.*?)</table></div>",
            page,
            re.S,
        )
        assert box is not None, name
        table = pd.read_csv(out / "tables" / f"{name}.csv")
        # every column and row of the file is on the page, long names breakable at "_"
        assert box.group(1).count("<th>") == table.shape[1]
        assert box.group(1).count("<tr") == len(table) + 1
        assert "measured_<wbr>" in box.group(1)


@needs_chromium
def test_demo_like_report_and_map_page_pass_the_browser_check_with_controls(demo_run, tmp_path):
    out, report = demo_run
    # every view, in the report or on its own page, runs the same script: the report's views
    # draw and hover, and the stand-alone map page's controls are driven (each
    # software-rendered redraw costs seconds)
    check = check_in_browser(report, shots=tmp_path / "shots", max_controls=0)
    # no table reaches past the page, the truth tables among them
    assert check.ok, check.problems
    assert set(_truth_titles()) <= {t["name"] for t in check.tables}
    assert len(check.views) == 2 and not any("controls" in v for v in check.views)
    shots = {p.name for p in check.shots}
    assert {"section-rdms.png", "section-comparison.png", "surf3d-1-lateral.png"} <= shots
    alone = check_in_browser(out / "maps" / "searchlight_mpnet_t.html", shots=tmp_path / "alone")
    assert alone.ok, alone.problems
    assert len(alone.views) == 1
    c = alone.views[0]["controls"]
    assert c["buttons"] == list(VIEWS) and not c["problems"]
    assert c["coloured"]["high_threshold"] == 0 < c["coloured"]["initial"]
    assert "surf3d-1-ventral.png" in {p.name for p in alone.shots}
