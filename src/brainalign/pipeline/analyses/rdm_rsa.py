"""RSA on RDM data sets (``[data] kind = "rdms"``): model scores with noise ceilings and
rsatoolbox-style inference, layer profiles of vision networks, the RDMs, their MDS, and the
known results of the 92-object data.

Per data set, every model is turned into an RDM over its stimuli: the feature spaces of
``[features] spaces`` on the data set's stimuli (caption embeddings of label templates,
categories, animacy, word vectors …), every layer of the vision models of ``vision`` (and of
trained networks in ``networks``, layer × timestep), and the model RDMs that came with the data
(``models/<name>.npy``, scored as ``rdm:<name>``). Then per ROI and method: each subject's
similarity with each model, the noise ceiling (:func:`brainalign.rsa.noise_ceiling_bounds`) and
:func:`brainalign.rsa.evaluate_models` (dual bootstrap over subjects and stimuli), all laid out
as tables by :func:`brainalign.rsa.evaluate_rois`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from brainalign.datasets.rdms import load_rdm_dataset, read_stimulus_table
from brainalign.errors import BrainAlignError, DataFormatError
from brainalign.features import feature_space, feature_space_needs, label_stimuli
from brainalign.pipeline.analysis import Analysis, ReportSection, RunWarning, Table, run_section
from brainalign.pipeline.core import Task, TaskId, stage, upstream
from brainalign.pipeline.data_kinds.rdms import data_sets, ensure_imported
from brainalign.pipeline.inputs import option_files
from brainalign.report import plots, rdm_plots
from brainalign.report.html import esc, img_html
from brainalign.rsa import (
    compact_rdms,
    compute_rdm,
    evaluate_rois,
    objects92_known_results,
    rdm_mds,
)
from brainalign.rsa.rdm import squareform_rdm
from brainalign.stats import fdr
from brainalign.utils.settings import Section
from brainalign.utils.validation import did_you_mean

# brainalign.networks imports torch: its functions are imported inside the functions that
# use them, so importing the pipeline (`brainalign run`, `report`) does not load torch

_Method = Literal["spearman", "pearson", "kendall_tau_a", "cosine"]
CAPTION_SPACES = ("mpnet", "minilm")


class RdmRsaConfig(Section):
    """``[analyses.rdm_rsa]``: model scores, ceilings and inference on RDM data sets."""

    # score models against the brain RDMs of [data] kind = "rdms" (other kinds: no effect)
    enabled: bool = True
    # how model and brain RDMs are compared; the first is the report's primary method
    methods: list[_Method] = Field(default_factory=lambda: ["spearman", "pearson", "kendall_tau_a"])
    # auto: the dual bootstrap over subjects and stimuli, or over stimuli alone where an ROI
    # has one subject (a lab's single-subject data set; rsatoolbox's eval_bootstrap_pattern)
    bootstrap: Literal["auto", "dual", "subjects", "stimuli", "none"] = "auto"
    # methods whose inference uses the bootstrap; the others use the t-test across subjects
    # (the stimulus bootstrap where an ROI has one subject)
    # (Kendall's tau-a costs O(n_pairs log n_pairs) per model, subject and bootstrap sample)
    bootstrap_methods: list[_Method] = Field(default_factory=lambda: ["spearman", "pearson"])
    # bootstrap samples per ROI and method
    n_bootstrap: Annotated[int, Field(ge=20)] = 1000
    # level of the confidence intervals
    ci: Annotated[float, Field(gt=0, lt=1)] = 0.95
    # how the noise ceiling pools the other subjects' RDMs: their mean, or rsatoolbox's exact
    # pooling (to reproduce its ceilings)
    ceiling_pool: Literal["mean", "rsatoolbox"] = "mean"
    # also score the model RDMs given with the data (models/<name>.npy, as rdm:<name>)
    data_models: bool = True
    # vision networks of the zoo scored layer by layer on the stimuli's images (left out, with
    # a warning, for a data set without images)
    vision: list[str] = Field(default_factory=lambda: ["efficientnet-lite0"])
    # a layer's RDM from its whole feature maps (none) or their spatial mean
    vision_pooling: Literal["none", "mean"] = "none"
    # your own trained BLT networks: {name = ["checkpoint", ...]}, scored layer by layer
    networks: dict[str, list[Path]] = Field(default_factory=dict)
    # sentence encoders scored layer by layer on the stimuli's captions, as layer profiles: a
    # family (mpnet, minilm: every hidden layer, mpnet@0 … mpnet@12) or some of its layers
    # (mpnet@6); all of a family's layers come from one forward pass
    language_layers: list[str] = Field(default_factory=list)
    # Benjamini-Hochberg level of the pairwise model tests (per ROI and method)
    fdr_q: Annotated[float, Field(gt=0, lt=1)] = 0.05
    # check the published results of the 92-object data sets (not applicable elsewhere)
    known_results: bool = True
    # stimulus-label permutations of the known-results tests
    n_permutations: Annotated[int, Field(ge=100)] = 10_000
    # the MDS of each ROI's group RDM: metric (SMACOF) or classical (Torgerson)
    mds: Literal["metric", "classical"] = "metric"


# ------------------------------------------------------------------------------------- stages
def _dataset(params, rois=()):
    ensure_imported(params["set"])
    return load_rdm_dataset(
        params["root"], list(rois) if rois is not None else None, metric=params.get("metric")
    )


@stage("rdm_features")
def rdm_features(params, inputs, ctx):
    """One feature space of one data set's stimuli as a correlation-distance model RDM."""
    stim = label_stimuli(_dataset(params), params["captions"], params["templates"])
    options = dict(params["options"])
    device = ctx.get("device", "cpu")
    if device != "cpu" and params["name"] in CAPTION_SPACES:
        options.setdefault("device", device)
    fs = feature_space(params["name"], stim, **options)
    X = np.asarray(fs.X, dtype=np.float64)
    return {
        "rdm": compute_rdm(X, metric="correlation"),
        "dim": int(X.shape[1]),
        "captions_from": stim.metadata["captions_from"],
    }


@stage("rdm_layers")
def rdm_layers(params, inputs, ctx):
    """Every layer of a vision model (or trained network) as an RDM over the stimuli."""
    from brainalign.networks.layers import layer_rdms
    from brainalign.networks.zoo import ZooModel, get_model

    ds = _dataset(params)
    try:
        images = ds.read_images()
    except DataFormatError:  # images of different sizes: one square size for all
        images = ds.read_images(size=256)
    if len(images) > 1 and (images == images[:1]).all():
        raise DataFormatError(
            f"{ds.root / 'stimuli.tsv'}: every stimulus's image is the same picture, so "
            f"{params['model']} would score placeholders; give each stimulus its image, or drop "
            "the image column to run the caption and label models only"
        )
    if params.get("checkpoints"):
        entry = ZooModel(params["model"], "blt", options={"checkpoints": params["checkpoints"]})
    elif params.get("entry"):  # a [[models]] table of the study
        entry = ZooModel.from_dict(params["entry"])
    else:
        entry = get_model(params["model"])
    rdms = layer_rdms(
        entry,
        images,
        pooling=None if params["pooling"] == "none" else "mean",
        device=ctx.get("device", "cpu"),
    )
    return {"layers": list(rdms), "rdms": np.stack(list(rdms.values()))}


