"""Fault injection, bad data: each corruption of an NSD-layout folder raises the documented error
type with a message naming the file (or, for NaN/Inf, is counted, reported and left out).

One table, one row per case; docs/reliability.md lists the same cases with their behaviour.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import load_nsd, load_stimuli
from brainalign.datasets._formats import load_mgh, load_nifti, write_mgh, write_nifti
from brainalign.datasets.surfaces import load_fsaverage, read_surface_map
from brainalign.errors import DataFormatError, InputError
from tests.faults.conftest import FS, FSAV, STIM, VOL, replace


# ------------------------------------------------------------------------------ corruptions
def truncate(rel, keep=0.5):
    def corrupt(root):
        path = root / rel
        replace(path, path.read_bytes()[: int(path.stat().st_size * keep)])

    return corrupt


def garbage(rel):
    def corrupt(root):
        replace(root / rel, b"this is not the file you are looking for\n" * 20)

    return corrupt


def mgh_rows(rel, drop_vertices=0, drop_trials=0):
    def corrupt(root):
        data = load_mgh(root / rel)
        data = data[: data.shape[0] - drop_vertices]
        if drop_trials:
            data = data[:, :-drop_trials]
        write_mgh(root / rel, data)  # atomic: a new file replaces the link

    return corrupt


def nifti_grid(rel, crop=0, drop_trials=0):
    def corrupt(root):
        data, affine, _ = load_nifti(root / rel)
        data = data[crop:] if crop else data
        if drop_trials:
            data = data[..., :-drop_trials]
        write_nifti(root / rel, np.ascontiguousarray(data), affine)

    return corrupt


def remove(rel):
    def corrupt(root):
        (root / rel).unlink()

    return corrupt


def rename_column(rel, old, new, sep):
    def corrupt(root):
        path = root / rel
        table = pd.read_csv(path, sep=sep)
        path.unlink()
        table.rename(columns={old: new}).to_csv(path, sep=sep, index=False)

    return corrupt


def labels_of_size(rel, n):
    def corrupt(root):
        write_mgh(root / rel, np.zeros(n, dtype=np.int32))

    return corrupt


def surface_of_size(rel, n):
    def corrupt(root):
        from nibabel.freesurfer import read_geometry, write_geometry

        path = root / rel
        coords, faces = read_geometry(str(path))
        faces = faces[(faces < n).all(axis=1)]
        path.unlink()
        write_geometry(str(path), coords[:n], faces)

    return corrupt


def brick(keep_images=None, n_rows=None):
    """Rewrite the image brick: without some images (never written), or with fewer rows."""

    def corrupt(root):
        import h5py

        path = root / STIM / "nsd_stimuli.hdf5"
        new = path.with_suffix(".new.hdf5")
        with h5py.File(path, "r") as f, h5py.File(new, "w") as g:
            ds = f["imgBrick"]
            shape = (n_rows or ds.shape[0],) + ds.shape[1:]
            out = g.create_dataset(
                "imgBrick", shape=shape, dtype=ds.dtype, chunks=(1,) + ds.shape[1:]
            )
            for i in keep_images(root) if keep_images else []:
                out[i] = ds[i]
        new.replace(path)

    return corrupt


def _first_image(root) -> int:
    return int(load_stimuli(root).image_ids[0])


def _all_but_first(root):
    return load_stimuli(root).image_ids[1:]


# ------------------------------------------------------------------------------ readers
def read_betas(space="fsaverage"):
    def read(root, tmp):
        load_nsd(root, 1, space, cache_dir=tmp / "cache")

    return read


def read_images(root, tmp):
    stim = load_stimuli(root)
    stim.images(stim.image_ids[:3])


def read_stimuli(root, tmp):
    load_stimuli(root)


def read_white(root, tmp):
    load_fsaverage("fsaverage5", "white", fs_dir=root / FSAV)


def read_label_map(root, tmp):
    read_surface_map(root / FSAV / "label" / "lh.streams.mgz", mesh="fsaverage5")


RESP = "nsddata/ppdata/subj01/behav/responses.tsv"
CSV = "nsddata/experiments/nsd/nsd_stim_info_merged.csv"

#: case -> (corruption, reader, error type, the file the message must name)
CASES = {
    "truncated betas MGH": (
        truncate(f"{FS}/lh.betas_session02.mgh"),
        read_betas(),
        DataFormatError,
        "lh.betas_session02.mgh",
    ),
    "garbage betas MGH": (
        garbage(f"{FS}/rh.betas_session01.mgh"),
        read_betas(),
        DataFormatError,
        "rh.betas_session01.mgh",
    ),
    "betas MGH with other vertex count": (
        mgh_rows(f"{FS}/rh.betas_session03.mgh", drop_vertices=5),
        read_betas(),
        DataFormatError,
        "rh.betas_session03.mgh",
    ),
    "betas MGH with other trial count": (
        mgh_rows(f"{FS}/lh.betas_session02.mgh", drop_trials=1),
        read_betas(),
        DataFormatError,
        "lh.betas_session02.mgh",
    ),
    "truncated betas NIfTI": (
        truncate(f"{VOL}/betas_session02.nii.gz"),
        read_betas("func1pt8mm"),
        DataFormatError,
        "betas_session02.nii.gz",
    ),
    "betas NIfTI on another grid": (
        nifti_grid(f"{VOL}/betas_session03.nii.gz", crop=2),
        read_betas("func1pt8mm"),
        DataFormatError,
        "betas_session03.nii.gz",
    ),
    "betas NIfTI with other trial count": (
        nifti_grid(f"{VOL}/betas_session01.nii.gz", drop_trials=2),
        read_betas("func1pt8mm"),
        DataFormatError,
        "betas_session01.nii.gz",
    ),
    "truncated brain mask": (
        truncate("nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz", 0.3),
        read_betas("func1pt8mm"),
        DataFormatError,
        "brainmask.nii.gz",
    ),
    "missing session file": (
        remove(f"{FS}/lh.betas_session04.mgh"),
        read_betas(),
        DataFormatError,
        "lh.betas_session04.mgh",
    ),
    "renamed responses.tsv column": (
        rename_column(RESP, "73KID", "IMAGE", "\t"),
        read_betas(),
        DataFormatError,
        "responses.tsv",
    ),
    "garbage responses.tsv": (
        garbage(RESP),
        read_betas(),
        DataFormatError,
        "responses.tsv",
    ),
    "renamed stimulus CSV column": (
        rename_column(CSV, "nsdId", "id", ","),
        read_stimuli,
        DataFormatError,
        "nsd_stim_info_merged.csv",
    ),
    "truncated experiment design": (
        truncate("nsddata/experiments/nsd/nsd_expdesign.mat", 0.2),
        read_betas(),
        DataFormatError,
        "nsd_expdesign.mat",
    ),
    "broken captions JSON": (
        garbage(f"{STIM}/annotations/captions_val2017.json"),
        read_stimuli,
        DataFormatError,
        "captions_val2017.json",
    ),
    "broken instances JSON": (
        garbage(f"{STIM}/annotations/instances_train2017.json"),
        read_stimuli,
        DataFormatError,
        "instances_train2017.json",
    ),
    "missing image in the brick": (
        brick(keep_images=_all_but_first),
        read_images,
        DataFormatError,
        "nsd_stimuli.hdf5",
    ),
    "too-short image brick": (
        brick(n_rows=1),
        read_images,
        DataFormatError,
        "nsd_stimuli.hdf5",
    ),
    "truncated image brick": (
        truncate(f"{STIM}/nsd_stimuli.hdf5", 0.01),
        read_images,
        DataFormatError,
        "nsd_stimuli.hdf5",
    ),
    "streams labels of the wrong size": (
        labels_of_size(f"{FSAV}/label/lh.streams.mgz", 10000),
        read_betas(),
        DataFormatError,
        "lh.streams.mgz",
    ),
    "surface of the wrong size": (
        surface_of_size(f"{FSAV}/surf/lh.white", 10000),
        read_white,
        DataFormatError,
        "lh.white",
    ),
    "surface map too small for its mesh": (
        labels_of_size(f"{FSAV}/label/lh.streams.mgz", 642),
        read_label_map,
        DataFormatError,
        "lh.streams.mgz",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_corruption_is_named(case, nsd_copy, tmp_path):
    corrupt, read, error, name = CASES[case]
    corrupt(nsd_copy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a missing streams atlas
        with pytest.raises(error) as info:
            read(nsd_copy, tmp_path)
    message = str(info.value)
    assert name in message, message
    assert "\n" not in message.strip(), "one line"
    # no half-written prepared cache is ever left behind: betas only with their manifest
    for folder in (tmp_path / "cache").glob("nsd_prepared/*"):
        assert (folder / "betas.npy").exists() == (folder / "manifest.json").exists()


def test_missing_image_names_its_id(nsd_copy):
    brick(keep_images=_all_but_first)(nsd_copy)
    stim = load_stimuli(nsd_copy)
    first = _first_image(nsd_copy)
    with pytest.raises(DataFormatError, match=rf"image {first} .*missing from imgBrick"):
        stim.images([first])
    assert stim.images(stim.image_ids[1:3]).shape == (2, 425, 425, 3)  # the others still read


def test_ids_outside_nsd_are_an_input_error(tiny_nsd):
    stim = load_stimuli(tiny_nsd)
    with pytest.raises(InputError, match=r"ids: NSD ids must be in 0\.\.72999"):
        stim.images([73000])


# ------------------------------------------------------------------------------ NaN and Inf
def _warning(record, text: str) -> str:
    return next(str(w.message) for w in record if text in str(w.message))


def _poison(path, fraction, value, session_rng=0):
    """Set ``fraction`` of a session file's entries to ``value`` (a new file)."""
    data = load_mgh(path).copy()
    rng = np.random.default_rng(session_rng)
    hit = rng.random(data.shape) < fraction
    data[hit] = value
    write_mgh(path, data)
    return int(hit.sum()), np.flatnonzero(hit.any(axis=1))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_betas_are_counted_named_and_left_out(value, nsd_copy, tiny_nsd, tmp_path):
    """5 % bad entries in one session: reported at load time with the count, the session, the
    file and the units; only those entries are lost (NaN-aware z-scoring and averaging)."""
    clean = load_nsd(tiny_nsd, 1, cache_dir=tmp_path / "clean")
    path = nsd_copy / FS / "lh.betas_session02.mgh"
    n_bad, units = _poison(path, 0.05, value)
    with pytest.warns(UserWarning, match=rf"{n_bad} non-finite betas") as record:
        sub = load_nsd(nsd_copy, 1, cache_dir=tmp_path / "bad")
    text = _warning(record, "non-finite")
    assert "lh.betas_session02.mgh" in text and "session(s) [2]" in text
    assert f"{len(units)} unit(s)" in text
    info = sub.metadata["non_finite"]
    kind = "nan" if np.isnan(value) else "inf"
    assert info["values"] == info[kind] == n_bad and info["units"] == len(units)
    assert list(info["sessions"]) == ["2"]
    betas, ref = np.asarray(sub.betas), np.asarray(clean.betas)
    # the tainting the issue saw (most vertices NaN) does not happen: units stay usable
    usable = np.isfinite(betas).all(axis=0).mean()
    assert usable > np.isfinite(ref).all(axis=0).mean() - 0.01
    # units without a bad value are exactly the clean ones
    untouched = np.ones(betas.shape[1], bool)
    untouched[units] = False
    np.testing.assert_array_equal(betas[:, untouched], ref[:, untouched])
    # the cached preparation keeps the record (and warns again on the next load)
    with pytest.warns(UserWarning, match="non-finite betas"):
        again = load_nsd(nsd_copy, 1, cache_dir=tmp_path / "bad")
    assert again.metadata["non_finite"] == info


def test_non_finite_volume_betas(nsd_copy, tmp_path):
    path = nsd_copy / VOL / "betas_session01.nii.gz"
    data, affine, _ = load_nifti(path)
    data = data.astype(np.float32)  # a float file, as some pipelines write
    data[..., 0] = np.nan  # one whole trial
    write_nifti(path, data, affine)
    with pytest.warns(UserWarning, match=r"betas_session01\.nii\.gz") as record:
        sub = load_nsd(nsd_copy, 1, "func1pt8mm", cache_dir=tmp_path)
    assert re.search(r"session\(s\) \[1\]", _warning(record, "non-finite"))
    assert sub.metadata["non_finite"]["values"] == int(np.asarray(sub.mask).sum())
    # one trial lost per unit: every unit still has a value for every image
    assert np.isfinite(np.asarray(sub.betas)).all(axis=0).mean() > 0.5


def test_clean_data_report_zero(tiny_nsd, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sub = load_nsd(tiny_nsd, 2, cache_dir=tmp_path)
    assert sub.metadata["non_finite"]["values"] == 0
    manifest = json.loads((Path(sub.metadata["cache"]) / "manifest.json").read_text())
    assert manifest["non_finite"]["values"] == 0 and manifest["non_finite"]["sessions"] == {}
