"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BRAINALIGN_SHARED_DATA", REPO.parent / "shared" / "data"))


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
