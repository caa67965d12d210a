"""Reading the Natural Scenes Dataset (or a virtual NSD) exactly as the paper does.

Preprocessing (paper_methods §1.2): keep the images a subject saw exactly 3 times; z-score every
unit over all trials of its session (ddof=0) before selecting trials; zero-variance units become
NaN; average the 3 repetitions with a NaN-aware mean; func1pt8mm int16 betas are divided by 300.

Non-finite betas (NaN or Inf in a session file; NSD has none) are counted when a session is read
— how many, in which sessions, files and units — and left out: they become NaN, the unit is
z-scored over its session's finite trials, and the repetition average uses the finite
repetitions, so one bad trial costs one value, not the unit's session. The counts are in the
prepared cache's manifest, ``SubjectResponses.metadata["non_finite"]`` and a warning from
:func:`load_nsd`; a unit left without a value for some image is dropped by the analyses (they
use units finite for every image), as zero-variance units are.

Preparation streams one session at a time into an on-disk cache, so peak memory is about two
sessions whatever the number of sessions (the paper's code holds a whole subject: 80–170 GB),
and the cache needs one n_images × n_units float32 file, the size of the result. Each session's
z-scored trials are added (a third each) to the running means of their images; before a session
is added, the current means of the rows it adds to are saved, so a killed preparation puts them
back and resumes from the sessions recorded as done. Units with non-finite z-scores get the
mean over their finite repetitions at the end. The finished file is renamed into place as
``betas.npy`` and a manifest (input file sizes and mtimes, parameter hash) is written last. A
cache whose manifest does not match the current inputs is rebuilt; a half-written cache is never
used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainalign.datasets import _nsdpaths as P
from brainalign.datasets._formats import load_mat, load_mgh, load_nifti, mgh_shape, nifti_shape
from brainalign.datasets.base import STREAMS_LABELS, Stimuli, SubjectResponses
from brainalign.datasets.surfaces import HEMIS, load_surface_atlas, read_label_table
from brainalign.errors import DataFormatError, InputError
from brainalign.utils.arrays import RowView
from brainalign.utils.disk import (
    create_memmap,
    npy_nbytes,
    open_memmap_reserved,
    storage_errors,
)
from brainalign.utils.hashing import hash_array, hash_json
from brainalign.utils.io import atomic_save_npy, atomic_write_json
from brainalign.utils.paths import default_cache_dir
from brainalign.utils.progress import progress

SPACES = ("fsaverage", "func1pt8mm")
#: 2: NaN-aware z-scoring and the non-finite counts in the manifest (older caches are rebuilt);
#: 3: repetitions averaged into one running-mean file (no 3 × n_images × n_units slots)
PREP_VERSION = 3
#: z-scoring works on this many units at a time in float64 (bounds the temporary copy)
_UNIT_BLOCK = 4096
#: trials added to the running means at a time
_TRIAL_BLOCK = 32


# ---------------------------------------------------------------------------------- checks


def _check_root(root) -> Path:
    root = Path(root)
    if not (root / "nsddata").is_dir():
        raise InputError(
            f"root: {root} is not an NSD root (expected a folder holding nsddata/, nsddata_betas/, "
            "nsddata_stimuli/); pass the folder you downloaded NSD into or a virtual NSD"
        )
    return root


def _check_space(space) -> str:
    if space not in SPACES:
        raise InputError(f"space: expected one of {list(SPACES)}, got {space!r}")
    return space


def list_subjects(root) -> list[int]:
    """Subjects present under ``root`` (those with ``behav/responses.tsv``), ascending."""
    root = _check_root(root)
    found = []
    for d in sorted(P.ppdata_dir(root).glob("subj[0-9][0-9]")):
        if (d / "behav" / "responses.tsv").exists():
            found.append(int(d.name[4:]))
    return found


def _check_subject(root: Path, subject) -> int:
    if isinstance(subject, bool) or not isinstance(subject, (int, np.integer)):
        raise InputError(f"subject: expected an integer subject number (1-based), got {subject!r}")
    present = list_subjects(root)
    if int(subject) not in present:
        raise InputError(
            f"subject: {subject} not found under {root} (expected "
            f"{P.responses(root, int(subject)).relative_to(root)}); subjects present: {present}"
        )
    return int(subject)


# ---------------------------------------------------------------------------------- tables


def read_responses(root, subject: int):
    """A subject's ``responses.tsv`` as a pandas DataFrame (checked)."""
    import pandas as pd

    root = _check_root(root)
    path = P.responses(root, subject)
    if not path.exists():
        raise DataFormatError(f"{path}: responses file not found")
    try:
        table = pd.read_csv(path, sep="\t", na_values=["NaN"])
    except Exception as exc:
        raise DataFormatError(f"{path}: not a readable tab-separated table ({exc})") from exc
    missing = [c for c in ("SESSION", "73KID") if c not in table.columns]
    if missing:
        raise DataFormatError(
            f"{path}: expected NSD's responses columns (SUBJECT SESSION RUN TRIAL 73KID ...), "
            f"missing {missing}; found {list(table.columns)[:8]}"
        )
    for col in ("SESSION", "73KID"):
        values = table[col].to_numpy()
        if not np.issubdtype(values.dtype, np.integer) or (values < 1).any():
            raise DataFormatError(
                f"{path}: column {col} must hold 1-based integers; found dtype {values.dtype}, "
                f"min {np.nanmin(values) if len(values) else 'n/a'}"
            )
    if (table["73KID"] > 73000).any():
        raise DataFormatError(f"{path}: 73KID values above 73000 (NSD's ids are 1..73000)")
    return table


@dataclass
class Conditions:
    """The trials and images of one subject (paper: ``get_subject_conditions``).

    Attributes
    ----------
    image_ids : (n_images,) int64
        0-based NSD ids of the images seen exactly 3 times, ascending.
    sessions : list of int
        1-based session numbers present in ``responses.tsv``, ascending.
    trial_session : (n_trials,) int64
        Session of each trial (chronological).
    trial_row : (n_trials,) int64
        Row of ``image_ids`` that each trial contributes to, or -1 (image not kept).
    trial_rep : (n_trials,) int64
        Which repetition (0, 1, 2) of its image the trial is.
    """

    image_ids: np.ndarray
    sessions: list[int]
    trial_session: np.ndarray
    trial_row: np.ndarray
    trial_rep: np.ndarray
    meta: dict = field(default_factory=dict)


