"""The virtual NSD's check: does the best model of each ROI carry the representation planted there?"""

from __future__ import annotations

#: Which feature spaces match each planted representation of the virtual NSD (ground truth).
#: ``lowlevel`` is image content by retinotopic position: only image-computable models
#: (trained networks, the zoo) can carry it; ``objects`` are category identities; ``events`` are
#: agents, actions and who did what to whom, which only whole-caption embeddings hold; ``layout``
#: is spatial relations, again a property of whole captions (or prepositions).
EXPECTED = {
    "lowlevel": {"@vision"},
    "objects": {
        "multihot",
        "mpnet_category_all",
        "glove_categories",
        "fasttext_categories",
        "mpnet_nouns",
        "net_multihot",
    },
    "events": {"mpnet", "minilm", "sentence_encoder", "mpnet_verbs", "net_mpnet"},
    "layout": {"mpnet", "minilm", "sentence_encoder", "mpnet_prepositions", "net_mpnet"},
}


def ground_truth(plan, data, group) -> list[dict]:
    """One row per ROI with planted representations: the best model and whether it is expected.

    Parameters
    ----------
    plan : Plan
    data : Result
        The virtual NSD task's result (``truth_rois``).
    group : pandas.DataFrame
        The ROI RSA group table (``roi``, ``model``, ``mean``).
    """
    rois = data.get("truth_rois") if hasattr(data, "get") else None
    if plan.config.data.kind != "virtual" or not rois:
        return []
    vision = plan.vision_models
    rows = []
    for roi, info in rois.items():
        reps = info.get("representations", {})
        g = group[group["roi"] == roi]
        if g.empty:
            continue
        best = g.sort_values("mean", ascending=False).iloc[0]
        expected = set()
        top_weight = max(reps.values()) if reps else 0
        for rep_name, weight in reps.items():
            if weight >= top_weight:
                expected |= EXPECTED.get(rep_name, set())
        best_model = str(best["model"])
        ok = best_model in expected or ("@vision" in expected and best_model in vision)
        rows.append(
            {
                "roi": roi,
                "planted": " + ".join(f"{k} ({v:g})" for k, v in reps.items()),
                "best_feature_space": best_model,
                "best_score": float(best["mean"]),
                "expected": ", ".join(
                    sorted(e for e in expected if not e.startswith("@")) or ["a vision model"]
                ),
                "agreement": "yes" if ok else "no",
            }
        )
    return rows


__all__ = ["EXPECTED", "ground_truth"]
