"""The virtual NSD's check: do the ROI RSA scores rank the models as the planted signal does?

No expectation is written by hand. For every subject, model and ROI the **oracle score** is the
model RDM's correlation with the RDM of the ROI's *noiseless* planted responses
(:func:`brainalign.datasets.virtual_planted_signal`), computed by the same function as the
measurement (:func:`brainalign.rsa.roi_rsa`) on the same images, subsets, units, dissimilarity
and comparison method. Each ROI is then checked two ways:

- **rank agreement**: Spearman's ρ over models between the measured group scores and the oracle
  group scores, with a 95 % bootstrap-over-subjects interval (subjects resampled together for
  both, since both vary with the subject's images and voxel weights);
- **best model**: the measured best model is the oracle's best, or is statistically tied with
  it (paired t-test over subjects of measured(best) − measured(oracle's best), two-sided,
  α = 0.05). A tie within noise is agreement; a significant reversal is not.

A ROI agrees when its best model passes and the lower end of ρ's interval is above 0. Ranks
are only a test of the measurement where the truth has them: when the oracle itself does not
separate its best model from its worst (paired t-test over subjects, p ≥ α; e.g. no model
carries the planted representation), every order is as true as another and the rank check is
"untested" rather than failed (written so: a CSV reader takes "n/a" for a missing value).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from brainalign.datasets import virtual_planted_signal
from brainalign.pipeline.inputs import feature_rows, load_subject
from brainalign.rsa import roi_rsa
from brainalign.stats import paired_t
from brainalign.utils.arrays import RowView

#: significance level of the best-model reversal test (p < P_THRESHOLD; alpha is the ridge penalty)
P_THRESHOLD = 0.05
#: bootstrap resamples of subjects for ρ's interval
N_BOOT = 2000


# ------------------------------------------------------------------------------------ oracle
def oracle_scores(
    root,
    subject: int,
    image_ids,
    models: dict,
    rois: dict,
    *,
    subsets=None,
    method: str = "pearson",
    metric: str = "correlation",
    dtype: str = "float32",
) -> pd.DataFrame:
    """RSA of each model with the noiseless planted responses of each ROI of one subject.

    Parameters
    ----------
    root : path
        The virtual NSD.
    subject : int
    image_ids : array, shape (n_images,)
        The subject's images, in the rows' order of ``models`` and ``subsets``
        (``load_nsd(...).image_ids``).
    models : dict of name -> array (n_images, d)
        Feature matrices, as given to :func:`brainalign.rsa.roi_rsa`.
    rois : dict of name -> bool array (n_units,)
        For each ROI, which of its fsaverage vertices the measurement used (those with finite
        betas), in the ROI's column order; ``None`` keeps every vertex. An ROI whose labels no
        longer match the planted ROI (edited after the build) is left out, with a warning.
    subsets : array (n_subsets, size), optional
        The measurement's image subsets (row indices); None compares over all images.
    method, metric, dtype
        As the measurement's.

    Returns
    -------
    pandas.DataFrame, shape (n_rois, n_models)
        Index: ROI names; columns: model names.
    """
    blocks, units, start = [], {}, 0
    for roi, keep in rois.items():
        P = virtual_planted_signal(root, subject, image_ids, roi)  # (n_images, n_roi_units)
        if keep is not None:
            keep = np.asarray(keep, dtype=bool)
            if keep.shape != (P.shape[1],):
                # the ROI's labels were edited after the build: the planted truth no longer
                # describes the units measured, so this ROI has no oracle
                warnings.warn(
                    f"ground truth: ROI {roi!r} of subject {subject} has {keep.size} units but "
                    f"{P.shape[1]} were planted (its labels changed after the virtual NSD was "
                    "written); it is left out of the truth table",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            P = P[:, keep]
        blocks.append(P)
        units[roi] = np.arange(start, start + P.shape[1])
        start += P.shape[1]
    if not units:
        return pd.DataFrame(index=pd.Index([], name="roi"), columns=list(models), dtype=float)
    return roi_rsa(
        np.concatenate(blocks, axis=1),
        models,
        units,
        sampling="full" if subsets is None else "subsets",
        subsets=subsets,
        method=method,
        metric=metric,
        dtype=dtype,
    )


def pipeline_oracle(ctx, targets) -> pd.DataFrame:
    """The oracle score of every (subject, ROI, model) the ROI RSA measured, instances averaged.

    Reads, for each subject, exactly what its ``roi_rsa`` tasks read: the subject's images and
    finite units, the models' features, the subsets and the task's method, metric and dtype.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject``, ``roi``, ``model``, ``oracle``.
    """
    data = ctx.load(ctx.plan.data)
    root, planted = data["root"], set(data.get("truth_rois") or ())
    by_subject: dict = {}
    for t in targets["group"].deps.values():
        if t.stage == "roi_rsa":
            by_subject.setdefault(t.id.subject, []).append(t)
    rows = []
    for subject, tasks in sorted(by_subject.items()):
        params = tasks[0].params
        sub = load_subject(params, {"nsd_cache": ctx.extras.get("nsd_cache")})
        # the oracle lives on fsaverage vertices; in the volume, voxels copy their vertex's
        # signal, so there the oracle is the ROI's vertices (each once) and keeps them all
        surface = params["space"] == "fsaverage"
        rois = {
            r: _finite_units(sub, r) if surface else None
            for r in params["rois"]
            if r in sub.rois and r in planted  # nsdgeneral carries no planted representation
        }
        if not rois:
            continue
        models = {
            (t.id.model, t.id.instance): feature_rows(ctx.load(t.deps["model"]), sub.image_ids)
            for t in tasks
        }
        paper = params["sampling"] == "paper"
        subsets = np.asarray(ctx.load(tasks[0].deps["sampling"])["subsets"]) if paper else None
        names = {f"m{i}": key for i, key in enumerate(models)}  # roi_rsa wants string names
        scores = oracle_scores(
            root,
            subject,
            sub.image_ids,
            {n: models[k] for n, k in names.items()},
            rois,
            subsets=subsets,
            method=params["method"],
            metric=params["metric"],
            dtype=params["dtype"],
        )
        for roi in scores.index:
            for n, (model, _) in names.items():
                rows.append(
                    {"subject": subject, "roi": roi, "model": model, "oracle": scores.loc[roi, n]}
                )
    df = pd.DataFrame(rows, columns=["subject", "roi", "model", "oracle"])
    # a network's instances (seeds) are averaged per subject, as the measured scores are
    return df.groupby(["subject", "roi", "model"], as_index=False, sort=True)["oracle"].mean()


def _finite_units(sub, roi: str) -> np.ndarray:
    """Which of ``roi``'s units have finite betas for every image (those RSA keeps)."""
    cols = np.flatnonzero(np.asarray(sub.rois[roi], dtype=bool))
    return np.isfinite(np.asarray(RowView(sub.betas, columns=cols))).all(axis=0)


