"""Check a report in a real browser: headless Chromium driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe`` (commands on file descriptor 3, replies on
4, NUL-terminated JSON), so no network port and no websocket library are needed. The check
loads the page, collects console errors, uncaught exceptions and failed resource loads, asks
the page whether every ``<img>`` decoded, notes any request that leaves the file (http and the
like: a report must be self-contained), measures every table (none may reach past the page's
right edge: a wide one scrolls inside a box of its own, named by its ``aria-label``), and takes
a screenshot that must not be blank. Then it
opens each interactive 3-D surface view of the report (``details.surface-3d``, drawn by
plotly.js through ``window.brainalignSurfaces``) one at a time: the view must draw without error
into a WebGL canvas whose middle is not blank in a screenshot, and hovering it must show a label;
its controls must work (it opens on the lateral surfaces; the lateral, medial, ventral and
dorsal buttons move the camera or the hemispheres, a button click takes effect, the threshold
and the significance switch change which vertices are coloured, the colour-map menu the colour
bar); each is closed again before the next (WebGL contexts are limited). With ``shots`` it
saves a screenshot of every report section and of each view (lateral and ventral).

>>> check = check_in_browser("report.html")          # doctest: +SKIP
>>> check.ok, check.problems                         # doctest: +SKIP
(True, [])
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from brainalign.errors import InputError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    # software WebGL (SwiftShader) for the 3-D views, also where --disable-gpu leaves none
    "--enable-unsafe-swiftshader",
)

_IMAGE_CHECK = """(() => Array.from(document.images).map(img => ({
    src: img.currentSrc.slice(0, 60), complete: img.complete,
    width: img.naturalWidth, height: img.naturalHeight})))()"""

_VIEWS_LIST = """(() => ({
    ids: Array.from(document.querySelectorAll("details.surface-3d")).map(el => el.id),
    api: !!(window.brainalignSurfaces && window.brainalignSurfaces.open)}))()"""

# open one view, wait for plotly to draw it, and describe its WebGL canvas (viewport coordinates)
_VIEW_OPEN = """(async (id) => {
  const out = {id: id, drawn: false, error: null, traces: 0, webgl: 0, rect: null};
  const el = document.getElementById(id);
  try { await window.brainalignSurfaces.open(id); out.drawn = true; }
  catch (err) { out.error = String(err); return out; }
  const plot = el.querySelector(".js-plotly-plot");
  out.traces = plot && plot.data ? plot.data.length : 0;
  el.scrollIntoView({block: "start"});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 300))));
  let best = null;
  for (const c of el.querySelectorAll("canvas")) {
    const gl = c.getContext("webgl2") || c.getContext("webgl") || c.getContext("experimental-webgl");
    if (!gl || gl.isContextLost() || !gl.drawingBufferWidth) continue;
    out.webgl += 1;
    const r = c.getBoundingClientRect();
    if (!best || r.width * r.height > best.width * best.height) best = r;
  }
  if (best) out.rect = {x: best.x, y: best.y, width: best.width, height: best.height,
                        scrollX: window.scrollX, scrollY: window.scrollY};
  return out;
})"""

# drive one drawn view's controls through window.brainalignSurfaces.set (and one real click)
_VIEW_CONTROLS = """(async (id) => {
  const out = {problems: [], buttons: [], coloured: {}, positions: {}, cameras: {}};
  const el = document.getElementById(id), api = window.brainalignSurfaces;
  const plot = el.querySelector(".js-plotly-plot");
  const problem = (t) => out.problems.push(t);
  if (!api.set || !api.state) { problem("no set/state in window.brainalignSurfaces"); return out; }
  out.buttons = Array.from(el.querySelectorAll("button[data-view]")).map(b => b.dataset.view);
  for (const v of ["lateral", "medial", "ventral", "dorsal"])
    if (!out.buttons.includes(v)) problem("no " + v + " button");
  for (const c of ["hemi", "threshold", "cmap", "vmax"])
    if (!el.querySelector('[data-control="' + c + '"]')) problem("no " + c + " control");
  const first = api.state(id);
  if (!first || first.view !== "lateral") problem("opens on " + (first && first.view) + ", not lateral");
  const coloured = () => plot.data.slice(0, 2).reduce(
    (n, t) => n + (t.visible === false ? 0 : t.vertexcolor.filter(c => c[0] === "#").length), 0);
  for (const v of out.buttons) {
    await api.set(id, {view: v});
    const e = plot.layout.scene.camera.eye;
    out.cameras[v] = [e.x, e.y, e.z].map(n => n.toFixed(2)).join(",");
    out.positions[v] = [plot.data[0].x[0], plot.data[0].y[0], plot.data[1].x[0]].map(n => n.toFixed(1)).join(",");
  }
  const distinct = new Set(out.buttons.map(v => out.cameras[v] + "/" + out.positions[v]));
  if (distinct.size !== out.buttons.length) problem("surfaces look alike: " + JSON.stringify(out.cameras));
  await api.set(id, {view: "lateral"});
  out.coloured.initial = coloured();
  await api.set(id, {threshold: 1e300});
  out.coloured.high_threshold = coloured();
  await api.set(id, {threshold: 0, significant: false});
  out.coloured.all = coloured();
  if (out.coloured.high_threshold !== 0) problem("a threshold above every value leaves vertices coloured");
  if (out.coloured.all < out.coloured.initial) problem("colouring non-significant vertices colours fewer");
  const scale = () => JSON.stringify(plot.data[2].marker.colorscale[0]);
  const before = scale();
  const other = Array.from(el.querySelectorAll('[data-control="cmap"] option')).map(o => o.value)
    .find(c => c !== first.cmap);
  if (other) {
    await api.set(id, {cmap: other});
    if (scale() === before) problem("the colour-map menu does not change the colour bar");
  }
  await api.set(id, {hemi: "left"});
  if (plot.data[1].visible !== false) problem("'left' still shows the right hemisphere");
  // a real click on a button, as a reader would
  el.querySelector('button[data-view="ventral"]').click();
  for (let i = 0; i < 100 && api.state(id).view !== "ventral"; i++) await new Promise(r => setTimeout(r, 20));
  if (api.state(id).view !== "ventral") problem("clicking 'ventral' does nothing");
  await api.set(id, first);
  return out;
})"""

# every table's name and right edge: the edge of the box a reader sees, that is the nearest
# ancestor that scrolls or clips sideways (a wide table scrolls inside its .table-wrap), or the
# table itself; the page's width is the viewport's, less its vertical scroll bar
_TABLES = """(() => {
  const page = document.documentElement.clientWidth;
  return {page: page, tables: Array.from(document.querySelectorAll("table")).map((t, i) => {
    let box = t;
    for (let el = t.parentElement; el && el !== document.body; el = el.parentElement)
      if (getComputedStyle(el).overflowX !== "visible") { box = el; break; }
    let name = box.getAttribute("aria-label") || t.getAttribute("aria-label") || "";
    if (!name) {
      const section = t.closest("section"), h = section && section.querySelector("h2");
      name = "table " + (i + 1) + (h ? " of " + h.textContent.trim() : "");
    }
    const r = box.getBoundingClientRect();
    return {name: name, right: Math.round(r.right + window.scrollX), width: t.scrollWidth,
            shown: Math.round(box === t ? r.width : box.clientWidth),
            scrolls: box !== t && t.scrollWidth > box.clientWidth + 1};
  })};
})()"""

# plotly draws a 3-D scene's hover labels as g.hovertext in the scene's own svg
_VIEW_HOVER = """((id) => Array.from(document.getElementById(id).querySelectorAll(".hovertext"))
  .map(g => Array.from(g.querySelectorAll("text tspan.line")).map(t => t.textContent).join(" | ")
            || g.textContent).join(" || "))"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or None (``$BRAINALIGN_CHROMIUM`` wins)."""
    env = os.environ.get("BRAINALIGN_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class BrowserCheck:
    """Outcome of :func:`check_in_browser`."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    screenshot: Path | None = None
    screenshot_std: float = 0.0
    title: str = ""
    #: one dict per interactive 3-D view: id, drawn, error, traces, webgl (canvases), std (pixel
    #: std of the middle of its canvas), hover (label text shown when hovering the surface),
    #: controls (what driving its toolbar gave: problems, cameras, coloured vertex counts)
    views: list[dict] = field(default_factory=list)
    views_missing_script: bool = False
    #: URLs the page asked for that are not in the file itself (http, https, ...)
    remote_requests: list[str] = field(default_factory=list)
    #: screenshots written with ``shots`` (sections and views)
    shots: list[Path] = field(default_factory=list)
    #: the page's width in CSS pixels (the viewport less its scroll bar)
    page_width: int = 0
    #: one dict per table: name (its container's ``aria-label``, else its place), right (the
    #: right edge of what a reader sees of it, CSS pixels), width (the whole table's), shown
    #: (the width shown), scrolls (whether it scrolls inside its container)
    tables: list[dict] = field(default_factory=list)

    @property
    def failed_views(self) -> list[dict]:
        return [v for v in self.views if _view_problem(v)]

    @property
    def broken_images(self) -> list[dict]:
        return [
            i for i in self.images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)
        ]

    @property
    def wide_tables(self) -> list[dict]:
        """Tables whose right edge lies beyond the page (a reader would lose their last
        columns off the page's edge, not in a scrolling box of their own)."""
        return [t for t in self.tables if t["right"] > self.page_width + 1]

    @property
    def blank(self) -> bool:
        return self.screenshot_std < 1.0

    @property
    def problems(self) -> list[str]:
        out = [f"console error: {e}" for e in self.console_errors]
        out += [f"image did not decode: {i['src']}" for i in self.broken_images]
        if self.blank:
            out.append(f"screenshot is blank (pixel std {self.screenshot_std:.2f})")
        out += [f"loaded from outside the file: {u}" for u in self.remote_requests]
        out += [
            f"table {t['name']!r} is wider than the page (right edge at {t['right']} px, the "
            f"page is {self.page_width} px wide)"
            for t in self.wide_tables
        ]
        if self.views_missing_script:
            out.append("3-D views are on the page but their script did not run")
        out += [f"3-D view {v['id']}: {_view_problem(v)}" for v in self.failed_views]
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


def _view_problem(view: dict) -> str:
    """Why an interactive view failed the check ("" when it passed)."""
    if not view.get("drawn"):
        return f"not drawn ({view.get('error') or 'no reason given'})"
    if not view.get("webgl"):
        return "no WebGL canvas"
    if view.get("std", 0.0) < 1.0:
        return f"blank (pixel std {view.get('std', 0.0):.2f} in the middle of its canvas)"
    if not view.get("hover"):
        return "no hover label over the surface"
    if view.get("controls", {}).get("problems"):
        return "controls: " + "; ".join(view["controls"]["problems"])
    return ""


def _grey(png: bytes):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def _pixel_std(png: bytes) -> float:
    return float(_grey(png).std())


def _drawn_points(png: bytes, n: int = 4) -> list[tuple[float, float]]:
    """Up to ``n`` points (fractions of the image) on what was drawn (not the background colour):
    the middle of the drawn pixels of the left half, of the right half, then spread ones."""
    import numpy as np

    img = _grey(png)
    values, counts = np.unique(img, return_counts=True)
    ys, xs = np.nonzero(np.abs(img - values[counts.argmax()]) > 8)
    if not len(xs):
        return []
    h, w = img.shape
    out = []
    for side in (xs < w / 2, xs >= w / 2):
        if side.any():
            # the drawn pixel nearest the median of that side
            mx, my = np.median(xs[side]), np.median(ys[side])
            i = np.argmin((xs - mx) ** 2 + (ys - my) ** 2 + np.where(side, 0, 1e12))
            out.append(((xs[i] + 0.5) / w, (ys[i] + 0.5) / h))
    for i in np.linspace(0, len(xs) - 1, max(n - len(out), 0) + 2)[1:-1].astype(int):
        out.append(((xs[i] + 0.5) / w, (ys[i] + 0.5) / h))
    return out[:n]


def _evaluate(cdp: _Pipe, sid: str, expression: str, timeout: float = 30.0):
    reply = cdp.send(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True, "awaitPromise": True},
        session=sid,
        timeout=timeout,
    )
    if "exceptionDetails" in reply:
        d = reply["exceptionDetails"]
        raise RuntimeError(d.get("exception", {}).get("description") or d.get("text"))
    return reply["result"].get("value")


def _check_views(
    cdp: _Pipe,
    sid: str,
    result: BrowserCheck,
    timeout: float,
    limit,
    shots: Path | None = None,
    max_controls: int | None = None,
) -> None:
    """Open, probe, hover, drive and close each interactive 3-D view in turn (module doc)."""
    found = _evaluate(cdp, sid, _VIEWS_LIST)
    if found["ids"] and not found["api"]:
        result.views_missing_script = True
        return
    for i, view_id in enumerate(found["ids"][:limit]):
        drive = max_controls is None or i < max_controls
        try:
            view = _check_view(cdp, sid, view_id, timeout, shots, result.shots, drive)
        except (TimeoutError, RuntimeError) as exc:
            view = {"id": view_id, "drawn": False, "error": f"{type(exc).__name__}: {exc}"}
        result.views.append(view)


def _check_view(
    cdp: _Pipe,
    sid: str,
    view_id: str,
    timeout: float,
    shots: Path | None = None,
    saved=None,
    drive: bool = True,
) -> dict:
    arg = json.dumps(view_id)
    view = _evaluate(cdp, sid, f"{_VIEW_OPEN}({arg})", timeout=timeout)
    rect = view.pop("rect", None)
    if shots is not None and view.get("drawn"):
        saved.append(_shot_element(cdp, sid, view_id, shots / f"{view_id}-lateral.png", timeout))
    view["std"], view["hover"] = 0.0, ""
    if rect and rect["width"] > 8 and rect["height"] > 8:
        # the middle half of the canvas, where the surface is (not the colour bar or title);
        # a clip is in page coordinates, mouse events in the viewport's
        x0, y0 = rect["x"] + rect["width"] / 4, rect["y"] + rect["height"] / 4
        clip = {
            "x": x0 + rect["scrollX"],
            "y": y0 + rect["scrollY"],
            "width": rect["width"] / 2,
            "height": rect["height"] / 2,
            "scale": 1,
        }
        shot = cdp.send(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": False},
            session=sid,
            timeout=timeout,
        )
        png = base64.b64decode(shot["data"])
        view["std"] = _pixel_std(png)
        # hover where the surface was drawn (the middle may be the gap between hemispheres)
        for fx, fy in _drawn_points(png):
            x, y = x0 + fx * clip["width"], y0 + fy * clip["height"]
            for dx in (0, 1):
                cdp.send(
                    "Input.dispatchMouseEvent",
                    {"type": "mouseMoved", "x": x + dx, "y": y, "buttons": 0},
                    session=sid,
                )
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and not view["hover"]:
                cdp.drain(0.1)
                view["hover"] = _evaluate(cdp, sid, f"{_VIEW_HOVER}({arg})") or ""
            if view["hover"]:
                break
    if view.get("drawn") and drive:
        view["controls"] = _evaluate(cdp, sid, f"{_VIEW_CONTROLS}({arg})", timeout=timeout)
        if shots is not None:
            _evaluate(cdp, sid, f"window.brainalignSurfaces.set({arg}, {{view: 'ventral'}})")
            cdp.drain(0.3)
            saved.append(
                _shot_element(cdp, sid, view_id, shots / f"{view_id}-ventral.png", timeout)
            )
            _evaluate(cdp, sid, f"window.brainalignSurfaces.set({arg}, {{view: 'lateral'}})")
    _evaluate(cdp, sid, f"window.brainalignSurfaces.close({arg})", timeout=timeout)
    return view


_ELEMENT_RECT = """((id) => { const el = document.getElementById(id);
  if (!el) return null; const r = el.getBoundingClientRect();
  return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height}; })"""


def _shot_element(cdp: _Pipe, sid: str, element_id: str, path: Path, timeout: float) -> Path:
    """A PNG of the element ``element_id`` (all of it, also beyond the viewport) at ``path``."""
    from brainalign.utils.io import atomic_path

    rect = _evaluate(cdp, sid, f"{_ELEMENT_RECT}({json.dumps(element_id)})")
    if not rect or rect["width"] < 1 or rect["height"] < 1:
        raise RuntimeError(f"no element {element_id!r} to photograph")
    clip = {**rect, "scale": 1}
    shot = cdp.send(
        "Page.captureScreenshot",
        {"format": "png", "clip": clip, "captureBeyondViewport": True},
        session=sid,
        timeout=timeout,
    )
    with atomic_path(path) as tmp:
        tmp.write_bytes(base64.b64decode(shot["data"]))
    return path


def _shot_sections(cdp: _Pipe, sid: str, shots: Path, timeout: float) -> list[Path]:
    """A PNG of every ``<section id=...>`` of the page (``section-<id>.png``)."""
    ids = _evaluate(cdp, sid, "Array.from(document.querySelectorAll('section[id]')).map(s => s.id)")
    return [_shot_element(cdp, sid, i, shots / f"section-{i}.png", timeout) for i in ids]


class _Pipe:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int):
        self.proc, self.w, self.r = proc, to_browser, from_browser
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=30.0
    ):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout=30.0) -> dict:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            ev = self._next(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while True:
                self.events.append(self._next(deadline))

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from Chromium")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited (code {self.proc.poll()})")
                self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)


