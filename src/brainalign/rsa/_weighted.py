"""RDM comparisons on bootstrap samples without building the resampled RDMs.

A bootstrap sample over stimuli draws stimulus ``i`` ``k_i`` times. rsatoolbox builds the
resampled RDM (rows and columns repeated; the entries between two copies of one stimulus are
NaN and dropped), so the pair ``(i, j)`` appears ``k_i · k_j`` times in the compared vectors.
Every statistic of such a vector is the same statistic of the original condensed vector with
weights ``c_p = k_i k_j`` per pair: means and correlations become weighted sums (matrix products
over the pairs), and ranks (ties averaged, as ``scipy.stats.rankdata`` on the expanded vector)
follow from cumulative weights along each vector's sort order, which is computed once. A
bootstrap over subjects weights each subject by the number of times it was drawn. Nothing of
size ``n_samples × n_pairs`` is ever formed.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from brainalign.errors import InputError
from brainalign.rsa.compare import compare_rdms

FAST_METHODS = ("pearson", "spearman", "cosine")
#: pairs per block when RDMs are longer: the sums of :func:`similarity` and
#: :func:`pooled_ceiling` are accumulated block by block (float64 temporaries of a few rows ×
#: ``PAIR_BLOCK``, never of n_rows × n_pairs), so 10,000 stimuli (5e7 pairs) need no copies of
#: the RDMs; shorter RDMs take the one-shot path (same sums, summed in one go)
PAIR_BLOCK = 1 << 21


def _blocks(n_pairs: int):
    for start in range(0, n_pairs, PAIR_BLOCK):
        yield slice(start, min(start + PAIR_BLOCK, n_pairs))


def pair_weights(counts: np.ndarray, dtype=np.float64) -> np.ndarray:
    """``c_p = k_i k_j`` for every pair ``i < j`` (condensed order) from the stimulus counts
    ``k`` of a bootstrap sample, ``(n_pairs,)`` of ``dtype``, built row by row (no pair-index
    arrays, which take 16 bytes per pair)."""
    k = np.asarray(counts).astype(dtype)
    n = k.shape[0]
    out = np.empty(n * (n - 1) // 2, dtype)
    at = 0
    for i in range(n - 1):
        np.multiply(k[i + 1 :], k[i], out=out[at : at + n - 1 - i])
        at += n - 1 - i
    return out


class _Sums:
    """Weighted sums over pairs between rows of ``A`` (n_a) and of ``B`` (n_b), added block by
    block: Σ c a b, Σ c a, Σ c b, Σ c a², Σ c b², Σ c — all :func:`similarity` needs."""

    def __init__(self, n_a: int, n_b: int):
        self.ab = np.zeros((n_a, n_b))
        self.a1, self.a2 = np.zeros(n_a), np.zeros(n_a)
        self.b1, self.b2 = np.zeros(n_b), np.zeros(n_b)
        self.W = 0.0

    def add(self, a: np.ndarray, b: np.ndarray, c: np.ndarray | None) -> None:
        if c is None:
            self.ab += a @ b.T
            self.a1 += a.sum(1)
            self.b1 += b.sum(1)
            self.a2 += np.einsum("ij,ij->i", a, a)
            self.b2 += np.einsum("ij,ij->i", b, b)
            self.W += a.shape[1]
        else:
            bc = b * c
            self.ab += a @ bc.T
            self.a1 += a @ c
            self.b1 += b @ c
            self.a2 += np.einsum("ij,ij,j->i", a, a, c)
            self.b2 += np.einsum("ij,ij->i", bc, b)
            self.W += float(c.sum())

    def result(self, method: str) -> np.ndarray:
        return _from_sums(self.ab, self.a1, self.b1, self.a2, self.b2, self.W, method)


def _from_sums(ab, a1, b1, a2, b2, W, method: str) -> np.ndarray:
    if method == "cosine":
        num, va, vb = ab, a2, b2
    else:
        num = ab - np.outer(a1, b1) / W
        va, vb = a2 - a1 * a1 / W, b2 - b1 * b1 / W
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / np.sqrt(np.outer(np.maximum(va, 0), np.maximum(vb, 0)))
    out[~np.isfinite(out)] = 0.0
    return np.clip(out, -1.0, 1.0)


class RankPrep:
    """The sort order of each row of ``X`` and, for rows with ties, where tie groups start.

    Kept small for long rows: the order as int32 (when the rows are shorter than 2³¹) and one
    bool per entry of a row with ties; the sorted copy and the argsort's int64 output exist for
    one row at a time.

    Attributes
    ----------
    order : (n_rows, n_pairs) int32 or int64
        ``np.argsort`` of each row.
    new_group : dict of int -> (n_pairs,) bool
        For each row with ties: True where a group of equal values starts (in sorted order).
    """

    def __init__(self, X: np.ndarray):
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        R, P = X.shape
        self.shape = (R, P)
        self.order = np.empty((R, P), np.int32 if P < 2**31 else np.int64)
        self.new_group: dict[int, np.ndarray] = {}
        for r in range(R):
            self.order[r] = np.argsort(X[r])
            xs = X[r][self.order[r]]
            new = np.ones(P, bool)
            np.not_equal(xs[1:], xs[:-1], out=new[1:])
            if not new.all():
                self.new_group[r] = new

    @property
    def tie_rows(self) -> np.ndarray:
        return np.array(sorted(self.new_group), dtype=np.int64)

    def row(self, r: int) -> RankPrep:
        """The preparation of row ``r`` alone (views, no copies)."""
        one = RankPrep.__new__(RankPrep)
        one.shape = (1, self.shape[1])
        one.order = self.order[r : r + 1]
        one.new_group = {0: self.new_group[r]} if r in self.new_group else {}
        return one


def _ranked_row(cs: np.ndarray, new: np.ndarray | None) -> np.ndarray:
    """Weighted ranks of one row in sorted order, from its weights ``cs`` (in sorted order);
    ``new`` marks where tie groups start (None: no ties). ``cs`` is overwritten."""
    cum = np.cumsum(cs)
    if new is None:  # exact for entries without ties: cum - (cs - 1) / 2
        cs -= 1.0
        cs /= 2.0
        cum -= cs
        return cum
    last = np.ones_like(new)
    last[:-1] = new[1:]
    end = cum[last]  # cumulative weight at the end of each group
    start = np.empty_like(end)
    start[0] = 0.0
    start[1:] = end[:-1]
    g = np.cumsum(new, dtype=np.int64) - 1  # group of every sorted element
    return end[g] - (end[g] - start[g] - 1.0) / 2.0


def weighted_ranks(X: np.ndarray, c: np.ndarray | None, prep: RankPrep | None = None) -> np.ndarray:
    """Ranks of the rows of ``X`` as if entry ``p`` were repeated ``c[p]`` times.

    Ties (and the copies of one entry) get their average rank, as ``scipy.stats.rankdata`` on
    the expanded vector. Entries with ``c[p] = 0`` get a value that carries no weight. Row by
    row: besides the result, memory holds a few rows' worth (issue 23: 10,000 stimuli).
    """
    prep = prep or RankPrep(X)
    R, P = prep.shape
    c = None if c is None else np.asarray(c, dtype=np.float64)
    out = np.empty((R, P))
    for r in range(R):
        order = prep.order[r]
        cs = np.ones(P) if c is None else c[order]
        out[r, order] = _ranked_row(cs, prep.new_group.get(r))
    return out


def compare_values(X: np.ndarray, method: str, c=None, prep: RankPrep | None = None):
    """What the method correlates: weighted ranks for spearman, the values otherwise."""
    return weighted_ranks(X, c, prep) if method == "spearman" else X


def similarity(A, B, method: str, c=None, A2=None, B2=None) -> np.ndarray:
    """``(n_a, n_b)`` weighted Pearson (pearson, spearman on ranks) or cosine similarities.

    ``A`` and ``B`` are in :func:`compare_values` space; ``c`` pair weights (None: all 1);
    ``A2``/``B2`` optional precomputed squares. A constant (or zero) vector gives 0.
    """
    if method not in FAST_METHODS:
        raise InputError(f"method={method!r}: weighted comparison supports {FAST_METHODS}")
    if A.shape[1] > PAIR_BLOCK:  # long RDMs: sums block by block, no n_rows × n_pairs copies
        sums = _Sums(A.shape[0], B.shape[0])
        for sl in _blocks(A.shape[1]):
            sums.add(A[:, sl], B[:, sl], None if c is None else c[sl])
        return sums.result(method)
    A2 = A * A if A2 is None else A2
    B2 = B * B if B2 is None else B2
    if c is None:
        ab = A @ B.T
        a1, b1, a2, b2, W = A.sum(1), B.sum(1), A2.sum(1), B2.sum(1), float(A.shape[1])
    else:
        ab = A @ (B * c).T
        a1, b1, a2, b2, W = A @ c, B @ c, A2 @ c, B2 @ c, float(c.sum())
    return _from_sums(ab, a1, b1, a2, b2, W, method)


def pool_transform(X: np.ndarray, method: str, pool: str, c=None, prep=None) -> np.ndarray:
    """What is averaged over subjects to pool RDMs (see :func:`brainalign.rsa.noise_ceiling_bounds`):
    the RDMs themselves (``pool="mean"``), or rsatoolbox's ``pool_rdm`` transform (z-scores for
    pearson, ranks for spearman and tau-a, RMS-scaled for cosine) under weights ``c``."""
    if pool == "mean":
        return X
    W = X.shape[1] if c is None else c.sum()

    def wmean(Y):
        return Y.mean(axis=1) if c is None else Y @ c / W

    if method == "pearson":
        Z = X - wmean(X)[:, None]
        return Z / np.sqrt(wmean(Z * Z))[:, None]
    if method in ("spearman", "kendall_tau_a"):
        return weighted_ranks(X, c, prep)
    if method == "cosine":
        return X / np.sqrt(wmean(X * X))[:, None]
    raise InputError(f"method={method!r}: no pooling rule")


def pooled_ceiling(
    D: np.ndarray,
    w: np.ndarray,
    method: str,
    pool: str,
    c=None,
    prep=None,
    D_values=None,
    pool_prep=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper noise-ceiling similarity of every drawn subject.

    ``D`` (n_subjects, n_pairs); ``w`` how often each subject was drawn. The upper bound compares
    a subject with the pool of all drawn RDMs, the lower bound with the pool of the others (all
    copies of the subject left out); with one distinct subject both are the upper bound, as in
    rsatoolbox. ``D_values``: :func:`compare_values` of ``D`` under ``c``; ``pool_prep``: rank
    preparation of the pooled vectors (lower bounds, then upper) when they never change.

    Returns
    -------
    drawn : indices of the drawn subjects; lower, upper : their bounds
    """
    w = np.asarray(w, dtype=np.float64)
    drawn = np.flatnonzero(w > 0)
    if method != "spearman" and D.shape[1] > PAIR_BLOCK:
        return drawn, *_pooled_ceiling_blocked(D, w, drawn, method, pool, c)
    T = pool_transform(D, method, pool, c, prep)
    counts = _pool_counts(w, drawn)
    if D_values is None:
        D_values = compare_values(D, method, c, prep)
    if D.shape[1] > PAIR_BLOCK:  # long rows (Spearman): one pool formed and ranked at a time
        every = np.array_equal(drawn, np.arange(D.shape[0]))
        drawn_values = D_values if every else D_values[drawn]
        sims = np.vstack(
            [
                similarity(
                    compare_values(
                        ((counts[r] @ T) / counts[r].sum())[None],
                        method,
                        c,
                        None if pool_prep is None else pool_prep.row(r),
                    ),
                    drawn_values,
                    method,
                    c,
                )
                for r in range(len(counts))
            ]
        )
    else:
        pools = (counts @ T) / counts.sum(axis=1)[:, None]
        Pv = compare_values(pools, method, c, pool_prep)
        sims = similarity(Pv, D_values[drawn], method, c)
    upper = sims[-1]
    lower = np.diag(sims[:-1]) if len(drawn) > 1 else upper.copy()
    return drawn, lower, upper