def language_layer_groups(names) -> dict[str, list[int]]:
    """``{family: [layer, ...]}`` of ``language_layers`` entries (a family is all its layers)."""
    from brainalign.features.language_layers import LAYER_FAMILIES, parse_layer_space

    out: dict[str, list[int]] = {}
    for name in names:
        if name in LAYER_FAMILIES:
            layers = list(range(LAYER_FAMILIES[name][1] + 1))
        else:
            parsed = parse_layer_space(name)
            if parsed is None:
                continue  # check() names it
            name, layers = parsed[0], [parsed[1]]
        out[name] = sorted(set(out.get(name, [])) | set(layers))
    return out


@stage("rdm_language_layers")
def rdm_language_layers(params, inputs, ctx):
    """Hidden layers of a sentence encoder as correlation-distance RDMs over the stimuli's
    captions, every layer from one forward pass (:mod:`brainalign.features.language_layers`)."""
    from brainalign.features.language_layers import LAYER_FAMILIES, caption_layer_embeddings
    from brainalign.features.sentence import SentenceEncoder

    stim = label_stimuli(_dataset(params), params["captions"], params["templates"])
    encoder = params["options"].get("encoder") or LAYER_FAMILIES[params["family"]][0]
    enc = SentenceEncoder(encoder, device=ctx.get("device", "cpu"))
    X = caption_layer_embeddings(stim.captions, enc, params["layers"])
    return {
        "layers": [f"layer{k:02d}" for k in params["layers"]],
        "rdms": np.stack(
            [compute_rdm(X[k].astype(np.float64), metric="correlation") for k in params["layers"]]
        ),
    }


def _models(params, inputs, ds) -> list[tuple[str, str, np.ndarray]]:
    """(model, layer, condensed RDM) in config order: feature spaces, vision, language layers,
    data models."""
    feats = {tid.model: res for tid, res in upstream(inputs, "rdm_features")}
    layers = {tid.model: res for tid, res in upstream(inputs, "rdm_layers")}
    layers.update({tid.model: res for tid, res in upstream(inputs, "rdm_language_layers")})
    out = [(name, "", np.asarray(feats[name]["rdm"])) for name in params["spaces"]]
    for name in [*params["vision"], *params.get("language", [])]:
        res = layers[name]
        out += [
            (name, lab, np.asarray(r)) for lab, r in zip(res["layers"], res["rdms"], strict=True)
        ]
    if params["data_models"]:
        # condensed straight from the memory-mapped file: no n × n float64 copy
        out += [(f"rdm:{k}", "", v.condensed()) for k, v in ds.models.items()]
    return out


@stage("rdm_evaluate")
def rdm_evaluate(params, inputs, ctx):
    """Every model against every ROI of one data set with one method
    (:func:`brainalign.rsa.evaluate_rois`): scores, ceilings, bootstrap inference, pairwise
    tests, per-subject scores and group RDMs."""
    ds = _dataset(params, params["rois"])
    models = _models(params, inputs, ds)
    method = params["method"]
    keys = [{"model": m, "layer": lay} for m, lay, _ in models]
    M = compact_rdms(np.stack([r for _, _, r in models]), method)
    del models  # M holds them: one copy of the model RDMs
    # each ROI condensed when its turn comes (8 bytes per pair and subject), built tile by tile
    # from the memory-mapped file (issue 23: no n × n float64 copies)
    data = ((roi, ds.subjects[roi], ds.condensed(roi)) for roi in ds.rois)
    ev = evaluate_rois(
        M,
        data,
        method,
        model_keys=keys,
        bootstrap=_inference(params, method, ds),
        n_bootstrap=params["n_bootstrap"],
        pool=params["pool"],
        ci=params["ci"],
        random_state=params["random_state"],
    )
    at = {"dataset": params["label"]}
    return {
        "dataset": params["label"],
        **{
            name: [{**at, **row} for row in getattr(ev, name)]
            for name in ("scores", "ceilings", "pairwise", "subject_scores")
        },
        "rois": ev.rois,
        "group_rdms": ev.group_rdms,
        "stimulus_ids": ds.stimulus_ids,
    }


def stimulus_columns(root) -> frozenset[str] | None:
    """The column names of ``root/stimuli.tsv`` (None without a readable one: the data kind's
    check says what is wrong). The config check and each planning of a run ask for them; the
    header is read once per version of the file (its size and modification time)."""
    path = Path(root, "stimuli.tsv")
    try:
        stat = path.stat()
        return _header(str(path), stat.st_size, stat.st_mtime_ns)
    except (OSError, UnicodeDecodeError):
        return None


@functools.lru_cache(maxsize=32)
def _header(path: str, size: int, mtime_ns: int) -> frozenset[str]:
    # read_stimulus_table's reading of the header: tab-separated, names stripped
    with open(path, encoding="utf-8-sig", newline="") as f:
        return frozenset(c.strip() for c in f.readline().rstrip("\r\n").split("\t"))


def _has_images(s: dict) -> bool:
    """Whether data set ``s`` has an image per stimulus (an importer's set, not yet written,
    will: both importers write the 92 images)."""
    columns = stimulus_columns(s["root"])
    if columns is None and s["importer"] is not None:
        return True
    if columns is None:
        read_stimulus_table(s["root"], check_images=False)  # raises what is wrong with it
    return columns is not None and "image" in columns


def _inference(params, method: str, ds) -> str:
    """The bootstrap of one method: the configured one, or the t-test across subjects for the
    methods outside ``bootstrap_methods`` — which one subject cannot give: there, the stimuli."""
    if method in params["bootstrap_methods"]:
        return params["bootstrap"]
    return "none" if min(len(ds.subjects[roi]) for roi in ds.rois) > 1 else "auto"


#: peak memory of the ``rdm_evaluate`` stage in condensed float64 rows (8 bytes per pair)
#: beyond the data (n_subjects rows) and the models (n_models rows), measured on 2 subjects
#: (tests/faults/test_large_rdm_sets.py, benchmarks/bench_rdm_memory.py): Pearson and cosine
#: sum in blocks (a pair-weight row, the group mean, a little); Kendall's tau-a runs scipy on
#: whole vectors; Spearman: :func:`_spearman_rows`
_EXTRA_ROWS = {"pearson": 3.5, "cosine": 3.5, "kendall_tau_a": 11.0}
#: the Python process with numpy, scipy and pandas loaded
_BASE_BYTES = 300 << 20