_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def _remote_url(ev: dict) -> str | None:
    if ev.get("method") != "Network.requestWillBeSent":
        return None
    url = ev.get("params", {}).get("request", {}).get("url", "")
    return None if url.startswith(_LOCAL_SCHEMES) else url[:120]


def _console_text(ev: dict) -> str | None:
    method, p = ev.get("method"), ev.get("params", {})
    if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        return " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
    if method == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        return d.get("exception", {}).get("description") or d.get("text", "exception")
    if method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
        e = p["entry"]
        return f"{e.get('text', '')} {e.get('url', '')}".strip()
    if method == "Network.loadingFailed" and not p.get("canceled"):
        return f"failed to load a resource: {p.get('errorText', '')}"
    return None


def check_in_browser(
    html: str | os.PathLike,
    screenshot: str | os.PathLike | None = None,
    *,
    width: int = 1280,
    height: int = 2400,
    timeout: float = 90.0,
    chromium: str | None = None,
    views: bool = True,
    max_views: int | None = None,
    max_controls: int | None = None,
    shots: str | os.PathLike | None = None,
) -> BrowserCheck:
    """Load ``html`` in headless Chromium and report console errors, broken images and blankness,
    and check the report's interactive 3-D views.

    Parameters
    ----------
    html : path
        The report file (loaded as ``file://``).
    screenshot : path, optional
        Where to write the PNG screenshot (default: next to a temporary profile, discarded).
    width, height : int
        Viewport in CSS pixels (the screenshot covers the viewport).
    timeout : float
        Seconds allowed for start-up, load and screenshot.
    chromium : str, optional
        Executable; default :func:`find_chromium`.
    views : bool
        Also open every interactive 3-D view (one at a time) and check that it draws into a
        WebGL canvas that is not blank and shows a label on hover (``.views``).
    max_views : int, optional
        Check only the first ``max_views`` views (default: all).
    max_controls : int, optional
        Drive the view, threshold, colour-map and hemisphere controls of the first
        ``max_controls`` checked views only (default: all). Every view shares one script, and
        each software-rendered redraw costs seconds, so a quick check drives one.
    shots : path, optional
        A folder (made if absent) for a screenshot of every report section
        (``section-<id>.png``) and of each checked 3-D view (``<view id>-lateral.png``,
        ``-ventral.png``); listed in ``.shots``.

    Returns
    -------
    BrowserCheck
        ``.ok`` is True when there was no console error, every image decoded, no table reached
        past the page, the screenshot is not blank and every checked 3-D view drew;
        ``.problems`` says what failed.

    Raises
    ------
    InputError
        When ``html`` does not exist or no Chromium is installed.
    """
    html = Path(html).resolve()
    if not html.is_file():
        raise InputError(f"html: report {str(html)!r} does not exist")
    exe = chromium or find_chromium()
    if exe is None:
        raise InputError(
            "no Chromium found (looked for chromium, google-chrome); install Debian's `chromium` "
            "or set BRAINALIGN_CHROMIUM"
        )
    result = BrowserCheck(url=html.as_uri())
    with tempfile.TemporaryDirectory(prefix="brainalign-chromium-") as profile:
        to_r, to_w = os.pipe()  # we write commands, Chromium reads fd 3
        from_r, from_w = os.pipe()  # Chromium writes fd 4, we read

        def child_fds():
            # move both ends above 4 first, so neither dup2 clobbers the other
            high_r = fcntl.fcntl(to_r, fcntl.F_DUPFD_CLOEXEC, 10)
            high_w = fcntl.fcntl(from_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        cmd = [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        proc = subprocess.Popen(
            cmd,
            preexec_fn=child_fds,  # noqa: PLW1509 - only dup2 before exec
            close_fds=False,  # fds 3 and 4 must survive; the others are close-on-exec
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_r)
        os.close(from_w)
        cdp = _Pipe(proc, to_w, from_r)
        try:
            targets = cdp.send("Target.getTargets", timeout=timeout)["targetInfos"]
            page = next((t for t in targets if t["type"] == "page"), None)
            if page is None:
                page_id = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            else:
                page_id = page["targetId"]
            sid = cdp.send("Target.attachToTarget", {"targetId": page_id, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Runtime", "Log", "Page", "Network"):
                cdp.send(f"{domain}.enable", session=sid)
            cdp.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=sid,
            )
            cdp.send("Page.navigate", {"url": result.url}, session=sid)
            cdp.wait_event("Page.loadEventFired", timeout=timeout)
            cdp.drain(0.5)  # late console messages
            ev = cdp.send(
                "Runtime.evaluate",
                {"expression": _IMAGE_CHECK, "returnByValue": True, "awaitPromise": False},
                session=sid,
            )
            result.images = ev["result"]["value"]
            title = cdp.send(
                "Runtime.evaluate",
                {"expression": "document.title", "returnByValue": True},
                session=sid,
            )
            result.title = title["result"].get("value", "")
            measured = _evaluate(cdp, sid, _TABLES)
            result.page_width, result.tables = measured["page"], measured["tables"]
            shot = cdp.send(
                "Page.captureScreenshot", {"format": "png"}, session=sid, timeout=timeout
            )
            png = base64.b64decode(shot["data"])
            folder = None
            if shots is not None:
                from brainalign.utils.io import make_dirs

                folder = make_dirs(shots, "screenshots")
                # a sticky bar (the report's nav) would cover the top of each element's shot
                _evaluate(
                    cdp,
                    sid,
                    "document.querySelectorAll('nav').forEach(n => n.style.position = 'static')",
                )
                result.shots += _shot_sections(cdp, sid, folder, timeout)
            if views:
                _check_views(cdp, sid, result, timeout, max_views, folder, max_controls)
                cdp.drain(0.3)  # late console messages of the views
            result.console_errors = [m for m in map(_console_text, cdp.events) if m]
            result.remote_requests = [u for u in map(_remote_url, cdp.events) if u]
            with contextlib.suppress(Exception):
                cdp.send("Browser.close", timeout=5)
        finally:
            os.close(to_w)
            os.close(from_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    result.screenshot_std = _pixel_std(png)
    if screenshot is not None:
        from brainalign.utils.io import atomic_path

        with atomic_path(screenshot) as tmp:
            tmp.write_bytes(png)
        result.screenshot = Path(screenshot)
    return result


__all__ = ["BrowserCheck", "check_in_browser", "find_chromium"]