def subject_conditions(root, subject: int) -> Conditions:
    """Which trials feed which image (3-times-seen images, ascending 0-based NSD id)."""
    table = read_responses(root, subject)
    id73 = table["73KID"].to_numpy(dtype=np.int64)
    session = table["SESSION"].to_numpy(dtype=np.int64)
    ids, inverse, counts = np.unique(id73, return_inverse=True, return_counts=True)
    kept = ids[counts == 3]
    row_of_unique = np.full(len(ids), -1, dtype=np.int64)
    row_of_unique[counts == 3] = np.arange(len(kept))
    trial_row = row_of_unique[inverse]
    # repetition number: occurrences of the same image earlier in the chronological order
    order = np.argsort(inverse, kind="stable")
    rank = np.empty(len(id73), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(id73)) - np.repeat(starts, counts)
    return Conditions(
        image_ids=kept - 1,
        sessions=sorted(int(x) for x in np.unique(session)),
        trial_session=session,
        trial_row=trial_row,
        trial_rep=rank,
    )


def read_shared_ids(root) -> np.ndarray:
    """0-based NSD ids of the shared images (NSD's shared1000), ascending.

    From ``nsd_expdesign.mat`` (``sharedix``) when present, else from the shared1000 PNG names
    (as the paper's code does), else from the CSV's ``shared1000`` column.
    """
    root = _check_root(root)
    mat_path = P.expdesign(root)
    if mat_path.exists():
        mat = load_mat(mat_path, ("sharedix",))
        ids = np.asarray(mat["sharedix"]).ravel()
        if not np.all(ids == np.round(ids)) or (ids < 1).any():
            raise DataFormatError(f"{mat_path}: sharedix must hold 1-based integer 73k ids")
        ids = ids.astype(np.int64) - 1
    elif P.shared1000_dir(root).is_dir():
        names = sorted(p.name for p in P.shared1000_dir(root).glob("shared*_nsd*.png"))
        ids = np.array([int(re.search(r"nsd(\d+)", n).group(1)) - 1 for n in names], np.int64)
    elif P.stim_info(root).exists():
        table = _read_stim_info(root)
        ids = table["nsdId"].to_numpy()[_as_bool(table["shared1000"])]
    else:
        raise DataFormatError(
            f"{mat_path}: not found, and neither the shared1000 PNG folder nor the stimulus CSV "
            "exist; cannot tell which images are shared"
        )
    if len(np.unique(ids)) != len(ids):
        raise DataFormatError(f"{mat_path}: duplicate ids in the shared image list")
    return np.sort(ids)


def design_subjects(root) -> list[int]:
    """Every subject of the experiment: the rows of ``nsd_expdesign.mat``'s ``subjectim``
    (NSD: 1..8; a virtual NSD: its ``n_subjects``), whatever subjects' files are present."""
    root = _check_root(root)
    mat_path = P.expdesign(root)
    if not mat_path.exists():
        raise DataFormatError(
            f"{mat_path}: not found; it tells which subjects the experiment had (part of nsddata)"
        )
    subjectim = np.atleast_2d(np.asarray(load_mat(mat_path, ("subjectim",))["subjectim"]))
    return list(range(1, subjectim.shape[0] + 1))


#: which subjects define the shared test set: all of the experiment's, or those present
TEST_SETS = ("all", "present")


def special_ids(root, subjects="all") -> np.ndarray:
    """Shared images seen 3 times by every subject (NSD's "special 515"), ascending.

    Parameters
    ----------
    root : path
        NSD root.
    subjects : "all", "present" or list of int
        ``"all"`` (the paper's test set): every subject of the experiment
        (:func:`design_subjects`), from their behavioural files (``behav/responses.tsv``,
        small and part of ``nsddata``), whichever subjects' betas are present; missing files
        are an error. ``"present"``: only the subjects whose behavioural file is here (a
        different test set when some are missing). Or explicit subject numbers.

    Raises
    ------
    DataFormatError
        With ``"all"``, naming the behavioural files that are missing.
    """
    root = _check_root(root)
    if isinstance(subjects, str):
        if subjects not in TEST_SETS:
            raise InputError(f"subjects: expected one of {TEST_SETS} or a list, got {subjects!r}")
        if subjects == "present":
            subjects = list_subjects(root)
        else:
            subjects = design_subjects(root)
            missing = [s for s in subjects if not P.responses(root, s).exists()]
            if missing:
                files = [str(P.responses(root, s).relative_to(root)) for s in missing]
                raise DataFormatError(
                    f"{root}: the paper's test set is the shared images all {len(subjects)} "
                    f"subjects saw 3 times, but the behavioural files {files} are missing; they "
                    "are small and part of nsddata (download them), or set data.test_set = "
                    "'present' to use only the subjects present (another test set)"
                )
    shared = read_shared_ids(root)
    keep = np.ones(len(shared), dtype=bool)
    for s in subjects:
        id73 = read_responses(root, s)["73KID"].to_numpy(dtype=np.int64)
        counts = np.bincount(id73 - 1, minlength=73000)
        keep &= counts[shared] == 3
    return shared[keep]


def nsd_coco_ids(root) -> np.ndarray:
    """COCO ids of all NSD images (row ``nsdId`` of ``nsd_stim_info_merged.csv``), (73000,) int64.

    A training pool made from COCO leaves these out, so no NSD image is ever trained on.
    """
    table = _read_stim_info(_check_root(root))
    out = np.full(int(table["nsdId"].max()) + 1, -1, dtype=np.int64)
    out[table["nsdId"].to_numpy(dtype=np.int64)] = table["cocoId"].to_numpy(dtype=np.int64)
    return out


def _as_bool(series) -> np.ndarray:
    values = series.astype(str).str.strip().str.lower()
    return values.isin(["true", "1", "1.0"]).to_numpy()


