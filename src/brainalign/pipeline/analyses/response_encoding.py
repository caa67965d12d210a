"""Encoding on a lab's own responses (``[data] kind = "rdms"`` with ``responses/<ROI>.npy``):
which feature space predicts each ROI's units (the paper's RQ1 question on any data set).

Per data set, feature space, ROI with responses and subject, every unit is predicted from the
stimuli's features by ridge regression, cross-validated over stimuli
(:func:`brainalign.encoding.cross_val_r`); a subject's score is the mean held-out r over its
units, and the group score the mean over subjects with a one-sample t-test (two or more
subjects). ROIs given as RDMs have no units to predict and are left out.

The score is also given normalised by a noise ceiling (``r_normalised = r / ceiling``, the
ceiling's kind in ``ceiling_kind``):

* responses with repetitions (``(n_subjects, n_repetitions, n_stimuli, n_units)``, fitted on
  their mean): the mean over units of the square root of each unit's split-half reliability
  (:func:`brainalign.encoding.split_half_reliability`);
* two or more subjects without repetitions: how well the other subjects predict each unit, the
  mean over units of the Pearson r between the subject's unit and the mean of the other
  subjects' same unit (leave-one-subject-out, clipped at 0;
  :func:`brainalign.encoding.interparticipant_agreement`, the paper's Fig. 1d agreement). It
  needs the units of an ROI's array to be the same units in every subject (a common space, the
  same recorded sites), which one array per ROI with one unit count implies; a data set whose
  units differ between subjects (each subject's own voxels) says ``"units_correspond": false``
  in its ``dataset.json`` and gets no ceiling. The other subjects' mean is itself noisy, so this
  ceiling is low and ``r_normalised`` can exceed 1;
* one subject without repetitions: none (nothing to predict the unit from but the model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from brainalign.datasets.rdms import load_rdm_dataset, mean_patterns, read_stimulus_table
from brainalign.encoding import (
    DEFAULT_ALPHAS,
    cross_val_r,
    interparticipant_agreement,
    smallest_training_part,
    split_half_reliability,
)
from brainalign.features import feature_space, label_stimuli
from brainalign.pipeline.analysis import Analysis, ReportSection, RunWarning, Table
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.pipeline.data_kinds.rdms import data_sets, ensure_imported, response_rois, set_key
from brainalign.pipeline.inputs import option_files
from brainalign.stats import one_sample_t
from brainalign.utils.settings import Section


class ResponseEncodingConfig(Section):
    """``[analyses.response_encoding]``: cross-validated ridge from each feature space to the
    units of every ROI given as responses."""

    # on by default: it runs only where a data set has responses/<ROI>.npy
    enabled: bool = True
    # the ridge penalty grid, chosen per unit within each training part
    alphas: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [float(a) for a in DEFAULT_ALPHAS], min_length=1
    )
    # folds over stimuli: each predicted by a fit on the others (outer), and the penalty's
    # choice within each training part (inner)
    outer_folds: Annotated[int, Field(ge=2)] = 5
    # folds within each outer training part that choose the penalty
    inner_folds: Annotated[int, Field(ge=2)] = 5


@stage("response_encoding")
def response_encoding(params, inputs, ctx):
    """Held-out r of every unit of every response ROI of one data set, from one feature space."""
    ensure_imported(params["set"])
    ds = load_rdm_dataset(params["root"], params["rois"], metric=params.get("metric"))
    stim = label_stimuli(ds, params["captions"], params["templates"])
    X = np.asarray(feature_space(params["name"], stim, **params["options"]).X, np.float64)
    rows = []
    for roi in params["rois"]:
        Y = np.load(Path(params["root"], "responses", f"{roi}.npy"), mmap_mode="r")
        kind, ceilings = unit_ceilings(Y, ds.meta.get("units_correspond", True))
        for s, subject in enumerate(ds.subjects[roi]):
            ceiling = None if ceilings is None else ceilings[s]
            r = cross_val_r(
                X,
                mean_patterns(Y, s),
                alphas=params["alphas"],
                outer=params["outer_folds"],
                inner=params["inner_folds"],
                random_state=params["random_state"],
            )
            rows.append(
                {
                    "dataset": params["label"],
                    "roi": roi,
                    "model": params["name"],
                    "subject": subject,
                    "r": float(np.nanmean(r)),
                    "n_units": int(np.isfinite(r).sum()),
                    "ceiling": float(np.nanmean(ceiling)) if ceiling is not None else np.nan,
                    "ceiling_kind": kind,
                    "r_normalised": (
                        float(np.nanmean(r) / np.nanmean(ceiling))
                        if ceiling is not None
                        else np.nan
                    ),
                }
            )
    return {"rows": rows}


#: the ``ceiling_kind`` of each noise ceiling (and why there is none)
SPLIT_HALF = "split-half reliability (repetitions)"
OTHER_SUBJECTS = "other subjects' mean (leave-one-subject-out)"
NO_CEILING_ONE_SUBJECT = "none: one subject without repetitions"
NO_CEILING_UNITS = "none: units differ between subjects (dataset.json units_correspond = false)"


def unit_ceilings(Y, units_correspond: bool = True) -> tuple[str, np.ndarray | None]:
    """Each subject's per-unit noise ceiling of an encoding r, and its kind.

    Parameters
    ----------
    Y : (n_subjects, n_stimuli, n_units) or (n_subjects, n_repetitions, n_stimuli, n_units)
        An ROI's responses.
    units_correspond : bool
        Whether unit ``u`` is the same unit in every subject (needed by the between-subject
        ceiling).

    Returns
    -------
    kind : str
        :data:`SPLIT_HALF`, :data:`OTHER_SUBJECTS` or why there is none.
    ceilings : (n_subjects, n_units) float64, or None
        With repetitions √(split-half reliability) clipped at 0; else, with two or more
        subjects whose units correspond, the Pearson r between each subject's unit and the mean
        of the other subjects' same unit, clipped at 0.
    """
    if Y.ndim == 4:
        return SPLIT_HALF, np.stack(
            [np.sqrt(np.clip(split_half_reliability(Y[s]), 0, None)) for s in range(len(Y))]
        )
    if len(Y) < 2:
        return NO_CEILING_ONE_SUBJECT, None
    if not units_correspond:
        return NO_CEILING_UNITS, None
    agreement = interparticipant_agreement(np.asarray(Y, dtype=np.float64))
    return OTHER_SUBJECTS, np.clip(agreement.astype(np.float64), 0, None)


def plan(b) -> dict[str, Task]:
    cfg = b.config
    targets: dict[str, Task] = {}
    for s, at in response_sets(b, "response_encoding"):
        for name in cfg.features.spaces:
            options = cfg.features.options.get(name, {})
            targets[f"{s['label']}/{name}"] = Task(
                TaskId("response_encoding", model=name, dataset=s["label"]),
                {**at, "name": name, "options": options, **option_files(options)},
                after=(b.plan.data,),
            )
    return targets


def response_sets(b, section: str):
    """``(data set, task parameters)`` of every data set with response ROIs whose stimuli fill
    the folds of ``[analyses.<section>]`` (the parameters both response analyses share)."""
    cfg = b.config
    a, d = getattr(cfg.analyses, section), cfg.data
    for s in data_sets(cfg):
        rois = [r for r in response_rois(s["root"]) if s["rois"] is None or r in s["rois"]]
        if not rois or not folds_fit(b, s, section, a.outer_folds, a.inner_folds):
            continue
        yield (
            s,
            {
                "root": s["root"],
                "set": s,
                "label": s["label"],
                "rois": rois,
                "metric": d.metric,
                "captions": d.captions,
                "templates": list(d.templates),
                "alphas": list(a.alphas),
                "outer_folds": a.outer_folds,
                "inner_folds": a.inner_folds,
                "random_state": cfg.compute.random_state,
                "inputs": set_key(s, "all"),
            },
        )


def folds_fit(b, s: dict, section: str, outer: int, inner: int) -> bool:
    """Whether data set ``s`` has stimuli enough for ``outer`` folds with ``inner`` folds in
    each training part; if not, the plan leaves the analysis out there and says so."""
    n = len(read_stimulus_table(s["root"], check_images=False))
    if outer <= n and smallest_training_part(n, outer) >= inner:
        return True
    b.plan.notes.append(
        RunWarning(
            f"{s['label']}: {section}",
            f"left out: its {n} stimuli cannot be split in outer_folds = {outer} with "
            f"inner_folds = {inner} in each training part; lower them to run it",
            f"analyses.{section}.outer_folds",
        )
    )
    return False


def group_scores(subject_rows):
    """Per data set, ROI and model: mean r over subjects, its SEM and one-sample t-test
    (t and p NaN with one subject)."""
    import pandas as pd

    df = pd.DataFrame(subject_rows)
    out = []
    for (label, roi, model), g in df.groupby(["dataset", "roi", "model"], sort=False):
        r = g["r"].to_numpy()
        test = one_sample_t(r[:, None]) if len(r) > 1 else None
        out.append(
            {
                "dataset": label,
                "roi": roi,
                "model": model,
                "r": float(r.mean()),
                "r_normalised": float(g["r_normalised"].mean()),
                "ceiling": float(g["ceiling"].mean()),
                "ceiling_kind": g["ceiling_kind"].iloc[0] if "ceiling_kind" in g else "",
                "sem": float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else np.nan,
                "t": float(test.t[0]) if test else np.nan,
                "p": float(test.p[0]) if test else np.nan,
                "n_subjects": len(r),
            }
        )
    return pd.DataFrame(out)


def export(ctx, targets) -> None:
    import pandas as pd

    rows = [row for t in targets.values() for row in ctx.load(t)["rows"]]
    if not rows:
        return
    ctx.writer.table("response_encoding_subjects", pd.DataFrame(rows))
    ctx.writer.table("response_encoding", group_scores(rows))


def _section(run) -> str:
    table = run.table("response_encoding")
    if table is None:
        return ""
    return (
        "<p class='note'>Held-out Pearson r between each unit's responses and its ridge "
        "prediction from the model's features (cross-validated over stimuli), averaged over "
        "units and then subjects; t-test against 0 across subjects. r_normalised = r / "
        "ceiling (column ceiling_kind): with repetitions the mean over units of √(split-half "
        "reliability); with two or more subjects and no repetitions, the mean over units of "
        "the r between the subject's unit and the mean of the other subjects' (a low ceiling: "
        "the others' mean is noisy too, so r_normalised can exceed 1); none with one subject "
        "and no repetitions, or where a data set says its units differ between subjects. "
        "Per subject: "
        "<code>tables/response_encoding_subjects.csv</code>.</p>"
        + run.show_html("response_encoding", table.sort_values(["roi", "r"], ascending=False))
    )


def methods(cfg) -> list[str]:
    a = cfg.analyses.response_encoding
    if cfg.data.kind != "rdms" or not a.enabled:
        return []
    return [
        "Response encoding: for every ROI given as responses, each unit predicted from each "
        f"feature space by ridge regression, {a.outer_folds}-fold cross-validated over stimuli "
        f"(the penalty chosen per unit among {len(a.alphas)} values by {a.inner_folds}-fold "
        "cross-validation within each training part; brainalign.encoding.cross_val_r); score: "
        "the held-out Pearson r averaged over units, then subjects (one-sample t across "
        "subjects); also divided by a noise ceiling: with repetitions the mean over units of "
        "the square root of the Spearman-Brown corrected split-half reliability; with two or "
        "more subjects and no repetitions the mean over units of the Pearson r between the "
        "subject's unit and the mean of the other subjects' same unit (leave-one-subject-out, "
        "clipped at 0; units taken to correspond across subjects unless the data set's "
        "dataset.json says units_correspond = false); none with one subject and no repetitions."
    ]


ANALYSIS = Analysis(
    name="response_encoding",
    configs={"response_encoding": ResponseEncodingConfig},
    plan=plan,
    needs="rdms",
    export=export,
    warning_keys={"alphas:": "analyses.response_encoding.alphas"},
    methods=methods,
    sections=(ReportSection("response_encoding", "Response encoding", _section),),
    tables=(
        Table(
            "response_encoding",
            "Response encoding",
            "Per data set, ROI and model: held-out r (mean over subjects), its noise-ceiling "
            "normalised form and the ceiling's kind (split-half with repetitions, other "
            "subjects' mean without), SEM, t, p.",
        ),
        Table(
            "response_encoding_subjects",
            "Response encoding per subject",
            "Per subject: mean held-out r over units and the number of units.",
            shown=False,
        ),
    ),
)
