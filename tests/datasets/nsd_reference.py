"""Plain in-memory recomputation of NSD preprocessing, for tests (paper_methods §1.2)."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats

BETA_DIR = "betas_fithrf_GLMdenoise_RR"


def reference_trials(root, subject, space):
    """Per-session z-scored single trials (n_units, n_trials) and the tsv, written plainly."""
    tsv = pd.read_csv(root / f"nsddata/ppdata/subj{subject:02d}/behav/responses.tsv", sep="\t")
    base = root / f"nsddata_betas/ppdata/subj{subject:02d}"
    zs = []
    for sess in sorted(tsv["SESSION"].unique()):
        if space == "fsaverage":
            data = np.vstack(
                [
                    nib.load(base / f"fsaverage/{BETA_DIR}/{h}.betas_session{sess:02d}.mgh")
                    .get_fdata()
                    .squeeze()
                    for h in ("lh", "rh")
                ]
            )
        else:
            vol = nib.load(base / f"func1pt8mm/{BETA_DIR}/betas_session{sess:02d}.nii.gz")
            mask = (
                nib.load(
                    root / f"nsddata/ppdata/subj{subject:02d}/func1pt8mm/brainmask.nii.gz"
                ).get_fdata()
                > 0
            )
            data = np.asarray(vol.dataobj).astype(np.float64)[mask] / 300.0
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant (dead) units → NaN
            zs.append(stats.zscore(data, axis=1, ddof=0))
    return np.hstack(zs), tsv


def reference_betas(root, subject, space):
    Z, tsv = reference_trials(root, subject, space)
    ids73 = tsv["73KID"].to_numpy()
    uniq, counts = np.unique(ids73, return_counts=True)
    kept = uniq[counts == 3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN means of dead vertices
        betas = np.stack([np.nanmean(Z[:, ids73 == k], axis=1) for k in kept])
    return betas, kept - 1
