"""Where brainalign keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

from brainalign.errors import InputError


def default_cache_dir(create: bool = True) -> Path:
    """The user cache folder (created unless ``create=False``).

    ``$BRAINALIGN_CACHE`` if set, else ``$XDG_CACHE_HOME/brainalign`` (the XDG base-directory
    convention), else ``~/.cache/brainalign``.
    """
    env = os.environ.get("BRAINALIGN_CACHE")
    xdg = os.environ.get("XDG_CACHE_HOME")
    if env:
        path = Path(env).expanduser()
    elif xdg and Path(xdg).is_absolute():  # the spec says to ignore a relative value
        path = Path(xdg) / "brainalign"
    else:
        path = Path.home() / ".cache" / "brainalign"
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InputError(
                f"cache: {path} (from BRAINALIGN_CACHE, XDG_CACHE_HOME or ~/.cache) is not a "
                "folder; set BRAINALIGN_CACHE to a folder brainalign may write"
            ) from None
    return path
