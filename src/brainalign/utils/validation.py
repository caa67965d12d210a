"""Uniform argument checks (one place, one message style)."""

from __future__ import annotations

import numbers

import numpy as np

from brainalign.errors import InputError


def check_random_state(random_state) -> np.random.Generator:
    """Turn ``None``, an int or a Generator into a ``numpy.random.Generator``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    raise InputError(
        f"random_state: expected None, an int or numpy.random.Generator, got {type(random_state).__name__}"
    )


def check_2d(X, name: str = "X", dtype=None, allow_nan: bool = True) -> np.ndarray:
    """Return ``X`` as a 2-D array (n_samples × n_features) or raise ``InputError`` naming it."""
    X = np.asarray(X) if dtype is None else np.asarray(X, dtype=dtype)
    if X.ndim != 2:
        raise InputError(
            f"{name}: expected a 2-D array (n_samples × n_features), got shape {X.shape}"
        )
    if not np.issubdtype(X.dtype, np.number) and X.dtype != bool:
        raise InputError(f"{name}: expected a numeric array, got dtype {X.dtype}")
    if not allow_nan and np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        raise InputError(f"{name}: contains NaN or infinite values; drop or impute them first")
    return X


def did_you_mean(names, choices) -> str:
    """`` (did you mean 'x'?)`` for the first of ``names`` close to one of ``choices`` (a
    typo'd key, ROI, feature space or model name), else an empty string."""
    import difflib

    for name in [names] if isinstance(names, str) else names:
        near = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
        if near:
            return f" (did you mean {near[0]!r}?)"
    return ""
