"""The study report: one self-contained HTML page (figures embedded as base64 PNG).

:func:`build_report` reads a run folder (written by the pipeline through
:class:`~brainalign.report.export.RunWriter`):

``run.json``
    config, package versions, timings, warnings, ground truth (virtual NSD).
``tables/*.csv``
    the tables each analysis declares (:class:`~brainalign.pipeline.analysis.Table`: title,
    caption, formats), shown where its section says; any other table once, under Files.
``maps/``
    GIFTI/MGH maps with ``index.json`` (title, section, statistic, significance mask).
``arrays/*.npy``
    what the figures read (RDMs, encoding r, agreement, ROI of each unit).

The page is rendered from the jinja2 templates in ``report/templates/`` with autoescaping on:
a section is a list of blocks (:class:`Figure`, :class:`Text`, :class:`Heading`,
:class:`Links`, tables, :class:`Html` for a fragment a template already rendered), and every
value a block carries is escaped by the template, never by hand. Sections without content are
left out, so the report of a partial run is still valid.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from brainalign import __version__
from brainalign.datasets.surfaces import read_hemisphere_maps
from brainalign.errors import DataFormatError
from brainalign.report import plots
from brainalign.report.export import read_index
from brainalign.report.surface_views import SurfaceViews
from brainalign.utils.io import atomic_write_text
from brainalign.utils.owned import check_run_folder

#: Numbers from this size up, and non-zero ones below SMALL, print in scientific notation.
LARGE, SMALL = 1e5, 1e-3
#: Significant digits of a column's largest float.
DIGITS = 3
#: Table rows printed where no declaration says (undeclared tables, under Files).
OTHER_ROWS = 20
#: Arrays named in the list of files (the others counted).
OTHER_ARRAYS = 8

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("brainalign.report", "templates"),
    # escaping is the default for every template and every string rendered from Python
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def name_parts(name: str) -> list[str]:
    """``name`` cut after each ``_`` (``["measured_", "ci_", "low"]``): the table template joins
    the parts with ``<wbr>`` in column names and text cells, so a long name (``measured_ci_low``,
    ``mpnet_category_all``) may break there instead of widening its column past the page."""
    parts = str(name).split("_")
    return [p + "_" for p in parts[:-1]] + parts[-1:]


_ENV.filters["name_parts"] = name_parts


# -------------------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class Text:
    """A paragraph (``note``: small print; ``alert``: in red)."""

    text: str
    note: bool = False
    alert: bool = False
    kind = "text"

    @property
    def cls(self) -> str:
        return "alert" if self.alert else "note" if self.note else ""


@dataclass(frozen=True)
class Heading:
    text: str
    kind = "heading"


@dataclass(frozen=True)
class Pre:
    """Preformatted text (a configuration)."""

    text: str
    kind = "pre"


@dataclass(frozen=True)
class Figure:
    """A PNG figure (base64) with its caption."""

    png: str
    caption: str = ""
    alt: str = ""
    kind = "figure"


@dataclass(frozen=True)
class Link:
    text: str
    href: str
    note: str = ""


@dataclass(frozen=True)
class Links:
    """A list of links (files of the run, stand-alone pages), with an optional lead line."""

    links: Sequence[Link]
    title: str = ""
    kind = "links"


@dataclass(frozen=True)
class Details:
    """Blocks folded under a one-line summary."""

    summary: str
    blocks: Sequence
    kind = "details"


@dataclass(frozen=True)
class Html:
    """A fragment a template or a helper of this module rendered (already escaped)."""

    markup: str
    kind = "html"


@dataclass(frozen=True)
class Cell:
    text: str
    num: bool = False


@dataclass(frozen=True)
class Row:
    cells: Sequence[Cell]
    cls: str = ""


@dataclass(frozen=True)
class TableBlock:
    """A formatted table: its rows, how many the file has, and where the file is."""

    columns: Sequence[str]
    rows: Sequence[Row]
    n_rows: int
    title: str = ""
    caption: str = ""
    file: str = ""
    href: str = ""
    kind = "table"


def render_block(block) -> str:
    """One block as HTML (the ``render`` macro of ``templates/blocks.html``)."""
    return str(_ENV.get_template("blocks.html").module.render(block))


def blocks_of(content) -> list:
    """A section's content as blocks: a fragment string becomes one :class:`Html` block (it was
    made by this module's helpers), a list is taken as it is, nothing gives nothing."""
    if not content:
        return []
    if isinstance(content, str):
        return [Html(content)]
    return [b for b in content if b]


