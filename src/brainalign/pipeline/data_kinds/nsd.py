"""``[data] kind = "nsd"``: a real NSD download (or any folder in its layout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from brainalign.datasets import _nsdpaths as P
from brainalign.datasets import list_subjects, load_surface
from brainalign.datasets._formats import mgh_shape
from brainalign.datasets.surfaces import FSAVERAGE_SIZES
from brainalign.errors import BrainAlignError, ConfigError
from brainalign.pipeline.analysis import DataKind, Table
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.report.html import Text
from brainalign.utils.hashing import files_fingerprint, hash_json
from brainalign.utils.settings import Section, resolve_path


class NSDDataConfig(Section):
    """A real NSD download (or any folder in its layout)."""

    # the data set's kind: an NSD download (nsddata/ layout) at root
    kind: Literal["nsd"] = "nsd"
    # the NSD folder (nsddata/, nsddata_betas/, nsddata_stimuli/ as NSD's AWS bucket lays out)
    root: Path
    # where the prepared (z-scored, repetition-averaged) betas are cached (default: the
    # brainalign cache: $BRAINALIGN_CACHE or ~/.cache/brainalign; it writes nsd_prepared/ there)
    cache_dir: Path | None = None
    #: which subjects define the shared test set: "all" 8 of NSD (the paper's 515, from their
    #: behavioural files, even when only some subjects' betas are here) or only those "present"
    test_set: Literal["all", "present"] = "all"


#: what each input group of an NSD-layout root holds (see :func:`input_files`)
INPUT_GROUPS = (
    "captions",
    "categories",
    "images",
    "stimuli",
    "subject",
    "surfaces",
    "transforms",
)


def _experiment_files(root: Path) -> list[Path]:
    """Files every reader of an NSD root consults: the design and the stimulus table."""
    return [P.expdesign(root), P.stim_info(root)]


def input_files(
    root: str | os.PathLike, group: str, subject: int | None = None, space: str | None = None
) -> list[Path]:
    """The files of an NSD-layout root that the tasks reading ``group`` read.

    Parameters
    ----------
    root : path
        NSD root (or a virtual NSD).
    group : {"captions", "categories", "images", "stimuli", "subject", "surfaces", "transforms"}
        ``captions``: the stimulus table, the design and ``captions_*.json`` (what
        :func:`brainalign.datasets.load_stimuli` always reads); ``categories``: those and
        ``instances_*.json``; ``images``: the captions' files and the image brick; ``stimuli``:
        all of these; ``subject``: one subject's
        betas in ``space``, every subject's ``behav/responses.tsv`` (they define the shared test
        set), the design and the ROI files of that space; ``surfaces``: the fsaverage surfaces;
        ``transforms``: the subject's volume-to-fsaverage transforms.
    subject, space : optional
        For ``subject`` (both) and ``transforms`` (subject).

    Returns
    -------
    list of Path
        Existing files, plus the named files that are missing (so creating one changes keys).
    """
    root = Path(root)
    stim = P.stimuli_dir(root)
    if group in ("captions", "categories", "images", "stimuli"):
        files = [*_experiment_files(root), *sorted(stim.glob("annotations/captions_*.json"))]
        if group in ("categories", "stimuli"):
            files += sorted(stim.glob("annotations/instances_*.json"))
        if group in ("images", "stimuli"):
            files.append(stim / "nsd_stimuli.hdf5")
        return files
    if group == "subject":
        pp = P.ppdata_dir(root)
        files = [*_experiment_files(root), *sorted(pp.glob("subj[0-9][0-9]/behav/responses.tsv"))]
        files += sorted(P.betas_dir(root, subject, space).glob("*betas_session*"))
        labels = P.fsaverage_dir(root) / "label"
        if space == "fsaverage":
            files += sorted(labels.glob("*"))
        else:
            files += [P.brainmask(root, subject)]
            files += sorted(P.roi_dir(root, subject).glob("*"))
            files += sorted(labels.glob("*.ctab"))
        return files
    if group == "surfaces":
        return sorted((P.fsaverage_dir(root) / "surf").glob("*"))
    if group == "transforms":
        return sorted(P.transforms_dir(root, subject).glob("*"))
    raise ValueError(f"input group {group!r}: expected one of {INPUT_GROUPS}")


def input_key(
    root: str | os.PathLike, group: str, subject: int | None = None, space: str | None = None
) -> str:
    """The fingerprint of an input group (part of the keys of the tasks that read it): the
    content hash of each small file, size + nanosecond mtime + inode of each large one
    (:func:`brainalign.utils.hashing.file_fingerprint`)."""
    return hash_json(files_fingerprint(root, input_files(root, group, subject, space)))


def nsd_fingerprint(root: str | os.PathLike) -> dict:
    """The subjects of an NSD root (the ``nsd_root`` task's key: what it reads).

    The files themselves are in the keys of the tasks that read them (:func:`input_key`), so a
    changed caption file reruns the caption features and not the responses.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"data.root: {str(root)!r} does not exist")
    return {"subjects": list_subjects(root)}


