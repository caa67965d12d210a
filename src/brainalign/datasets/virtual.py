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
  fsaverage surfaces under ``surf/`` (``{lh,rh}.{pial,white}``, or ``{lh,rh}.sphere`` when a
  sphere stood in for them);
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

Memory: the signal is kept in factored form (images × a few hundred factors, factors × ROI
vertices, normalised analytically over all of a subject's images) and each session's trials are
built when that session is written, so the writer holds one session's betas (750 × 327,684
float32 ≈ 1 GB on full fsaverage), never an images × vertices array.
"""

from __future__ import annotations

import functools
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainalign import __version__
from brainalign.datasets import _anatomy as anat
from brainalign.datasets import _nsdpaths as P
from brainalign.datasets._formats import load_mat, write_ctab, write_mat, write_mgh, write_nifti
from brainalign.datasets._training_pool import POOL_FOLDER, write_training_pool
from brainalign.datasets.base import STREAMS_LABELS, STREAMS_ROIS
from brainalign.datasets.coco import load_coco_folder, write_coco_annotations
from brainalign.datasets.scenes import make_scenes
from brainalign.datasets.surfaces import (
    FSAVERAGE_SIZES,
    HEMI_NAMES,
    HEMIS,
    find_fsaverage_surface,
    load_fsaverage,
    load_surface_atlas,
)
from brainalign.errors import DataFormatError, InputError
from brainalign.utils.disk import storage_errors
from brainalign.utils.io import atomic_path, atomic_write_json
from brainalign.utils.owned import building
from brainalign.utils.progress import progress

N_POOL = 73000
IMAGE_SIZE = 425
#: NSD's completed sessions relative to the full 40 (subj01..08: 40 40 32 30 40 32 40 30)
NSD_SESSION_FRACTIONS = (1.0, 1.0, 0.8, 0.75, 1.0, 0.8, 1.0, 0.75)
TSV_COLUMNS = [
    "SUBJECT", "SESSION", "RUN", "TRIAL", "73KID", "10KID", "TIME", "ISOLD", "ISCORRECT", "RT",
    "CHANGEMIND", "MEMORYRECENT", "MEMORYFIRST", "ISOLDCURRENT", "ISCORRECTCURRENT", "TOTAL1",
    "TOTAL2", "BUTTON", "MISSINGDATA",
]  # fmt: skip
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _check_positive_int(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name}: expected an integer ≥ {minimum}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class _Options:
    """:func:`make_virtual_nsd`'s arguments, checked and normalised (see its docstring)."""

    n_subjects: int
    n_shared: int
    n_unique: int
    n_sessions: int
    sessions_per_subject: tuple[int, ...]
    n_runs: int
    spaces: tuple[str, ...]
    voxel_size: float
    mesh: str
    fs_dir: str | os.PathLike | None
    atlas: dict | None
    snr: float
    individual_variation: float
    session_gain_sd: float
    session_offset_sd: float
    psc_scale: float
    n_dead_vertices: int
    coco_folder: str | os.PathLike | None
    coco_caption_files: tuple
    compress_images: bool
    random_state: int

    @property
    def n_per(self) -> int:
        """Images per subject (the 10k indices): shared + unique."""
        return self.n_shared + self.n_unique

    @property
    def n_total(self) -> int:
        """Images of the pool: shared + every subject's unique ones."""
        return self.n_shared + self.n_subjects * self.n_unique

    @property
    def session_size(self) -> int:
        return 3 * self.n_per // self.n_sessions


def _check_options(
    *,
    n_subjects, n_shared, n_unique, n_sessions, sessions_per_subject, n_runs, spaces,
    voxel_size, mesh, fs_dir, atlas, snr, individual_variation, session_gain_sd,
    session_offset_sd, psc_scale, n_dead_vertices, coco_folder, coco_caption_files,
    compress_images, random_state,
) -> _Options:  # fmt: skip
    """Check :func:`make_virtual_nsd`'s arguments (raise :class:`InputError` naming them)."""
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
        raise InputError(
            "mesh='fsaverage' needs fs_dir= (a FreeSurfer fsaverage folder with "
            "surf/{lh,rh}.{pial,white}, or a folder holding an fsaverage-topology sphere "
            "{lh,rh}.*sphere.reg such as neuropythy's fsaverage folder); nilearn only ships "
            "fsaverage5 offline"
        )
    if fs_dir is not None:  # DataFormatError naming the folder and the files it should hold
        lacking = [name for name, f in _surface_files(fs_dir).items() if f.stand_in]
        if lacking and "func1pt8mm" in spaces:
            raise InputError(
                f"spaces: 'func1pt8mm' places its voxels between the pial and white surfaces, "
                f"but fs_dir {fs_dir} has no surf/{{lh,rh}}.{{{','.join(lacking)}}} (only a "
                "sphere); use spaces=('fsaverage',), or point fs_dir at a FreeSurfer fsaverage "
                "folder with surf/{lh,rh}.{pial,white}"
            )
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
    sessions_per_subject = _check_sessions(sessions_per_subject, n_subjects, n_sessions)
    return _Options(
        n_subjects=n_subjects, n_shared=n_shared, n_unique=n_unique, n_sessions=n_sessions,
        sessions_per_subject=sessions_per_subject, n_runs=n_runs, spaces=tuple(spaces),
        voxel_size=float(voxel_size), mesh=mesh, fs_dir=fs_dir, atlas=atlas, snr=float(snr),
        individual_variation=float(individual_variation),
        session_gain_sd=float(session_gain_sd), session_offset_sd=float(session_offset_sd),
        psc_scale=float(psc_scale), n_dead_vertices=int(n_dead_vertices),
        coco_folder=coco_folder, coco_caption_files=tuple(coco_caption_files),
        compress_images=compress_images, random_state=int(random_state),
    )  # fmt: skip


