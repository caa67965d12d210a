"""From a :class:`~brainalign.config.StudyConfig` to the task graph (subjects × models × chunks).

Every task's key is known here, before anything runs, so ``--dry-run`` can show what is cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainalign.config import NSDDataConfig, StudyConfig
from brainalign.errors import ConfigError
from brainalign.pipeline import stages as S
from brainalign.pipeline.core import Task
from brainalign.utils.hashing import hash_json

N_CENTRES = {"fsaverage5": 2 * 10242, "fsaverage": 2 * 163842}
#: brain-mask voxels assumed when a func1pt8mm mask cannot be read at plan time (chunking only)
VOLUME_UNITS_NSD = 250_000
VOLUME_UNITS_VIRTUAL = 24_000
STREAMS = ("early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal")


@dataclass
class Plan:
    """The study's tasks, grouped for the export step."""

    config: StudyConfig
    subjects: list[int]
    data: Task
    subject_tasks: dict[int, Task] = field(default_factory=dict)
    models: dict[str, Task] = field(default_factory=dict)  # model name -> features-like task
    groups: dict[str, Task] = field(default_factory=dict)  # named group-level results
    per_subject: dict[str, dict] = field(default_factory=dict)  # e.g. "decoding" -> {s: Task}
    networks: dict[str, Task] = field(default_factory=dict)
    bank: Task | None = None

    @property
    def targets(self) -> list[Task]:
        out = list(self.groups.values()) + list(self.networks.values())
        for tasks in self.per_subject.values():
            out += list(tasks.values())
        return out + list(self.models.values())


def _subjects(cfg: StudyConfig) -> list[int]:
    if cfg.subjects != "all":
        return list(cfg.subjects)
    if isinstance(cfg.data, NSDDataConfig):
        from brainalign.datasets import list_subjects

        subs = list_subjects(cfg.data.root)
        if not subs:
            raise ConfigError(
                f"data.root: no subjects found under {cfg.data.root} (nsddata/ppdata/subjNN)"
            )
        return subs
    return list(range(1, cfg.data.n_subjects + 1))


def _encoder_name(cfg: StudyConfig, space: str) -> str:
    if space == "mpnet" or space.startswith("mpnet"):
        return cfg.features.encoder
    if space in S.ENCODER_OF_SPACE:
        return S.ENCODER_OF_SPACE[space]
    if space.startswith("st:"):
        return space[3:]
    raise ConfigError(
        f"analyses: feature space {space!r} is not a sentence-encoder space; in-silico contrasts "
        "and caption banks need one (mpnet, minilm or st:<model>)"
    )


