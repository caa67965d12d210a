"""Figures of the report, each a plain function returning a matplotlib ``Figure``.

Surface maps use nilearn's fsaverage5 meshes (shipped with nilearn, no download): the inflated
surface (lateral and medial, both hemispheres) and the flat patches. RDM figures are in
:mod:`brainalign.report.rdm_plots`; the interactive 3-D maps in
:mod:`brainalign.report.surface_views`. Maps on full fsaverage are
shown on fsaverage5 by keeping the first 10,242 vertices of each hemisphere (fsaverage5 is the
first 10,242 vertices of fsaverage).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from brainalign.errors import InputError

FSAVERAGE5_VERTICES = 10242
FSAVERAGE_VERTICES = 163842
ROI_COLOURS = {
    "early": "#1f77b4",
    "midventral": "#aec7e8",
    "midlateral": "#98df8a",
    "midparietal": "#ffbb78",
    "ventral": "#2ca02c",
    "lateral": "#d62728",
    "parietal": "#ff7f0e",
    "nsdgeneral": "#9467bd",
    "null": "#bbbbbb",
}
#: legend text of ROI labels that are not ROI names (``unit_roi`` marks vertices outside every
#: streams ROI as "null"; a reader should not have to know that)
ROI_LABELS = {"null": "outside the streams ROIs"}


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plain_text(fig):
    """Show every label of ``fig`` as written, never as mathtext; returns ``fig``.

    Names come from users' data (a category ``"$5 bills"``, a model ``"cost$$"``), and
    matplotlib parses text between two ``$`` as TeX: the report crashed on a category holding
    ``$…$``. Titles, axis labels, legends and annotations stop parsing math; tick labels set
    from names (fixed, categorical or ``set_ticklabels`` formatters) have their ``$`` escaped,
    since numeric tick labels may use mathtext themselves (``10^{2}`` on a log axis) and are
    left alone. Calling it twice is harmless.
    """
    from matplotlib.category import StrCategoryFormatter
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter, FuncFormatter

    ticks = set()
    for ax in fig.axes:
        if not ax.axison:  # no tick labels drawn (making its ticks would cost more than the rest)
            ticks.update(id(a.offsetText) for a in (ax.xaxis, ax.yaxis))
            continue
        for axis in (ax.xaxis, ax.yaxis):
            for which in ("major", "minor"):
                get = getattr(axis, f"get_{which}_formatter")
                fmt = get()
                # names: fixed labels, categories, and set_ticklabels (a FuncFormatter)
                if isinstance(fmt, (FixedFormatter, StrCategoryFormatter, FuncFormatter)):
                    getattr(axis, f"set_{which}_formatter")(
                        FuncFormatter(lambda x, pos, f=fmt: _escape_dollars(f(x, pos)))
                    )
                for tick in axis.get_major_ticks() if which == "major" else axis.get_minor_ticks():
                    ticks.update((id(tick.label1), id(tick.label2)))
            ticks.add(id(axis.offsetText))
    for text in fig.findobj(Text):
        if id(text) not in ticks:
            text.set_parse_math(False)
    return fig


def _escape_dollars(label: str) -> str:
    """``label`` with each ``$`` escaped for mathtext (``\\$`` is drawn as ``$``)."""
    return str(label).replace("\\$", "$").replace("$", "\\$")


def figure_to_base64(fig, dpi: int = 80) -> str:
    """PNG bytes of ``fig`` as base64 text (for ``<img src="data:image/png;base64,...">``).

    Text is drawn as written (:func:`plain_text`): a ``$`` in a name is never mathtext.
    """
    plt = _plt()
    plain_text(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _to_fsaverage5(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.shape[0] == FSAVERAGE5_VERTICES:
        return values
    if values.shape[0] == FSAVERAGE_VERTICES:
        return values[:FSAVERAGE5_VERTICES]
    raise InputError(
        f"{name}: expected {FSAVERAGE5_VERTICES} (fsaverage5) or {FSAVERAGE_VERTICES} (fsaverage) "
        f"values per hemisphere, got {values.shape[0]}"
    )


def surface_vmax(
    lh: np.ndarray, rh: np.ndarray, significant: tuple[np.ndarray, np.ndarray] | None = None
) -> float:
    """Colour-scale limit of a surface map: the 99th percentile of the coloured absolute values.

    Coloured are the finite, non-zero values of fsaverage5's vertices (the first 10,242 of each
    hemisphere) inside ``significant`` when given; 1.0 when there is none.
    """
    parts = []
    for i, values in enumerate((lh, rh)):
        v = _to_fsaverage5(values, ("lh", "rh")[i])
        if significant is not None:
            v = np.where(_to_fsaverage5(np.asarray(significant[i], float), "significant") > 0, v, 0)
        parts.append(v)
    shown = np.concatenate(parts)
    shown = shown[np.isfinite(shown) & (shown != 0)]
    vmax = float(np.percentile(np.abs(shown), 99)) if shown.size else 1.0
    return vmax if vmax > 0 else 1.0


def surface_map_figure(
    lh: np.ndarray,
    rh: np.ndarray,
    *,
    significant: tuple[np.ndarray, np.ndarray] | None = None,
    threshold: float | None = None,
    vmax: float | None = None,
    cmap: str = "cold_hot",
    title: str = "",
    colorbar_label: str = "",
    symmetric: bool = True,
    threshold_line: float | Literal["auto"] | None = "auto",
):
    """Both hemispheres on the inflated (lateral, medial) and flat fsaverage5, one colour bar.

    Parameters
    ----------
    lh, rh : (10242,) or (163842,) float
        Per-vertex values (NaN = no data, drawn as background).
    significant : (lh_mask, rh_mask), optional
        Boolean masks of vertices that survive the threshold (e.g. FDR q < 0.05); the others
        are not coloured.
    threshold : float, optional
        Absolute values below it are not coloured (used when ``significant`` is None).
    vmax : float, optional
        Colour-scale limit (default: the 99th percentile of the shown absolute values).
    threshold_line : float, "auto" or None
        The value a vertex needs to be coloured, marked on the colour bar (at ± it when
        ``symmetric``) and written under it; "auto": :func:`significance_threshold` of
        ``significant`` (else ``threshold``); None: not marked.
    """
    plt = _plt()
    from matplotlib import cm, colors
    from nilearn.plotting import cm as _nilearn_cmaps  # noqa: F401  registers "cold_hot" etc.

    from brainalign.datasets.surfaces import fsaverage5_surface
    from brainalign.report.surface_render import VIEWS, draw_surface, face_colours

    data = {"left": _to_fsaverage5(lh, "lh"), "right": _to_fsaverage5(rh, "rh")}
    n_given = np.asarray(lh).size
    if significant is not None:
        for hemi, mask in zip(("left", "right"), significant, strict=True):
            mask = _to_fsaverage5(np.asarray(mask, dtype=float), f"significant[{hemi}]") > 0
            data[hemi] = np.where(mask, data[hemi], 0.0)
    if vmax is None:
        vmax = surface_vmax(data["left"], data["right"])
    vmax = vmax if vmax > 0 else 1.0
    thr = 1e-12 if significant is not None else (threshold or 1e-12)
    colour_map = plt.get_cmap(cmap)
    norm = colors.Normalize(vmin=-vmax if symmetric else 0.0, vmax=vmax, clip=True)
    fig = plt.figure(figsize=(13, 6.2))
    panels = [
        ("left", "infl", "lateral", (0.00, 0.50, 0.23, 0.45)),
        ("left", "infl", "medial", (0.23, 0.50, 0.23, 0.45)),
        ("right", "infl", "medial", (0.46, 0.50, 0.23, 0.45)),
        ("right", "infl", "lateral", (0.69, 0.50, 0.23, 0.45)),
        ("left", "flat", "flat", (0.05, 0.02, 0.40, 0.46)),
        ("right", "flat", "flat", (0.48, 0.02, 0.40, 0.46)),
    ]
    for hemi, kind, view, rect in panels:
        ax = fig.add_axes(rect)
        coords, faces, sulc = fsaverage5_surface("flat" if kind == "flat" else "inflated", hemi)
        rgba = face_colours(data[hemi], faces, sulc, colour_map, norm, thr)
        elev, azim = (90.0, 270.0) if kind == "flat" else VIEWS[(hemi, view)]
        draw_surface(ax, coords, faces, rgba, elev, azim)
        ax.set_title(f"{'LH' if hemi == 'left' else 'RH'} {view}", fontsize=9)
    cax = fig.add_axes((0.93, 0.2, 0.015, 0.6))
    cb = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=colour_map), cax=cax)
    cb.set_label(colorbar_label)
    if isinstance(threshold_line, str):
        threshold_line = (
            significance_threshold(lh, rh, significant) if significant is not None else threshold
        )
    if threshold_line is not None and np.isfinite(threshold_line):
        _mark_threshold(cb, threshold_line, vmax, symmetric)
    if title:
        fig.suptitle(title, fontsize=12)
    if n_given > FSAVERAGE5_VERTICES:  # what the mesh drops is said, not hidden
        fig.text(
            0.5,
            0.005,
            f"Shown on fsaverage5: the first {FSAVERAGE5_VERTICES:,} of {n_given:,} vertices per "
            "hemisphere (fsaverage5's own); every vertex is in the GIFTI/MGH files.",
            ha="center",
            fontsize=8,
            color="0.3",
        )
    return fig


def _mark_threshold(cb, threshold: float, vmax: float, symmetric: bool) -> None:
    """Lines on colour bar ``cb`` at ``threshold`` (and its negative when ``symmetric``), with
    the value written under the bar: a reader sees where colouring starts."""
    for v in (threshold, -threshold) if symmetric else (threshold,):
        if abs(v) <= vmax:  # a threshold beyond the scale is only written, not drawn
            cb.ax.axhline(v, color="k", lw=1.2)
    cb.ax.text(
        0.5,
        -0.04,
        f"threshold\n{'±' if symmetric else ''}{threshold:.3g}",
        transform=cb.ax.transAxes,
        ha="center",
        va="top",
        fontsize=8,
    )


def significance_threshold(
    lh: np.ndarray, rh: np.ndarray, significant: tuple[np.ndarray, np.ndarray] | None
) -> float | None:
    """The smallest absolute value among the significant vertices of a map, or None.

    An FDR (or any) threshold is a p-value cut; on the map it becomes the smallest statistic
    that passes it, which is what a reader compares colours with (as SPM and nilearn report
    ``threshold``). None when there is no mask or no significant finite vertex.
    """
    if significant is None:
        return None
    values = np.concatenate(
        [np.asarray(lh, np.float64).ravel(), np.asarray(rh, np.float64).ravel()]
    )
    mask = np.concatenate([np.asarray(m).ravel() > 0 for m in significant])
    if mask.shape != values.shape:
        raise InputError(
            f"significant: {mask.size} mask values for {values.size} map values; give one per vertex"
        )
    shown = np.abs(values[mask & np.isfinite(values)])
    return float(shown.min()) if shown.size else None


def roi_bar_figure(
    scores,
    *,
    value: str = "r",
    ceiling=None,
    rois: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    title: str = "",
    ylabel: str = "",
    error: str = "sem",
):
    """Mean over subjects per ROI × model, error bars, one dot per subject, noise ceiling.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``subject``, ``roi``, ``model`` and ``value``.
    ceiling : pandas.DataFrame, optional
        Columns ``subject``, ``roi``, ``ceiling``: drawn as a grey band (mean ± SEM) per ROI.
    error : {"sem", "paper"}
        Error bars: the standard error (SD with ddof 1, / √n) or the paper's SD (ddof 0) / √n.
    """
    if error not in ("sem", "paper"):
        raise InputError(f"error: expected 'sem' or 'paper', got {error!r}")
    ddof = 1 if error == "sem" else 0
    plt = _plt()
    rois = list(rois or dict.fromkeys(scores["roi"]))
    models = list(models or dict.fromkeys(scores["model"]))
    if not rois or not models:
        raise InputError("scores: no ROI or model to plot")
    cmap = plt.get_cmap("tab20" if len(models) > 10 else "tab10")
    width = 0.8 / len(models)
    width_in = min(16.0, max(6.0, 0.25 * len(rois) * max(2, len(models))))
    fig, ax = plt.subplots(figsize=(width_in, 4.6))
    rng = np.random.default_rng(0)
    for j, model in enumerate(models):
        for i, roi in enumerate(rois):
            v = scores.loc[(scores["roi"] == roi) & (scores["model"] == model), value].to_numpy(
                float
            )
            v = v[np.isfinite(v)]
            if not v.size:
                continue
            x = i - 0.4 + width * (j + 0.5)
            sem = v.std(ddof=ddof) / np.sqrt(v.size) if v.size > 1 else 0.0
            ax.bar(
                x,
                v.mean(),
                width * 0.92,
                color=cmap(j),
                yerr=sem,
                capsize=2,
                label=model if i == 0 else None,
            )
            ax.scatter(x + rng.uniform(-width / 5, width / 5, v.size), v, s=8, color="k", zorder=3)
    if ceiling is not None:
        for i, roi in enumerate(rois):
            c = ceiling.loc[ceiling["roi"] == roi, "ceiling"].to_numpy(float)
            c = c[np.isfinite(c)]
            if c.size:
                sem = c.std(ddof=1) / np.sqrt(c.size) if c.size > 1 else 0.0
                ax.fill_between(
                    [i - 0.45, i + 0.45],
                    c.mean() - sem,
                    c.mean() + sem,
                    color="0.6",
                    alpha=0.4,
                    zorder=0,
                    label="noise ceiling" if i == 0 else None,
                )
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(rois)), rois)
    ax.set_ylabel(ylabel or value)
    ax.legend(fontsize=8, ncol=2, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    if title:
        ax.set_title(title)
    return fig


def significant_pairs(pairwise, models: Sequence[str], *, diff: str | None = None) -> list:
    """The significant pairs of ``pairwise`` among ``models``, each as (better, worse).

    Parameters
    ----------
    pairwise : pandas.DataFrame
        One row per tested pair: ``model_a``, ``model_b``, ``significant`` (bool, after the
        multiple-comparison correction) and the difference a − b (``diff`` or ``mean_diff``).
    models : sequence of str
        The models shown; pairs with a model not shown are left out (the caller says so).
    diff : str, optional
        Column of the difference a − b (default: ``diff``, else ``mean_diff``).

    Returns
    -------
    list of (str, str)
        In the table's order; the better model of a pair is the one with the larger score.
    """
    if pairwise is None or not len(pairwise):
        return []
    diff = diff or ("diff" if "diff" in pairwise else "mean_diff")
    shown = set(models)
    out = []
    for a, b, sig, d in zip(
        pairwise["model_a"],
        pairwise["model_b"],
        pairwise["significant"],
        pairwise[diff],
        strict=True,
    ):
        if str(sig) == "True" and a in shown and b in shown:
            out.append((a, b) if float(d) > 0 else (b, a))
    return out


def model_comparison_figure(
    subject_scores,
    pairwise=None,
    *,
    value: str = "score",
    summary=None,
    ceiling: tuple[float, float] | None = None,
    ceiling_label: str = "noise ceiling",
    error: str = "sem",
    sort: bool = True,
    highlight: Sequence[str] = (),
    title: str = "",
    ylabel: str = "",
):
    """Model comparison as rsatoolbox's ``plot_model_comparison`` draws it: a bar per model
    (mean over subjects), its error bar, one dot per subject, the noise ceiling as a grey band,
    and above the bars the significant pairwise differences as Golan wings (rsatoolbox's
    ``test_pair_comparisons="golan"``): one row per model that is significantly better than
    others, a dot at that model and a line to the models it beats, each marked by a tick.

    Parameters
    ----------
    subject_scores : pandas.DataFrame
        One row per subject and model: ``model``, ``subject`` and ``value``.
    pairwise : pandas.DataFrame, optional
        Pairwise tests (:func:`significant_pairs`): the very table the report prints, so the
        figure and the table cannot disagree. Each significant pair is a line from one bar to
        the other with a dot at the better model.
    value : str
        Column of ``subject_scores`` with the scores.
    summary : pandas.DataFrame, optional
        ``model``, ``score``, ``ci_low``, ``ci_high``: bars and whiskers from it (e.g. a
        bootstrap's CI) instead of the subjects' mean ± SEM.
    ceiling : (lower, upper), optional
        The noise ceiling's bounds (equal bounds: a line).
    error : {"sem", "paper"}
        Whiskers without ``summary``: SD (ddof 1) / √n, or the paper's SD (ddof 0) / √n.
    sort : bool
        Bars in descending score (rsatoolbox's ``sort=True``); else in the table's order.
    highlight : sequence of str
        Models drawn in a stronger colour (e.g. the caption-embedding models).

    Returns
    -------
    matplotlib.figure.Figure
        Every model of ``subject_scores`` is drawn (the width grows with the models); the tick
        of each significant pair has the gid ``"pair:<better>|<worse>"``.
    """
    if error not in ("sem", "paper"):
        raise InputError(f"error: expected 'sem' or 'paper', got {error!r}")
    if subject_scores is None or not len(subject_scores):
        raise InputError("subject_scores: nothing to plot")
    plt = _plt()
    values = {m: d[value].to_numpy(float) for m, d in subject_scores.groupby("model", sort=False)}
    values = {m: v[np.isfinite(v)] for m, v in values.items()}
    bars, low, high = _bar_heights(values, summary, 1 if error == "sem" else 0)
    models = list(values)
    if sort:
        models.sort(key=lambda m: -np.nan_to_num(bars[m], nan=-np.inf))
    pairs = significant_pairs(pairwise, models)
    x = {m: i for i, m in enumerate(models)}
    beats = {m: [w for b, w in pairs if b == m] for m in models}
    winners = [m for m in models if beats[m]]
    n_levels = len(winners)
    width = min(30.0, max(5.0, 0.45 * len(models) + 2.0))
    top = 0.35 + 0.16 * n_levels if n_levels else 0.0
    fig = plt.figure(figsize=(width, 4.2 + top))
    grid = fig.add_gridspec(2, 1, height_ratios=[max(top, 1e-3), 4.2], hspace=0.03)
    ax = fig.add_subplot(grid[1])
    if ceiling is not None and np.all(np.isfinite(ceiling)):
        lo_c, hi_c = float(min(ceiling)), float(max(ceiling))
        if hi_c - lo_c > 1e-12:
            ax.axhspan(lo_c, hi_c, color="0.75", alpha=0.6, zorder=0, label=ceiling_label)
        else:
            ax.axhline(lo_c, color="0.5", lw=2, zorder=0, label=ceiling_label)
    xs = np.arange(len(models))
    colours = ["#d62728" if m in highlight else "#4c72b0" for m in models]
    h = np.array([bars[m] for m in models])
    yerr = np.vstack([h - [low[m] for m in models], [high[m] for m in models] - h])
    ax.bar(xs, h, 0.7, color=colours, alpha=0.85, zorder=2)
    ax.errorbar(xs, h, yerr=np.nan_to_num(yerr), fmt="none", ecolor="k", capsize=3, zorder=4)
    rng = np.random.default_rng(0)  # the dots' jitter is the same in every report
    for i, m in enumerate(models):
        v = values[m]
        ax.scatter(i + rng.uniform(-0.18, 0.18, v.size), v, s=9, color="k", alpha=0.7, zorder=5)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_xticks(
        xs,
        models,
        rotation=45 if len(models) > 4 else 0,
        ha="right" if len(models) > 4 else "center",
        fontsize=8,
    )
    ax.set_ylabel(ylabel or value)
    if ceiling is not None:
        ax.legend(fontsize=8, frameon=False, loc="best")
    top_ax = fig.add_subplot(grid[0], sharex=ax)
    top_ax.axis("off")
    for k, better in enumerate(winners):
        level = n_levels - 1 - k  # the best model's wing on top
        ends = [x[better], *(x[w] for w in beats[better])]
        top_ax.plot([min(ends), max(ends)], [level, level], color="0.55", lw=1.0)
        top_ax.plot([x[better]], [level], "o", color="0.1", ms=4)
        for worse in beats[better]:
            (tick,) = top_ax.plot([x[worse]], [level], "|", color="0.1", ms=7, mew=1.3)
            tick.set_gid(f"pair:{better}|{worse}")
    top_ax.set_ylim(-0.6, max(n_levels, 1) - 0.4)
    if title:
        fig.suptitle(title, fontsize=11)
    plain_text(fig)  # names are drawn as written, never as TeX
    return fig


def _bar_heights(values: Mapping[str, np.ndarray], summary, ddof: int):
    """Bar height, whisker low and high per model: from ``summary`` (score, ci_low, ci_high)
    where it names the model, else the subjects' mean ± SD (``ddof``) / √n."""
    given = {}
    if summary is not None:
        given = {
            m: (float(s), float(lo), float(hi))
            for m, s, lo, hi in zip(
                summary["model"],
                summary["score"],
                summary["ci_low"],
                summary["ci_high"],
                strict=True,
            )
        }
    bars, low, high = {}, {}, {}
    for m, v in values.items():
        if m in given:
            bars[m], low[m], high[m] = given[m]
            continue
        mean = float(v.mean()) if v.size else np.nan
        sem = float(v.std(ddof=ddof) / np.sqrt(v.size)) if v.size > 1 else 0.0
        bars[m], low[m], high[m] = mean, mean - sem, mean + sem
    return bars, low, high


def scatter_figure(
    x: np.ndarray,
    y: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    max_points: int | None = None,
):
    """Scatter of ``y`` against ``x`` coloured by ``groups`` (e.g. ROI names), with Pearson r.

    Every finite point is drawn unless ``max_points`` is given; then that many, chosen at
    random (seed 0), and the figure says so (r is always over every point).
    """
    plt = _plt()
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise InputError(f"x and y: shapes differ, {x.shape} vs {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    groups = np.asarray(groups if groups is not None else np.full(x.shape, "all"), dtype=str)
    idx = np.flatnonzero(ok)
    n_finite = idx.size
    if max_points is not None and idx.size > max_points:  # deterministic thinning
        idx = np.sort(np.random.default_rng(0).choice(idx, max_points, replace=False))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for g in dict.fromkeys(groups[idx]):
        sel = idx[groups[idx] == g]
        label = ROI_LABELS.get(g, g)
        ax.scatter(x[sel], y[sel], s=4, alpha=0.5, label=label, color=ROI_COLOURS.get(g))
    r = np.corrcoef(x[ok], y[ok])[0, 1] if ok.sum() > 2 else np.nan
    lo = np.nanmin([x[ok].min(), y[ok].min()]) if ok.any() else 0
    hi = np.nanmax([x[ok].max(), y[ok].max()]) if ok.any() else 1
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (r = {r:.2f})" if title else f"r = {r:.2f}")
    ax.legend(fontsize=7, markerscale=3, frameon=False)
    if idx.size < n_finite:  # never thinned silently
        ax.text(
            0.99,
            0.01,
            f"{idx.size:,} of {n_finite:,} points drawn (at random); r over all",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
        )
    return fig


#: the held-out metric drawn for each network target: (column, axis label)
_CURVE_METRIC = {
    "mpnet": ("val_cosine", "held-out cosine similarity\n(higher is better)"),
    "multihot": ("val_loss", "held-out binary cross-entropy\n(lower is better)"),
}


def training_curves_figure(curves, *, title: str = "Training"):
    """Held-out metric per epoch: one panel per target, each network (solid) with its
    shuffled-target control (dashed).

    ``curves``: ``tables/training_curves.csv`` (``network``, ``target``, ``training``,
    ``epochs_done``, ``train_loss``, ``val_loss``, ``val_cosine``). The metric is the held-out
    cosine similarity for caption embeddings and the held-out binary cross-entropy for
    categories. A table without ``target`` (older runs) is drawn as training loss and held-out
    cosine per epoch.
    """
    plt = _plt()
    if "target" not in curves or "epochs_done" not in curves:
        return _training_curves_legacy(curves, title=title)
    targets = list(dict.fromkeys(curves["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.8 * len(targets), 3.6), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        col, label = _CURVE_METRIC.get(target, _CURVE_METRIC["mpnet"])
        df = curves[curves["target"] == target]
        for i, (name, d) in enumerate(df.groupby("network", sort=False)):
            control = str(d["training"].iloc[0]) != "trained" if "training" in d else False
            d = d.sort_values("epochs_done")
            ax.plot(
                d["epochs_done"], d[col], marker="o", ms=3, ls="--" if control else "-",
                color="0.5" if control else f"C{i}",
                label=f"{name} ({d['training'].iloc[0]})" if "training" in d else name,
            )  # fmt: skip
        ax.set_xlabel("epochs done")
        ax.set_ylabel(label)
        ax.set_title(target, fontsize=10)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _training_curves_legacy(curves, *, title: str):
    """Loss and held-out cosine per epoch, one line per network (a table of an older run)."""
    plt = _plt()
    has_val = "val_cosine" in curves and curves["val_cosine"].notna().any()
    fig, axes = plt.subplots(
        1, 2 if has_val else 1, figsize=(10 if has_val else 5, 3.6), squeeze=False
    )
    for name, df in curves.groupby("network", sort=False):
        axes[0, 0].plot(df["epoch"], df["train_loss"], marker="o", ms=3, label=name)
        if has_val:
            axes[0, 1].plot(df["epoch"], df["val_cosine"], marker="o", ms=3, label=name)
    axes[0, 0].set_xlabel("epoch")
    axes[0, 0].set_ylabel("training loss")
    axes[0, 0].legend(fontsize=8, frameon=False)
    if has_val:
        axes[0, 1].set_xlabel("epoch")
        axes[0, 1].set_ylabel("held-out cosine similarity")
    fig.suptitle(title)
    return fig


def histogram_figure(
    values: Mapping[str, np.ndarray],
    *,
    xlabel: str = "",
    title: str = "",
    reference: float | None = None,
):
    """Overlaid histograms (e.g. decoding scores per subject), optional reference line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, v in values.items():
        v = np.asarray(v, dtype=float)
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(v, bins=20, histtype="step", label=name, density=True)
    if reference is not None:
        ax.axvline(reference, color="k", ls="--", lw=1, label="ceiling")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title)
    return fig


__all__ = [
    "figure_to_base64",
    "histogram_figure",
    "model_comparison_figure",
    "roi_bar_figure",
    "scatter_figure",
    "significance_threshold",
    "significant_pairs",
    "surface_map_figure",
    "surface_vmax",
    "training_curves_figure",
]
