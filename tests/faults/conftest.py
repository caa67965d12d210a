"""Fixtures of the fault-injection suite: one tiny virtual NSD per test session (read-only) and
cheap per-test copies (hard links; a corruption replaces a file, never edits it in place)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: a tiny virtual NSD: 2 subjects, 8 + 8 images, 4 sessions of 12 trials, a 10-mm volume
TINY = dict(n_subjects=2, n_shared=8, n_unique=8, n_sessions=4, voxel_size=10.0, random_state=5)
FS = "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
VOL = "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
STIM = "nsddata_stimuli/stimuli/nsd"
FSAV = "nsddata/freesurfer/fsaverage"

#: the TOML that turns off every analysis a fault test does not exercise (ROI RSA, the model
#: comparison and the searchlight stay as each study sets them)
OTHER_ANALYSES_OFF = """\
[analyses.searchlight_contrasts]
contrasts = []
[analyses.encoding]
enabled = false
[analyses.insilico]
enabled = false
[analyses.decoding]
enabled = false
[analyses.networks]
enabled = false
"""


@pytest.fixture(scope="session")
def tiny_nsd(tmp_path_factory) -> Path:
    """The tiny virtual NSD (≈ 4 s to build); never modify it: use ``nsd_copy``."""
    from brainalign.datasets import make_virtual_nsd

    return make_virtual_nsd(tmp_path_factory.mktemp("faults") / "nsd", **TINY)


@pytest.fixture
def nsd_copy(tiny_nsd, tmp_path) -> Path:
    """A private copy of the tiny NSD made of hard links (fast); replace files, never edit."""
    return Path(shutil.copytree(tiny_nsd, tmp_path / "nsd", copy_function=os.link))


def replace(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` without touching the file it was linked to."""
    path.unlink()
    path.write_bytes(data)
