"""One exception family for everything brainalign raises on purpose.

A message names the file or argument, what was expected, what was found and what to do.
"""

from __future__ import annotations


class BrainAlignError(Exception):
    """Base class of every error brainalign raises deliberately."""


class DataFormatError(BrainAlignError, ValueError):
    """A data file is missing, corrupt, truncated or has an unexpected shape or content."""


class InputError(BrainAlignError, ValueError):
    """An argument has the wrong type, shape, dtype or value."""


class ModelNotFoundError(BrainAlignError, LookupError):
    """A model (weights, package, registry entry) is not available offline."""


class IntegrityError(BrainAlignError):
    """A file's stored hash does not match its content (corrupt or tampered cache or bank)."""


class ConfigError(BrainAlignError, ValueError):
    """A configuration file or value is invalid; the message names the key."""


class FolderInUseError(BrainAlignError, RuntimeError):
    """Another brainalign process holds the lock on a folder (the message names it)."""


class WriteError(BrainAlignError, OSError):
    """A file or folder cannot be written (read-only, no permission, disk full); the message
    names the folder and what to do. An ``OSError`` too, so callers that catch those still do."""


__all__ = [
    "BrainAlignError",
    "DataFormatError",
    "InputError",
    "ModelNotFoundError",
    "IntegrityError",
    "ConfigError",
    "FolderInUseError",
    "WriteError",
]