def _spearman_rows(n_subjects: int, n_models: int) -> float:
    """Spearman's working rows (8 bytes per pair) beyond the data and models
    (:mod:`brainalign.rsa._long_ranks`): int32 sort orders of every data, model and kept pool
    row (one pool with two subjects, the S + 1 leave-one-out pools with more), int32 ranks of
    the data and of the models, 1-byte weights, tie bits and blocks (measured: 4.2 rows with 2
    subjects and 1 model); with three or more subjects a pool is sorted afresh on a sample
    (float64 values, argsort's int64 order, the int32 order: 2.5 rows)."""
    S, k = n_subjects, n_models
    pools = 1 if S == 2 else S + 1
    rows = 0.5 * (S + k + pools) + 0.5 * (S + k) + 0.75
    return rows + (2.5 if S > 2 else 0.0)


def evaluation_memory_bytes(
    n_stimuli: int, n_subjects: int, n_models: int, method: str, bootstrap: str = "dual"
) -> int:
    """Estimated peak memory (bytes) of one ``rdm_evaluate`` task (for ``--dry-run``).

    Parameters
    ----------
    n_stimuli, n_subjects : int
        Of the data set's largest ROI.
    n_models : int
        Model RDMs compared (feature spaces, every vision layer, data models).
    method : {"pearson", "cosine", "spearman", "kendall_tau_a"}
    bootstrap : str
        ``"none"`` needs no pair weights (Pearson, cosine).

    Returns
    -------
    int
        The condensed data and model RDMs (8 bytes per pair each; Spearman keeps a float32 file's
        exact values as float32, so this is an upper bound there) plus the method's working
        rows (``_EXTRA_ROWS``, :func:`_spearman_rows`, measured) and the process itself; the
        data file is read through a memory map and not counted (the kernel drops its pages as
        needed).
    """
    n_pairs = n_stimuli * (n_stimuli - 1) // 2
    if method == "spearman":
        extra = _spearman_rows(n_subjects, n_models)
    else:
        extra = _EXTRA_ROWS[method]
    if bootstrap == "none" and method in ("pearson", "cosine"):
        extra -= 1.0
    return int(8 * n_pairs * (n_subjects + n_models + extra)) + _BASE_BYTES


@stage("rdm_summary")
def rdm_summary(params, inputs, ctx):
    """All data sets' tables, FDR over each ROI's pairwise tests, known results, MDS."""
    import pandas as pd

    results = [res for _, res in upstream(inputs, "rdm_evaluate")]
    tables = {
        key: pd.DataFrame([row for res in results for row in res[key]])
        for key in ("scores", "ceilings", "pairwise", "subject_scores")
    }
    pw = tables["pairwise"]
    if len(pw):
        pw["q"] = np.nan
        for _, idx in pw.groupby(["dataset", "roi", "method"]).groups.items():
            pw.loc[idx, "q"] = fdr(pw.loc[idx, "p"].to_numpy(), q=params["fdr_q"]).qvalues
        pw["significant"] = pw["q"] <= params["fdr_q"]
    group_rdms, ids, mds = {}, {}, {}
    for res in results:
        label = res["dataset"]
        ids[label] = list(res["stimulus_ids"])
        for roi, rdm in zip(res["rois"], np.asarray(res["group_rdms"]), strict=True):
            group_rdms[(label, roi)] = rdm
    out = {f"table_{k}": v.to_dict("list") for k, v in tables.items()}
    out["table_layer_choice"] = layer_choice(tables["subject_scores"]).to_dict("list")
    for i, ((label, roi), rdm) in enumerate(sorted(group_rdms.items())):
        coords, stress = rdm_mds(rdm, method=params["mds"])
        mds[f"mds_{i}"] = {"dataset": label, "roi": roi, "stress": stress}
        out[f"mds_{i}"] = coords
    out["mds"] = list(mds.values())
    if params["known_results"]:
        method = params["primary"]
        known = objects92_known_results(
            tables["scores"],
            tables["subject_scores"],
            group_rdms,
            ids,
            method=method,
            n_permutations=params["n_permutations"],
            random_state=params["random_state"],
        )
        out["table_known"] = known.to_dict("list")
    return out


#: the columns of tables/rdm_layer_choice.csv, in reading order
_LAYER_CHOICE_COLUMNS = [
    "dataset",
    "roi",
    "method",
    "model",
    "n_subjects",
    "best_layer_in_sample",
    "in_sample_score",
    "held_out_layers",
    "held_out_score",
    "chosen_on",
]


