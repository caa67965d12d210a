"""Group statistics across subjects: t-tests, Benjamini–Hochberg FDR, exact sign-flip tests.

Subjects are on axis 0 everywhere: ``x`` has shape (n_subjects, ...) (vertices, ROIs, models).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
from scipy import stats

from brainalign.errors import InputError
from brainalign.utils.validation import check_random_state

TAILS = ("two-sided", "greater", "less")


class TTestResult(NamedTuple):
    t: np.ndarray
    p: np.ndarray


class FDRResult(NamedTuple):
    reject: np.ndarray
    qvalues: np.ndarray


class SignFlipResult(NamedTuple):
    stat: np.ndarray
    p: np.ndarray
    p_fwer: np.ndarray
    n_flips: int
    exact: bool


def _subjects(x, name="x", min_n=2) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] < min_n:
        raise InputError(
            f"{name}: expected subjects on axis 0 with at least {min_n} of them, got shape {x.shape}"
        )
    return x


def _p_from_t(t, df, tail):
    if tail == "two-sided":
        return 2 * stats.t.sf(np.abs(t), df)
    if tail == "greater":
        return stats.t.sf(t, df)
    if tail == "less":
        return stats.t.cdf(t, df)
    raise InputError(f"tail={tail!r}: expected one of {TAILS}")


def one_sample_t(x, popmean: float = 0.0, tail: str = "two-sided") -> TTestResult:
    """One-sample t-test across subjects at every position of ``x[0]``.

    Parameters
    ----------
    x : array, shape (n_subjects, ...)
    popmean : float
        Mean under the null (0 for correlations).
    tail : {"two-sided", "greater", "less"}
        The paper uses two-sided tests.

    Returns
    -------
    (t, p) : ndarrays of shape ``x.shape[1:]``. Positions where any subject is NaN give NaN
    (and are ignored by :func:`fdr`). Equal to ``scipy.stats.ttest_1samp``.
    """
    x = _subjects(x)
    n = x.shape[0]
    d = x - popmean
    mean = d.mean(axis=0)
    sd = d.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / np.sqrt(n))
    return TTestResult(t, _p_from_t(t, n - 1, tail))


def paired_t(a, b, tail: str = "two-sided") -> TTestResult:
    """Paired t-test across subjects (a − b), e.g. model A vs model B per vertex or ROI."""
    a, b = _subjects(a, "a"), _subjects(b, "b")
    if a.shape != b.shape:
        raise InputError(f"a and b: paired data need the same shape, got {a.shape} and {b.shape}")
    return one_sample_t(a - b, 0.0, tail)


def ttest_ind_paper(a, b) -> TTestResult:
    """The paper's pairwise model comparison: an *unpaired* two-sided ``scipy.stats.ttest_ind``.

    Paper-compatibility only: the data are paired by subject, so :func:`paired_t` is the right
    test; use this to reproduce the published figures.
    """
    a, b = _subjects(a, "a"), _subjects(b, "b")
    res = stats.ttest_ind(a, b, axis=0)
    return TTestResult(np.asarray(res.statistic), np.asarray(res.pvalue))


def compare_models(a, b, paper_compat: bool = False, tail: str = "two-sided") -> TTestResult:
    """Test model A against model B across subjects: paired t, or the paper's unpaired test."""
    if paper_compat:
        if tail != "two-sided":
            raise InputError("paper_compat=True reproduces the paper's two-sided ttest_ind only")
        return ttest_ind_paper(a, b)
    return paired_t(a, b, tail)


