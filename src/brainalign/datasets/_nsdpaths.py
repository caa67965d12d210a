"""Where NSD keeps each file (relative to the NSD root), as in ``docs/nsd_layout.md`` §2."""

from __future__ import annotations

from pathlib import Path

BETAS_VERSION = "betas_fithrf_GLMdenoise_RR"


def subj(s: int) -> str:
    return f"subj{int(s):02d}"


def expdesign(root: Path) -> Path:
    return root / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat"


def stim_info(root: Path) -> Path:
    return root / "nsddata" / "experiments" / "nsd" / "nsd_stim_info_merged.csv"


def responses(root: Path, s: int) -> Path:
    return root / "nsddata" / "ppdata" / subj(s) / "behav" / "responses.tsv"


def betas_dir(root: Path, s: int, space: str) -> Path:
    """The folder of a subject's betas (and ``ncsnr``) in ``space``."""
    return root / "nsddata_betas" / "ppdata" / subj(s) / space / BETAS_VERSION


def fsaverage_betas(root: Path, s: int, hemi: str, session: int) -> Path:
    return betas_dir(root, s, "fsaverage") / f"{hemi}.betas_session{session:02d}.mgh"


def volume_betas(root: Path, s: int, session: int) -> Path:
    return betas_dir(root, s, "func1pt8mm") / f"betas_session{session:02d}.nii.gz"


def brainmask(root: Path, s: int) -> Path:
    return root / "nsddata" / "ppdata" / subj(s) / "func1pt8mm" / "brainmask.nii.gz"


def roi_dir(root: Path, s: int) -> Path:
    """A subject's func1pt8mm ROI volumes."""
    return root / "nsddata" / "ppdata" / subj(s) / "func1pt8mm" / "roi"


def roi_volume(root: Path, s: int, stem: str) -> Path:
    return roi_dir(root, s) / f"{stem}.nii.gz"


def transforms_dir(root: Path, s: int) -> Path:
    """A subject's transforms between NSD's spaces (``nsd_layout.md`` §2)."""
    return root / "nsddata" / "ppdata" / subj(s) / "transforms"


def transform(root: Path, s: int, hemi: str, name: str) -> Path:
    """One hemisphere's transform, e.g. ``name="white-to-fsaverage"`` or
    ``"func1pt8-to-layerB1"``: ``transforms/{hemi}.{name}.mgz``."""
    return transforms_dir(root, s) / f"{hemi}.{name}.mgz"


def fsaverage_dir(root: Path) -> Path:
    """NSD's copy of FreeSurfer's fsaverage subject (``surf/``, ``label/``)."""
    return root / "nsddata" / "freesurfer" / "fsaverage"


def fsaverage_label(root: Path, hemi: str, atlas: str) -> Path:
    return fsaverage_dir(root) / "label" / f"{hemi}.{atlas}.mgz"


def fsaverage_ctab(root: Path, atlas: str) -> Path:
    return fsaverage_dir(root) / "label" / f"{atlas}.mgz.ctab"


def shared1000_dir(root: Path) -> Path:
    return root / "nsddata" / "stimuli" / "nsd" / "shared1000"


def stimuli_dir(root: Path) -> Path:
    """The image brick and its COCO annotations."""
    return root / "nsddata_stimuli" / "stimuli" / "nsd"


def stimuli_hdf5(root: Path) -> Path:
    return stimuli_dir(root) / "nsd_stimuli.hdf5"


def annotations(root: Path, kind: str, split: str) -> Path:
    return stimuli_dir(root) / "annotations" / f"{kind}_{split}.json"


def ppdata_dir(root: Path) -> Path:
    return root / "nsddata" / "ppdata"
