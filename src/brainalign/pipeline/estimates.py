"""What a study needs before it runs: disk, memory and (roughly) time per step, set against
what this machine has.

``brainalign run --dry-run`` prints the table; a run (and the dry run) stops before any work
with a :class:`~brainalign.errors.ConfigError` when a step needs more memory than the machine
has, or the steps still to run would write more than the disk holds free. A mistyped option
(``data.n_subjects = 100000``, ``analyses.searchlight.radius = 1e9``) then fails in a second
with the sizes named, instead of hours in with a full disk or an out-of-memory kill.

The sizes come from the plan: images per subject × units (vertices or voxels) × 4 bytes
(float32) for betas, centres × units per searchlight disc for neighbourhoods, and so on. They
are estimates, good to a factor of about two; times assume one worker at the throughputs below
and are rougher still. Steps whose tasks are all cached cost nothing.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from brainalign.datasets import virtual
from brainalign.datasets.nsd import prepare_nsd_disk_bytes
from brainalign.datasets.virtual import virtual_nsd_disk_bytes
from brainalign.errors import BrainAlignError, ConfigError, InputError
from brainalign.pipeline.analyses.rdm_rsa import evaluation_memory_bytes
from brainalign.pipeline.core import all_tasks
from brainalign.utils.disk import format_bytes, free_bytes

#: vertices per hemisphere of each fsaverage mesh
MESH_VERTICES = {"fsaverage5": 10_242, "fsaverage6": 40_962, "fsaverage": 163_842}
#: median distance (mm) from a pial vertex to its nearest neighbour: measured on nilearn's
#: fsaverage5 (2.15 left, 2.19 right); each finer icosahedral order halves it. A smaller radius
#: leaves most discs holding only their centre, where a correlation is undefined (NaN)
MESH_SPACING_MM = {"fsaverage5": 2.2, "fsaverage6": 1.1, "fsaverage": 0.55}
#: pial area of one fsaverage hemisphere (mm², nilearn's fsaverage5 pial; the same surface at
#: every resolution)
HEMI_AREA_MM2 = 76_345.0
#: largest geodesic radius (mm) accepted: a 50-mm disc already covers a tenth of a hemisphere;
#: beyond that the value is most likely a typo (1e9 took 6.9 GB and gave one whole-hemisphere disc)
MAX_SURFACE_RADIUS_MM = 50.0
#: peak bytes per (centre, unit) pair while geodesic discs are built; measured: radius 1e9 on
#: fsaverage5 (20,484 × 10,242 pairs) peaked at 6.9 GB
NEIGHBOURHOOD_PEAK_BYTES = 33
#: bytes per pair of neighbourhoods kept on disk (int32 unit indices)
NEIGHBOURHOOD_DISK_BYTES = 4
#: NSD: images per subject at most (subjects 1, 2, 5 and 7 saw 10,000) and the func1pt8mm grid
NSD_IMAGES = 10_000
NSD_VOLUME_GRID = (81, 104, 83)
NSD_VOXEL_MM = 1.8
#: bytes of one stored stimulus image (425 × 425 RGB, compressed in a virtual NSD)
IMAGE_BYTES = 60_000
#: width of a caption embedding (MPNet; the largest of the packaged encoders)
EMBEDDING_DIM = 768
#: peak memory of an analysis task over one subject's prepared betas (n_images × n_units × 4
#: bytes), measured at NSD's full size (10,000 images × 327,684 vertices, 13.1 GB of betas;
#: benchmarks/results_full_scale.md): ROI RSA 4.9 GB, ridge 4.8 GB, decoding 7.8 GB,
#: searchlight 2.8 GB. They read the memory-mapped betas in blocks
PEAK_PER_BETAS = {"roi_rsa": 0.37, "encoding": 0.37, "decoding": 0.6, "searchlight": 0.21}
#: what any task holds besides its data (Python, numpy, torch, the loaded code)
BASE_TASK_BYTES = 400 << 20
#: assumed throughputs of one worker, for the time column only
DISK_BYTES_PER_S = 200e6
FLOPS_PER_S = 5e9


@dataclass
class Step:
    """One kind of work: ``count`` tasks, ``disk`` bytes written in all, ``memory`` peak bytes
    of one task, ``seconds`` of one worker for all of them, ``folder`` the bytes go to."""

    name: str
    count: int
    disk: int
    memory: int
    seconds: float
    folder: Path | None = None


@dataclass
class Sizes:
    """What the estimates are made of: subjects, images per subject and in all, units."""

    n_subjects: int
    n_images: int  # per subject (at most)
    n_total: int  # every image any subject saw
    units: int  # per subject in the study's space
    mesh: str | None  # the surface mesh, when the study's space is a surface


# ------------------------------------------------------------------------------------ sizes
def virtual_options(cfg):
    """The virtual NSD's checked options (``make_virtual_nsd``'s defaults filled in).

    Raises
    ------
    ConfigError
        Naming ``data.n_subjects`` or ``data.options.<key>`` when the build would refuse them,
        e.g. more images than NSD's 73,000 (the build would fail only after planning).
    """
    import inspect

    sig = inspect.signature(virtual.make_virtual_nsd)
    known = set(sig.parameters) - _SET_BY_THE_STUDY
    unknown = sorted(set(cfg.data.options) - known)
    if unknown:  # the build would stop with a TypeError after planning
        raise ConfigError(
            f"data.options: unknown option(s) {unknown} of the virtual NSD (root, n_subjects, "
            f"random_state and spaces are set by data.root, data.n_subjects, data.random_state "
            f"and the analyses); known: {sorted(known)}"
        )
    args = {
        k: p.default
        for k, p in sig.parameters.items()
        if p.default is not inspect.Parameter.empty and k in _CHECKED_OPTIONS
    }
    opts = {k: v for k, v in cfg.data.options.items() if k in _CHECKED_OPTIONS}
    if "sessions_per_subject" in opts and opts["sessions_per_subject"] is not None:
        opts["sessions_per_subject"] = list(opts["sessions_per_subject"])
    args.update(opts, n_subjects=cfg.data.n_subjects, spaces=(cfg.space,))
    try:
        return virtual._check_options(**args)
    except (InputError, TypeError, ValueError) as exc:
        text = str(exc)
        key = "data.n_subjects" if text.startswith("n_shared + n_subjects") else "data.options"
        raise ConfigError(f"{key}: the virtual NSD cannot be built: {text}") from None


#: ``make_virtual_nsd`` arguments the study sets itself (not ``data.options``)
_SET_BY_THE_STUDY = {
    "root",
    "n_subjects",
    "spaces",
    "random_state",
    "overwrite",
    "reuse",
    "verbose",
}

#: ``make_virtual_nsd`` arguments its option check takes (the rest are not sizes)
_CHECKED_OPTIONS = (
    "n_shared",
    "n_unique",
    "n_sessions",
    "sessions_per_subject",
    "n_runs",
    "voxel_size",
    "mesh",
    "fs_dir",
    "atlas",
    "snr",
    "individual_variation",
    "session_gain_sd",
    "session_offset_sd",
    "psc_scale",
    "n_dead_vertices",
    "coco_folder",
    "coco_caption_files",
    "compress_images",
    "random_state",
)


def study_sizes(cfg, mesh: str | None, n_subjects: int) -> Sizes | None:
    """Subjects, images and units of the study's data; None for data without responses."""
    if cfg.data.kind == "virtual":
        o = virtual_options(cfg)
        n_images, n_total, voxel = o.n_per, o.n_total, o.voxel_size
        mesh = mesh or o.mesh
    elif cfg.data.kind == "nsd":
        n_images, n_total, voxel = NSD_IMAGES, 73_000, NSD_VOXEL_MM
    else:
        return None
    if cfg.space == "fsaverage":
        units = 2 * MESH_VERTICES.get(mesh, MESH_VERTICES["fsaverage"])
    else:  # the whole grid is stored; a coarser virtual voxel shrinks it by the cube
        scale = (NSD_VOXEL_MM / voxel) ** 3
        units = max(1, int(math.prod(NSD_VOLUME_GRID) * scale))
    n_total = min(n_total, n_images * n_subjects)
    return Sizes(n_subjects, n_images, n_total, units, mesh)


