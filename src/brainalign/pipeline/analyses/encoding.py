"""Encoding maps (paper §4, Fig. 4): ridge from a feature space to every vertex, the group map,
interparticipant agreement and the in-silico contrasts of sentence categories."""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from brainalign.datasets.base import STREAMS_ROIS
from brainalign.encoding import (
    DEFAULT_SENTENCES,
    encoding_map,
    interparticipant_agreement,
    predict_maps,
    read_sentence_sets,
    sentence_vector,
)
from brainalign.encoding.ridge import DEFAULT_ALPHAS
from brainalign.errors import ConfigError, InputError
from brainalign.pipeline.analyses._penalty_edges import edge_record, edges_table, warn_edges
from brainalign.pipeline.analysis import Analysis, ReportSection, Table
from brainalign.pipeline.core import Task, TaskId, stage, upstream
from brainalign.pipeline.inputs import (
    encoder_of_space,
    feature_rows,
    load_subject,
    sentence_encoder,
)
from brainalign.report import plots
from brainalign.report.html import img_html, maps_html
from brainalign.rsa.shared import common_shared_images
from brainalign.stats import group_map, one_sample_t, subject_mean
from brainalign.utils.settings import ConfigPath, Section

_Fraction = Annotated[float, Field(gt=0, lt=1)]


class EncodingConfig(Section):
    """``[analyses.encoding]``: voxel-wise encoding models from a feature space (paper Fig. 4)."""

    # fit the voxel-wise encoding models (fsaverage space only)
    enabled: bool = True
    # the features the ridge maps to every vertex (or voxel)
    feature_space: str = "mpnet"
    #: default: the library's DEFAULT_ALPHAS (25 values, 1e-2 … 1e10)
    alphas: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [float(a) for a in DEFAULT_ALPHAS],
        # an empty grid fails only mid-run, after the data are read: refuse it at load
        min_length=1,
    )
    # folds of the cross-validation that picks each target's penalty
    cv: Annotated[int, Field(ge=2)] = 5
    # per_target: a penalty per vertex from the alphas grid; fracridge: a shrinkage fraction
    # per vertex (Rokem & Kay 2020)
    mode: Literal["per_target", "fracridge"] = "per_target"
    # also map the interparticipant agreement (how well the other subjects predict each one)
    agreement: bool = True
    # Benjamini-Hochberg level of the group maps
    fdr_q: _Fraction = 0.05


class InsilicoConfig(Section):
    """``[analyses.insilico]``: encoding-model predictions for sentence categories, contrasted."""

    # predict and contrast the sentence categories (needs analyses.encoding.enabled)
    enabled: bool = True
    # pairs [a, b] of sentence categories: the map of predicted a − predicted b (Fig. 2a)
    contrasts: list[tuple[str, str]] = Field(
        default_factory=lambda: [("people", "places"), ("food", "people")]
    )
    #: category → sentences, over those of ``sentences_file`` and brainalign's stand-ins
    sentences: dict[str, list[str]] = Field(default_factory=dict)
    #: JSON or TSV of sentence sets (e.g. the paper's ``sentences_zoo``); see read_sentence_sets
    sentences_file: ConfigPath | None = None
    #: significance level of the contrasts' paired t-tests (p < p_threshold, uncorrected as in
    #: the paper's Fig. 2a); one name for it: ``alpha`` is the ridge penalty in the config
    p_threshold: _Fraction = 0.05

    @model_validator(mode="before")
    @classmethod
    def _former_name(cls, data: Any) -> Any:
        # ``alpha`` was this key's name: read with a warning, so older configs still run
        if isinstance(data, dict) and "alpha" in data:
            if "p_threshold" in data:
                raise ValueError(
                    "give p_threshold only: alpha is its former name (the significance level)"
                )
            warnings.warn(
                "analyses.insilico.alpha is now analyses.insilico.p_threshold (alpha means the "
                "ridge penalty, as in analyses.encoding.alphas); read as p_threshold",
                FutureWarning,
                stacklevel=2,
            )
            data = {("p_threshold" if k == "alpha" else k): v for k, v in data.items()}
        return data


