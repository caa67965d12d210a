"""``[data] kind = "rdms"``: brain RDMs (or response patterns) of any stimulus set.

One or several data set folders in the format of ``docs/datasets.md``
(:func:`brainalign.datasets.load_rdm_dataset`), each given by its ``root``, or built first from
a known public source by an importer (``brainalign rdms import``)::

    [data]
    kind = "rdms"
    root = "my_dataset"                 # one folder in the format, or:

    [[data.sets]]
    importer = "cichy92"                # built from source on first use
    source = "../shared/data/real_rdms"
    # root = "…"                        # default <output.dir>/datasets/<importer>
    rois = ["EVC", "IT"]                # default: every ROI of the folder

Captions of stimuli without ``caption_<k>`` columns come from label templates
(``captions``, ``templates``; :func:`brainalign.features.label_stimuli`). These data provide
``"rdms"``: the analyses with ``needs = "rdms"`` run on them (the NSD analyses are left out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from brainalign.datasets.rdms import import_rdm_dataset, load_rdm_dataset
from brainalign.errors import BrainAlignError
from brainalign.features.labels import DEFAULT_TEMPLATES, _check_templates
from brainalign.pipeline.analysis import DataKind
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.report.html import Text
from brainalign.utils.hashing import files_fingerprint, hash_json
from brainalign.utils.settings import Section, resolve_path

#: ROIs each importer writes (checked before any work)
IMPORTER_ROIS = {"kriegeskorte92": ("IT", "judgements"), "cichy92": ("EVC", "IT")}


class RdmSetConfig(Section):
    """One data set: a folder in the RDM format, or one an importer builds from ``source``."""

    # the data set's folder (an importer's: where it writes the folder)
    root: Path | None = None
    # the name in every table (default: the importer's or the folder's name)
    name: str | None = None
    # build the folder from a public source instead: the 92-object fMRI data sets
    importer: Literal["kriegeskorte92", "cichy92"] | None = None
    # the importer's source folder (the real_rdms folder)
    source: Path | None = None
    # the ROIs analysed (default: every rdms/ and responses/ file)
    rois: list[str] | None = None


class RdmsDataConfig(Section):
    """Data sets of brain RDMs (``docs/datasets.md``)."""

    # the data set's kind: folders of brain RDMs or responses in docs/datasets.md's format
    kind: Literal["rdms"] = "rdms"
    # one data set folder (more: [[data.sets]])
    root: Path | None = None
    # the ROIs of root analysed (default: all)
    rois: list[str] | None = None
    sets: list[RdmSetConfig] = Field(default_factory=list)
    # the distance that turns responses/<ROI>.npy into RDMs (default: the data set's own
    # dataset.json metric, else correlation distance)
    metric: Literal["correlation", "cosine", "euclidean"] | None = None
    # the captions of the caption spaces: the table's caption_<k> columns, sentences made
    # from each label with the templates, or auto (the table's where it has them)
    captions: Literal["auto", "templates", "table"] = "auto"
    # sentence templates with {label}, e.g. "a photo of a {label}"
    templates: list[str] = Field(default_factory=lambda: list(DEFAULT_TEMPLATES))


def data_sets(cfg) -> list[dict]:
    """The configured data sets as dicts (``label``, ``root``, ``importer``, ``source``,
    ``rois``), ``root`` first when given; labels are unique names used in every table."""
    d = cfg.data
    sets = [RdmSetConfig(root=d.root, rois=d.rois)] if d.root is not None else []
    out = []
    for s in [*sets, *d.sets]:
        label = s.name or s.importer or _folder_name(s.root)
        out.append(
            {
                "label": label,
                "root": str(s.root),
                "importer": s.importer,
                "source": None if s.source is None else str(s.source),
                "rois": None if s.rois is None else list(s.rois),
            }
        )
    return out


def response_rois(root: str) -> list[str]:
    """The ROIs a data set folder gives as responses (``responses/<ROI>.npy``), sorted."""
    folder = Path(root, "responses")
    return sorted(p.stem for p in folder.glob("*.npy")) if folder.is_dir() else []


def _folder_name(root: Path | None) -> str:
    if root is None:
        return "dataset"
    try:
        return str(json.loads((Path(root) / "dataset.json").read_text())["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return Path(root).name


def _fingerprint(path: str | None) -> dict:
    """Content hashes (size + nanosecond mtime + inode for large files) of the files under
    ``path`` (:func:`brainalign.utils.hashing.file_fingerprint`); hidden files left out."""
    if path is None or not Path(path).exists():
        return {}
    root = Path(path)
    if not root.is_dir():
        return files_fingerprint(root.parent, [root])
    files = [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return files_fingerprint(root, files)


#: what the tasks of one data set read (see :func:`set_key`)
SET_GROUPS = ("stimuli", "images", "all")


def set_key(s: dict, group: str) -> str:
    """The fingerprint of the files of data set ``s`` (from :func:`data_sets`) that a task
    reading ``group`` reads, part of its key.

    ``stimuli``: ``dataset.json``, ``stimuli.tsv``, ``models/`` and the images' names (the
    reader checks that they exist; their pixels are not read); ``images``: those and the
    images' bytes (the vision models read them); ``all``: every file but the images' bytes (the
    RDMs and response patterns too). An importer's set adds its source, from which the folder
    is rebuilt.
    """
    if group not in SET_GROUPS:
        raise ValueError(f"data set group {group!r}: expected one of {SET_GROUPS}")
    found = _fingerprint(s["root"])
    if group != "all":
        keep = ("dataset.json", "stimuli.tsv", "models/", "images/")
        found = {k: v for k, v in found.items() if k.startswith(keep)}
    if group != "images":  # an image's name only: its pixels are read by the vision models
        found = {k: (True if k.startswith("images/") else v) for k, v in found.items()}
    source = _fingerprint(s["source"]) if s.get("importer") else None
    return hash_json({"files": found, "source": source})


def ensure_imported(s: dict, force: bool = False) -> None:
    """Build an importer's data set folder (``s`` from :func:`data_sets`) when it is missing
    (or always, with ``force``); the importers are deterministic, so a folder deleted after a
    run is rebuilt identical."""
    if s.get("importer") and (force or not (Path(s["root"]) / "dataset.json").exists()):
        import_rdm_dataset(s["importer"], s["source"], s["root"], overwrite=True)


@stage("rdm_data")
def rdm_data(params, inputs, ctx):
    """Build the imported data sets, then read and check every data set (summary per set)."""
    summary = []
    for s in params["sets"]:
        ensure_imported(s, force=True)
        ds = load_rdm_dataset(s["root"], s["rois"], metric=params["metric"])
        summary.append(
            {
                "label": s["label"],
                "root": s["root"],
                "name": ds.name,
                "n_stimuli": ds.n_stimuli,
                "rois": {roi: int(r.shape[0]) for roi, r in ds.rdms.items()},
                "origin": ds.origin,
                "models": list(ds.models),
                "source": ds.meta.get("source", ""),
                "dissimilarity": ds.meta.get("dissimilarity", ""),
            }
        )
    return {"sets": summary}


def plan(cfg, also_spaces: list[str], options: dict) -> tuple[Task, dict]:
    sets = data_sets(cfg)
    params = {
        "sets": sets,
        "metric": cfg.data.metric,
        # it reads and checks every file of every set (the sets' own tasks key only theirs);
        # an importer's folder it rebuilds from the source, so the source is what it reads
        "fingerprints": hash_json(
            [_fingerprint(s["source"]) if s["importer"] else set_key(s, "all") for s in sets]
        ),
    }
    return Task(TaskId("rdm_data"), params), {}


def subjects(cfg) -> list[int]:
    return []  # subjects belong to each data set and ROI (see the rdm tables)


def resolve(data: RdmsDataConfig, base: Path, out_dir: Path) -> RdmsDataConfig:
    sets = []
    for s in data.sets:
        root = resolve_path(s.root, base)
        if root is None and s.importer is not None:
            root = out_dir / "datasets" / (s.name or s.importer)
        sets.append(s.model_copy(update={"root": root, "source": resolve_path(s.source, base)}))
    return data.model_copy(update={"root": resolve_path(data.root, base), "sets": sets})


def check(cfg) -> list[str]:
    d = cfg.data
    problems = []
    if d.root is None and not d.sets:
        return ["data: give root = '<folder>' or at least one [[data.sets]] (docs/datasets.md)"]
    if d.root is None and d.rois is not None:
        problems.append("data.rois: applies to data.root; give rois in each [[data.sets]]")
    if cfg.subjects != "all":
        problems.append(
            "subjects: data kind 'rdms' uses every subject of each data set; remove subjects"
        )
    try:
        _check_templates(d.templates)
    except BrainAlignError as exc:
        problems.append(f"data.templates: {exc}")
    labels = [s["label"] for s in data_sets(cfg)]
    if len(set(labels)) != len(labels):
        problems.append(f"data.sets: data set names {labels} repeat; give each a distinct name")
    keys = (["data"] if d.root is not None else []) + [
        f"data.sets[{i}]" for i in range(len(d.sets))
    ]
    for key, s in zip(keys, data_sets(cfg), strict=True):
        if s["importer"] is not None:
            if s["source"] is None or not Path(s["source"]).exists():
                problems.append(
                    f"{key}.source: importer {s['importer']!r} needs its source folder; "
                    f"{s['source']!r} does not exist"
                )
            bad = [r for r in s["rois"] or () if r not in IMPORTER_ROIS[s["importer"]]]
            if bad:
                problems.append(
                    f"{key}.rois: unknown ROI name(s) {bad}; importer {s['importer']!r} "
                    f"writes {list(IMPORTER_ROIS[s['importer']])}"
                )
            meta = Path(s["root"]) / "dataset.json"
            if meta.exists():
                try:
                    made_by = json.loads(meta.read_text()).get("importer")
                except ValueError:
                    made_by = None
                if made_by != s["importer"]:
                    problems.append(
                        f"{key}.root: {s['root']} exists and was not written by importer "
                        f"{s['importer']!r}; choose another root (it would be replaced)"
                    )
            continue
        if not Path(s["root"]).is_dir():
            problems.append(f"{key}.root: {s['root']!r} is not a folder")
            continue
        try:
            load_rdm_dataset(s["root"], s["rois"], metric=d.metric)
        except BrainAlignError as exc:
            problems.append(f"{key}.root: {exc}")
    return problems


def methods(cfg) -> list[str]:
    d = cfg.data
    names = ([Path(d.root).name] if d.root is not None else []) + [
        s.name or s.importer or Path(s.root or "").name for s in d.sets
    ]
    return [
        f"Data: brain RDMs of {len(names)} data set(s) ({', '.join(names)}) in the RDM folder "
        "format (docs/datasets.md), read and checked by brainalign.datasets.load_rdm_dataset "
        "(symmetric, zero diagonal, finite, one image per stimulus); response patterns, where "
        f"given, turned into {d.metric or 'correlation'}-distance RDMs. Stimuli without "
        f"captions are described by label templates ({'; '.join(d.templates)}), a "
        "numbering suffix such as _3 dropped."
    ]


def summary(run) -> list:
    """The summary's line about RDM data: the data sets and the feature spaces (of the run's
    validated config)."""
    cfg = run.config
    if cfg is None:
        return []
    data = cfg.data
    sets = [s.name or s.importer or s.root for s in data.sets]
    where = ", ".join(str(s) for s in ([data.root] if data.root else []) + sets)
    return [Text(f"Data: RDM data sets {where}; feature spaces {', '.join(cfg.features.spaces)}.")]


DATA_KIND = DataKind(
    name="rdms",
    config=RdmsDataConfig,
    plan=plan,
    subjects=subjects,
    resolve=resolve,
    provides="rdms",
    check=check,
    methods=methods,
    summary=summary,
)

__all__ = [
    "DATA_KIND",
    "IMPORTER_ROIS",
    "RdmSetConfig",
    "RdmsDataConfig",
    "data_sets",
    "ensure_imported",
    "set_key",
]
