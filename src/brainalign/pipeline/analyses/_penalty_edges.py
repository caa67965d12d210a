"""Edges of a ridge penalty grid, shared by the encoding and decoding analyses: a table per
subject of the fitted targets that chose the smallest or the largest candidate, and a run
warning (``run.json`` and the report) naming the config key that widens the grid."""

from __future__ import annotations

import numpy as np

from brainalign.encoding.ridge import EDGE_WARN_FRACTION


def edge_record(model) -> dict:
    """What a stage keeps of a fitted ridge model (``RidgeEncoder`` / ``EmbeddingDecoder``):
    the fitted targets, how many chose each end of the grid, and the grid."""
    n_fitted = int(np.sum(~model.nan_targets_ & ~model.constant_targets_))
    return {
        # fitted targets, and how many chose the smallest / largest alpha (fracridge: fraction)
        "alpha_edges": np.array([n_fitted, *model.edge_counts_], dtype=np.int64),
        # whether a value beyond each end could change a fit (not where the end saturates)
        "edges_open": np.asarray(model.edges_open_, dtype=bool),
        "candidates": np.asarray(model.candidates_, dtype=np.float64),
    }


def edges_table(subjects, alpha_edges, candidates, mode: str, edges_open=None):
    """Per subject: fitted targets, how many chose the smallest / largest candidate penalty,
    and whether a value beyond that end could change a fit.

    Parameters
    ----------
    subjects : sequence of int
    alpha_edges : (n_subjects, 3) int array
        ``[n_fitted, n_smallest, n_largest]`` per subject (:func:`edge_record`).
    candidates : array
        The grid (alphas, or fracridge's fractions).
    mode : str
        ``"fracridge"`` names the columns after fractions, anything else after alphas.
    edges_open : (n_subjects, 2) bool array, optional
        :attr:`~brainalign.encoding.RidgeResult.edges_open` per subject (default: open).
    """
    import pandas as pd

    what = "fraction" if mode == "fracridge" else "alpha"
    cand = np.asarray(candidates, dtype=np.float64)
    lo, hi = (float(cand.min()), float(cand.max())) if cand.size else (np.nan, np.nan)
    alpha_edges = np.asarray(alpha_edges)
    if edges_open is None:
        edges_open = np.ones((len(alpha_edges), 2), bool)
    rows = []
    for s, (n_fit, n_lo, n_hi), (o_lo, o_hi) in zip(
        subjects, alpha_edges, np.asarray(edges_open, bool), strict=True
    ):
        rows.append(
            {
                "subject": int(s),
                "n_fitted": int(n_fit),
                f"n_smallest_{what}": int(n_lo),
                f"n_largest_{what}": int(n_hi),
                f"smallest_{what}": lo,
                f"largest_{what}": hi,
                "smallest_open": bool(o_lo),
                "largest_open": bool(o_hi),
            }
        )
    return pd.DataFrame(rows)


def warn_edges(ctx, edges, analysis: str, targets: str) -> None:
    """A run warning per subject with many targets at an open edge of the penalty grid (as the
    ridge solver's own warning: more than ``EDGE_WARN_FRACTION`` of the fitted targets, at an
    end beyond which a fit could still change), naming the config key to change:
    ``analyses.<analysis>.alphas`` (``.mode`` for fracridge's fixed fractions)."""
    what = "fraction" if "n_smallest_fraction" in edges else "alpha"
    key = f"analyses.{analysis}." + ("alphas" if what == "alpha" else "mode")
    fix = (
        f"widen {key} (smaller and larger values)"
        if what == "alpha"
        else f'set {key} = "per_target" to choose a penalty per target from a grid'
    )
    for r in edges.to_dict("records"):  # records keep each column's type (counts stay ints)
        limit = EDGE_WARN_FRACTION * r["n_fitted"]
        ends = [
            f"{r[f'n_{end}_{what}']} of {r['n_fitted']} {targets} chose the {end} {what} "
            f"({r[f'{end}_{what}']:g})"
            for end in ("smallest", "largest")
            if r[f"n_{end}_{what}"] > limit and r.get(f"{end}_open", True)
        ]
        if ends:
            ctx.warn(
                f"{analysis}, subject {r['subject']}",
                "; ".join(ends) + f": their best penalty may lie outside the grid; {fix}",
                key,
            )
