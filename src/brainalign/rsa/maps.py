"""From searchlight values per centre to a volume."""

from __future__ import annotations

import numpy as np

from brainalign.errors import DataFormatError


def centres_to_volume(values, mask, centres) -> np.ndarray:
    """A volume holding each sphere centre's value, 0 elsewhere (as nsdcode's ``badval=0``).

    Parameters
    ----------
    values : array, shape (n_centres,)
        One value per centre (e.g. searchlight r); NaN becomes 0, since cubic interpolation
        would spread a NaN over every vertex that samples near it (nsdcode zeroes NaN too).
    mask : bool array, shape (X, Y, Z)
        The brain mask the neighbourhoods were built on.
    centres : int array, shape (n_centres,)
        Each centre's index among the mask's voxels (C order).

    Returns
    -------
    array, shape (X, Y, Z), float64
    """
    values = np.asarray(values).astype(np.float64)
    centres = np.asarray(centres)
    if values.shape[0] != centres.shape[0]:
        raise DataFormatError(
            f"{values.shape[0]} searchlight values for {centres.shape[0]} centres; "
            "rerun the volume searchlight"
        )
    mask = np.asarray(mask, dtype=bool)
    volume = np.zeros(mask.shape, dtype=np.float64)
    volume.ravel()[np.flatnonzero(mask)[centres]] = np.nan_to_num(values)
    return volume


__all__ = ["centres_to_volume"]
