"""Group statistics of model scores: ceiling normalisation, instance averaging, tests, ranking.

The tables a study produces (one score per subject × ROI × model) become group tables here, so
a notebook user gets from a table of scores exactly what the pipeline reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainalign.errors import InputError
from brainalign.stats.group import compare_models, fdr, one_sample_t

_SCORE_COLUMNS = ("subject", "roi", "model", "r")


@dataclass
class ModelScoresResult:
    """What :func:`group_model_scores` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per subject × ROI × model: ``r``, ``ceiling`` and ``r_norm`` (r / ceiling; NaN
        without a positive ceiling), model instances averaged.
    group : pandas.DataFrame
        One row per ROI × model: ``mean`` and ``sem`` of ``value`` over subjects, ``mean_r``, the
        one-sample ``t`` and ``p`` against 0, ``n_subjects`` and ``rank`` within the ROI (1 best);
        with ``error="paper"`` also ``sd0_sqrt_n``.
    pairwise : pandas.DataFrame
        Per comparison ROI and family, every pair of the family's models: ``family``,
        ``mean_diff`` (a − b), ``t``, ``p``, the BH-FDR ``q`` within the ROI and family and
        ``significant``.
    value : str
        The column the group statistics use: ``"r_norm"`` when any ceiling is known, else ``"r"``.
    """

    table: object
    group: object
    pairwise: object
    value: str


def group_model_scores(
    scores,
    ceilings=None,
    *,
    comparison_rois=(),
    test: str = "paired",
    fdr_q: float = 0.05,
    error: str = "sem",
    families=None,
) -> ModelScoresResult:
    """Ceiling-normalise per-subject model scores, average instances, test and rank the models.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``subject``, ``roi``, ``model``, ``r`` (one score, e.g. an RDM correlation), and
        optionally ``instance`` (e.g. a network's seed): the instances of a model are averaged
        per subject before any test, as the paper averages each subject's correlations over its
        ten network instances.
    ceilings : pandas.DataFrame, optional
        Columns ``subject``, ``roi``, ``ceiling``: each subject's noise ceiling per ROI.
    comparison_rois : sequence of str
        ROIs in which every pair of models is compared (paired t across subjects, BH-FDR).
    test : {"paired", "paper"}
        ``"paper"`` uses the independent-samples t-test of the paper's code.
    fdr_q : float
        FDR level of the pairwise comparisons (within each ROI).
    error : {"sem", "paper"}
        ``"paper"`` adds the column ``sd0_sqrt_n``: the paper's error bar, SD with ddof 0
        over √n (``sem`` stays the standard error, SD with ddof 1 over √n).
    families : mapping of str -> sequence of str, optional
        The FDR families: every pair of models within a family is compared, and the BH-FDR
        correction runs within each ROI × family (the paper corrects its Fig. 3 models and its
        Fig. 4 models separately). A model may be in several families; pairs across families
        are not tested. Default: one family ``"all"`` of every model.

    Returns
    -------
    ModelScoresResult
    """
    import pandas as pd

    missing = [c for c in _SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise InputError(f"scores: missing column(s) {missing}; expected {list(_SCORE_COLUMNS)}")
    if test not in ("paired", "paper"):
        raise InputError(f"test: expected 'paired' or 'paper', got {test!r}")
    if error not in ("sem", "paper"):
        raise InputError(f"error: expected 'sem' or 'paper', got {error!r}")
    families = _check_families(families, scores["model"])
    df = scores.drop(columns=["instance"], errors="ignore").copy()
    df["ceiling"] = np.nan
    if ceilings is not None and len(ceilings):
        c = ceilings.set_index(["subject", "roi"])["ceiling"]
        keys = pd.MultiIndex.from_arrays([df["subject"], df["roi"]])
        df["ceiling"] = c.reindex(keys).to_numpy(dtype=np.float64)
    ok = np.isfinite(df["ceiling"]) & (df["ceiling"] > 0)
    df["r_norm"] = np.where(ok, df["r"] / df["ceiling"].where(ok, 1.0), np.nan)
    df = df.groupby(["subject", "roi", "model"], as_index=False, sort=False).mean(numeric_only=True)
    df = df.sort_values(["roi", "model", "subject"]).reset_index(drop=True)
    value = "r_norm" if df["r_norm"].notna().any() else "r"
    group, pairs = [], []
    for roi, d in df.groupby("roi", sort=False):
        wide = d.pivot(index="subject", columns="model", values=value)
        raw = d.pivot(index="subject", columns="model", values="r")
        group += [_model_row(roi, m, wide[m], raw[m], error) for m in wide.columns]
        if roi in comparison_rois:
            for name, members in (families or {"all": list(wide.columns)}).items():
                pairs += _pairwise(roi, wide[members], test=test, fdr_q=fdr_q, family=name)
    g = pd.DataFrame(group)
    g["rank"] = g.groupby("roi")["mean"].rank(ascending=False, method="min").astype(int)
    return ModelScoresResult(df, g, pd.DataFrame(pairs), value)


def _model_row(roi, model, values, raw, error: str) -> dict:
    t, p = one_sample_t(values.to_numpy()[:, None])
    row = {
        "roi": roi,
        "model": model,
        "mean": float(values.mean()),
        "sem": float(values.sem()),
        "mean_r": float(raw.mean()),
        "t": float(t[0]),
        "p": float(p[0]),
        "n_subjects": int(values.notna().sum()),
    }
    if error == "paper":
        v = values.dropna().to_numpy()
        row["sd0_sqrt_n"] = float(v.std(ddof=0) / np.sqrt(len(v))) if len(v) else np.nan
    return row


def _check_families(families, models) -> dict[str, list[str]] | None:
    """``families`` as {name: [models]}, each model a model of the scores."""
    if families is None:
        return None
    known = list(dict.fromkeys(models))
    out = {}
    for name, members in dict(families).items():
        members = list(dict.fromkeys(members))
        missing = [m for m in members if m not in known]
        if missing:
            raise InputError(
                f"families[{name!r}]: model(s) {missing} have no scores; the models are {known}"
            )
        if len(members) < 2:
            raise InputError(f"families[{name!r}]: a family needs at least 2 models to compare")
        out[str(name)] = members
    if not out:
        raise InputError("families: give at least one family (or None for one of all models)")
    return out


def _pairwise(roi, wide, *, test: str, fdr_q: float, family: str = "all") -> list[dict]:
    models = list(wide.columns)
    block = []
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            t, p = compare_models(
                wide[a].to_numpy()[:, None],
                wide[b].to_numpy()[:, None],
                paper_compat=test == "paper",
            )
            block.append(
                {
                    "roi": roi,
                    "family": family,
                    "model_a": a,
                    "model_b": b,
                    "mean_diff": float((wide[a] - wide[b]).mean()),
                    "t": float(t[0]),
                    "p": float(p[0]),
                }
            )
    if block:
        q = fdr(np.array([b["p"] for b in block]), q=fdr_q)
        for b, qv, rej in zip(block, q.qvalues, q.reject, strict=True):
            b["q"], b["significant"] = float(qv), bool(rej)
    return block


def subject_mean(maps) -> np.ndarray:
    """Mean over subjects (axis 0) ignoring NaN, float32; units NaN for every subject (dead
    vertices) stay NaN without a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(maps), axis=0).astype(np.float32)


def group_map(maps, *, fdr_q: float = 0.05) -> dict:
    """Group statistics of per-subject maps: mean, two-tailed one-sample t, p and BH-FDR.

    Parameters
    ----------
    maps : array, shape (n_subjects, n_units)
        One map per subject (e.g. searchlight or encoding r); NaN units stay NaN.
    fdr_q : float

    Returns
    -------
    dict
        ``mean`` (float32, NaN-aware), ``t`` (float32), ``p`` and ``significant`` (bool), each
        of shape (n_units,).
    """
    R = np.asarray(maps)
    t, p = one_sample_t(R)
    return {
        "mean": subject_mean(R),
        "t": np.asarray(t, np.float32),
        "p": np.asarray(p),
        "significant": np.asarray(fdr(p, q=fdr_q).reject),
    }


__all__ = ["ModelScoresResult", "group_map", "group_model_scores", "subject_mean"]
