"""Interactive 3-D surface maps for the HTML report (plotly.js ``mesh3d``, offline).

Every surface map of the report gets, below its static image (kept for print), a collapsed
"Explore in 3-D" view: both hemispheres of the inflated fsaverage5 surface side by side, coloured
like the static figure (same colour map and limit, vertices outside the significance mask and NaN
drawn as sulcal-depth grey), that one can rotate, zoom and hover (vertex, value, streams ROI when the
run folder has ``arrays/unit_roi.npy``).

The page stays one self-contained file and loads fast:

- plotly.js (the bundle shipped by the ``plotly`` Python package) is embedded once per page,
  gzip-compressed and base64-encoded (about 2 MB instead of 4.8 MB), and is only decompressed
  (``DecompressionStream``) and evaluated when a reader first opens a 3-D view;
- the mesh (vertex positions quantised to 16 bits, triangles, sulcal grey levels) and the ROI
  labels are embedded once per page and shared by every map;
- each map carries only its values, quantised to 16 bits over its own range (hover values are
  exact to range / 65,534), and its significance mask as bits, gzip-compressed: about 55 kB for
  an fsaverage5 map;
- a view is drawn when its ``<details>`` is opened and freed (``Plotly.purge``) when closed, so
  a report with many maps never holds more WebGL contexts than the reader has open.

Maps with any fsaverage resolution from fsaverage5 up (10,242, 40,962 or 163,842 vertices per
hemisphere) are shown on fsaverage5, whose vertices are the first 10,242 of each finer mesh;
maps of any other size keep the static image only, with a note.

A view opens on the lateral surfaces (left hemisphere's on the left, the right one turned so
its lateral side faces the reader too), where occipito-temporal effects show; buttons switch
to the medial, ventral and dorsal surfaces, a menu to one hemisphere. Controls set the display
threshold (|value| below it is grey), whether only the significant vertices are coloured, the
colour map and the colour limit; the map's significance threshold (the smallest |value| that
passed, e.g. FDR) is written beside them and in the colour bar's title.

:func:`write_view_page` writes one map's view as a stand-alone HTML file (plotly.js, mesh and
map inside, opened at load), as nilearn's ``view_surf(...).save_as_html`` users expect; the
report links each map's page.

``window.brainalignSurfaces`` (``views()``, ``open(id)`` returning a promise, ``close(id)``,
``set(id, {view, hemi, threshold, significant, cmap, vmax})`` returning a promise and
``state(id)``) is what :func:`brainalign.report.browser.check_in_browser` drives.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from brainalign.datasets.surfaces import FSAVERAGE_SIZES, fsaverage5_surface
from brainalign.errors import BrainAlignError
from brainalign.report.plots import _plt, significance_threshold
from brainalign.utils.io import atomic_write_text

#: the mesh shown in 3-D and its vertices per hemisphere
VIEW_MESH = "fsaverage5"
VIEW_VERTICES = FSAVERAGE_SIZES[VIEW_MESH]
#: millimetres between the two inflated hemispheres (both are centred on x = 0)
HEMI_GAP = 6.0
_NAN_CODE = 65535
#: the surfaces a view can show, the first is shown when it opens
VIEWS = ("lateral", "medial", "ventral", "dorsal")
#: colour maps offered by the colour-map menu (the map's own is added when not among them)
COLOUR_MAPS = ("cold_hot", "RdBu_r", "coolwarm", "viridis", "inferno")


def _pack(array: np.ndarray) -> str:
    """Bytes of ``array`` (little-endian), gzip-compressed, as base64 text."""
    data = np.ascontiguousarray(array)
    if data.dtype.byteorder == ">":
        data = data.byteswap().view(data.dtype.newbyteorder("<"))
    return base64.b64encode(gzip.compress(data.tobytes(), compresslevel=6, mtime=0)).decode("ascii")


def _json_script(element_id: str, obj) -> str:
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


@functools.lru_cache(maxsize=1)
def plotly_js_packed() -> str:
    """plotly.js as shipped by the ``plotly`` package, gzip-compressed, base64 (cached)."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(
        gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=6, mtime=0)
    ).decode("ascii")