def check_data_fits(cfg, data_task, mesh: str | None, subjects: list[int], cache=None) -> None:
    """Refuse, before the tasks are planned, data that cannot fit the disk.

    Planning alone takes minutes for 100,000 subjects; the data's own size (the virtual NSD's
    betas, every subject's prepared betas) is known from the config and is checked first.

    Raises
    ------
    ConfigError
        Naming the sizes, the folder, its free space and the keys that set them.
    """
    n_subjects = len(subjects)
    sizes = study_sizes(cfg, mesh, n_subjects)
    if sizes is None:
        return
    built = cache is not None and cache.has(data_task.stage, data_task.key)
    steps = _data_steps(cfg, sizes, data_task, built, subjects)
    if built and cfg.data.kind == "virtual":
        # which subjects are prepared is known only from their tasks' keys: the full check
        # (check_resources, before a run) counts those still to prepare
        steps = [s for s in steps if not s.name.startswith("prepared")]
    problems = resource_problems(steps)
    if problems:
        keys = "data.n_subjects, subjects" + (
            ", data.options" if cfg.data.kind == "virtual" else ""
        )
        raise ConfigError(
            f"the data of {n_subjects:,} subject(s) × {sizes.n_images:,} images × "
            f"{sizes.units:,} units do not fit this machine (set by {keys}):\n  "
            + "\n  ".join(problems)
        )


