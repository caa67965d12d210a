"""Figures of the report, each a plain function returning a matplotlib ``Figure``.

Surface maps use nilearn's fsaverage5 meshes (shipped with nilearn, no download): the inflated
surface (lateral and medial, both hemispheres) and the flat patches. Maps on full fsaverage are
shown on fsaverage5 by keeping the first 10,242 vertices of each hemisphere (fsaverage5 is the
first 10,242 vertices of fsaverage).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

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


def _fsaverage5():
    from nilearn import datasets

    return datasets.fetch_surf_fsaverage("fsaverage5")


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
    """
    plt = _plt()
    from matplotlib import cm, colors
    from nilearn import plotting

    fs = _fsaverage5()
    data = {"left": _to_fsaverage5(lh, "lh"), "right": _to_fsaverage5(rh, "rh")}
    if significant is not None:
        for hemi, mask in zip(("left", "right"), significant, strict=True):
            mask = _to_fsaverage5(np.asarray(mask, dtype=float), f"significant[{hemi}]") > 0
            data[hemi] = np.where(mask, data[hemi], 0.0)
    if vmax is None:
        vmax = surface_vmax(data["left"], data["right"])
    vmax = vmax if vmax > 0 else 1.0
    thr = 1e-12 if significant is not None else (threshold or 1e-12)
    fig = plt.figure(figsize=(13, 6.2))
    panels = [
        ("left", "infl", "lateral", (0.00, 0.50, 0.23, 0.45)),
        ("left", "infl", "medial", (0.23, 0.50, 0.23, 0.45)),
        ("right", "infl", "medial", (0.46, 0.50, 0.23, 0.45)),
        ("right", "infl", "lateral", (0.69, 0.50, 0.23, 0.45)),
        ("left", "flat", (90, 270), (0.05, 0.02, 0.40, 0.46)),
        ("right", "flat", (90, 270), (0.48, 0.02, 0.40, 0.46)),
    ]
    for hemi, kind, view, rect in panels:
        ax = fig.add_axes(rect, projection="3d")
        values = np.nan_to_num(data[hemi], nan=0.0)
        plotting.plot_surf_stat_map(
            fs[f"{kind}_{hemi}"],
            values,
            hemi=hemi,
            view=view,
            bg_map=fs[f"sulc_{hemi}"],
            threshold=thr,
            vmax=vmax,
            cmap=cmap,
            colorbar=False,
            axes=ax,
            figure=fig,
            symmetric_cbar=symmetric,
        )
        label = f"{'LH' if hemi == 'left' else 'RH'} {kind if kind == 'flat' else view}"
        ax.set_title(label, fontsize=9, y=0.92 if kind == "infl" else 0.98)
    cax = fig.add_axes((0.93, 0.2, 0.015, 0.6))
    norm = colors.Normalize(vmin=-vmax if symmetric else 0.0, vmax=vmax)
    cb = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=plt.get_cmap(cmap)), cax=cax)
    cb.set_label(colorbar_label)
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


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


def rdm_figure(rdms: Mapping[str, np.ndarray], *, title: str = "", ncols: int = 4):
    """RDM images (rank-transformed for display), condensed or square inputs."""
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    plt = _plt()
    if not rdms:
        raise InputError("rdms: nothing to plot")
    n = len(rdms)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, rdm) in zip(axes.ravel(), rdms.items(), strict=False):
        rdm = np.asarray(rdm, dtype=np.float64)
        square = squareform(rdm, checks=False) if rdm.ndim == 1 else rdm
        iu = np.triu_indices_from(square, 1)
        ranked = np.zeros_like(square)
        ranked[iu] = rankdata(square[iu]) / len(iu[0])
        ranked = ranked + ranked.T
        ax.imshow(ranked, cmap="viridis", interpolation="nearest")
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def scatter_figure(
    x: np.ndarray,
    y: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    max_points: int = 20000,
):
    """Scatter of ``y`` against ``x`` coloured by ``groups`` (e.g. ROI names), with Pearson r."""
    plt = _plt()
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise InputError(f"x and y: shapes differ, {x.shape} vs {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    groups = np.asarray(groups if groups is not None else np.full(x.shape, "all"), dtype=str)
    idx = np.flatnonzero(ok)
    if idx.size > max_points:  # deterministic thinning keeps the figure small
        idx = np.random.default_rng(0).choice(idx, max_points, replace=False)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for g in dict.fromkeys(groups[idx]):
        sel = idx[groups[idx] == g]
        ax.scatter(x[sel], y[sel], s=4, alpha=0.5, label=g, color=ROI_COLOURS.get(g))
    r = np.corrcoef(x[ok], y[ok])[0, 1] if ok.sum() > 2 else np.nan
    lo = np.nanmin([x[ok].min(), y[ok].min()]) if ok.any() else 0
    hi = np.nanmax([x[ok].max(), y[ok].max()]) if ok.any() else 1
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (r = {r:.2f})" if title else f"r = {r:.2f}")
    ax.legend(fontsize=7, markerscale=3, frameon=False)
    return fig


def training_curves_figure(curves, *, title: str = "Training"):
    """Loss and validation cosine per epoch, one line per network.

    ``curves``: DataFrame with columns ``network``, ``epoch``, ``train_loss`` and optionally
    ``val_cosine``.
    """
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
    "rdm_figure",
    "roi_bar_figure",
    "scatter_figure",
    "surface_map_figure",
    "surface_vmax",
    "training_curves_figure",
]
