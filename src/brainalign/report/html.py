"""The study report: one self-contained HTML page (figures embedded as base64 PNG).

:func:`build_report` reads a run folder (written by the pipeline through
:class:`~brainalign.report.export.RunWriter`):

``run.json``
    config, package versions, timings, ground truth (virtual NSD).
``tables/*.csv``
    ``ground_truth``, ``roi_rsa`` (subject, roi, model, r, ceiling, r_norm), ``noise_ceiling``,
    ``roi_group``, ``model_comparison``, ``zoo_ranking``, ``decoding_scores``,
    ``decoding_identification``, ``decoding_examples``, ``caption_metrics``,
    ``training_curves``, ``transfer`` — each optional; other tables are listed at the end.
``maps/``
    GIFTI/MGH maps with ``index.json`` (title, section, statistic, significance mask).
``arrays/*.npy``
    ``rdm__<roi>__<model>``, ``encoding_r``, ``agreement``, ``unit_roi`` (for the scatter).

Sections without data are left out, so the report of a partial run is still valid.
"""

from __future__ import annotations

import html
import json
import os
import string
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from brainalign.datasets.surfaces import read_hemisphere_maps
from brainalign.errors import DataFormatError
from brainalign.report import plots
from brainalign.report.export import read_index
from brainalign.report.surface_views import SurfaceViews
from brainalign.utils.io import atomic_write_text

_KNOWN_TABLES = {
    "ground_truth",
    "roi_rsa",
    "noise_ceiling",
    "roi_group",
    "model_comparison",
    "zoo_ranking",
    "decoding_scores",
    "decoding_identification",
    "decoding_examples",
    "caption_metrics",
    "training_curves",
    "transfer",
    "model_similarity",
    # RDM data sets (pipeline/analyses/rdm_rsa.py)
    *("rdm_scores", "rdm_inference", "algonauts_scores", "rdm_pairwise", "rdm_subject_scores"),
    *("known_results", "rdm_stimuli", "rdm_mds"),
}


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def img_html(b64: str, caption: str = "", alt: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img alt="{esc(alt or caption)}" src="data:image/png;base64,{b64}">{cap}</figure>'
    )


def table_html(df, *, max_rows: int = 60, floatfmt: str = "{:.3f}", row_class=None) -> str:
    """An escaped HTML table of a DataFrame (numbers right-aligned, at most ``max_rows`` rows)."""
    cols = list(df.columns)
    out = ["<table><thead><tr>", *(f"<th>{esc(c)}</th>" for c in cols), "</tr></thead><tbody>"]
    for _, row in df.head(max_rows).iterrows():
        cls = f' class="{row_class(row)}"' if row_class else ""
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, (float, np.floating)):
                text = (
                    ""
                    if not np.isfinite(v)
                    else (f"{v:.2e}" if 0 < abs(v) < 1e-3 else floatfmt.format(v))
                )
                cells.append(f'<td class="num">{text}</td>')
            elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                cells.append(f'<td class="num">{v}</td>')
            else:
                cells.append(f"<td>{esc(v)}</td>")
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    if len(df) > max_rows:
        out.append(f'<p class="note">first {max_rows} of {len(df)} rows; all in the CSV.</p>')
    return "".join(out)