@functools.lru_cache(maxsize=1)
def _mesh_payload() -> dict:
    """The inflated fsaverage5 of both hemispheres, side by side, packed for the page."""
    out = {}
    for hemi in ("left", "right"):
        coords, faces, sulc = fsaverage5_surface("inflated", hemi)
        coords = coords.copy()
        # lh to the left of x = 0, rh to the right, HEMI_GAP apart
        if hemi == "left":
            coords[:, 0] -= coords[:, 0].max() + HEMI_GAP / 2
        else:
            coords[:, 0] -= coords[:, 0].min() - HEMI_GAP / 2
        lo = coords.min(axis=0)
        step = np.maximum((coords.max(axis=0) - lo) / 65535.0, 1e-9)
        q = np.round((coords - lo) / step).astype(np.uint16)
        # deep sulci darker, gyri lighter (grey levels 110..210)
        s = (sulc - np.nanmin(sulc)) / max(float(np.nanmax(sulc) - np.nanmin(sulc)), 1e-12)
        grey = np.round(210 - 100 * np.nan_to_num(s, nan=0.5)).astype(np.uint8)
        out[hemi] = {
            "n": int(len(coords)),
            "coords": _pack(q.T),  # x, then y, then z
            "lo": [float(v) for v in lo],
            "step": [float(v) for v in step],
            "faces": _pack(faces.T.astype(np.uint16 if len(coords) < 65536 else np.uint32)),
            "face_type": "uint16" if len(coords) < 65536 else "uint32",
            "grey": _pack(grey),
        }
    return out


@functools.lru_cache(maxsize=4)
def _colour_table(cmap: str) -> list[str]:
    import nilearn.plotting  # noqa: F401 - registers nilearn's colour maps (cold_hot)

    rgba = _plt().get_cmap(cmap)(np.linspace(0.0, 1.0, 256))
    return ["#{:02x}{:02x}{:02x}".format(*(int(round(c * 255)) for c in row[:3])) for row in rgba]


def view_vertices(n: int) -> int | None:
    """Vertices per hemisphere shown in 3-D for a map of ``n``, or None (static only)."""
    if n in FSAVERAGE_SIZES.values() and n >= VIEW_VERTICES:
        return VIEW_VERTICES
    return None


