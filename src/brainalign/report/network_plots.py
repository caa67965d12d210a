"""Figures of the trained networks beside their training curves (``plots.training_curves_figure``).

* :func:`transfer_figure` — the paper's Fig. 4b: held-out cosine of a linear readout from each
  frozen network toward each target, with the floor of each.
"""

from __future__ import annotations

import numpy as np

from brainalign.errors import InputError
from brainalign.report.plots import _plt, plain_text

_COLUMNS = ("network", "seed", "target", "cosine", "floor")


def transfer_figure(table, *, title: str = "Transfer readouts (Fig. 4b)"):
    """Bars per network, one per readout target: the mean held-out cosine over seeds (dots:
    the seeds), with the floor (the mean training target's cosine) drawn as a black line.

    Parameters
    ----------
    table : DataFrame
        ``tables/transfer.csv``: ``network``, ``seed`` (a seed, or ``"mean"`` for a group row,
        which is recomputed here from the seeds), ``target``, ``cosine``, ``floor``.

    Returns
    -------
    matplotlib Figure
    """
    missing = [c for c in _COLUMNS if c not in table]
    if missing:
        raise InputError(f"table: expected the columns of tables/transfer.csv; missing {missing}")
    seeds = table[table["seed"].astype(str) != "mean"]
    if not len(seeds):
        raise InputError("table: no per-seed row to draw")
    plt = _plt()
    networks = list(dict.fromkeys(seeds["network"]))
    targets = list(dict.fromkeys(seeds["target"]))
    width = 0.8 / len(targets)
    fig, ax = plt.subplots(figsize=(1.2 + 1.4 * len(networks) * len(targets) / 2 + 1.5, 3.2))
    for j, target in enumerate(targets):
        for i, network in enumerate(networks):
            d = seeds[(seeds["network"] == network) & (seeds["target"] == target)]
            if not len(d):
                continue
            x = i + (j - (len(targets) - 1) / 2) * width
            ax.bar(x, d["cosine"].mean(), width * 0.9, color=f"C{j}",
                   label=f"→ {target}" if i == 0 else None)  # fmt: skip
            ax.scatter(np.full(len(d), x), d["cosine"], s=8, color="0.2", zorder=3)
            floor = d["floor"].mean()
            ax.hlines(floor, x - width * 0.45, x + width * 0.45, colors="k", lw=2, zorder=4,
                      label="floor" if i == 0 and j == 0 else None)  # fmt: skip
    ax.set_xticks(range(len(networks)))
    ax.set_xticklabels(networks)
    ax.set_ylabel("held-out cosine similarity")
    lo = float(np.nanmin(seeds[["cosine", "floor"]].to_numpy()))
    ax.set_ylim(min(0.0, lo - 0.05), 1.0)
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return plain_text(fig)


__all__ = ["transfer_figure"]