def sentence_sets(ins: InsilicoConfig) -> dict[str, list[str]]:
    """The in-silico sentence sets: stand-ins, then the file's, then the config's own."""
    sets = {k: list(v) for k, v in DEFAULT_SENTENCES.items()}
    if ins.sentences_file is not None:
        sets.update(read_sentence_sets(ins.sentences_file))
    sets.update(ins.sentences)
    return sets


# ------------------------------------------------------------------------------------- stages
@stage("insilico_vectors")
def insilico_vectors(params, inputs, ctx):
    """Mean sentence embedding of each in-silico category (paper §4)."""
    enc = sentence_encoder(params["encoder"], ctx.get("device"))
    out = {}
    for name in params["categories"]:
        sentences = params["sentences"][name]
        out[f"v_{name}"] = np.asarray(sentence_vector(list(sentences), enc), dtype=np.float32)
    out["categories"] = list(params["categories"])
    return out


@stage("encoding")
def encoding(params, inputs, ctx):
    """One subject's encoding map (train non-shared, test shared) and in-silico predictions."""
    sub = load_subject(params, ctx)
    X = feature_rows(inputs["model"], sub.image_ids)
    mode = "fracridge" if params["mode"] == "fracridge" else "ridge"
    kw = {"mode": mode, "cv": params["cv"], "backend": ctx.get("backend", "numpy")}
    if kw["backend"] != "numpy":
        kw["device"] = ctx.get("device")
    if mode == "ridge":
        kw["alphas"] = params["alphas"]
    em = encoding_map(sub, X, **kw)  # reads the memory-mapped betas in blocks of units
    out = {"r": np.asarray(em.r, dtype=np.float32), **edge_record(em.model)}
    vec = inputs.get("insilico")
    if vec is not None:
        for name in vec["categories"]:
            out[f"pred_{name}"] = np.asarray(
                predict_maps([em.model], np.asarray(vec[f"v_{name}"]))[0], np.float32
            )
        out["categories"] = list(vec["categories"])
    return out


@stage("encoding_group")
def encoding_group(params, inputs, ctx):
    """Group encoding map, interparticipant agreement and in-silico contrasts."""
    per_subject = upstream(inputs, "encoding")
    R = np.stack([np.asarray(res["r"]) for _, res in per_subject])
    g = group_map(R, fdr_q=params["fdr_q"])
    out = {"r": R, "mean": g["mean"], "t": g["t"], "significant": g["significant"]}
    if all("alpha_edges" in res for _, res in per_subject):
        out["subjects"] = np.array([tid.subject for tid, _ in per_subject], dtype=np.int64)
        out["alpha_edges"] = np.stack([np.asarray(res["alpha_edges"]) for _, res in per_subject])
        out["edges_open"] = np.stack(
            [np.asarray(res.get("edges_open", (True, True)), bool) for _, res in per_subject]
        )
        out["candidates"] = np.asarray(per_subject[0][1]["candidates"], dtype=np.float64)
    if params["agreement"]:
        loaded = [load_subject(params, ctx, subject=tid.subject) for tid, _ in per_subject]
        common = common_shared_images(loaded)
        Y = [np.asarray(x.betas)[np.searchsorted(x.image_ids, common)] for x in loaded]
        out["agreement"] = subject_mean(interparticipant_agreement(Y))
        out["unit_roi"] = _roi_labels(loaded[0].rois, loaded[0].n_units)
    for a, b in params["contrasts"]:
        D = np.stack(
            [np.asarray(res[f"pred_{a}"]) - np.asarray(res[f"pred_{b}"]) for _, res in per_subject]
        )
        tc, pc = one_sample_t(D)
        out[f"contrast_{a}__{b}_t"] = np.asarray(tc, np.float32)
        out[f"contrast_{a}__{b}_sig"] = np.asarray(pc < params["p_threshold"])
    return out


def _roi_labels(rois: dict, n_units: int) -> np.ndarray:
    """Each unit's streams ROI name (the first in label order), ``"null"`` outside them all."""
    labels = np.full(n_units, "null", dtype="<U12")
    for name in reversed(STREAMS_ROIS):
        if name in rois:
            labels[np.asarray(rois[name], bool)] = name
    return labels


