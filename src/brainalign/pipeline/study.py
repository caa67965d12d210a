"""Run a whole study: plan → compute what is not cached → export maps and tables → report."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainalign.config import StudyConfig, VirtualDataConfig, load_config
from brainalign.pipeline.cache import StageCache
from brainalign.pipeline.core import RunReport, describe_plan, run_tasks
from brainalign.pipeline.plan import Plan, build_plan

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
PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "sentence-transformers",
    "nilearn",
    "nibabel",
    "dask",
    "distributed",
    "spacy",
    "pydantic",
)


@dataclass
class StudyResult:
    """What :func:`run_study` returns."""

    run_dir: Path
    report: Path | None
    plan: Plan
    run: RunReport
    ground_truth: list[dict]
    seconds: float


def _versions() -> dict:
    from importlib import metadata

    from brainalign import __version__

    out = {"brainalign": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _ctx(cfg: StudyConfig) -> dict:
    out = cfg.output.dir
    nsd_cache = getattr(cfg.data, "cache_dir", None) or (out / "cache" / "nsd")
    return {
        "backend": cfg.compute.backend,
        "device": cfg.compute.device,
        "threads": cfg.compute.threads_per_task,
        "nsd_cache": str(nsd_cache),
        "work_dir": str(out / "work"),
        "verbose": False,
    }


def make_executor(cfg: StudyConfig):
    """The executor of ``cfg.compute`` (serial, local processes, or Dask)."""
    from brainalign.parallel import get_executor

    c = cfg.compute
    kind = c.executor
    if c.scheduler is None and kind == "serial" and c.workers > 1:
        kind = "dask"
    shared = cfg.output.dir / "cache" / "shared"
    if kind == "serial":
        return get_executor("serial")
    return get_executor(kind, workers=c.workers, scheduler=c.scheduler, shared_dir=shared)


def plan_study(config: StudyConfig | str | os.PathLike) -> tuple[Plan, StageCache, str]:
    """The plan of a study and a printable table of what is cached and what would run."""
    cfg = config if isinstance(config, StudyConfig) else load_config(config)
    plan = build_plan(cfg)
    cache = StageCache(cfg.output.dir / "cache" / "stages")
    return plan, cache, describe_plan(plan.targets, cache)


def run_study(
    config: StudyConfig | str | os.PathLike,
    *,
    executor=None,
    report: bool = True,
    log=None,
) -> StudyResult:
    """Run every analysis of ``config`` that is not cached, then export and report.

    Parameters
    ----------
    config : StudyConfig or path to a TOML file
    executor : brainalign.parallel.Executor, optional
        Default: built from ``config.compute`` (and closed at the end).
    report : bool
        Write ``report.html`` in the output folder.
    log : callable, optional
        Receives progress lines (default: silent).

    Returns
    -------
    StudyResult
    """
    cfg = config if isinstance(config, StudyConfig) else load_config(config)
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    plan, cache, _ = plan_study(cfg)
    out = cfg.output.dir
    out.mkdir(parents=True, exist_ok=True)
    own = executor is None
    executor = executor or make_executor(cfg)
    try:
        rep = run_tasks(plan.targets, cache, executor, ctx=_ctx(cfg), log=log)
    finally:
        if own:
            executor.close()
    seconds = time.perf_counter() - t0
    log("exporting maps and tables")
    truth = export_results(plan, cache, rep, seconds)
    html = None
    if report:
        from brainalign.report import build_report

        html = build_report(out)
    return StudyResult(out, html, plan, rep, truth, time.perf_counter() - t0)


# -------------------------------------------------------------------------------------- export
def export_results(
    plan: Plan, cache: StageCache, rep: RunReport | None = None, seconds: float = 0.0
) -> list[dict]:
    """Write the run folder's tables (CSV), maps (GIFTI/MGH) and arrays from the cached results."""
    import pandas as pd

    from brainalign.report import RunWriter

    cfg = plan.config
    w = RunWriter(cfg.output.dir, cfg.output.formats)
    load = lambda t: cache.load(t.stage, t.key)  # noqa: E731
    data = load(plan.data)
    first = next(iter(plan.subject_tasks.values()))
    hemi = load(first)["hemi_sizes"]
    split = (lambda v: (np.asarray(v)[: hemi[0]], np.asarray(v)[hemi[0] :])) if hemi else None
    truth_rows: list[dict] = []

    if "roi_group" in plan.groups:
        g = load(plan.groups["roi_group"])
        table = pd.DataFrame(g["table"])
        w.table("roi_rsa", table)
        if table["ceiling"].notna().any():
            w.table("noise_ceiling", table[["subject", "roi", "ceiling"]].drop_duplicates())
        group = pd.DataFrame(g["group"])
        group = _order(
            group.sort_values(["roi", "rank"]), ["roi", "rank", "model", "mean", "sem", "t", "p"]
        )
        w.table("roi_group", group)
        pairs = pd.DataFrame(g["pairwise"])
        if len(pairs):
            w.table(
                "model_comparison",
                _order(pairs, ["roi", "model_a", "model_b", "mean_diff", "t", "p", "q"]),
            )
        nets = [m for m in group["model"].unique() if m.startswith("net_") or m in plan.networks]
        if nets:
            zoo = group[group["model"].isin(nets)].sort_values(
                ["roi", "mean"], ascending=[True, False]
            )
            w.table("zoo_ranking", zoo)
        truth_rows = _ground_truth(plan, data, group)
        if truth_rows:
            w.table("ground_truth", pd.DataFrame(truth_rows))
        _export_rdms(plan, cache, w)

    for name, task in plan.groups.items():
        if name.startswith("searchlight|"):
            m = name.split("|", 1)[1]
            sl_split = _searchlight_split(task, load) or split
            if sl_split is None:
                continue
            res = load(task)
            w.map(
                f"searchlight_{m}_t",
                *sl_split(res["t"]),
                title=f"Searchlight RSA: {m} (group t, FDR q < {cfg.analyses.searchlight.fdr_q})",
                section="searchlight",
                stat="t",
                mask=sl_split(res["significant"]),
                note=f"Mean r over subjects ranges {np.nanmin(res['mean']):.3f} to {np.nanmax(res['mean']):.3f}.",
            )
            w.map(
                f"searchlight_{m}_mean_r",
                *sl_split(res["mean"]),
                title=f"Searchlight RSA: {m} (mean r)",
                section="searchlight",
                stat="r",
            )

    if "encoding" in plan.groups and split:
        res = load(plan.groups["encoding"])
        w.map(
            "encoding_r_mean",
            *split(res["mean"]),
            title=f"Encoding: mean r over subjects (FDR q < {cfg.analyses.encoding.fdr_q})",
            section="encoding",
            stat="r",
            mask=split(res["significant"]),
        )
        w.array("encoding_r", res["mean"])
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
        for a, b in cfg.analyses.insilico.contrasts if cfg.analyses.insilico.enabled else []:
            key = f"contrast_{a}__{b}"
            if f"{key}_t" in res:
                w.map(
                    f"insilico_{a}_minus_{b}",
                    *split(res[f"{key}_t"]),
                    title=f"In-silico: {a} − {b} "
                    f"(paired t, p < {cfg.analyses.insilico.alpha} uncorrected)",
                    section="insilico",
                    stat="t",
                    mask=split(res[f"{key}_sig"]),
                )

    if "decoding" in plan.per_subject:
        _export_decoding(plan, cache, w)

    if plan.networks:
        curves = []
        for name, t in plan.networks.items():
            res = load(t)
            for h in res.get("history", []) or []:
                curves.append({"network": name, **h})
        if curves:
            w.table("training_curves", pd.DataFrame(curves))

    versions = _versions()
    now = _dt.datetime.now().isoformat(timespec="seconds")
    w.json(
        "run",
        {
            "config": cfg.to_dict(),
            "subjects": plan.subjects,
            "versions": versions,
            "timing": {
                "total_seconds": seconds,
                "finished": now,
                "computed": len(rep.computed) if rep else 0,
                "reused": len(rep.reused) if rep else 0,
                "seconds_per_stage": rep.seconds if rep else {},
            },
            "ground_truth": truth_rows,
        },
    )
    return truth_rows