def _data_steps(cfg, sizes: Sizes, data_task, built: bool, subjects: list[int]) -> list[Step]:
    """The virtual NSD build (unless ``built``) and every subject's prepared betas.

    The build's disk is :func:`~brainalign.datasets.virtual.virtual_nsd_disk_bytes` of the
    data task's arguments; a real NSD's preparation is
    :func:`~brainalign.datasets.nsd.prepare_nsd_disk_bytes` per subject (0 when its cache is
    valid; it reads headers only); elsewhere images × units × 4 bytes.
    """
    out = Path(cfg.output.dir)
    nsd_cache = Path(getattr(cfg.data, "cache_dir", None) or out / "cache" / "nsd")
    trials = 3 * sizes.n_images
    session = trials / max(1, _n_sessions(cfg)) * sizes.units * 4
    betas = sizes.n_images * sizes.units * 4
    steps = []
    if cfg.data.kind == "virtual" and not built:
        raw = _virtual_build_bytes(data_task.params, sizes)
        steps.append(
            Step(
                "virtual NSD build",
                1,
                raw,
                int(3 * session),
                raw / DISK_BYTES_PER_S * 3,
                Path(str(cfg.data.root)),
            )
        )
    prepared = betas * sizes.n_subjects
    if cfg.data.kind == "nsd":
        prepared = _nsd_prepare_bytes(cfg, nsd_cache, subjects, prepared)
    # streamed a session at a time into an on-disk average
    steps.append(
        Step(
            "prepared betas (per subject)",
            sizes.n_subjects,
            prepared,
            int(3 * session),
            (trials * sizes.units * 4 + betas) / DISK_BYTES_PER_S * sizes.n_subjects,
            nsd_cache,
        )
    )
    return steps