# --------------------------------------------------------------------------------------- plan
def plan(b) -> dict[str, Task]:
    cfg = b.config
    enc, ins = cfg.analyses.encoding, cfg.analyses.insilico
    vec = None
    if ins.enabled:
        categories = sorted({c for pair in ins.contrasts for c in pair})
        sets = sentence_sets(ins)
        vec = Task(
            TaskId("insilico_vectors"),
            {
                "encoder": encoder_of_space(enc.feature_space, cfg.features.encoder),
                "categories": categories,
                "sentences": {c: sets[c] for c in categories},
            },
        )
    deps = {}
    for s in b.subjects:
        tdeps = {"model": b.feature(enc.feature_space), "subject": b.subject(s)}
        if vec is not None:
            tdeps["insilico"] = vec
        tid = TaskId("encoding", subject=s)
        deps[tid] = Task(
            tid,
            {**b.base, "subject": s, "alphas": list(enc.alphas), "cv": enc.cv, "mode": enc.mode},
            tdeps,
        )
    group = Task(
        TaskId("encoding_group"),
        {
            **b.base,
            "fdr_q": enc.fdr_q,
            "agreement": enc.agreement and len(b.subjects) >= 2,
            "contrasts": [list(c) for c in ins.contrasts] if ins.enabled else [],
            "p_threshold": ins.p_threshold,
        },
        deps,
    )
    return {"group": group}


def check(cfg) -> list[str]:
    problems = []
    if cfg.analyses.encoding.enabled and cfg.space != "fsaverage":
        problems.append(
            f"space: {cfg.space!r} — the pipeline's encoding maps are surface maps; use space = "
            "'fsaverage', or disable analyses.encoding"
        )
    return problems + _check_insilico(cfg)


def _check_insilico(cfg) -> list[str]:
    a = cfg.analyses
    problems = []
    if a.insilico.enabled and not a.encoding.enabled:
        problems.append("analyses.insilico.enabled: needs analyses.encoding.enabled = true")
    if a.insilico.enabled and a.encoding.enabled:
        try:
            encoder_of_space(a.encoding.feature_space, cfg.features.encoder)
        except ConfigError as exc:
            problems.append(
                f"analyses.insilico.enabled: the in-silico sentences are embedded with the "
                f"encoder of analyses.encoding.feature_space ({exc}); disable analyses.insilico "
                "or encode from a sentence-encoder space"
            )
    if not a.insilico.enabled:
        return problems
    try:
        sets = sentence_sets(a.insilico)
    except InputError as exc:
        return [*problems, f"analyses.insilico.sentences_file: {exc}"]
    for i, (x, y) in enumerate(a.insilico.contrasts):
        for name in (x, y):
            if name not in sets:
                problems.append(
                    f"analyses.insilico.contrasts[{i}]: no sentences for {name!r} in "
                    f"analyses.insilico.sentences, sentences_file or the built-in sets "
                    f"({sorted(sets)})"
                )
    return problems


def feature_spaces(cfg) -> list[tuple[str, str]]:
    return [("analyses.encoding.feature_space", cfg.analyses.encoding.feature_space)]


# ------------------------------------------------------------------------------------- export
def export(ctx, targets) -> None:
    split, w, cfg = ctx.hemi_split, ctx.writer, ctx.config
    if split is None:
        return
    res = ctx.load(targets["group"])
    w.map(
        "encoding_r_mean",
        *split(res["mean"]),
        title=f"Encoding: mean r over subjects (FDR q < {cfg.analyses.encoding.fdr_q})",
        section="encoding",
        stat="r",
        mask=split(res["significant"]),
    )
    w.array("encoding_r", res["mean"])
    if "alpha_edges" in res:
        edges = edges_table(
            res["subjects"],
            res["alpha_edges"],
            res["candidates"],
            cfg.analyses.encoding.mode,
            res.get("edges_open"),
        )
        w.table("encoding_alpha_edges", edges)
        warn_edges(ctx, edges, "encoding", "units")
    if "agreement" in res:
        w.array("agreement", res["agreement"])
        w.array("unit_roi", res["unit_roi"])
        w.map(
            "agreement",
            *split(res["agreement"]),
            title="Interparticipant agreement (r)",
            section="encoding",
            stat="r",
        )
    ins = cfg.analyses.insilico
    for a, b in ins.contrasts if ins.enabled else []:
        key = f"contrast_{a}__{b}"
        if f"{key}_t" in res:
            w.map(
                f"insilico_{a}_minus_{b}",
                *split(res[f"{key}_t"]),
                title=f"In-silico: {a} − {b} (paired t, p < {ins.p_threshold} uncorrected)",
                section="insilico",
                stat="t",
                mask=split(res[f"{key}_sig"]),
            )