def layer_choice(subject_scores):
    """Per data set, ROI, method and layered model: its best layer chosen on held-out subjects
    (:func:`brainalign.rsa.layer_choice.held_out_best_layer`, leave-one-subject-out), beside the
    in-sample best layer; with one subject, the in-sample choice, labelled as such."""
    import pandas as pd

    from brainalign.rsa.layer_choice import held_out_best_layer

    if not len(subject_scores) or "layer" not in subject_scores:
        return pd.DataFrame()
    d = subject_scores.assign(layer=subject_scores["layer"].fillna(""))
    rows = []
    keys = ["dataset", "roi", "method", "model"]
    for (label, roi, method, model), v in d[d["layer"] != ""].groupby(keys, sort=False):
        order = list(dict.fromkeys(v["layer"]))  # the layers in depth order, as scored
        S = v.pivot_table(index="subject", columns="layer", values="score", aggfunc="mean")
        c = held_out_best_layer(S.reindex(columns=order).to_numpy())
        picks = pd.Series([order[i] for i in c.chosen]).value_counts(sort=True)
        rows.append(
            {
                "dataset": label,
                "roi": roi,
                "method": method,
                "model": model,
                "n_subjects": len(S),
                "best_layer_in_sample": order[c.best_layer],
                "in_sample_score": c.in_sample_score,
                "held_out_layers": "; ".join(f"{lay} ×{n}" for lay, n in picks.items()),
                "held_out_score": c.held_out_score,
                "chosen_on": c.chosen_on,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------- plan
def set_key(s: dict, group: str) -> str:
    from brainalign.pipeline.data_kinds.rdms import set_key as key

    return key(s, group)


def _sets(b) -> list[dict]:
    return data_sets(b.config)


def features_task(b, s: dict, name: str) -> Task:
    """The task of feature space ``name`` on the stimuli of data set ``s``: it keys the files of
    its set it reads (set_key); the data task, which checks every set, only orders the run, so an
    edit in one set reruns that set's tasks alone."""
    cfg, d = b.config, b.config.data
    options = cfg.features.options.get(name, {})
    return Task(
        TaskId("rdm_features", model=name, dataset=s["label"]),
        {
            "root": s["root"], "set": s, "metric": d.metric, "name": name, "options": options,
            "captions": d.captions, "templates": list(d.templates),
            "inputs": set_key(s, "stimuli"), **option_files(options),
        },
        after=(b.plan.data,),
    )  # fmt: skip


def plan(b) -> dict[str, Task]:
    cfg = b.config
    a = cfg.analyses.rdm_rsa
    d = cfg.data
    targets: dict[str, Task] = {}
    evaluations = {}
    declared = {m.name: m for m in cfg.models}
    for s in _sets(b):
        at = {"root": s["root"], "set": s, "metric": d.metric}
        vision = list(a.vision) + list(a.networks)
        if vision and not _has_images(s):
            b.plan.notes.append(
                RunWarning(
                    f"{s['label']}: {', '.join(vision)}",
                    "vision models left out: the data set has no images (stimuli.tsv has no "
                    "image column); caption and label models are scored",
                    "analyses.rdm_rsa.vision",
                )
            )
            vision = []
        # each task keys the files of its set it reads (set_key); the data task, which checks
        # every set, only orders the run, so an edit in one set reruns that set's tasks alone
        after = (b.plan.data,)
        deps = {}
        for name in cfg.features.spaces:
            t = features_task(b, s, name)
            deps[t.id] = targets[f"features/{s['label']}/{name}"] = t
        for name in vision:
            ckpts = [str(p) for p in a.networks.get(name, [])]
            t = Task(
                TaskId("rdm_layers", model=name, dataset=s["label"]),
                {
                    **at,
                    "model": name,
                    "checkpoints": ckpts,
                    "entry": declared[name].entry() if name in declared else None,
                    "pooling": a.vision_pooling,
                    "inputs": set_key(s, "images"),
                    # the files a [[models]] table names key the task as checkpoints do
                    **option_files(
                        {
                            "checkpoints": ckpts,
                            **(declared[name].options if name in declared else {}),
                        }
                    ),
                },
                after=after,
            )
            deps[t.id] = targets[f"layers/{s['label']}/{name}"] = t
        language = language_layer_groups(a.language_layers)
        for family, layers in language.items():
            options = cfg.features.options.get(family, {})
            t = Task(
                TaskId("rdm_language_layers", model=family, dataset=s["label"]),
                {
                    **at,
                    "family": family,
                    "layers": layers,
                    "options": options,
                    "captions": d.captions,
                    "templates": list(d.templates),
                    "inputs": set_key(s, "stimuli"),
                    **option_files(options),
                },
                after=after,
            )
            deps[t.id] = targets[f"language/{s['label']}/{family}"] = t
        for method in a.methods:
            t = Task(
                TaskId("rdm_evaluate", method=method, dataset=s["label"]),
                {
                    **at,
                    "label": s["label"],
                    "rois": s["rois"],
                    "method": method,
                    "spaces": list(cfg.features.spaces),
                    "vision": vision,
                    "language": list(language),
                    "data_models": a.data_models,
                    "bootstrap": a.bootstrap,
                    "bootstrap_methods": list(a.bootstrap_methods),
                    "n_bootstrap": a.n_bootstrap,
                    "pool": a.ceiling_pool,
                    "ci": a.ci,
                    "random_state": cfg.compute.random_state,
                    "inputs": set_key(s, "all"),
                },
                deps,
                after,
            )
            evaluations[t.id] = t
    targets["summary"] = Task(
        TaskId("rdm_summary"),
        {
            "fdr_q": a.fdr_q,
            "known_results": a.known_results,
            "primary": a.methods[0],
            "n_permutations": a.n_permutations,
            "random_state": cfg.compute.random_state,
            "mds": a.mds,
        },
        evaluations,
    )
    return targets


def check(cfg) -> list[str]:
    from brainalign.networks.zoo import KINDS, list_models

    a = cfg.analyses.rdm_rsa
    if cfg.data.kind != "rdms":
        return []
    problems = []
    if not a.methods:
        problems.append("analyses.rdm_rsa.methods: name at least one comparison method")
    if len(set(a.methods)) != len(a.methods):
        problems.append(f"analyses.rdm_rsa.methods: duplicates in {a.methods}")
    declared = [m.name for m in cfg.models]
    unknown = [v for v in a.vision if v not in list_models() and v not in declared]
    if unknown:
        problems.append(
            f"analyses.rdm_rsa.vision: unknown model(s) {unknown}"
            f"{did_you_mean(unknown, [*list_models(), *declared])}; the zoo's: {list_models()}, "
            f"the study's [[models]]: {declared} (docs/config.md)"
        )
    if len(set(declared)) != len(declared):
        problems.append(f"models: names {declared} repeat; give each model a distinct name")
    problems += _check_language_layers(a.language_layers)
    for i, m in enumerate(cfg.models):
        if m.kind not in KINDS:
            problems.append(f"models[{i}].kind: unknown {m.kind!r}; known kinds {sorted(KINDS)}")
    if a.bootstrap in ("dual", "subjects", "none"):
        problems += _one_subject_rois(cfg, a.bootstrap)
    problems += _missing_columns(cfg)
    for name, paths in a.networks.items():
        if name in a.vision:
            problems.append(f"analyses.rdm_rsa.networks.{name}: also listed in vision")
        missing = [str(p) for p in paths if not Path(p).exists()]
        if not paths or missing:
            problems.append(
                f"analyses.rdm_rsa.networks.{name}: list its checkpoint files (missing: {missing})"
            )
    return problems


def _check_language_layers(names) -> list[str]:
    from brainalign.features.language_layers import (
        LAYER_FAMILIES,
        layer_space_names,
        parse_layer_space,
    )

    known = [n for f in LAYER_FAMILIES for n in (f, *layer_space_names(f))]
    bad = [n for n in names if n not in LAYER_FAMILIES and parse_layer_space(n) is None]
    if not bad:
        return []
    return [
        f"analyses.rdm_rsa.language_layers: unknown {bad}{did_you_mean(bad, known)}; give a "
        f"family ({', '.join(LAYER_FAMILIES)}: all its layers) or one layer ("
        + ", ".join(f"{f}@0 … {layer_space_names(f)[-1]}" for f in LAYER_FAMILIES)
        + ")"
    ]


#: what a feature space's ``needs`` asks of stimuli.tsv: any one of these columns
_NEEDED_COLUMNS = {"categories": ("category",), "animacy": ("category", "animate")}


def _missing_columns(cfg) -> list[str]:
    """A problem per feature space whose ``needs`` a data set's stimuli.tsv cannot give."""
    problems = []
    for s in data_sets(cfg):
        columns = stimulus_columns(s["root"])
        if columns is None:
            continue  # an importer's set (written with categories) or the data kind's problem
        for name in cfg.features.spaces:
            for need in feature_space_needs(name):
                wanted = _NEEDED_COLUMNS.get(need, ())
                if wanted and not any(c in columns for c in wanted):
                    problems.append(
                        f"features.spaces: {name!r} needs a {' or '.join(map(repr, wanted))} "
                        f"column in {Path(s['root'], 'stimuli.tsv')} (docs/datasets.md); add "
                        f"it, or remove {name!r} from features.spaces"
                    )
    return problems


def _one_subject_rois(cfg, bootstrap: str) -> list[str]:
    """A problem per data set with an ROI of one subject, which ``bootstrap`` cannot test."""
    problems = []
    for s in data_sets(cfg):
        if s["importer"] is not None or not Path(s["root"]).is_dir():
            continue  # not written yet, or the data kind's check names the folder
        try:
            subjects = load_rdm_dataset(s["root"], s["rois"], metric=cfg.data.metric).subjects
        except BrainAlignError:
            continue  # the data kind's check says what is wrong with the folder
        one = [roi for roi, names in subjects.items() if len(names) < 2]
        if one:
            problems.append(
                f"analyses.rdm_rsa.bootstrap: {bootstrap!r} resamples or tests across subjects, "
                f"but ROI(s) {one} of {s['label']!r} have one subject; set bootstrap = 'auto' "
                "(the stimulus bootstrap there) or 'stimuli'"
            )
    return problems


# ------------------------------------------------------------------------------------- export
_SCORE_COLUMNS = ["dataset", "roi", "model", "layer", "method", "score", "ci_low", "ci_high"]


def export(ctx, targets) -> None:
    import pandas as pd

    w = ctx.writer
    summ = ctx.load(targets["summary"])
    scores = pd.DataFrame(summ["table_scores"])
    w.table("rdm_scores", scores[_SCORE_COLUMNS])
    detail = [c for c in scores.columns if c not in _SCORE_COLUMNS]
    w.table("rdm_inference", scores[_SCORE_COLUMNS + detail])
    ceil = pd.DataFrame(summ["table_ceilings"])
    published = {}
    for s in data_sets(ctx.config):
        ensure_imported(s)
        ds = load_rdm_dataset(s["root"], [], check_images=False)
        for roi, v in (ds.meta.get("published_noise_ceiling_r2") or {}).items():
            published[(s["label"], roi)] = float(v)
    ceil["published_upper_r2"] = [
        published.get((d, r), np.nan) if m == "spearman" and p == "mean" else np.nan
        for d, r, m, p in zip(
            ceil["dataset"], ceil["roi"], ceil["method"], ceil["pool"], strict=True
        )
    ]
    ceil["matches_published"] = [
        None if not np.isfinite(x) else bool(abs(round(u, 4) - x) < 1e-9)
        for u, x in zip(ceil["upper_r2"], ceil["published_upper_r2"], strict=True)
    ]
    w.table(
        "noise_ceiling",
        ceil[
            [
                "dataset",
                "roi",
                "method",
                "lower",
                "upper",
                "upper_r2",
                *[
                    c
                    for c in ceil.columns
                    if c not in ("dataset", "roi", "method", "lower", "upper", "upper_r2")
                ],
            ]
        ],
    )
    if "algonauts_r2" in scores:
        alg = scores[scores["method"] == "spearman"].merge(
            ceil[ceil["method"] == "spearman"][["dataset", "roi", "upper_r2"]],
            on=["dataset", "roi"],
        )
        # the published score squares the sign away: the signed score and the flag say where
        # a model correlates negatively (issue 20)
        alg = alg.assign(
            ceiling_r2=alg["upper_r2"],
            pct_of_ceiling=100 * alg["algonauts_r2"] / alg["upper_r2"],
            signed_pct_of_ceiling=100 * alg["algonauts_r2_signed"] / alg["upper_r2"],
            spearman=alg["score"],
            negative=alg["score"] < 0,
            n_negative=alg["n_negative"].astype(int),
        )
        w.table(
            "algonauts_scores",
            alg[
                [
                    "dataset",
                    "roi",
                    "model",
                    "layer",
                    "algonauts_r2",
                    "algonauts_r2_signed",
                    "ceiling_r2",
                    "pct_of_ceiling",
                    "signed_pct_of_ceiling",
                    "spearman",
                    "ci_low",
                    "ci_high",
                    "negative",
                    "n_negative",
                    "n_subjects",
                ]
            ],
        )
    w.table("rdm_pairwise", pd.DataFrame(summ["table_pairwise"]))
    w.table("rdm_subject_scores", pd.DataFrame(summ["table_subject_scores"]))
    if summ.get("table_layer_choice"):
        choice = pd.DataFrame(summ["table_layer_choice"])
        w.table("rdm_layer_choice", choice[[c for c in _LAYER_CHOICE_COLUMNS if c in choice]])
    if "table_known" in summ:
        w.table("known_results", pd.DataFrame(summ["table_known"]))
    _export_figure_data(ctx, targets, summ)


def _export_figure_data(ctx, targets, summ) -> None:
    """What the report's figures read: stimuli, group and model RDMs, MDS, thumbnails."""
    import pandas as pd
    from PIL import Image

    w = ctx.writer
    rows = []
    for s in data_sets(ctx.config):
        label = s["label"]
        ds = load_rdm_dataset(s["root"], s["rois"], metric=ctx.config.data.metric)
        order = ds.category_order()
        cats = ds.categories or [""] * ds.n_stimuli
        rows += [
            {
                "dataset": label,
                "position": i,
                "stimulus": sid,
                "label": lab,
                "category": cat,
                "display_order": int(np.flatnonzero(order == i)[0]),
            }
            for i, (sid, lab, cat) in enumerate(zip(ds.stimulus_ids, ds.labels, cats, strict=True))
        ]
        for roi in ds.rois:
            w.array(f"rdmset__{label}__brain__{roi}", ds.group_rdm(roi))
        for name in ctx.config.features.spaces:
            t = targets.get(f"features/{label}/{name}")
            if t is not None:
                w.array(f"rdmset__{label}__model__{name}", squareform_rdm(ctx.load(t)["rdm"]))
        for name, sq in ds.models.items():
            w.array(f"rdmset__{label}__model__rdm:{name}", np.asarray(sq))
        if ds.has_images:  # a label-only data set's MDS shows dots
            thumbs = []
            for p in ds.image_paths():
                with Image.open(p) as im:
                    thumbs.append(np.asarray(im.convert("RGB").resize((40, 40), Image.BILINEAR)))
            w.array(f"rdmthumbs__{label}", np.stack(thumbs).astype(np.uint8))
    w.table("rdm_stimuli", pd.DataFrame(rows))
    for i, m in enumerate(summ["mds"]):
        w.array(f"rdmmds__{m['dataset']}__{m['roi']}", np.asarray(summ[f"mds_{i}"]))
    w.table("rdm_mds", pd.DataFrame(summ["mds"]))


# ------------------------------------------------------------------------------------- report
def _primary(run) -> str:
    return run_section(run, "rdm_rsa", RdmRsaConfig).methods[0]


def _label(model: str, layer) -> str:
    return f"{model} · {layer}" if isinstance(layer, str) and layer else model


def _data_section(run) -> str:
    ceil = run.table("noise_ceiling")
    stim = run.table("rdm_stimuli")
    if ceil is None or stim is None or "upper_r2" not in ceil:
        return ""
    parts = ["<h3>Data sets</h3>"]
    for label, d in stim.groupby("dataset", sort=False):
        n_cat = d["category"].nunique()
        rois = ceil[ceil["dataset"] == label][["roi", "n_subjects"]].drop_duplicates()
        parts.append(
            f"<p><b>{esc(label)}</b>: {len(d)} stimuli in {n_cat} categories; ROIs "
            + ", ".join(
                f"{esc(r)} ({n} subjects)"
                for r, n in zip(rois["roi"], rois["n_subjects"], strict=True)
            )
            + ".</p>"
        )
    parts.append(
        "<h3>Noise ceilings</h3><p class='note'>Lower bound: each subject's RDM against the "
        "pool of the other subjects'; upper bound: against the pool of all (mean over subjects). "
        "<code>upper_r2</code> is the mean over subjects of the squared upper-bound correlation: "
        "for Spearman with mean pooling, the Algonauts 2019 noise ceiling; "
        "<code>published_upper_r2</code> is the published value where there is one.</p>"
    )
    parts.append(run.show_html("noise_ceiling", ceil, title="", row_class=_match_class))
    return "".join(parts)


def _match_class(row) -> str:
    """Row colour of the noise-ceiling table: green where it matches the published value."""
    return {"True": "good", "False": "bad"}.get(str(row.get("matches_published")), "")


def _known_section(run) -> str:
    known = run.table("known_results")
    if known is None:
        return ""
    status = known["passed"].map(
        lambda v: "pass" if str(v) == "True" else "fail" if str(v) == "False" else "n/a"
    )
    shown = known.assign(result=status)[["result", "claim", "datasets", "numbers"]]
    n_pass, n_fail = int((status == "pass").sum()), int((status == "fail").sum())
    return (
        f"<p>{n_pass} of {n_pass + n_fail} applicable published results reproduced "
        "(computed automatically from this run's scores; nothing is tuned to them).</p>"
        + run.show_html(
            "known_results",
            shown,
            title="",
            row_class=lambda r: {"pass": "good", "fail": "bad"}.get(r["result"], ""),
        )
    )


def _scores_section(run) -> str:
    import pandas as pd

    scores = run.table("rdm_inference")
    ceil = run.table("noise_ceiling")
    if scores is None or ceil is None:
        return ""
    method = _primary(run)
    scores = scores.assign(layer=scores["layer"].fillna(""))
    parts = [
        f"<p class='note'>Primary method: {esc(method)}. Bars: score (mean over subjects of the "
        "model–brain RDM correlation) with its CI; for networks read layer by layer (vision, "
        "language) the bar is the best layer chosen on these data, so optimistic: the layer "
        "profiles give each one's best layer chosen on held-out subjects and its unbiased "
        "score; every layer is in the layer profiles and every "
        "pairwise test in <code>tables/rdm_pairwise.csv</code>. All "
        "methods are in <code>tables/rdm_scores.csv</code>.</p>"
    ]
    alg = run.table("algonauts_scores")
    if alg is not None and "algonauts_r2_signed" in alg:
        parts.append(
            "<p class='note'><code>algonauts_r2</code>: the Algonauts 2019 score (mean over "
            "subjects of the squared Spearman correlation), which squares the sign away; "
            "<code>algonauts_r2_signed</code>: the mean of sign(r)·r²; <code>n_negative</code>: "
            "subjects whose correlation is negative. Rows in red: a negative mean correlation "
            "(every model and layer: <code>tables/algonauts_scores.csv</code>, column "
            "<code>negative</code>).</p>"
        )
    for (label, roi), d in scores[scores["method"] == method].groupby(
        ["dataset", "roi"], sort=False
    ):
        c = ceil[(ceil["dataset"] == label) & (ceil["roi"] == roi) & (ceil["method"] == method)]
        band = (float(c["lower"].iloc[0]), float(c["upper"].iloc[0])) if len(c) else None
        if band is not None and not np.isfinite(band).all():
            band = None  # one subject: no ceiling
        shown = [d[d["layer"] == ""]]
        for _, v in d[d["layer"] != ""].groupby("model", sort=False):
            shown.append(v.loc[[v["score"].idxmax()]])
        sel = pd.concat(shown)
        sel = sel.assign(
            label=[_label(m, la) for m, la in zip(sel["model"], sel["layer"], strict=True)]
        )
        parts.append(f"<h3>{esc(label)} · {esc(roi)}</h3>")
        parts.append(_comparison_figure(run, sel, band, label, roi, method, len(d)))
        cols = ["model", "layer", "score", "ci_low", "ci_high", "p_zero", "p_noise"]
        tab = sel[cols]
        if alg is not None:
            cols = [c for c in _ALGONAUTS_SHOWN if c in alg]  # older runs: the unsigned only
            a = alg[(alg["dataset"] == label) & (alg["roi"] == roi)][
                ["model", "layer", *cols]
            ].assign(layer=lambda x: x["layer"].fillna(""))
            tab = tab.merge(a, on=["model", "layer"], how="left")
        parts.append(
            run.show_html(
                "rdm_inference",
                tab.sort_values("score", ascending=False),
                title="",
                row_class=lambda r: "bad" if r["score"] < 0 else "",
            )
        )
        run.mark_shown("algonauts_scores")  # its columns are in these tables
    parts.append(_caption_standing(run, scores, method))
    return "".join(parts)


#: how each bootstrap mode of :func:`brainalign.rsa.evaluate_models` tests, for the captions
_INFERENCE = {
    "dual": "dual-bootstrap t-tests over subjects and stimuli",
    "subjects": "subject-bootstrap t-tests",
    "stimuli": "stimulus-bootstrap t-tests (one subject: no test across subjects, no ceiling)",
    "none": "t-tests across subjects",
}

#: the Algonauts columns beside the model scores: the published score, the signed one and
#: the number of subjects whose correlation is negative
_ALGONAUTS_SHOWN = ("algonauts_r2", "algonauts_r2_signed", "pct_of_ceiling", "n_negative")


def _comparison_figure(run, sel, band, label: str, roi: str, method: str, n_models: int) -> str:
    """rsatoolbox-style comparison of the models ``sel`` shows in one data set's ROI: bars
    with CIs, subject dots, the noise ceiling and lines for the significant pairs of
    ``tables/rdm_pairwise.csv`` (the FDR family: every pair of the ROI and method)."""
    import pandas as pd

    subj = run.table("rdm_subject_scores")
    pw = run.table("rdm_pairwise")
    at = {"dataset": label, "roi": roi, "method": method}
    subj = _rows(subj, at)
    subj = subj.assign(model=_labels(subj, "model", "layer"))
    subj = subj[subj["model"].isin(set(sel["label"]))]
    if not len(subj):  # an older run folder without subject scores: bars alone
        subj = pd.DataFrame({"model": sel["label"], "subject": 0, "score": sel["score"]})
    pairs = _rows(pw, at)
    if len(pairs):
        pairs = pairs.assign(
            model_a=_labels(pairs, "model_a", "layer_a"),
            model_b=_labels(pairs, "model_b", "layer_b"),
        )
    summary = sel.assign(model=sel["label"])[["model", "score", "ci_low", "ci_high"]]
    fig = plots.model_comparison_figure(
        subj,
        pairs,
        value="score",
        summary=summary,
        ceiling=band,
        ceiling_label="noise ceiling (lower to upper bound)",
        highlight=[x for x in sel["label"] if x.split(" ")[0] in CAPTION_SPACES],
        title=f"{label} · {roi}",
        ylabel=f"{method} (model vs brain RDM)",
    )
    cfg = run_section(run, "rdm_rsa", RdmRsaConfig)
    # the inference each ROI's evaluation used (older runs: the configured one)
    used = sel["bootstrap"] if "bootstrap" in sel else [cfg.bootstrap]
    test = "; ".join(_INFERENCE.get(b, f"{b} bootstrap") for b in sorted(set(used)))
    shown = list(summary["model"])
    n_sig = len(plots.significant_pairs(pairs, shown))
    red = (
        "; red: caption-embedding models"
        if any(x.split(" ")[0] in CAPTION_SPACES for x in shown)
        else ""
    )
    return img_html(
        plots.figure_to_base64(fig),
        f"Bars: score with its {100 * cfg.ci:.0f}% CI, dots: subjects, models by "
        f"descending score; grey band: noise ceiling (lower to upper bound){red}. Lines above "
        f"the bars (Golan wings): significant pairs, {n_sig} among "
        f"the {len(shown)} models shown ({test}; Benjamini–Hochberg FDR q < "
        f"{cfg.fdr_q} over all {len(pairs)} pairs of the {n_models} models, every "
        f"layer of each network, of {label} · {roi} · {method}; a dot marks the better model, "
        "a tick each model it beats). "
        "Every pair is in tables/rdm_pairwise.csv.",
    )


def _rows(df, at: dict):
    """Rows of ``df`` matching every column: value of ``at`` (an empty frame for None)."""
    import pandas as pd

    if df is None:
        return pd.DataFrame()
    keep = np.ones(len(df), dtype=bool)
    for col, v in at.items():
        keep &= (df[col] == v).to_numpy()
    return df[keep]


def _labels(df, model: str, layer: str) -> list[str]:
    """The report's label of each row's model (``model · layer`` for a network's layer)."""
    layers = df[layer].fillna("") if layer in df else [""] * len(df)
    return [_label(m, la) for m, la in zip(df[model], layers, strict=True)]


def _caption_standing(run, scores, method) -> str:
    """Where the caption-embedding models stand against the others on each data set's IT."""
    import pandas as pd

    pw = run.table("rdm_pairwise")
    if pw is None:
        return ""
    parts = [
        "<h3>Caption-embedding models on IT</h3><p class='note'>Each model's score on IT "
        "(primary method) and its difference from the caption model (MPNet, else MiniLM), "
        "with the dual-bootstrap t-test and BH-FDR over all pairs of the ROI. Reported as "
        "found; no setting was tuned to it.</p>"
    ]
    for w_ in ("layer_a", "layer_b"):
        pw[w_] = pw[w_].fillna("")
    for label, d in scores[(scores["method"] == method) & (scores["roi"] == "IT")].groupby(
        "dataset", sort=False
    ):
        ref = next((c for c in CAPTION_SPACES if (d["model"] == c).any()), None)
        if ref is None:
            continue
        rows = []
        plain = d[d["layer"] == ""]
        vision = d[d["layer"] != ""]
        picks = [r for _, r in plain.iterrows()]
        for _, v in vision.groupby("model", sort=False):
            picks.append(v.loc[v["score"].idxmax()])
        for r in picks:
            sel = pw[(pw["dataset"] == label) & (pw["roi"] == "IT") & (pw["method"] == method)]
            a = sel[
                (sel["model_a"] == ref)
                & (sel["layer_a"] == "")
                & (sel["model_b"] == r["model"])
                & (sel["layer_b"] == r["layer"])
            ]
            b = sel[
                (sel["model_b"] == ref)
                & (sel["layer_b"] == "")
                & (sel["model_a"] == r["model"])
                & (sel["layer_a"] == r["layer"])
            ]
            if len(a):
                diff, p, q = a["diff"].iloc[0], a["p"].iloc[0], a["q"].iloc[0]
            elif len(b):
                diff, p, q = -b["diff"].iloc[0], b["p"].iloc[0], b["q"].iloc[0]
            else:
                diff = p = q = np.nan
            rows.append(
                {
                    "model": _label(r["model"], r["layer"]),
                    "score": r["score"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    f"{ref} − model": diff,
                    "p": p,
                    "q": q,
                }
            )
        tab = pd.DataFrame(rows).sort_values("score", ascending=False)
        rank = list(tab["model"]).index(ref) + 1
        parts.append(f"<p><b>{esc(label)}</b>: {esc(ref)} ranks {rank} of {len(tab)}.</p>")
        parts.append(run.show_html("rdm_pairwise", tab, title=""))
    # no data set with a caption model on IT: no heading either
    return "".join(parts) if len(parts) > 1 else ""


def _profiles_section(run) -> str:
    scores = run.table("rdm_scores")
    ceil = run.table("noise_ceiling")
    if scores is None:
        return ""
    method = _primary(run)
    d = scores[(scores["method"] == method) & scores["layer"].notna()]
    parts = []
    for (label, model), v in d.groupby(["dataset", "model"], sort=False):
        c = ceil[(ceil["dataset"] == label) & (ceil["method"] == method)]
        ceilings = {r: (lo, up) for r, lo, up in zip(c["roi"], c["lower"], c["upper"], strict=True)}
        fig = rdm_plots.layer_profile_figure(
            v, ceilings=ceilings, title=f"{label} · {model}", ylabel=f"{method}"
        )
        parts.append(f"<h3>{esc(label)} · {esc(model)}</h3>")
        parts.append(
            img_html(
                plots.figure_to_base64(fig),
                "Score per layer with its CI; dashed: "
                "lower bound of the noise ceiling; star: best layer (chosen on these data).",
            )
        )
    choice = run.table("rdm_layer_choice")
    if choice is not None and len(choice):
        choice = choice[choice["method"] == method]
        parts.append(
            "<h3>Best layer on held-out subjects</h3><p class='note'>The star of a profile "
            "is the layer with the best mean score, chosen on the scores it reports "
            "(optimistic). Here each subject's layer is chosen on the other subjects "
            "(leave-one-subject-out) and scored on that subject: <code>held_out_score</code> is "
            "the mean of those scores, <code>held_out_layers</code> the layers chosen (× how "
            "many subjects). Where an ROI has one subject there are no others: "
            "<code>chosen_on</code> says the layer was chosen on the data it reports.</p>"
        )
        parts.append(run.show_html("rdm_layer_choice", choice, title=""))
    return "".join(parts)


def _rdms_section(run) -> str:
    stim = run.table("rdm_stimuli")
    if stim is None:
        return ""
    parts = []
    for label, d in stim.groupby("dataset", sort=False):
        d = d.sort_values("position")
        order = np.argsort(d["display_order"].to_numpy())
        cats = list(d["category"].fillna(""))
        arrays = run.arrays(f"rdmset__{label}__")
        brain = {k.split("__")[-1]: v for k, v in arrays.items() if "__brain__" in k}
        models = {k.split("__")[-1]: v for k, v in arrays.items() if "__model__" in k}
        for what, group in (("brain RDMs (mean over subjects)", brain), ("model RDMs", models)):
            if group:
                fig = rdm_plots.ordered_rdms_figure(group, order, cats, title=f"{label}: {what}")
                parts.append(
                    img_html(
                        plots.figure_to_base64(fig),
                        f"{label}: {what}, stimuli "
                        "ordered by category, percentile of dissimilarity.",
                    )
                )
    return "".join(parts)


def _mds_section(run) -> str:
    stim = run.table("rdm_stimuli")
    info = run.table("rdm_mds")
    if stim is None or info is None:
        return ""
    parts = []
    for _, m in info.iterrows():
        coords = run.array(f"rdmmds__{m['dataset']}__{m['roi']}")
        d = stim[stim["dataset"] == m["dataset"]].sort_values("position")
        thumbs = run.array(f"rdmthumbs__{m['dataset']}")
        fig = rdm_plots.mds_figure(
            coords, list(d["category"].fillna("")), thumbs, title=f"{m['dataset']} · {m['roi']}"
        )
        parts.append(
            img_html(
                plots.figure_to_base64(fig, dpi=70),
                f"{m['dataset']} · {m['roi']}: 2-D MDS of the group-mean RDM "
                f"(stress-1 {m['stress']:.3f}); "
                + ("frames" if thumbs is not None else "dots")
                + " coloured by category.",
            )
        )
    return "".join(parts)


#: the methods text of each ``bootstrap`` setting
_BOOTSTRAP_METHODS = {
    "auto": "dual bootstrap over subjects and stimuli (rsatoolbox's eval_dual_bootstrap, "
    "corrected variance of Schütt et al. 2023, dof = min(subjects, stimuli) − 1), or over "
    "stimuli alone where an ROI has one subject (eval_bootstrap_pattern, dof = stimuli − 1; "
    "no noise ceiling)",
    "dual": "dual bootstrap over subjects and stimuli (rsatoolbox's eval_dual_bootstrap, "
    "corrected variance of Schütt et al. 2023, dof = min(subjects, stimuli) − 1)",
    "subjects": "bootstrap over subjects (dof = subjects − 1)",
    "stimuli": "bootstrap over stimuli (rsatoolbox's eval_bootstrap_pattern, dof = stimuli − 1)",
    "none": "t-test across subjects (rsatoolbox's eval_fixed)",
}


def methods(cfg) -> list[str]:
    a = cfg.analyses.rdm_rsa
    if cfg.data.kind != "rdms" or not a.enabled:
        return []
    boot = a.bootstrap
    return [
        "RDM RSA: every model RDM (feature spaces as correlation-distance RDMs over the "
        "stimuli; vision networks layer by layer, "
        f"{'whole feature maps' if a.vision_pooling == 'none' else 'spatially averaged'}; "
        + (
            f"sentence encoders layer by layer ({', '.join(a.language_layers)}: each hidden "
            "layer pooled as the model pools its last, then the mean over an image's captions); "
            if a.language_layers
            else ""
        )
        + "model RDMs given with the data as rdm:<name>) compared with each subject's RDM by "
        f"{', '.join(a.methods)}; score = mean over subjects. Noise ceiling: each "
        f"subject against the {a.ceiling_pool} pool of the others (lower) and of all "
        "(upper).",
        f"Inference ({', '.join(a.bootstrap_methods)}): {_BOOTSTRAP_METHODS[boot]} "
        f"({a.n_bootstrap} samples), t-based {100 * a.ci:.0f}% CIs, pairwise "
        f"t-tests with BH-FDR q = {a.fdr_q} per ROI and method; other methods: t across "
        "subjects (rsatoolbox's eval_fixed; with one subject, the stimulus bootstrap). Each "
        "ROI's inference is in tables/rdm_inference.csv (column bootstrap). Algonauts score: mean squared Spearman, % of the "
        "upper_r2 ceiling, and its signed form, the mean of sign(r)·r² (negative correlations "
        "flagged). Known results checked automatically (see their table).",
        "Layer profiles: a network's best layer is chosen for each subject on the other "
        "subjects (leave-one-subject-out) and scored on that subject "
        "(tables/rdm_layer_choice.csv); where an ROI has one subject, it is chosen on the data "
        "it reports (optimistic), as the table says.",
    ]


ANALYSIS = Analysis(
    name="rdm_rsa",
    configs={"rdm_rsa": RdmRsaConfig},
    plan=plan,
    needs="rdms",
    check=check,
    export=export,
    methods=methods,
    sections=(
        ReportSection("rdm_data", "RDM data and noise ceilings", _data_section),
        ReportSection("known_results", "Known results", _known_section),
        ReportSection("rdm_scores", "Model scores", _scores_section),
        ReportSection("layer_profiles", "Layer profiles", _profiles_section),
        ReportSection("rdm_figures", "RDMs", _rdms_section),
        ReportSection("rdm_mds", "MDS", _mds_section),
    ),
    tables=(
        Table(
            "rdm_scores",
            "Model scores",
            "Per data set, ROI, model (and layer) and method: score and CI.",
            shown=False,
        ),
        Table(
            "rdm_inference",
            "Model scores with inference",
            "The model scores with their tests against zero and against the noise ceiling.",
        ),
        Table(
            "noise_ceiling",
            "Noise ceilings",
            formats={c: "{:.4f}" for c in ("lower", "upper", "upper_r2", "published_upper_r2")},
            max_rows=100,
        ),
        Table(
            "algonauts_scores",
            "Algonauts scores",
            "Mean squared Spearman (the Algonauts 2019 score), the signed mean sign(r)·r² and "
            "their percentages of the upper_r2 ceiling; negative: a negative mean correlation.",
            shown=False,
        ),
        Table("rdm_pairwise", "Pairwise model comparisons", max_rows=40),
        Table(
            "rdm_layer_choice",
            "Best layers chosen on held-out subjects",
            "Per data set, ROI, method and network read layer by layer: the in-sample best "
            "layer and score, the layers chosen leave-one-subject-out and their held-out score.",
            max_rows=80,
        ),
        Table(
            "rdm_subject_scores",
            "Scores per subject",
            "Per subject, model and method: the score of each subject's RDM.",
            shown=False,
        ),
        Table("known_results", "Known results", max_rows=50),
        Table(
            "rdm_stimuli",
            "Stimuli",
            "Per data set: every stimulus, its label, category and display order.",
            shown=False,
        ),
        Table("rdm_mds", "MDS", "Per data set and ROI: the MDS stress.", shown=False),
    ),
)