def inputs(cfg, group: str, subject: int | None = None, space: str | None = None) -> str:
    """The data kind's ``inputs``: :func:`input_key` of ``cfg.data.root``."""
    return input_key(cfg.data.root, group, subject, space)


@stage("nsd_root")
def nsd_root(params, inputs, ctx):
    """A real NSD root: checked once (its fingerprint is part of the key)."""
    return {"root": params["root"], "subjects": list_subjects(params["root"])}


def plan(cfg, also_spaces: list[str], options: dict) -> tuple[Task, dict]:
    root = str(cfg.data.root)
    data = Task(TaskId("nsd_root"), {"root": root, "fingerprint": hash_json(nsd_fingerprint(root))})
    return data, surface_mesh(root)


def _surface_vertices(root: Path) -> tuple[int, Path | None]:
    """Vertices per hemisphere of the root's fsaverage data, and the file that says so.

    From the first subject's left-hemisphere betas header (they define the units), else the
    streams label file, else the white surface; full fsaverage (NSD's) when none exists.
    """
    betas = sorted(
        root.glob("nsddata_betas/ppdata/subj*/fsaverage/betas_fithrf_GLMdenoise_RR/lh.betas_*.mgh")
    )
    fs = P.fsaverage_dir(root)
    for path in [*betas[:1], fs / "label" / "lh.streams.mgz", fs / "label" / "lh.nsdgeneral.mgz"]:
        if path.is_file():
            return int(mgh_shape(path)[0]), path
    if (fs / "surf" / "lh.white").is_file():
        return load_surface(fs / "surf" / "lh.white").n_vertices, fs / "surf" / "lh.white"
    return FSAVERAGE_SIZES["fsaverage"], None


def surface_mesh(root: str | os.PathLike) -> dict:
    """The fsaverage mesh the root's surface data live on, whatever its resolution.

    NSD's own download is full fsaverage (163,842 vertices per hemisphere); a virtual NSD (or
    any NSD-layout folder) may be fsaverage5 or another icosahedral resolution. The surfaces
    come from the root's ``nsddata/freesurfer/fsaverage/surf`` (nilearn's for fsaverage5 when
    the root has none).
    """
    root = Path(root)
    n, source = _surface_vertices(root)
    names = [name for name, size in FSAVERAGE_SIZES.items() if size == n]
    if not names:
        raise ConfigError(
            f"data.root: {source} has {n} vertices per hemisphere; expected an fsaverage "
            f"resolution ({', '.join(str(v) for v in sorted(set(FSAVERAGE_SIZES.values())))}); "
            "the surface data must be on fsaverage (or one of its icosahedral subdivisions)"
        )
    fs_dir = P.fsaverage_dir(root)
    has_surfaces = (fs_dir / "surf" / "lh.white").is_file()
    return {
        "mesh": names[0],
        "surface": "white",
        "fs_dir": str(fs_dir) if has_surfaces or names[0] != "fsaverage5" else None,
    }