def _virtual_build_bytes(params: dict, sizes: Sizes) -> int:
    """What the virtual NSD's build writes (its own estimate; ours if it cannot tell)."""
    spaces = tuple(dict.fromkeys([params["space"], *params.get("also_spaces", [])]))
    try:
        return virtual_nsd_disk_bytes(
            params["n_subjects"], **{**params["options"], "spaces": spaces}
        )
    except (BrainAlignError, TypeError, ValueError):
        # every subject's betas (three repetitions of each image) and the images
        return sizes.n_subjects * 3 * sizes.n_images * sizes.units * 4 + sizes.n_total * IMAGE_BYTES


def _nsd_prepare_bytes(cfg, cache_dir: Path, subjects: list[int], fallback: int) -> int:
    """Sum of :func:`prepare_nsd_disk_bytes` over the study's subjects (``fallback`` when the
    root cannot tell, e.g. a subject's files are missing: the data check names those)."""
    try:
        return sum(
            prepare_nsd_disk_bytes(cfg.data.root, s, cfg.space, cache_dir=cache_dir)
            for s in subjects
        )
    except (BrainAlignError, OSError, ValueError):
        return fallback


def disc_units(radius: float, mesh: str) -> int:
    """Vertices in a geodesic disc of ``radius`` mm on one hemisphere of ``mesh`` (area ratio)."""
    n = MESH_VERTICES.get(mesh, MESH_VERTICES["fsaverage"])
    return int(min(n, max(1.0, math.pi * radius**2 / (HEMI_AREA_MM2 / n))))


def check_radius(cfg, mesh: str | None) -> None:
    """Refuse a surface searchlight radius that gives no neighbourhoods or absurd ones.

    Below the mesh's vertex spacing (:data:`MESH_SPACING_MM`) most discs hold only their
    centre, and a correlation over one vertex is undefined: the map would be NaN there. Above
    :data:`MAX_SURFACE_RADIUS_MM` a disc spans a large part of a hemisphere (memory grows with
    the square of the radius).

    Raises
    ------
    ConfigError
        Naming ``analyses.searchlight.radius``, the mesh, its spacing and a memory estimate.
    """
    sl = cfg.analyses.searchlight
    if not sl.enabled or sl.space != "fsaverage" or mesh not in MESH_SPACING_MM:
        return
    spacing = MESH_SPACING_MM[mesh]
    key = f"analyses.searchlight.radius: {sl.radius:g} mm"
    if sl.radius < spacing:
        raise ConfigError(
            f"{key} is below the {mesh} mesh's vertex spacing ({spacing:g} mm from a vertex to "
            "its nearest neighbour, median): most discs would hold only their centre and the "
            f"map would be NaN there; use a radius of a few times {spacing:g} mm (the paper: "
            "10 mm)"
        )
    if sl.radius > MAX_SURFACE_RADIUS_MM:
        pairs = 2 * MESH_VERTICES[mesh] * disc_units(sl.radius, mesh)
        raise ConfigError(
            f"{key} is more than {MAX_SURFACE_RADIUS_MM:g} mm (was it given in µm or m?): each "
            f"disc would hold {disc_units(sl.radius, mesh):,} of a hemisphere's "
            f"{MESH_VERTICES[mesh]:,} vertices and building them needs about "
            f"{format_bytes(pairs * NEIGHBOURHOOD_PEAK_BYTES)}; the paper uses 10 mm"
        )


def config_notes(cfg) -> list[str]:
    """Values the study will use other than those written, known before it runs.

    ``analyses.roi_rsa.subset_size`` larger than a subject's images is capped at them (one
    subset of every image); the run records the size used in ``run.json`` and the methods
    (see :func:`brainalign.pipeline.analyses.roi_rsa.used_subset_sizes`).
    """
    r = getattr(cfg.analyses, "roi_rsa", None)
    if r is None or not r.enabled or r.sampling != "paper":
        return []
    if cfg.data.kind == "virtual":
        o = virtual_options(cfg)
        n = o.n_per
        why = (
            f"the {n} images each subject saw (data.options.n_shared + n_unique = "
            f"{o.n_shared} + {o.n_unique})"
        )
    elif cfg.data.kind == "nsd":
        n, why = NSD_IMAGES, f"the images each subject saw (at most {NSD_IMAGES:,} in NSD)"
    else:
        return []
    if r.subset_size <= n:
        return []
    return [
        f"analyses.roi_rsa.subset_size = {r.subset_size:,} is more than {why}: it is capped "
        f"there (one subset of every image per subject); run.json and the methods give the "
        "size used"
    ]


