"""Many model RDMs against every ROI of an RDM data set: the tables of an RDM study.

:func:`evaluate_rois` runs :func:`brainalign.rsa.evaluate_models` (rsatoolbox's inference) on
each ROI's subject RDMs in turn and lays the results out as table rows: one row per ROI and
model (score, CI, tests, and for Spearman the Algonauts 2019 score), one per ROI (noise
ceiling), one per ROI and pair of models (difference and its test) and one per ROI, model and
subject (the subject's score). It also returns each ROI's group-mean RDM. A notebook user gets
the same numbers as ``brainalign run`` on a ``[data] kind = "rdms"`` study.

The Algonauts 2019 score (Cichy et al. 2019, arXiv:1905.05675; ``real_rdms/README.md`` of the
shared data) of a model is the mean over subjects of its squared Spearman correlation with each
subject's RDM, :func:`~brainalign.rsa.algonauts_r2`. Squaring loses the sign: a model that correlates
*negatively* with every subject scores as high as one that correlates positively. So each row
also carries the signed score, the mean of ``sign(r) · r²`` (equal to the Algonauts score when
no subject's correlation is negative), and the number of subjects whose correlation is
negative.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from brainalign.errors import InputError
from brainalign.rsa.ceiling_bounds import algonauts_r2
from brainalign.rsa.inference import evaluate_models, long_spearman
from brainalign.rsa.rdm import n_conditions_from_condensed


def compact_rdms(X: np.ndarray, method: str) -> np.ndarray:
    """``X`` (n_rdms, n_pairs) as float32 when Spearman takes its long-RDM path and float32
    holds every value exactly (a symmetric float32 file does), else ``X`` itself.

    Spearman uses only the values' order and float64 means of them, so this halves the
    memory of long RDMs and changes no result (issue 23: 10,000 stimuli). Checked block by
    block, so no second full-size copy is made before the answer is known.
    """
    if not long_spearman(method, X.shape[1]):
        return X
    out = np.empty(X.shape, np.float32)
    step = 1 << 21
    for start in range(0, X.shape[1], step):
        sl = slice(start, start + step)
        out[:, sl] = X[:, sl]
        if not np.array_equal(out[:, sl], X[:, sl]):
            return X
    return out


@dataclass
class RoiEvaluations:
    """What :func:`evaluate_rois` found, as rows of tables (lists of dicts, for pandas).

    Attributes
    ----------
    scores : list of dict
        Per ROI and model: ``method``, ``roi``, the model's key columns, ``score`` (mean over
        subjects), ``sem``, ``ci_low``, ``ci_high``, ``p_zero`` (one-sided, against 0),
        ``p_noise`` (two-sided, against the lower bound of the noise ceiling), ``bootstrap``,
        ``n_bootstrap``, ``dof``, ``n_subjects``, ``n_stimuli``; for Spearman also
        ``algonauts_r2``, ``algonauts_r2_signed`` and ``n_negative``
        (:func:`~brainalign.rsa.algonauts_r2`).
    ceilings : list of dict
        Per ROI: ``lower``, ``upper`` (means over subjects), ``upper_r2``, ``lower_r2``,
        ``n_subjects``, ``pool``.
    pairwise : list of dict
        Per ROI and pair of models (in model order, a before b): each key column with ``_a``
        and ``_b``, ``diff`` (a − b) and its two-sided ``p``.
    subject_scores : list of dict
        Per ROI, model and subject: ``subject`` and ``score``.
    rois : list of str
    group_rdms : ndarray, (n_rois, n_pairs), float64
        Each ROI's mean RDM over subjects.
    """

    scores: list
    ceilings: list
    pairwise: list
    subject_scores: list
    rois: list
    group_rdms: np.ndarray


def evaluate_rois(
    models,
    data: Iterable,
    method: str = "spearman",
    *,
    model_keys: Sequence[dict] | None = None,
    bootstrap: str = "dual",
    n_bootstrap: int = 1000,
    pool: str = "mean",
    ci: float = 0.95,
    random_state=0,
) -> RoiEvaluations:
    """Score model RDMs against each ROI's subject RDMs, with rsatoolbox's inference.

    Parameters
    ----------
    models : array, (n_models, n_pairs)
        Condensed model RDMs over the data's stimuli, in the data's order
        (:func:`compact_rdms` first keeps long float32 RDMs small for Spearman).
    data : iterable of (roi, subjects, data_rdms)
        One item per ROI: its name, the subjects' ids (n_subjects,) and their condensed RDMs
        (n_subjects, n_pairs). Read one at a time, so a generator keeps a single ROI's RDMs in
        memory.
    method : {"spearman", "pearson", "kendall_tau_a", "cosine"}
    model_keys : list of dict, optional
        One per model: the columns that name it in the tables (e.g. ``{"model": "efficientnet",
        "layer": "blocks.3"}``); default ``{"model": "model_<i>"}``.
    bootstrap, n_bootstrap, pool, random_state
        As :func:`brainalign.rsa.evaluate_models` (the same draws for every ROI).
    ci : float
        Level of the confidence intervals, in (0, 1).

    Returns
    -------
    RoiEvaluations
    """
    M = np.asarray(models)
    if M.ndim != 2:
        raise InputError(f"models: expected condensed RDMs (n_models, n_pairs), got {M.shape}")
    keys = (
        [dict(k) for k in model_keys]
        if model_keys is not None
        else [{"model": f"model_{i}"} for i in range(len(M))]
    )
    if len(keys) != len(M):
        raise InputError(f"model_keys: {len(keys)} keys for {len(M)} model RDMs")
    names = [f"m{i}" for i in range(len(M))]  # unique whatever the keys
    out = RoiEvaluations([], [], [], [], [], np.zeros((0, M.shape[1])))
    groups = []
    for roi, subjects, D in data:
        D = compact_rdms(D, method)
        ev = evaluate_models(
            M,
            D,
            method,
            model_names=names,
            bootstrap=bootstrap,
            n_bootstrap=n_bootstrap,
            pool=pool,
            random_state=random_state,
        )
        at = {"method": method, "roi": roi}
        n_subjects, n_stimuli = ev.scores.shape[1], n_conditions_from_condensed(D.shape[1])
        _add_scores(out, ev, at, keys, ci, n_bootstrap, n_stimuli)
        for i, key in enumerate(keys):
            out.subject_scores += [
                {**at, **key, "subject": s, "score": float(v)}
                for s, v in zip(subjects, ev.scores[i], strict=True)
            ]
        nc = ev.ceiling
        out.ceilings.append(
            {
                **at,
                "lower": nc.lower_mean,
                "upper": nc.upper_mean,
                "upper_r2": nc.upper_r2,
                "lower_r2": nc.lower_r2,
                "n_subjects": n_subjects,
                "pool": nc.pool,
            }
        )
        d, p = ev.pairwise()
        for i, j in zip(*np.triu_indices(len(keys), k=1), strict=True):
            named = {f"{c}_a": v for c, v in keys[i].items()}
            named |= {f"{c}_b": v for c, v in keys[j].items()}
            out.pairwise.append({**at, **named, "diff": float(d[i, j]), "p": float(p[i, j])})
        out.rois.append(roi)
        groups.append(D.mean(axis=0, dtype=np.float64))  # as the float64 values give
        del D
    if groups:
        out.group_rdms = np.stack(groups)
    return out


def _add_scores(out, ev, at, keys, ci, n_bootstrap, n_stimuli) -> None:
    """One score row per model of one ROI's evaluation ``ev``."""
    low, high = ev.ci(ci)
    p_zero, p_noise = ev.p_zero(), ev.p_noise()
    if ev.method == "spearman":
        r2 = algonauts_r2(ev.scores)
        r2_signed = algonauts_r2(ev.scores, signed=True)
        n_negative = (ev.scores < 0).sum(axis=1)
    for i, key in enumerate(keys):
        row = {
            **at,
            **key,
            "score": float(ev.mean[i]),
            "sem": float(ev.sem[i]),
            "ci_low": float(low[i]),
            "ci_high": float(high[i]),
            "p_zero": float(p_zero[i]),
            "p_noise": float(p_noise[i]),
            "bootstrap": ev.bootstrap,
            "n_bootstrap": n_bootstrap if ev.bootstrap != "none" else 0,
            "dof": ev.dof,
            "n_subjects": ev.scores.shape[1],
            "n_stimuli": n_stimuli,
        }
        if ev.method == "spearman":
            row["algonauts_r2"] = float(r2[i])
            row["algonauts_r2_signed"] = float(r2_signed[i])
            row["n_negative"] = int(n_negative[i])
        out.scores.append(row)


__all__ = ["RoiEvaluations", "compact_rdms", "evaluate_rois"]
