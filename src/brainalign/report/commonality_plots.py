"""Figures of the RDM commonality analysis: unique and common variance per ROI."""

from __future__ import annotations

import numpy as np

from brainalign.report.plots import _plt


def commonality_bar_figure(parts, title: str = ""):
    """Grouped bars of each part (unique per model, common per set of models) in each ROI.

    Parameters
    ----------
    parts : pandas.DataFrame
        Rows of ``tables/weighted_rsa_commonality.csv``: ``roi``, ``part``, ``estimate``,
        ``ci_low``, ``ci_high`` (the ``total`` rows are drawn as a line per ROI).
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        Error bars are the bootstrap intervals.
    """
    plt = _plt()
    rois = list(dict.fromkeys(parts["roi"]))
    names = [p for p in dict.fromkeys(parts["part"]) if p != "total"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(rois) * (1 + 0.25 * len(names))), 3.6))
    width = 0.8 / max(len(names), 1)
    cmap = plt.get_cmap("tab10")
    for j, name in enumerate(names):
        sel = parts[parts["part"] == name].set_index("roi").reindex(rois)
        est = sel["estimate"].to_numpy(float)
        lo = est - sel["ci_low"].to_numpy(float)
        hi = sel["ci_high"].to_numpy(float) - est
        err = np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)])
        x = np.arange(len(rois)) - 0.4 + width * (j + 0.5)
        ax.bar(x, est, width, yerr=err, capsize=2, color=cmap(j % 10), label=name)
    total = parts[parts["part"] == "total"].set_index("roi").reindex(rois)
    if len(total):
        for i, v in enumerate(total["estimate"].to_numpy(float)):
            ax.hlines(v, i - 0.42, i + 0.42, colors="k", linestyles=":", linewidth=1)
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set_xticks(np.arange(len(rois)))
    ax.set_xticklabels(rois)
    ax.set_ylabel("R² of the ROI RDM")
    ax.set_title(title or "RDM commonality: unique and common variance (dotted: total R²)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


__all__ = ["commonality_bar_figure"]
