"""Turning user-given models (feature matrices or RDMs) into the internal representation."""

from __future__ import annotations

import numpy as np

from brainalign.errors import InputError
from brainalign.rsa.rdm import n_conditions_from_condensed, standardise_rows


def parse_models(models, n_images: int) -> tuple[list[str], list[tuple[str, np.ndarray]]]:
    """Normalise ``models`` to names and ``("features", Ê)`` / ``("rdm", condensed)`` items.

    ``models`` may be one array or a list or dict of arrays. A 2-D array with ``n_images`` rows is a
    feature matrix (n_images × d), turned into a correlation-distance RDM as in the paper (its rows
    are centred and unit-normalised here). A 1-D array is a condensed RDM over the ``n_images``
    images. A 2-D array whose rows have ``n_images (n_images − 1) / 2`` entries is a batch of RDMs.
    """
    if isinstance(models, dict):
        items = list(models.items())
    elif isinstance(models, (list, tuple)):
        items = [(f"model{i}", m) for i, m in enumerate(models)]
    else:
        items = [("model0", models)]
    if not items:
        raise InputError("models: expected at least one model")
    n_pairs = n_images * (n_images - 1) // 2
    names, parsed = [], []
    for name, m in items:
        arr = np.asarray(m, dtype=np.float64)
        label = f"models[{name!r}]"
        if arr.ndim == 2 and arr.shape[0] == n_images:
            if not np.isfinite(arr).all():
                raise InputError(f"{label}: feature matrix contains NaN or infinite values")
            names.append(str(name))
            parsed.append(("features", standardise_rows(arr, "correlation", label)))
        elif arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == n_pairs):
            batch = np.atleast_2d(arr)
            if batch.shape[1] != n_pairs:
                n_found = n_conditions_from_condensed(batch.shape[1], label)
                raise InputError(
                    f"{label}: a condensed RDM over {n_found} images, but the betas have {n_images} images; "
                    "models and betas must cover the same images in the same order"
                )
            if not np.isfinite(batch).all():
                raise InputError(f"{label}: RDM contains NaN or infinite dissimilarities")
            for j, row in enumerate(batch):
                names.append(str(name) if batch.shape[0] == 1 else f"{name}[{j}]")
                parsed.append(("rdm", row))
        else:
            raise InputError(
                f"{label}: expected features (n_images={n_images}, d) or a condensed RDM ({n_pairs},), got shape "
                f"{arr.shape}"
            )
    return names, parsed