# --------------------------------------------------------------------------------- formatting
def _is_int_like(values: np.ndarray) -> bool:
    """Whether a float column holds integers only (pandas reads an int column with a gap as
    float): then it prints as integers, not ``26.000``."""
    finite = values[np.isfinite(values)]
    return (
        finite.size > 0
        and bool(np.all(finite == np.round(finite)))
        and np.abs(finite).max() < LARGE
    )


def _decimals(values: np.ndarray) -> int:
    """Decimals that give the column's largest ordinary value ``DIGITS`` significant digits."""
    finite = np.abs(values[np.isfinite(values)])
    plain = finite[(finite >= SMALL) & (finite < LARGE)]
    if plain.size == 0:
        return DIGITS
    return int(min(4, max(0, DIGITS - 1 - math.floor(math.log10(plain.max())))))


def _float_text(v: float, decimals: int) -> str:
    if not np.isfinite(v):
        return "" if np.isnan(v) else ("∞" if v > 0 else "−∞")
    if v != 0 and (abs(v) >= LARGE or abs(v) < SMALL):
        # 1e+10 for an alpha; 3.20e-05 for a p-value (one style in a column of small values)
        return f"{v:.3g}" if abs(v) >= LARGE else f"{v:.2e}"
    return f"{v:.{decimals}f}"