def subjects(cfg) -> list[int]:
    subs = list_subjects(cfg.data.root)
    if not subs:
        raise ConfigError(
            f"data.root: no subjects found under {cfg.data.root} (nsddata/ppdata/subjNN)"
        )
    return subs


def resolve(data: NSDDataConfig, base: Path, out_dir: Path) -> NSDDataConfig:
    return data.model_copy(
        update={
            "root": resolve_path(data.root, base),
            "cache_dir": resolve_path(data.cache_dir, base),
        }
    )


def check(cfg) -> list[str]:
    root = cfg.data.root
    if not root.is_dir():
        return [
            f"data.root: NSD root {str(root)!r} does not exist; point it at the folder holding "
            "nsddata/ and nsddata_betas/ (or use data.kind = 'virtual')"
        ]
    if not (root / "nsddata").is_dir():
        return [
            f"data.root: {str(root)!r} has no nsddata/ folder; expected NSD's layout "
            "(nsddata/, nsddata_betas/, nsddata_stimuli/)"
        ]
    try:
        surface_mesh(root)
    except BrainAlignError as exc:
        return [str(exc)]
    cache = cfg.data.cache_dir
    if cache is not None and cache.exists() and not cache.is_dir():
        return [
            f"data.cache_dir: {cache} is a file, not a folder; give a folder for the prepared "
            "betas (brainalign writes only nsd_prepared/ inside it)"
        ]
    return []


def methods(cfg) -> list[str]:
    return [
        f"Data: NSD at {cfg.data.root}, space {cfg.space}; per-session "
        "z-scoring over all 750 trials, images seen three times kept, repetitions averaged."
    ]


NON_FINITE_BETAS = Table(
    "non_finite_betas",
    "Non-finite betas",
    "One row per subject and session: NaN and Inf values in the betas, the units they fall in "
    "and the files; left out by NaN-aware z-scoring and repetition averaging.",
)


def summary(run) -> list:
    """The summary's lines about NSD-like data: where, which subjects, space and feature
    spaces (of the run's validated config), and the non-finite betas (in red when there are
    any)."""
    cfg = run.config
    blocks = []
    if cfg is not None:
        # the subjects the run resolved ("all": every subject the data has)
        subjects = run.meta.get("subjects", cfg.subjects)
        blocks.append(
            Text(
                f"Data: {cfg.data.kind} NSD at {cfg.data.root}; subjects {subjects}; space "
                f"{cfg.space}; feature spaces {', '.join(cfg.features.spaces)}."
            )
        )
    quality = run.meta.get("data_quality")
    if quality is not None:
        blocks.append(_non_finite_text(quality))
    return blocks


def _non_finite_text(quality: dict):
    """The non-finite betas line: each subject's count, or that there are none."""
    n_bad = quality.get("non_finite_values", 0)
    if not n_bad:
        return Text("Non-finite betas: none.", note=True)
    detail = "; ".join(
        f"subject {s}: {v['values']} values in {v.get('units', 0)} units"
        for s, v in quality.get("non_finite", {}).items()
        if v.get("values")
    )
    return Text(
        f"Non-finite betas: {n_bad} NaN/Inf values ({detail}) were left out by NaN-aware "
        "z-scoring and repetition averaging; units without a value for an image are dropped by "
        "the analyses (table non_finite_betas).",
        alert=True,
    )


DATA_KIND = DataKind(
    name="nsd",
    config=NSDDataConfig,
    plan=plan,
    subjects=subjects,
    resolve=resolve,
    check=check,
    methods=methods,
    inputs=inputs,
    summary=summary,
    tables=(NON_FINITE_BETAS,),
)
