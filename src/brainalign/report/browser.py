"""Check a report in a real browser: headless Chromium driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe`` (commands on file descriptor 3, replies on
4, NUL-terminated JSON), so no network port and no websocket library are needed. The check
loads the page, collects console errors, uncaught exceptions and failed resource loads, asks
the page whether every ``<img>`` decoded, and takes a screenshot that must not be blank.

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
)

_IMAGE_CHECK = """(() => Array.from(document.images).map(img => ({
    src: img.currentSrc.slice(0, 60), complete: img.complete,
    width: img.naturalWidth, height: img.naturalHeight})))()"""


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

    @property
    def broken_images(self) -> list[dict]:
        return [
            i for i in self.images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)
        ]

    @property
    def blank(self) -> bool:
        return self.screenshot_std < 1.0

    @property
    def problems(self) -> list[str]:
        out = [f"console error: {e}" for e in self.console_errors]
        out += [f"image did not decode: {i['src']}" for i in self.broken_images]
        if self.blank:
            out.append(f"screenshot is blank (pixel std {self.screenshot_std:.2f})")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


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
) -> BrowserCheck:
    """Load ``html`` in headless Chromium and report console errors, broken images and blankness.

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

    Returns
    -------
    BrowserCheck
        ``.ok`` is True when there was no console error, every image decoded and the
        screenshot is not blank; ``.problems`` says what failed.

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
            shot = cdp.send(
                "Page.captureScreenshot", {"format": "png"}, session=sid, timeout=timeout
            )
            png = base64.b64decode(shot["data"])
            result.console_errors = [m for m in map(_console_text, cdp.events) if m]
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
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
    result.screenshot_std = float(img.std())
    if screenshot is not None:
        from brainalign.utils.io import atomic_path

        with atomic_path(screenshot) as tmp:
            tmp.write_bytes(png)
        result.screenshot = Path(screenshot)
    return result


__all__ = ["BrowserCheck", "check_in_browser", "find_chromium"]
