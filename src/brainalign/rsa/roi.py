"""ROI RSA (the paper's Fig. 3 analysis) and model-vs-model RDM correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.backend import get_backend
from brainalign.errors import InputError
from brainalign.rsa._kernels import prepare_block
from brainalign.rsa.compare import compare_rdms
from brainalign.rsa.models import parse_models
from brainalign.rsa.neighbourhoods import Neighbourhoods
from brainalign.rsa.rdm import compute_rdm
from brainalign.rsa.searchlight import finite_units, searchlight
from brainalign.rsa.subsets import check_subsets
from brainalign.utils.arrays import RowView
from brainalign.utils.validation import check_2d

SAMPLINGS = ("subsets", "full")


def _roi_units(rois, n_units: int) -> tuple[list[str], list[np.ndarray]]:
    if not isinstance(rois, dict) or not rois:
        raise InputError(
            "rois: expected a non-empty dict {name: boolean mask (n_units,) or unit indices}"
        )
    names, units = [], []
    for name, r in rois.items():
        r = np.asarray(r)
        if r.dtype == bool:
            if r.shape != (n_units,):
                raise InputError(
                    f"rois[{name!r}]: a mask must have shape ({n_units},) like the betas' columns, got {r.shape}"
                )
            idx = np.flatnonzero(r)
        elif np.issubdtype(r.dtype, np.integer) and r.ndim == 1:
            idx = np.unique(r)
            if idx.size and (idx[0] < 0 or idx[-1] >= n_units):
                raise InputError(f"rois[{name!r}]: unit indices must lie in [0, {n_units})")
        else:
            raise InputError(
                f"rois[{name!r}]: expected a boolean mask or an integer index array, got {r.dtype} {r.shape}"
            )
        if idx.size < 2:
            raise InputError(f"rois[{name!r}]: has {idx.size} unit(s); an RDM needs at least 2")
        names.append(str(name))
        units.append(idx)
    return names, units


def roi_rsa(
    betas,
    models,
    rois,
    sampling: str = "subsets",
    subsets=None,
    method: str = "pearson",
    backend: str = "numpy",
    device=None,
    dtype="float32",
    metric: str = "correlation",
) -> pd.DataFrame:
    """RSA of each model in each ROI of one subject.

    Parameters
    ----------
    betas : array, shape (n_images, n_units)
        One subject's responses (units with any non-finite value are dropped, as in the paper).
    models : array, list or dict of arrays
        Feature matrices (n_images × d) → correlation-distance RDMs, or condensed RDMs.
    rois : dict
        ``{name: boolean mask (n_units,) or unit indices}``.
    sampling : {"subsets", "full"}
        ``subsets``: the paper's disjoint 100-image subsets (the same ``subsets`` for every model
        and ROI), mean of the per-subset Pearson r; ``full``: one comparison over all images.
    subsets : array (n_subsets, size)
        Required for ``sampling="subsets"``; see :func:`make_subsets` / :func:`load_subsets`.
    method : {"pearson", "spearman", "cosine", "kendall_tau_a"}
    metric : {"correlation", "cosine", "euclidean"}
        Dissimilarity of the brain and model RDMs. ``"correlation"`` (the paper's) runs the
        RDM-free kernel; the others build each RDM explicitly (feature-matrix models only).
    dtype : {"float32", "float64"}
        Precision in which the ROIs' columns are read and multiplied (sums are combined in
        float64). Only the ROIs' columns are read: a memory-mapped ``betas`` stays on disk.

    Returns
    -------
    scores : pandas.DataFrame, shape (n_rois, n_models)
        Index: ROI names; columns: model names (``model0``... for a list).
    """
    betas = check_2d(betas, "betas")
    if sampling not in SAMPLINGS:
        raise InputError(f"sampling={sampling!r}: expected one of {SAMPLINGS}")
    roi_names, units = _roi_units(rois, betas.shape[1])
    names, _ = parse_models(models, betas.shape[0])
    mode = "subsets" if sampling == "subsets" else "full"
    # only the ROIs' columns are read (a memory-mapped brain stays on disk), in ``dtype``
    columns = np.unique(np.concatenate(units))
    B = np.asarray(RowView(betas, columns=columns, dtype=dtype))
    units = [np.searchsorted(columns, idx) for idx in units]
    # the paper drops NaN vertices; a ROI that loses all but one unit is an error, not NaN
    valid = finite_units(B)
    for name, idx in zip(roi_names, units, strict=True):
        if valid[idx].sum() < 2:
            raise InputError(
                f"rois[{name!r}]: fewer than 2 units have finite betas for every image"
            )
    if metric != "correlation":
        kept = [columns[idx[valid[idx]]] for idx in units]
        return _roi_rsa_explicit(betas, models, roi_names, kept, sampling, subsets, method, metric)
    nb = Neighbourhoods.from_lists(units, B.shape[1], kind="roi")
    values = searchlight(
        B,
        models,
        nb,
        method=method,
        mode=mode,
        subsets=subsets,
        backend=backend,
        device=device,
        dtype=dtype,
        batch_size=1,
        n_jobs=1,
        # one ROI per batch needs no padding, so the columns are used as they are (no copy)
        zero_pad_limit=0,
    )
    return pd.DataFrame(values.T, index=pd.Index(roi_names, name="roi"), columns=names)


def _roi_rsa_explicit(betas, models, roi_names, units, sampling, subsets, method, metric):
    """ROI RSA with explicit RDMs of ``metric`` (for metrics the RDM-free kernel cannot do), in
    float64 over each ROI's finite ``units``."""
    items = list(models.items()) if isinstance(models, dict) else [("model0", models)]
    feats = {}
    for name, X in items:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != betas.shape[0]:
            raise InputError(
                f"models[{name!r}]: metric={metric!r} needs a feature matrix "
                f"({betas.shape[0]}, d); precomputed RDMs carry their own metric"
            )
        feats[str(name)] = X
    if sampling == "subsets":
        if subsets is None:
            raise InputError("subsets: required with sampling='subsets'")
        groups = [np.asarray(g, dtype=np.int64) for g in np.asarray(subsets)]
    else:
        groups = [np.arange(betas.shape[0])]
    out = np.empty((len(roi_names), len(feats)))
    for i, idx in enumerate(units):
        B = np.asarray(betas[:, idx], dtype=np.float64)
        for j, X in enumerate(feats.values()):
            out[i, j] = np.mean(
                [
                    compare_rdms(compute_rdm(B[g], metric), compute_rdm(X[g], metric), method)
                    for g in groups
                ]
            )
    return pd.DataFrame(out, index=pd.Index(roi_names, name="roi"), columns=list(feats))


