"""Decoding (paper §5, Fig. 2): caption embeddings decoded from each subject's ROIs, captions
retrieved from a caption bank, identification accuracy and caption metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from brainalign.datasets import load_stimuli
from brainalign.datasets.base import STREAMS_ROIS
from brainalign.datasets.nsd import special_ids
from brainalign.decoding import (
    CaptionBank,
    CaptionSources,
    bank_captions,
    caption_ceiling,
    caption_scores,
    caption_sources,
    decode_captions,
    human_ceiling,
)
from brainalign.decoding.decoder import DECODING_ALPHAS, DECODING_FIT_INTERCEPT, DECODING_K
from brainalign.errors import ConfigError
from brainalign.pipeline.analyses._penalty_edges import edge_record, edges_table, warn_edges
from brainalign.pipeline.analysis import Analysis, ReportSection, Table
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.pipeline.inputs import (
    encoder_of_space,
    feature_rows,
    load_subject,
    sentence_encoder,
)
from brainalign.report import plots
from brainalign.report.html import img_html
from brainalign.utils.hashing import hash_json
from brainalign.utils.settings import ConfigPath, Section

_PositiveInt = Annotated[int, Field(gt=0)]


class DecodingConfig(Section):
    """``[analyses.decoding]``: decode caption embeddings from the brain, then captions.

    The defaults (penalty grid, intercept, bank, k) are those of ``brainalign decode``:
    :mod:`brainalign.decoding.decoder` holds them."""

    # decode caption embeddings from each ROI and retrieve captions (NSD or virtual data)
    enabled: bool = True
    # the ROIs whose responses are decoded (each alone)
    rois: list[str] = Field(default_factory=lambda: list(STREAMS_ROIS))
    # the caption embedding decoded from the brain
    feature_space: str = "mpnet"
    #: a caption corpus; None: the data set's own captions (never a test image's)
    bank: ConfigPath | None = None
    # precision of the bank's stored embeddings (float16: half the disk and memory)
    bank_dtype: Literal["float16", "float32"] = "float32"
    # nearest captions retrieved per test image
    k: _PositiveInt = DECODING_K
    # test images shown with their decoded captions in the report
    n_examples: _PositiveInt = 6
    # the ridge penalty grid, chosen per embedding dimension by cross-validation
    alphas: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: list(DECODING_ALPHAS),
        # an empty grid fails only mid-run, after the data are read: refuse it at load
        min_length=1,
    )
    #: "per_target": one ridge alpha per embedding dimension (brainalign's default);
    #: "fracridge": the paper's one fraction of the OLS norm for all dimensions
    mode: Literal["per_target", "fracridge"] = "per_target"
    #: "paper": the published code's fracridge 2.0 centred the data for the fit and then dropped
    #: the offsets, so predictions carry no intercept
    fit_intercept: bool | Literal["paper"] = DECODING_FIT_INTERCEPT


# ------------------------------------------------------------------------------------- stages
@stage("caption_bank")
def caption_bank(params, inputs, ctx):
    """A caption bank (memory-mapped embeddings) and the caption-consistency ceiling of the test images."""
    stim = load_stimuli(params["root"])
    enc = sentence_encoder(params["encoder"], ctx.get("device"))
    folder = Path(ctx["work_dir"]) / "banks" / params["bank_key"]
    bank = CaptionBank.build(
        bank_captions(stim.captions, params["bank"]),
        enc,
        folder,
        dtype=params["dtype"],
        overwrite=True,
        verbose=False,
    )
    # which images each bank caption is a caption of (a string may be several images')
    sources = caption_sources(bank.captions, stim.image_ids, stim.captions)
    # the decoding ceiling on the test set every subject is decoded on (NSD's special 515):
    # each test caption against the mean of its image's other captions
    test = np.intersect1d(special_ids(params["root"], params["test_set"]), stim.image_ids)
    per_image = [stim.captions[int(i)] for i in np.searchsorted(stim.image_ids, test)]
    return {
        "path": str(bank.path or folder),
        "source_rows": sources.rows,
        "source_ids": sources.image_ids,
        "ceiling_ids": test.astype(np.int64),
        "ceiling": np.asarray(caption_ceiling(per_image, enc), np.float32),
    }


def _decoder_params(params: dict, ctx: dict) -> dict:
    """The decoder's settings: the config's mode, alphas and intercept; the run's backend."""
    out = {"fit_intercept": params["fit_intercept"], "backend": ctx.get("backend", "numpy")}
    if params["mode"] == "fracridge":
        out["mode"] = "fracridge"
    else:
        out["alphas"] = params["alphas"]
    if out["backend"] != "numpy":
        out["device"] = ctx.get("device")
    return out