class SurfaceViews:
    """The interactive views of one report page: one per map, plus the shared assets.

    Parameters
    ----------
    unit_roi : (n_lh + n_rh,) str, optional
        Each vertex's streams ROI (``arrays/unit_roi.npy``), for the hover text of maps of the
        same size.
    """

    def __init__(self, unit_roi: np.ndarray | None = None):
        self.unit_roi = None if unit_roi is None else np.asarray(unit_roi).astype(str).ravel()
        self._count = 0
        self._rois: dict[str, dict] = {}
        self._cmaps: dict[str, list[str]] = {}

    def __bool__(self) -> bool:
        return self._count > 0

    def _roi_key(self, n: int, shown: int) -> str | None:
        roi = self.unit_roi
        if roi is None or len(roi) != 2 * n:
            return None
        key = f"roi{n}"
        if key not in self._rois:
            labels = np.concatenate([roi[:shown], roi[n : n + shown]])
            names, codes = np.unique(labels, return_inverse=True)
            self._rois[key] = {
                "names": [str(x) for x in names],
                "codes": _pack(codes.astype(np.uint8 if len(names) < 256 else np.uint16)),
                "code_type": "uint8" if len(names) < 256 else "uint16",
            }
        return key

    def view(
        self,
        lh: np.ndarray,
        rh: np.ndarray,
        *,
        title: str,
        stat: str = "",
        significant: tuple[np.ndarray, np.ndarray] | None = None,
        vmax: float,
        cmap: str = "cold_hot",
        threshold: float | Literal["auto"] | None = "auto",
        page: str | os.PathLike | None = None,
        href: str | None = None,
        opened: bool = False,
    ) -> str:
        """HTML of one map's collapsed 3-D view, or a note saying why there is none.

        Parameters
        ----------
        threshold : float, "auto" or None
            The map's significance threshold as a value, written beside the controls and in
            the colour bar's title; "auto": the smallest |value| that passed ``significant``
            (:func:`brainalign.report.plots.significance_threshold`).
        page : path, optional
            Also write the map's stand-alone page there (:func:`write_view_page`) ...
        href : str, optional
            ... and link it under the view with this address (relative to the report).
        opened : bool
            Open (and draw) the view when the page loads (a stand-alone page).
        """
        lh, rh = np.asarray(lh, np.float64).ravel(), np.asarray(rh, np.float64).ravel()
        n = len(lh)
        shown = view_vertices(n) if len(rh) == n else None
        if shown is None:
            return (
                '<p class="note">No 3-D view: no fsaverage mesh with '
                f"{len(lh):,} / {len(rh):,} vertices (left / right) is available.</p>"
            )
        if isinstance(threshold, str):
            threshold = significance_threshold(lh, rh, significant)
        if page is not None:
            href = self._write_page(
                page,
                href,
                lh,
                rh,
                title=title,
                stat=stat,
                significant=significant,
                vmax=vmax,
                cmap=cmap,
                threshold=threshold,
            )
        values = np.concatenate([lh[:shown], rh[:shown]])
        finite = np.isfinite(values)
        lo = float(values[finite].min()) if finite.any() else 0.0
        hi = float(values[finite].max()) if finite.any() else 0.0
        step = (hi - lo) / 65534.0 if hi > lo else 1.0
        if not np.isfinite(step):  # a range beyond float64 (±inf values count as no data)
            finite &= np.abs(values) < 1e300
            lo, step = float(values[finite].min()), float(np.ptp(values[finite])) / 65534.0 or 1.0
        q = np.full(values.shape, _NAN_CODE, dtype=np.uint16)
        q[finite] = np.clip(np.round((values[finite] - lo) / step), 0, 65534).astype(np.uint16)
        mask = None
        if significant is not None:
            m = np.concatenate(
                [
                    np.asarray(significant[0]).ravel()[:shown],
                    np.asarray(significant[1]).ravel()[:shown],
                ]
            )
            mask = _pack(np.packbits(m > 0, bitorder="little"))
        self._count += 1
        view_id = f"surf3d-{self._count}"
        note = (
            ""
            if n == shown
            else f" (shown on fsaverage5: the first {shown:,} of {n:,} vertices per hemisphere)"
        )
        data = {
            "title": title,
            "stat": stat or "value",
            "n": shown,
            "lo": lo,
            "step": step,
            "values": _pack(q),
            "mask": mask,
            "vmax": float(vmax),
            "cmap": cmap,
            "threshold": None if threshold is None else float(threshold),
            "roi": self._roi_key(n, shown),
        }
        for name in (*COLOUR_MAPS, cmap):
            self._cmaps[name] = _colour_table(name)
        link = (
            f'<p class="note surface-3d-link"><a href="{html.escape(href)}">Open the 3-D view of '
            f"“{html.escape(title)}” in its own page</a> (a stand-alone HTML file, as nilearn's "
            "<code>view_surf</code> saves)</p>"
            if href
            else ""
        )
        return (
            f'<details class="surface-3d" id="{view_id}"{" open" if opened else ""}><summary>'
            "Explore in 3-D: rotate, zoom, switch surfaces, set the threshold and colours, "
            f"hover a vertex for its value{' and ROI' if data['roi'] else ''}"
            f"{html.escape(note)}</summary>{_controls(data, significant is not None)}"
            f'<div class="surface-3d-plot"></div>{_json_script(view_id + "-data", data)}</details>'
            + link
        )

    def _write_page(self, page, href, lh, rh, **view) -> str | None:
        """Write the stand-alone page of a map; its link, or None when it cannot be written
        (a read-only run folder still gets its report, without the link)."""
        try:
            write_view_page(page, lh, rh, unit_roi=self.unit_roi, **view)
        except (OSError, BrainAlignError) as exc:
            warnings.warn(f"{page}: stand-alone 3-D view not written ({exc})", stacklevel=3)
            return None
        return href or Path(page).name

    def assets(self) -> str:
        """The page's shared part: plotly.js, the mesh, ROI labels, colour maps and the runtime.

        Empty when the page has no view. Place it once, after every view.
        """
        if not self:
            return ""
        shared = {
            "mesh": _mesh_payload(),
            "rois": self._rois,
            "cmaps": self._cmaps,
        }
        return (
            f"<style>{_STYLE}</style>"
            f'<script type="text/plain" id="surf3d-plotly">{plotly_js_packed()}</script>'
            + _json_script("surf3d-shared", shared)
            + f"<script>{_RUNTIME}</script>"
        )


