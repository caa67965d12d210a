"""Across subjects: the images every subject saw, and the noise ceiling of each ROI on them."""

from __future__ import annotations

import functools

import numpy as np

from brainalign.errors import DataFormatError
from brainalign.rsa.ceiling import noise_ceiling
from brainalign.rsa.roi import roi_rdms


def common_shared_images(subjects) -> np.ndarray:
    """NSD ids of the shared test images that every subject in ``subjects`` saw (ascending).

    Parameters
    ----------
    subjects : sequence of SubjectResponses
        Each with ``image_ids`` (ascending) and the boolean ``shared`` flags.
    """
    return functools.reduce(np.intersect1d, [np.asarray(s.image_ids)[s.shared] for s in subjects])


def roi_noise_ceilings(subjects, rois, *, min_images: int = 3) -> dict:
    """Leave-one-subject-out noise ceiling of each ROI on the images every subject saw (§3.4).

    Parameters
    ----------
    subjects : sequence of SubjectResponses
        At least three subjects (``betas`` (n_images, n_units), ``image_ids``, ``shared``,
        ``rois``).
    rois : sequence of str
        ROI names present in every subject's ``rois``.
    min_images : int
        Fewest common images accepted.

    Returns
    -------
    dict
        ``ceiling`` (n_subjects, n_rois) float64: each subject's RDM correlated with the mean
        RDM of the others; ``image_ids`` the common images; ``rdms`` {roi: the first subject's
        RDM (n_images, n_images)}.
    """
    common = common_shared_images(subjects)
    if len(common) < min_images:
        raise DataFormatError(
            f"noise ceiling: only {len(common)} shared images seen 3 times by every subject; "
            f"need at least {min_images}"
        )
    ceiling = np.full((len(subjects), len(rois)), np.nan)
    first = {}
    for j, roi in enumerate(rois):
        rdms = []
        for s in subjects:
            rows = np.searchsorted(s.image_ids, common)
            rdms.append(roi_rdms(s.betas, {roi: s.rois[roi]}, images=rows)[roi])
        ceiling[:, j] = noise_ceiling(np.stack(rdms))
        first[roi] = rdms[0]
    return {"ceiling": ceiling, "image_ids": common, "rdms": first}


__all__ = ["common_shared_images", "roi_noise_ceilings"]
