"""Decoding a lab's own responses into captions (``[data] kind = "rdms"`` with
``responses/<ROI>.npy``): the paper's RQ3 question on any data set.

Per data set, ROI with responses and subject, the stimuli's caption embeddings are predicted
from the units' responses by ridge regression cross-validated over stimuli
(:func:`brainalign.encoding.cross_val_predict`); each prediction then identifies its stimulus
among all of them (:func:`brainalign.decoding.identification_accuracy`: pairwise and top-1
among every stimulus, against chance) and retrieves the nearest caption of the *other* stimuli
(a stimulus's own captions are never candidates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from brainalign.datasets.rdms import load_rdm_dataset, mean_patterns
from brainalign.decoding import (
    DECODING_ALPHAS,
    embedding_similarity,
    identification_from_similarity,
)
from brainalign.encoding import cross_val_predict
from brainalign.features import feature_space, label_stimuli
from brainalign.pipeline.analyses.response_encoding import response_sets
from brainalign.pipeline.analysis import Analysis, ReportSection, Table
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.pipeline.data_kinds.rdms import ensure_imported
from brainalign.stats import one_sample_t
from brainalign.utils.settings import Section


class ResponseDecodingConfig(Section):
    """``[analyses.response_decoding]``: caption embeddings decoded from every ROI given as
    responses, then stimuli identified and captions retrieved."""

    # on by default: it runs only where a data set has responses/<ROI>.npy
    enabled: bool = True
    # the caption embedding decoded (a caption space: mpnet, minilm, st:<model>)
    feature_space: str = "mpnet"
    # the ridge penalty grid, chosen per embedding dimension within each training part
    alphas: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: list(DECODING_ALPHAS), min_length=1
    )
    # folds over stimuli: each predicted by a fit on the others (outer), and the penalty's
    # choice within each training part (inner)
    outer_folds: Annotated[int, Field(ge=2)] = 5
    # folds within each outer training part that choose the penalty
    inner_folds: Annotated[int, Field(ge=2)] = 5


def _nearest_other(S: np.ndarray) -> np.ndarray:
    """Per prediction (row of ``S``, its correlations with every stimulus's caption embedding),
    the nearest stimulus among the other ones."""
    S = S.copy()
    np.fill_diagonal(S, -np.inf)
    return S.argmax(1)


@stage("response_decoding")
def response_decoding(params, inputs, ctx):
    """Caption embeddings decoded from every response ROI of one data set, per subject."""
    ensure_imported(params["set"])
    ds = load_rdm_dataset(params["root"], params["rois"], metric=params.get("metric"))
    stim = label_stimuli(ds, params["captions"], params["templates"])
    E = np.asarray(feature_space(params["feature_space"], stim).X, np.float64)
    first = [caps[0] for caps in stim.captions]
    rows, examples = [], []
    for roi in params["rois"]:
        Y = np.load(Path(params["root"], "responses", f"{roi}.npy"), mmap_mode="r")
        for s, subject in enumerate(ds.subjects[roi]):
            pred = cross_val_predict(
                mean_patterns(Y, s),
                E,
                alphas=params["alphas"],
                outer=params["outer_folds"],
                inner=params["inner_folds"],
                random_state=params["random_state"],
            )
            # one similarity matrix for both identifications and the nearest other caption
            S = embedding_similarity(pred, E, "correlation")
            pair = identification_from_similarity(S, n_way=2, top=1)
            every = identification_from_similarity(S, n_way="all", top=1)
            at = {"dataset": params["label"], "roi": roi, "subject": subject}
            rows.append(
                {
                    **at,
                    "pairwise": pair["top1"],
                    "top1_all": every["top1"],
                    "chance_top1_all": every["chance_top1"],
                }
            )
            ids = list(ds.stimulus_ids)
            examples += [
                {**at, "stimulus": ids[i], "caption": first[i], "decoded": first[j],
                 "decoded_from": ids[j]}
                for i, j in enumerate(_nearest_other(S)[: params["n_examples"]])
            ]  # fmt: skip
    return {"rows": rows, "examples": examples}


def plan(b) -> dict[str, Task]:
    name = b.config.analyses.response_decoding.feature_space
    return {
        s["label"]: Task(
            TaskId("response_decoding", model=name, dataset=s["label"]),
            {**at, "feature_space": name, "n_examples": 6},
            after=(b.plan.data,),
        )
        for s, at in response_sets(b, "response_decoding")
    }


def export(ctx, targets) -> None:
    import pandas as pd

    results = [ctx.load(t) for t in targets.values()]
    rows = [row for res in results for row in res["rows"]]
    if not rows:
        return
    df = pd.DataFrame(rows)
    ctx.writer.table("response_decoding_subjects", df)
    group = []
    for (label, roi), g in df.groupby(["dataset", "roi"], sort=False):
        x = g["pairwise"].to_numpy() - 0.5
        test = one_sample_t(x[:, None]) if len(x) > 1 else None
        group.append(
            {
                "dataset": label,
                "roi": roi,
                "pairwise": float(g["pairwise"].mean()),
                "top1_all": float(g["top1_all"].mean()),
                "chance_top1_all": float(g["chance_top1_all"].mean()),
                "t_vs_chance": float(test.t[0]) if test else np.nan,
                "p_vs_chance": float(test.p[0]) if test else np.nan,
                "n_subjects": len(g),
            }
        )
    ctx.writer.table("response_decoding", pd.DataFrame(group))
    ctx.writer.table(
        "response_decoding_examples", pd.DataFrame([e for res in results for e in res["examples"]])
    )


def _section(run) -> str:
    table = run.table("response_decoding")
    if table is None:
        return ""
    parts = [
        "<p class='note'>Caption embeddings predicted from each ROI's responses (ridge, "
        "cross-validated over stimuli); pairwise: how often a prediction is closer to its own "
        "stimulus's embedding than to another's (chance 0.5, t-test across subjects); "
        "top1_all: its own among every stimulus.</p>",
        run.show_html("response_decoding", table),
    ]
    examples = run.table("response_decoding_examples")
    if examples is not None:
        parts.append(run.show_html("response_decoding_examples", examples))
    return "".join(parts)


def methods(cfg) -> list[str]:
    a = cfg.analyses.response_decoding
    if cfg.data.kind != "rdms" or not a.enabled:
        return []
    return [
        f"Response decoding: {a.feature_space} caption embeddings predicted from the responses "
        f"of every ROI given as responses by ridge regression, {a.outer_folds}-fold "
        f"cross-validated over stimuli (penalty per dimension among {len(a.alphas)} values by "
        f"{a.inner_folds}-fold cross-validation within each training part); each prediction "
        "identifies its stimulus pairwise and among all (exact hypergeometric expectation), "
        "and retrieves the nearest caption of the other stimuli."
    ]


ANALYSIS = Analysis(
    name="response_decoding",
    configs={"response_decoding": ResponseDecodingConfig},
    plan=plan,
    needs="rdms",
    export=export,
    methods=methods,
    sections=(ReportSection("response_decoding", "Response decoding", _section),),
    tables=(
        Table(
            "response_decoding",
            "Response decoding",
            "Per data set and ROI: identification accuracy (mean over subjects) and its test.",
        ),
        Table(
            "response_decoding_subjects",
            "Response decoding per subject",
            "Per subject: pairwise and all-way identification accuracy.",
            shown=False,
        ),
        Table(
            "response_decoding_examples",
            "Decoded captions",
            "A few stimuli: their caption and the nearest caption of another stimulus "
            "(decoded_from).",
        ),
    ),
    warning_keys={"alphas:": "analyses.response_decoding.alphas"},
)
