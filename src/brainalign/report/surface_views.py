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

``window.brainalignSurfaces`` (``views()``, ``open(id)`` returning a promise, ``close(id)``) is
what :func:`brainalign.report.browser.check_in_browser` drives.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json

import numpy as np

from brainalign.datasets.surfaces import FSAVERAGE_SIZES

#: the mesh shown in 3-D and its vertices per hemisphere
VIEW_MESH = "fsaverage5"
VIEW_VERTICES = FSAVERAGE_SIZES[VIEW_MESH]
#: millimetres between the two inflated hemispheres (both are centred on x = 0)
HEMI_GAP = 6.0
_NAN_CODE = 65535


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
    from nilearn import datasets
    from nilearn.surface import load_surf_data

    from brainalign.datasets.surfaces import load_fsaverage

    meshes = load_fsaverage(VIEW_MESH, surface="inflated")
    sulc_files = datasets.fetch_surf_fsaverage(VIEW_MESH)
    out = {}
    for hemi, mesh in meshes.items():
        coords = mesh.coords.copy()
        # lh to the left of x = 0, rh to the right, HEMI_GAP apart
        if hemi == "left":
            coords[:, 0] -= coords[:, 0].max() + HEMI_GAP / 2
        else:
            coords[:, 0] -= coords[:, 0].min() - HEMI_GAP / 2
        lo = coords.min(axis=0)
        step = np.maximum((coords.max(axis=0) - lo) / 65535.0, 1e-9)
        q = np.round((coords - lo) / step).astype(np.uint16)
        faces = np.asarray(mesh.faces)
        sulc = np.asarray(load_surf_data(sulc_files[f"sulc_{hemi}"]), dtype=np.float64).ravel()
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

    from brainalign.report.plots import _plt

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
    ) -> str:
        """HTML of one map's collapsed 3-D view, or a note saying why there is none."""
        lh, rh = np.asarray(lh, np.float64).ravel(), np.asarray(rh, np.float64).ravel()
        n = len(lh)
        shown = view_vertices(n) if len(rh) == n else None
        if shown is None:
            return (
                '<p class="note">No 3-D view: no fsaverage mesh with '
                f"{len(lh):,} / {len(rh):,} vertices (left / right) is available.</p>"
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
            "roi": self._roi_key(n, shown),
        }
        self._cmaps[cmap] = _colour_table(cmap)
        return (
            f'<details class="surface-3d" id="{view_id}"><summary>Explore in 3-D: rotate, zoom, '
            f"hover a vertex for its value{' and ROI' if data['roi'] else ''}"
            f"{html.escape(note)}</summary>"
            f'<div class="surface-3d-plot"></div>{_json_script(view_id + "-data", data)}</details>'
        )

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
            f'<script type="text/plain" id="surf3d-plotly">{plotly_js_packed()}</script>'
            + _json_script("surf3d-shared", shared)
            + f"<script>{_RUNTIME}</script>"
        )


