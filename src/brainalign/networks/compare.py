"""Rank vision models against the brain: noise-ceiling-normalised ROI RSA, the paper's §8.1 table.

For every subject, ROI and model (paper_methods §3.4, §7.3):

1. the model's RDM (correlation distance of its features) is correlated (Pearson) with the
   ROI's RDM on the paper's disjoint random subsets of ``subset_size`` images, and the
   correlations are averaged over subsets;
2. for a model with several instances (seeds) the per-subject correlations are averaged over
   instances, as the authors did (not the RDMs);
3. the subject's correlation is divided by its ROI noise ceiling: the Pearson correlation of its
   ROI RDM on the images every subject saw (NSD's shared images) with the mean RDM of the other
   subjects.

The statistics are the pipeline's (:func:`brainalign.stats.group_model_scores`): per model and
ROI the mean and SEM (or the paper's SD/√n) over subjects of the normalised r and a one-sample
two-sided t-test against 0; for every pair of models of an FDR family within a ROI a paired
t-test across subjects (or the authors' independent-samples test, ``test="paper"``) with
Benjamini–Hochberg FDR over the family's pairs of that ROI. The subsets are drawn as the
pipeline draws them (seed ``random_state * 1000 + subject``), or given: a pipeline run's saved
subsets (``arrays/subsets__sub-XX.npy``, read by :func:`run_subsets`) with its statistical
choices (:func:`run_choices`), so both score the same images with the same tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import InputError
from brainalign.networks.leakage import ImageIds, check_checkpoints
from brainalign.networks.zoo import ZooModel, model_features
from brainalign.stats import group_model_scores
from brainalign.utils import atomic_path, atomic_write_json, progress


@dataclass
class Comparison:
    """What :func:`compare_models` returns.

    Attributes
    ----------
    subjects : DataFrame
        One row per subject × ROI × model: ``r`` (mean over subsets and instances), ``ceiling``,
        ``r_normalised``, ``instances``.
    table : DataFrame
        One row per model × ROI: ``mean``, ``sem``, ``error_bar`` (the bars drawn: ``sem`` or
        the paper's SD/√n), ``t``, ``p`` (one-sample vs 0), ``n_subjects``, ``rank``,
        ``training_images``, ``mean_raw``, ``ceiling_mean``.
    pairwise : DataFrame
        One row per ROI × FDR family × model pair: ``family``, ``diff`` (mean of a − b), ``t``,
        ``p`` (the chosen test), ``q`` (BH-FDR within the ROI and family), ``significant``.
    files : dict
        Written files (``table_csv``, ``table_parquet``, ``subjects_csv``, ``pairwise_csv``,
        ``figure`` …) when ``out`` was given.
    leakage : dict
        Per trained model, per checkpoint: how many of its recorded training images are
        scored here (0 unless ``allow_overlap``; checkpoints that could not be checked are
        absent and were warned about).
    """

    subjects: pd.DataFrame
    table: pd.DataFrame
    pairwise: pd.DataFrame
    files: dict = field(default_factory=dict)
    leakage: dict = field(default_factory=dict)


def _check_subject(sub, rois: Sequence[str]) -> None:
    for attr in ("betas", "image_ids", "rois", "shared"):
        if not hasattr(sub, attr):
            raise InputError(f"subjects: expected SubjectResponses-like objects with .{attr}")
    missing = [r for r in rois if r not in sub.rois]
    if missing:
        raise InputError(
            f"rois: subject {getattr(sub, 'subject', '?')} has no ROI {missing}; it has {sorted(sub.rois)}"
        )


def roi_noise_ceilings(subjects: Sequence, roi: str, shared_ids: np.ndarray) -> np.ndarray:
    """Leave-one-subject-out ceiling of each subject in ``roi`` on ``shared_ids``.

    Each subject's ROI RDM on those images (:func:`brainalign.rsa.roi_rdms`) against the mean
    RDM of the others (:func:`brainalign.rsa.noise_ceiling`).
    """
    from brainalign.rsa import noise_ceiling, roi_rdms

    if len(subjects) < 2:
        raise InputError(
            "subjects: a leave-one-subject-out noise ceiling needs at least 2 subjects"
        )
    rdms = []
    for sub in subjects:
        rows = np.searchsorted(sub.image_ids, shared_ids)
        if not np.array_equal(
            np.asarray(sub.image_ids)[np.clip(rows, 0, len(sub.image_ids) - 1)], shared_ids
        ):
            raise InputError(
                f"ceiling_ids: subject {getattr(sub, 'subject', '?')} did not see them all"
            )
        rdms.append(roi_rdms(sub.betas, {roi: sub.rois[roi]}, images=rows)[roi])
    return np.asarray(noise_ceiling(np.stack(rdms)), dtype=np.float64)


def compare_models(
    models: Sequence[ZooModel] | Mapping[str, Sequence[np.ndarray] | np.ndarray],
    subjects: Sequence,
    images=None,
    *,
    rois: Sequence[str] = ("ventral", "lateral", "parietal"),
    subset_size: int = 100,
    random_state: int = 0,
    ceiling_ids: Sequence[int] | None = None,
    device="cpu",
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    title: str = "Representational agreement (noise-ceiling normalised)",
    verbose: bool | None = None,
    allow_overlap: bool = False,
    subsets: Mapping[int, np.ndarray] | None = None,
    test: str = "paired",
    fdr_q: float = 0.05,
    error: str = "sem",
    families: Mapping[str, Sequence[str]] | None = None,
) -> Comparison:
    """Noise-ceiling-normalised ROI RSA of several models, with subject dots and paired tests.

    Parameters
    ----------
    models : list of ZooModel, or dict name -> features
        Zoo models (their features are computed for ``images``), or features already computed:
        ``{name: (n_all, d) array or [per-instance arrays]}`` with rows aligned with ``images``'
        ids (pass ``images`` as the ids array then).
    subjects : list of SubjectResponses
        Each subject's betas, image ids, shared flags and ROI masks.
    images : ImageData, (n, H, W, 3) uint8, or ids
        The stimuli whose ids cover every subject's images (``ImageData.ids`` / row ids).
    rois : sequence of str
        ROI names (the paper's higher-level streams: ventral, lateral, parietal).
    subset_size : int
        Images per disjoint random subset (the paper's 100); subsets are drawn per subject with
        seed ``random_state * 1000 + subject``, as the pipeline draws them (seeded, unlike the
        paper), and shared by every model.
    random_state : int
        The pipeline's ``compute.random_state``.
    ceiling_ids : sequence of int, optional
        Images for the noise ceiling (default: the shared images every subject saw).
    out : path, optional
        Folder for ``table.csv``, ``table.parquet``, ``subjects.csv``/``.parquet``,
        ``pairwise.csv``/``.parquet`` and ``figure.png``.
    subsets : mapping of int -> (n_subsets, size) int array, optional
        Each subject's subsets as image ids (a pipeline run's: :func:`run_subsets`), used
        instead of drawing them; every id must be one of the subject's images.
    test : {"paired", "paper"}
        Pairwise test: paired t across subjects, or the paper's ``ttest_ind``.
    fdr_q : float
        BH-FDR level of the pairwise tests.
    error : {"sem", "paper"}
        Error bars: SEM, or the paper's SD (ddof 0) / √n.
    families : mapping of str -> list of str, optional
        FDR families of model names (default: one family of every model).
    allow_overlap : bool
        Score trained networks (``kind = "blt"``) even when their checkpoints record training
        images among the images scored here; otherwise that stops the comparison
        (:func:`~brainalign.networks.leakage.check_disjoint`) before any model runs.

    Returns
    -------
    Comparison
    """
    from brainalign.networks.data import ImageData

    rois = list(rois)
    if not subjects:
        raise InputError("subjects: give at least one subject")
    for sub in subjects:
        _check_subject(sub, rois)
    # ---- the union of images needed, and features on them
    all_ids = np.unique(np.concatenate([np.asarray(s.image_ids, dtype=np.int64) for s in subjects]))
    if isinstance(models, Mapping):
        if images is None:
            raise InputError("images: with precomputed features, pass the ids their rows belong to")
        row_ids = (
            images.ids if isinstance(images, ImageData) else np.asarray(images, dtype=np.int64)
        )
        feats = {}
        for name, value in models.items():
            inst = [value] if isinstance(value, np.ndarray) else list(value)
            feats[name] = [_rows_for(np.asarray(f), row_ids, all_ids, name) for f in inst]
        meta = {name: None for name in models}
        leakage = {}
    else:
        if images is None:
            raise InputError("images: the stimuli to run the models on (ImageData or a reader)")
        source = images
        if isinstance(images, ImageData):
            pos = np.searchsorted(images.ids, all_ids)
            pos = np.clip(pos, 0, len(images.ids) - 1)
            if not np.array_equal(images.ids[pos], all_ids):
                raise InputError("images: do not cover every subject's image ids")
            source = images.subset(pos)
            scored = source.image_ids("the images compare-models scores the models on")
        else:
            scored = ImageIds(all_ids, None, None, "the images compare-models scores on")
        leakage = _check_trained_models(models, scored, allow_overlap)
        feats, meta = {}, {}
        for entry in progress(list(models), desc="models", verbose=verbose):
            feats[entry.name] = model_features(
                entry, source, ids=all_ids, device=device, batch_size=batch_size, cache_dir=cache_dir,
                verbose=verbose,
            )  # fmt: skip
            meta[entry.name] = entry.training_images
    names = list(feats)
    if len(set(names)) != len(names):
        raise InputError("models: names must be unique")

    # ---- ceilings on the images every subject saw
    if ceiling_ids is None:
        shared = [
            set(np.asarray(s.image_ids)[np.asarray(s.shared, dtype=bool)].tolist())
            for s in subjects
        ]
        ceiling_ids = (
            np.array(sorted(set.intersection(*shared)), dtype=np.int64) if shared else np.array([])
        )
    ceiling_ids = np.asarray(ceiling_ids, dtype=np.int64)
    use_ceiling = len(subjects) >= 2 and len(ceiling_ids) >= 3
    ceilings = {
        roi: roi_noise_ceilings(subjects, roi, ceiling_ids)
        if use_ceiling
        else np.full(len(subjects), np.nan)
        for roi in rois
    }

    # ---- per subject × ROI × model (every instance of every model in one roi_rsa call)
    from brainalign.rsa import make_subsets, roi_rsa

    rows = []
    for si, sub in enumerate(progress(subjects, desc="subjects", verbose=verbose)):
        number = int(getattr(sub, "subject", si + 1))
        pos = np.searchsorted(all_ids, np.asarray(sub.image_ids, dtype=np.int64))
        if subsets is not None:
            rows_of = _subject_subsets(subsets, number, np.asarray(sub.image_ids))
        else:
            size = min(int(subset_size), len(pos))
            rows_of = make_subsets(len(pos), size, random_state=int(random_state) * 1000 + number)
        columns = {f"{name}#{k}": f[pos] for name in names for k, f in enumerate(feats[name])}
        scores = roi_rsa(
            sub.betas, columns, {roi: sub.rois[roi] for roi in rois}, sampling="subsets",
            subsets=rows_of,
        )  # fmt: skip
        for roi in rois:
            c = float(ceilings[roi][si])
            for name in names:
                r_inst = [scores.loc[roi, f"{name}#{k}"] for k in range(len(feats[name]))]
                r = float(np.mean(r_inst))
                rows.append(
                    {
                        "subject": number,
                        "roi": roi,
                        "model": name,
                        "r": r,
                        "ceiling": c,
                        "r_normalised": r / c if np.isfinite(c) and c > 0 else np.nan,
                        "instances": len(r_inst),
                    }
                )
    per_subject = pd.DataFrame(rows)
    value = "r_normalised" if use_ceiling else "r"

    table, pairwise = _statistics(
        per_subject, use_ceiling, rois, meta, test=test, fdr_q=fdr_q, error=error,
        families=families,
    )  # fmt: skip
    result = Comparison(per_subject, table, pairwise, leakage=leakage)
    if out is not None:
        result.files = write_comparison(result, out, title=title, value=value)
    return result


def _statistics(per_subject, use_ceiling, rois, meta, **choices):
    """The group table and the pairwise tests, by the pipeline's own statistics."""
    scores = per_subject[["subject", "roi", "model", "r"]]
    ceilings = per_subject[["subject", "roi", "ceiling"]].drop_duplicates() if use_ceiling else None
    res = group_model_scores(scores, ceilings, comparison_rois=rois, **choices)
    ceiling_mean = per_subject.groupby(["roi", "model"])["ceiling"].mean()
    table = res.group.rename(columns={"mean_r": "mean_raw"})
    table["error_bar"] = table["sd0_sqrt_n"] if choices["error"] == "paper" else table["sem"]
    table["ceiling_mean"] = [
        ceiling_mean[(r, m)] for r, m in zip(table.roi, table.model, strict=True)
    ]
    table["training_images"] = [meta.get(m) for m in table.model]
    table["normalised"] = res.value == "r_norm"
    lead = ["model", "roi", "mean", "sem", "error_bar", "t", "p", "n_subjects", "rank"]
    table = table[lead + [c for c in table.columns if c not in lead]]
    columns = ["roi", "family", "model_a", "model_b", "diff", "t", "p", "q", "significant"]
    pairwise = res.pairwise.rename(columns={"mean_diff": "diff"}).reindex(columns=columns)
    return table, pairwise


def _subject_subsets(subsets: Mapping[int, np.ndarray], number: int, image_ids) -> np.ndarray:
    """Subject ``number``'s subsets (image ids) as rows of its images."""
    if number not in subsets:
        raise InputError(
            f"subsets: none for subject {number} (have {sorted(subsets)}); give every "
            "compared subject's subsets, or leave subsets out to draw them"
        )
    ids = np.asarray(subsets[number], dtype=np.int64)
    rows = np.searchsorted(image_ids, ids)
    ok = (rows < len(image_ids)) & (image_ids[np.minimum(rows, len(image_ids) - 1)] == ids)
    if ids.ndim != 2 or not ok.all():
        raise InputError(
            f"subsets[{number}]: expected (n_subsets, size) ids of the subject's images; "
            f"{int((~ok).sum())} ids are not among them (was the run made on other data?)"
        )
    return rows


def run_subsets(run_dir: str | os.PathLike) -> dict[int, np.ndarray]:
    """A pipeline run's subsets per subject (``arrays/subsets__sub-XX.npy``, image ids)."""
    folder = Path(run_dir) / "arrays"
    found = {
        int(p.stem.rsplit("-", 1)[1]): np.load(p, allow_pickle=False)
        for p in sorted(folder.glob("subsets__sub-*.npy"))
    }
    if not found:
        raise InputError(
            f"{folder}: no subsets__sub-XX.npy; give the folder of a pipeline run whose ROI "
            "RSA used the paper's subsets (analyses.roi_rsa.sampling = 'paper')"
        )
    return found


def run_choices(run_dir: str | os.PathLike) -> dict:
    """A pipeline run's statistical choices (``run.json``): ``test``, ``fdr_q``, ``error``."""
    path = Path(run_dir) / "run.json"
    try:
        config = json.loads(path.read_text())["config"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: not a pipeline run's record ({exc!r})") from None
    analyses = config.get("analyses", {})
    mc, roi = analyses.get("model_comparison", {}), analyses.get("roi_rsa", {})
    return {
        "test": mc.get("test", "paired"),
        "fdr_q": mc.get("fdr_q", 0.05),
        "error": roi.get("error", "sem"),
    }


def _check_trained_models(models, scored, allow_overlap: bool) -> dict:
    """The leak check of every trained model's checkpoints against the images scored."""
    found = {}
    for entry in models:
        ckpts = entry.options.get("checkpoints") if entry.kind == "blt" else None
        if ckpts:
            found[entry.name] = check_checkpoints(
                ckpts, scored, allow_overlap=allow_overlap,
                fix=f"Score models.{entry.name!r} on subjects who did not see them, retrain it "
                "without them (brainalign train: data.nsd_root), or accept the overlap "
                "(data.allow_overlap = true in compare-models; reported in leakage.json).",
            )  # fmt: skip
    return found


def _rows_for(features: np.ndarray, row_ids: np.ndarray, want: np.ndarray, name: str) -> np.ndarray:
    if features.ndim != 2 or len(features) != len(row_ids):
        raise InputError(
            f"models[{name!r}]: expected ({len(row_ids)}, d) features aligned with the ids, got {features.shape}"
        )
    order = np.argsort(row_ids)
    pos = order[np.clip(np.searchsorted(row_ids[order], want), 0, len(row_ids) - 1)]
    if not np.array_equal(row_ids[pos], want):
        raise InputError(f"models[{name!r}]: features lack some subjects' image ids")
    return np.asarray(features[pos], dtype=np.float32)


def plot_comparison(
    comparison: Comparison, path: str | os.PathLike, title: str = "", value: str = "r_normalised"
) -> Path:
    """Bars (mean ± the table's ``error_bar``: SEM or the paper's SD/√n) per ROI and model,
    with one dot per subject; PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    table, subj = comparison.table, comparison.subjects
    rois = list(dict.fromkeys(table.roi))
    models = list(dict.fromkeys(table.model))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rois) * max(len(models), 1) * 0.5 + 2), 4))
    colours = plt.cm.tab20(np.linspace(0, 1, max(len(models), 2)))
    rng = np.random.default_rng(0)
    for j, name in enumerate(models):
        xs = np.arange(len(rois)) + (j - (len(models) - 1) / 2) * width
        rows = table[table.model == name].set_index("roi").loc[rois]
        ax.bar(
            xs,
            rows["mean"],
            width * 0.9,
            yerr=rows["error_bar"],
            color=colours[j],
            label=name,
            capsize=2,
        )
        for x, roi in zip(xs, rois, strict=True):
            dots = subj[(subj.model == name) & (subj.roi == roi)][value].to_numpy()
            ax.scatter(
                x + rng.uniform(-width * 0.2, width * 0.2, len(dots)),
                dots,
                s=8,
                color="k",
                zorder=3,
            )
    ax.set_xticks(np.arange(len(rois)), rois)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("Pearson r / noise ceiling" if value == "r_normalised" else "Pearson r")
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    from brainalign.report.plots import plain_text

    plain_text(fig)  # model and ROI names are drawn as written, never as TeX
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def write_comparison(
    comparison: Comparison, out: str | os.PathLike, title: str = "", value: str = "r_normalised"
) -> dict:
    """Write the tables (CSV and Parquet) and the figure into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, df in (
        ("table", comparison.table),
        ("subjects", comparison.subjects),
        ("pairwise", comparison.pairwise),
    ):
        with atomic_path(out / f"{key}.csv") as tmp:
            df.to_csv(tmp, index=False)
        files[f"{key}_csv"] = out / f"{key}.csv"
        with atomic_path(out / f"{key}.parquet") as tmp:
            df.to_parquet(tmp, index=False)
        files[f"{key}_parquet"] = out / f"{key}.parquet"
    files["figure"] = plot_comparison(comparison, out / "figure.png", title=title, value=value)
    if comparison.leakage:
        files["leakage"] = atomic_write_json(out / "leakage.json", comparison.leakage)
    return files


def run_compare_config(path: str | os.PathLike, *, verbose: bool | None = True) -> Comparison:
    """``brainalign compare-models CONFIG``: an NSD folder, subjects, ROIs and ``[[models]]``.

    ::

        [data]
        root = "virtual_nsd"          # an NSD-layout folder (real or virtual)
        subjects = [1, 2, 3, 4]
        space = "fsaverage"
        rois = ["ventral", "lateral", "parietal"]

        [rsa]
        subset_size = 100
        random_state = 0
        # run = "results/paper_run"  # a pipeline run: its subsets, test, FDR q and error bars

        [stats]                       # overrides the run's choices (defaults: paired, 0.05, sem)
        test = "paper"
        families = { rcnn = ["LLM-trained RCNN", "EfficientNet-lite0"] }

        [[models]]
        name = "LLM-trained RCNN"
        kind = "blt"
        checkpoints = ["runs/mpnet/seed1", "runs/mpnet/seed2"]
        training_images = 48236

        [[models]]
        name = "EfficientNet-lite0"
        kind = "efficientnet-lite0"

        [output]
        dir = "results/compare"
        device = "cpu"
    """
    from brainalign import datasets
    from brainalign.networks.config import load_compare_config
    from brainalign.networks.data import from_stimuli

    cfg = load_compare_config(path)
    base = Path(path).resolve().parent
    run = cfg.rsa.run
    choices = run_choices(run) if run is not None else {}
    choices.update(cfg.stats.model_dump(exclude_none=True))
    subjects = [
        datasets.load_nsd(cfg.data.root, subject=s, space=cfg.data.space) for s in cfg.data.subjects
    ]
    images = from_stimuli(datasets.load_stimuli(cfg.data.root), targets={})
    models = [ZooModel.from_dict(m, base_dir=base) for m in cfg.models]
    out = cfg.output.dir
    return compare_models(
        models, subjects, images, rois=cfg.data.rois, subset_size=cfg.rsa.subset_size,
        random_state=cfg.rsa.random_state, device=cfg.output.device,
        batch_size=cfg.output.batch_size, cache_dir=out / "activations", out=out,
        title=cfg.output.title, verbose=verbose, allow_overlap=cfg.data.allow_overlap,
        subsets=run_subsets(run) if run is not None else None, **choices,
    )  # fmt: skip


__all__ = [
    "Comparison",
    "compare_models",
    "plot_comparison",
    "roi_noise_ceilings",
    "run_choices",
    "run_compare_config",
    "run_subsets",
    "write_comparison",
]
