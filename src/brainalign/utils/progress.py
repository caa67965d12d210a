"""Progress bars for long work (tqdm), silent when not attached to a terminal unless asked."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress(iterable=None, *, total=None, desc=None, verbose: bool | None = None, unit="it"):
    """Wrap ``iterable`` in a progress bar with time left.

    ``verbose=None`` shows the bar on an interactive terminal and hides it otherwise
    (tests, CI logs); ``BRAINALIGN_PROGRESS=1`` forces it on.
    """
    if verbose is None:
        verbose = os.environ.get("BRAINALIGN_PROGRESS") == "1" or sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=not verbose, unit=unit, leave=False)
