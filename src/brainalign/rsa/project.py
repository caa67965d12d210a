"""Volume (func1pt8mm) → fsaverage projection with NSD's transforms, without nsdcode.

This is the paper's ``nsd_project_fsaverage.py`` procedure as nsdcode (cvnlab/nsdcode, Python)
computes it: for each hemisphere, cubic interpolation of the volume at the subject-surface
vertices of three cortical depths (``layerB1..3``), out-of-range or invalid samples set to 0
(nsdcode's ``badval=0``), the mean over the depths, then nearest-vertex mapping ``white →
fsaverage``. nsdcode's range test compares 0-based coordinates with the 1-based bounds
1..size; ``quirk=True`` (default) reproduces it, ``quirk=False`` uses 0..size−1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import map_coordinates

from brainalign.datasets import _nsdpaths as P
from brainalign.datasets.surfaces import HEMIS
from brainalign.errors import DataFormatError, InputError

LAYERS = ("layerB1", "layerB2", "layerB3")


def _subject_number(subject) -> int:
    """``subject`` (1, "1" or "subj01") as its number."""
    text = subject[4:] if isinstance(subject, str) and subject.startswith("subj") else subject
    try:
        s = int(text)
    except (TypeError, ValueError):
        raise InputError(f"subject={subject!r}: expected 1..8 or 'subj01'..'subj08'") from None
    if s < 1:
        raise InputError(f"subject={subject!r}: NSD subjects are numbered from 1")
    return s


def _load_mgz(path: Path) -> np.ndarray:
    import nibabel as nib

    if not path.exists():
        raise DataFormatError(
            f"{path}: transform file not found; the NSD root must contain nsddata/ppdata/<subj>/transforms"
        )
    try:
        return np.asarray(nib.load(str(path)).get_fdata())
    except Exception as exc:  # nibabel raises several types for corrupt files
        raise DataFormatError(f"{path}: cannot read MGH/MGZ ({exc})") from exc


def sample_volume(
    volume: np.ndarray,
    coords_1based: np.ndarray,
    order: int = 3,
    quirk: bool = True,
    badval: float = 0.0,
):
    """nsdcode's ``interp_wrapper`` + case-2 post-processing.

    Parameters
    ----------
    volume : array (X, Y, Z)
    coords_1based : array (V, 3)
        1-based decimal voxel coordinates; 9999 marks an invalid vertex.

    Returns
    -------
    ndarray (V,), float64; invalid or out-of-range samples are ``badval``.
    """
    c = np.array(coords_1based, dtype=np.float64).T  # (3, V)
    c[c == 9999] = np.nan
    c = c - 1
    bad = ~np.isfinite(c).all(axis=0)
    c[:, bad] = -1
    shape = np.asarray(volume.shape[:3], dtype=np.float64)[:, None]
    lo, hi = (1.0, shape) if quirk else (0.0, shape - 1)
    bad |= np.any((c < lo) | (c > hi), axis=0)
    out = map_coordinates(
        np.nan_to_num(np.asarray(volume, dtype=np.float64)), c, order=order, mode="nearest"
    )
    out[bad] = badval
    return out


def project_to_fsaverage(
    volume_map, subject, root, layers=LAYERS, quirk: bool = True
) -> np.ndarray:
    """Project a func1pt8mm volume (or a stack) to fsaverage as the paper did.

    Parameters
    ----------
    volume_map : array, shape (X, Y, Z) or (X, Y, Z, n_maps)
        On the subject's func1pt8mm grid.
    subject : int or str
        1..8 or "subj01".
    root : path
        NSD root holding ``nsddata/ppdata/subjXX/transforms/{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz``
        and ``{lh,rh}.white-to-fsaverage.mgz``.

    Returns
    -------
    ndarray, shape (n_fsaverage_lh + n_fsaverage_rh,) or (n_maps, n_lh + n_rh), float64
        Left hemisphere first.
    """
    vol = np.asarray(volume_map)
    if vol.ndim not in (3, 4):
        raise InputError(
            f"volume_map: expected (X, Y, Z) or (X, Y, Z, n_maps), got shape {vol.shape}"
        )
    stack = vol if vol.ndim == 4 else vol[..., None]
    root, s = Path(root), _subject_number(subject)
    hemis = []
    for hemi in HEMIS:
        per_layer = []
        for layer in layers:
            path = P.transform(root, s, hemi, f"func1pt8-to-{layer}")
            coords = _load_mgz(path).reshape(-1, 3)
            valid = coords[(coords != 9999).all(1)]
            if valid.size and (valid.max(0) > np.array(vol.shape[:3]) + 1).any():
                raise DataFormatError(
                    f"{path}: coordinates reach {valid.max(0).tolist()}, beyond the volume {list(vol.shape[:3])}; "
                    "is volume_map on this subject's func1pt8mm grid?"
                )
            per_layer.append(
                np.stack(
                    [sample_volume(stack[..., k], coords, 3, quirk) for k in range(stack.shape[-1])]
                )
            )
        layer_mean = np.mean(per_layer, axis=0)  # (n_maps, V_native)
        path = P.transform(root, s, hemi, "white-to-fsaverage")
        idx = _load_mgz(path).ravel().astype(np.int64)
        if idx.min() < 1 or idx.max() > layer_mean.shape[1]:
            raise DataFormatError(
                f"{path}: indices must lie in 1..{layer_mean.shape[1]} (the native surface's vertices), "
                f"found {idx.min()}..{idx.max()}"
            )
        hemis.append(layer_mean[:, idx - 1])
    out = np.concatenate(hemis, axis=1)
    return out if vol.ndim == 4 else out[0]
