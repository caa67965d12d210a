"""Interactive 3-D surface maps in the report: embedded once, exact, and drawn in a real browser."""

from __future__ import annotations

import base64
import gzip
import json
import re

import numpy as np
import pytest

from brainalign.pipeline import write_report
from brainalign.report import RunWriter, check_in_browser, find_chromium
from brainalign.report.surface_views import SurfaceViews, view_vertices

N = 10242
FULL = 163842
LABELS = np.array(["early", "ventral", "null", "lateral"])

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed (apt-get install chromium); CI installs it",
)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """Three maps: fsaverage5 with a mask and NaNs, fsaverage5 without, full fsaverage."""
    rng = np.random.default_rng(3)
    d = tmp_path_factory.mktemp("views")
    w = RunWriter(d, formats=("gifti",))
    w.json("run", {"config": {"name": "views"}})
    lh, rh = rng.standard_normal(N), rng.standard_normal(N)
    lh[:5] = np.nan
    w.map(
        "sl_t",
        lh,
        rh,
        title="Searchlight <t>",
        section="searchlight",
        stat="t",
        mask=(np.abs(lh) > 1, np.abs(rh) > 1),
    )
    w.map("enc_r", lh * 0.1, rh * 0.1, title="Encoding r", section="encoding", stat="r")
    flh, frh = rng.standard_normal(FULL), rng.standard_normal(FULL)
    w.map("full_t", flh, frh, title="Full fsaverage", section="searchlight", stat="t")
    w.array("unit_roi", LABELS[np.arange(2 * N) % 4])
    maps = {
        "sl_t": (lh, rh, (np.abs(lh) > 1, np.abs(rh) > 1)),
        "enc_r": (lh * 0.1, rh * 0.1, None),
        "full_t": (flh, frh, None),
    }
    return d, write_report(d), maps


def _unpack(text: str, dtype) -> np.ndarray:
    return np.frombuffer(gzip.decompress(base64.b64decode(text)), dtype=dtype)


def _views(page: str) -> dict[str, dict]:
    found = re.findall(
        r'<script type="application/json" id="(surf3d-\d+)-data">(.*?)</script>', page
    )
    return {view_id: json.loads(text) for view_id, text in found}


def test_views_embed_plotly_and_mesh_once_and_each_map_small(small_run):
    _, report, _ = small_run
    page = report.read_text()
    assert page.count('<details class="surface-3d"') == 3
    assert page.count('id="surf3d-plotly"') == 1 and page.count('id="surf3d-shared"') == 1
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)  # nothing from elsewhere
    # static images kept (for print), each followed by its view
    assert re.search(r"<img [^>]+>.*?</figure><details class=\"surface-3d\"", page)
    bundle = re.search(r'id="surf3d-plotly">([^<]*)</script>', page).group(1)
    assert gzip.decompress(base64.b64decode(bundle)).startswith(b"/**\n* plotly.js v")
    assert len(bundle) < 2_500_000
    shared = re.search(r'id="surf3d-shared">(.*?)</script>', page).group(1)
    assert len(shared) < 600_000
    for text in re.findall(r'id="surf3d-\d+-data">(.*?)</script>', page):
        assert len(text) < 80_000  # about 55 kB: 16-bit values of 20,484 vertices, gzip, base64
    assert "Searchlight &lt;t&gt;" in page


def test_view_values_mask_and_roi_decode_exactly(small_run):
    _, report, maps = small_run
    page = report.read_text()
    views = {d["title"]: d for d in _views(page).values()}
    shared = json.loads(re.search(r'id="surf3d-shared">(.*?)</script>', page).group(1))
    for name, title in (
        ("sl_t", "Searchlight <t>"),
        ("enc_r", "Encoding r"),
        ("full_t", "Full fsaverage"),
    ):
        lh, rh, mask = maps[name]
        d = views[title]
        assert d["n"] == N
        want = np.concatenate([lh[:N], rh[:N]]).astype(np.float32)  # as the maps store it
        q = _unpack(d["values"], "<u2")
        got = np.where(q == 65535, np.nan, d["lo"] + q * d["step"])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        assert np.abs(got[ok] - want[ok]).max() <= d["step"] / 2 + 1e-12
        if mask is None:
            assert d["mask"] is None
        else:
            bits = np.unpackbits(_unpack(d["mask"], np.uint8), bitorder="little")[: 2 * N]
            np.testing.assert_array_equal(bits.astype(bool), np.concatenate(mask))
    # ROI labels for the fsaverage5 maps (unit_roi has their size), none for the full one
    assert views["Full fsaverage"]["roi"] is None
    roi = shared["rois"][views["Encoding r"]["roi"]]
    labels = np.asarray(roi["names"])[_unpack(roi["codes"], np.uint8)]
    np.testing.assert_array_equal(labels, LABELS[np.arange(2 * N) % 4])
    # the shared mesh: both hemispheres of fsaverage5, left of x = 0 and right of it
    for hemi, sign in (("left", -1), ("right", 1)):
        m = shared["mesh"][hemi]
        assert m["n"] == N
        x = m["lo"][0] + _unpack(m["coords"], "<u2")[:N] * m["step"][0]
        assert np.all(sign * x > 0)
        assert _unpack(m["faces"], "<u2").max() == N - 1
    assert "first 10,242 of 163,842 vertices" in page