def _read_stim_info(root: Path):
    import pandas as pd

    path = P.stim_info(root)
    if not path.exists():
        raise DataFormatError(f"{path}: stimulus information CSV not found")
    try:
        table = pd.read_csv(path)
    except Exception as exc:
        raise DataFormatError(f"{path}: not a readable CSV ({exc})") from exc
    need = ["cocoId", "cocoSplit", "nsdId"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing columns {missing}; found {list(table.columns)[:10]}"
        )
    nsd_ids = table["nsdId"].to_numpy()
    if len(np.unique(nsd_ids)) != len(nsd_ids):
        uniq, counts = np.unique(nsd_ids, return_counts=True)
        dup = uniq[counts > 1]
        raise DataFormatError(
            f"{path}: duplicate nsdId values (e.g. {dup[:5].tolist()}); every row must be one image"
        )
    return table


# ---------------------------------------------------------------------------------- sessions


def _session_files(root: Path, subject: int, space: str, session: int) -> list[Path]:
    if space == "fsaverage":
        return [P.fsaverage_betas(root, subject, h, session) for h in HEMIS]
    return [P.volume_betas(root, subject, session)]


def _read_mask(root: Path, subject: int):
    path = P.brainmask(root, subject)
    data, affine, _ = load_nifti(path)
    if data.ndim != 3:
        raise DataFormatError(f"{path}: expected a 3-D brain mask, found shape {data.shape}")
    return data > 0, affine


def _read_session(root, subject, space, session, n_trials_expected, unit_info):
    """One session's betas, (n_units, n_trials) float32 in PSC.

    ``unit_info`` carries the expected unit layout (hemisphere sizes or the mask); a session
    that disagrees raises DataFormatError naming the file. Peak memory is the output plus one
    stored file (half a session for a surface hemisphere, the int16 grid for a volume).
    """
    files = _session_files(root, subject, space, session)
    if space == "fsaverage":
        sizes = unit_info["hemi_sizes"]
        out = np.empty((int(sum(sizes)), n_trials_expected), dtype=np.float32)
        start = 0
        for hemi, path, expected in zip(HEMIS, files, sizes, strict=True):
            data = load_mgh(path, dtype=None)
            if data.ndim == 1:
                data = data[:, None]
            if data.shape[0] != expected:
                raise DataFormatError(
                    f"{path}: expected {expected} vertices (as in session "
                    f"{unit_info['first_session']:02d}), found {data.shape[0]}; the sessions of "
                    f"a subject must share one surface ({hemi})"
                )
            if data.shape[1] != n_trials_expected:
                raise DataFormatError(
                    f"{path}: expected {n_trials_expected} trials (rows of SESSION {session} in "
                    f"responses.tsv), found {data.shape[1]}"
                )
            out[start : start + expected] = data
            start += expected
            del data
        return out
    path = files[0]
    raw, _affine, _ = load_nifti(path, raw=True)
    mask = unit_info["mask"]
    if raw.ndim != 4 or raw.shape[:3] != mask.shape:
        raise DataFormatError(
            f"{path}: expected betas of shape {mask.shape + (n_trials_expected,)} (brain mask grid "
            f"× trials), found {raw.shape}"
        )
    if raw.shape[3] != n_trials_expected:
        raise DataFormatError(
            f"{path}: expected {n_trials_expected} trials (rows of SESSION {session} in "
            f"responses.tsv), found {raw.shape[3]}"
        )
    out = np.empty((int(mask.sum()), n_trials_expected), dtype=np.float32)
    for t in range(n_trials_expected):  # trial by trial: no masked int16 copy of the session
        out[:, t] = raw[..., t][mask]
    del raw
    out /= np.float32(300.0)
    return out