def format_column(values, fmt: str | None = None) -> tuple[list[str], bool]:
    """The texts of one column and whether it is numeric (right-aligned).

    ``fmt`` is a declared format (:class:`~brainalign.pipeline.analysis.Table`): ``"int"``,
    ``"sci"``, ``"pct"``, ``"text"`` or a format string. Without one, the type decides:
    integers print as integers (also in a float column that holds only integers), floats with
    ``DIGITS`` significant digits at the column's scale, very large or small ones in
    scientific notation; missing values are empty.
    """
    import pandas as pd

    s = pd.Series(values)
    if fmt == "text" or s.dtype == bool or s.dtype == object:
        if fmt is None and s.dtype == object:
            return [
                ("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)) for v in s
            ], False
        return ["" if pd.isna(v) else str(v) for v in s], False
    if not pd.api.types.is_numeric_dtype(s):
        return [str(v) for v in s], False
    x = s.to_numpy(dtype=np.float64)
    if fmt == "int" or (fmt is None and (pd.api.types.is_integer_dtype(s) or _is_int_like(x))):
        return ["" if not np.isfinite(v) else str(int(v)) for v in x], True
    if fmt == "sci":
        return ["" if not np.isfinite(v) else f"{v:.2e}" for v in x], True
    if fmt == "pct":
        return ["" if not np.isfinite(v) else f"{v:.1f}%" for v in x], True
    if fmt:
        return ["" if not np.isfinite(v) else fmt.format(v) for v in x], True
    decimals = _decimals(x)
    return [_float_text(v, decimals) for v in x], True


def table_block(
    df,
    *,
    title: str = "",
    caption: str = "",
    formats: Mapping[str, str] | None = None,
    max_rows: int = 60,
    row_class=None,
    file: str = "",
    href: str = "",
    floatfmt: str | None = None,
) -> TableBlock:
    """A DataFrame as a :class:`TableBlock` (at most ``max_rows`` rows), each column formatted by
    its declared format or its type (:func:`format_column`); ``floatfmt`` formats every float
    column without a declared format."""
    formats = dict(formats or {})
    shown = df.head(max_rows)
    columns = [str(c) for c in df.columns]
    texts = {}
    for c in df.columns:
        fmt = formats.get(str(c))
        if fmt is None and floatfmt and shown[c].dtype.kind == "f":
            fmt = floatfmt
        texts[c] = format_column(shown[c].to_numpy(), fmt)
    rows = []
    for i, (_, record) in enumerate(shown.iterrows()):
        cells = [Cell(texts[c][0][i], texts[c][1]) for c in df.columns]
        rows.append(Row(cells, row_class(record) if row_class else ""))
    return TableBlock(columns, rows, len(df), title, caption, file, href)


# The helpers below return plain strings of escaped HTML: section builders join them with
# literal tags ("<h3>…</h3>" + table); the templates pass such fragments through as Html blocks.
def table_html(df, *, max_rows: int = 60, floatfmt: str | None = None, row_class=None) -> str:
    """An escaped HTML table of a DataFrame (numbers right-aligned, at most ``max_rows`` rows;
    see :func:`table_block`)."""
    return str(
        render_block(table_block(df, max_rows=max_rows, floatfmt=floatfmt, row_class=row_class))
    )


def img_html(b64: str, caption: str = "", alt: str = "") -> str:
    """A base64 PNG figure with its caption, as HTML."""
    return render_block(Figure(b64, caption, alt))


def esc(x) -> str:
    """``x`` escaped for HTML (for the fragments section builders still write by hand)."""
    return html.escape(str(x), quote=True)


# -------------------------------------------------------------------------------- run folder
class RunFolder:
    """A run folder as the report reads it: run.json, tables/, arrays/ and the maps index.

    Parameters
    ----------
    run_dir : path
    tables : sequence of Table, optional
        The declared tables (:class:`~brainalign.pipeline.analysis.Table`) of the analyses and
        the data kind: their titles, captions and formats.
    page_dir : path, optional
        The folder of the HTML page, so its links to the run's files are relative to it.
    config : object, optional
        The run's configuration as its writer validated it (the pipeline's ``StudyConfig``:
        every value the run used, defaults filled), for the sections that read it; None when
        there is none or it could not be read. ``meta["config"]`` is the record as written.
    """

    def __init__(
        self, run_dir: Path, tables: Sequence = (), page_dir: Path | None = None, config=None
    ):
        self.dir = Path(run_dir)
        meta = self.dir / "run.json"
        self.meta = json.loads(meta.read_text()) if meta.exists() else {}
        self.config = config
        self.maps = read_index(self.dir)
        self.declared = {t.name: t for t in tables}
        self.page_dir = Path(page_dir) if page_dir is not None else self.dir
        #: table name → heading of the section that showed it (for the list of files)
        self.shown: dict[str, str] = {}
        self.section = ""

    def table(self, name: str):
        import pandas as pd

        path = self.dir / "tables" / f"{name}.csv"
        if not path.exists():
            return None
        try:
            return pd.read_csv(path, keep_default_na=True)
        except Exception as exc:
            raise DataFormatError(
                f"{path}: cannot read table ({exc}); rerun the pipeline"
            ) from None

    def href(self, relative: str) -> str:
        """A link from the page to a file of the run folder (``tables/x.csv``)."""
        return Path(os.path.relpath(self.dir / relative, self.page_dir)).as_posix()

    def show(self, name: str, df=None, *, title: str | None = None, row_class=None):
        """Table ``name`` as a block, with its declared title, caption and formats, and a link
        to its CSV; ``df`` replaces the file's rows (a selection or a derived view of them);
        ``title`` replaces the declared title and caption (``""``: the section wrote its own).
        None when the table was not written."""
        df = self.table(name) if df is None else df
        if df is None:
            return None
        spec = self.declared.get(name)
        self.mark_shown(name)
        file = f"tables/{name}.csv"
        own = title is None and spec is not None
        return table_block(
            df,
            title=spec.title if own else (title or ""),
            caption=spec.caption if own else "",
            formats=spec.formats if spec is not None else None,
            max_rows=spec.max_rows if spec is not None else 60,
            row_class=row_class,
            file=file,
            href=self.href(file) if (self.dir / file).exists() else "",
        )

    def show_html(self, name: str, df=None, *, title: str | None = None, row_class=None) -> str:
        """:meth:`show` as an HTML fragment, for section builders that return fragments."""
        block = self.show(name, df, title=title, row_class=row_class)
        return "" if block is None else render_block(block)

    def mark_shown(self, name: str) -> None:
        """Record that the current section shows table ``name`` in a form of its own (a grid,
        a figure), for the list of files."""
        self.shown.setdefault(name, self.section)

    def array(self, name: str):
        path = self.dir / "arrays" / f"{name}.npy"
        return np.load(path, allow_pickle=False) if path.exists() else None

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        folder = self.dir / "arrays"
        if not folder.exists():
            return {}
        return {
            p.stem: np.load(p, allow_pickle=False) for p in sorted(folder.glob(f"{prefix}*.npy"))
        }

    def files(self, sub: str, suffix: str = "") -> list[str]:
        """The names of the results in ``sub/`` (dot names are an export's temporary files)."""
        folder = self.dir / sub
        if not folder.exists():
            return []
        return sorted(
            p.name
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.name.endswith(suffix)
        )

    def table_names(self) -> list[str]:
        return [n.removesuffix(".csv") for n in self.files("tables", ".csv")]

    def other_tables(self) -> list[str]:
        """Tables no analysis or data kind declares."""
        return [n for n in self.table_names() if n not in self.declared]


# ------------------------------------------------------------------------------------ sections
def _summary(run: RunFolder, data_summary=None) -> list:
    """The data (the data kind's lines), the run's time, and the timing per stage."""
    blocks = blocks_of(data_summary(run)) if data_summary is not None else []
    timing = run.meta.get("timing", {})
    if timing:
        blocks.append(
            Text(
                f"Run time {timing.get('total_seconds', 0):.0f} s ({timing.get('computed', 0)} "
                f"tasks computed, {timing.get('reused', 0)} reused from the cache).",
                note=True,
            )
        )
        stages = timing.get("stages") or []
        if stages:
            import pandas as pd

            t = pd.DataFrame(stages).sort_values("task_seconds", ascending=False)
            t = t.rename(
                columns={"task_seconds": "task seconds (summed)", "wall_seconds": "wall seconds"}
            )
            blocks.append(
                Details(
                    "Timing per stage",
                    [
                        table_block(t, floatfmt="{:.1f}", max_rows=len(t)),
                        Text(
                            "Task seconds add up every task's own time (the work); wall seconds "
                            "run from the stage's first task starting to its last ending (tasks "
                            "of several stages overlap).",
                            note=True,
                        ),
                    ],
                )
            )
    return blocks


def _warnings(run: RunFolder) -> list:
    """The run's warnings (``run.json``), each with what it concerns and the key to change."""
    import pandas as pd

    records = run.meta.get("warnings") or []
    if not records:
        return []
    df = pd.DataFrame(
        [
            {
                "concerns": r.get("concerns", ""),
                "warning": r.get("message", ""),
                "config key": r.get("key") or "—",
            }
            for r in records
        ]
    )
    return [
        Text(
            f"{len(df)} warning(s); each names what it concerns and the config key that changes "
            "it (also in run.json; every task's own warnings in run.log).",
            note=True,
        ),
        table_block(df, max_rows=len(df)),
    ]


def surface_views(run: RunFolder) -> SurfaceViews:
    """The page's interactive 3-D views (made on first use; :func:`build_report` places their
    shared assets once, after the last section)."""
    views = getattr(run, "_surface_views", None)
    if views is None:
        views = run._surface_views = SurfaceViews(unit_roi=run.array("unit_roi"))
    return views


def maps_html(run: RunFolder, section: str) -> str:
    """Every surface map of ``section`` in the run folder: a static image with its caption (for
    print) and a collapsed interactive 3-D view (:mod:`brainalign.report.surface_views`)."""
    parts = []
    for entry in [e for e in run.maps if e.get("section") == section]:
        lh, rh = read_hemisphere_maps(run.dir / "maps" / entry["name"])
        mask = read_hemisphere_maps(run.dir / "maps" / entry["mask"]) if entry.get("mask") else None
        sig = None if mask is None else (mask[0] > 0, mask[1] > 0)
        n_sig = "" if sig is None else f" — {int(sig[0].sum() + sig[1].sum())} significant vertices"
        vmax = plots.surface_vmax(lh, rh, sig)
        stat = entry.get("stat", "")
        fig = plots.surface_map_figure(
            lh, rh, significant=sig, vmax=vmax, title=entry["title"], colorbar_label=stat
        )
        parts.append(
            img_html(
                plots.figure_to_base64(fig), f"{entry['title']}{n_sig}. {entry.get('note', '')}"
            )
        )
        # the views module writes its own markup (ids, JSON payloads): passed through as it is
        parts.append(
            surface_views(run).view(
                lh,
                rh,
                title=entry["title"],
                stat=stat,
                significant=sig,
                vmax=vmax,
                # the map's stand-alone 3-D page in a maps/ folder beside the report (in a run
                # folder, beside the map's GIFTI files); a report written elsewhere never
                # writes into the run folder
                page=run.page_dir / "maps" / f"{entry['name']}.html",
                href=f"maps/{entry['name']}.html",
            )
        )
    return "".join(parts)


def _methods(meta: dict, analysis_methods: Sequence = ()) -> list:
    """The methods paragraphs, the package versions and the full configuration as recorded."""
    import pandas as pd

    cfg = meta.get("config", {})
    paragraphs = []
    for write in analysis_methods:
        paragraphs += write(cfg)
    blocks: list = [Text(p) for p in paragraphs]
    versions = meta.get("versions", {})
    if versions:
        df = pd.DataFrame(sorted(versions.items()), columns=["package", "version"])
        blocks.append(
            table_block(df, title="Versions", formats={"version": "text"}, max_rows=len(df))
        )
    blocks.append(Details("Full configuration", [Pre(json.dumps(cfg, indent=1, sort_keys=True))]))
    return blocks


def methods_html(meta: dict, analysis_methods: Sequence = ()) -> str:
    """A methods section written from the run's config and package versions.

    ``analysis_methods`` are callables ``(config dict) -> list of paragraphs`` (the data's, the
    features', each analysis's and the compute's), in order.
    """
    return "".join(render_block(b) for b in _methods(meta, analysis_methods))


def _files(run: RunFolder) -> list:
    """Where the results are, for other tools: the maps and arrays summarised, every table
    linked once (with its title, rows and the section that shows it), and the tables no
    analysis declares shown here, once."""
    blocks: list = []
    maps = run.files("maps")
    if maps:
        formats = [f for suffix, f in _MAP_FORMATS.items() if any(n.endswith(suffix) for n in maps)]
        n_masks = sum(1 for e in run.maps if e.get("mask"))
        blocks.append(
            Text(
                f"maps/: {len(run.maps)} surface maps ({n_masks} with a significance mask), one "
                f"file per hemisphere as {' and '.join(formats)}; maps/index.json describes each."
            )
        )
    tables = run.table_names()
    if tables:
        rows = []
        for name in tables:
            spec = run.declared.get(name)
            rows.append(
                {
                    "file": f"tables/{name}.csv",
                    "table": spec.title if spec is not None else name,
                    "rows": _count_rows(run.dir / "tables" / f"{name}.csv"),
                    "in the report": run.shown.get(name)
                    or ("Files (below)" if spec is None else "file only"),
                }
            )
        blocks.append(
            Links(
                [
                    Link(
                        r["file"],
                        run.href(r["file"]),
                        f"{r['table']}, {r['rows']} rows · {r['in the report']}",
                    )
                    for r in rows
                ],
                title=f"tables/: {len(rows)} tables as CSV:",
            )
        )
    arrays = run.files("arrays", ".npy")
    if arrays:
        # a long list is named in part, saying how many more there are and where
        more = len(arrays) - OTHER_ARRAYS
        shown = ", ".join(arrays[:OTHER_ARRAYS]) + (
            f" and {more} more in {run.dir / 'arrays'}" if more > 0 else ""
        )
        blocks.append(Text(f"arrays/: {len(arrays)} NumPy arrays ({shown}).", note=True))
    for name in run.other_tables():
        run.shown.setdefault(name, "Files")
        df = run.table(name)
        blocks.append(
            table_block(
                df,
                title=name,
                max_rows=OTHER_ROWS,
                file=f"tables/{name}.csv",
                href=run.href(f"tables/{name}.csv"),
            )
        )
    if not blocks:
        return []
    return [Text(f"Results for other tools, in {run.dir}:"), *blocks]


#: map file endings → the format's name (datasets.surfaces.MAP_SUFFIXES writes them)
_MAP_FORMATS = {".func.gii": "GIFTI", ".mgh": "MGH"}


def _count_rows(path: Path) -> int:
    """Rows of a CSV file (its lines less the header), without parsing it."""
    with open(path, "rb") as f:
        return max(0, sum(1 for _ in f) - 1)


# ---------------------------------------------------------------------------------- the page
def build_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    sections: Sequence = (),
    methods: Sequence = (),
    notes: Sequence[str] = (),
    tables: Sequence = (),
    data_summary=None,
    config=None,
) -> Path:
    """Write the self-contained HTML report of a run folder.

    Parameters
    ----------
    run_dir : path
        A folder written by the pipeline (``run.json``, ``tables/``, ``maps/``, ``arrays/``).
    out : path, optional
        Output file (default ``run_dir/report.html``).
    title : str, optional
        The page's title (default "brainalign report"; the pipeline passes the study's name).
    sections : sequence of ReportSection
        The analyses' sections (each with ``key``, ``heading``, ``build(run)`` returning blocks
        or an HTML fragment, and the declared ``tables`` shown after it), placed between the
        summary and the methods; the pipeline passes its registry's
        (:func:`brainalign.pipeline.write_report`).
    methods : sequence of callables
        ``(config dict) -> list of paragraphs`` for the methods section, one per analysis.
    notes : sequence of str
        Paragraphs shown first, in a "Status" section (e.g. that the run did not finish).
    tables : sequence of Table
        The declared tables (titles, captions, formats); other tables are shown under Files.
    data_summary : callable, optional
        ``data_summary(run) -> blocks``: the data kind's lines of the summary.
    config : object, optional
        The run's validated configuration, as ``run.config`` for the sections and the summary
        (:class:`RunFolder`).

    Raises
    ------
    InputError
        When ``run_dir`` is not a run folder brainalign made (no ``.brainalign.json``): its
        report is never written there, and no other file of a user's folder is replaced.

    Returns
    -------
    Path
        The HTML file.
    """
    # a report of whatever has finished, even nothing yet, but only in brainalign's run folders
    run_dir = check_run_folder(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    run = RunFolder(run_dir, tables, page_dir=out.parent, config=config)
    if not notes and not run.meta and not any(run.dir.glob("tables/*.csv")):
        notes = ["No results yet: run `brainalign run CONFIG` (with this output folder)."]
    builders = [
        ("status", "Status", lambda r: [Text(n, note=True) for n in notes]),
        ("summary", "Summary", lambda r: _summary(r, data_summary)),
        ("warnings", "Warnings", _warnings),
        *((s.key, s.heading, _section_builder(s)) for s in sections),
        ("methods", "Methods", lambda r: _methods(r.meta, methods)),
        # last: it lists where every table was shown
        ("files", "Files", _files),
    ]
    shown = []
    for key, heading, build in builders:
        run.section = heading
        blocks = blocks_of(build(run))
        if blocks:
            shown.append({"key": key, "heading": heading, "blocks": blocks})
    views = getattr(run, "_surface_views", None)
    finished = run.meta.get("timing", {}).get("finished", "")
    page = _ENV.get_template("report.html").render(
        title=title or "brainalign report",
        subtitle=f"brainalign {__version__} — {finished}",
        version=__version__,
        sections=shown,
        assets=views.assets() if views else "",
    )
    atomic_write_text(out, page)
    return out


def _section_builder(section):
    """``run -> blocks`` of an analysis's section: its own content, then its declared tables."""

    def build(run: RunFolder) -> list:
        blocks = blocks_of(section.build(run)) if section.build is not None else []
        for name in section.tables:
            spec = run.declared.get(name)
            if spec is None or spec.shown:
                blocks.append(run.show(name))
        return [b for b in blocks if b]

    return build


__all__ = [
    "Details",
    "Figure",
    "Heading",
    "Html",
    "Link",
    "Links",
    "Pre",
    "RunFolder",
    "Text",
    "build_report",
    "esc",
    "format_column",
    "img_html",
    "maps_html",
    "methods_html",
    "render_block",
    "surface_views",
    "table_block",
    "table_html",
]
