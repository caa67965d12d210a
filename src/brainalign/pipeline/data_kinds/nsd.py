"""``[data] kind = "nsd"``: a real NSD download (or any folder in its layout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from brainalign.errors import ConfigError
from brainalign.pipeline.analysis import DataKind
from brainalign.pipeline.core import Task, TaskId, stage
from brainalign.utils.hashing import hash_json
from brainalign.utils.settings import Section, resolve_path


class NSDDataConfig(Section):
    """A real NSD download (or any folder in its layout)."""

    kind: Literal["nsd"] = "nsd"
    root: Path
    cache_dir: Path | None = None


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
    mesh = {
        "mesh": "fsaverage",
        "surface": "white",
        "fs_dir": str(Path(root) / "nsddata" / "freesurfer" / "fsaverage"),
    }
    return data, mesh


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
