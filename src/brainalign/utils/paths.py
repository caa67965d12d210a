"""Where brainalign keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """The user cache folder: ``$BRAINALIGN_CACHE`` if set, else ``~/.cache/brainalign``."""
    env = os.environ.get("BRAINALIGN_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "brainalign"
    path.mkdir(parents=True, exist_ok=True)
    return path
