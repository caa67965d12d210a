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
from importlib import resources
from pathlib import Path

import numpy as np

from brainalign.errors import DataFormatError, InputError
from brainalign.report import plots
from brainalign.report.export import read_index, read_surface_map
from brainalign.utils.io import atomic_write_text

SECTIONS = (
    ("summary", "Summary"),
    ("roi", "ROI RSA"),
    ("comparison", "Model comparison"),
    ("rdms", "RDMs"),
    ("searchlight", "Searchlight"),
    ("encoding", "Encoding"),
    ("insilico", "In-silico contrasts"),
    ("decoding", "Decoding"),
    ("networks", "Networks"),
    ("methods", "Methods"),
    ("files", "Files"),
)
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
}


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _img(b64: str, caption: str = "", alt: str = "") -> str:
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_esc(alt or caption)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def table_html(df, *, max_rows: int = 60, floatfmt: str = "{:.3f}", row_class=None) -> str:
    """An escaped HTML table of a DataFrame (numbers right-aligned, at most ``max_rows`` rows)."""
    cols = list(df.columns)
    out = ["<table><thead><tr>", *(f"<th>{_esc(c)}</th>" for c in cols), "</tr></thead><tbody>"]
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
                cells.append(f"<td>{_esc(v)}</td>")
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    if len(df) > max_rows:
        out.append(f'<p class="note">first {max_rows} of {len(df)} rows; all in the CSV.</p>')
    return "".join(out)


class _Run:
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
            sorted(p.stem for p in folder.glob("*.csv") if p.stem not in _KNOWN_TABLES)
            if folder.exists()
            else []
        )