# The page's runtime: decode the packed arrays, build the plotly figure, draw on open, free on
# close. Plain plotly.js figure JSON; no WebGL of its own.
_RUNTIME = r"""
(function () {
  "use strict";
  const shared = JSON.parse(document.getElementById("surf3d-shared").textContent);
  const HEMIS = ["left", "right"];
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
        return { n: m.n, xyz: xyz, ijk: [0, 1, 2].map((a) => f.subarray(a * nf, (a + 1) * nf)),
                 grey: new Uint8Array(await unpack(m.grey)) };
      }));
    }
    return mesh;
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
  function camera(x, y, z, up) {
    return { eye: { x: x, y: y, z: z }, up: up || { x: 0, y: 0, z: 1 }, center: { x: 0, y: 0, z: 0 } };
  }
  // plotly reads its text as pseudo-HTML
  const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  async function figure(d) {
    const stat = esc(d.stat);
    const [hemis, roi] = await Promise.all([loadMesh(), loadRoi(d.roi)]);
    const q = new Uint16Array(await unpack(d.values));
    const bits = d.mask ? new Uint8Array(await unpack(d.mask)) : null;
    const lut = shared.cmaps[d.cmap];
    const vmax = d.vmax > 0 ? d.vmax : 1;
    const traces = hemis.map((m, hi) => {
      const colours = new Array(m.n), text = new Array(m.n);
      const label = hi === 0 ? "LH" : "RH";
      for (let v = 0; v < m.n; v++) {
        const k = hi * m.n + v;
        const raw = q[k];
        const sig = !bits || ((bits[k >> 3] >> (k & 7)) & 1) === 1;
        let line;
        if (raw === 65535) {
          line = "no data";
          colours[v] = null;
        } else {
          const val = d.lo + raw * d.step;
          line = stat + " = " + fmt(val) + (sig ? "" : " (not significant)");
          if (sig && Math.abs(val) >= 1e-12) {
            const t = Math.min(1, Math.max(0, (val + vmax) / (2 * vmax)));
            colours[v] = lut[Math.round(t * (lut.length - 1))];
          } else colours[v] = null;
        }
        if (colours[v] === null) { const g = m.grey[v]; colours[v] = "rgb(" + g + "," + g + "," + g + ")"; }
        let roiText = "";
        if (roi) {
          const name = roi.names[roi.codes[k]];
          roiText = "<br>ROI: " + (name === "null" ? "outside the streams ROIs" : esc(name));
        }
        text[v] = label + " vertex " + v + "<br>" + line + roiText;
      }
      return { type: "mesh3d", name: label, x: m.xyz[0], y: m.xyz[1], z: m.xyz[2],
               i: m.ijk[0], j: m.ijk[1], k: m.ijk[2], vertexcolor: colours, text: text,
               hovertemplate: "%{text}<extra></extra>", flatshading: false,
               lighting: { ambient: 0.6, diffuse: 0.6, specular: 0.05, roughness: 0.9, fresnel: 0.1 },
               showscale: false };
    });
    // an invisible trace that carries the colour bar
    const scale = lut.map((c, i) => [i / (lut.length - 1), c]);
    traces.push({ type: "scatter3d", mode: "markers", x: [0, 0], y: [0, 0], z: [0, 0],
                  hoverinfo: "skip", showlegend: false,
                  marker: { size: 0.1, opacity: 0, color: [-vmax, vmax], cmin: -vmax, cmax: vmax,
                            colorscale: scale, showscale: true,
                            colorbar: { title: { text: stat }, thickness: 14, len: 0.7 } } });
    const e = 1.7, north = { x: 0, y: 1, z: 0 };
    const views = [["top", camera(0, 0, e, north)], ["left", camera(-e, 0, 0)], ["right", camera(e, 0, 0)],
                   ["front", camera(0, e, 0)], ["back", camera(0, -e, 0)], ["below", camera(0, 0, -e, north)]];
    const axis = { visible: false, showbackground: false };
    const layout = {
      title: { text: esc(d.title), font: { size: 14 } }, height: 560, margin: { l: 0, r: 0, t: 40, b: 0 },
      paper_bgcolor: "white", showlegend: false,
      scene: { xaxis: axis, yaxis: axis, zaxis: axis, aspectmode: "data", camera: views[0][1] },
      updatemenus: [
        { type: "buttons", direction: "right", x: 0, y: 1.0, xanchor: "left", yanchor: "top",
          buttons: views.map(([name, cam]) => ({ label: "from " + name, method: "relayout",
                                                 args: ["scene.camera", cam] })) },
        { type: "buttons", direction: "right", x: 0, y: 0.92, xanchor: "left", yanchor: "top",
          buttons: [["both", [true, true, true]], ["left only", [true, false, true]],
                    ["right only", [false, true, true]]].map(([name, vis]) => (
                      { label: name, method: "restyle", args: [{ visible: vis }] })) },
      ],
    };
    return { data: traces, layout: layout };
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
      const d = JSON.parse(document.getElementById(el.id + "-data").textContent);
      drawn[el.id] = Promise.all([loadPlotly(), figure(d)]).then(([P, fig]) =>
        P.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: true })
      ).then(() => el.id).catch((err) => {
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
  });
  window.brainalignSurfaces = { views: () => all.map((el) => el.id), open: open, close: close };
})();
"""


__all__ = ["SurfaceViews", "plotly_js_packed", "view_vertices"]