def build_plan(cfg: StudyConfig) -> Plan:
    """Every task of the study with its parameters and dependencies (nothing is run)."""
    subjects = _subjects(cfg)
    a = cfg.analyses
    seed = cfg.compute.random_state
    if isinstance(cfg.data, NSDDataConfig):
        root = str(cfg.data.root)
        data = Task(
            "nsd_root", "nsd", {"root": root, "fingerprint": hash_json(S.nsd_fingerprint(root))}
        )
        mesh = {
            "mesh": "fsaverage",
            "surface": "white",
            "fs_dir": str(Path(root) / "nsddata" / "freesurfer" / "fsaverage"),
        }
    else:
        root = str(cfg.data.root)
        data = Task(
            "virtual_nsd",
            "virtual",
            {
                "root": root,
                "n_subjects": cfg.data.n_subjects,
                "space": cfg.space,
                "random_state": cfg.data.random_state,
                "options": cfg.data.options,
                **({"also_spaces": ["func1pt8mm"]} if _volume_extra(cfg) else {}),
            },
        )
        mesh = {"mesh": "fsaverage5", "surface": "pial", "fs_dir": None}
    plan = Plan(cfg, subjects, data)
    base = {"root": root, "space": cfg.space}
    for s in subjects:
        plan.subject_tasks[s] = Task(
            "responses", f"sub-{s:02d}", {**base, "subject": s}, {"data": data}
        )

    def feature_task(name: str) -> Task:
        if name not in plan.models:
            plan.models[name] = Task(
                "features",
                name,
                {
                    "root": root,
                    "name": name,
                    "options": cfg.features.options.get(name, {}),
                },
                {"data": data},
            )
        return plan.models[name]

    for name in cfg.features.spaces:
        feature_task(name)

    # networks: trained nets and zoo models become models like the feature spaces
    net = a.networks
    if net.enabled:
        for target in net.targets:
            for sd in net.seeds:
                name = f"net_{target}@s{sd}"
                deps = {"data": data}
                if target == "mpnet":
                    deps["target"] = feature_task(net.embedding_space)
                plan.networks[name] = Task(
                    "train_network",
                    name,
                    {
                        "root": root,
                        "name": f"{target}_seed{sd}",
                        "target": target,
                        "seed": sd,
                        "epochs": net.epochs,
                        "batch_size": net.batch_size,
                        "image_size": net.image_size,
                        "width": net.width,
                        "timesteps": net.timesteps,
                        "layers": net.layers,
                        "learning_rate": net.learning_rate,
                    },
                    deps,
                )
        for z in net.zoo:
            plan.networks[z] = Task("zoo_features", z, {"root": root, "model": z}, {"data": data})
    rsa_models = {**plan.models, **plan.networks}
    if a.networks.enabled and net.embedding_space not in cfg.features.spaces:
        rsa_models.pop(net.embedding_space, None)

    samplings = {}
    if a.roi_rsa.enabled or a.searchlight.sampling == "paper":
        for s in subjects:
            samplings[s] = Task(
                "sampling",
                f"sub-{s:02d}",
                {
                    "subset_size": a.roi_rsa.subset_size,
                    "max_subsets": a.roi_rsa.max_subsets,
                    "random_state": seed * 1000 + s,
                },
                {"subject": plan.subject_tasks[s]},
            )

    if a.roi_rsa.enabled:
        rois = list(a.roi_rsa.rois)
        deps = {}
        for s in subjects:
            for m, mt in rsa_models.items():
                deps[f"rsa|{s}|{m}"] = Task(
                    "roi_rsa",
                    f"sub-{s:02d}/{m}",
                    {
                        **base,
                        "subject": s,
                        "model": m,
                        "rois": rois,
                        "sampling": a.roi_rsa.sampling,
                        "method": a.roi_rsa.method,
                    },
                    {"model": mt, "sampling": samplings[s], "subject": plan.subject_tasks[s]},
                )
        if a.roi_rsa.noise_ceiling and len(subjects) >= 3:
            deps["ceiling"] = Task(
                "noise_ceiling",
                "all",
                {**base, "subjects": subjects, "rois": rois},
                {f"s{s}": plan.subject_tasks[s] for s in subjects},
            )
        mc = a.model_comparison
        plan.groups["roi_group"] = Task(
            "roi_group",
            "all",
            {
                "comparison_rois": list(mc.rois) if mc.enabled else [],
                "test": mc.test,
                "fdr_q": mc.fdr_q,
            },
            deps,
        )

    if a.searchlight.enabled and a.searchlight.space == "func1pt8mm":
        _plan_volume_searchlight(plan, cfg, samplings, feature_task)
    elif a.searchlight.enabled:
        sl = a.searchlight
        nb = Task(
            "neighbourhoods", f"{mesh['mesh']}-{sl.radius:g}mm", {**mesh, "radius": sl.radius}, {}
        )
        plan.groups["neighbourhoods"] = nb
        n_chunks = math.ceil(N_CENTRES[mesh["mesh"]] / sl.chunk_size)
        for m in sl.models:
            deps = {}
            for s in subjects:
                for c in range(n_chunks):
                    start, stop = (
                        c * sl.chunk_size,
                        min((c + 1) * sl.chunk_size, N_CENTRES[mesh["mesh"]]),
                    )
                    tdeps = {
                        "model": feature_task(m),
                        "neighbourhoods": nb,
                        "subject": plan.subject_tasks[s],
                    }
                    if sl.sampling == "paper":
                        tdeps["sampling"] = samplings[s]
                    deps[f"sl|{s}|{c}"] = Task(
                        "searchlight",
                        f"sub-{s:02d}/{m}/chunk{c:03d}",
                        {
                            **base,
                            "subject": s,
                            "model": m,
                            "centres": [start, stop],
                            "method": sl.method,
                            "sampling": sl.sampling,
                        },
                        tdeps,
                    )
            plan.groups[f"searchlight|{m}"] = Task(
                "searchlight_group",
                m,
                {
                    "subjects": subjects,
                    "n_chunks": n_chunks,
                    "fdr_q": sl.fdr_q,
                },
                deps,
            )

    if a.encoding.enabled:
        enc = a.encoding
        vec = None
        if a.insilico.enabled:
            cats = sorted({c for pair in a.insilico.contrasts for c in pair})
            vec = Task(
                "insilico_vectors",
                "sentences",
                {
                    "encoder": _encoder_name(cfg, enc.feature_space),
                    "categories": cats,
                    "sentences": a.insilico.sentences,
                },
                {},
            )
        deps = {}
        for s in subjects:
            tdeps = {"model": feature_task(enc.feature_space), "subject": plan.subject_tasks[s]}
            if vec is not None:
                tdeps["insilico"] = vec
            deps[f"enc|{s}"] = Task(
                "encoding",
                f"sub-{s:02d}",
                {
                    **base,
                    "subject": s,
                    "alphas": list(enc.alphas),
                    "cv": enc.cv,
                    "mode": enc.mode,
                },
                tdeps,
            )
        plan.groups["encoding"] = Task(
            "encoding_group",
            "all",
            {
                **base,
                "subjects": subjects,
                "fdr_q": enc.fdr_q,
                "agreement": enc.agreement and len(subjects) >= 2,
                "contrasts": [list(c) for c in a.insilico.contrasts] if a.insilico.enabled else [],
                "alpha": a.insilico.alpha,
            },
            deps,
        )

    if a.decoding.enabled:
        dec = a.decoding
        encoder = _encoder_name(cfg, dec.feature_space)
        bank_params = {
            "root": root,
            "bank": str(dec.bank) if dec.bank else None,
            "encoder": encoder,
            "dtype": dec.bank_dtype,
        }
        bank_params["bank_key"] = hash_json(bank_params)[:16]
        # after the feature space: the bank's captions are then read from the embedding cache
        plan.bank = Task(
            "caption_bank",
            "bank",
            bank_params,
            {"data": data, "model": feature_task(dec.feature_space)},
        )
        plan.per_subject["decoding"] = {
            s: Task(
                "decoding",
                f"sub-{s:02d}",
                {
                    **base,
                    "subject": s,
                    "rois": list(dec.rois),
                    "alphas": list(dec.alphas),
                    "k": dec.k,
                },
                {
                    "model": feature_task(dec.feature_space),
                    "bank": plan.bank,
                    "subject": plan.subject_tasks[s],
                },
            )
            for s in subjects
        }
    return plan