def _check_sessions(sessions_per_subject, n_subjects: int, n_sessions: int) -> tuple[int, ...]:
    """Completed sessions per subject (default: NSD's pattern scaled to ``n_sessions``)."""
    if sessions_per_subject is None:
        sessions_per_subject = [
            max(1, int(np.floor(n_sessions * NSD_SESSION_FRACTIONS[i % 8] + 0.5)))
            for i in range(n_subjects)
        ]
    sessions = tuple(int(x) for x in sessions_per_subject)
    if len(sessions) != n_subjects or not all(1 <= x <= n_sessions for x in sessions):
        raise InputError(
            f"sessions_per_subject: expected {n_subjects} values in 1..{n_sessions}, "
            f"got {list(sessions)}"
        )
    return sessions


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
    n_training_pool: int = 0,
    overwrite: bool = False,
    reuse: bool = False,
    random_state: int = 0,
    verbose: bool | None = None,
) -> Path:
    """Write a virtual NSD under ``root`` (NSD's layout, planted ground truth).

    Parameters
    ----------
    root : path
        Output folder. It must not exist or be empty (unless ``overwrite``). The dataset is
        built in a sibling folder (``.<name>.partial-<pid>``) under a lock (a second build of
        the same ``root`` waits) and renamed into place, so a killed run leaves nothing
        half-written under ``root``; partial folders of killed builds are removed.
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
        Which beta spaces to write. ``"func1pt8mm"`` needs pial and white surfaces (nilearn's
        fsaverage5, or ``fs_dir`` with ``surf/{lh,rh}.{pial,white}``).
    voxel_size : float
        Voxel size (mm) of the small volume standing in for func1pt8mm.
    mesh : {"fsaverage5", "fsaverage"}
        Surface resolution of the fsaverage betas. fsaverage5 (10,242 vertices per hemisphere)
        comes from nilearn; full fsaverage (163,842) needs ``fs_dir``.
    fs_dir : path, optional
        Where the meshes come from: a FreeSurfer fsaverage folder (``surf/{lh,rh}.{pial,white}``),
        or a folder holding an fsaverage-topology sphere per hemisphere (``{lh,rh}.*sphere.reg``
        such as neuropythy's fsaverage folder, or ``surf/{lh,rh}.sphere(.reg)``; see
        :func:`~brainalign.datasets.surfaces.find_fsaverage_surface`). The virtual data only
        need fsaverage's topology: **when the folder lacks pial/white, the sphere stands in for
        them** (ROIs grow and voxel weights are smoothed on the sphere; the dataset's
        ``surf/`` then holds ``{lh,rh}.sphere`` and ``virtual_truth.json["surfaces"]`` says
        so), and no volume is written (``spaces`` must be ``("fsaverage",)``).
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
    n_training_pool : int
        Also write ``training_pool/``: this many extra scenes that no subject sees, in COCO's
        layout (``train2017/*.png``, ``annotations/{captions,instances}_train2017.json``), for
        training networks on images that are never evaluated (as the paper trained on COCO
        minus NSD). Their COCO ids are disjoint from every NSD image's.
    overwrite : bool
        Replace an existing non-empty ``root`` — only a virtual NSD that brainalign wrote and
        that holds no other file (its ``.brainalign.json`` lists every file); any other
        non-empty folder raises :class:`InputError` naming the files brainalign did not write.
    reuse : bool
        Keep an existing complete virtual NSD at ``root`` made by this code with the same
        arguments (its manifest records them) instead of rebuilding it.
    random_state : int
        Seed; the same arguments and seed give byte-identical files.
    verbose : bool, optional
        Progress bar (default: when attached to a terminal).

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    opts = _check_options(
        n_subjects=n_subjects, n_shared=n_shared, n_unique=n_unique, n_sessions=n_sessions,
        sessions_per_subject=sessions_per_subject, n_runs=n_runs, spaces=spaces,
        voxel_size=voxel_size, mesh=mesh, fs_dir=fs_dir, atlas=atlas, snr=snr,
        individual_variation=individual_variation, session_gain_sd=session_gain_sd,
        session_offset_sd=session_offset_sd, psc_scale=psc_scale,
        n_dead_vertices=n_dead_vertices, coco_folder=coco_folder,
        coco_caption_files=coco_caption_files, compress_images=compress_images,
        random_state=random_state,
    )  # fmt: skip
    root = Path(root)
    _check_positive_int("n_training_pool", n_training_pool, minimum=0)
    # built beside root under a lock, then renamed into place; only a folder that holds
    # nothing but a virtual NSD brainalign wrote is ever replaced (utils/owned.py). A full disk
    # or a read-only folder is one WriteError naming the file (the partial folder is removed)
    with (
        storage_errors(root, _BUILD_HINT),
        building(
            root,
            "virtual_nsd",
            overwrite=overwrite,
            arguments=_arguments_record(opts, scenes, n_training_pool),
            reuse=reuse and scenes is None,
            legacy=LEGACY_LAYOUT,
            what="a virtual NSD",
        ) as build,
    ):
        if build is None:  # reuse: the same virtual NSD is already there
            return root
        _build(build, opts, scenes, verbose)
        if n_training_pool:
            write_training_pool(build / POOL_FOLDER, n_training_pool, random_state)
    return root


#: what to do when the virtual NSD cannot be written (completes the message)
_BUILD_HINT = (
    "choose a root on a disk with more room that you can write (virtual_nsd_disk_bytes() "
    "estimates what it needs)"
)
#: extent (mm) of fsaverage's mid-thickness surface, a little rounded up: the volume grid's box
_BRAIN_EXTENT_MM = (140.0, 175.0, 130.0)


def virtual_nsd_disk_bytes(n_subjects: int = 8, **kwargs) -> int:
    """Disk bytes :func:`make_virtual_nsd` with these arguments will write (an upper bound).

    Takes :func:`make_virtual_nsd`'s arguments (without ``root``); checks them the same way and
    builds nothing (for ``--dry-run``). The build needs this much free beside ``root`` (it is
    written into a sibling folder, then renamed).

    Returns
    -------
    int
        The fsaverage betas (float32, trials × vertices per session), the func1pt8mm betas as
        if uncompressed (int16 over the volume's box), the image brick and the shared PNGs as
        if uncompressed (425 × 425 × 3 bytes per image), plus 16 MiB and 10 % for the small
        files (design, tables, labels, surfaces, truth).
    """
    import inspect

    extra = {"n_training_pool", "overwrite", "reuse", "verbose", "scenes"}
    bound = inspect.signature(make_virtual_nsd).bind("root", n_subjects, **kwargs)
    bound.apply_defaults()
    args = {k: v for k, v in bound.arguments.items() if k != "root" and k not in extra}
    opts = _check_options(**args)
    n_pool = _check_positive_int("n_training_pool", bound.arguments["n_training_pool"], 0)
    trials = sum(opts.sessions_per_subject) * opts.session_size
    n_v = 2 * FSAVERAGE_SIZES[opts.mesh]
    total = 0
    if "fsaverage" in opts.spaces:
        total += trials * n_v * 4
    if "func1pt8mm" in opts.spaces:
        box = np.prod([e / opts.voxel_size + 6 for e in _BRAIN_EXTENT_MM])
        total += int(trials * box * 2)
    image = IMAGE_SIZE * IMAGE_SIZE * 3
    total += (opts.n_total + opts.n_shared + n_pool) * image
    return int(total * 1.1) + (16 << 20)


#: top-level entries of a virtual NSD written before folders carried a manifest (and its marker)
LEGACY_LAYOUT = (
    (
        "nsddata", "nsddata_betas", "nsddata_stimuli", "virtual_truth.json",
        "virtual_truth.npz", "training_pool",
    ),
    ("virtual_truth.json",),
)  # fmt: skip


def _arguments_record(opts: _Options, scenes, n_training_pool: int) -> dict | None:
    """What a virtual NSD was made from (stored in its manifest; equal records, equal bytes):
    the checked arguments and a hash of the code that writes it. None for custom ``scenes``."""
    if scenes is not None:
        return None
    from dataclasses import asdict

    args = json.loads(json.dumps(asdict(opts), default=str, sort_keys=True))
    return {"arguments": args, "n_training_pool": int(n_training_pool), "code": _code_hash()}


def _code_hash() -> str:
    """sha256 of the sources of :mod:`brainalign.datasets` (the writer and its helpers)."""
    import hashlib

    h = hashlib.sha256(__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def _build(out: Path, opts: _Options, scenes, verbose) -> None:
    """Write every file of the dataset under ``out``."""
    seeds = np.random.SeedSequence(opts.random_state).spawn(8)
    rng_design, rng_anat, rng_truth, rng_behav, _, rng_misc, _, _ = (
        np.random.default_rng(s) for s in seeds
    )
    scenes, stim_source = _load_stimulus_set(
        scenes, opts.coco_folder, opts.coco_caption_files, opts.n_total, opts.random_state
    )
    design = _make_design(opts, rng_design)
    _write_design(out, design)
    trials, reps = _write_behaviour(out, opts, design, rng_behav)
    coco_ids, coco_splits = _coco_identity(scenes, design.pool_ids, rng_misc)
    _write_stim_info(out, opts, design, reps, coco_ids, coco_splits)
    anatomy = _surface_anatomy(opts, rng_anat)
    _write_fsaverage(out, anatomy)
    planted = _plant_signal(opts, scenes, anatomy, rng_truth)
    subjects = _write_subjects(out, opts, design, anatomy, planted, trials, verbose)
    _write_stimuli(
        out, scenes, design.pool_ids, design.shared_pool, coco_ids, coco_splits,
        opts.compress_images,
    )  # fmt: skip
    truth = _truth_document(opts, design, anatomy, scenes, trials, stim_source, subjects)
    _save_npz(out / "virtual_truth.npz", _truth_arrays(design, anatomy, planted, scenes))
    atomic_write_json(out / "virtual_truth.json", truth)


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


@dataclass(frozen=True)
class _Design:
    """Which images exist, who sees which, and in what order (NSD's experimental design)."""

    pool_ids: np.ndarray  # 0-based NSD id of each pool image (scene i is image pool_ids[i])
    shared_pool: np.ndarray  # pool indices of the shared images (ascending id)
    subject_pool: np.ndarray  # (n_subjects, n_per): pool index of each subject's 10k index
    master: np.ndarray  # masterordering: 1-based 10k index of every trial
    runs: np.ndarray  # stimulus trials per run
    stimpattern: np.ndarray
    basiccnt: np.ndarray

    @property
    def sharedix(self) -> np.ndarray:
        """1-based 73k ids of the shared images, ascending."""
        return self.pool_ids[self.shared_pool] + 1

    @property
    def subjectim(self) -> np.ndarray:
        """1-based 73k id of each subject's 10k index."""
        return self.pool_ids[self.subject_pool] + 1


def _make_design(opts: _Options, rng: np.random.Generator) -> _Design:
    pool_ids = np.sort(rng.choice(N_POOL, opts.n_total, replace=False))
    perm = rng.permutation(opts.n_total)
    shared_pool = np.sort(perm[: opts.n_shared])
    unique_pool = perm[opts.n_shared :].reshape(opts.n_subjects, opts.n_unique)
    subject_pool = np.concatenate(
        [np.broadcast_to(shared_pool, (opts.n_subjects, opts.n_shared)), unique_pool], axis=1
    )
    master = _master_ordering(opts.n_per, rng)
    session_size = opts.session_size
    runs = _run_sizes(session_size, opts.n_runs)
    max_run = int(runs.max())
    n_slots = max_run + max(1, max_run // 5)
    stimpattern = np.zeros((opts.n_sessions, len(runs), n_slots))
    for i in range(opts.n_sessions):
        for r, k in enumerate(runs):
            stimpattern[i, r, np.sort(rng.choice(n_slots, k, replace=False))] = 1
    seen_before = np.zeros(opts.n_per, dtype=bool)
    basiccnt = np.zeros((3, opts.n_sessions))
    for i in range(opts.n_sessions):
        block = master[i * session_size : (i + 1) * session_size] - 1
        novel = 0
        for k in block:
            novel += not seen_before[k]
            seen_before[k] = True
        basiccnt[:, i] = [novel, session_size - novel, stimpattern[i].size - session_size]
    return _Design(pool_ids, shared_pool, subject_pool, master, runs, stimpattern, basiccnt)


def _write_design(out: Path, design: _Design) -> None:
    write_mat(
        P.expdesign(out),
        {
            "masterordering": design.master[None, :].astype(np.float64),
            "subjectim": design.subjectim.astype(np.float64),
            "sharedix": design.sharedix[None, :].astype(np.float64),
            "stimpattern": design.stimpattern,
            "basiccnt": design.basiccnt,
        },
    )


def _write_behaviour(out: Path, opts: _Options, design: _Design, rng: np.random.Generator):
    """Each subject's responses.tsv; returns the pool index of every trial and the rep columns.

    Returns
    -------
    trials : dict of int -> (n_trials,) pool index per trial, by subject
    reps : dict of int -> (nsd ids seen, (n_seen, 3) 1-based trial numbers of each presentation)
    """
    trials, reps = {}, {}
    for s in range(1, opts.n_subjects + 1):
        n_trials = opts.sessions_per_subject[s - 1] * opts.session_size
        k10 = design.master[:n_trials]
        pool_idx = design.subject_pool[s - 1, k10 - 1]
        trials[s] = pool_idx
        table = _responses_table(
            s, design.pool_ids[pool_idx] + 1, k10, opts.session_size, design.runs, rng
        )
        _write_table(P.responses(out, s), table, "\t")
        ids_seen = np.unique(pool_idx)
        rep_cols = np.zeros((len(ids_seen), 3), dtype=np.int64)
        for j, p in enumerate(ids_seen):
            t = np.flatnonzero(pool_idx == p)[:3] + 1
            rep_cols[j, : len(t)] = t
        reps[s] = (design.pool_ids[ids_seen], rep_cols)
    return trials, reps


def _write_stim_info(out: Path, opts: _Options, design: _Design, reps, coco_ids, coco_splits):
    subject_sets = {
        s: design.pool_ids[design.subject_pool[s - 1]] for s in range(1, opts.n_subjects + 1)
    }
    table = _stim_info_table(
        design.pool_ids, coco_ids, coco_splits, design.sharedix - 1, subject_sets, reps,
        max(8, opts.n_subjects),
    )  # fmt: skip
    table.index.name = None
    with atomic_path(P.stim_info(out)) as tmp:
        table.to_csv(tmp, index=True, lineterminator="\n")


def _load_stimulus_set(scenes, coco_folder, caption_files, n_total, seed):
    if scenes is not None and coco_folder is not None:
        raise InputError("give either scenes= or coco_folder=, not both")
    if coco_folder is not None:
        scenes = load_coco_folder(coco_folder, caption_files=caption_files)
        source = {"source": "coco_folder", "folder": str(coco_folder)}
    elif scenes is None:
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


# ------------------------------------------------------------------------------ anatomy


@dataclass(frozen=True)
class _SurfaceAnatomy:
    """Meshes, streams-like ROIs, nsdgeneral and dead vertices on fsaverage (left first)."""

    meshes: dict  # {"pial": {"left": Mesh, "right": Mesh}, "white": {...}}
    labels: list  # streams label (0..7) of each vertex, per hemisphere
    nsdgeneral: list  # bool per vertex, per hemisphere
    smoothers: list  # anat.MeshSmoother per hemisphere
    dead: np.ndarray  # constant-zero vertices (indices into both hemispheres)
    surfaces: dict  # where the meshes came from (virtual_truth.json["surfaces"])

    @property
    def has_volume_surfaces(self) -> bool:
        """Real pial and white surfaces (no sphere standing in), as a volume needs."""
        return all(g == name for name, g in self.surfaces["geometry"].items())

    @property
    def n_vertices(self) -> int:
        """Vertices per hemisphere."""
        return len(self.labels[0])

    @property
    def labels_all(self) -> np.ndarray:
        return np.concatenate(self.labels)

    @property
    def general_all(self) -> np.ndarray:
        return np.concatenate(self.nsdgeneral)


def _surface_files(fs_dir) -> dict:
    """``{"pial": SurfaceFiles, "white": SurfaceFiles}`` of an fsaverage folder (a sphere stands
    in for a surface it lacks), or :class:`DataFormatError` naming the folder and the files."""
    return {name: find_fsaverage_surface(fs_dir, name) for name in ("pial", "white")}


def _surface_record(opts: _Options) -> dict:
    """Which geometry each mesh has and which files it came from."""
    if opts.fs_dir is None:
        return {
            "source": "nilearn fsaverage5",
            "geometry": {"pial": "pial", "white": "white"},
            "files": None,
        }
    files = _surface_files(opts.fs_dir)
    record = {
        "source": str(opts.fs_dir),
        "geometry": {name: f.geometry for name, f in files.items()},
        "files": {name: [str(f.left), str(f.right)] for name, f in files.items()},
    }
    lacking = [name for name, f in files.items() if f.stand_in]
    if lacking:
        record["note"] = (
            f"the folder has no {'/'.join(lacking)} surface: its fsaverage-topology sphere "
            "stands in (ROIs grown and voxel weights smoothed on the sphere; no volume written)"
        )
    return record


def _surface_anatomy(opts: _Options, rng: np.random.Generator) -> _SurfaceAnatomy:
    """Meshes and streams labels, nsdgeneral (the ROIs plus about one ring), dead vertices."""
    surfaces = _surface_record(opts)
    meshes = {"pial": load_fsaverage(opts.mesh, "pial", fs_dir=opts.fs_dir)}
    if surfaces["files"] is not None and surfaces["files"]["white"] == surfaces["files"]["pial"]:
        meshes["white"] = meshes["pial"]  # one sphere stands in for both: read it once
    else:
        meshes["white"] = load_fsaverage(opts.mesh, "white", fs_dir=opts.fs_dir)
    n_v = meshes["pial"]["left"].n_vertices
    # vertices per fsaverage5 vertex (ROI sizes scale with it)
    scale = max(1, round(n_v / FSAVERAGE_SIZES["fsaverage5"]))
    smoothers = [anat.MeshSmoother(meshes["pial"][HEMI_NAMES[h]]) for h in HEMIS]
    if opts.atlas is None:
        labels = _grown_streams(meshes["pial"], scale)
    else:
        labels = _atlas_streams(opts.atlas, n_v)
    nsdgeneral = []
    for S, lab in zip(smoothers, labels, strict=True):
        general = lab > 0
        for _ in range(max(1, int(round(np.sqrt(scale))))):
            general = S.dilate(general)
        nsdgeneral.append(general)
    dead = []
    for hi in range(2):
        candidates = np.flatnonzero(~nsdgeneral[hi]) + hi * n_v
        dead.append(np.sort(rng.choice(candidates, opts.n_dead_vertices, replace=False)))
    dead = np.concatenate(dead).astype(np.int64)
    return _SurfaceAnatomy(meshes, labels, nsdgeneral, smoothers, dead, surfaces)


def _grown_streams(pial: dict, scale: int) -> list[np.ndarray]:
    """Streams labels grown from the fsaverage5 landmarks to NSD-like sizes, per hemisphere.

    The landmarks are valid vertex indices at every resolution (fsaverage meshes are nested);
    sizes scale with the vertices per fsaverage5 vertex.
    """
    seeds_order = [STREAMS_LABELS[k] for k in sorted(STREAMS_LABELS)]
    sizes = {k: v * scale for k, v in anat.ROI_SIZES.items()}
    labels = []
    for hi, hemi in enumerate(HEMIS):
        seeds = {n: anat.LANDMARKS[n][hi] for n in seeds_order}
        # labels follow seeds_order = streams ids 1..7
        labels.append(anat.grow_rois(pial[HEMI_NAMES[hemi]], seeds, sizes))
    return labels


def _atlas_streams(atlas, n_v: int) -> list[np.ndarray]:
    """Streams labels from an atlas ``{"lh": path, "rh": path[, "rois": {roi: [ids]}]}``."""
    if not isinstance(atlas, dict) or not {"lh", "rh"} <= set(atlas):
        raise InputError(
            "atlas: expected a dict {'lh': path, 'rh': path[, 'rois': {roi: [label ids]}]}, "
            f"got {atlas!r}"
        )
    labels = []
    for fh in HEMIS:
        raw, names = load_surface_atlas(atlas[fh])
        if len(raw) < n_v:
            raise InputError(
                f"atlas[{fh!r}]: {atlas[fh]} has {len(raw)} labels for a mesh of {n_v} vertices; "
                "give a per-vertex atlas of this fsaverage resolution or finer"
            )
        raw = raw[:n_v]  # nested meshes: a finer atlas subsamples by its first vertices
        rois = atlas.get("rois")
        mapping = rois if rois is not None else _streams_by_name(names, fh)
        unknown = [r for r in mapping if r not in STREAMS_ROIS]
        if unknown:
            raise InputError(
                f"atlas['rois']: unknown ROI names {unknown}; use {list(STREAMS_ROIS)}"
            )
        lab = np.zeros(n_v, dtype=np.int16)
        for k, roi in STREAMS_LABELS.items():
            ids = mapping.get(roi, [])
            if ((lab > 0) & np.isin(raw, ids)).any():
                raise InputError(
                    f"atlas['rois']: {roi!r} overlaps another ROI; ROIs must be disjoint"
                )
            lab[np.isin(raw, ids)] = k
        labels.append(lab)
    return labels


def _streams_by_name(names: dict, fh: str) -> dict:
    """``{roi: [label id]}`` from an atlas label table that names the streams ROIs."""
    by_name = {v: k for k, v in names.items()}
    missing = [r for r in STREAMS_ROIS if r not in by_name]
    if missing:
        raise InputError(
            f"atlas[{fh!r}]: its label table lacks {missing}; give atlas['rois'] = "
            "{roi: [label ids]} for the streams ROIs"
        )
    return {r: [by_name[r]] for r in STREAMS_ROIS}


def _write_fsaverage(out: Path, anatomy: _SurfaceAnatomy) -> None:
    """Streams and nsdgeneral labels (+ colour tables) and the pial/white surfaces, each under
    the name of the geometry it has (``{lh,rh}.sphere`` when a sphere stood in)."""
    out_fs = P.fsaverage_dir(out)
    write_ctab(P.fsaverage_ctab(out, "streams"), STREAMS_LABELS)
    write_ctab(P.fsaverage_ctab(out, "nsdgeneral"), {1: "nsdgeneral"})
    for hi, fh in enumerate(HEMIS):
        hemi = HEMI_NAMES[fh]
        write_mgh(P.fsaverage_label(out, fh, "streams"), anatomy.labels[hi].astype(np.int32))
        write_mgh(P.fsaverage_label(out, fh, "nsdgeneral"), anatomy.nsdgeneral[hi].astype(np.int32))
        write_mgh(
            out_fs / "surf" / f"{fh}.w-g.pct.mgh", np.zeros(anatomy.n_vertices, dtype=np.float32)
        )
        for name, geometry in anatomy.surfaces["geometry"].items():
            _write_geometry(out_fs / "surf" / f"{fh}.{geometry}", anatomy.meshes[name][hemi])


def _write_geometry(path, mesh):
    from nibabel.freesurfer import write_geometry

    with atomic_path(path, suffix="") as tmp:
        write_geometry(
            str(tmp), mesh.coords, mesh.faces, create_stamp="created by brainalign virtual NSD"
        )


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


@dataclass(frozen=True)
class _PlantedSignal:
    """The planted truth: each ROI's mixture of representations through smooth voxel weights.

    Voxel weights are random combinations of a bank of smooth fields (``basis``): smooth on the
    mesh, and cheap to draw per subject and representation.
    """

    reps_std: dict  # standardised representation per name
    needed: list  # representations the ROIs use
    roi_vertices: np.ndarray  # vertices (both hemispheres) inside a streams ROI
    roi_labels: np.ndarray  # streams label of each of them
    basis: np.ndarray  # (n_roi, K) smooth fields at the ROI vertices
    shared_coef: dict  # (K, dim) weights shared by subjects, per representation
    ncsnr: np.ndarray  # (2V,) signal SD / noise SD per vertex (0 outside the ROIs)
    individual_variation: float

    def subject(self, rng: np.random.Generator, rows: np.ndarray) -> _SubjectSignal:
        """One subject's unit-variance signal over the images ``rows`` (its 10k order).

        Draws the subject's voxel-weight coefficients from ``rng`` (one (K, dim) array per
        needed representation, in ``needed`` order) and returns the signal in factored form.
        The column normalisations (each representation's projection, then each vertex's
        mixture, to unit standard deviation over all ``rows``) come from the factors' (m·K)²
        covariance, exactly (to rounding) what normalising the dense images × vertices array
        gives.
        """
        K = self.basis.shape[1]
        factors = []
        for name in self.needed:
            C = np.sqrt(1 - self.individual_variation) * self.shared_coef[name]
            C = C + np.sqrt(self.individual_variation) * rng.standard_normal(C.shape)
            factors.append(self.reps_std[name][rows] @ C.T)  # (n_rows, K)
        factors = np.concatenate(factors, axis=1)  # (n_rows, m·K)
        centred = factors - factors.mean(axis=0)
        cov = centred.T @ centred / len(factors)  # population covariance (np.std's ddof=0)
        basis_t = self.basis.T  # (K, n_roi)
        loadings = np.zeros((len(self.needed) * K, len(self.roi_vertices)))
        for j, name in enumerate(self.needed):
            blk = slice(j * K, (j + 1) * K)
            sd = np.sqrt(np.einsum("kv,kv->v", cov[blk, blk] @ basis_t, basis_t))
            weight = np.zeros(len(self.roi_vertices))
            for k, roi in STREAMS_LABELS.items():
                weight[self.roi_labels == k] = anat.ROI_REPRESENTATIONS[roi].get(name, 0.0)
            loadings[blk] = basis_t * (np.sqrt(weight) / sd)
        loadings /= np.sqrt(np.einsum("kv,kv->v", cov @ loadings, loadings))
        return _SubjectSignal(factors, loadings, self.roi_vertices, len(self.ncsnr))


@dataclass(frozen=True)
class _SubjectSignal:
    """One subject's planted signal in factored form; rows are built a block at a time.

    At the ROI vertices the signal is ``factors @ loadings``: ``factors`` (n_rows, m·K) holds,
    for each of the m representations, its rows projected on the subject's coefficients
    (``R[rows] @ Cᵀ``); ``loadings`` (m·K, n_roi) the smooth basis at each vertex, weighted by the
    vertex's ROI mixture and divided by the standard deviations that make each representation's
    part and then the mixture unit-variance over all rows. Elsewhere the signal is zero.
    """

    factors: np.ndarray  # (n_rows, m·K) float64
    loadings: np.ndarray  # (m·K, n_roi) float64
    roi_vertices: np.ndarray  # (n_roi,) the columns (of 2V) that carry signal
    n_units: int  # 2V

    def roi_rows(self, rows: np.ndarray, block: int = 256) -> np.ndarray:
        """(len(rows), n_roi) float32: the signal of images ``rows`` at the ROI vertices."""
        rows = np.asarray(rows)
        out = np.empty((len(rows), self.loadings.shape[1]), dtype=np.float32)
        for start in range(0, len(rows), block):
            sl = slice(start, start + block)
            out[sl] = self.factors[rows[sl]] @ self.loadings
        return out

    def dense(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), 2V) float32 with zeros off the ROIs (every row by default); for small
        cases only: this is the images × vertices array the writer never holds."""
        rows = np.arange(len(self.factors)) if rows is None else np.asarray(rows)
        out = np.zeros((len(rows), self.n_units), dtype=np.float32)
        out[:, self.roi_vertices] = self.roi_rows(rows)
        return out


def _plant_signal(opts: _Options, scenes, anatomy: _SurfaceAnatomy, rng) -> _PlantedSignal:
    reps_std = {name: _standardise(X) for name, X in scenes.representations.items()}
    needed = sorted({n for mix in anat.ROI_REPRESENTATIONS.values() for n in mix})
    missing = [n for n in needed if n not in reps_std]
    if missing:
        raise InputError(
            f"scenes.representations: missing {missing}; the planted truth needs {needed}"
        )
    labels_all = anatomy.labels_all
    in_roi = labels_all > 0
    roi_vertices = np.flatnonzero(in_roi)
    ncsnr = np.zeros(2 * anatomy.n_vertices)
    field = np.concatenate([S.fields(1, 10, rng)[:, 0] for S in anatomy.smoothers])
    ncsnr[in_roi] = opts.snr * np.exp(0.3 * field[in_roi])
    n_basis = 64
    basis = np.concatenate([S.fields(n_basis, 8, rng) for S in anatomy.smoothers])
    basis = basis[roi_vertices] / np.sqrt(n_basis)  # (n_roi, K)
    shared_coef = {name: rng.standard_normal((n_basis, reps_std[name].shape[1])) for name in needed}
    return _PlantedSignal(
        reps_std, needed, roi_vertices, labels_all[roi_vertices], basis, shared_coef, ncsnr,
        opts.individual_variation,
    )  # fmt: skip


# ------------------------------------------------------------------------------ subjects


def _write_subjects(out, opts, design, anatomy, planted, trials, verbose) -> dict:
    """Betas, volume, ROI volumes and transforms of every subject; returns their truth entries."""
    subjects = {}
    noise_seeds = np.random.SeedSequence(opts.random_state + 1_000_003).spawn(opts.n_subjects)
    bar = progress(range(1, opts.n_subjects + 1), desc="virtual NSD subjects", verbose=verbose)
    for s in bar:
        rng = np.random.default_rng(noise_seeds[s - 1])
        subjects[str(s)] = _write_subject(out, s, opts, design, anatomy, planted, trials[s], rng)
    return subjects


def _write_subject(out, s, opts, design, anatomy, planted, pool_idx, rng) -> dict:
    """One subject's files, drawing from its own generator ``rng``; returns its truth entry."""
    # signal rows follow the subject's 10k order; trials index them through their 10k index
    signal = planted.subject(rng, design.subject_pool[s - 1])
    local = design.master[: len(pool_idx)] - 1  # row of each trial in ``signal``
    n_sess = opts.sessions_per_subject[s - 1]
    counts = np.bincount(pool_idx, minlength=opts.n_total)
    info = {
        "n_sessions": n_sess,
        "session_size": opts.session_size,
        "n_trials": int(len(pool_idx)),
        "n_images_seen": int((counts > 0).sum()),
        "n_images_3x": int((counts == 3).sum()),
    }
    if "fsaverage" in opts.spaces:
        _write_surface_betas(out, s, opts, anatomy, planted.ncsnr, signal, local, n_sess, rng)
    if not anatomy.has_volume_surfaces:  # a sphere stood in: no volume (only fsaverage asked)
        return {**info, "volume_shape": None, "n_mask_voxels": None}
    grid = _write_volume_anatomy(out, s, opts, anatomy, rng)
    vox_ncsnr = _write_volume_ncsnr(out, s, opts, grid, planted.ncsnr)
    if "func1pt8mm" in opts.spaces:
        _write_volume_betas(out, s, opts, grid, vox_ncsnr, signal, local, n_sess, rng)
    return {**info, "volume_shape": list(grid.shape), "n_mask_voxels": int(grid.mask.sum())}


#: columns per block when a session's gain and offset are applied (float64 temporaries of
#: session_size × _COLUMN_BLOCK)
_COLUMN_BLOCK = 1 << 14


def _column_blocks(n: int):
    for start in range(0, n, _COLUMN_BLOCK):
        yield slice(start, min(start + _COLUMN_BLOCK, n))


def _write_surface_betas(out, s, opts, anatomy, ncsnr, signal, local, n_sess, rng) -> None:
    """fsaverage betas (float32 PSC) per session and hemisphere, and the ncsnr maps.

    One session at a time: its trial noise is drawn into a (T, 2V) float32 array, the signal
    of its trials added at the ROI vertices, then gain and offset applied in place, in column
    blocks (float64 arithmetic, float32 result), so memory holds one session's betas.
    """
    n_v = anatomy.n_vertices
    for hi, fh in enumerate(HEMIS):
        write_mgh(
            P.betas_dir(out, s, "fsaverage") / f"{fh}.ncsnr.mgh", ncsnr[hi * n_v : (hi + 1) * n_v]
        )
    gain = np.exp(rng.normal(0, opts.session_gain_sd, (n_sess, 2 * n_v)))
    offset = rng.normal(0, opts.session_offset_sd, (n_sess, 2 * n_v))
    size = opts.session_size
    roi = signal.roi_vertices
    nc_roi = ncsnr.astype(np.float32)[roi]
    for i in range(n_sess):
        y = rng.standard_normal((size, 2 * n_v), dtype=np.float32)  # trial noise
        y[:, roi] += signal.roi_rows(local[i * size : (i + 1) * size]) * nc_roi
        for sl in _column_blocks(2 * n_v):
            y[:, sl] = opts.psc_scale * (gain[i, sl] * y[:, sl] + offset[i, sl])
        y[:, anatomy.dead] = 0.0
        for hi, fh in enumerate(HEMIS):
            write_mgh(P.fsaverage_betas(out, s, fh, i + 1), y[:, hi * n_v : (hi + 1) * n_v].T)
        del y


def _write_volume_anatomy(out, s, opts, anatomy, rng):
    """One subject's volume: grid, brain mask, ROI volumes and the surface↔volume transforms."""
    pial = np.concatenate([anatomy.meshes["pial"][HEMI_NAMES[h]].coords for h in HEMIS])
    white = np.concatenate([anatomy.meshes["white"][HEMI_NAMES[h]].coords for h in HEMIS])
    grid = anat.make_volume_grid(0.5 * (pial + white), opts.voxel_size, rng)
    n_v = anatomy.n_vertices
    zooms = (opts.voxel_size,) * 3
    write_nifti(P.brainmask(out, s), grid.mask.astype(np.int16), grid.affine, zooms)
    tied = grid.tied_vertex
    cortex = tied >= 0
    volumes = (
        ("streams", anatomy.labels_all),
        ("nsdgeneral", anatomy.general_all.astype(np.int16)),
    )
    for stem, values in volumes:
        for prefix, hemi_ok in (("", None), ("lh.", 0), ("rh.", 1)):
            vol = np.full(grid.shape, -1, dtype=np.int16)
            lab = values[np.where(cortex, tied, 0)]
            if hemi_ok is not None:
                lab = np.where((tied // n_v) == hemi_ok, lab, 0)
            vol[cortex] = lab[cortex]
            write_nifti(P.roi_volume(out, s, f"{prefix}{stem}"), vol, grid.affine, zooms)
    _write_transforms(out, s, grid, pial, white, rng)
    return grid


def _write_transforms(out, s, grid, pial, white, rng) -> None:
    """nsdcode's surface→volume (three cortical depths, 3 invalid vertices each) and
    white↔fsaverage transforms."""
    n_v = len(pial) // 2
    for hi, fh in enumerate(HEMIS):
        sl = slice(hi * n_v, (hi + 1) * n_v)
        for k, frac in ((1, 0.25), (2, 0.5), (3, 0.75)):
            pos = pial[sl] + frac * (white[sl] - pial[sl])  # layerBk: k/4 of the way pial→white
            coords = grid.world_to_voxel(pos) + 1.0  # nsdcode: 1-based decimal voxel coords
            coords[rng.choice(n_v, 3, replace=False)] = 9999.0
            write_mgh(P.transform(out, s, fh, f"func1pt8-to-layerB{k}"), coords.astype(np.float32))
        ident = np.arange(1, n_v + 1, dtype=np.int32)
        write_mgh(P.transform(out, s, fh, "white-to-fsaverage"), ident)
        write_mgh(P.transform(out, s, fh, "fsaverage-to-white"), ident)


def _write_volume_ncsnr(out, s, opts, grid, ncsnr) -> np.ndarray:
    """Write each brain voxel's ncsnr (its tied vertex's; 0 off cortex); returns it per voxel."""
    mask_idx = np.flatnonzero(grid.mask.ravel())
    tied_m = grid.tied_vertex.ravel()[mask_idx]
    vox_ncsnr = np.where(tied_m >= 0, ncsnr[np.maximum(tied_m, 0)], 0.0).astype(np.float32)
    nc_vol = np.zeros(grid.shape, dtype=np.float32)
    nc_vol.ravel()[mask_idx] = vox_ncsnr
    path = P.betas_dir(out, s, "func1pt8mm") / "ncsnr.nii.gz"
    write_nifti(path, nc_vol, grid.affine, (opts.voxel_size,) * 3)
    return vox_ncsnr


def _write_volume_betas(out, s, opts, grid, vox_ncsnr, signal, local, n_sess, rng) -> None:
    """int16 betas (PSC × 300) per session: each cortical voxel copies its vertex's signal."""
    mask_idx = np.flatnonzero(grid.mask.ravel())
    tied_m = grid.tied_vertex.ravel()[mask_idx]
    n_mask = len(mask_idx)
    gain = np.exp(rng.normal(0, opts.session_gain_sd, (n_sess, n_mask)))
    offset = rng.normal(0, opts.session_offset_sd, (n_sess, n_mask))
    # each voxel's column among the ROI vertices (the signal is zero at other vertices)
    column = np.full(signal.n_units, -1, dtype=np.int64)
    column[signal.roi_vertices] = np.arange(len(signal.roi_vertices))
    column = column[np.maximum(tied_m, 0)]
    has_signal = column >= 0
    size = opts.session_size
    for i in range(n_sess):
        y = np.zeros((size, n_mask), dtype=np.float32)
        y[:, has_signal] = signal.roi_rows(local[i * size : (i + 1) * size])[:, column[has_signal]]
        y *= vox_ncsnr
        y += rng.standard_normal(y.shape, dtype=np.float32)
        raw = np.empty((size, n_mask), dtype=np.int16)
        for sl in _column_blocks(n_mask):
            psc = opts.psc_scale * (gain[i, sl] * y[:, sl] + offset[i, sl])
            raw[:, sl] = np.clip(np.rint(psc * 300.0), -32768, 32767)
        del y
        vol = np.zeros((int(np.prod(grid.shape)), size), dtype=np.int16)
        vol[mask_idx] = raw.T
        write_nifti(
            P.volume_betas(out, s, i + 1),
            vol.reshape(grid.shape + (size,)),
            grid.affine,
            (opts.voxel_size,) * 3 + (1.3333,),
        )


# ------------------------------------------------------------------------------ truth files


def _truth_document(opts, design, anatomy, scenes, trials, stim_source, subjects) -> dict:
    """``virtual_truth.json``: what was planted, and the design facts tests check against."""
    counts3 = [
        np.bincount(trials[s], minlength=opts.n_total)[design.shared_pool] == 3
        for s in range(1, opts.n_subjects + 1)
    ]
    special = np.sort(design.pool_ids[design.shared_pool][np.all(counts3, axis=0)])
    rois = {
        roi: {
            "label": k,
            "representations": anat.ROI_REPRESENTATIONS[roi],
            "n_vertices": [int((lab == k).sum()) for lab in anatomy.labels],
        }
        for k, roi in STREAMS_LABELS.items()
    }
    return {
        "format": "brainalign.virtual_nsd",
        "version": 1,
        "random_state": opts.random_state,
        "parameters": {
            "n_subjects": opts.n_subjects,
            "n_shared": opts.n_shared,
            "n_unique": opts.n_unique,
            "n_sessions": opts.n_sessions,
            "session_size": opts.session_size,
            "sessions_per_subject": list(opts.sessions_per_subject),
            "n_runs": opts.n_runs,
            "spaces": list(opts.spaces),
            "voxel_size": opts.voxel_size,
            "mesh": opts.mesh,
            "atlas": None if opts.atlas is None else {k: str(v) for k, v in opts.atlas.items()},
        },
        "mesh": opts.mesh,
        "n_vertices_per_hemisphere": anatomy.n_vertices,
        "surfaces": anatomy.surfaces,
        "rois": rois,
        "null_region": {
            "description": "cortex outside the streams ROIs: noise only (no planted signal)",
            "n_vertices": [int((lab == 0).sum()) for lab in anatomy.labels],
        },
        "nsdgeneral": {
            "description": "streams ROIs dilated by one ring; the ring carries noise only",
            "n_vertices": [int(g.sum()) for g in anatomy.nsdgeneral],
        },
        "representations": {
            name: {"dim": int(X.shape[1]), "npz_key": f"representation_{name}"}
            for name, X in scenes.representations.items()
        },
        "noise": {
            "trial_noise_sd": 1.0,
            "snr_median": opts.snr,
            "snr_spatial_log_sd": 0.3,
            "ncsnr_meaning": "signal SD / trial-noise SD per vertex before session gain/offset",
            "individual_variation": opts.individual_variation,
            "session_gain_log_sd": opts.session_gain_sd,
            "session_offset_sd": opts.session_offset_sd,
            "psc_scale": opts.psc_scale,
            "volume": "each cortical voxel copies its tied vertex's signal with its own noise",
        },
        "dead_vertices": anatomy.dead.tolist(),
        "shared_nsd_ids": (design.sharedix - 1).tolist(),
        "special_nsd_ids": special.tolist(),
        "stimuli": stim_source,
        "subjects": subjects,
        "npz": "virtual_truth.npz",
    }


def _truth_arrays(design, anatomy, planted, scenes) -> dict:
    """``virtual_truth.npz``: ids, representations (rows by NSD id), labels, ncsnr."""
    order = np.argsort(design.pool_ids)
    arrays = {
        "nsd_ids": design.pool_ids[order].astype(np.int64),
        "scene_index": order.astype(np.int64),
        "streams_labels": anatomy.labels_all.astype(np.int16),
        "nsdgeneral": anatomy.general_all,
        "ncsnr": planted.ncsnr.astype(np.float32),
        "dead_vertices": anatomy.dead,
    }
    for name, X in scenes.representations.items():
        arrays[f"representation_{name}"] = np.asarray(X, dtype=np.float32)[order]
    return arrays


# ------------------------------------------------------------------------------ stimuli


def _write_stimuli(out, scenes, pool_ids, shared_pool, coco_ids, coco_splits, compress):
    """The images (HDF5 ``imgBrick``, shared1000 PNGs) and COCO-format annotations."""
    _write_image_brick(P.stimuli_hdf5(out), scenes, pool_ids, compress)
    _write_shared_pngs(P.shared1000_dir(out), scenes, pool_ids, shared_pool)
    order = np.argsort(pool_ids)
    for split in ("train2017", "val2017"):
        members = [i for i in order if coco_splits[i] == split]
        write_coco_annotations(
            lambda kind, split=split: P.annotations(out, kind, split),
            scenes,
            members,
            coco_ids,
            size=IMAGE_SIZE,
        )


def _write_image_brick(path, scenes, pool_ids, compress) -> None:
    """``imgBrick`` of logical shape (73000, 425, 425, 3), chunked one image, used rows written."""
    import h5py

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


def _write_shared_pngs(png_dir, scenes, pool_ids, shared_pool) -> None:
    """``sharedKKKK_nsdIIIII.png`` (1-based rank and 73k id) of every shared image."""
    from PIL import Image

    shared_imgs = scenes.render(shared_pool, size=IMAGE_SIZE)
    for k, (i, img) in enumerate(zip(shared_pool, shared_imgs, strict=True), start=1):
        name = png_dir / f"shared{k:04d}_nsd{int(pool_ids[i]) + 1:05d}.png"
        with atomic_path(name) as tmp:
            Image.fromarray(img).save(tmp, format="PNG")


# ------------------------------------------------------------------------------ planted signal

#: what :func:`virtual_planted_signal` can return (see its docstring)
PLANTED_UNITS = ("betas", "trial", "signal")


def virtual_planted_signal(
    root: str | os.PathLike, subject: int, nsd_ids, roi: str | None = None, *, units="betas"
) -> np.ndarray:
    """The noiseless planted responses of one subject of a virtual NSD, for the images ``nsd_ids``.

    Nothing dense was stored when the dataset was written (the signal was kept factored): the
    planted signal is rebuilt from the seed and options recorded in ``virtual_truth.json``, the
    representations and ROI labels in ``virtual_truth.npz`` and the design in
    ``nsd_expdesign.mat``, drawing the same random numbers in the same order as
    :func:`make_virtual_nsd`. The rebuilt noise-ceiling SNR map is checked against the stored one,
    so a dataset written by other code is refused rather than answered wrongly.

    Parameters
    ----------
    root : path
        A virtual NSD written by :func:`make_virtual_nsd`.
    subject : int
        1-based subject number (each subject has its own voxel weights).
    nsd_ids : array of int, shape (n,)
        0-based NSD ids of images this subject saw (any order; e.g. ``load_nsd(...).image_ids``).
    roi : str, optional
        A streams ROI name (``"early"``, ``"ventral"``, ...): its fsaverage vertices, in the order
        of ``load_nsd(root, subject).rois[roi]``'s columns. Default: every fsaverage vertex of
        both hemispheres (left first), zero outside the streams ROIs (small meshes only).
    units : {"betas", "trial", "signal"}
        ``"betas"`` (default): the noiseless limit of :func:`load_nsd`'s betas, each vertex's
        signal scaled by ``ncsnr / sqrt(1 + ncsnr²)`` (per-session z-scoring divides by the
        signal-plus-noise SD, so vertices with more SNR weigh more, as in the measured RDMs);
        ``"trial"``: the signal as added to each trial's unit-variance noise before the
        session's gain and offset (``ncsnr`` × signal); ``"signal"``: the unit-variance mixture
        of representations each vertex was generated from.

    Returns
    -------
    ndarray, shape (n, n_units), float64
        ``n_units``: the ROI's vertices, or ``2 × vertices per hemisphere``.
    """
    if units not in PLANTED_UNITS:
        raise InputError(f"units={units!r}: expected one of {PLANTED_UNITS}")
    root = Path(root)
    # keyed by the truth files' stamps too: an edited or rewritten dataset is rebuilt again
    stamps = tuple(
        (f.stat().st_mtime_ns, f.stat().st_size)
        for f in (root / "virtual_truth.json", root / "virtual_truth.npz", P.expdesign(root))
    )
    planted, truth, subject_pool, pool_nsd = _rebuilt_truth(str(root.resolve()), stamps)
    n_subjects = int(truth["parameters"]["n_subjects"])
    subject = _check_positive_int("subject", subject)
    if subject > n_subjects:
        raise InputError(f"subject={subject}: {root} has subjects 1..{n_subjects}")
    rows = _subject_rows(subject_pool[subject - 1], pool_nsd, nsd_ids, subject, root)
    columns = _roi_columns(planted, truth, roi, root)
    # the subject's generator is the one its betas were written with; the voxel weights are
    # its first draws (the noise comes after), so nothing else has to be replayed
    seeds = np.random.SeedSequence(int(truth["random_state"]) + 1_000_003).spawn(n_subjects)
    signal = planted.subject(np.random.default_rng(seeds[subject - 1]), subject_pool[subject - 1])
    # float64 here: the writer multiplies in float32, which rounds below any noise level
    values = signal.factors[rows] @ signal.loadings[:, columns]
    nc = planted.ncsnr[planted.roi_vertices[columns]]
    scale = {"betas": nc / np.sqrt(1.0 + nc**2), "trial": nc, "signal": np.ones_like(nc)}[units]
    values *= scale
    if roi is not None:
        return values
    out = np.zeros((len(rows), signal.n_units))
    out[:, planted.roi_vertices] = values
    return out


def _subject_rows(pool_row, pool_nsd, nsd_ids, subject, root) -> np.ndarray:
    """Positions of ``nsd_ids`` in the subject's 10k order (rows of its planted signal)."""
    nsd_ids = np.asarray(nsd_ids, dtype=np.int64).ravel()
    seen = pool_nsd[pool_row]  # NSD id of each of the subject's 10k indices
    order = np.argsort(seen)
    pos = np.clip(np.searchsorted(seen, nsd_ids, sorter=order), 0, len(seen) - 1)
    rows = order[pos]
    bad = seen[rows] != nsd_ids
    if bad.any():
        raise InputError(
            f"nsd_ids: subject {subject} of {root} never saw {nsd_ids[bad][:10].tolist()}; "
            "give ids from load_nsd(root, subject).image_ids"
        )
    return rows


def _roi_columns(planted, truth, roi, root) -> np.ndarray:
    """Columns of ``planted.roi_vertices`` in ``roi`` (every ROI vertex for None)."""
    if roi is None:
        return np.arange(len(planted.roi_vertices))
    if roi not in truth["rois"]:
        raise InputError(f"roi={roi!r}: {root}'s planted ROIs are {sorted(truth['rois'])}")
    return np.flatnonzero(planted.roi_labels == int(truth["rois"][roi]["label"]))


@functools.lru_cache(maxsize=2)
def _rebuilt_truth(root: str, stamps: tuple):
    """``(planted, truth, subject_pool, pool_nsd)`` of the virtual NSD at ``root``, rebuilt.

    ``subject_pool`` (n_subjects, n_per): pool index of each subject's 10k index; ``pool_nsd``:
    NSD id of each pool image. Cached per process (a pipeline asks once per subject) and per
    ``stamps`` (the files' modification times and sizes).
    """
    from types import SimpleNamespace

    path = Path(root)
    truth = json.loads((path / "virtual_truth.json").read_text())
    with np.load(path / "virtual_truth.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    order = arrays["scene_index"]  # npz rows are by NSD id; scene order is the pool's
    reps = {}
    for name in truth["representations"]:
        X = arrays[f"representation_{name}"]
        reps[name] = np.empty_like(X)
        reps[name][order] = X
    pool_nsd = np.empty_like(arrays["nsd_ids"])
    pool_nsd[order] = arrays["nsd_ids"]
    subjectim = np.atleast_2d(load_mat(P.expdesign(path), ("subjectim",))["subjectim"])
    # subjectim holds 1-based NSD ids; ``order`` sorts the pool by NSD id
    subject_pool = order[np.searchsorted(arrays["nsd_ids"], subjectim.astype(np.int64) - 1)]
    # the writer's generators: SeedSequence(random_state).spawn(8), the truth's is the third
    rng_truth = np.random.default_rng(np.random.SeedSequence(truth["random_state"]).spawn(8)[2])
    noise = truth["noise"]
    opts = SimpleNamespace(
        snr=noise["snr_median"], individual_variation=noise["individual_variation"]
    )
    scenes = SimpleNamespace(representations=reps)
    planted = _plant_signal(opts, scenes, _anatomy_of(path, truth, arrays), rng_truth)
    if not np.allclose(planted.ncsnr.astype(np.float32), arrays["ncsnr"], rtol=1e-5, atol=1e-6):
        raise DataFormatError(
            f"{path}: the planted signal rebuilt from virtual_truth.json does not match the "
            "stored ncsnr map (written by another version of make_virtual_nsd?); rebuild the "
            "virtual NSD with this version"
        )
    return planted, truth, subject_pool, pool_nsd


def _anatomy_of(path: Path, truth: dict, arrays: dict) -> _SurfaceAnatomy:
    """The written dataset's surface anatomy as :func:`_plant_signal` needs it (labels from the
    npz, smoothers on the pial mesh the writer used)."""
    surfaces = truth["surfaces"]
    mesh = truth["mesh"]
    fs_dir = None
    if surfaces.get("files") is not None:
        fs_dir = Path(surfaces["source"])
        if not fs_dir.exists():  # moved: the dataset holds a copy of the surfaces it used
            fs_dir = P.fsaverage_dir(path)
    pial = load_fsaverage(mesh, "pial", fs_dir=fs_dir)
    n_v = int(truth["n_vertices_per_hemisphere"])
    labels_all = arrays["streams_labels"].astype(np.int64)
    labels = [labels_all[:n_v], labels_all[n_v:]]
    general = arrays["nsdgeneral"]
    return _SurfaceAnatomy(
        meshes={"pial": pial, "white": pial},
        labels=labels,
        nsdgeneral=[general[:n_v], general[n_v:]],
        smoothers=[anat.MeshSmoother(pial[HEMI_NAMES[h]]) for h in HEMIS],
        dead=arrays["dead_vertices"],
        surfaces=surfaces,
    )


__all__ = ["LEGACY_LAYOUT", "PLANTED_UNITS", "make_virtual_nsd", "virtual_planted_signal"]
