"""Encoding maps per subject and interparticipant agreement (paper §4, Fig. 1c/d).

Typical use::

    from brainalign.datasets.surfaces import write_hemisphere_maps

    sub = ba.datasets.load_nsd(root, subject=1)
    E = embeddings_for(sub.image_ids)                 # (n_images, 768)
    emap = encoding_map(sub, E)                       # train non-shared, test shared
    write_hemisphere_maps("out/sub01_encoding_r", *sub.split_hemispheres(emap.r))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainalign.encoding.estimators import RidgeEncoder
from brainalign.encoding.ridge import pearson_r
from brainalign.errors import InputError
from brainalign.utils.arrays import RowView


@dataclass
class EncodingMap:
    """Result of :func:`encoding_map`.

    Attributes
    ----------
    r : (n_units,) float32
        Pearson r between predicted and measured responses over the test images (NaN for units
        with NaN responses or constant test responses).
    model : RidgeEncoder
        The fitted encoder (predicts all units).
    train_ids, test_ids : (n,) int64
        Image ids used for fitting and for testing.
    subject : int or None
    hemi_sizes : tuple of int
    """

    r: np.ndarray
    model: RidgeEncoder
    train_ids: np.ndarray
    test_ids: np.ndarray
    subject: int | None = None
    hemi_sizes: tuple[int, ...] = ()


def _split_masks(n, shared, train, test):
    if train is None and test is None:
        if shared is None:
            raise InputError("train/test: give masks, or responses with a 'shared' flag per image")
        test = np.asarray(shared, bool)
        train = ~test
    else:
        train = np.asarray(train)
        test = np.asarray(test)
        if train.dtype != bool:
            m = np.zeros(n, bool)
            m[train] = True
            train = m
        if test.dtype != bool:
            m = np.zeros(n, bool)
            m[test] = True
            test = m
    if train.shape != (n,) or test.shape != (n,):
        raise InputError(f"train/test: expected boolean masks of length {n} (or index arrays)")
    if (train & test).any():
        raise InputError("train/test: the same image is in both the training and the test set")
    if train.sum() < 2 or test.sum() < 2:
        raise InputError(
            f"train/test: {int(train.sum())} training and {int(test.sum())} test images; need at "
            "least 2 of each"
        )
    return train, test


def encoding_map(
    responses,
    embeddings,
    *,
    image_ids=None,
    train=None,
    test=None,
    units=None,
    **encoder_params,
) -> EncodingMap:
    """Fit an encoding model on the training images and score it per unit on the test images.

    Parameters
    ----------
    responses : SubjectResponses or (n_images, n_units) array
        Brain responses. With a ``SubjectResponses`` and no ``train``/``test``, the paper's split is
        used: train on the non-shared images, test on the shared ones. Memory-mapped betas are
        read one block of units at a time (no copy of the training or test rows).
    embeddings : (n_images, d) array
        Features aligned with the responses' images (row i ↔ ``image_ids[i]``).
    image_ids : (n_images,) array, optional
        Ids of ``embeddings``' rows, if they differ in order from the responses' ``image_ids``;
        rows are then matched by id.
    train, test : bool masks or index arrays, optional
        Any other split.
    units : bool mask or index array, optional
        Restrict to these units (the map is NaN elsewhere).
    **encoder_params
        Passed to :class:`RidgeEncoder` (``alphas``, ``cv``, ``mode``, ``backend``, ``device`` …).

    Returns
    -------
    EncodingMap
    """
    betas, ids, shared, subject, hemi = _unpack(responses)
    E = np.asarray(embeddings, dtype=np.float32)
    if E.ndim != 2:
        raise InputError(f"embeddings: expected (n_images, d), got shape {E.shape}")
    if image_ids is not None:
        emb_ids = np.asarray(image_ids, dtype=np.int64)
        if ids is None:
            raise InputError("image_ids: the responses carry no image ids to match against")
        order = {int(i): k for k, i in enumerate(emb_ids)}
        try:
            E = E[[order[int(i)] for i in ids]]
        except KeyError as exc:
            raise InputError(
                f"embeddings: no row for image id {exc.args[0]} of the responses"
            ) from None
    if E.shape[0] != betas.shape[0]:
        raise InputError(
            f"embeddings: {E.shape[0]} rows for {betas.shape[0]} images of responses; give one "
            "embedding per image (or image_ids to match them)"
        )
    train_m, test_m = _split_masks(betas.shape[0], shared, train, test)
    n_units = betas.shape[1]
    sel = None if units is None else _unit_index(units, n_units)
    # row views: the (memory-mapped) betas are read one block of units at a time, never copied
    model = RidgeEncoder(**encoder_params).fit(E[train_m], RowView(betas, train_m, columns=sel))
    r = np.full(n_units, np.nan, dtype=np.float32)
    r[slice(None) if sel is None else sel] = model.score(
        E[test_m], RowView(betas, test_m, columns=sel)
    )
    all_ids = ids if ids is not None else np.arange(betas.shape[0])
    return EncodingMap(
        r=r,
        model=model,
        train_ids=all_ids[train_m],
        test_ids=all_ids[test_m],
        subject=subject,
        hemi_sizes=hemi,
    )


def _unit_index(units, n_units):
    units = np.asarray(units)
    if units.dtype == bool:
        if units.shape != (n_units,):
            raise InputError(f"units: expected a ({n_units},) mask, got shape {units.shape}")
        return np.flatnonzero(units)
    return units.astype(np.int64)


def _unpack(responses):
    if hasattr(responses, "betas"):
        return (
            responses.betas,
            np.asarray(responses.image_ids),
            np.asarray(responses.shared),
            getattr(responses, "subject", None),
            tuple(getattr(responses, "hemi_sizes", ()) or ()),
        )
    betas = np.asarray(responses)
    if betas.ndim != 2:
        raise InputError(f"responses: expected (n_images, n_units), got shape {betas.shape}")
    return betas, None, None, None, ()


# --------------------------------------------------------------------------------------------------
# interparticipant agreement


def split_half_reliability(repetitions) -> np.ndarray:
    """Split-half reliability of every unit: the Pearson r over stimuli between the mean of
    the odd and of the even repetitions, Spearman-Brown corrected to the mean of all of them
    (``2r / (1 + r)``).

    Parameters
    ----------
    repetitions : (n_repetitions, n_stimuli, n_units)
        Each repetition's responses (at least 2 repetitions).

    Returns
    -------
    (n_units,) float64
        The reliability of each unit's mean response; its square root is the ceiling of a
        model's correlation with that mean (NaN for a unit constant within a half).
    """
    R = np.asarray(repetitions, dtype=np.float64)
    if R.ndim != 3 or R.shape[0] < 2:
        raise InputError(
            f"repetitions: expected (n_repetitions >= 2, n_stimuli, n_units), got {R.shape}"
        )
    r = pearson_r(R[0::2].mean(axis=0), R[1::2].mean(axis=0))
    return 2 * r / (1 + r)


def interparticipant_agreement(responses) -> np.ndarray:
    """Per unit, each subject's agreement with the mean of the other subjects (paper Fig. 1d).

    Parameters
    ----------
    responses : sequence of (n_images, n_units) arrays, or (n_subjects, n_images, n_units)
        The same images (e.g. the shared test images, in the same order) for every subject, on a
        common surface. NaNs are set to 0 first, as in the paper's code.

    Returns
    -------
    (n_subjects, n_units) float32
        Pearson r over images between subject s and the mean of the others (NaN where either is
        constant). Average over axis 0 for the paper's x-axis.
    """
    arrs = [np.nan_to_num(np.asarray(r, dtype=np.float64)) for r in responses]
    if len(arrs) < 2:
        raise InputError(f"responses: need at least 2 subjects for agreement, got {len(arrs)}")
    shape = arrs[0].shape
    if len(shape) != 2 or any(a.shape != shape for a in arrs):
        raise InputError(
            f"responses: every subject must be (n_images, n_units) with the same shape; got "
            f"{[a.shape for a in arrs]}"
        )
    total = np.sum(arrs, axis=0)
    k = len(arrs)
    return np.stack([pearson_r(a, (total - a) / (k - 1)) for a in arrs]).astype(np.float32)


def agreement_relation(encoding_r, agreement, rois: dict | None = None):
    """Encoding r against interparticipant agreement, per unit and per ROI (paper Fig. 1d data).

    Parameters
    ----------
    encoding_r : (n_units,) array
        Encoding r (e.g. mean over subjects).
    agreement : (n_units,) array
        Agreement (e.g. mean over subjects of :func:`interparticipant_agreement`).
    rois : dict name → (n_units,) bool, optional
        Label units (first matching ROI wins; others are ``"other"``).

    Returns
    -------
    units : pandas.DataFrame
        Columns ``unit, encoding_r, agreement, roi`` (finite units only).
    summary : pandas.DataFrame
        Per ROI: ``n_units, pearson_r`` (between the two), ``slope`` (least squares) and the means.
    """
    import pandas as pd

    enc = np.asarray(encoding_r, dtype=np.float64).ravel()
    agr = np.asarray(agreement, dtype=np.float64).ravel()
    if enc.shape != agr.shape:
        raise InputError(f"encoding_r and agreement: shapes differ ({enc.shape} vs {agr.shape})")
    label = np.full(enc.shape, "other", dtype=object)
    for name, mask in (rois or {}).items():
        mask = np.asarray(mask, bool)
        if mask.shape != enc.shape:
            raise InputError(f"rois[{name!r}]: expected a {enc.shape} mask, got {mask.shape}")
        label[mask & (label == "other")] = name
    ok = np.isfinite(enc) & np.isfinite(agr)
    units = pd.DataFrame(
        {"unit": np.flatnonzero(ok), "encoding_r": enc[ok], "agreement": agr[ok], "roi": label[ok]}
    )
    rows = []
    for name, grp in units.groupby("roi", sort=False):
        x, y = grp["agreement"].to_numpy(), grp["encoding_r"].to_numpy()
        r = float(pearson_r(x[:, None], y[:, None])[0]) if len(x) > 2 else np.nan
        slope = float(np.polyfit(x, y, 1)[0]) if len(x) > 2 and np.ptp(x) > 0 else np.nan
        rows.append(
            {
                "roi": name,
                "n_units": len(x),
                "pearson_r": r,
                "slope": slope,
                "mean_encoding_r": float(y.mean()),
                "mean_agreement": float(x.mean()),
            }
        )
    return units, pd.DataFrame(rows)


def plot_agreement_relation(units, ax=None, max_points: int = 20000, random_state: int = 0):
    """Scatter of encoding r against agreement coloured by ROI (paper Fig. 1d); returns the axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    rng = np.random.default_rng(random_state)
    if len(units) > max_points:
        units = units.iloc[np.sort(rng.choice(len(units), max_points, replace=False))]
    for name, grp in units.groupby("roi", sort=False):
        ax.scatter(grp["agreement"], grp["encoding_r"], s=3, alpha=0.5, label=str(name))
    lim = [
        min(units["agreement"].min(), units["encoding_r"].min()),
        max(units["agreement"].max(), units["encoding_r"].max()),
    ]
    ax.plot(lim, lim, color="k", lw=0.8, ls="--")
    ax.set_xlabel("interparticipant agreement (r)")
    ax.set_ylabel("encoding model (r)")
    ax.legend(markerscale=4, fontsize=7, frameon=False)
    return ax
