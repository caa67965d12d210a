"""The virtual NSD's check: does the best model of each ROI carry the representation planted there?"""

from __future__ import annotations

import numpy as np

#: Which models carry each representation planted by the virtual NSD
#: (``datasets/_scene_representations.py`` says how each is computed). ``@vision`` stands for
#: the pretrained vision models of the zoo.
EXPECTED = {
    # retinotopic luminance and colour on an 8×8 grid of the rendered image: only a model that
    # sees pixels and keeps their layout carries it; the trained networks' last layer is trained
    # toward a caption embedding or categories, so it is expected to have discarded it
    "lowlevel": {"@vision"},
    # category counts, areas, colours and sizes: the category models, the caption nouns (which
    # name the categories) and the network trained to output the categories
    "objects": {
        "multihot",
        "mpnet_category_all",
        "glove_categories",
        "fasttext_categories",
        "mpnet_nouns",
        "glove_nouns",
        "fasttext_nouns",
        "net_multihot",
    },
    # who does what to whom: only whole-caption embeddings bind agent, action and patient (verbs
    # alone lose the roles); the network trained toward MPNet is not expected to beat MPNet
    # itself: a network that does so on its training images has memorised them
    "events": {"mpnet", "minilm", "sentence_encoder"},
    # 6×6 object occupancy, horizon, relations, spread, count: the occupancy and horizon are
    # image geometry (pretrained vision models keep them), the relations are said in whole
    # captions
    "layout": {"mpnet", "minilm", "sentence_encoder", "@vision"},
}


def _expected(reps: dict, vision: set[str]) -> set[str]:
    """Models expected to win given the planted weights (the strongest representations)."""
    top = max(reps.values()) if reps else 0
    out: set[str] = set()
    for name, weight in reps.items():
        if weight >= top:
            out |= EXPECTED.get(name, set())
    if "@vision" in out:
        out = (out - {"@vision"}) | vision
    return out


def ground_truth(plan, data, group, table) -> list[dict]:
    """One row per ROI with planted representations: the best model, the runner-up, the margin
    with its paired test, and whether the best model carries what was planted.

    Parameters
    ----------
    plan : Plan
    data : Result
        The virtual NSD task's result (``truth_rois``).
    group : pandas.DataFrame
        The ROI RSA group table (``roi``, ``model``, ``mean``).
    table : pandas.DataFrame
        The per-subject table (``subject``, ``roi``, ``model`` and the group's value column).
    """
    from brainalign.stats import paired_t

    rois = data.get("truth_rois") if hasattr(data, "get") else None
    if plan.config.data.kind != "virtual" or not rois:
        return []
    vision = {m.name for m in plan.models if m.vision and not m.name.startswith("net_")}
    value = "r_norm" if table["r_norm"].notna().any() else "r"
    rows = []
    for roi, info in rois.items():
        reps = info.get("representations", {})
        g = group[group["roi"] == roi].sort_values("mean", ascending=False)
        if g.empty:
            continue
        best, second = g.iloc[0], g.iloc[1] if len(g) > 1 else None
        expected = _expected(reps, vision)
        row = {
            "roi": roi,
            "planted": " + ".join(f"{k} ({v:g})" for k, v in reps.items()),
            "best_feature_space": str(best["model"]),
            "best_score": float(best["mean"]),
            "expected": ", ".join(sorted(expected)) or "(no model carries it)",
            "agreement": "yes" if best["model"] in expected else "no",
        }
        if second is not None:
            wide = table[table["roi"] == roi].pivot(index="subject", columns="model", values=value)
            a, b = wide[best["model"]].to_numpy(), wide[second["model"]].to_numpy()
            ok = np.isfinite(a) & np.isfinite(b)
            t, p = (
                paired_t(a[ok][:, None], b[ok][:, None]) if ok.sum() > 1 else ([np.nan], [np.nan])
            )
            row.update(
                {
                    "runner_up": str(second["model"]),
                    "runner_up_score": float(second["mean"]),
                    "margin": float(best["mean"] - second["mean"]),
                    "margin_t": float(t[0]),
                    "margin_p": float(p[0]),
                }
            )
        rows.append(row)
    return rows


__all__ = ["EXPECTED", "ground_truth"]