def _encoding_section(run) -> str:
    parts = [maps_html(run, "encoding")]
    enc, agr, roi = run.array("encoding_r"), run.array("agreement"), run.array("unit_roi")
    if enc is not None and agr is not None:
        fig = plots.scatter_figure(
            agr,
            enc,
            groups=roi,
            xlabel="interparticipant agreement (r)",
            ylabel="encoding r (mean over subjects)",
            title="Encoding vs agreement",
        )
        parts.append(
            img_html(
                plots.figure_to_base64(fig),
                "Per vertex: encoding performance against "
                "interparticipant agreement on the shared images, coloured by ROI.",
            )
        )
    return "".join(parts)


def _insilico_section(run) -> str:
    return maps_html(run, "insilico")


def methods(cfg) -> list[str]:
    p = []
    e = cfg.analyses.encoding
    if e.enabled:
        penalty = (
            f"one alpha per unit chosen by {e.cv}-fold CV over {_grid_text(e.alphas)}"
            if e.mode == "per_target"
            else f"fractional ridge, one fraction (20 from 0.05 to 1.05) for all units chosen by "
            f"{e.cv}-fold CV on mean R², as in the paper"
        )
        p.append(
            f"Encoding: ridge regression from {e.feature_space} to every unit, {penalty}; "
            "trained on each subject's "
            "non-shared images, tested on the shared images (Pearson r per unit); group t-test with "
            f"FDR q = {e.fdr_q}. Interparticipant agreement: each subject's shared-image "
            "responses against the mean of the other subjects'."
        )
    i = cfg.analyses.insilico
    if i.enabled:
        pairs = ", ".join(f"{x} − {y}" for x, y in i.contrasts)
        source = (
            f"the sentences of {i.sentences_file}"
            if i.sentences_file is not None
            else "brainalign's stand-in sentences (five per category, written in the paper's style)"
        )
        p.append(
            f"In-silico contrasts ({pairs}) from {source}: sentences embedded and averaged per "
            "category, predicted "
            f"maps from each subject's encoding model, paired t-test across subjects (p < {i.p_threshold}, "
            "uncorrected, as in the paper)."
        )
    return p


def _grid_text(alphas) -> str:
    """``alphas [..]`` for a short list, else its size and range (log-spaced when it is)."""
    a = np.asarray(alphas if alphas is not None else [], dtype=np.float64)
    if a.size <= 8 or np.any(a <= 0):
        return f"alphas {list(alphas or [])}"
    steps = np.diff(np.log10(np.sort(a)))
    spacing = ", log-spaced" if np.allclose(steps, steps[0], rtol=1e-6) else ""
    return f"{a.size} alphas from {a.min():g} to {a.max():g}{spacing}"


ANALYSIS = Analysis(
    name="encoding",
    configs={"encoding": EncodingConfig, "insilico": InsilicoConfig},
    plan=plan,
    check=check,
    feature_spaces=feature_spaces,
    export=export,
    methods=methods,
    sections=(
        ReportSection("encoding", "Encoding", _encoding_section, tables=("encoding_alpha_edges",)),
        ReportSection("insilico", "In-silico contrasts", _insilico_section),
    ),
    tables=(
        Table(
            "encoding_alpha_edges",
            "Penalty grid edges",
            "Per subject: units whose cross-validated penalty is the smallest or the largest "
            "candidate; many at an open edge mean the best penalty may lie outside the grid "
            "(widen analyses.encoding.alphas). An edge is open when a value beyond it could "
            "still change a fit; beyond a closed one every fit is the limit (least squares, or "
            "the mean), and units there chose that limit.",
            formats={c: "{:g}" for c in ("smallest_alpha", "largest_alpha")},
        ),
    ),
    # the export warns about the grid's edges with the counts; NaN units come from the data
    warning_keys={"alphas:": "analyses.encoding.alphas", "Y:": None},
)