def _pool_counts(w: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Subject weights of each pool: every drawn subject's others, then all."""
    # integer weights first, one division last: sums of ranks (half-integers) stay exact, so
    # tied pooled ranks stay tied whatever the summation order
    if len(drawn) > 1:
        counts = np.repeat(w[None], len(drawn), axis=0)
        counts[np.arange(len(drawn)), drawn] = 0.0
        return np.vstack([counts, w[None]])
    return w[None]


def _pooled_ceiling_blocked(D, w, drawn, method: str, pool: str, c):
    """:func:`pooled_ceiling` for pearson and cosine on long RDMs: the pools and their sums
    with the drawn subjects' RDMs are formed block by block of pairs (memory: a few rows of
    ``PAIR_BLOCK``). rsatoolbox pooling needs each row's weighted mean and scale first: one
    more pass."""
    counts = _pool_counts(w, drawn)
    share = counts / counts.sum(axis=1)[:, None]
    shift, scale = np.zeros(D.shape[0]), np.ones(D.shape[0])
    if pool != "mean":
        stats = _Sums(D.shape[0], 1)
        for sl in _blocks(D.shape[1]):
            stats.add(D[:, sl], np.ones((1, sl.stop - sl.start)), None if c is None else c[sl])
        mean = stats.a1 / stats.W
        if method == "pearson":  # z-scores: centre, then divide by the RMS of the centred
            shift = mean
            scale = np.sqrt(np.maximum(stats.a2 / stats.W - mean * mean, 0.0))
        else:  # cosine: RMS-scaled
            scale = np.sqrt(stats.a2 / stats.W)
    sums = _Sums(counts.shape[0], len(drawn))
    for sl in _blocks(D.shape[1]):
        block = D[:, sl]
        T = (block - shift[:, None]) / scale[:, None] if pool != "mean" else block
        sums.add(share @ T, block[drawn], None if c is None else c[sl])
    sims = sums.result(method)
    upper = sims[-1]
    lower = np.diag(sims[:-1]) if len(drawn) > 1 else upper.copy()
    return lower, upper


def loo_pools(D: np.ndarray) -> np.ndarray:
    """The pools :func:`pooled_ceiling` forms when every subject is drawn once (mean pooling)."""
    S = D.shape[0]
    counts = np.vstack([np.ones((S, S)) - np.eye(S), np.ones((1, S))])
    return (counts @ D) / counts.sum(axis=1)[:, None]


# ---------------------------------------------------------------------- reference (expanded)
def expand(X: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """The rows of ``X`` with entry ``p`` repeated ``c[p]`` times (the explicit resampled vectors)."""
    if c is None:
        return X
    return np.repeat(X, np.asarray(c, dtype=np.int64), axis=1)


def expanded_ceiling(D, w, method, pool, c=None):
    """:func:`pooled_ceiling` on explicitly expanded vectors with ``compare_rdms`` (any method)."""
    E = expand(D, c)
    w = np.asarray(w, dtype=np.float64)
    drawn = np.flatnonzero(w > 0)
    if pool == "mean":
        T = E
    elif method in ("spearman", "kendall_tau_a"):
        T = stats.rankdata(E, axis=1)
    else:
        T = pool_transform(E, method, pool)
    total = w @ T
    W = w.sum()
    upper = np.array([compare_rdms(total / W, E[s], method) for s in drawn])
    if len(drawn) > 1:
        lower = np.array(
            [compare_rdms((total - w[s] * T[s]) / (W - w[s]), E[s], method) for s in drawn]
        )
    else:
        lower = upper.copy()
    return drawn, lower, upper