def _controls(data: dict, has_mask: bool) -> str:
    """The toolbar of one view (buttons and inputs; the runtime wires them when it draws)."""
    stat = html.escape(data["stat"])
    on = ' class="on"'  # the surface shown first
    buttons = "".join(
        f'<button type="button" data-view="{v}"{on if i == 0 else ""}>{v}</button>'
        for i, v in enumerate(VIEWS)
    )
    cmaps = "".join(
        f'<option value="{html.escape(c)}"{" selected" if c == data["cmap"] else ""}>'
        f"{html.escape(c)}</option>"
        for c in dict.fromkeys((data["cmap"], *COLOUR_MAPS))
    )
    sig = (
        '<label><input type="checkbox" data-control="significant" checked> significant only</label>'
        if has_mask
        else ""
    )
    thr, vmax = data["threshold"], data["vmax"]
    passed = (
        f'<span class="surface-3d-threshold">significance threshold: |{stat}| ≥ {thr:.4g}</span>'
        if thr is not None
        else (
            '<span class="surface-3d-threshold">no vertex is significant</span>' if has_mask else ""
        )
    )
    return (
        '<div class="surface-3d-controls">'
        f'<span class="group">surface {buttons}</span>'
        '<label>hemisphere <select data-control="hemi"><option value="both">both</option>'
        '<option value="left">left</option><option value="right">right</option></select></label>'
        f'<label>show |{stat}| ≥ <input type="number" data-control="threshold" min="0" '
        'step="any" value="0" size="6"></label>'
        f"{sig}"
        f'<label>colour map <select data-control="cmap">{cmaps}</select></label>'
        f'<label>limit ± <input type="number" data-control="vmax" min="0" step="any" '
        f'value="{vmax:.4g}" size="6"></label>{passed}</div>'
    )


def write_view_page(
    path: str | os.PathLike,
    lh: np.ndarray,
    rh: np.ndarray,
    *,
    title: str,
    stat: str = "",
    significant: tuple[np.ndarray, np.ndarray] | None = None,
    vmax: float,
    cmap: str = "cold_hot",
    threshold: float | None = None,
    unit_roi: np.ndarray | None = None,
) -> Path | None:
    """Write one map's interactive 3-D view as a stand-alone HTML file (opened at load).

    Like nilearn's ``view_surf(...).save_as_html``: plotly.js (packed), the mesh and the map
    are inside the file, so it opens offline, anywhere. Arguments are those of
    :meth:`SurfaceViews.view`; ``unit_roi`` gives the ROI in the hover text.

    Returns
    -------
    Path or None
        The file, or None when the map has no fsaverage mesh to show it on (nothing written).
    """
    views = SurfaceViews(unit_roi=unit_roi)
    body = views.view(
        lh,
        rh,
        title=title,
        stat=stat,
        significant=significant,
        vmax=vmax,
        cmap=cmap,
        threshold=threshold,
        opened=True,
    )
    if not views:
        return None
    page = _PAGE.format(title=html.escape(title), body=body, assets=views.assets())
    return atomic_write_text(path, page)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