class RunFolder:
    """A run folder as the report reads it: run.json, tables/, arrays/ and the maps index."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        meta = run_dir / "run.json"
        self.meta = json.loads(meta.read_text()) if meta.exists() else {}
        self.maps = read_index(run_dir)

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

    def other_tables(self) -> list[str]:
        folder = self.dir / "tables"
        return (
            # a dot name is a temporary file of an export (maybe killed mid-write), not a table
            sorted(
                p.stem
                for p in folder.glob("*.csv")
                if p.stem not in _KNOWN_TABLES and not p.name.startswith(".")
            )
            if folder.exists()
            else []
        )


# ------------------------------------------------------------------------------------ sections
def _summary(run: RunFolder) -> str:
    parts = []
    cfg = run.meta.get("config", {})
    data = cfg.get("data", {})
    subjects = run.meta.get("subjects", cfg.get("subjects"))
    spaces = esc(", ".join(cfg.get("features", {}).get("spaces", [])))
    if data.get("kind") == "rdms":
        sets = [s.get("name") or s.get("importer") or s.get("root") for s in data.get("sets", [])]
        where = ", ".join(str(s) for s in ([data["root"]] if data.get("root") else []) + sets)
        parts.append(f"<p>Data: RDM data sets {esc(where)}; feature spaces {spaces}.</p>")
    else:
        parts.append(
            f"<p>Data: <b>{esc(data.get('kind', '?'))}</b> NSD at <code>{esc(data.get('root', '?'))}</code>; "
            f"subjects {esc(subjects)}; space {esc(cfg.get('space', '?'))}; feature spaces "
            f"{spaces}.</p>"
        )
    quality = run.meta.get("data_quality")
    if quality is not None:
        n_bad = quality.get("non_finite_values", 0)
        if n_bad:
            subjects_bad = {
                s: v for s, v in quality.get("non_finite", {}).items() if v.get("values")
            }
            detail = "; ".join(
                f"subject {esc(s)}: {v['values']} values in {v.get('units', 0)} units"
                for s, v in subjects_bad.items()
            )
            parts.append(
                f"<p style='color:#a40000'>Non-finite betas: {n_bad} NaN/Inf values ({detail}) "
                "were left out by NaN-aware z-scoring and repetition averaging; units without a "
                "value for an image are dropped by the analyses (table non_finite_betas).</p>"
            )
        else:
            parts.append("<p class='note'>Non-finite betas: none.</p>")
    timing = run.meta.get("timing", {})
    if timing:
        parts.append(
            f"<p class='note'>Run time {timing.get('total_seconds', 0):.0f} s "
            f"({timing.get('computed', 0)} tasks computed, {timing.get('reused', 0)} reused from the cache).</p>"
        )
        stages = timing.get("stages") or []
        if stages:
            import pandas as pd

            t = pd.DataFrame(stages).sort_values("task_seconds", ascending=False)
            t = t.rename(
                columns={"task_seconds": "task seconds (summed)", "wall_seconds": "wall seconds"}
            )
            parts.append(
                "<details><summary>Timing per stage</summary>"
                + table_html(t, floatfmt="{:.1f}")
                + "<p class='note'>Task seconds add up every task's own time (the work); wall "
                "seconds run from the stage's first task starting to its last ending (tasks of "
                "several stages overlap).</p></details>"
            )
    gt = run.table("ground_truth")
    if gt is not None:
        parts.append("<h3>Ground truth (virtual NSD)</h3>")
        parts.append(
            "<p>For each ROI: the representation planted by the virtual NSD, the feature space that "
            "ranked best in the ROI RSA, and whether the two agree.</p>"
        )
        good = {"yes", "true", "1"}
        parts.append(
            table_html(
                gt,
                row_class=lambda r: (
                    "good" if str(r.get("agreement", "")).lower() in good else "bad"
                ),
            )
        )
    return "".join(parts)


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
        parts.append(
            surface_views(run).view(
                lh, rh, title=entry["title"], stat=stat, significant=sig, vmax=vmax
            )
        )
    return "".join(parts)


def methods_html(meta: dict, analysis_methods: Sequence = ()) -> str:
    """A methods section written from the run's config and package versions.

    ``analysis_methods`` are callables ``(config dict) -> list of paragraphs`` (the data's, the
    features' and each analysis's), in order, before the compute paragraph.
    """
    cfg = meta.get("config", {})
    comp = cfg.get("compute", {})
    p = []
    for paragraphs in analysis_methods:
        p += paragraphs(cfg)
    p.append(
        f"Compute: backend {comp.get('backend')} on {comp.get('device')}, executor "
        f"{comp.get('executor')} with {comp.get('workers')} worker(s); every result cached by a hash "
        "of its inputs, parameters and code."
    )
    versions = meta.get("versions", {})
    rows = "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in sorted(versions.items())
    )
    vtable = (
        f"<h3>Versions</h3><table><tr><th>package</th><th>version</th></tr>{rows}</table>"
        if rows
        else ""
    )
    cfg_text = esc(json.dumps(cfg, indent=1, sort_keys=True))
    return (
        "".join(f"<p>{esc(x)}</p>" for x in p)
        + vtable
        + f"<details><summary>Full configuration</summary><pre>{cfg_text}</pre></details>"
    )


def _files(run: RunFolder) -> str:
    items = []
    for sub in ("maps", "tables", "arrays"):
        folder = run.dir / sub
        if folder.exists():
            # dot names: temporary files of an export, not results
            names = sorted(
                p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
            )
            if names:
                items.append(
                    f"<li><code>{esc(sub)}/</code>: {len(names)} files — "
                    f"{esc(', '.join(names[:12]))}{' …' if len(names) > 12 else ''}</li>"
                )
    others = run.other_tables()
    extra = "".join(f"<h3>{esc(n)}</h3>{table_html(run.table(n))}" for n in others)
    if not items and not extra:
        return ""
    return (
        "<p>Every map is saved as GIFTI and MGH per hemisphere and every table as CSV, for "
        f"other tools (folder <code>{esc(run.dir)}</code>):</p><ul>{''.join(items)}</ul>{extra}"
    )


def build_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    sections: Sequence = (),
    methods: Sequence = (),
    notes: Sequence[str] = (),
) -> Path:
    """Write the self-contained HTML report of a run folder.

    Parameters
    ----------
    run_dir : path
        A folder written by the pipeline (``run.json``, ``tables/``, ``maps/``, ``arrays/``).
    out : path, optional
        Output file (default ``run_dir/report.html``).
    title : str, optional
    sections : sequence
        The analyses' sections (each with ``key``, ``heading`` and ``build(run) -> html``),
        placed between the summary and the methods; the pipeline passes its registry's
        (:func:`brainalign.pipeline.write_report`).
    methods : sequence of callables
        ``(config dict) -> list of paragraphs`` for the methods section, one per analysis.
    notes : sequence of str
        Paragraphs shown first, in a "Status" section (e.g. that the run did not finish).

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
    from brainalign.utils.owned import check_run_folder

    # a report of whatever has finished, even nothing yet, but only in brainalign's run folders
    run_dir = check_run_folder(run_dir)
    run = RunFolder(run_dir)
    if not notes and not run.meta and not any(run.dir.glob("tables/*.csv")):
        notes = ["No results yet: run `brainalign run CONFIG` (with this output folder)."]
    status = "".join(f"<p class='note'>{esc(n)}</p>" for n in notes)
    builders = [
        ("status", "Status", lambda r: status),
        ("summary", "Summary", _summary),
        *((s.key, s.heading, s.build) for s in sections),
        ("methods", "Methods", lambda r: methods_html(r.meta, methods)),
        ("files", "Files", _files),
    ]
    body, nav = [], []
    for key, heading, build in builders:
        content = build(run)
        if content:
            body.append(f'<section id="{key}"><h2>{esc(heading)}</h2>{content}</section>')
            nav.append(f'<a href="#{key}">{esc(heading)}</a>')
    views = getattr(run, "_surface_views", None)
    if views:
        body.append(views.assets())  # plotly.js, mesh and runtime, once per page
    from brainalign import __version__

    cfg = run.meta.get("config", {})
    title = title or cfg.get("name") or "brainalign report"
    finished = run.meta.get("timing", {}).get("finished", "")
    template = string.Template(
        resources.files("brainalign.report").joinpath("templates/report.html").read_text()
    )
    page = template.substitute(
        title=esc(title),
        subtitle=esc(f"brainalign {__version__} — {finished}"),
        version=esc(__version__),
        nav="".join(nav),
        body="\n".join(body),
    )
    out = Path(out) if out is not None else run_dir / "report.html"
    atomic_write_text(out, page)
    return out


__all__ = [
    "RunFolder",
    "build_report",
    "esc",
    "img_html",
    "maps_html",
    "methods_html",
    "surface_views",
    "table_html",
]
