"""brainalign: language-model embeddings of scene captions vs the visual brain.

Subpackages follow the data flow: ``datasets`` → ``features`` → ``rsa`` / ``encoding`` /
``decoding`` / ``networks`` → ``stats`` → ``report``. They are imported lazily, so
``import brainalign`` is cheap and ``brainalign.rsa`` loads only what it needs.
"""

from __future__ import annotations

import importlib

from brainalign.errors import BrainAlignError

__version__ = "0.1.0"

_SUBPACKAGES = (
    "datasets",
    "features",
    "rsa",
    "encoding",
    "decoding",
    "networks",
    "stats",
    "report",
    "backend",
    "parallel",
    "pipeline",
)


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"brainalign.{name}")
    raise AttributeError(f"module 'brainalign' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBPACKAGES))


__all__ = ["BrainAlignError", "__version__", *_SUBPACKAGES]
