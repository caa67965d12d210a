"""The virtual NSD: a complete dataset in NSD's layout whose responses come from a planted truth.

``make_virtual_nsd(root)`` writes, under ``root``, the files that :func:`load_nsd` and
:func:`load_stimuli` read (and that third-party NSD code such as nsd_access and nsdcode expects),
with NSD's names, formats, shapes and id conventions (see ``docs/nsd_layout.md``):

- ``nsddata/experiments/nsd/nsd_expdesign.mat`` (``masterordering``, ``subjectim``, ``sharedix``,
  ``stimpattern``, ``basiccnt``) and ``nsd_stim_info_merged.csv`` (73,000 rows, NSD's 41 columns);
- ``nsddata/ppdata/subjSS/behav/responses.tsv`` (19 columns, one row per trial);
- ``nsddata_betas/ppdata/subjSS/fsaverage/betas_fithrf_GLMdenoise_RR/{lh,rh}.betas_sessionNN.mgh``
  (float32 PSC, (V, 1, 1, T)) and ``{lh,rh}.ncsnr.mgh``;
- ``nsddata_betas/ppdata/subjSS/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_sessionNN.nii.gz``
  (int16 = PSC × 300) and ``ncsnr.nii.gz``; ``nsddata/ppdata/subjSS/func1pt8mm/brainmask.nii.gz``
  and ``roi/{,lh.,rh.}{streams,nsdgeneral}.nii.gz`` (−1 non-cortex, 0 unlabelled, 1..N labels);
- ``nsddata/freesurfer/fsaverage/label/{lh,rh}.{streams,nsdgeneral}.mgz`` + ``*.mgz.ctab`` and the
  fsaverage surfaces under ``surf/``;
- ``nsddata/ppdata/subjSS/transforms/{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz``,
  ``{lh,rh}.white-to-fsaverage.mgz``, ``{lh,rh}.fsaverage-to-white.mgz``;
- ``nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5`` (``imgBrick`` of logical shape
  (73000, 425, 425, 3), chunked one image, only the used images written),
  ``nsddata_stimuli/stimuli/nsd/annotations/{captions,instances}_{train,val}2017.json`` and
  ``nsddata/stimuli/nsd/shared1000/sharedKKKK_nsdIIIII.png``;
- ``virtual_truth.json`` / ``virtual_truth.npz``: what was planted.

Design as in NSD: one ``masterordering`` of 10k indices (each 3 times) common to all subjects,
``subjectim`` mapping each subject's 10k indices to images (the first ``n_shared`` are the shared
images, the rest the subject's own, in a random order per subject), so every subject sees its
own random sequence of images while the shared images sit at the same trials for everyone;
subjects with fewer sessions stop early in the same sequence, so some shared images are not
seen 3 times by them (NSD's special-515 mechanism). Repetitions follow NSD-like spacing.

The planted truth: each streams-like ROI responds with a weighted sum of one generating
representation of the scene (early: ``lowlevel``, ventral: ``objects``, lateral: ``events``,
parietal: ``layout``, mid-regions: mixtures with ``lowlevel``), through voxel weights that are
smooth on the mesh, shared across subjects with individual variation; the rest of cortex carries
noise only. Each trial adds unit-variance noise; each session applies its own per-unit gain and
offset (so per-session z-scoring matters). The signal amplitude per vertex is the noise-ceiling SNR
(``ncsnr``), smooth around ``snr`` (NSD's nsdgeneral medians are 0.32–0.54). No model that
brainalign tests is used to make the truth: the representations come from the scenes themselves.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from brainalign.datasets import _anatomy as anat
from brainalign.datasets._formats import write_ctab, write_mat, write_mgh, write_nifti
from brainalign.errors import InputError
from brainalign.utils.io import atomic_path, atomic_write_json
from brainalign.utils.progress import progress

N_POOL = 73000
IMAGE_SIZE = 425
BETAS_VERSION = "betas_fithrf_GLMdenoise_RR"
#: NSD's completed sessions relative to the full 40 (subj01..08: 40 40 32 30 40 32 40 30)
NSD_SESSION_FRACTIONS = (1.0, 1.0, 0.8, 0.75, 1.0, 0.8, 1.0, 0.75)
TSV_COLUMNS = [
    "SUBJECT", "SESSION", "RUN", "TRIAL", "73KID", "10KID", "TIME", "ISOLD", "ISCORRECT", "RT",
    "CHANGEMIND", "MEMORYRECENT", "MEMORYFIRST", "ISOLDCURRENT", "ISCORRECTCURRENT", "TOTAL1",
    "TOTAL2", "BUTTON", "MISSINGDATA",
]  # fmt: skip
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _subj(s: int) -> str:
    return f"subj{s:02d}"


def _check_positive_int(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name}: expected an integer ≥ {minimum}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------ design


def _master_ordering(n_per: int, rng: np.random.Generator) -> np.ndarray:
    """1-based 10k indices, each 3 times, with NSD-like spacing of repetitions.

    First presentations are spread over the experiment and repeats follow after exponential
    gaps, so a subject stopping at 75 % of the sessions has seen about 55 % of the images 3 times
    and about 93 % at least once, as NSD's 30-session subjects (5445 and 9209 of 10,000).
    """
    t1 = rng.uniform(0.0, 1.0, n_per)
    gaps = rng.exponential(0.2, (n_per, 2))
    keys = np.concatenate([t1, t1 + gaps[:, 0], t1 + gaps.sum(axis=1)])
    index = np.tile(np.arange(1, n_per + 1), 3)
    return index[np.argsort(keys, kind="stable")]


def _run_sizes(session_size: int, n_runs: int) -> np.ndarray:
    """Stimulus trials per run; the remainder goes to odd runs first (NSD: 63 odd, 62 even)."""
    n_runs = min(n_runs, session_size)
    sizes = np.full(n_runs, session_size // n_runs)
    extra = session_size % n_runs
    order = list(range(0, n_runs, 2)) + list(range(1, n_runs, 2))
    sizes[order[:extra]] += 1
    return sizes


def _responses_table(subject, trials_73k, trials_10k, session_size, run_sizes, rng):
    """NSD's responses.tsv for one subject (a pandas DataFrame with the 19 columns)."""
    import pandas as pd

    n = len(trials_73k)
    session = np.arange(n) // session_size + 1
    within = np.arange(n) % session_size
    run_edges = np.concatenate([[0], np.cumsum(run_sizes)])
    run = np.searchsorted(run_edges, within, side="right")
    trial = within - run_edges[run - 1] + 1
    # onsets: one session a week, runs 5 min apart, trials 4 s apart (MATLAB days)
    time = (session - 1) * 7.0 + 0.4 + ((run - 1) * 300.0 + (trial - 1) * 4.0) / 86400.0
    time += rng.uniform(0, 0.05, n)[session - 1]
    first, last = {}, {}
    isold = np.zeros(n, dtype=np.int64)
    isoldcur = np.zeros(n, dtype=np.int64)
    mem_recent = np.full(n, np.nan)
    mem_first = np.full(n, np.nan)
    last_session = {}
    for t, img in enumerate(trials_73k):
        if img in first:
            isold[t] = 1
            mem_recent[t] = t - last[img]
            mem_first[t] = t - first[img]
            isoldcur[t] = int(last_session[img] == session[t])
        else:
            first[img] = t
        last[img] = t
        last_session[img] = session[t]
    correct = (rng.uniform(size=n) < 0.85).astype(np.int64)
    missing = (rng.uniform(size=n) < 0.005).astype(np.int64)
    said_old = np.where(correct == 1, isold, 1 - isold)
    rt = np.exp(rng.normal(np.log(800.0), 0.3, n))
    changemind = (rng.uniform(size=n) < 0.02).astype(float)
    rt[missing == 1] = np.nan
    changemind[missing == 1] = np.nan
    button = np.where(said_old == 1, 2, 1)
    table = pd.DataFrame(
        {
            "SUBJECT": np.full(n, subject, dtype=np.int64),
            "SESSION": session,
            "RUN": run,
            "TRIAL": trial,
            "73KID": trials_73k,
            "10KID": trials_10k,
            "TIME": time,
            "ISOLD": isold,
            "ISCORRECT": np.where(missing == 1, 0, correct),
            "RT": rt,
            "CHANGEMIND": pd.array(np.where(np.isnan(changemind), None, changemind), "Int64"),
            "MEMORYRECENT": pd.array(np.where(np.isnan(mem_recent), None, mem_recent), "Int64"),
            "MEMORYFIRST": pd.array(np.where(np.isnan(mem_first), None, mem_first), "Int64"),
            "ISOLDCURRENT": isoldcur,
            "ISCORRECTCURRENT": np.where(missing == 1, 0, (said_old == isoldcur).astype(np.int64)),
            "TOTAL1": (button == 1).astype(np.int64) * (1 - missing),
            "TOTAL2": (button == 2).astype(np.int64) * (1 - missing),
            "BUTTON": np.where(missing == 1, 0, button),
            "MISSINGDATA": missing,
        }
    )
    return table[TSV_COLUMNS]


