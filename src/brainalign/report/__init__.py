"""The report: figures (``plots``), a self-contained HTML page (``html``), files for other tools
(``export``: GIFTI/MGH maps, CSV tables) and a real-browser check (``browser``)."""

from brainalign.report.browser import BrowserCheck, check_in_browser, find_chromium
from brainalign.report.export import RunWriter
from brainalign.report.html import build_report, methods_html, table_html

__all__ = [
    "BrowserCheck",
    "RunWriter",
    "build_report",
    "check_in_browser",
    "find_chromium",
    "methods_html",
    "table_html",
]