# ------------------------------------------------------------------------------------ steps
def estimate_steps(plan, cache=None) -> list[Step]:
    """Disk, memory and time of each kind of step of ``plan`` still to run (see module doc)."""
    tasks = defaultdict(list)
    for t in all_tasks(plan.targets):
        if cache is None or not cache.has(t.stage, t.key):
            tasks[t.stage].append(t)
    if plan.config.data.kind == "rdms":
        return _rdm_steps(tasks.get("rdm_evaluate", []))
    sizes = study_sizes(plan.config, (plan.mesh or {}).get("mesh"), len(plan.subjects))
    if sizes is None:
        return []
    cfg = plan.config
    out = Path(cfg.output.dir)
    stages = out / "cache" / "stages"
    betas = sizes.n_images * sizes.units * 4  # one subject's prepared betas (float32)
    steps = []

    def add(stage, name, disk, memory, seconds, folder):
        n = len(tasks.get(stage, ()))
        if n:
            memory = BASE_TASK_BYTES + memory
            steps.append(Step(name, n, int(disk * n), int(memory), seconds * n, folder))

    for step in _data_steps(cfg, sizes, plan.data, not tasks.get("virtual_nsd"), plan.subjects):
        stage = "virtual_nsd" if step.name.startswith("virtual") else "responses"
        n = len(tasks.get(stage, ()))
        if n:  # only the subjects still to prepare
            scale = n / step.count
            steps.append(
                replace(step, count=n, disk=int(step.disk * scale), seconds=step.seconds * scale)
            )
    emb = sizes.n_total * EMBEDDING_DIM * 4
    add("features", "feature spaces", emb, 4 * emb, sizes.n_total * 0.01, stages)
    sl = cfg.analyses.searchlight
    if sizes.mesh in MESH_VERTICES and sl.space == "fsaverage":
        per_disc = disc_units(sl.radius, sizes.mesh)
        pairs = 2 * MESH_VERTICES[sizes.mesh] * per_disc
        add(
            "neighbourhoods",
            "searchlight discs",
            pairs * NEIGHBOURHOOD_DISK_BYTES,
            pairs * NEIGHBOURHOOD_PEAK_BYTES,
            pairs * 2e-7,
            stages,
        )
        chunk = min(sl.chunk_size, sizes.units)
        flops = chunk * sizes.n_images * per_disc * (per_disc + EMBEDDING_DIM)
        add(
            "searchlight",
            "searchlight maps (per chunk)",
            chunk * 8,
            PEAK_PER_BETAS["searchlight"] * betas + chunk * per_disc * 8,
            flops / FLOPS_PER_S,
            stages,
        )
    enc = cfg.analyses.encoding
    n_alphas = len(enc.alphas)
    # Y, its prediction and one fold's copy, plus the per-alpha scores of every unit
    add(
        "encoding",
        "encoding model (per subject)",
        3 * sizes.units * 4,
        PEAK_PER_BETAS["encoding"] * betas + n_alphas * sizes.units * 8,
        enc.cv * sizes.n_images * EMBEDDING_DIM * sizes.units * 2 / FLOPS_PER_S,
        stages,
    )
    add(
        "roi_rsa",
        "ROI RSA (per subject and model)",
        1_000,
        PEAK_PER_BETAS["roi_rsa"] * betas,
        sizes.n_images**2 * 2_000 / FLOPS_PER_S,
        stages,
    )
    add(
        "decoding",
        "decoding (per subject)",
        sizes.n_images * EMBEDDING_DIM * 4,
        PEAK_PER_BETAS["decoding"] * betas,
        sizes.n_images * sizes.units * EMBEDDING_DIM * 2 / FLOPS_PER_S,
        stages,
    )
    return steps