def _write_table(path, table, sep):
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep=sep, index=False, na_rep="NaN", lineterminator="\n")


def _stim_info_table(pool_ids, coco_ids, coco_splits, shared_ids, subject_sets, reps, n_cols):
    """NSD's nsd_stim_info_merged.csv (73,000 rows, NSD's column order, blank index header)."""
    import pandas as pd

    nsd = np.arange(N_POOL)
    coco = 1_000_000 + nsd  # ids of unused rows, disjoint from the used ones
    coco[pool_ids] = coco_ids
    split = np.where(nsd % 4 == 0, "val2017", "train2017").astype(object)
    split[pool_ids] = coco_splits
    cols = {
        "cocoId": coco,
        "cocoSplit": split,
        "cropBox": "(0, 0, 0.125, 0.125)",
        "loss": 0.0,
        "nsdId": nsd,
        "flagged": False,
        "BOLD5000": False,
        "shared1000": np.isin(nsd, shared_ids),
    }
    for s in range(1, n_cols + 1):
        member = np.zeros(N_POOL, dtype=np.int64)
        if s in subject_sets:
            member[subject_sets[s]] = 1
        cols[f"subject{s}"] = member
    for s in range(1, n_cols + 1):
        for r in range(3):
            col = np.zeros(N_POOL, dtype=np.int64)
            if s in reps:
                col[reps[s][0]] = reps[s][1][:, r]
            cols[f"subject{s}_rep{r}"] = col
    table = pd.DataFrame(cols)
    return table


# ------------------------------------------------------------------------------ truth


def _standardise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    sd = X.std(axis=0)
    return np.divide(X, sd, out=np.zeros_like(X), where=sd > 0)