def roi_rdms(betas, rois, images=None) -> dict[str, np.ndarray]:
    """Correlation-distance RDM of each ROI, optionally on a subset of images (e.g. the shared 515).

    Units with any non-finite value are dropped first. Returns ``{roi: condensed RDM}``.
    """
    betas = check_2d(betas, "betas")
    roi_names, units = _roi_units(rois, betas.shape[1])
    # only the ROIs' columns (and the chosen rows) are read: a memory-mapped brain stays on disk
    columns = np.unique(np.concatenate(units))
    B = np.asarray(RowView(betas, images, columns=columns, dtype=np.float64))
    valid = finite_units(B)
    return {
        name: compute_rdm(B[:, local[valid[local]]])
        for name, local in zip(roi_names, (np.searchsorted(columns, u) for u in units), strict=True)
    }


def model_similarity(
    models, n_images: int, sampling: str = "subsets", subsets=None, method: str = "pearson"
) -> pd.DataFrame:
    """Model-vs-model RDM correlations (the paper's model-similarity figure).

    With ``sampling="subsets"`` the similarity is the mean over the same subsets used for the
    brain; with ``"full"`` it is computed over all ``n_images``.

    Returns
    -------
    pandas.DataFrame, shape (n_models, n_models)
    """
    names, parsed = parse_models(models, int(n_images))
    if sampling == "subsets":
        if subsets is None:
            raise InputError(
                "sampling='subsets' needs subsets=...; make them once with make_subsets"
            )
        blocks = list(check_subsets(subsets, n_images))
    elif sampling == "full":
        blocks = [np.arange(n_images)]
    else:
        raise InputError(f"sampling={sampling!r}: expected one of {SAMPLINGS}")
    xp = get_backend("numpy")
    moments = method == "pearson" and all(kind == "features" for kind, _ in parsed)
    acc = np.zeros((len(parsed), len(parsed)))
    for rows in blocks:
        block = prepare_block(xp, parsed, n_images, rows, need_rdm_free=False)
        if moments:
            acc += _feature_model_pearson(block)
        else:
            acc += np.atleast_2d(compare_rdms(block.condensed, block.condensed, method=method))
    return pd.DataFrame(acc / len(blocks), index=names, columns=names)


def _feature_model_pearson(block) -> np.ndarray:
    """Pearson r (M, M) between feature models' RDMs without n × n arrays: the cross sums
    ``Σ_{i<j} K_a K_b = (‖ÊₐᵀÊ_b‖²_F − Σᵢ ‖êₐᵢ‖² ‖ê_bᵢ‖²) / 2``."""
    n = block.rows.size
    N = n * (n - 1) / 2
    E = [value for _, value in block.sources]
    norms = [np.einsum("ij,ij->i", e, e) for e in E]
    M = len(E)
    cross = np.empty((M, M))
    for a in range(M):
        for b in range(a, M):
            C = E[a].T @ E[b]
            cross[a, b] = cross[b, a] = (np.einsum("ij,ij->", C, C) - norms[a] @ norms[b]) / 2
    mean = block.S_K / N
    cov = cross / N - np.outer(mean, mean)
    return np.clip(cov / np.sqrt(np.outer(block.var_K, block.var_K)), -1.0, 1.0)