def _rdm_steps(evaluations) -> list[Step]:
    """RDM evaluations still to run, sized from each set's ``rdms/`` or ``responses/`` headers
    (read as memory maps) by :func:`~brainalign.pipeline.analyses.rdm_rsa.evaluation_memory_bytes`.
    A set an importer has not built yet is left out."""
    import numpy as np

    steps = []
    for t in evaluations:
        p = t.params
        shapes = []
        for folder in ("rdms", "responses"):
            for f in sorted((Path(p["root"]) / folder).glob("*.npy")):
                try:
                    shapes.append(np.load(f, mmap_mode="r").shape)
                except (OSError, ValueError):
                    continue  # the data check names the file
        shapes = [sh for sh in shapes if len(sh) == 3]
        if not shapes:
            continue
        n_subjects, n_stimuli = max((sh[0], sh[1]) for sh in shapes)
        # every layer of a vision model is a model RDM: about ten each; a sentence encoder
        # read layer by layer, up to 13 (MPNet)
        n_models = (
            len(p["spaces"])
            + 10 * len(p["vision"])
            + 13 * len(p.get("language", []))
            + (1 if p["data_models"] else 0)
        )
        memory = evaluation_memory_bytes(
            n_stimuli, n_subjects, n_models, p["method"], p["bootstrap"]
        )
        n_pairs = n_stimuli * (n_stimuli - 1) // 2
        resamples = 1 if p["bootstrap"] == "none" else p["n_bootstrap"]
        seconds = n_pairs * (n_subjects + n_models) * resamples * 5e-9
        steps.append(
            Step(f"RDM evaluation ({p['label']}, {p['method']})", 1, 0, memory, seconds, None)
        )
    return steps


def _n_sessions(cfg) -> int:
    if cfg.data.kind == "virtual":
        return int(cfg.data.options.get("n_sessions", 12))
    return 40  # NSD: up to 40 sessions per subject


def n_tasks(plan) -> int:
    return sum(1 for _ in all_tasks(plan.targets))


# ------------------------------------------------------------------------------------ machine
def machine_memory() -> tuple[int | None, int | None]:
    """(total, available) bytes of memory this process may use.

    ``/proc/meminfo`` (else ``os.sysconf``), lowered to the cgroup's limit where one is set: a
    SLURM job or a container sees the whole node in ``/proc/meminfo`` but is killed at its
    own limit.
    """
    total, avail = _system_memory()
    limit = _cgroup_limit()
    if limit is not None:
        total = limit if total is None else min(total, limit)
        avail = limit if avail is None else min(avail, limit)
    return total, avail


def _system_memory() -> tuple[int | None, int | None]:
    try:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, value = line.partition(":")
            info[name] = int(value.split()[0]) * 1024
        return info.get("MemTotal"), info.get("MemAvailable", info.get("MemFree"))
    except (OSError, ValueError, IndexError):
        pass
    try:  # no /proc (macOS, BSD): physical pages; available ones where the system tells
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
    except (OSError, ValueError, AttributeError):
        return None, None
    try:
        return total, os.sysconf("SC_AVPHYS_PAGES") * page
    except (OSError, ValueError):
        return total, None


#: where cgroup v2 and v1 keep this process's memory limit
CGROUP_LIMIT_FILES = (
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
)


def _cgroup_limit() -> int | None:
    """The cgroup memory limit in bytes, or None ("max", or v1's near-2⁶³ "no limit")."""
    for path in CGROUP_LIMIT_FILES:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
        return None
    return None