def zscore_session(data: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """z-score each unit (row) over the session's trials (columns); ddof=0; zero variance → NaN.

    Works in float64 on blocks of units and writes float32 into ``out`` (may be ``data``
    itself, for in-place z-scoring); returns ``out``. Non-finite entries (NaN, Inf) are left
    out: they become NaN and the unit is z-scored over its finite trials (NaN when fewer than
    two are finite or their variance is zero). Finite data take the plain path, unchanged.
    """
    if out is None:
        out = np.empty(data.shape, dtype=np.float32)
    for start in range(0, data.shape[0], _UNIT_BLOCK):
        block = data[start : start + _UNIT_BLOCK].astype(np.float64)
        finite = np.isfinite(block)
        bad = None if finite.all() else np.flatnonzero(~finite.all(axis=1))
        raw = None if bad is None else block[bad]
        # rows with Inf give inf - inf here; they are redone below, so no warning
        quiet = contextlib.nullcontext() if bad is None else np.errstate(invalid="ignore")
        with quiet:
            mean = block.mean(axis=1, keepdims=True)
            block -= mean
            sd = np.sqrt(np.mean(block * block, axis=1, keepdims=True))
        with np.errstate(invalid="ignore", divide="ignore"):
            block /= sd
        block[~np.isfinite(sd[:, 0]) | (sd[:, 0] == 0)] = np.nan
        if bad is not None:  # only the rows holding non-finite values take the NaN-aware path
            block[bad] = _zscore_finite(raw, finite[bad])
        out[start : start + _UNIT_BLOCK] = block
    return out


def _zscore_finite(block: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """z-scores of the rows of ``block`` over their finite entries (the others NaN), ddof=0."""
    block[~finite] = np.nan
    n = finite.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        block -= np.nansum(block, axis=1, keepdims=True) / n
        sd = np.sqrt(np.nansum(block * block, axis=1, keepdims=True) / n)
        block /= sd
    block[(n[:, 0] < 2) | ~np.isfinite(sd[:, 0]) | (sd[:, 0] == 0)] = np.nan
    return block


def count_non_finite(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-finite entries per unit (row) of ``data`` (units × trials), and how many are NaN."""
    per_unit = np.zeros(data.shape[0], dtype=np.int64)
    n_nan = 0
    for start in range(0, data.shape[0], _UNIT_BLOCK):
        block = data[start : start + _UNIT_BLOCK]
        bad = ~np.isfinite(block)
        per_unit[start : start + _UNIT_BLOCK] = bad.sum(axis=1)
        if per_unit[start : start + _UNIT_BLOCK].any():
            n_nan += int(np.isnan(block).sum())
    return per_unit, n_nan


def _session_non_finite(files, per_unit, n_nan, hemi_sizes) -> dict:
    """A session's non-finite summary: counts, the files and some of the units holding them."""
    units = np.flatnonzero(per_unit)
    if len(files) == 1:
        bad_files = [str(files[0])]
    else:
        bounds = np.cumsum([0, *hemi_sizes])
        bad_files = [
            str(f)
            for f, a, b in zip(files, bounds[:-1], bounds[1:], strict=True)
            if per_unit[a:b].any()
        ]
    total = int(per_unit.sum())
    return {
        "values": total,
        "nan": n_nan,
        "inf": total - n_nan,
        "units": int(len(units)),
        "unit_examples": units[:10].tolist(),
        "files": bad_files,
    }


def non_finite_summary(info: dict | None) -> str:
    """One sentence for a ``non_finite`` record (manifest / ``metadata["non_finite"]``)."""
    if not info or not info.get("values"):
        return "no non-finite betas"
    sessions = info.get("sessions", {})
    files = [f for s in sessions.values() for f in s.get("files", [])]
    examples = sorted({u for s in sessions.values() for u in s.get("unit_examples", [])})[:5]
    return (
        f"{info['values']} non-finite betas (NaN {info.get('nan', 0)}, Inf {info.get('inf', 0)}) "
        f"in session(s) {sorted(int(k) for k in sessions)} ({', '.join(files[:4])}"
        f"{' …' if len(files) > 4 else ''}), {info.get('units', 0)} unit(s) (e.g. {examples})"
    )


# ---------------------------------------------------------------------------------- cache


def _fingerprint(paths) -> dict:
    out = {}
    for p in paths:
        st = os.stat(p)
        out[str(p)] = [st.st_size, st.st_mtime_ns]
    return out


@dataclass
class PreparedNSD:
    """Where a prepared subject lives in the cache and what it holds."""

    path: Path
    betas_path: Path
    image_ids: np.ndarray
    sessions: list[int]
    n_units: int
    hemi_sizes: tuple[int, ...]
    manifest: dict


def _cache_folder(root: Path, subject: int, space: str, cache_dir) -> Path:
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hash_json({"root": str(root.resolve()), "subject": subject, "space": space})[:16]
    return base / "nsd_prepared" / f"{P.subj(subject)}_{space}_{key}"


def _unit_layout(root, subject, space, sessions):
    """Units of the subject's betas, from the first session's header (or the brain mask)."""
    first = sessions[0]
    files = _session_files(root, subject, space, first)
    if space == "fsaverage":
        sizes = []
        for path in files:
            shape = mgh_shape(path)
            sizes.append(int(shape[0]))
        return {"hemi_sizes": tuple(sizes), "n_units": int(sum(sizes)), "first_session": first}
    mask, affine = _read_mask(root, subject)
    shape = nifti_shape(files[0])
    if shape[:3] != mask.shape:
        raise DataFormatError(
            f"{files[0]}: grid {shape[:3]} differs from the brain mask "
            f"{P.brainmask(root, subject)} grid {mask.shape}"
        )
    return {
        "mask": mask,
        "affine": affine,
        "n_units": int(mask.sum()),
        "hemi_sizes": (),
        "first_session": first,
    }


def prepare_nsd(
    root,
    subject: int,
    space: str = "fsaverage",
    cache_dir=None,
    verbose: bool | None = None,
) -> PreparedNSD:
    """Stream a subject's sessions into the on-disk cache (or reuse a valid cache).

    Parameters
    ----------
    root : path
        NSD root (holding ``nsddata/``, ``nsddata_betas/``).
    subject : int
        1-based subject number.
    space : {"fsaverage", "func1pt8mm"}
    cache_dir : path, optional
        Cache folder (default: ``$BRAINALIGN_CACHE`` or ``~/.cache/brainalign``).
    verbose : bool, optional
        Show a progress bar over sessions.

    Returns
    -------
    PreparedNSD
        ``betas_path`` is a ``.npy`` (n_images × n_units) float32.

    Notes
    -----
    While it runs, the cache holds one n_images × n_units float32 file (the result) and a copy
    of the rows the current session adds to; peak memory is about two sessions.
    """
    root = _check_root(root)
    space = _check_space(space)
    subject = _check_subject(root, subject)
    cond = subject_conditions(root, subject)
    missing = [
        (s, f)
        for s in cond.sessions
        for f in _session_files(root, subject, space, s)
        if not f.exists()
    ]
    if missing:
        sessions = sorted({s for s, _ in missing})
        raise DataFormatError(
            f"{P.responses(root, subject)}: points at sessions {sessions} whose {space} betas are "
            f"missing (e.g. {missing[0][1]}); download them or remove those sessions' rows"
        )
    fingerprint, params = _cache_key(root, subject, space, cond)
    folder = _cache_folder(root, subject, space, cache_dir)
    # a full disk or a read-only cache is one message naming the file and BRAINALIGN_CACHE
    # (the running-mean file is reserved before it is mapped: no Bus error mid-way)
    with storage_errors(folder, _CACHE_HINT), _folder_lock(folder):
        return _prepare_locked(root, subject, space, folder, cond, fingerprint, params, verbose)


#: what to do when the prepared-betas cache cannot be written (completes the messages)
_CACHE_HINT = (
    "set BRAINALIGN_CACHE (or cache_dir=) to a folder on a disk with more room that you can write"
)


def _cache_key(root: Path, subject: int, space: str, cond: Conditions) -> tuple[dict, dict]:
    """``(fingerprint, params)`` a prepared cache must record to be reused."""
    inputs = [P.responses(root, subject)]
    for s in cond.sessions:
        inputs += _session_files(root, subject, space, s)
    if space == "func1pt8mm":
        inputs.append(P.brainmask(root, subject))
    params = {
        "version": PREP_VERSION,
        "subject": subject,
        "space": space,
        "image_ids": hash_array(cond.image_ids),
        "sessions": cond.sessions,
    }
    return _fingerprint(inputs), params


def prepare_nsd_disk_bytes(root, subject: int, space: str = "fsaverage", cache_dir=None) -> int:
    """Disk bytes :func:`prepare_nsd` will write for a subject (0 when its cache is valid).

    Reads only headers and ``responses.tsv``; writes nothing (for ``--dry-run``).

    Returns
    -------
    int
        Peak bytes the cache folder grows by: the running means (n_images × n_units float32,
        the size of the result) plus the undo record of one session (the means of the rows it
        adds to). Units with non-finite betas add n_images × n_bad_units float32 at the end,
        not counted (NSD has none).
    """
    root = _check_root(root)
    space = _check_space(space)
    subject = _check_subject(root, subject)
    cond = subject_conditions(root, subject)
    fingerprint, params = _cache_key(root, subject, space, cond)
    folder = _cache_folder(root, subject, space, cache_dir)
    n_images = len(cond.image_ids)
    if _valid_manifest(
        folder / "manifest.json", folder / "betas.npy", fingerprint, params, n_images
    ):
        return 0
    n_units = _unit_layout(root, subject, space, cond.sessions)["n_units"]
    kept = cond.trial_row >= 0
    most_rows = max(
        (len(np.unique(cond.trial_row[kept & (cond.trial_session == s)])) for s in cond.sessions),
        default=0,
    )
    result = npy_nbytes((n_images, n_units), np.float32)
    return result + npy_nbytes((most_rows, n_units), np.float32)


def _prepare_locked(root, subject, space, folder, cond, fingerprint, params, verbose):
    """prepare_nsd's work, with the cache folder locked against concurrent preparations."""
    manifest_path = folder / "manifest.json"
    betas_path = folder / "betas.npy"
    n_images = len(cond.image_ids)
    valid = _valid_manifest(manifest_path, betas_path, fingerprint, params, n_images)
    if valid is not None:
        return PreparedNSD(
            folder,
            betas_path,
            cond.image_ids,
            cond.sessions,
            valid["n_units"],
            tuple(valid["hemi_sizes"]),
            valid,
        )
    # stale or partial: drop the final files before (re)building
    for p in (manifest_path, betas_path):
        p.unlink(missing_ok=True)
    layout = _unit_layout(root, subject, space, cond.sessions)
    n_units = layout["n_units"]
    work = folder / "work"
    state_path = work / "state.json"
    mean_path = work / "mean.npy"
    state = _read_state(state_path)
    if (
        state is None
        or state.get("fingerprint") != fingerprint
        or state.get("params") != params
        or state.get("n_units") != n_units
        or not mean_path.exists()
    ):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        # reserved before it is mapped: a full disk is a clear error now, not a Bus error
        # (SIGBUS) at some session's write into a sparse map
        mean = create_memmap(mean_path, (n_images, n_units), np.float32, hint=_CACHE_HINT)
        del mean
        state = {"fingerprint": fingerprint, "params": params, "n_units": n_units, "done": []}
        atomic_write_json(state_path, state)
    # resuming: any blocks the file lacks are allocated first (no Bus error mid-way)
    mean = open_memmap_reserved(mean_path, hint=_CACHE_HINT)
    if state.get("applying") is not None:
        _undo_session(mean, work)
        state["applying"] = None
        atomic_write_json(state_path, state)
    done = set(state["done"])
    todo = [s for s in cond.sessions if s not in done]
    bad_units_path = work / "non_finite_units.npy"
    for session in progress(todo, desc=f"{P.subj(subject)} {space} sessions", verbose=verbose):
        in_session = np.flatnonzero(cond.trial_session == session)
        z = _read_session(root, subject, space, session, len(in_session), layout)
        per_unit, n_nan = count_non_finite(z)
        if per_unit.any():  # recorded with the session, so a resumed preparation keeps it
            files = _session_files(root, subject, space, session)
            info = _session_non_finite(files, per_unit, n_nan, layout["hemi_sizes"])
            state.setdefault("non_finite", {})[str(session)] = info
            seen = np.load(bad_units_path) if bad_units_path.exists() else per_unit > 0
            atomic_save_npy(bad_units_path, seen | (per_unit > 0))
        zscore_session(z, out=z)
        rows, reps = cond.trial_row[in_session], cond.trial_rep[in_session]
        _save_session_record(mean, z, rows, reps, work, session)
        state["applying"] = session
        atomic_write_json(state_path, state)
        _add_session(mean, z, rows, reps)
        del z
        mean.flush()
        state["done"] = sorted(done | {session})
        state["applying"] = None
        done.add(session)
        atomic_write_json(state_path, state)
    if not state.get("corrected"):
        _save_corrections(mean, work, cond)
        state["corrected"] = True
        atomic_write_json(state_path, state)
    _apply_corrections(mean, work)
    mean.flush()
    del mean
    os.replace(mean_path, betas_path)
    per_session = state.get("non_finite", {})
    n_bad_units = int(np.load(bad_units_path).sum()) if bad_units_path.exists() else 0
    manifest = {
        "format": "brainalign.nsd_prepared",
        "fingerprint": fingerprint,
        "params": params,
        "n_images": n_images,
        "n_units": n_units,
        "hemi_sizes": list(layout["hemi_sizes"]),
        "root": str(root.resolve()),
        "non_finite": {
            "values": sum(v["values"] for v in per_session.values()),
            "nan": sum(v["nan"] for v in per_session.values()),
            "inf": sum(v["inf"] for v in per_session.values()),
            "units": n_bad_units,
            "sessions": dict(sorted(per_session.items(), key=lambda kv: int(kv[0]))),
        },
    }
    atomic_write_json(manifest_path, manifest)
    shutil.rmtree(work, ignore_errors=True)
    return PreparedNSD(
        folder, betas_path, cond.image_ids, cond.sessions, n_units, layout["hemi_sizes"], manifest
    )


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """Exclusive lock on a cache folder (another process preparing the same subject waits).

    ``fcntl.flock`` is released by the OS when a process dies, so a killed preparation never
    leaves a stale lock. Where ``fcntl`` does not exist (Windows) no lock is taken.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_state(path: Path):
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _valid_manifest(manifest_path, betas_path, fingerprint, params, n_images):
    if not manifest_path.exists() or not betas_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("fingerprint") != fingerprint or manifest.get("params") != params:
        return None
    if "non_finite" not in manifest:
        return None
    try:
        arr = np.load(betas_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if arr.shape != (n_images, manifest.get("n_units")) or arr.dtype != np.float32:
        return None
    return manifest


def _save_session_record(mean, z, rows, reps, work: Path, session: int) -> None:
    """What redoing a session after a kill needs, saved before the session is added: the running
    means of the rows it adds to (to undo a half-done addition) and where its z-scores are not
    finite (units non-finite on every kept trial, and single (row, unit) pairs)."""
    for name in ("undo_rows.npy", "undo_values.npy"):
        (work / name).unlink(missing_ok=True)
    kept = np.flatnonzero(rows >= 0)
    added = np.unique(rows[kept[reps[kept] > 0]])
    atomic_save_npy(work / "undo_values.npy", np.asarray(mean[added]))
    atomic_save_npy(work / "undo_rows.npy", added)
    all_bad, pairs = [], []
    for start in range(0, z.shape[0], _UNIT_BLOCK):
        bad = ~np.isfinite(z[start : start + _UNIT_BLOCK][:, kept])
        every = bad.all(axis=1)
        all_bad.append(start + np.flatnonzero(every))
        unit, trial = np.nonzero(bad & ~every[:, None])
        pairs.append(np.stack([rows[kept[trial]], start + unit], axis=1))
    atomic_save_npy(work / f"nan_units_{session:04d}.npy", np.concatenate(all_bad))
    atomic_save_npy(work / f"nan_pairs_{session:04d}.npy", np.concatenate(pairs))


def _add_session(mean, z, rows, reps) -> None:
    """Add a session's z-scored trials (units × trials) to the running means of their images.

    A first repetition is assigned, later ones added (a third each); non-finite z-scores add
    nothing and are corrected for once every session is in (:func:`_save_corrections`).
    """
    for r in range(3):
        sel = np.flatnonzero((rows >= 0) & (reps == r))
        sel = sel[np.argsort(rows[sel])]
        # small groups of trials: the transposed copy stays a fraction of a session
        for chunk in np.array_split(sel, max(1, len(sel) // _TRIAL_BLOCK)):
            if not len(chunk):
                continue
            values = z[:, chunk].T / np.float32(3)
            values[~np.isfinite(values)] = 0.0
            if r == 0:
                mean[rows[chunk]] = values
            else:
                mean[rows[chunk]] += values


def _undo_session(mean, work: Path) -> None:
    """Put back the running means a killed session had started to add to."""
    rows, values = work / "undo_rows.npy", work / "undo_values.npy"
    if rows.exists() and values.exists():
        rows, values = np.load(rows), np.load(values)
        if rows.size:
            mean[rows] = values
            mean.flush()


def _save_corrections(mean, work: Path, cond: Conditions) -> None:
    """The final values of the units that had non-finite z-scores: the mean over the finite
    repetitions only (NaN where none is finite, as ``nanmean``), saved before being applied so
    that applying them is repeatable."""
    n_images = mean.shape[0]
    records = []
    for units_file in sorted(work.glob("nan_units_*.npy")):
        session = int(units_file.stem.rsplit("_", 1)[1])
        pairs = np.load(work / f"nan_pairs_{session:04d}.npy")
        records.append((session, np.load(units_file), pairs))
    units = np.unique(
        np.concatenate([np.zeros(0, np.int64)] + [np.r_[u, p[:, 1]] for _, u, p in records])
    )
    # non-finite repetitions per (image, unit); at most 3
    counts = np.zeros((n_images, units.size), dtype=np.uint8)
    for session, all_bad, pairs in records:
        in_session = cond.trial_row[(cond.trial_session == session) & (cond.trial_row >= 0)]
        per_row = np.bincount(in_session, minlength=n_images).astype(np.uint8)
        counts[:, np.searchsorted(units, all_bad)] += per_row[:, None]
        np.add.at(counts, (pairs[:, 0], np.searchsorted(units, pairs[:, 1])), 1)
    values = np.asarray(RowView(mean, columns=units))
    for start in range(0, units.size, _UNIT_BLOCK):
        c = counts[:, start : start + _UNIT_BLOCK].astype(np.float64)
        v = values[:, start : start + _UNIT_BLOCK]
        with np.errstate(invalid="ignore", divide="ignore"):
            v[:] = np.where(c < 3, v * 3.0 / (3.0 - c), np.nan)
    atomic_save_npy(work / "corrections_values.npy", values)
    atomic_save_npy(work / "corrections_units.npy", units)


def _apply_corrections(mean, work: Path) -> None:
    units = np.load(work / "corrections_units.npy")
    if not units.size:
        return
    values = np.load(work / "corrections_values.npy", mmap_mode="r")
    step = max(1, (1 << 26) // max(1, mean.shape[1] * 4))
    for start in range(0, mean.shape[0], step):
        block = np.asarray(mean[start : start + step])
        block[:, units] = values[start : start + step]
        mean[start : start + step] = block


# ---------------------------------------------------------------------------------- ROIs


def _surface_rois(root: Path, hemi_sizes) -> dict[str, np.ndarray]:
    rois = {}
    for atlas in ("streams", "nsdgeneral"):
        paths = [P.fsaverage_label(root, h, atlas) for h in HEMIS]
        if not all(p.exists() for p in paths):
            if atlas == "streams":
                warnings.warn(
                    f"{paths[0]}: streams atlas not found; SubjectResponses.rois has no streams ROIs",
                    stacklevel=3,
                )
            continue
        labels = []
        for path, n in zip(paths, hemi_sizes, strict=True):
            lab, _ = load_surface_atlas(path, ctab=None)
            if len(lab) != n:
                raise DataFormatError(
                    f"{path}: expected {n} labels (one per vertex of the betas), found {len(lab)}"
                )
            labels.append(lab)
        labels = np.concatenate(labels)
        if atlas == "nsdgeneral":
            rois["nsdgeneral"] = labels > 0
            continue
        ctab = P.fsaverage_ctab(root, atlas)
        names = read_label_table(ctab) if ctab.exists() else dict(STREAMS_LABELS)
        for k, name in sorted(names.items()):
            if k >= 1:
                rois[name] = labels == k
    return rois


def _volume_rois(root: Path, subject: int, mask: np.ndarray) -> dict[str, np.ndarray]:
    rois = {}
    for stem in ("streams", "nsdgeneral"):
        path = P.roi_volume(root, subject, stem)
        if not path.exists():
            continue
        data, _, _ = load_nifti(path)
        if data.shape != mask.shape:
            raise DataFormatError(
                f"{path}: ROI grid {data.shape} differs from the brain mask grid {mask.shape}"
            )
        labels = np.asarray(data)[mask].astype(np.int64)
        if stem == "nsdgeneral":
            rois["nsdgeneral"] = labels > 0  # never truthiness: -1 marks non-cortex
            continue
        ctab = P.fsaverage_ctab(root, stem)
        names = read_label_table(ctab) if ctab.exists() else dict(STREAMS_LABELS)
        for k, name in sorted(names.items()):
            if k >= 1:
                rois[name] = labels == k
    return rois


# ---------------------------------------------------------------------------------- public


def load_nsd(
    root,
    subject: int,
    space: str = "fsaverage",
    cache_dir=None,
    verbose: bool | None = None,
    test_set="all",
) -> SubjectResponses:
    """One subject's preprocessed NSD responses (paper_methods §1.2).

    Parameters
    ----------
    root : path
        NSD root (or a virtual NSD written by :func:`make_virtual_nsd`).
    subject : int
        1-based subject number.
    space : {"fsaverage", "func1pt8mm"}
        Surface (both hemispheres, left first) or the native 1.8-mm volume (brain-mask voxels
        in C order).
    cache_dir : path, optional
        Where the prepared betas are cached (default: ``$BRAINALIGN_CACHE`` or
        ``~/.cache/brainalign``).
    verbose : bool, optional
        Progress bar during preparation.
    test_set : "all", "present" or list of int
        Which subjects define ``shared`` (see :func:`special_ids`): by default every subject of
        the experiment, as the paper's 515.

    Returns
    -------
    SubjectResponses
        ``betas`` (n_images × n_units) float32, memory-mapped read-only: per-session z-scored,
        averaged over the 3 repetitions (NaN where a unit had zero variance in every session
        of the image, or no finite value); ``image_ids`` 0-based NSD ids seen 3 times, ascending; ``shared`` marks
        the shared images seen 3 times by every subject (``test_set``; NSD's special 515);
        ``rois`` streams ROIs (+ ``nsdgeneral``); ``hemi_sizes`` (surface) or
        ``mask``/``affine`` (volume).
    """
    root = _check_root(root)
    space = _check_space(space)
    subject = _check_subject(root, subject)
    prep = prepare_nsd(root, subject, space, cache_dir=cache_dir, verbose=verbose)
    betas = np.load(prep.betas_path, mmap_mode="r", allow_pickle=False)
    non_finite = prep.manifest.get("non_finite", {})
    if non_finite.get("values"):
        warnings.warn(
            f"{root}: subject {subject} ({space}): {non_finite_summary(non_finite)}; left out "
            "by NaN-aware z-scoring and repetition averaging (units without a value for an "
            "image are dropped by the analyses)",
            stacklevel=2,
        )
    shared = np.isin(prep.image_ids, special_ids(root, test_set))
    mask = affine = None
    if space == "fsaverage":
        rois = _surface_rois(root, prep.hemi_sizes)
    else:
        mask, affine = _read_mask(root, subject)
        if int(mask.sum()) != prep.n_units:
            raise DataFormatError(
                f"{P.brainmask(root, subject)}: {int(mask.sum())} voxels but the prepared betas "
                f"have {prep.n_units}; delete {prep.path} and prepare again"
            )
        rois = _volume_rois(root, subject, mask)
    return SubjectResponses(
        betas=betas,
        image_ids=prep.image_ids,
        shared=shared,
        rois=rois,
        space=space,
        subject=subject,
        hemi_sizes=tuple(prep.hemi_sizes),
        mask=mask,
        affine=affine,
        metadata={
            "root": str(root),
            "sessions": prep.sessions,
            "n_sessions": len(prep.sessions),
            "cache": str(prep.path),
            "non_finite": non_finite,
        },
    )


class ImageBrick:
    """Lazy reader of ``nsd_stimuli.hdf5`` (``imgBrick``, (73000, 425, 425, 3) uint8).

    Calling it with NSD ids (0-based) returns ``(len(ids), 425, 425, 3)`` uint8 in the given
    order (h5py needs increasing indices, so reads are sorted and then reordered).
    """

    def __init__(self, path):
        self.path = Path(path)

    def _open(self):
        import h5py

        try:
            f = h5py.File(self.path, "r")
        except Exception as exc:
            raise DataFormatError(
                f"{self.path}: not a readable HDF5 file ({type(exc).__name__}: {exc}); "
                "re-download or re-create it"
            ) from exc
        if "imgBrick" not in f:
            f.close()
            raise DataFormatError(f"{self.path}: expected a dataset 'imgBrick', found {list(f)}")
        return f

    @property
    def shape(self) -> tuple[int, ...]:
        with self._open() as f:
            return tuple(f["imgBrick"].shape)

    def __call__(self, ids) -> np.ndarray:
        """Images of the 0-based NSD ``ids``; a missing or unreadable image raises
        :class:`DataFormatError` naming its id and the file (never a black image)."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        with self._open() as f:
            ds = f["imgBrick"]
            if len(ids) and (ids.min() < 0 or ids.max() >= N_NSD_IMAGES):
                raise InputError(f"ids: NSD ids must be in 0..{N_NSD_IMAGES - 1}")
            if len(ids) and ids.max() >= ds.shape[0]:
                beyond = np.unique(ids[ids >= ds.shape[0]])
                raise DataFormatError(
                    f"{self.path}: imgBrick holds {ds.shape[0]} images, but image id(s) "
                    f"{beyond[:5].tolist()} were asked for (NSD has {N_NSD_IMAGES}); the file is "
                    "truncated or not NSD's stimulus brick: re-download or re-create it"
                )
            uniq, inverse = np.unique(ids, return_inverse=True)
            data = np.empty((len(uniq),) + ds.shape[1:], dtype=ds.dtype)
            for k, i in enumerate(uniq):
                _check_image_stored(ds, int(i), self.path)
                try:
                    # one image at a time: h5py's fancy indexing (ds[list]) is ~30x slower here
                    ds.read_direct(data, np.s_[i : i + 1], np.s_[k : k + 1])
                except Exception as exc:
                    raise DataFormatError(
                        f"{self.path}: could not read image {int(i)} (NSD id, 0-based; "
                        f"{type(exc).__name__}: {exc}); the file is corrupt or truncated: "
                        "re-download or re-create it"
                    ) from exc
        return data[inverse]


#: images in NSD's stimulus brick (``nsd_stimuli.hdf5``)
N_NSD_IMAGES = 73000


def _check_image_stored(ds, i: int, path: Path) -> None:
    """Raise naming image ``i`` and ``path`` when its chunk was never written to the brick.

    In a chunked HDF5 dataset an unwritten chunk reads back as the fill value (a black image);
    a contiguous dataset (NSD's own file) stores every image, so there is nothing to check.
    """
    if ds.chunks is None:
        return
    try:
        info = ds.id.get_chunk_info_by_coord((i,) + (0,) * (len(ds.shape) - 1))
    except Exception:  # pragma: no cover - HDF5 < 1.10.5: cannot tell, read as before
        return
    if info.byte_offset is None:
        raise DataFormatError(
            f"{path}: image {i} (NSD id, 0-based; nsd{i + 1:05d}) is missing from imgBrick (it "
            "was never written, so it would read back as a black image); re-create the file, or "
            "leave that image out"
        )


def _read_coco_json(path: Path) -> dict:
    if not path.exists():
        raise DataFormatError(f"{path}: COCO annotation file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except Exception as exc:
        raise DataFormatError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(doc, dict) or "annotations" not in doc:
        raise DataFormatError(f"{path}: expected a COCO JSON object with 'annotations'")
    return doc


def load_stimuli(root, image_ids=None, categories: bool = True) -> Stimuli:
    """Captions, COCO categories and (lazily) images of NSD images.

    Parameters
    ----------
    root : path
        NSD root.
    image_ids : array of int, optional
        0-based NSD ids. Default: every image shown to at least one subject (CSV rep columns).
    categories : bool
        Read COCO categories (multi-hot) from ``instances_*.json`` when they exist.

    Returns
    -------
    Stimuli
        ``image_ids`` ascending; ``captions`` from ``captions_{split}.json`` via the CSV's
        ``cocoId``/``cocoSplit`` (file order); ``categories`` (n, C) uint8 or None;
        ``images`` an :class:`ImageBrick` (None when the HDF5 file is absent).
    """
    root = _check_root(root)
    table = _read_stim_info(root)
    nsd_ids = table["nsdId"].to_numpy(dtype=np.int64)
    if image_ids is None:
        rep_cols = [c for c in table.columns if re.fullmatch(r"subject\d+_rep\d", c)]
        if rep_cols:
            shown = (table[rep_cols].to_numpy() > 0).any(axis=1)
        else:
            sub_cols = [c for c in table.columns if re.fullmatch(r"subject\d+", c)]
            shown = _as_bool_frame(table[sub_cols]).any(axis=1)
        ids = np.sort(nsd_ids[shown])
    else:
        ids = np.asarray(image_ids, dtype=np.int64).ravel()
        if len(np.unique(ids)) != len(ids):
            raise InputError("image_ids: duplicate ids; give each NSD id once")
        ids = np.sort(ids)
    order = np.argsort(nsd_ids, kind="stable")
    pos = order[np.clip(np.searchsorted(nsd_ids, ids, sorter=order), 0, len(order) - 1)]
    absent = ids[nsd_ids[pos] != ids]
    if len(absent):
        raise InputError(
            f"image_ids: {absent[:5].tolist()} not in {P.stim_info(root)} "
            f"(nsdId {nsd_ids.min()}..{nsd_ids.max()})"
        )
    coco_ids = table["cocoId"].to_numpy(dtype=np.int64)[pos]
    splits = table["cocoSplit"].astype(str).to_numpy()[pos]

    captions: list[list[str]] = [[] for _ in ids]
    cat_rows = None
    cat_names: list[str] = []
    inst_paths = {s: P.annotations(root, "instances", s) for s in np.unique(splits)}
    use_categories = categories and all(p.exists() for p in inst_paths.values())
    if use_categories:
        cat_table = {}
        for path in inst_paths.values():
            for c in _read_coco_json(path).get("categories", []):
                cat_table[int(c["id"])] = str(c["name"])
        cat_ids = sorted(cat_table)
        cat_names = [cat_table[c] for c in cat_ids]
        cat_col = {c: j for j, c in enumerate(cat_ids)}
        cat_rows = np.zeros((len(ids), len(cat_ids)), dtype=np.uint8)
    for split in np.unique(splits):
        members = np.flatnonzero(splits == split)
        where = {int(coco_ids[i]): i for i in members}
        cap_path = P.annotations(root, "captions", split)
        doc = _read_coco_json(cap_path)
        for ann in sorted(doc["annotations"], key=lambda a: a.get("id", 0)):
            i = where.get(int(ann["image_id"]))
            if i is not None:
                captions[i].append(str(ann["caption"]).strip())
        uncovered = [i for i in members if not captions[i]]
        if uncovered:
            raise DataFormatError(
                f"{cap_path}: has no captions for {len(uncovered)} of the requested images "
                f"(nsdId {ids[uncovered[:5]].tolist()}, cocoId {coco_ids[uncovered[:5]].tolist()}); "
                "the caption file does not cover the images: use NSD's COCO annotation files"
            )
        if use_categories:
            for ann in _read_coco_json(inst_paths[split])["annotations"]:
                i = where.get(int(ann["image_id"]))
                if i is not None and int(ann["category_id"]) in cat_col:
                    cat_rows[i, cat_col[int(ann["category_id"])]] = 1
    brick_path = P.stimuli_hdf5(root)
    images = ImageBrick(brick_path) if brick_path.exists() else None
    shared = read_shared_ids(root)
    return Stimuli(
        image_ids=ids,
        captions=captions,
        categories=cat_rows,
        category_names=cat_names,
        images=images,
        metadata={
            "root": str(root),
            "coco_ids": coco_ids,
            "coco_splits": splits.tolist(),
            "shared": np.isin(ids, shared),
            "images_path": str(brick_path) if images is not None else None,
        },
    )


def _as_bool_frame(frame) -> np.ndarray:
    if not len(frame.columns):
        return np.zeros((len(frame), 0), dtype=bool)
    return np.column_stack([_as_bool(frame[c]) for c in frame.columns])


__all__ = [
    "Conditions",
    "ImageBrick",
    "PreparedNSD",
    "SPACES",
    "list_subjects",
    "load_nsd",
    "non_finite_summary",
    "load_stimuli",
    "prepare_nsd",
    "read_responses",
    "read_shared_ids",
    "special_ids",
    "subject_conditions",
    "zscore_session",
]
