"""The report: files for other tools, a self-contained HTML page, and a real-browser check."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.surfaces import read_hemisphere_maps
from brainalign.errors import InputError
from brainalign.pipeline import write_report
from brainalign.report import RunWriter, build_report, check_in_browser, find_chromium

N = 10242
ROIS = ["early", "ventral", "lateral", "parietal"]
MODELS = ["mpnet", "multihot", "mpnet_nouns"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with every kind of result, written through RunWriter."""
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("run")
    w = RunWriter(d)
    w.json(
        "run",
        {
            "config": {
                "name": "test study",
                "data": {"kind": "virtual", "n_subjects": 4, "root": str(d)},
                "space": "fsaverage",
                "features": {"spaces": MODELS, "encoder": "all-mpnet-base-v2"},
                "analyses": {
                    "roi_rsa": {
                        "enabled": True,
                        "rois": ROIS,
                        "sampling": "paper",
                        "subset_size": 100,
                        "metric": "correlation",
                        "method": "pearson",
                    },
                    "searchlight": {
                        "enabled": True,
                        "radius": 10.0,
                        "models": ["mpnet"],
                        "method": "pearson",
                        "fdr_q": 0.05,
                        "sampling": "full",
                    },
                },
                "compute": {
                    "backend": "numpy",
                    "device": "cpu",
                    "executor": "serial",
                    "workers": 1,
                },
                "output": {"dir": str(d)},
            },
            "versions": {"numpy": np.__version__, "brainalign": "0.1.0"},
            "timing": {"total_seconds": 12.0, "computed": 10, "reused": 0, "finished": "now"},
        },
    )
    rows = [
        dict(
            subject=s,
            roi=r,
            model=m,
            r=rng.uniform(0, 0.3),
            ceiling=0.5,
            r_norm=rng.uniform(0, 0.6),
        )
        for s in range(1, 5)
        for r in ROIS
        for m in MODELS
    ]
    w.table("roi_rsa", pd.DataFrame(rows))
    w.table(
        "noise_ceiling",
        pd.DataFrame(
            [dict(subject=s, roi=r, ceiling=0.5 + 0.01 * s) for s in range(1, 5) for r in ROIS]
        ),
    )
    w.table(
        "roi_group",
        pd.DataFrame(
            [dict(roi=r, model=m, mean=0.1, sem=0.01, t=5.0, p=1e-4) for r in ROIS for m in MODELS]
        ),
    )
    w.table(
        "ground_truth",
        pd.DataFrame(
            [
                dict(
                    roi="ventral",
                    planted="object categories",
                    best_feature_space="multihot",
                    agreement="yes",
                ),
                dict(
                    roi="lateral",
                    planted="agents & actions",
                    best_feature_space="mpnet_nouns",
                    agreement="no",
                ),
            ]
        ),
    )
    w.table(
        "model_comparison",
        pd.DataFrame(
            [
                dict(
                    roi="ventral",
                    model_a="mpnet",
                    model_b="multihot",
                    mean_diff=0.1,
                    t=2.0,
                    p=0.04,
                    q=0.05,
                    significant=True,
                )
            ]
        ),
    )
    w.table(
        "decoding_scores",
        pd.DataFrame(
            dict(subject=np.repeat([1, 2], 20), score=rng.uniform(0, 1, 40), caption_ceiling=0.8)
        ),
    )
    w.table(
        "decoding_examples",
        pd.DataFrame(
            [
                dict(
                    subject=1,
                    image_id=3,
                    rank=0,
                    score=0.9,
                    true_caption="a dog <chases> a cat & runs",
                    decoded_caption="a dog chasing a cat",
                    decoded_score=0.8,
                    nearest_training_caption="a cat",
                    nearest_training_score=0.5,
                )
            ]
        ),
    )
    w.table(
        "training_curves",
        pd.DataFrame(
            dict(
                network=["mpnet"] * 3 + ["multihot"] * 3,
                epoch=[1, 2, 3] * 2,
                train_loss=[1, 0.8, 0.6, 1, 0.9, 0.7],
                val_cosine=[0.1, 0.2, 0.3, 0.1, 0.15, 0.2],
            )
        ),
    )
    w.table("extra_table", pd.DataFrame(dict(a=[1, 2])))
    lh, rh = rng.standard_normal(N), rng.standard_normal(N)
    w.map(
        "searchlight_mpnet_t",
        lh,
        rh,
        title="MPNet searchlight (t)",
        section="searchlight",
        stat="t",
        mask=(np.abs(lh) > 2, np.abs(rh) > 2),
    )
    w.map("encoding_r", lh * 0.1, rh * 0.1, title="Encoding r", section="encoding", stat="r")
    w.map("insilico_people_places", lh, rh, title="people − places", section="insilico", stat="t")
    w.array("encoding_r", np.concatenate([lh, rh]) * 0.1)
    w.array("agreement", np.concatenate([lh, rh]) * 0.1 + rng.standard_normal(2 * N) * 0.05)
    w.array(
        "unit_roi",
        np.array(["early", "ventral", "null", "lateral"] * (2 * N // 4) + ["null"] * (2 * N % 4)),
    )
    sq = rng.random((20, 20))
    w.array("rdm__ventral__mpnet", (sq + sq.T)[np.triu_indices(20, 1)])
    w.array("rdm__ventral__brain", (sq * sq.T)[np.triu_indices(20, 1)])
    write_report(d)  # build_report with every registered analysis's sections
    return d


def test_maps_roundtrip_gifti_and_mgh(tmp_path, rng):
    lh, rh = rng.standard_normal(50).astype(np.float32), rng.standard_normal(60).astype(np.float32)
    lh[3] = np.nan
    w = RunWriter(tmp_path, formats=("gifti", "mgh"))
    w.map("m", lh, rh, title="m", section="encoding")
    assert sorted(p.name for p in (tmp_path / "maps").glob("m.*")) == [
        "m.lh.func.gii",
        "m.lh.mgh",
        "m.rh.func.gii",
        "m.rh.mgh",
    ]
    a, b = read_hemisphere_maps(tmp_path / "maps" / "m")
    np.testing.assert_array_equal(a, lh)
    np.testing.assert_array_equal(b, rh)
    import nibabel as nib

    np.testing.assert_array_equal(nib.load(tmp_path / "maps" / "m.rh.mgh").get_fdata().ravel(), rh)
    with pytest.raises(InputError, match="name"):
        w.map("../evil", lh, rh, title="evil", section="encoding")


def test_report_is_self_contained(run_dir):
    page = (run_dir / "report.html").read_text()
    # every figure embedded, nothing loaded from elsewhere
    assert not re.search(r"<img[^>]+src=\"(?!data:image/png;base64,)", page)
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)
    n_img = page.count("<img ")
    assert n_img >= 9  # bars ×2, RDMs, 3 maps, scatter, decoding histogram, training curves
    for section in (
        "summary",
        "roi",
        "comparison",
        "rdms",
        "searchlight",
        "encoding",
        "insilico",
        "decoding",
        "networks",
        "methods",
        "files",
    ):
        assert f'id="{section}"' in page
    # captions are escaped, methods come from the config, other tables are listed
    assert "a dog &lt;chases&gt; a cat &amp; runs" in page
    assert "geodesic discs of radius 10.0 mm" in page
    assert "extra_table" in page
    assert "+0.100*" in page and "-0.100*" in page  # the pairwise comparison grid
    assert "numpy" in page and np.__version__ in page


def test_report_needs_a_run(tmp_path):
    with pytest.raises(InputError, match="run_dir"):
        build_report(tmp_path / "absent")
    with pytest.raises(InputError, match="brainalign run"):
        build_report(tmp_path)


def test_partial_run_has_only_its_sections(tmp_path):
    w = RunWriter(tmp_path)
    w.json("run", {"config": {"name": "partial"}})
    w.table("roi_rsa", pd.DataFrame([dict(subject=1, roi="early", model="mpnet", r=0.2)]))
    page = write_report(tmp_path).read_text()
    assert 'id="roi"' in page and 'id="searchlight"' not in page


needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed (apt-get install chromium); CI installs it",
)


