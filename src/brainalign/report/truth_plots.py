"""The virtual NSD's ground-truth figure: measured ROI RSA scores against the planted oracle.

The oracle (:mod:`brainalign.pipeline.truth`) is each model's RSA with the ROI's noiseless
planted responses; a measurement that recovers the truth puts the models in the same order
along both axes (and, with noise-ceiling-normalised scores, near the identity line).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.report.html import img_html
from brainalign.report.plots import _plt, figure_to_base64


def truth_scatter_figure(scores: pd.DataFrame, checks: pd.DataFrame | None = None, ncols: int = 4):
    """One panel per ROI: each model's measured group score (y) against its oracle score (x).

    Parameters
    ----------
    scores : pandas.DataFrame
        ``tables/ground_truth_scores.csv``: ``roi``, ``model``, ``measured``, ``measured_sem``,
        ``oracle``, ``oracle_sem`` and ``value`` (``r_norm`` or ``r``, the measured column).
    checks : pandas.DataFrame, optional
        ``tables/ground_truth.csv`` (``roi``, ``rank_rho``, ``rank_ci_low``, ``rank_ci_high``,
        ``measured_best``, ``oracle_best``, ``agreement``) for the panels' titles.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    rois = list(dict.fromkeys(scores["roi"]))
    ncols = max(1, min(ncols, len(rois)))
    nrows = int(np.ceil(len(rois) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.4 * nrows), squeeze=False)
    by_roi = {} if checks is None else {r["roi"]: r for _, r in checks.iterrows()}
    value = str(scores["value"].iloc[0]) if "value" in scores and len(scores) else "r"
    for ax, roi in zip(axes.ravel(), rois, strict=False):
        _panel(ax, scores[scores["roi"] == roi], by_roi.get(roi), roi)
        ax.set_xlabel("oracle r (noiseless planted RDM)")
        ax.set_ylabel("measured " + ("r / noise ceiling" if value == "r_norm" else "r"))
    for ax in axes.ravel()[len(rois) :]:
        ax.set_visible(False)
    fig.suptitle("Measured vs oracle ROI RSA (one point per model; dashed: identity)")
    fig.tight_layout()
    return fig


def _panel(ax, d: pd.DataFrame, check, roi: str) -> None:
    """One ROI: points with SEM bars, model names, identity line; best models marked."""
    x, y = d["oracle"].to_numpy(float), d["measured"].to_numpy(float)
    ax.errorbar(
        x,
        y,
        xerr=d["oracle_sem"].to_numpy(float),
        yerr=d["measured_sem"].to_numpy(float),
        fmt="o",
        ms=4,
        color="0.3",
        ecolor="0.7",
        lw=0.8,
    )
    for xi, yi, name in zip(x, y, d["model"], strict=True):
        ax.annotate(str(name), (xi, yi), fontsize=6, xytext=(3, 2), textcoords="offset points")
    finite = np.concatenate([x, y])
    finite = finite[np.isfinite(finite)]
    if finite.size:
        lo, hi = min(0.0, finite.min()), max(finite.max(), 0.05)
        pad = 0.05 * (hi - lo)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="0.6", lw=0.8)
    title = roi
    if check is not None:
        # the best models: measured (red ring) and the oracle's (blue square)
        for name, style in ((check["measured_best"], "ro"), (check["oracle_best"], "bs")):
            hit = d["model"] == name
            ax.plot(x[hit.to_numpy()], y[hit.to_numpy()], style, mfc="none", ms=9)
        rho = check.get("rank_rho", np.nan)
        ci = (check.get("rank_ci_low", np.nan), check.get("rank_ci_high", np.nan))
        title = f"{roi}: ρ = {rho:.2f} [{ci[0]:.2f}, {ci[1]:.2f}], agrees: {check['agreement']}"
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)


def truth_section(run) -> str:
    """The report's ground-truth figure and how to read it ("" without the tables)."""
    scores = run.table("ground_truth_scores")
    if scores is None or not len(scores):
        return ""
    checks = run.table("ground_truth")
    caption = (
        "Oracle: each model's RSA with the ROI's noiseless planted responses (rebuilt from the "
        "virtual NSD's seed), on the same images, subsets and units as the measurement. A ROI "
        "agrees when Spearman's ρ over models (95 % bootstrap-over-subjects interval) is above "
        "0 and the measured best model (red ring) is the oracle's best (blue square) or not "
        "significantly better than it (paired t-test over subjects, p ≥ 0.05). The table "
        "above (ground truth) gives every number and, for a ROI that does not agree, why."
    )
    return img_html(figure_to_base64(truth_scatter_figure(scores, checks)), caption)


__all__ = ["truth_scatter_figure", "truth_section"]