def _save_npz(path, arrays: dict) -> Path:
    """npz with fixed zip timestamps (numpy's savez stamps the current time)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue())
    return Path(path)


# ------------------------------------------------------------------------------ main


def make_virtual_nsd(
    root: str | os.PathLike,
    n_subjects: int = 8,
    *,
    n_shared: int = 120,
    n_unique: int = 180,
    n_sessions: int = 12,
    sessions_per_subject: list[int] | None = None,
    n_runs: int = 12,
    spaces: tuple[str, ...] = ("fsaverage", "func1pt8mm"),
    voxel_size: float = 4.0,
    mesh: str = "fsaverage5",
    fs_dir: str | os.PathLike | None = None,
    atlas: dict | None = None,
    snr: float = 0.45,
    individual_variation: float = 0.3,
    session_gain_sd: float = 0.2,
    session_offset_sd: float = 1.0,
    psc_scale: float = 1.5,
    n_dead_vertices: int = 4,
    scenes=None,
    coco_folder: str | os.PathLike | None = None,
    coco_caption_files: tuple = (),
    compress_images: bool = True,
    overwrite: bool = False,
    random_state: int = 0,
    verbose: bool | None = None,
) -> Path:
    """Write a virtual NSD under ``root`` (NSD's layout, planted ground truth).

    Parameters
    ----------
    root : path
        Output folder. It must not exist or be empty (unless ``overwrite``). The dataset is
        built in a sibling temporary folder and renamed into place, so a killed run leaves
        nothing half-written under ``root``.
    n_subjects : int
        Number of subjects (NSD: 8).
    n_shared : int
        Images shown to every subject (NSD's shared1000); the 10k indices 1..n_shared.
    n_unique : int
        Images per subject shown to that subject only (NSD: 9,000).
    n_sessions : int
        Sessions of a full subject. ``3 * (n_shared + n_unique)`` must be divisible by it;
        the quotient is the session size (NSD: 750 trials, 40 sessions).
    sessions_per_subject : list of int, optional
        Completed sessions per subject (default: NSD's pattern 40/40/32/30/40/32/40/30 scaled
        to ``n_sessions``), so some shared images are not seen 3 times by some subjects.
    n_runs : int
        Runs per session (NSD: 12); trials are split as in NSD (odd runs take the remainder).
    spaces : tuple of {"fsaverage", "func1pt8mm"}
        Which beta spaces to write.
    voxel_size : float
        Voxel size (mm) of the small volume standing in for func1pt8mm.
    mesh : {"fsaverage5", "fsaverage"}
        Surface resolution of the fsaverage betas. fsaverage5 (10,242 vertices per hemisphere)
        comes from nilearn; full fsaverage (163,842) needs ``fs_dir``.
    fs_dir : path, optional
        FreeSurfer fsaverage folder (``surf/{lh,rh}.{pial,white}``) for the meshes.
    atlas : dict, optional
        ``{"lh": path, "rh": path, "rois": {roi: [label ids]}}``: per-vertex label files
        (MGZ/MGH/annot; finer atlases are subsampled) defining the streams ROIs instead of
        growing them from landmarks. ``"rois"`` may be omitted when the label table names
        the streams ROIs (a real NSD ``streams`` atlas).
    snr : float
        Median noise-ceiling SNR (signal SD / trial-noise SD) in the ROIs.
    individual_variation : float in [0, 1]
        Share of each subject's voxel-weight variance that is individual (the rest is shared).
    session_gain_sd, session_offset_sd : float
        SD of the log gain and of the offset applied per unit and session.
    psc_scale : float
        Overall scale of the betas (percent signal change).
    n_dead_vertices : int
        Vertices per hemisphere (outside nsdgeneral) that are constant zero (zero variance →
        NaN after z-scoring, as in NSD).
    scenes : SceneSet, optional
        Stimuli; default ``make_scenes(n_shared + n_subjects * n_unique, random_state=...)``.
    coco_folder : path, optional
        Use a COCO-format folder (``load_coco_folder``) as the stimuli instead; images keep
        their COCO ids and splits.
    coco_caption_files : tuple of path
        Extra COCO caption files for ``coco_folder`` (e.g. the full ``captions_val2017.json``).
    compress_images : bool
        gzip the ``imgBrick`` chunks (transparent to h5py readers; keeps the file small).
    overwrite : bool
        Replace an existing non-empty ``root``.
    random_state : int
        Seed; the same arguments and seed give byte-identical files.
    verbose : bool, optional
        Progress bar (default: when attached to a terminal).

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    n_subjects = _check_positive_int("n_subjects", n_subjects)
    n_shared = _check_positive_int("n_shared", n_shared)
    n_unique = _check_positive_int("n_unique", n_unique, minimum=0)
    n_sessions = _check_positive_int("n_sessions", n_sessions)
    n_runs = _check_positive_int("n_runs", n_runs)
    if not isinstance(random_state, (int, np.integer)):
        raise InputError(f"random_state: expected an int seed, got {random_state!r}")
    bad = [s for s in spaces if s not in ("fsaverage", "func1pt8mm")]
    if bad or not spaces:
        raise InputError(f"spaces: expected 'fsaverage' and/or 'func1pt8mm', got {spaces!r}")
    if not 0 <= individual_variation <= 1:
        raise InputError(
            f"individual_variation: expected a value in [0, 1], got {individual_variation}"
        )
    if snr < 0 or voxel_size <= 0:
        raise InputError(
            f"snr must be ≥ 0 and voxel_size > 0, got snr={snr}, voxel_size={voxel_size}"
        )
    if mesh not in ("fsaverage5", "fsaverage"):
        raise InputError(f"mesh: expected 'fsaverage5' or 'fsaverage', got {mesh!r}")
    if mesh == "fsaverage" and fs_dir is None:
        raise InputError("mesh='fsaverage' needs fs_dir= (a FreeSurfer fsaverage folder)")
    n_per = n_shared + n_unique
    n_total = n_shared + n_subjects * n_unique
    if n_total > N_POOL:
        raise InputError(
            f"n_shared + n_subjects*n_unique = {n_total} exceeds NSD's {N_POOL} images"
        )
    if (3 * n_per) % n_sessions:
        raise InputError(
            f"n_sessions={n_sessions}: 3*(n_shared+n_unique) = {3 * n_per} trials must split into "
            "equal sessions; choose n_sessions dividing it"
        )
    session_size = 3 * n_per // n_sessions
    if sessions_per_subject is None:
        sessions_per_subject = [
            max(1, int(np.floor(n_sessions * NSD_SESSION_FRACTIONS[i % 8] + 0.5)))
            for i in range(n_subjects)
        ]
    sessions_per_subject = [int(x) for x in sessions_per_subject]
    if len(sessions_per_subject) != n_subjects or not all(
        1 <= x <= n_sessions for x in sessions_per_subject
    ):
        raise InputError(
            f"sessions_per_subject: expected {n_subjects} values in 1..{n_sessions}, "
            f"got {sessions_per_subject}"
        )

    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())) and not overwrite:
        raise InputError(
            f"root: {root} exists and is not empty; choose a new folder or pass overwrite=True"
        )
    build = root.parent / f".{root.name}.partial-{os.getpid()}"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    try:
        _build(
            build,
            n_subjects=n_subjects,
            n_shared=n_shared,
            n_unique=n_unique,
            n_sessions=n_sessions,
            session_size=session_size,
            sessions_per_subject=sessions_per_subject,
            n_runs=n_runs,
            spaces=tuple(spaces),
            voxel_size=float(voxel_size),
            mesh=mesh,
            fs_dir=fs_dir,
            atlas=atlas,
            snr=float(snr),
            individual_variation=float(individual_variation),
            session_gain_sd=float(session_gain_sd),
            session_offset_sd=float(session_offset_sd),
            psc_scale=float(psc_scale),
            n_dead_vertices=int(n_dead_vertices),
            scenes=scenes,
            coco_folder=coco_folder,
            coco_caption_files=tuple(coco_caption_files),
            compress_images=compress_images,
            random_state=int(random_state),
            verbose=verbose,
        )
        if root.exists():
            if root.is_dir():
                shutil.rmtree(root)
            else:
                root.unlink()
        os.replace(build, root)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return root