def _searchlight_split(task, load):
    """Left/right splitter of a volume searchlight's projected maps (None for the surface path).

    The volume path's maps live on the fsaverage mesh of NSD's transforms (fsaverage5 for a
    virtual NSD), whatever the study's space, so their hemisphere sizes come from the projection.
    """
    projections = [d for d in task.deps.values() if d.stage == "volume_projection"]
    if not projections:
        return None
    n_lh = int(load(projections[0])["hemi_sizes"][0])
    return lambda v: (np.asarray(v)[:n_lh], np.asarray(v)[n_lh:])


def _order(df, first):
    """``df`` with the columns ``first`` (those present) leading."""
    cols = [c for c in first if c in df.columns]
    return df[cols + [c for c in df.columns if c not in cols]].reset_index(drop=True)


def _ground_truth(plan: Plan, data, group) -> list[dict]:
    rois = data.get("truth_rois") if hasattr(data, "get") else None
    if not isinstance(plan.config.data, VirtualDataConfig) or not rois:
        return []
    vision = set(plan.networks)
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
        ok = best_model in expected or (
            "@vision" in expected and (best_model in vision or best_model.startswith("net_"))
        )
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


def _export_rdms(plan: Plan, cache: StageCache, w) -> None:
    """RDM images for the report: one subject's ROI RDMs and the model RDMs on the same images."""
    from brainalign.rsa import compute_rdm

    s = plan.subjects[0]
    sub_res = cache.load(plan.subject_tasks[s].stage, plan.subject_tasks[s].key)
    from brainalign.datasets import load_nsd

    cfg = plan.config
    ctx_cache = getattr(cfg.data, "cache_dir", None) or (cfg.output.dir / "cache" / "nsd")
    sub = load_nsd(cfg.data.root, s, cfg.space, cache_dir=ctx_cache, verbose=False)
    rows = np.arange(min(60, sub.n_images))
    for roi in cfg.analyses.roi_rsa.rois[:4]:
        if roi in sub.rois:
            B = np.asarray(sub.betas)[rows][:, np.asarray(sub.rois[roi], bool)]
            B = B[:, np.isfinite(B).all(0)]
            w.array(f"rdm__{roi}__brain", compute_rdm(B, metric="correlation"))
    ids = np.asarray(sub_res["image_ids"])[rows]
    for name, t in list(plan.models.items())[:6]:
        res = cache.load(t.stage, t.key)
        from brainalign.pipeline.stages import _rows

        w.array(f"rdm__model__{name}", compute_rdm(_rows(res, ids), metric="correlation"))


