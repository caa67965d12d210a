"""``[data] kind = "nsd"``: a real NSD download (or any folder in its layout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from brainalign.errors import BrainAlignError, ConfigError
from brainalign.pipeline.analysis import DataKind
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.utils.hashing import hash_json
from brainalign.utils.settings import Section, resolve_path


class NSDDataConfig(Section):
    """A real NSD download (or any folder in its layout)."""

    kind: Literal["nsd"] = "nsd"
    root: Path
    cache_dir: Path | None = None
    #: which subjects define the shared test set: "all" 8 of NSD (the paper's 515, from their
    #: behavioural files, even when only some subjects' betas are here) or only those "present"
    test_set: Literal["all", "present"] = "all"


def nsd_fingerprint(root: str | os.PathLike) -> dict:
    """Names, sizes and modification times of an NSD root's key files (part of cache keys)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"data.root: {str(root)!r} does not exist")
    out = {}
    for sub in ("nsddata/experiments/nsd", "nsddata/ppdata", "nsddata_betas/ppdata"):
        folder = root / sub
        if folder.exists():
            for p in sorted(folder.rglob("*"))[:20000]:
                if p.is_file():
                    st = p.stat()
                    out[str(p.relative_to(root))] = [st.st_size, int(st.st_mtime)]
    return out


@stage("nsd_root")
def nsd_root(params, inputs, ctx):
    """A real NSD root: checked once (its fingerprint is part of the key)."""
    from brainalign.datasets import list_subjects

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
    from brainalign.datasets._formats import mgh_shape
    from brainalign.datasets.surfaces import FSAVERAGE_SIZES

    betas = sorted(
        root.glob("nsddata_betas/ppdata/subj*/fsaverage/betas_fithrf_GLMdenoise_RR/lh.betas_*.mgh")
    )
    fs = root / "nsddata" / "freesurfer" / "fsaverage"
    for path in [*betas[:1], fs / "label" / "lh.streams.mgz", fs / "label" / "lh.nsdgeneral.mgz"]:
        if path.is_file():
            return int(mgh_shape(path)[0]), path
    if (fs / "surf" / "lh.white").is_file():
        from brainalign.datasets import load_surface

        return load_surface(fs / "surf" / "lh.white").n_vertices, fs / "surf" / "lh.white"
    return FSAVERAGE_SIZES["fsaverage"], None


def surface_mesh(root: str | os.PathLike) -> dict:
    """The fsaverage mesh the root's surface data live on, whatever its resolution.

    NSD's own download is full fsaverage (163,842 vertices per hemisphere); a virtual NSD (or
    any NSD-layout folder) may be fsaverage5 or another icosahedral resolution. The surfaces
    come from the root's ``nsddata/freesurfer/fsaverage/surf`` (nilearn's for fsaverage5 when
    the root has none).
    """
    from brainalign.datasets.surfaces import FSAVERAGE_SIZES

    root = Path(root)
    n, source = _surface_vertices(root)
    names = [name for name, size in FSAVERAGE_SIZES.items() if size == n]
    if not names:
        raise ConfigError(
            f"data.root: {source} has {n} vertices per hemisphere; expected an fsaverage "
            f"resolution ({', '.join(str(v) for v in sorted(set(FSAVERAGE_SIZES.values())))}); "
            "the surface data must be on fsaverage (or one of its icosahedral subdivisions)"
        )
    fs_dir = root / "nsddata" / "freesurfer" / "fsaverage"
    has_surfaces = (fs_dir / "surf" / "lh.white").is_file()
    return {
        "mesh": names[0],
        "surface": "white",
        "fs_dir": str(fs_dir) if has_surfaces or names[0] != "fsaverage5" else None,
    }


def subjects(cfg) -> list[int]:
    from brainalign.datasets import list_subjects

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


def methods(cfg: dict) -> list[str]:
    return [
        f"Data: NSD at {cfg.get('data', {}).get('root')}, space {cfg.get('space')}; per-session "
        "z-scoring over all 750 trials, images seen three times kept, repetitions averaged."
    ]


DATA_KIND = DataKind(
    name="nsd",
    config=NSDDataConfig,
    plan=plan,
    subjects=subjects,
    resolve=resolve,
    check=check,
    methods=methods,
)