# ------------------------------------------------------------------------------------- check
def spearman_ci(measured, oracle, n_boot: int = N_BOOT, random_state=0) -> tuple:
    """Spearman's ρ over models between group means, with a bootstrap-over-subjects interval.

    Parameters
    ----------
    measured, oracle : arrays, shape (n_subjects, n_models)
        Per-subject scores, subjects in the same rows of both.

    Returns
    -------
    (rho, low, high) : floats
        ρ of the subject means and the 2.5 / 97.5 percentiles of ρ over resamples of subjects
        (the same resample for both arrays). NaN with fewer than 3 models.
    """
    measured, oracle = np.asarray(measured, float), np.asarray(oracle, float)
    if measured.shape[1] < 3:
        return np.nan, np.nan, np.nan
    rho = _spearman_rows(measured.mean(0)[None], oracle.mean(0)[None])[0]
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, len(measured), (n_boot, len(measured)))
    boot = _spearman_rows(measured[idx].mean(1), oracle[idx].mean(1))
    boot = boot[np.isfinite(boot)]
    low, high = np.percentile(boot, [2.5, 97.5]) if boot.size else (np.nan, np.nan)
    return float(rho), float(low), float(high)


def _spearman_rows(a, b) -> np.ndarray:
    """Spearman's ρ of each row of ``a`` (n, m) with the same row of ``b`` (average ranks)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(1) / np.sqrt((ra**2).sum(1) * (rb**2).sum(1))


def best_model_check(measured, oracle, models, p_threshold: float = P_THRESHOLD) -> dict:
    """Is the measured best model the oracle's best, or tied with it within noise?

    Parameters
    ----------
    measured, oracle : arrays, shape (n_subjects, n_models)
    models : list of str, the columns' names

    Returns
    -------
    dict
        ``measured_best``, ``oracle_best``, ``best_diff`` (mean over subjects of
        measured(best) − measured(oracle's best); 0 when they are the same), ``best_t``,
        ``best_p`` (paired t-test, NaN when the same) and ``best_ok`` (same, or p ≥ ``p_threshold``).
    """
    measured, oracle = np.asarray(measured, float), np.asarray(oracle, float)
    b, o = int(np.argmax(measured.mean(0))), int(np.argmax(oracle.mean(0)))
    out = {"measured_best": models[b], "oracle_best": models[o]}
    if b == o or len(measured) < 2:
        return {**out, "best_diff": 0.0, "best_t": np.nan, "best_p": np.nan, "best_ok": b == o}
    res = paired_t(measured[:, b][:, None], measured[:, o][:, None])
    p = float(np.asarray(res[1]).ravel()[0])
    return {
        **out,
        "best_diff": float((measured[:, b] - measured[:, o]).mean()),
        "best_t": float(np.asarray(res[0]).ravel()[0]),
        "best_p": p,
        "best_ok": bool(p >= p_threshold),
    }


def oracle_separates(oracle, p_threshold: float = P_THRESHOLD) -> tuple[bool, float]:
    """Does the oracle tell its best model from its worst (paired t-test over subjects)?

    Parameters
    ----------
    oracle : array, shape (n_subjects, n_models)

    Returns
    -------
    (separates, p) : the test's p < ``p_threshold``, and p (NaN with fewer than 2 subjects or models)
    """
    oracle = np.asarray(oracle, float)
    if oracle.shape[0] < 2 or oracle.shape[1] < 2:
        return False, np.nan
    means = oracle.mean(0)
    hi, lo = oracle[:, [int(np.argmax(means))]], oracle[:, [int(np.argmin(means))]]
    p = float(np.asarray(paired_t(hi, lo)[1]).ravel()[0])
    return bool(p < p_threshold), p


def truth_check(measured: pd.DataFrame, oracle: pd.DataFrame, random_state=0) -> dict:
    """One ROI's check (see the module's docstring).

    Parameters
    ----------
    measured, oracle : pandas.DataFrame, shape (n_subjects, n_models)
        Wide tables (index subject, columns model); subjects or models with a missing value in
        either are left out.

    Returns
    -------
    dict
        :func:`best_model_check`'s keys, ``rank_rho``, ``rank_ci_low``, ``rank_ci_high``,
        ``n_subjects``, ``n_models``, ``oracle_spread_p`` (:func:`oracle_separates`),
        ``rank_check`` ("ok", "fail" or "untested"), ``agreement`` ("yes"/"no") and ``why``.
    """
    # models without any score in either are left out, then subjects missing any model
    models = [
        m
        for m in measured.columns
        if m in oracle.columns and measured[m].notna().any() and oracle[m].notna().any()
    ]
    meas = measured[models]
    orac = oracle.reindex(index=meas.index, columns=models)
    keep = meas.notna().all(axis=1) & orac.notna().all(axis=1)
    meas, orac = meas[keep].to_numpy(float), orac[keep].to_numpy(float)
    best = best_model_check(meas, orac, models)
    rho, low, high = spearman_ci(meas, orac, random_state=random_state)
    separates, spread_p = oracle_separates(orac)
    if len(models) < 3 or not separates:
        rank_check = "untested"
    else:
        rank_check = "ok" if np.isfinite(low) and low > 0 else "fail"
    why = _why(best, rank_check, rho, low, high, orac.mean(0), models)
    if rank_check == "untested" and len(models) >= 3:
        why += (
            "; ranks not tested: the oracle does not separate its best model from its worst "
            f"(p = {spread_p:.2g})"
        )
    return {
        **best,
        "rank_rho": rho,
        "rank_ci_low": low,
        "rank_ci_high": high,
        "n_subjects": int(len(meas)),
        "n_models": len(models),
        "oracle_spread_p": spread_p,
        "rank_check": rank_check,
        "agreement": "yes" if best["best_ok"] and rank_check != "fail" else "no",
        "why": why,
    }


def _why(best, rank_check, rho, low, high, oracle_means, models) -> str:
    """One sentence on the ROI's check: the best models and the rank agreement."""
    o = dict(zip(models, oracle_means, strict=True))
    if best["measured_best"] == best["oracle_best"]:
        parts = [f"best model {best['measured_best']} as the oracle's"]
    else:
        gap = o[best["oracle_best"]] - o[best["measured_best"]]
        verdict = "tied within noise" if best["best_ok"] else "a significant reversal"
        parts = [
            f"measured best {best['measured_best']} vs the oracle's {best['oracle_best']} "
            f"(oracle gap {gap:.3f}): {verdict} (measured difference {best['best_diff']:+.3f}, "
            f"p = {best['best_p']:.2g})"
        ]
    if rank_check == "fail":
        parts.append(f"ranks do not agree above chance (ρ = {rho:.2f}, CI {low:.2f}–{high:.2f})")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------- contrasts
def _direction(diff, p, a: str, b: str, p_threshold: float) -> str:
    if not np.isfinite(p) or p >= p_threshold:
        return "no difference"
    return f"{a} > {b}" if diff > 0 else f"{b} > {a}"


def contrast_check(
    measured: pd.DataFrame,
    oracle: pd.DataFrame,
    a: str,
    b: str,
    p_threshold: float = P_THRESHOLD,
) -> dict:
    """What the planted truth predicts for model ``a`` − model ``b`` in one ROI, and what was
    measured.

    Both are paired t-tests over subjects of ``a``'s score minus ``b``'s: on the oracle scores
    (the prediction) and on the measured scores. Each gives a direction ("a > b", "b > a" or
    "no difference" at p ≥ ``p_threshold``). ``agreement`` is "yes" when the directions are the
    same, "reversed" when they are opposite, "not detected" when the oracle predicts a
    difference the measurement does not show, and "unexpected" when the measurement shows a
    difference the oracle does not predict.

    Parameters
    ----------
    measured, oracle : pandas.DataFrame
        Wide tables (index subject, columns model) as :func:`truth_check`'s.
    a, b : str
        The models (e.g. ``"net_mpnet"`` and ``"mpnet"``, the paper's Fig. 4c).

    Returns
    -------
    dict
        ``oracle_diff``, ``oracle_p``, ``predicted``, ``measured_diff``, ``measured_p``,
        ``measured``, ``agreement``, ``n_subjects`` (empty when a model is missing).
    """
    if not {a, b} <= set(measured.columns) or not {a, b} <= set(oracle.columns):
        return {}
    m = measured[[a, b]]
    o = oracle.reindex(index=m.index, columns=[a, b])
    keep = m.notna().all(axis=1) & o.notna().all(axis=1)
    m, o = m[keep].to_numpy(float), o[keep].to_numpy(float)
    out: dict = {"n_subjects": int(len(m))}
    for name, x in (("oracle", o), ("measured", m)):
        diff = float((x[:, 0] - x[:, 1]).mean()) if len(x) else np.nan
        pval = (
            float(np.asarray(paired_t(x[:, [0]], x[:, [1]])[1]).ravel()[0])
            if len(x) > 1
            else np.nan
        )
        out[f"{name}_diff"], out[f"{name}_p"] = diff, pval
        out["predicted" if name == "oracle" else "measured"] = _direction(
            diff, pval, a, b, p_threshold
        )
    pred, meas = out["predicted"], out["measured"]
    if pred == meas:
        agreement = "yes"
    elif pred == "no difference":
        agreement = "unexpected"
    elif meas == "no difference":
        agreement = "not detected"
    else:
        agreement = "reversed"
    return {**out, "agreement": agreement}


def contrast_truth(
    table: pd.DataFrame, oracle: pd.DataFrame, pairs, rois=None, p_threshold: float = P_THRESHOLD
) -> pd.DataFrame:
    """:func:`contrast_check` for every ROI and pair of models.

    Parameters
    ----------
    table : pandas.DataFrame
        The ROI RSA per-subject table (``subject``, ``roi``, ``model``, ``r``, ``r_norm``).
    oracle : pandas.DataFrame
        :func:`pipeline_oracle`'s table.
    pairs : sequence of (str, str)
        The contrasts (model a, model b).
    rois : sequence of str, optional
        The ROIs, in order (default: those of ``oracle``).

    Returns
    -------
    pandas.DataFrame
        One row per ROI and pair: ``roi``, ``a``, ``b``, ``value`` (the measured column:
        ``r_norm`` when a noise ceiling was computed, else ``r``) and :func:`contrast_check`'s
        keys; pairs with a model the run did not score are left out.
    """
    if table.empty or oracle.empty:
        return pd.DataFrame()
    value = "r_norm" if table["r_norm"].notna().any() else "r"
    rows = []
    for roi in rois if rois is not None else list(dict.fromkeys(oracle["roi"])):
        m = table[table["roi"] == roi].pivot_table(index="subject", columns="model", values=value)
        o = oracle[oracle["roi"] == roi].pivot(index="subject", columns="model", values="oracle")
        for a, b in pairs:
            check = contrast_check(m, o, a, b, p_threshold=p_threshold)
            if check:
                rows.append({"roi": roi, "a": a, "b": b, "value": value, **check})
    return pd.DataFrame(rows)


#: the paper's Fig. 4 contrasts, checked against the planted truth when the run scores them
PAPER_CONTRASTS = (("net_mpnet", "mpnet"), ("net_mpnet", "net_multihot"))


# ------------------------------------------------------------------------------------ export
def ground_truth(
    plan, data, table: pd.DataFrame, oracle: pd.DataFrame
) -> tuple[list, pd.DataFrame]:
    """The truth table (one row per ROI with a planted representation) and the scatter's data.

    Parameters
    ----------
    plan : Plan
    data : Result
        The virtual NSD task's result (``truth_rois``).
    table : pandas.DataFrame
        The ROI RSA per-subject table (``subject``, ``roi``, ``model``, ``r``, ``r_norm``).
    oracle : pandas.DataFrame
        :func:`pipeline_oracle`'s table.

    Returns
    -------
    rows : list of dict
        Per ROI: ``roi``, ``planted`` and :func:`truth_check`'s keys (empty off the virtual NSD).
    scores : pandas.DataFrame
        Per ROI and model: ``measured`` (group mean of the group's value, ``r_norm`` when a
        noise ceiling was computed, else ``r``), ``measured_sem``, ``oracle`` and ``oracle_sem``.
    """
    rois = data.get("truth_rois") if hasattr(data, "get") else None
    if plan.config.data.kind != "virtual" or not rois or oracle.empty:
        return [], pd.DataFrame()
    value = "r_norm" if table["r_norm"].notna().any() else "r"
    rows, scores = [], []
    for roi, info in rois.items():
        m = table[table["roi"] == roi].pivot_table(index="subject", columns="model", values=value)
        o = oracle[oracle["roi"] == roi].pivot(index="subject", columns="model", values="oracle")
        if m.empty or o.empty:
            continue
        reps = info.get("representations", {})
        check = truth_check(m, o)
        rows.append(
            {"roi": roi, "planted": " + ".join(f"{k} ({v:g})" for k, v in reps.items()), **check}
        )
        for model in m.columns.intersection(o.columns):
            scores.append(
                {
                    "roi": roi,
                    "model": model,
                    "value": value,
                    "measured": m[model].mean(),
                    "measured_sem": m[model].sem(),
                    "oracle": o[model].mean(),
                    "oracle_sem": o[model].sem(),
                }
            )
    return rows, pd.DataFrame(scores)


def write_ground_truth(ctx, targets, table: pd.DataFrame) -> None:
    """ROI RSA's export hook: the oracle, the truth table (``ground_truth``) and the scatter's
    data (``ground_truth_scores``) written to the run folder, the rows kept for ``run.json``."""
    plan = ctx.plan
    data = ctx.load(plan.data)
    if plan.config.data.kind != "virtual" or not data.get("truth_rois"):
        return
    oracle = pipeline_oracle(ctx, targets)
    rows, scores = ground_truth(plan, data, table, oracle)
    if rows:
        ctx.writer.table("ground_truth", pd.DataFrame(rows))
        ctx.writer.table("ground_truth_scores", scores)
        ctx.extras["ground_truth"] = rows
        contrasts = contrast_truth(
            table, oracle, _contrast_pairs(plan.config), rois=[r["roi"] for r in rows]
        )
        if len(contrasts):
            ctx.writer.table("ground_truth_contrasts", contrasts)


def _contrast_pairs(cfg) -> list[tuple[str, str]]:
    """The contrasts to check: the paper's Fig. 4 pairs and the run's searchlight contrasts."""
    pairs = list(PAPER_CONTRASTS)
    c = getattr(cfg.analyses, "searchlight_contrasts", None)
    if c is not None and c.enabled:
        pairs += [tuple(p) for p in c.contrasts]
    return list(dict.fromkeys(pairs))


__all__ = [
    "P_THRESHOLD",
    "N_BOOT",
    "PAPER_CONTRASTS",
    "best_model_check",
    "contrast_check",
    "contrast_truth",
    "ground_truth",
    "oracle_scores",
    "oracle_separates",
    "pipeline_oracle",
    "spearman_ci",
    "truth_check",
    "write_ground_truth",
]