margin: 16px 24px; color: #222; }} h1 {{ font-size: 20px; }}</style></head>
<body><h1>{title}</h1>
{body}
{assets}
</body></html>
"""

_STYLE = """
.surface-3d-controls { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center;
  font-size: 13px; margin: 6px 0; }
.surface-3d-controls button { font-size: 12px; padding: 2px 8px; margin-left: 2px;
  border: 1px solid #99a; background: #f3f5f8; border-radius: 3px; cursor: pointer; }
.surface-3d-controls button.on { background: #23395d; color: white; border-color: #23395d; }
.surface-3d-controls input[type=number] { width: 6em; }
.surface-3d-threshold { color: #555; }
.surface-3d-link { margin: -12px 0 18px 0; }
"""


# The page's runtime: decode the packed arrays, build the plotly figure, draw on open, free on
# close, and apply the toolbar's settings. Plain plotly.js figure JSON; no WebGL of its own.
_RUNTIME = r"""
(function () {
  "use strict";
  const shared = JSON.parse(document.getElementById("surf3d-shared").textContent);
  const HEMIS = ["left", "right"];
  const GAP = 8;  // mm between the hemispheres laid side by side
  const b64bytes = (s) => (Uint8Array.fromBase64 ? Uint8Array.fromBase64(s)
    : Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
  async function unpack(s) {
    const stream = new Blob([b64bytes(s)]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer();
  }
  const TYPES = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array };
  let plotly = null, mesh = null;
  const rois = {};
  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotly) {
      plotly = unpack(document.getElementById("surf3d-plotly").textContent).then((buf) => {
        const s = document.createElement("script");
        s.textContent = new TextDecoder().decode(buf);
        document.head.appendChild(s);
        return window.Plotly;
      });
    }
    return plotly;
  }
  function bounds(a) {
    let lo = Infinity, hi = -Infinity;
    for (let v = 0; v < a.length; v++) { if (a[v] < lo) lo = a[v]; if (a[v] > hi) hi = a[v]; }
    return [lo, hi];
  }
  function loadMesh() {
    if (!mesh) {
      mesh = Promise.all(HEMIS.map(async (h) => {
        const m = shared.mesh[h];
        const q = new Uint16Array(await unpack(m.coords));
        const xyz = [0, 1, 2].map((a) => {
          const out = new Float32Array(m.n);
          for (let v = 0; v < m.n; v++) out[v] = m.lo[a] + q[a * m.n + v] * m.step[a];
          return out;
        });
        const f = new TYPES[m.face_type](await unpack(m.faces));
        const nf = f.length / 3;
        const [x0, x1] = bounds(xyz[0]), [y0, y1] = bounds(xyz[1]);
        return { n: m.n, xyz: xyz, ijk: [0, 1, 2].map((a) => f.subarray(a * nf, (a + 1) * nf)),
                 grey: new Uint8Array(await unpack(m.grey)),
                 cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, hy: (y1 - y0) / 2 };
      }));
    }
    return mesh;
  }
  // Where each hemisphere sits for a surface. Ventral and dorsal: as in the head (left
  // hemisphere at x < 0). Lateral and medial: the camera looks along +x from -x, so the screen's
  // right is -y; the hemisphere whose wanted side faces +x is turned 180 degrees about the
  // vertical axis, and the two are laid side by side along y (left hemisphere on the left).
  function place(m, hi, view) {
    const [x, y] = m.xyz;
    if (view === "ventral" || view === "dorsal") return [x, y];
    const turned = (view === "lateral") === (hi === 1);
    const side = (hi === 0 ? 1 : -1) * (m.hy + GAP / 2);
    const nx = new Float32Array(m.n), ny = new Float32Array(m.n);
    for (let v = 0; v < m.n; v++) {
      const dx = x[v] - m.cx, dy = y[v] - m.cy;
      nx[v] = turned ? -dx : dx;
      ny[v] = (turned ? -dy : dy) + side;
    }
    return [nx, ny];
  }
  // "LH" / "RH" over each hemisphere wherever a surface puts it (from below, the left
  // hemisphere is on the right)
  function labels(hemis, view, hemi) {
    return hemis.map((m, hi) => {
      const [x, y] = place(m, hi, view), z = m.xyz[2];
      const [x0, x1] = bounds(x), [y0, y1] = bounds(y), [z0, z1] = bounds(z);
      return { x: (x0 + x1) / 2, y: (y0 + y1) / 2, z: view === "ventral" ? z0 : z1,
               text: hi === 0 ? "LH" : "RH", showarrow: false, font: { size: 14, color: "#23395d" },
               yshift: 18, visible: hemi === "both" || hemi === HEMIS[hi] };
    });
  }
  function camera(view) {
    const up = { x: 0, y: 0, z: 1 }, north = { x: 0, y: 1, z: 0 }, c = { x: 0, y: 0, z: 0 };
    if (view === "ventral") return { eye: { x: 0, y: 0, z: -1.6 }, up: north, center: c };
    if (view === "dorsal") return { eye: { x: 0, y: 0, z: 1.6 }, up: north, center: c };
    return { eye: { x: -1.45, y: 0, z: 0 }, up: up, center: c };
  }
  async function loadRoi(key) {
    if (!key) return null;
    if (!rois[key]) {
      const r = shared.rois[key];
      rois[key] = unpack(r.codes).then((buf) => ({ names: r.names, codes: new TYPES[r.code_type](buf) }));
    }
    return rois[key];
  }
  const fmt = (x) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3)) ? x.toExponential(3)
    : x.toPrecision(4).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
  // plotly reads its text as pseudo-HTML
  const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  // per view: its data, decoded arrays and the toolbar's settings
  const views = {};
  async function decode(el) {
    if (!views[el.id]) {
      const d = JSON.parse(document.getElementById(el.id + "-data").textContent);
      const [hemis, roi] = await Promise.all([loadMesh(), loadRoi(d.roi)]);
      const q = new Uint16Array(await unpack(d.values));
      const bits = d.mask ? new Uint8Array(await unpack(d.mask)) : null;
      views[el.id] = { d: d, hemis: hemis, roi: roi, q: q, bits: bits,
                       state: { view: "lateral", hemi: "both", threshold: 0, significant: !!bits,
                                cmap: d.cmap, vmax: d.vmax > 0 ? d.vmax : 1 } };
    }
    return views[el.id];
  }
  function colours(v, hi) {
    const { d, hemis, q, bits, state } = v;
    const m = hemis[hi], lut = shared.cmaps[state.cmap], vmax = state.vmax > 0 ? state.vmax : 1;
    const thr = Math.max(state.threshold || 0, 1e-12), out = new Array(m.n);
    for (let u = 0; u < m.n; u++) {
      const k = hi * m.n + u, raw = q[k];
      const sig = !bits || !state.significant || ((bits[k >> 3] >> (k & 7)) & 1) === 1;
      const val = d.lo + raw * d.step;
      if (raw !== 65535 && sig && Math.abs(val) >= thr) {
        const t = Math.min(1, Math.max(0, (val + vmax) / (2 * vmax)));
        out[u] = lut[Math.round(t * (lut.length - 1))];
      } else { const g = m.grey[u]; out[u] = "rgb(" + g + "," + g + "," + g + ")"; }
    }
    return out;
  }
  function hoverText(v, hi) {
    const { d, hemis, q, bits, roi } = v, m = hemis[hi], stat = esc(d.stat);
    const label = hi === 0 ? "LH" : "RH", text = new Array(m.n);
    for (let u = 0; u < m.n; u++) {
      const k = hi * m.n + u, raw = q[k];
      const sig = !bits || ((bits[k >> 3] >> (k & 7)) & 1) === 1;
      const line = raw === 65535 ? "no data"
        : stat + " = " + fmt(d.lo + raw * d.step) + (sig ? "" : " (not significant)");
      let roiText = "";
      if (roi) {
        const name = roi.names[roi.codes[k]];
        roiText = "<br>ROI: " + (name === "null" ? "outside the streams ROIs" : esc(name));
      }
      text[u] = label + " vertex " + u + "<br>" + line + roiText;
    }
    return text;
  }
  function colourBar(v) {
    const { d, state } = v, lut = shared.cmaps[state.cmap], vmax = state.vmax > 0 ? state.vmax : 1;
    let title = esc(d.stat);
    if (d.threshold !== null && d.threshold !== undefined)
      title += "<br>significant:<br>|" + esc(d.stat) + "| ≥ " + fmt(d.threshold);
    return { size: 0.1, opacity: 0, color: [-vmax, vmax], cmin: -vmax, cmax: vmax,
             colorscale: lut.map((c, i) => [i / (lut.length - 1), c]), showscale: true,
             colorbar: { title: { text: title }, thickness: 14, len: 0.7 } };
  }
  function figure(v) {
    const { d, hemis, state } = v;
    const traces = hemis.map((m, hi) => {
      const [x, y] = place(m, hi, state.view);
      return { type: "mesh3d", name: hi === 0 ? "LH" : "RH", x: x, y: y, z: m.xyz[2],
               i: m.ijk[0], j: m.ijk[1], k: m.ijk[2], vertexcolor: colours(v, hi),
               text: hoverText(v, hi), hovertemplate: "%{text}<extra></extra>", flatshading: false,
               visible: state.hemi === "both" || state.hemi === HEMIS[hi],
               lighting: { ambient: 0.6, diffuse: 0.6, specular: 0.05, roughness: 0.9, fresnel: 0.1 },
               showscale: false };
    });
    // an invisible trace that carries the colour bar
    traces.push({ type: "scatter3d", mode: "markers", x: [0, 0], y: [0, 0], z: [0, 0],
                  hoverinfo: "skip", showlegend: false, marker: colourBar(v) });
    const axis = { visible: false, showbackground: false };
    const layout = {
      title: { text: esc(d.title), font: { size: 14 } }, height: 560, margin: { l: 0, r: 0, t: 40, b: 0 },
      paper_bgcolor: "white", showlegend: false,
      scene: { xaxis: axis, yaxis: axis, zaxis: axis, aspectmode: "data", camera: camera(state.view),
               annotations: labels(hemis, state.view, state.hemi) },
    };
    return { data: traces, layout: layout };
  }
  // apply settings to a drawn view: positions and camera for a surface, colours otherwise
  async function set(id, changes) {
    const el = document.getElementById(id);
    const v = await decode(el);
    Object.assign(v.state, changes || {});
    syncControls(el, v.state);
    if (!drawn[id]) return v.state;
    await drawn[id];
    const P = window.Plotly, div = el.querySelector(".surface-3d-plot"), s = v.state;
    const pos = v.hemis.map((m, hi) => place(m, hi, s.view));
    await P.update(div, { x: pos.map((p) => p[0]), y: pos.map((p) => p[1]),
                          vertexcolor: [colours(v, 0), colours(v, 1)],
                          visible: HEMIS.map((h) => s.hemi === "both" || s.hemi === h) },
                   { "scene.camera": camera(s.view),
                     "scene.annotations": labels(v.hemis, s.view, s.hemi) }, [0, 1]);
    await P.restyle(div, { marker: [colourBar(v)] }, [2]);
    return Object.assign({}, s);
  }
  function syncControls(el, s) {
    el.querySelectorAll("button[data-view]").forEach((b) => b.classList.toggle("on", b.dataset.view === s.view));
    const c = (name) => el.querySelector('[data-control="' + name + '"]');
    if (c("hemi")) c("hemi").value = s.hemi;
    if (c("cmap")) c("cmap").value = s.cmap;
    if (c("significant")) c("significant").checked = s.significant;
    // numbers are rewritten only when they differ beyond what the box shows (4 digits)
    const differs = (box, x) => Math.abs(Number(box.value) - x) > 1e-3 * Math.max(Math.abs(x), 1e-12);
    if (c("threshold") && differs(c("threshold"), s.threshold)) c("threshold").value = +s.threshold.toPrecision(4);
    if (c("vmax") && differs(c("vmax"), s.vmax)) c("vmax").value = +s.vmax.toPrecision(4);
  }
  function wire(el) {
    if (el.dataset.wired) return;
    el.dataset.wired = "1";
    const report = (err) => console.error("3-D view " + el.id + ": " + err);
    el.querySelectorAll("button[data-view]").forEach((b) =>
      b.addEventListener("click", () => set(el.id, { view: b.dataset.view }).catch(report)));
    const on = (name, read) => {
      const c = el.querySelector('[data-control="' + name + '"]');
      if (c) c.addEventListener("change", () => set(el.id, { [name]: read(c) }).catch(report));
    };
    on("hemi", (c) => c.value);
    on("cmap", (c) => c.value);
    on("significant", (c) => c.checked);
    on("threshold", (c) => Math.max(0, Number(c.value) || 0));
    on("vmax", (c) => (Number(c.value) > 0 ? Number(c.value) : views[el.id].d.vmax));
  }
  const drawn = {};
  function open(id) {
    const el = document.getElementById(id);
    if (!el.open) { el.open = true; }  // the toggle listener draws it
    return draw(el);
  }
  function draw(el) {
    if (!drawn[el.id]) {
      const div = el.querySelector(".surface-3d-plot");
      wire(el);
      drawn[el.id] = Promise.all([loadPlotly(), decode(el)]).then(([P, v]) => {
        const fig = figure(v);
        return P.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: true });
      }).then(() => el.id).catch((err) => {
        delete drawn[el.id];
        div.textContent = "The 3-D view could not be drawn: " + err;
        console.error("3-D view " + el.id + ": " + err);
        throw err;
      });
    }
    return drawn[el.id];
  }
  function close(id) {
    const el = document.getElementById(id);
    el.open = false;
    const done = drawn[id];
    delete drawn[id];
    const div = el.querySelector(".surface-3d-plot");
    return Promise.resolve(done).then(() => { if (window.Plotly) window.Plotly.purge(div); },
                                      () => {});
  }
  const all = Array.from(document.querySelectorAll("details.surface-3d"));
  const missing = typeof DecompressionStream === "undefined";
  all.forEach((el) => {
    if (missing) {
      el.querySelector(".surface-3d-plot").textContent =
        "This browser cannot unpack the 3-D view (no DecompressionStream); use a current browser.";
      return;
    }
    el.addEventListener("toggle", () => {
      if (el.open) draw(el).catch(() => {});
      else if (drawn[el.id]) close(el.id);
    });
    if (el.open) draw(el).catch(() => {});  // a stand-alone page opens its view at load
  });
  window.brainalignSurfaces = {
    views: () => all.map((el) => el.id), open: open, close: close, set: set,
    state: (id) => (views[id] ? Object.assign({}, views[id].state) : null),
  };
})();
"""


__all__ = [
    "COLOUR_MAPS",
    "VIEWS",
    "SurfaceViews",
    "plotly_js_packed",
    "view_vertices",
    "write_view_page",
]