@needs_chromium
def test_report_in_headless_chromium(run_dir, tmp_path):
    check = check_in_browser(
        run_dir / "report.html", screenshot=tmp_path / "shot.png", max_controls=0
    )
    assert check.ok, check.problems
    assert len(check.images) >= 9
    assert check.title == "test study"
    assert (tmp_path / "shot.png").stat().st_size > 10_000
    # every surface map has a 3-D view that drew, is not blank and shows value and ROI on hover
    assert len(check.views) == 3
    assert all(v["webgl"] and v["std"] > 5 and "ROI: " in v["hover"] for v in check.views)


@needs_chromium
def test_browser_check_catches_broken_pages(tmp_path):
    bad = tmp_path / "bad.html"
    # a table wider than the page, bare, and the same table scrolling in a named box
    cells = "".join(f"<td>column_{i}_of_a_table_wider_than_the_page</td>" for i in range(40))
    bad.write_text(
        '<html><body><img src="data:image/png;base64,AAAA"><img src="missing.png">'
        '<script>console.error("boom")</script>'
        f'<table aria-label="bare"><tr>{cells}</tr></table>'
        '<div aria-label="boxed" style="max-width: 100%; overflow-x: auto">'
        f"<table><tr>{cells}</tr></table></div></body></html>"
    )
    check = check_in_browser(bad)
    assert not check.ok
    text = " ".join(check.problems)
    assert "boom" in text and "missing.png" in text and len(check.broken_images) == 2
    assert "table 'bare' is wider than the page" in text and "'boxed'" not in text
    boxed = next(t for t in check.tables if t["name"] == "boxed")
    assert boxed["scrolls"] and boxed["width"] > check.page_width >= boxed["right"]
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body></body></html>")
    assert check_in_browser(blank).blank