def _export_decoding(plan: Plan, cache: StageCache, w) -> None:
    import pandas as pd

    from brainalign.datasets import load_stimuli
    from brainalign.decoding import CaptionBank, caption_scores, human_ceiling

    cfg = plan.config
    bank_res = cache.load(plan.bank.stage, plan.bank.key)
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
    scores, examples, ident, metrics = [], [], [], []
    n_ex = cfg.analyses.decoding.n_examples
    for s, t in plan.per_subject["decoding"].items():
        res = cache.load(t.stage, t.key)
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
                examples.append(
                    {
                        "subject": s,
                        "image_id": int(ids[j]),
                        "rank": rank,
                        "score": float(score[j]),
                        "true_caption": refs_of(ids[j])[0],
                        "decoded_caption": captions[int(res["top_idx"][j, 0])],
                        "decoded_similarity": float(res["top_sim"][j, 0]),
                        "nearest_training_caption": captions[int(res["train_idx"][j])],
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
            {"subject": s, "who": "decoded", **caption_scores(decoded, [refs_of(i) for i in ids])}
        )
    refs = [refs_of(i) for i in np.asarray(bank_res["ceiling_ids"])]
    if refs and min(len(r) for r in refs) >= 2:
        metrics.append(
            {"subject": "all", "who": "human (leave one caption out)", **human_ceiling(refs)}
        )
    w.table("decoding_scores", pd.DataFrame(scores))
    w.table("decoding_examples", pd.DataFrame(examples))
    w.table("decoding_identification", pd.DataFrame(ident))
    w.table("caption_metrics", pd.DataFrame(metrics))


def load_run_meta(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


__all__ = ["EXPECTED", "StudyResult", "export_results", "make_executor", "plan_study", "run_study"]