@stage("decoding")
def decoding(params, inputs, ctx):
    """Decode caption embeddings from one subject's ROIs; reconstruct captions from the bank."""
    sub = load_subject(params, ctx)
    bank = CaptionBank.open(inputs["bank"]["path"])
    sources = CaptionSources(
        len(bank),
        np.asarray(inputs["bank"]["source_rows"], dtype=np.int64),
        np.asarray(inputs["bank"]["source_ids"], dtype=np.int64),
    )
    out = decode_captions(
        sub,
        feature_rows(inputs["model"], sub.image_ids),
        bank,
        sources,
        rois=[r for r in params["rois"] if r in sub.rois],
        k=params["k"],
        **_decoder_params(params, ctx),
    )
    res = out.decoding
    ident = {}
    for key, d in res.identification.items():
        for k, v in d.items():
            if not k.startswith("per_image") and np.ndim(v) == 0:
                ident[f"{key}way_{k}"] = float(v)
    return {
        "image_ids": np.asarray(res.test_ids),
        "score": np.asarray(res.scores, np.float32),
        "pred": np.asarray(res.predicted, dtype=np.float32),
        "identification": ident,
        "n_units": int(len(res.units)),
        "top_idx": out.top_idx,
        "top_sim": out.top_sim,
        "train_idx": out.train_idx,
        "train_sim": out.train_sim,
        # embedding dimensions at each end of the penalty grid (the export's warning)
        **edge_record(res.decoder),
    }


# --------------------------------------------------------------------------------------- plan
def plan(b) -> dict[str, Task]:
    cfg = b.config
    dec = cfg.analyses.decoding
    bank_params = {
        "root": b.root,
        "bank": str(dec.bank) if dec.bank else None,
        "encoder": encoder_of_space(dec.feature_space, cfg.features.encoder),
        "dtype": dec.bank_dtype,
        # the test set whose captions give the ceilings
        "test_set": b.base["test_set"],
        # it reads the captions (and, through load_stimuli, the categories) of the data
        **b.inputs("categories"),
    }
    bank_params["bank_key"] = hash_json(bank_params)[:16]
    # after the feature space: the bank's captions are then read from the embedding cache
    bank = Task(
        TaskId("caption_bank"),
        bank_params,
        {"data": b.plan.data, "model": b.feature(dec.feature_space)},
    )
    targets = {}
    for s in b.subjects:
        targets[f"sub-{s:02d}"] = Task(
            TaskId("decoding", subject=s),
            {
                **b.base,
                "subject": s,
                "rois": list(dec.rois),
                "alphas": list(dec.alphas),
                "mode": dec.mode,
                "fit_intercept": dec.fit_intercept,
                "k": dec.k,
            },
            {"model": b.feature(dec.feature_space), "bank": bank, "subject": b.subject(s)},
        )
    return targets


def check(cfg) -> list[str]:
    dec = cfg.analyses.decoding
    problems = []
    bad = [r for r in dec.rois if r not in (*STREAMS_ROIS, "nsdgeneral")]
    if bad:
        problems.append(
            f"analyses.decoding.rois: unknown ROI(s) {bad}; expected names from {list(STREAMS_ROIS)}"
        )
    if dec.enabled:
        try:
            encoder_of_space(dec.feature_space, cfg.features.encoder)
        except ConfigError as exc:
            problems.append(f"analyses.decoding.feature_space: {exc}")
    if dec.enabled and dec.bank is not None and not dec.bank.exists():
        problems.append(
            f"analyses.decoding.bank: caption corpus {str(dec.bank)!r} does not exist; give a "
            "TSV/JSON/text corpus or leave it out to use the dataset's training captions"
        )
    return problems


