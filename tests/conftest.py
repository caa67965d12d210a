"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import fcntl
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BRAINALIGN_SHARED_DATA", REPO.parent / "shared" / "data"))

#: the test files that take minutes (CI's --durations), longest first. Under ``make test``
#: (``--dist loadfile --no-loadscope-reorder``) files go to the two workers in collection order,
#: so starting with these keeps one long file from running alone at the end of the suite.
LONGEST_FIRST = (
    "tests/networks/test_trained_nets.py",
    "tests/pipeline/test_study.py",
    "tests/report/test_figures.py",
    "tests/report/test_report.py",
    "tests/report/test_surface_views.py",
    "tests/faults/test_superseded.py",
    "tests/decoding/test_decoder.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder (COCO captions and images, GCC, fsaverage atlases)."""
    if not (SHARED_DATA / "MANIFEST.md").exists():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set BRAINALIGN_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own brainalign cache, so tests never see a user's cache."""
    os.environ["BRAINALIGN_CACHE"] = str(tmp_path_factory.mktemp("brainalign_cache"))


@pytest.fixture(scope="session")
def mpnet():
    """The paper's sentence encoder (all-mpnet-base-v2), loaded once per test session, offline."""
    from brainalign.features import SentenceEncoder

    return SentenceEncoder("all-mpnet-base-v2")


#: arguments of the shared virtual NSD (tests may read them to know the sizes)
VIRTUAL_NSD_ARGS = dict(
    n_subjects=8, n_shared=60, n_unique=120, n_sessions=12, voxel_size=4.0, random_state=0
)


@pytest.fixture(scope="session")
def virtual_nsd_root(tmp_path_factory) -> Path:
    """A small virtual NSD, written once per test session (≈ 20–40 s); treat it as read-only.

    Made by ``make_virtual_nsd(root, **VIRTUAL_NSD_ARGS)``: 8 subjects; 60 shared images
    (seen by all) + 120 unique images per subject, each shown 3 times in sessions of 45 trials
    (12 sessions for a full subject; NSD's pattern 40/40/32/30/40/32/40/30 scaled, so subjects
    1, 2, 5, 7 have 12 sessions and all 180 images seen 3 times, subjects 3, 6 have 10 and
    subjects 4, 8 have 9 sessions, with fewer 3-times images, as in NSD). Spaces: ``fsaverage`` = fsaverage5 (10,242 vertices per
    hemisphere, 20,484 units, left first) and ``func1pt8mm`` = a small 4-mm volume (about
    40×49×37 voxels, ~21k brain-mask voxels), both readable with
    ``load_nsd(root, subject, space)``. Stimuli: ``load_stimuli(root)`` (1,020 images, 5
    captions each, categories, 425-px images in ``nsd_stimuli.hdf5``).

    Ground truth in ``root / "virtual_truth.json"`` and ``"virtual_truth.npz"``:
    ``truth["rois"][roi]["representations"]`` is the planted generator of each streams ROI
    (early: lowlevel, ventral: objects, lateral: events, parietal: layout, mid-ROIs: 50/50
    mixtures with lowlevel); the null region (rest of cortex) is noise only;
    ``truth["special_nsd_ids"]`` = shared images seen 3× by all subjects;
    ``truth["dead_vertices"]`` are constant (NaN after z-scoring, outside nsdgeneral). The npz
    holds ``nsd_ids``, ``representation_<name>`` (rows aligned with ``nsd_ids``),
    ``streams_labels``, ``nsdgeneral``, ``ncsnr`` (per fsaverage5 vertex, lh then rh).
    """
    from brainalign.datasets import make_virtual_nsd

    def build(folder):
        return make_virtual_nsd(folder / "nsd", **VIRTUAL_NSD_ARGS)

    return build_once(tmp_path_factory, "virtual_nsd", build)


@pytest.fixture(scope="session")
def shared_build(tmp_path_factory):
    """``shared_build(name, build)``: :func:`build_once` for fixtures of other folders."""
    return lambda name, build: build_once(tmp_path_factory, name, build)


def build_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)``'s result, made once per test run even when pytest-xdist runs workers.

    For read-only data only: under xdist every worker would otherwise build its own copy (the
    virtual NSD costs 20–40 s), so the first worker builds it in the run's shared temporary
    folder under a lock and the others wait for it and reuse it.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return Path(build(tmp_path_factory.mktemp(name)))
    run_folder = tmp_path_factory.getbasetemp().parent
    folder, done = run_folder / name, run_folder / f"{name}.built"
    with open(run_folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            folder.mkdir()
            done.write_text(str(build(folder)))
    return Path(done.read_text())


class BagOfWordsEncoder:
    """A small deterministic sentence encoder for tests: mean of per-word random unit vectors."""

    def __init__(self, dim=32, seed=0):
        self.dim = dim
        self.seed = seed
        self.identity = f"bag-of-words-{dim}@{seed}"

    def _word(self, w):
        v = np.random.default_rng(zlib.crc32(w.encode()) + self.seed).standard_normal(self.dim)
        return v / np.linalg.norm(v)

    def encode(self, texts, verbose=None):
        out = []
        for t in texts:
            words = [w.strip(".,!?").lower() for w in t.split()] or [""]
            v = np.mean([self._word(w) for w in words], axis=0)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


@pytest.fixture(scope="session")
def bow_encoder():
    return BagOfWordsEncoder()