def free_disk(path: Path) -> tuple[Path, int | None]:
    """(existing folder, bytes free) for ``path``: its nearest existing parent is measured."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p, free_bytes(p)


def _format_seconds(s: float) -> str:
    if s < 60:
        return f"{max(s, 1):.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86400 * 3:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


# ------------------------------------------------------------------------------------ verdict
def resource_problems(steps: list[Step], workers: int = 1) -> list[str]:
    """What the machine lacks for ``steps``: disk per file system, memory per step."""
    problems = []
    per_device: dict = {}
    for s in steps:
        if s.folder is None or not s.disk:
            continue
        where, free = free_disk(s.folder)
        try:
            dev = os.stat(where).st_dev
        except OSError:
            dev = str(where)
        need, _, names, _ = per_device.get(dev, (0, free, [], where))
        per_device[dev] = (need + s.disk, free, [*names, s.name], where)
    for need, free, names, where in per_device.values():
        if free is not None and need > free:
            problems.append(
                f"disk: the steps still to run ({', '.join(names)}) write about "
                f"{format_bytes(need)} under {where}, which has {format_bytes(free)} free; "
                "free space, point output.dir (or data.cache_dir) at a larger disk, or make the "
                "study smaller"
            )
    total, avail = machine_memory()
    for s in steps:
        peak = s.memory * min(max(1, workers), s.count)
        if total is not None and peak > total:
            each = f" ({min(workers, s.count)} workers at once)" if workers > 1 else ""
            problems.append(
                f"memory: {s.name} needs about {format_bytes(peak)}{each}; this machine has "
                f"{format_bytes(total)} ({format_bytes(avail or 0)} available); make the step "
                "smaller (fewer images or units, a smaller radius, fewer workers)"
            )
    return problems


def describe_steps(steps: list[Step], n_tasks: int | None = None) -> str:
    """The estimates as a table, with the machine's memory and the free disk."""
    if not steps:
        return "estimates: nothing to run (or no size estimate for this data kind)"
    width = max(len(s.name) for s in steps)
    rows = [
        f"{'estimates (still to run)':<{width}}  tasks      disk  memory/task   time (1 worker)"
    ]
    for s in steps:
        rows.append(
            f"{s.name:<{width}}  {s.count:>5}  {format_bytes(s.disk):>8}  "
            f"{format_bytes(s.memory):>11}   ~{_format_seconds(s.seconds)}"
        )
    disk = sum(s.disk for s in steps)
    secs = sum(s.seconds for s in steps)
    total, avail = machine_memory()
    rows.append(
        f"total: about {format_bytes(disk)} written, ~{_format_seconds(secs)} on one worker"
        + (f" ({n_tasks:,} task(s) planned)" if n_tasks is not None else "")
    )
    if total is not None:
        rows.append(f"machine: {format_bytes(total)} memory ({format_bytes(avail or 0)} available)")
    folders = {str(free_disk(s.folder)[0]): free_disk(s.folder)[1] for s in steps if s.folder}
    for where, free in folders.items():
        if free is not None:
            rows.append(f"free disk under {where}: {format_bytes(free)}")
    return "\n".join(rows)


def check_resources(plan, cache=None, workers: int | None = None) -> list[Step]:
    """Estimate ``plan``'s steps and raise :class:`ConfigError` when the machine lacks room.

    Returns
    -------
    list of Step
        The estimates (for :func:`describe_steps`).
    """
    steps = estimate_steps(plan, cache)
    if workers is None:
        workers = plan.config.compute.workers
    problems = resource_problems(steps, workers)
    if problems:
        raise ConfigError(
            "this study does not fit this machine (estimates; `brainalign run --dry-run` shows "
            "them all):\n  " + "\n  ".join(problems)
        )
    return steps


__all__ = [
    "Step",
    "check_data_fits",
    "check_radius",
    "check_resources",
    "config_notes",
    "describe_steps",
    "estimate_steps",
    "machine_memory",
    "resource_problems",
    "study_sizes",
    "virtual_options",
]