def fdr(p, q: float = 0.05) -> FDRResult:
    """Benjamini–Hochberg false discovery rate over all finite entries of ``p``.

    Returns
    -------
    (reject, qvalues) : boolean array and BH-adjusted p-values, both shaped like ``p``.
    NaN p-values are left out of the correction (reject False, q-value NaN). The adjusted
    values equal ``scipy.stats.false_discovery_control(p, method="bh")``.
    """
    if not (0 < q < 1):
        raise InputError(f"q={q!r}: expected a false discovery rate in (0, 1)")
    p = np.asarray(p, dtype=np.float64)
    flat = p.ravel()
    ok = np.isfinite(flat)
    if np.any((flat[ok] < 0) | (flat[ok] > 1)):
        raise InputError("p: p-values must lie in [0, 1]")
    qv = np.full(flat.shape, np.nan)
    reject = np.zeros(flat.shape, dtype=bool)
    pv = flat[ok]
    m = pv.size
    if m:
        order = np.argsort(pv, kind="stable")
        ranked = pv[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.minimum(adj, 1.0)
        out = np.empty(m)
        out[order] = adj
        qv[ok] = out
        reject[ok] = out <= q
    return FDRResult(reject.reshape(p.shape), qv.reshape(p.shape))


def flip_matrix(
    n: int, n_permutations: int | None = None, random_state=0
) -> tuple[np.ndarray, bool]:
    """Sign-flip patterns (n_flips, n): all 2^n when n ≤ 12 (or 2^n ≤ n_permutations), else random.

    The identity (no flip) is always the first row.
    """
    exact = n <= 12 if n_permutations is None else 2**n <= n_permutations
    if exact:
        flips = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
        return flips, True
    rng = check_random_state(random_state)
    k = 10000 if n_permutations is None else int(n_permutations)
    flips = rng.choice([1.0, -1.0], size=(k, n))
    flips[0] = 1.0
    return flips, False


def _flip_t(x2d, flips):
    """t statistics (n_flips, U) of x2d (n, U) under each flip; Σx² is flip-invariant."""
    n = x2d.shape[0]
    mean = flips @ x2d / n
    ss = (x2d**2).sum(0)
    var = (ss[None, :] - n * mean**2) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return mean / np.sqrt(np.maximum(var, 0) / n)


def sign_flip(
    x,
    n_permutations: int | None = None,
    tail: str = "two-sided",
    stat: str = "t",
    random_state=0,
    chunk: int = 4096,
) -> SignFlipResult:
    """Sign-flip permutation test of a zero mean across subjects, at every position of ``x[0]``.

    Exact (every one of the 2^n flips) for n ≤ 12 subjects unless ``n_permutations`` is
    given; otherwise ``n_permutations`` (default 10,000) random flips including the identity.
    p-values count the observed statistic among the flips, so they are never 0.

    Parameters
    ----------
    x : array, shape (n_subjects, ...)
    stat : {"t", "mean"}
    tail : {"two-sided", "greater", "less"}

    Returns
    -------
    SignFlipResult
        ``stat`` and per-position ``p`` (shape ``x.shape[1:]``), ``p_fwer`` corrected by the
        maximum statistic over all positions, ``n_flips`` and ``exact``.
    """
    x = _subjects(x)
    if tail not in TAILS:
        raise InputError(f"tail={tail!r}: expected one of {TAILS}")
    if stat not in ("t", "mean"):
        raise InputError(f"stat={stat!r}: expected 't' or 'mean'")
    shape = x.shape[1:]
    x2 = x.reshape(x.shape[0], -1)
    if np.isnan(x2).any():
        raise InputError(
            "x: contains NaN; drop those positions first (NaN would silently void the test)"
        )
    flips, exact = flip_matrix(x.shape[0], n_permutations, random_state)

    def score(s):
        if tail == "two-sided":
            return np.abs(s)
        return s if tail == "greater" else -s

    obs = np.empty(x2.shape[1])
    count = np.zeros(x2.shape[1])
    maxnull = np.full(flips.shape[0], -np.inf)
    for s in range(0, x2.shape[1], chunk):
        xs = x2[:, s : s + chunk]
        null = _flip_t(xs, flips) if stat == "t" else flips @ xs / xs.shape[0]
        sc = score(null)
        obs[s : s + chunk] = null[0]
        # a tiny tolerance so that exactly tied flips (e.g. the sign-reversed identity) count
        count[s : s + chunk] = (sc >= sc[0] - 1e-12 * np.abs(sc[0])).sum(0)
        maxnull = np.maximum(maxnull, np.nanmax(sc, axis=1))
    p = count / flips.shape[0]
    sc_obs = score(obs)
    srt = np.sort(maxnull)
    p_fwer = (
        srt.size - np.searchsorted(srt, sc_obs - 1e-12 * np.abs(sc_obs), side="left")
    ) / srt.size
    return SignFlipResult(
        obs.reshape(shape), p.reshape(shape), p_fwer.reshape(shape), flips.shape[0], exact
    )