def _load_stimulus_set(scenes, coco_folder, caption_files, n_total, seed):
    if scenes is not None and coco_folder is not None:
        raise InputError("give either scenes= or coco_folder=, not both")
    if coco_folder is not None:
        from brainalign.datasets.coco import load_coco_folder

        scenes = load_coco_folder(coco_folder, caption_files=caption_files)
        source = {"source": "coco_folder", "folder": str(coco_folder)}
    elif scenes is None:
        from brainalign.datasets.scenes import make_scenes

        scenes = make_scenes(n_total, random_state=seed)
        source = {"source": "make_scenes", "random_state": seed}
    else:
        source = {"source": "SceneSet"}
    if len(scenes) < n_total:
        raise InputError(
            f"scenes: {len(scenes)} scenes for {n_total} images (n_shared + n_subjects*n_unique); "
            "give more scenes or fewer images"
        )
    if len(scenes) > n_total:
        scenes = scenes.subset(np.arange(n_total))
    return scenes, source


def _build(
    out: Path,
    *,
    n_subjects,
    n_shared,
    n_unique,
    n_sessions,
    session_size,
    sessions_per_subject,
    n_runs,
    spaces,
    voxel_size,
    mesh,
    fs_dir,
    atlas,
    snr,
    individual_variation,
    session_gain_sd,
    session_offset_sd,
    psc_scale,
    n_dead_vertices,
    scenes,
    coco_folder,
    coco_caption_files,
    compress_images,
    random_state,
    verbose,
):
    seeds = np.random.SeedSequence(random_state).spawn(8)
    rng_design, rng_anat, rng_truth, rng_behav, _, rng_misc, _, _ = (
        np.random.default_rng(s) for s in seeds
    )
    n_per = n_shared + n_unique
    n_total = n_shared + n_subjects * n_unique
    scenes, stim_source = _load_stimulus_set(
        scenes, coco_folder, coco_caption_files, n_total, random_state
    )

    # ---- ids: scene i of the pool is shown as NSD image pool_ids[i]
    pool_ids = np.sort(rng_design.choice(N_POOL, n_total, replace=False))
    perm = rng_design.permutation(n_total)
    shared_pool = np.sort(perm[:n_shared])  # pool indices of the shared images (ascending id)
    unique_pool = perm[n_shared:].reshape(n_subjects, n_unique)
    sharedix = pool_ids[shared_pool] + 1  # 1-based 73k ids, ascending
    subject_pool = np.concatenate(
        [np.broadcast_to(shared_pool, (n_subjects, n_shared)), unique_pool], axis=1
    )  # (n_subjects, n_per): pool index of each 10k index
    subjectim = pool_ids[subject_pool] + 1
    master = _master_ordering(n_per, rng_design)

    # ---- design MAT
    max_run = int(_run_sizes(session_size, n_runs).max())
    n_slots = max_run + max(1, max_run // 5)
    runs = _run_sizes(session_size, n_runs)
    stimpattern = np.zeros((n_sessions, len(runs), n_slots))
    for i in range(n_sessions):
        for r, k in enumerate(runs):
            stimpattern[i, r, np.sort(rng_design.choice(n_slots, k, replace=False))] = 1
    seen_before = np.zeros(n_per, dtype=bool)
    basiccnt = np.zeros((3, n_sessions))
    for i in range(n_sessions):
        block = master[i * session_size : (i + 1) * session_size] - 1
        novel = 0
        for k in block:
            novel += not seen_before[k]
            seen_before[k] = True
        basiccnt[:, i] = [novel, session_size - novel, stimpattern[i].size - session_size]
    exp_dir = out / "nsddata" / "experiments" / "nsd"
    write_mat(
        exp_dir / "nsd_expdesign.mat",
        {
            "masterordering": master[None, :].astype(np.float64),
            "subjectim": subjectim.astype(np.float64),
            "sharedix": sharedix[None, :].astype(np.float64),
            "stimpattern": stimpattern,
            "basiccnt": basiccnt,
        },
    )

    # ---- behaviour and per-subject trial lists
    subj_trials = {}  # s -> pool index per trial
    reps = {}
    for s in range(1, n_subjects + 1):
        n_trials = sessions_per_subject[s - 1] * session_size
        k10 = master[:n_trials]
        pool_idx = subject_pool[s - 1, k10 - 1]
        subj_trials[s] = pool_idx
        table = _responses_table(s, pool_ids[pool_idx] + 1, k10, session_size, runs, rng_behav)
        _write_table(out / "nsddata" / "ppdata" / _subj(s) / "behav" / "responses.tsv", table, "\t")
        # CSV rep columns: 1-based trial numbers of each presentation, chronological
        ids_seen = np.unique(pool_idx)
        rep_cols = np.zeros((len(ids_seen), 3), dtype=np.int64)
        for j, p in enumerate(ids_seen):
            t = np.flatnonzero(pool_idx == p)[:3] + 1
            rep_cols[j, : len(t)] = t
        reps[s] = (pool_ids[ids_seen], rep_cols)

    coco_ids, coco_splits = _coco_identity(scenes, pool_ids, rng_misc)
    subject_sets = {s: pool_ids[subject_pool[s - 1]] for s in range(1, n_subjects + 1)}
    stim_table = _stim_info_table(
        pool_ids, coco_ids, coco_splits, sharedix - 1, subject_sets, reps, max(8, n_subjects)
    )
    stim_table.index.name = None
    with atomic_path(exp_dir / "nsd_stim_info_merged.csv") as tmp:
        stim_table.to_csv(tmp, index=True, lineterminator="\n")

    # ---- anatomy: meshes, streams-like ROIs, nsdgeneral, dead vertices
    from brainalign.datasets.surfaces import HEMIS

    meshes, streams_labels, smoothers, scale = _anatomy(mesh, fs_dir, atlas)
    n_v = meshes["pial"]["left"].n_vertices
    # nsdgeneral: the ROIs plus one ring (about 1.5 rings' width at fsaverage5 spacing)
    nsdgeneral = []
    for S, lab in zip(smoothers, streams_labels, strict=True):
        general = lab > 0
        for _ in range(max(1, int(round(np.sqrt(scale))))):
            general = S.dilate(general)
        nsdgeneral.append(general)
    labels_all = np.concatenate(streams_labels)
    general_all = np.concatenate(nsdgeneral)
    dead = []
    for hi in range(2):
        candidates = np.flatnonzero(~nsdgeneral[hi]) + hi * n_v
        dead.append(np.sort(rng_anat.choice(candidates, n_dead_vertices, replace=False)))
    dead = np.concatenate(dead).astype(np.int64)

    out_fs = out / "nsddata" / "freesurfer" / "fsaverage"
    write_ctab(out_fs / "label" / "streams.mgz.ctab", anat.STREAMS)
    write_ctab(out_fs / "label" / "nsdgeneral.mgz.ctab", {1: "nsdgeneral"})
    for hi, hemi in enumerate(HEMIS):
        fh = "lh" if hemi == "left" else "rh"
        write_mgh(out_fs / "label" / f"{fh}.streams.mgz", streams_labels[hi].astype(np.int32))
        write_mgh(out_fs / "label" / f"{fh}.nsdgeneral.mgz", nsdgeneral[hi].astype(np.int32))
        write_mgh(out_fs / "surf" / f"{fh}.w-g.pct.mgh", np.zeros(n_v, dtype=np.float32))
        _write_geometry(out_fs / "surf" / f"{fh}.pial", meshes["pial"][hemi])
        _write_geometry(out_fs / "surf" / f"{fh}.white", meshes["white"][hemi])

    # ---- planted signal: representation -> smooth voxel weights -> per-vertex signal
    reps_std = {name: _standardise(X) for name, X in scenes.representations.items()}
    needed = sorted({n for mix in anat.ROI_REPRESENTATIONS.values() for n in mix})
    missing = [n for n in needed if n not in reps_std]
    if missing:
        raise InputError(
            f"scenes.representations: missing {missing}; the planted truth needs {needed}"
        )
    in_roi = labels_all > 0
    roi_vertices = np.flatnonzero(in_roi)
    ncsnr = np.zeros(2 * n_v)
    field = np.concatenate([S.fields(1, 10, rng_truth)[:, 0] for S in smoothers])
    ncsnr[in_roi] = snr * np.exp(0.3 * field[in_roi])
    # voxel weights are random combinations of a bank of smooth fields: smooth on the mesh,
    # and cheap to draw per subject and representation
    n_basis = 64
    basis = np.concatenate([S.fields(n_basis, 8, rng_truth) for S in smoothers])
    basis = basis[roi_vertices] / np.sqrt(n_basis)  # (n_roi, K)
    shared_coef = {
        name: rng_truth.standard_normal((n_basis, reps_std[name].shape[1])) for name in needed
    }

    def subject_signal(rng, rows):
        """(len(rows), 2V) float32 unit-variance signal (zero outside ROIs) for one subject."""
        signal = np.zeros((len(rows), 2 * n_v), dtype=np.float32)
        parts = {}
        for name in needed:
            C = np.sqrt(1 - individual_variation) * shared_coef[name]
            C = C + np.sqrt(individual_variation) * rng.standard_normal(C.shape)
            Pm = (reps_std[name][rows] @ C.T) @ basis.T  # (n_rows, n_roi)
            parts[name] = Pm / Pm.std(axis=0)
        roi_of = labels_all[roi_vertices]
        mixed = np.zeros((len(rows), len(roi_vertices)))
        for k, roi in anat.STREAMS.items():
            cols = roi_of == k
            for name, w in anat.ROI_REPRESENTATIONS[roi].items():
                mixed[:, cols] += np.sqrt(w) * parts[name][:, cols]
        mixed /= mixed.std(axis=0)
        signal[:, roi_vertices] = mixed
        return signal

    # ---- per subject: betas, volume, ROI volumes, transforms
    truth_subjects = {}
    noise_seeds = np.random.SeedSequence(random_state + 1_000_003).spawn(n_subjects)
    bar = progress(range(1, n_subjects + 1), desc="virtual NSD subjects", verbose=verbose)
    for s in bar:
        rng = np.random.default_rng(noise_seeds[s - 1])
        pool_idx = subj_trials[s]
        # signal rows follow the subject's 10k order; trials index them through their 10k index
        rows = subject_pool[s - 1]
        signal = subject_signal(rng, rows)
        local = master[: len(pool_idx)] - 1  # row of each trial in ``signal``
        n_sess = sessions_per_subject[s - 1]
        info = {
            "n_sessions": n_sess,
            "session_size": session_size,
            "n_trials": int(len(pool_idx)),
        }
        counts = np.bincount(pool_idx, minlength=n_total)
        info["n_images_seen"] = int((counts > 0).sum())
        info["n_images_3x"] = int((counts == 3).sum())
        beta_root = out / "nsddata_betas" / "ppdata" / _subj(s)
        if "fsaverage" in spaces:
            fs_beta = beta_root / "fsaverage" / BETAS_VERSION
            for hi, fh in enumerate(("lh", "rh")):
                write_mgh(fs_beta / f"{fh}.ncsnr.mgh", ncsnr[hi * n_v : (hi + 1) * n_v])
            gain = np.exp(rng.normal(0, session_gain_sd, (n_sess, 2 * n_v)))
            offset = rng.normal(0, session_offset_sd, (n_sess, 2 * n_v))
            for i in range(n_sess):
                trial_rows = local[i * session_size : (i + 1) * session_size]
                y = signal[trial_rows] * ncsnr.astype(np.float32)
                y += rng.standard_normal(y.shape, dtype=np.float32)
                betas = psc_scale * (gain[i] * y + offset[i])
                betas[:, dead] = 0.0
                betas = betas.astype(np.float32).T  # (2V, T)
                for hi, fh in enumerate(("lh", "rh")):
                    write_mgh(
                        fs_beta / f"{fh}.betas_session{i + 1:02d}.mgh",
                        betas[hi * n_v : (hi + 1) * n_v],
                    )
        vol_info = _write_volume_subject(
            out,
            s,
            meshes,
            labels_all,
            general_all,
            signal,
            ncsnr,
            local,
            n_sess,
            session_size,
            voxel_size,
            session_gain_sd,
            session_offset_sd,
            psc_scale,
            rng,
            write_betas="func1pt8mm" in spaces,
        )
        info.update(vol_info)
        truth_subjects[str(s)] = info

    # ---- stimuli: HDF5 imgBrick, shared1000 PNGs, COCO json
    _write_stimuli(out, scenes, pool_ids, shared_pool, coco_ids, coco_splits, compress_images)

    # ---- truth
    counts3 = []
    for s in range(1, n_subjects + 1):
        c = np.bincount(subj_trials[s], minlength=n_total)
        counts3.append(c[shared_pool] == 3)
    special = np.sort(pool_ids[shared_pool][np.all(counts3, axis=0)])
    rois_truth = {}
    for k, roi in anat.STREAMS.items():
        rois_truth[roi] = {
            "label": k,
            "representations": anat.ROI_REPRESENTATIONS[roi],
            "n_vertices": [int((lab == k).sum()) for lab in streams_labels],
        }
    truth = {
        "format": "brainalign.virtual_nsd",
        "version": 1,
        "random_state": random_state,
        "parameters": {
            "n_subjects": n_subjects,
            "n_shared": n_shared,
            "n_unique": n_unique,
            "n_sessions": n_sessions,
            "session_size": session_size,
            "sessions_per_subject": sessions_per_subject,
            "n_runs": n_runs,
            "spaces": list(spaces),
            "voxel_size": voxel_size,
            "mesh": mesh,
            "atlas": None if atlas is None else {k: str(v) for k, v in atlas.items()},
        },
        "mesh": mesh,
        "n_vertices_per_hemisphere": n_v,
        "rois": rois_truth,
        "null_region": {
            "description": "cortex outside the streams ROIs: noise only (no planted signal)",
            "n_vertices": [int((lab == 0).sum()) for lab in streams_labels],
        },
        "nsdgeneral": {
            "description": "streams ROIs dilated by one ring; the ring carries noise only",
            "n_vertices": [int(g.sum()) for g in nsdgeneral],
        },
        "representations": {
            name: {"dim": int(X.shape[1]), "npz_key": f"representation_{name}"}
            for name, X in scenes.representations.items()
        },
        "noise": {
            "trial_noise_sd": 1.0,
            "snr_median": snr,
            "snr_spatial_log_sd": 0.3,
            "ncsnr_meaning": "signal SD / trial-noise SD per vertex before session gain/offset",
            "individual_variation": individual_variation,
            "session_gain_log_sd": session_gain_sd,
            "session_offset_sd": session_offset_sd,
            "psc_scale": psc_scale,
            "volume": "each cortical voxel copies its tied vertex's signal with its own noise",
        },
        "dead_vertices": dead.tolist(),
        "shared_nsd_ids": (sharedix - 1).tolist(),
        "special_nsd_ids": special.tolist(),
        "stimuli": stim_source,
        "subjects": truth_subjects,
        "npz": "virtual_truth.npz",
    }
    order = np.argsort(pool_ids)
    arrays = {
        "nsd_ids": pool_ids[order].astype(np.int64),
        "scene_index": order.astype(np.int64),
        "streams_labels": labels_all.astype(np.int16),
        "nsdgeneral": general_all,
        "ncsnr": ncsnr.astype(np.float32),
        "dead_vertices": dead,
    }
    for name, X in scenes.representations.items():
        arrays[f"representation_{name}"] = np.asarray(X, dtype=np.float32)[order]
    _save_npz(out / "virtual_truth.npz", arrays)
    atomic_write_json(out / "virtual_truth.json", truth)


def _anatomy(mesh, fs_dir, atlas):
    """Meshes (pial, white), streams labels per hemisphere, smoothers and the smoothing scale.

    fsaverage5 comes from nilearn unless ``fs_dir`` is given. Without an atlas, the ROIs grow
    from the fsaverage5 landmarks (valid vertex indices at every resolution, since fsaverage
    meshes are nested) to NSD-like sizes scaled by the resolution.
    """
    from brainalign.datasets.surfaces import (
        FSAVERAGE_SIZES,
        HEMIS,
        load_fsaverage,
        load_surface_atlas,
    )

    if mesh not in ("fsaverage5", "fsaverage"):
        raise InputError(f"mesh: expected 'fsaverage5' or 'fsaverage', got {mesh!r}")
    if mesh == "fsaverage" and fs_dir is None:
        raise InputError(
            "mesh='fsaverage' needs fs_dir= (a FreeSurfer fsaverage folder with "
            "surf/{lh,rh}.{pial,white}); nilearn only ships fsaverage5 offline"
        )
    meshes = {s: load_fsaverage(mesh, s, fs_dir=fs_dir) for s in ("pial", "white")}
    n_v = meshes["pial"]["left"].n_vertices
    # vertices per fsaverage5 vertex (ROI sizes scale with it)
    scale = max(1, round(n_v / FSAVERAGE_SIZES["fsaverage5"]))
    smoothers = [anat.MeshSmoother(meshes["pial"][h]) for h in HEMIS]
    labels = []
    if atlas is None:
        seeds_order = [anat.STREAMS[k] for k in sorted(anat.STREAMS)]
        sizes = {k: v * scale for k, v in anat.ROI_SIZES.items()}
        for hi, hemi in enumerate(HEMIS):
            lab = anat.grow_rois(
                meshes["pial"][hemi], {n: anat.LANDMARKS[n][hi] for n in seeds_order}, sizes
            )  # labels follow seeds_order = streams ids 1..7
            labels.append(lab)
        return meshes, labels, smoothers, scale
    if not isinstance(atlas, dict) or not {"lh", "rh"} <= set(atlas):
        raise InputError(
            "atlas: expected a dict {'lh': path, 'rh': path[, 'rois': {roi: [label ids]}]}, "
            f"got {atlas!r}"
        )
    rois = atlas.get("rois")
    for fh in ("lh", "rh"):
        raw, names = load_surface_atlas(atlas[fh])
        if len(raw) < n_v:
            raise InputError(f"atlas[{fh!r}]: {len(raw)} labels for a mesh of {n_v} vertices")
        raw = raw[:n_v]  # nested meshes: a finer atlas subsamples by its first vertices
        mapping = rois
        if mapping is None:
            by_name = {v: k for k, v in names.items()}
            missing = [r for r in anat.STREAMS.values() if r not in by_name]
            if missing:
                raise InputError(
                    f"atlas[{fh!r}]: its label table lacks {missing}; give atlas['rois'] = "
                    "{roi: [label ids]} for the streams ROIs"
                )
            mapping = {r: [by_name[r]] for r in anat.STREAMS.values()}
        unknown = [r for r in mapping if r not in anat.STREAMS.values()]
        if unknown:
            raise InputError(
                f"atlas['rois']: unknown ROI names {unknown}; use {list(anat.STREAMS.values())}"
            )
        lab = np.zeros(n_v, dtype=np.int16)
        for k, roi in anat.STREAMS.items():
            ids = mapping.get(roi, [])
            clash = (lab > 0) & np.isin(raw, ids)
            if clash.any():
                raise InputError(
                    f"atlas['rois']: {roi!r} overlaps another ROI; ROIs must be disjoint"
                )
            lab[np.isin(raw, ids)] = k
        labels.append(lab)
    return meshes, labels, smoothers, scale


def _coco_identity(scenes, pool_ids, rng):
    """COCO id and split of each pool image (real ones for COCO-folder scenes)."""
    n = len(pool_ids)
    coco_ids = np.empty(n, dtype=np.int64)
    splits = np.empty(n, dtype=object)
    draw = rng.uniform(size=n)
    for i in range(n):
        scene = scenes.scenes[i] if i < len(scenes.scenes) else {}
        cid = scene.get("coco_id") if isinstance(scene, dict) else None
        coco_ids[i] = int(cid) if cid is not None else 100_000 + int(pool_ids[i])
        split = scene.get("split") if isinstance(scene, dict) else None
        splits[i] = (
            split
            if split in ("train2017", "val2017")
            else ("val2017" if draw[i] < 0.25 else "train2017")
        )
    if len(np.unique(coco_ids)) != n:
        raise InputError("scenes: duplicate coco_id values; every image needs its own COCO id")
    return coco_ids, splits


def _write_geometry(path, mesh):
    from nibabel.freesurfer import write_geometry

    with atomic_path(path, suffix="") as tmp:
        write_geometry(
            str(tmp), mesh.coords, mesh.faces, create_stamp="created by brainalign virtual NSD"
        )


def _write_volume_subject(
    out,
    s,
    meshes,
    labels_all,
    general_all,
    signal,
    ncsnr,
    trial_rows_all,
    n_sess,
    session_size,
    voxel_size,
    gain_sd,
    offset_sd,
    psc_scale,
    rng,
    write_betas,
):
    """Volume space of one subject: grid, mask, ROI volumes, transforms and int16 betas."""
    from brainalign.datasets.surfaces import HEMIS

    pial = np.concatenate([meshes["pial"][h].coords for h in HEMIS])
    white = np.concatenate([meshes["white"][h].coords for h in HEMIS])
    mid = 0.5 * (pial + white)
    grid = anat.make_volume_grid(mid, voxel_size, rng)
    n_v = len(pial) // 2
    zooms = (voxel_size,) * 3
    pp = out / "nsddata" / "ppdata" / _subj(s) / "func1pt8mm"
    write_nifti(pp / "brainmask.nii.gz", grid.mask.astype(np.int16), grid.affine, zooms)
    tied = grid.tied_vertex
    cortex = tied >= 0
    for stem, values in (("streams", labels_all), ("nsdgeneral", general_all.astype(np.int16))):
        for prefix, hemi_ok in (("", None), ("lh.", 0), ("rh.", 1)):
            vol = np.full(grid.shape, -1, dtype=np.int16)
            lab = values[np.where(cortex, tied, 0)]
            if hemi_ok is not None:
                lab = np.where((tied // n_v) == hemi_ok, lab, 0)
            vol[cortex] = lab[cortex]
            write_nifti(pp / "roi" / f"{prefix}{stem}.nii.gz", vol, grid.affine, zooms)
    tr = out / "nsddata" / "ppdata" / _subj(s) / "transforms"
    for hi, fh in enumerate(("lh", "rh")):
        sl = slice(hi * n_v, (hi + 1) * n_v)
        for k, frac in ((1, 0.25), (2, 0.5), (3, 0.75)):
            pos = pial[sl] + frac * (white[sl] - pial[sl])  # layerBk: k/4 of the way pial→white
            coords = grid.world_to_voxel(pos) + 1.0  # nsdcode: 1-based decimal voxel coords
            coords[rng.choice(n_v, 3, replace=False)] = 9999.0
            write_mgh(tr / f"{fh}.func1pt8-to-layerB{k}.mgz", coords.astype(np.float32))
        ident = np.arange(1, n_v + 1, dtype=np.int32)
        write_mgh(tr / f"{fh}.white-to-fsaverage.mgz", ident)
        write_mgh(tr / f"{fh}.fsaverage-to-white.mgz", ident)

    mask_idx = np.flatnonzero(grid.mask.ravel())
    tied_m = tied.ravel()[mask_idx]
    vox_ncsnr = np.where(tied_m >= 0, ncsnr[np.maximum(tied_m, 0)], 0.0).astype(np.float32)
    nc_vol = np.zeros(grid.shape, dtype=np.float32)
    nc_vol.ravel()[mask_idx] = vox_ncsnr
    beta_dir = out / "nsddata_betas" / "ppdata" / _subj(s) / "func1pt8mm" / BETAS_VERSION
    write_nifti(beta_dir / "ncsnr.nii.gz", nc_vol, grid.affine, zooms)
    if write_betas:
        n_mask = len(mask_idx)
        gain = np.exp(rng.normal(0, gain_sd, (n_sess, n_mask)))
        offset = rng.normal(0, offset_sd, (n_sess, n_mask))
        sig_cols = np.maximum(tied_m, 0)
        for i in range(n_sess):
            trial_rows = trial_rows_all[i * session_size : (i + 1) * session_size]
            y = signal[np.ix_(trial_rows, sig_cols)] * vox_ncsnr
            y += rng.standard_normal(y.shape, dtype=np.float32)
            psc = psc_scale * (gain[i] * y + offset[i])
            raw = np.clip(np.rint(psc * 300.0), -32768, 32767).astype(np.int16)
            vol = np.zeros((int(np.prod(grid.shape)), session_size), dtype=np.int16)
            vol[mask_idx] = raw.T
            write_nifti(
                beta_dir / f"betas_session{i + 1:02d}.nii.gz",
                vol.reshape(grid.shape + (session_size,)),
                grid.affine,
                zooms + (1.3333,),
            )
    return {"volume_shape": list(grid.shape), "n_mask_voxels": int(grid.mask.sum())}


def _write_stimuli(out, scenes, pool_ids, shared_pool, coco_ids, coco_splits, compress):
    import h5py
    from PIL import Image

    stim_dir = out / "nsddata_stimuli" / "stimuli" / "nsd"
    path = stim_dir / "nsd_stimuli.hdf5"
    order = np.argsort(pool_ids)
    batch = 64
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver="earliest") as f:
            opts = {"compression": "gzip", "compression_opts": 1} if compress else {}
            ds = f.create_dataset(
                "imgBrick",
                shape=(N_POOL, IMAGE_SIZE, IMAGE_SIZE, 3),
                dtype=np.uint8,
                chunks=(1, IMAGE_SIZE, IMAGE_SIZE, 3),
                fillvalue=0,
                track_times=False,
                **opts,
            )
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                imgs = scenes.render(idx, size=IMAGE_SIZE)
                for j, i in enumerate(idx):
                    ds[int(pool_ids[i])] = imgs[j]
    png_dir = out / "nsddata" / "stimuli" / "nsd" / "shared1000"
    shared_imgs = scenes.render(shared_pool, size=IMAGE_SIZE)
    for k, (i, img) in enumerate(zip(shared_pool, shared_imgs, strict=True), start=1):
        name = png_dir / f"shared{k:04d}_nsd{int(pool_ids[i]) + 1:05d}.png"
        with atomic_path(name) as tmp:
            Image.fromarray(img).save(tmp, format="PNG")

    ann_dir = stim_dir / "annotations"
    names = list(scenes.category_names)
    cats = [{"id": c + 1, "name": n, "supercategory": "scene"} for c, n in enumerate(names)]
    for split in ("train2017", "val2017"):
        members = [i for i in order if coco_splits[i] == split]
        images = [
            {
                "id": int(coco_ids[i]),
                "file_name": f"{int(coco_ids[i]):012d}.jpg",
                "height": IMAGE_SIZE,
                "width": IMAGE_SIZE,
            }
            for i in members
        ]
        captions, instances = [], []
        for i in members:
            for cap in scenes.captions[i]:
                captions.append(
                    {"image_id": int(coco_ids[i]), "id": len(captions) + 1, "caption": cap}
                )
            for c in np.flatnonzero(scenes.categories[i]):
                instances.append(
                    {
                        "image_id": int(coco_ids[i]),
                        "id": len(instances) + 1,
                        "category_id": int(c) + 1,
                        "bbox": [0.0, 0.0, float(IMAGE_SIZE), float(IMAGE_SIZE)],
                        "area": float(IMAGE_SIZE * IMAGE_SIZE),
                        "iscrowd": 0,
                        "segmentation": [],
                    }
                )
        info = {"description": "brainalign virtual NSD (COCO format)", "version": "1.0"}
        for kind, anns, extra in (
            ("captions", captions, {}),
            ("instances", instances, {"categories": cats}),
        ):
            doc = {"info": info, "licenses": [], "images": images, "annotations": anns, **extra}
            with atomic_path(ann_dir / f"{kind}_{split}.json") as tmp:
                tmp.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")


__all__ = ["make_virtual_nsd"]