def test_map_without_a_matching_mesh_keeps_the_static_image_only():
    views = SurfaceViews()
    html = views.view(np.zeros(50), np.zeros(60), title="odd", vmax=1.0)
    assert "No 3-D view" in html and "50 / 60" in html
    assert not views and views.assets() == ""
    assert view_vertices(N) == N and view_vertices(FULL) == N and view_vertices(40962) == N
    assert view_vertices(2562) is None and view_vertices(12345) is None


def _hover(text: str) -> tuple[str, int, float, str | None]:
    m = re.match(
        r"(LH|RH) vertex (\d+) \| (\w+) = (\S+)(?: \(not significant\))?(?: \| ROI: (.*))?$", text
    )
    assert m, text
    return m.group(1), int(m.group(2)), float(m.group(4)), m.group(5)


@needs_chromium
def test_views_draw_and_hover_in_headless_chromium(small_run, tmp_path):
    _, report, maps = small_run
    # the controls are driven in test_figures; here every view must draw and hover
    check = check_in_browser(report, screenshot=tmp_path / "shot.png", max_controls=0)
    assert check.ok, check.problems
    assert not check.remote_requests and not check.console_errors
    by_id = {d["title"]: view_id for view_id, d in _views(report.read_text()).items()}
    names = {"Searchlight <t>": "sl_t", "Encoding r": "enc_r", "Full fsaverage": "full_t"}
    assert [v["id"] for v in check.views] == sorted(by_id.values())
    for title, view_id in by_id.items():
        view = next(v for v in check.views if v["id"] == view_id)
        assert view["drawn"] and view["webgl"] >= 1 and view["traces"] == 3
        assert view["std"] > 5  # the surface, not a blank canvas
        hemi, vertex, value, roi = _hover(view["hover"])
        lh, rh, _ = maps[names[title]]
        want = (lh if hemi == "LH" else rh)[vertex]
        assert value == pytest.approx(want, rel=2e-3, abs=1e-3)
        if title == "Full fsaverage":
            assert roi is None
        else:
            label = LABELS[(vertex + (N if hemi == "RH" else 0)) % 4]
            assert roi == ("outside the streams ROIs" if label == "null" else label)


@needs_chromium
def test_browser_check_catches_broken_views(small_run, tmp_path):
    _, report, _ = small_run
    page = report.read_text()
    # a view whose data cannot be unpacked: not drawn, and its console error is reported
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r'("values":")[^"]+', r"\1AAAA", page, count=1))
    check = check_in_browser(broken, max_views=1)
    assert not check.ok and len(check.views) == 1
    assert not check.views[0]["drawn"]
    assert any("surf3d-1: not drawn" in p for p in check.problems)
    assert any("3-D view surf3d-1" in e for e in check.console_errors)
    # views on the page whose script never ran; a request that leaves the file
    no_script = tmp_path / "no_script.html"
    no_script.write_text(
        re.sub(r"<script>\s*\(function \(\) \{.*?</script>", "", page, flags=re.S).replace(
            "</main>", '<link rel="stylesheet" href="http://127.0.0.1:9/x.css"></main>'
        )
    )
    check = check_in_browser(no_script)
    assert check.views_missing_script and not check.ok
    assert check.remote_requests == ["http://127.0.0.1:9/x.css"]
    assert any("loaded from outside the file" in p for p in check.problems)