# ------------------------------------------------------------------------------------ sections
def _summary(run: _Run) -> str:
    parts = []
    cfg = run.meta.get("config", {})
    data = cfg.get("data", {})
    subjects = run.meta.get("subjects", cfg.get("subjects"))
    parts.append(
        f"<p>Data: <b>{_esc(data.get('kind', '?'))}</b> NSD at <code>{_esc(data.get('root', '?'))}</code>; "
        f"subjects {_esc(subjects)}; space {_esc(cfg.get('space', '?'))}; feature spaces "
        f"{_esc(', '.join(cfg.get('features', {}).get('spaces', [])))}.</p>"
    )
    timing = run.meta.get("timing", {})
    if timing:
        parts.append(
            f"<p class='note'>Run time {timing.get('total_seconds', 0):.0f} s "
            f"({timing.get('computed', 0)} tasks computed, {timing.get('reused', 0)} reused from the cache).</p>"
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


def _roi(run: _Run) -> str:
    scores = run.table("roi_rsa")
    if scores is None:
        return ""
    ceiling = run.table("noise_ceiling")
    parts = [
        _img(
            plots.figure_to_base64(
                plots.roi_bar_figure(
                    scores,
                    value="r",
                    ceiling=ceiling,
                    ylabel="Pearson r (brain RDM vs model RDM)",
                    title="ROI RSA: subject dots, mean ± SEM, grey band = noise ceiling",
                )
            ),
            "Raw RDM correlations per ROI and model; grey bands are the leave-one-subject-out noise ceilings.",
        )
    ]
    if "r_norm" in scores and scores["r_norm"].notna().any():
        parts.append(
            _img(
                plots.figure_to_base64(
                    plots.roi_bar_figure(
                        scores,
                        value="r_norm",
                        ylabel="r / noise ceiling",
                        title="Noise-ceiling-normalised ROI RSA",
                    )
                ),
                "Each subject's r divided by that subject's ceiling.",
            )
        )
    group = run.table("roi_group")
    if group is not None:
        parts.append("<h3>Group statistics</h3>" + table_html(group, max_rows=250))
    return "".join(parts)


def _comparison(run: _Run) -> str:
    import pandas as pd

    parts = []
    mc = run.table("model_comparison")
    if mc is not None and len(mc):
        parts.append(
            "<p class='note'>Paired t-tests across subjects on noise-ceiling-normalised scores, "
            "BH-FDR within each ROI. Each cell: mean difference row − column; * q &lt; 0.05. "
            "All statistics are in <code>tables/model_comparison.csv</code>.</p>"
        )
        col = "mean_diff" if "mean_diff" in mc.columns else "t"
        for roi, d in mc.groupby("roi", sort=False):
            models = list(dict.fromkeys([*d["model_a"], *d["model_b"]]))
            grid = pd.DataFrame("", index=models, columns=models)
            for _, r in d.iterrows():
                star = "*" if bool(r.get("significant", False)) else ""
                grid.loc[r["model_a"], r["model_b"]] = f"{r[col]:+.3f}{star}"
                grid.loc[r["model_b"], r["model_a"]] = f"{-r[col]:+.3f}{star}"
            grid.insert(0, "model", models)
            parts.append(f"<h3>{_esc(roi)}</h3>" + table_html(grid))
    sim = run.table("model_similarity")
    if sim is not None:
        parts.append("<h3>Model–model RDM correlations</h3>" + table_html(sim))
    return "".join(parts)


def _rdms(run: _Run) -> str:
    rdms = run.arrays("rdm__")
    if not rdms:
        return ""
    named = {k.removeprefix("rdm__").replace("__", " · "): v for k, v in rdms.items()}
    return _img(
        plots.figure_to_base64(plots.rdm_figure(named, title="RDMs (rank-transformed)")),
        "Brain RDMs of one subject's ROIs and the model RDMs, on the same images.",
    )


def _maps(run: _Run, section: str) -> str:
    parts = []
    for entry in [e for e in run.maps if e.get("section") == section]:
        lh, rh = read_surface_map(run.dir / "maps", entry["name"])
        mask = read_surface_map(run.dir / "maps", entry["mask"]) if entry.get("mask") else None
        sig = None if mask is None else (mask[0] > 0, mask[1] > 0)
        n_sig = "" if sig is None else f" — {int(sig[0].sum() + sig[1].sum())} significant vertices"
        fig = plots.surface_map_figure(
            lh, rh, significant=sig, title=entry["title"], colorbar_label=entry.get("stat", "")
        )
        parts.append(
            _img(plots.figure_to_base64(fig), f"{entry['title']}{n_sig}. {entry.get('note', '')}")
        )
    return "".join(parts)


def _encoding(run: _Run) -> str:
    parts = [_maps(run, "encoding")]
    enc, agr, roi = run.array("encoding_r"), run.array("agreement"), run.array("unit_roi")
    if enc is not None and agr is not None:
        fig = plots.scatter_figure(
            agr,
            enc,
            groups=roi,
            xlabel="interparticipant agreement (r)",
            ylabel="encoding r (mean over subjects)",
            title="Encoding vs agreement",
        )
        parts.append(
            _img(
                plots.figure_to_base64(fig),
                "Per vertex: encoding performance against "
                "interparticipant agreement on the shared images, coloured by ROI.",
            )
        )
    return "".join(parts)


def _decoding(run: _Run) -> str:
    parts = []
    scores = run.table("decoding_scores")
    if scores is not None:
        per_sub = {f"subject {s}": g["score"].to_numpy() for s, g in scores.groupby("subject")}
        ceiling = float(scores["caption_ceiling"].mean()) if "caption_ceiling" in scores else None
        parts.append(
            _img(
                plots.figure_to_base64(
                    plots.histogram_figure(
                        per_sub,
                        xlabel="Pearson r (decoded vs true embedding)",
                        reference=ceiling,
                        title="Decoding prediction scores",
                    )
                ),
                "One density per subject; dashed: caption-consistency ceiling.",
            )
        )
    ident = run.table("decoding_identification")
    if ident is not None:
        parts.append("<h3>Identification accuracy</h3>" + table_html(ident))
    ex = run.table("decoding_examples")
    if ex is not None:
        parts.append(
            "<h3>Examples</h3><p class='note'>True captions beside the caption decoded from "
            "the brain (nearest in the caption bank) and the nearest training caption, with "
            "cosine similarities to the decoded embedding.</p>" + table_html(ex, max_rows=40)
        )
    metrics = run.table("caption_metrics")
    if metrics is not None:
        parts.append("<h3>Caption metrics</h3>" + table_html(metrics))
    return "".join(parts)


def _networks(run: _Run) -> str:
    parts = []
    curves = run.table("training_curves")
    if curves is not None and len(curves):
        parts.append(
            _img(
                plots.figure_to_base64(plots.training_curves_figure(curves)),
                "Training loss and held-out cosine similarity per epoch.",
            )
        )
    transfer = run.table("transfer")
    if transfer is not None:
        parts.append("<h3>Transfer readouts</h3>" + table_html(transfer))
    zoo = run.table("zoo_ranking")
    if zoo is not None:
        parts.append(
            "<h3>Model zoo ranking</h3><p class='note'>Noise-ceiling-normalised ROI RSA "
            "(mean over subjects), the form of the paper's Fig. 4 table.</p>"
            + table_html(zoo, max_rows=100)
        )
    parts.append(_maps(run, "networks"))
    return "".join(parts)


def methods_html(meta: dict) -> str:
    """A methods section written from the run's config and package versions."""
    cfg = meta.get("config", {})
    a = cfg.get("analyses", {})
    comp = cfg.get("compute", {})
    seed = comp.get("random_state", 0)
    p = []
    data = cfg.get("data", {})
    if data.get("kind") == "virtual":
        p.append(
            f"Data: a virtual NSD ({data.get('n_subjects')} subjects, random_state "
            f"{data.get('random_state')}, options {data.get('options') or 'default'}) read with the "
            "same loader as the real NSD: per-session z-scoring of every unit over all trials, "
            "images seen three times kept, repetitions averaged."
        )
    else:
        p.append(
            f"Data: NSD at {data.get('root')}, space {cfg.get('space')}; per-session z-scoring "
            "over all 750 trials, images seen three times kept, repetitions averaged."
        )
    feats = cfg.get("features", {})
    p.append(
        f"Feature spaces: {', '.join(feats.get('spaces', []))}; captions embedded with "
        f"{feats.get('encoder')} one caption at a time and averaged per image (not renormalised)."
    )
    r = a.get("roi_rsa", {})
    if r.get("enabled"):
        mode = (
            f"disjoint random subsets of {r.get('subset_size')} images (seed {seed}, shared by all "
            "models and ROIs), mean over subsets"
            if r.get("sampling") == "paper"
            else "all images at once"
        )
        p.append(
            f"ROI RSA in {', '.join(r.get('rois', []))}: {r.get('metric')}-distance RDMs compared by "
            f"{r.get('method')} correlation on {mode}. Noise ceiling: each subject's RDM on the shared "
            "images against the mean of the other subjects'; scores divided by each subject's ceiling. "
            "Group: one-sample t-test against 0."
        )
    s = a.get("searchlight", {})
    if s.get("enabled"):
        where = (
            f"Volume searchlight (as in the paper): spheres of radius {s.get('radius')} voxels in each "
            f"subject's func1pt8mm volume (kept when ≥ {s.get('min_fraction', 0.5):.0%} of the sphere "
            "is in the brain mask), each subject's map projected to fsaverage with NSD's transforms "
            "(mean of three cortical depths, cubic interpolation)"
            if s.get("space") == "func1pt8mm"
            else f"Surface searchlight: geodesic discs of radius {s.get('radius')} mm on the cortical mesh"
        )
        p.append(
            f"{where}, models {', '.join(s.get('models', []))}, {s.get('method')} correlation "
            f"({s.get('sampling')} sampling); group two-tailed one-sample t-test across subjects, "
            f"Benjamini–Hochberg FDR q = {s.get('fdr_q')}."
        )
    e = a.get("encoding", {})
    if e.get("enabled"):
        p.append(
            f"Encoding: ridge regression from {e.get('feature_space')} to every unit, "
            f"{'one alpha per unit' if e.get('mode') == 'per_target' else 'fracridge-compatible global fraction'} "
            f"chosen by {e.get('cv')}-fold CV over alphas {e.get('alphas')}; trained on each subject's "
            "non-shared images, tested on the shared images (Pearson r per unit); group t-test with "
            f"FDR q = {e.get('fdr_q')}. Interparticipant agreement: each subject's shared-image "
            "responses against the mean of the other subjects'."
        )
    i = a.get("insilico", {})
    if i.get("enabled"):
        pairs = ", ".join(f"{x} − {y}" for x, y in i.get("contrasts", []))
        p.append(
            f"In-silico contrasts ({pairs}): sentences embedded and averaged per category, predicted "
            f"maps from each subject's encoding model, paired t-test across subjects (p < {i.get('alpha')}, "
            "uncorrected, as in the paper)."
        )
    d = a.get("decoding", {})
    if d.get("enabled"):
        p.append(
            f"Decoding: ridge from the units of {', '.join(d.get('rois', []))} to {d.get('feature_space')}; "
            "prediction score = Pearson r between decoded and true embeddings on the shared images; "
            f"caption reconstruction = nearest caption (cosine, exact top-{d.get('k')}) in the caption bank "
            f"{d.get('bank') or '(the training images’ captions and extra scenes)'}."
        )
    n = a.get("networks", {})
    if n.get("enabled"):
        p.append(
            f"Networks: BLT recurrent convolutional networks ({n.get('layers')} layers, width × "
            f"{n.get('width')}, {n.get('timesteps')} timesteps, {n.get('image_size')} px) trained "
            f"toward {', '.join(n.get('targets', []))} for {n.get('epochs')} epochs (seeds "
            f"{n.get('seeds')}); last layer and timestep compared with the brain by ROI RSA."
        )
    m = a.get("model_comparison", {})
    if m.get("enabled"):
        p.append(
            f"Model comparison in {', '.join(m.get('rois', []))}: "
            f"{'paired' if m.get('test') == 'paired' else 'independent-samples (paper mode)'} t-tests "
            f"on normalised scores, BH-FDR q = {m.get('fdr_q')} within each ROI."
        )
    p.append(
        f"Compute: backend {comp.get('backend')} on {comp.get('device')}, executor "
        f"{comp.get('executor')} with {comp.get('workers')} worker(s); every result cached by a hash "
        "of its inputs, parameters and code."
    )
    versions = meta.get("versions", {})
    rows = "".join(
        f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in sorted(versions.items())
    )
    vtable = (
        f"<h3>Versions</h3><table><tr><th>package</th><th>version</th></tr>{rows}</table>"
        if rows
        else ""
    )
    cfg_text = _esc(json.dumps(cfg, indent=1, sort_keys=True))
    return (
        "".join(f"<p>{_esc(x)}</p>" for x in p)
        + vtable
        + f"<details><summary>Full configuration</summary><pre>{cfg_text}</pre></details>"
    )


def _files(run: _Run) -> str:
    items = []
    for sub in ("maps", "tables", "arrays"):
        folder = run.dir / sub
        if folder.exists():
            names = sorted(p.name for p in folder.iterdir() if p.is_file())
            if names:
                items.append(
                    f"<li><code>{_esc(sub)}/</code>: {len(names)} files — "
                    f"{_esc(', '.join(names[:12]))}{' …' if len(names) > 12 else ''}</li>"
                )
    others = run.other_tables()
    extra = "".join(f"<h3>{_esc(n)}</h3>{table_html(run.table(n))}" for n in others)
    if not items and not extra:
        return ""
    return (
        "<p>Every map is saved as GIFTI and MGH per hemisphere and every table as CSV, for "
        f"other tools (folder <code>{_esc(run.dir)}</code>):</p><ul>{''.join(items)}</ul>{extra}"
    )


def build_report(
    run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, title: str | None = None
) -> Path:
    """Write the self-contained HTML report of a run folder.

    Parameters
    ----------
    run_dir : path
        A folder written by the pipeline (``run.json``, ``tables/``, ``maps/``, ``arrays/``).
    out : path, optional
        Output file (default ``run_dir/report.html``).
    title : str, optional

    Returns
    -------
    Path
        The HTML file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(
            f"run_dir: {str(run_dir)!r} is not a folder; give the output folder of a run"
        )
    if not (run_dir / "run.json").exists() and not (run_dir / "tables").exists():
        raise InputError(
            f"run_dir: {str(run_dir)!r} holds no run.json or tables/; run `brainalign run CONFIG` first"
        )
    run = _Run(run_dir)
    builders = {
        "summary": _summary,
        "roi": _roi,
        "comparison": _comparison,
        "rdms": _rdms,
        "searchlight": lambda r: _maps(r, "searchlight"),
        "encoding": _encoding,
        "insilico": lambda r: _maps(r, "insilico"),
        "decoding": _decoding,
        "networks": _networks,
        "methods": lambda r: methods_html(r.meta),
        "files": _files,
    }
    body, nav = [], []
    for key, heading in SECTIONS:
        content = builders[key](run)
        if content:
            body.append(f'<section id="{key}"><h2>{_esc(heading)}</h2>{content}</section>')
            nav.append(f'<a href="#{key}">{_esc(heading)}</a>')
    from brainalign import __version__

    cfg = run.meta.get("config", {})
    title = title or cfg.get("name") or "brainalign report"
    finished = run.meta.get("timing", {}).get("finished", "")
    template = string.Template(
        resources.files("brainalign.report").joinpath("templates/report.html").read_text()
    )
    page = template.substitute(
        title=_esc(title),
        subtitle=_esc(f"brainalign {__version__} — {finished}"),
        version=_esc(__version__),
        nav="".join(nav),
        body="\n".join(body),
    )
    out = Path(out) if out is not None else run_dir / "report.html"
    atomic_write_text(out, page)
    return out


__all__ = ["build_report", "methods_html", "table_html"]