def _volume_extra(cfg: StudyConfig) -> bool:
    """Whether the volume searchlight needs func1pt8mm betas besides the study's space."""
    sl = cfg.analyses.searchlight
    return sl.enabled and sl.space == "func1pt8mm" and cfg.space != "func1pt8mm"


def _volume_units(cfg: StudyConfig, subject: int) -> int:
    """Brain-mask voxels of a subject's func1pt8mm volume, to size the searchlight's chunks.

    Read from NSD's ``brainmask.nii.gz`` when it exists at plan time; a virtual NSD is written
    later, so its size is estimated (its 4-mm volume holds ~21k voxels). Only the number of
    chunks depends on it: a chunk is a fixed share of the centres, whatever their count.
    """
    if isinstance(cfg.data, NSDDataConfig):
        path = (
            Path(cfg.data.root)
            / "nsddata"
            / "ppdata"
            / f"subj{subject:02d}"
            / "func1pt8mm"
            / "brainmask.nii.gz"
        )
        if path.is_file():
            import nibabel as nib

            return int(np.count_nonzero(np.asarray(nib.load(str(path)).dataobj)))
        return VOLUME_UNITS_NSD
    return VOLUME_UNITS_VIRTUAL


def _plan_volume_searchlight(plan: Plan, cfg: StudyConfig, samplings: dict, feature_task):
    """The paper's searchlight: volume spheres per subject → RSA in chunks → fsaverage → group.

    Per subject: ``volume_neighbourhoods`` (spheres of ``radius`` voxels on the subject's mask),
    per model ``volume_searchlight`` tasks over equal shares of the centres, and one
    ``volume_projection`` that assembles them into a volume and projects it with NSD's
    transforms. The group stage is the surface path's ``searchlight_group``, each subject's
    projected map being its one chunk, so statistics and export are shared.
    """
    sl = cfg.analyses.searchlight
    root = str(cfg.data.root)
    vbase = {"root": root, "space": "func1pt8mm"}
    vol_subject, vol_nb = {}, {}
    for s in plan.subjects:
        if cfg.space == "func1pt8mm":
            vol_subject[s] = plan.subject_tasks[s]
        else:
            vol_subject[s] = Task(
                "responses", f"sub-{s:02d}/func1pt8mm", {**vbase, "subject": s}, {"data": plan.data}
            )
        vol_nb[s] = Task(
            "volume_neighbourhoods",
            f"sub-{s:02d}/r{sl.radius:g}vox",
            {**vbase, "subject": s, "radius": sl.radius, "min_fraction": sl.min_fraction},
            {"subject": vol_subject[s]},
        )
    for m in sl.models:
        deps = {}
        for s in plan.subjects:
            n_parts = max(1, math.ceil(_volume_units(cfg, s) / sl.chunk_size))
            chunks = {}
            for c in range(n_parts):
                tdeps = {
                    "model": feature_task(m),
                    "neighbourhoods": vol_nb[s],
                    "subject": vol_subject[s],
                }
                if sl.sampling == "paper":
                    # the study's subsets, drawn on the study space's image order (checked equal)
                    tdeps["sampling"] = samplings[s]
                    tdeps["sampling_subject"] = plan.subject_tasks[s]
                chunks[f"chunk{c}"] = Task(
                    "volume_searchlight",
                    f"sub-{s:02d}/{m}/part{c:03d}",
                    {
                        **vbase,
                        "subject": s,
                        "model": m,
                        "part": [c, n_parts],
                        "method": sl.method,
                        "sampling": sl.sampling,
                    },
                    tdeps,
                )
            deps[f"sl|{s}|0"] = Task(
                "volume_projection",
                f"sub-{s:02d}/{m}",
                {"root": root, "subject": s, "n_parts": n_parts},
                {**chunks, "neighbourhoods": vol_nb[s]},
            )
        plan.groups[f"searchlight|{m}"] = Task(
            "searchlight_group",
            m,
            {"subjects": plan.subjects, "n_chunks": 1, "fdr_q": sl.fdr_q},
            deps,
        )


__all__ = ["Plan", "build_plan"]
