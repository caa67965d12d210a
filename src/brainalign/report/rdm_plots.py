"""Figures of RDM studies (``[data] kind = "rdms"``), each a plain function returning a Figure.

* :func:`ordered_rdms_figure` — RDMs with the stimuli ordered by category, category bounds drawn,
  one colour bar, every RDM in a grid that grows with them;
* :func:`mds_figure` — a 2-D MDS of an RDM with the stimulus images (framed in their category's
  colour) or coloured dots;
* :func:`model_scores_figure` — model scores with confidence intervals and the noise-ceiling band;
* :func:`layer_profile_figure` — score per layer of a network, one line per ROI, with ceilings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from brainalign.errors import InputError
from brainalign.report.plots import _plt, plain_text


def category_colours(categories: Sequence[str]) -> dict[str, tuple]:
    """One colour per category (tab10 / tab20 in order of first appearance)."""
    plt = _plt()
    names = list(dict.fromkeys(categories))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {c: cmap(i % cmap.N) for i, c in enumerate(names)}


def _ranked_square(rdm: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    rdm = np.asarray(rdm, dtype=np.float64)
    square = squareform(rdm, checks=False) if rdm.ndim == 1 else rdm
    iu = np.triu_indices_from(square, 1)
    out = np.zeros_like(square)
    out[iu] = rankdata(square[iu]) / len(iu[0])
    return out + out.T


def ordered_rdms_figure(
    rdms: Mapping[str, np.ndarray],
    order: Sequence[int] | None = None,
    categories: Sequence[str] | None = None,
    *,
    title: str = "",
    ncols: int | None = None,
    colorbar_label: str = "dissimilarity (percentile)",
):
    """RDMs (condensed or square) with rows and columns in ``order``, rank-transformed for
    display (percentiles), lines between categories, a colour strip per category and one
    colour bar for all (every panel is on the same 0–100 percentile scale).

    Parameters
    ----------
    rdms : mapping of str to array
        Every RDM is drawn; the grid grows with their number (``ncols`` columns, default up to
        6), so none is left out.
    order : sequence of int, optional
        Display order of the stimuli (default: file order).
    categories : sequence of str, optional
        The stimuli's categories in file order (None: no bounds).
    """
    plt = _plt()
    if not rdms:
        raise InputError("rdms: nothing to plot")
    n_stim = _ranked_square(next(iter(rdms.values()))).shape[0]
    order = np.arange(n_stim) if order is None else np.asarray(order, dtype=np.int64)
    cats = None if categories is None else [categories[i] for i in order]
    colours = category_colours(cats) if cats else {}
    n = len(rdms)
    # at most 6 a row, rows filled evenly (7 RDMs: 4 + 3, not 6 + 1)
    ncols = min(ncols or int(np.ceil(n / np.ceil(n / 6))), n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.9 * ncols + 0.9, 3.0 * nrows + 0.4), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    bounds = [i for i in range(1, len(order)) if cats and cats[i] != cats[i - 1]]
    image = None
    for ax, (name, rdm) in zip(axes.ravel(), rdms.items(), strict=False):
        sq = _ranked_square(rdm)[np.ix_(order, order)] * 100
        image = ax.imshow(sq, cmap="viridis", interpolation="nearest", vmin=0, vmax=100)
        for b in bounds:
            ax.axhline(b - 0.5, color="w", lw=0.6)
            ax.axvline(b - 0.5, color="w", lw=0.6)
        if cats:
            strip = np.array([colours[c] for c in cats])[None]
            ax.imshow(
                strip,
                extent=(
                    -0.5,
                    len(order) - 0.5,
                    len(order) + 0.03 * len(order) + 1,
                    len(order) - 0.5,
                ),
                aspect="auto",
            )
            ax.set_ylim(len(order) + 0.03 * len(order) + 1, -0.5)
        ax.set_title(name, fontsize=9)
    if cats:
        handles = [
            plt.Line2D([], [], marker="s", ls="", color=colours[c], label=c) for c in colours
        ]
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=min(8, len(colours)),
            fontsize=8,
            frameon=False,
        )
    if title:
        fig.suptitle(title)
    plain_text(fig)  # names are drawn as written, never as TeX (before layout draws)
    legend_rows = int(np.ceil(len(colours) / 8)) if cats else 0
    fig.tight_layout(rect=(0, 0.035 * legend_rows / max(nrows, 1) * 2, 0.93, 0.95))
    cax = fig.add_axes((0.945, 0.25, 0.012, 0.5), label="<colorbar>")
    fig.colorbar(image, cax=cax).set_label(colorbar_label, fontsize=8)
    return fig


def primary_categories(multi_hot: np.ndarray, names: Sequence[str]) -> list[str]:
    """One category per stimulus from multi-hot labels (COCO images have several): of its
    labels, the one most frequent among these stimuli, so the groups drawn are large;
    ``"(none)"`` for a stimulus without labels."""
    M = np.asarray(multi_hot) > 0
    if M.ndim != 2 or M.shape[1] != len(names):
        raise InputError(f"multi_hot: expected (n, {len(names)}), got {M.shape}")
    freq = M.sum(axis=0)
    out = []
    for row in M:
        if row.any():
            out.append(str(names[int(np.argmax(np.where(row, freq, -1)))]))
        else:
            out.append("(none)")
    return out


def category_order(categories: Sequence[str]) -> np.ndarray:
    """Stimulus order grouping ``categories`` (largest group first, then by name; stable within
    a group, so the stimuli keep their file order there)."""
    cats = list(categories)
    counts = {c: cats.count(c) for c in set(cats)}
    rank = {c: i for i, c in enumerate(sorted(counts, key=lambda c: (-counts[c], c)))}
    return np.argsort([rank[c] for c in cats], kind="stable")


def mds_figure(
    coords: np.ndarray,
    categories: Sequence[str] | None = None,
    thumbnails: np.ndarray | None = None,
    *,
    title: str = "",
    zoom: float = 0.45,
):
    """Stimuli at their 2-D MDS coordinates: the images framed in their category's colour
    (``thumbnails`` uint8 (n, h, w, 3)) or coloured dots."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    plt = _plt()
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise InputError(f"coords: expected (n, 2), got {coords.shape}")
    cats = list(categories) if categories is not None else ["stimulus"] * len(coords)
    colours = category_colours(cats)
    fig, ax = plt.subplots(figsize=(8, 7))
    for c in colours:
        sel = [i for i, x in enumerate(cats) if x == c]
        ax.scatter(coords[sel, 0], coords[sel, 1], s=30, color=colours[c], label=c)
    if thumbnails is not None:
        for i, (x, y) in enumerate(coords[:, :2]):
            box = AnnotationBbox(
                OffsetImage(thumbnails[i], zoom=zoom),
                (x, y),
                frameon=True,
                pad=0.1,
                bboxprops={"edgecolor": colours[cats[i]], "lw": 2},
            )
            ax.add_artist(box)
    span = np.ptp(coords[:, :2], axis=0).max() or 1.0
    ax.set_xlim(coords[:, 0].min() - 0.08 * span, coords[:, 0].max() + 0.08 * span)
    ax.set_ylim(coords[:, 1].min() - 0.08 * span, coords[:, 1].max() + 0.08 * span)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if categories is not None:
        ax.legend(fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    if title:
        ax.set_title(title)
    return fig


def model_scores_figure(
    scores,
    *,
    ceiling: tuple[float, float] | None = None,
    title: str = "",
    ylabel: str = "",
    highlight: Sequence[str] = (),
):
    """Bars of model scores with CI whiskers; the noise ceiling (lower–upper) as a grey band.

    ``scores``: DataFrame with ``label``, ``score``, ``ci_low``, ``ci_high`` (in plot order);
    labels in ``highlight`` are drawn in a stronger colour.
    """
    plt = _plt()
    if scores is None or not len(scores):
        raise InputError("scores: nothing to plot")
    n = len(scores)
    fig, ax = plt.subplots(figsize=(min(16, max(6, 0.42 * n + 2)), 4.4))
    x = np.arange(n)
    s = scores["score"].to_numpy(float)
    lo = s - scores["ci_low"].to_numpy(float)
    hi = scores["ci_high"].to_numpy(float) - s
    colours = ["#d62728" if lab in highlight else "#4c72b0" for lab in scores["label"]]
    if ceiling is not None and np.all(np.isfinite(ceiling)):
        ax.axhspan(ceiling[0], ceiling[1], color="0.7", alpha=0.45, zorder=0, label="noise ceiling")
    ax.bar(x, s, 0.75, color=colours, yerr=np.vstack([lo, hi]), capsize=2, zorder=2)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, list(scores["label"]), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if ceiling is not None:
        ax.legend(fontsize=8, frameon=False, loc="upper left")
    if title:
        ax.set_title(title, fontsize=11)
    plain_text(fig)  # names are drawn as written, never as TeX (before layout draws)
    fig.tight_layout()
    return fig


def layer_profile_figure(
    profiles,
    *,
    ceilings: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    ylabel: str = "",
):
    """Score per layer (x, in order), one line per ROI with its CI band and dashed ceilings.

    ``profiles``: DataFrame with ``roi``, ``layer``, ``score``, ``ci_low``, ``ci_high``.
    """
    plt = _plt()
    if profiles is None or not len(profiles):
        raise InputError("profiles: nothing to plot")
    layers = list(dict.fromkeys(profiles["layer"]))
    fig, ax = plt.subplots(figsize=(min(14, max(6, 0.38 * len(layers) + 2)), 4.2))
    cmap = plt.get_cmap("tab10")
    for j, (roi, d) in enumerate(profiles.groupby("roi", sort=False)):
        pos = [layers.index(layer) for layer in d["layer"]]
        ax.plot(pos, d["score"], "-o", ms=3, color=cmap(j), label=roi)
        ax.fill_between(pos, d["ci_low"], d["ci_high"], color=cmap(j), alpha=0.2)
        if ceilings and roi in ceilings:
            ax.axhline(ceilings[roi][0], color=cmap(j), ls="--", lw=0.8)
        best = int(np.argmax(d["score"].to_numpy()))
        ax.plot(pos[best], d["score"].to_numpy()[best], "*", ms=12, color=cmap(j))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=11)
    plain_text(fig)  # names are drawn as written, never as TeX (before layout draws)
    fig.tight_layout()
    return fig


__all__ = [
    "category_colours",
    "category_order",
    "layer_profile_figure",
    "mds_figure",
    "model_scores_figure",
    "ordered_rdms_figure",
    "primary_categories",
]