def feature_spaces(cfg) -> list[tuple[str, str]]:
    return [("analyses.decoding.feature_space", cfg.analyses.decoding.feature_space)]


# ------------------------------------------------------------------------------------- export
def export(ctx, targets) -> None:
    import pandas as pd

    cfg, w, plan = ctx.config, ctx.writer, ctx.plan
    tasks = {t.id.subject: t for t in targets.values()}
    bank_task = next(iter(tasks.values())).deps["bank"]
    bank_res = ctx.load(bank_task)
    captions = CaptionBank.open(bank_res["path"], verify=False).captions
    ceiling = dict(
        zip(
            np.asarray(bank_res["ceiling_ids"]).tolist(),
            np.asarray(bank_res["ceiling"]).tolist(),
            strict=True,
        )
    )
    stim = load_stimuli(cfg.data.root)
    refs_of = lambda i: stim.captions[int(np.searchsorted(stim.image_ids, i))]  # noqa: E731
    scores, examples, ident, metrics, edges = [], [], [], [], []
    n_ex = cfg.analyses.decoding.n_examples
    for s, t in tasks.items():
        res = ctx.load(t)
        ids, score = np.asarray(res["image_ids"]), np.asarray(res["score"])
        for i, v in zip(ids, score, strict=True):
            scores.append(
                {
                    "subject": s,
                    "image_id": int(i),
                    "score": float(v),
                    "caption_ceiling": ceiling.get(int(i), np.nan),
                }
            )
        order = np.argsort(-score)
        # the best decoded images and some from the middle of the ranking (paper Fig. 2b shows ranks)
        picks = set(order[: (n_ex + 1) // 2].tolist()) | set(
            order[len(order) // 2 :][: n_ex // 2].tolist()
        )
        for rank, j in enumerate(order):
            if j in picks and s == plan.subjects[0]:
                train_j = int(res["train_idx"][j])
                examples.append(
                    {
                        "subject": s,
                        "image_id": int(ids[j]),
                        "rank": rank,
                        "score": float(score[j]),
                        "true_caption": refs_of(ids[j])[0],
                        "decoded_caption": captions[int(res["top_idx"][j, 0])],
                        "decoded_similarity": float(res["top_sim"][j, 0]),
                        "nearest_training_caption": captions[train_j] if train_j >= 0 else "",
                        "nearest_training_similarity": float(res["train_sim"][j]),
                    }
                )
        ident.append(
            {
                "subject": s,
                "n_test": len(ids),
                "n_units": res["n_units"],
                "mean_score": float(np.mean(score)),
                **res["identification"],
            }
        )
        decoded = [captions[int(k)] for k in np.asarray(res["top_idx"])[:, 0]]
        metrics.append(
            {
                "subject": s,
                "who": "decoded",
                "n_images": len(ids),
                **caption_scores(decoded, [refs_of(i) for i in ids]),
            }
        )
        if "alpha_edges" in res:
            edges.append((s, res["alpha_edges"], res["candidates"], res["edges_open"]))
    # the human ceiling on the test set the subjects are decoded on (NSD's special 515)
    refs = [refs_of(i) for i in np.asarray(bank_res["ceiling_ids"])]
    if refs and min(len(r) for r in refs) >= 2:
        metrics.append(
            {
                "subject": "all",
                "who": "human (leave one caption out)",
                "n_images": len(refs),
                **human_ceiling(refs),
            }
        )
    w.table("decoding_scores", pd.DataFrame(scores))
    w.table("decoding_examples", pd.DataFrame(examples))
    w.table("decoding_identification", pd.DataFrame(ident))
    w.table("caption_metrics", pd.DataFrame(metrics))
    if edges:
        table = edges_table(
            [e[0] for e in edges],
            np.stack([np.asarray(e[1]) for e in edges]),
            np.asarray(edges[0][2]),
            cfg.analyses.decoding.mode,
            np.stack([np.asarray(e[3], bool) for e in edges]),
        )
        w.table("decoding_alpha_edges", table)
        warn_edges(ctx, table, "decoding", "embedding dimensions")


def _section(run) -> str:
    parts = []
    scores = run.table("decoding_scores")
    if scores is not None:
        per_sub = {f"subject {s}": g["score"].to_numpy() for s, g in scores.groupby("subject")}
        ceiling = float(scores["caption_ceiling"].mean()) if "caption_ceiling" in scores else None
        parts.append(
            img_html(
                plots.figure_to_base64(
                    plots.histogram_figure(
                        per_sub,
                        xlabel="Pearson r (decoded vs true embedding)",
                        reference=ceiling,
                        title="Decoding prediction scores",
                    )
                ),
                "One density per subject; dashed: caption-consistency ceiling.",
            )
        )
    return "".join(parts)


def _grid_text(alphas) -> str:
    """A penalty grid in a sentence: every value when few, else its ends and size."""
    grid = [float(a) for a in alphas or []]
    if len(grid) <= 6:
        return ", ".join(f"{a:g}" for a in grid)
    return f"{len(grid)} values from {min(grid):g} to {max(grid):g}"


def methods(cfg) -> list[str]:
    d = cfg.analyses.decoding
    if not d.enabled:
        return []
    fit = (
        "fractional ridge, one fraction of the OLS norm for all dimensions (as in the paper)"
        if d.mode == "fracridge"
        else f"ridge with one alpha per embedding dimension (alphas {_grid_text(d.alphas)})"
    )
    intercept = {
        True: "with an intercept",
        False: "without an intercept",
        "paper": "fitted on centred data with the intercept then dropped (as the paper's code)",
    }[d.fit_intercept]
    return [
        f"Decoding: {fit}, {intercept}, chosen by 5-fold CV, from the units of "
        f"{', '.join(d.rois)} to {d.feature_space}; "
        "prediction score = Pearson r between decoded and true embeddings on the shared images; "
        f"caption reconstruction = nearest caption (cosine, exact top-{d.k}) in the caption bank "
        f"{d.bank or '(the data set’s captions)'}, never a caption of the test images "
        "themselves."
    ]


ANALYSIS = Analysis(
    name="decoding",
    configs={"decoding": DecodingConfig},
    plan=plan,
    check=check,
    feature_spaces=feature_spaces,
    export=export,
    methods=methods,
    sections=(
        ReportSection(
            "decoding",
            "Decoding",
            _section,
            tables=(
                "decoding_identification",
                "decoding_examples",
                "caption_metrics",
                "decoding_alpha_edges",
            ),
        ),
    ),
    tables=(
        Table(
            "decoding_scores",
            "Decoding prediction scores",
            "Per subject and test image: Pearson r between the decoded and the true embedding "
            "(the histogram above).",
            shown=False,
        ),
        Table(
            "decoding_identification",
            "Identification accuracy",
            "Per subject: how often the true image's embedding is the nearest to the decoded one "
            "(top-1, top-5) among 2 candidates and among all test images, beside chance.",
        ),
        Table(
            "decoding_examples",
            "Examples",
            "True captions beside the caption decoded from the brain (nearest in the caption "
            "bank) and the nearest training caption, with cosine similarities to the decoded "
            "embedding.",
            max_rows=40,
        ),
        Table(
            "caption_metrics",
            "Caption metrics",
            "Decoded captions against each test image's captions, per subject; the human "
            "ceiling scores each caption of the test images against their other captions.",
        ),
        Table(
            "decoding_alpha_edges",
            "Penalty grid edges",
            "Per subject: embedding dimensions whose cross-validated penalty is the smallest or "
            "the largest candidate; many at an open edge mean the best penalty may lie outside "
            "the grid (widen analyses.decoding.alphas). An edge is open when a value beyond it "
            "could still change a fit; beyond a closed one every fit is the limit (the "
            "minimum-norm least-squares fit, or the mean), and dimensions there chose that limit.",
            formats={c: "{:g}" for c in ("smallest_alpha", "largest_alpha")},
        ),
    ),
    # the export warns about the grid's edges with the counts; NaN units come from the data
    warning_keys={"alphas:": "analyses.decoding.alphas", "Y:": None},
)
