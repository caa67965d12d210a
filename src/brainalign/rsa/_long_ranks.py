"""Spearman evaluation of long RDMs in a few bytes per pair (issue 23, case 7).

The dual bootstrap ranks every RDM under each sample's pair weights (:mod:`._weighted`). For
10,000 stimuli (5·10⁷ pairs) float64 rank rows, float64 weights and int64 sort orders took
about 6 GB. Here every per-pair array is as small as its values allow, and all of them are
exact:

* sort orders: ``int32`` (rows shorter than 2³¹), one per data, model and pooled RDM, computed
  once; where tie groups start: one *bit* per pair;
* pair weights ``k_i k_j``: the smallest unsigned integer type that holds ``max(k)²``
  (``uint8`` for up to 15 draws of a stimulus, which covers every realistic bootstrap);
* ranks: *doubled* weighted ranks as ``int32``. A weighted rank with averaged ties is a
  half-integer ``r = start + (G + 1) / 2`` (``start``: weight before the tie group, ``G``: the
  group's weight), so ``2 r = start + end + 1`` is an integer ``≤ 2 Σc + 1``; ``0.5 · 2r`` in
  float64 gives back the float64 ranks of :func:`._weighted.weighted_ranks` bit for bit;
* ranks are built along the sort order in chunks of :data:`RANK_CHUNK` entries (int64
  temporaries of that length), never as whole float64 rows.

Similarities are the blocked sums of :func:`._weighted.similarity` on float64 blocks of these
ranks (the same blocks and shapes, so the same values). Pools of the noise ceiling
(``pool="mean"``) are means of the raw RDMs: a pool that *is* one subject's RDM (one subject
drawn, with a power-of-two count, so ``k x / k`` is exact) reuses that subject's order and
ranks; the others (with two subjects only the mean of both) are sorted once and kept when they
recur on every sample (leave-one-out pools of all subjects).
"""

from __future__ import annotations

import numpy as np

from brainalign.rsa import _weighted

#: entries ranked at a time along a row's sort order (int64 temporaries of this length)
RANK_CHUNK = 1 << 20


# --------------------------------------------------------------------------- pair weights
def compact_pair_weights(counts: np.ndarray) -> np.ndarray:
    """``c_p = k_i k_j`` for every pair ``i < j`` (condensed order), ``(n_pairs,)`` in the
    smallest unsigned integer type holding ``max(k)²`` (1 byte per pair for ``k ≤ 15``)."""
    top = int(np.asarray(counts, dtype=np.int64).max(initial=0)) ** 2
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if top <= np.iinfo(t).max)
    return _weighted.pair_weights(counts, dtype)


# ------------------------------------------------------------------------------ sort orders
class SortedRow:
    """One row's sort order and where its tie groups start.

    Attributes
    ----------
    order : (n_pairs,) int32 (int64 for rows of 2³¹ entries or more)
        ``np.argsort`` of the row.
    starts : (ceil(n_pairs / 8),) uint8 or None
        Packed bits (``np.packbits`` order), bit ``p`` set where sorted position ``p`` starts a
        group of equal values; None when the row has no ties.
    """

    def __init__(self, x: np.ndarray):
        x = np.asarray(x)
        P = x.shape[0]
        order = np.argsort(x)  # int64: the only whole-row temporary (8 bytes per pair)
        self.order = order.astype(np.int32) if P < 2**31 else order
        del order
        self.size = P
        self.starts = _tie_starts(x, self.order)

    def flags(self, a: int, b: int) -> np.ndarray:
        """``(b - a,)`` bool: which sorted positions ``a … b-1`` start a tie group."""
        lo, hi = a >> 3, (b + 7) >> 3
        bits = np.unpackbits(self.starts[lo:hi])
        return bits[a - (lo << 3) : b - (lo << 3)].view(bool)


def _tie_starts(x: np.ndarray, order: np.ndarray) -> np.ndarray | None:
    """Packed group-start bits of ``x`` along ``order`` (see :class:`SortedRow`), built in
    chunks (multiples of 8 entries, so each chunk packs into whole bytes); None without ties."""
    P = order.shape[0]
    bits = np.empty((P + 7) >> 3, np.uint8)
    ties = False
    step = RANK_CHUNK - RANK_CHUNK % 8 or 8
    for a in range(0, P, step):
        b = min(a + step, P)
        xs = x[order[max(a - 1, 0) : b]]
        new = np.empty(b - a, bool)
        if a == 0:
            new[0] = True
            np.not_equal(xs[1:], xs[:-1], out=new[1:])
        else:
            np.not_equal(xs[1:], xs[:-1], out=new)
        ties = ties or not new.all()
        bits[a >> 3 : (b + 7) >> 3] = np.packbits(new)
    return bits if ties else None


# ------------------------------------------------------------------------------------ ranks
def rank_dtype(total_weight: int) -> type:
    """The integer type of doubled ranks ``≤ 2 · total_weight + 1``."""
    return np.int32 if 2 * total_weight + 1 < 2**31 else np.int64


def doubled_ranks(row: SortedRow, c: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """Twice the weighted ranks (ties averaged, as ``scipy.stats.rankdata`` on the row with
    entry ``p`` repeated ``c[p]`` times) into ``out`` ``(n_pairs,)`` integer; ``c`` None: all
    weights 1. Walks the sort order in chunks that end where a tie group ends."""
    P, a, carry = row.size, 0, 0
    while a < P:
        cut = _chunk_end(row, a)
        idx = row.order[a:cut]
        w = np.ones(cut - a, np.int64) if c is None else c[idx].astype(np.int64)
        cum = np.cumsum(w)
        cum += carry  # weight up to and including each entry
        through = int(cum[-1])
        if row.starts is None:  # no ties: 2 r = 2 cum - w + 1
            cum *= 2
            cum -= w
            cum += 1
            out[idx] = cum
        else:
            out[idx] = _tied_doubled(cum, row.flags(a, cut), carry)
        carry, a = through, cut
    return out


def _chunk_end(row: SortedRow, a: int) -> int:
    """The end (exclusive) of the chunk starting at sorted position ``a``: about
    :data:`RANK_CHUNK` entries, cut where a tie group starts so no group is split."""
    P = row.size
    b = min(a + RANK_CHUNK, P)
    if row.starts is None:
        return b
    while b < P:
        starts = np.flatnonzero(row.flags(a + 1, b + 1))
        if starts.size:
            return a + 1 + int(starts[-1])
        b = min(b + RANK_CHUNK, P)  # one tie group longer than a chunk: take more
    return P


def _tied_doubled(cum: np.ndarray, new: np.ndarray, carry: int) -> np.ndarray:
    """``start + end + 1`` of every entry's tie group from the cumulative weights ``cum``
    (``(m,)`` int64, sorted order), group starts ``new`` (``new[0]`` True) and the weight
    before the chunk ``carry``."""
    last = np.empty_like(new)
    last[:-1] = new[1:]
    last[-1] = True
    end = cum[last]
    before = np.empty_like(end)
    before[0] = carry
    before[1:] = end[:-1]
    end += before
    end += 1
    return end[np.cumsum(new, dtype=np.int64) - 1]


# ------------------------------------------------------------------------------ similarity
def _halves(X: np.ndarray, sl: slice) -> np.ndarray:
    """Float64 ranks of the block ``sl`` of doubled ranks ``X`` (n_rows, n_pairs): exact."""
    out = X[:, sl].astype(np.float64)
    out *= 0.5
    return out


def rank_similarity(
    A: np.ndarray, B: np.ndarray, c: np.ndarray | None, rows: np.ndarray | None = None
) -> np.ndarray:
    """``(n_a, n_b)`` weighted Pearson correlation of doubled ranks ``A`` (n_a, n_pairs) and
    ``B[rows]`` (n_b, n_pairs; ``rows`` None: all) under pair weights ``c``: the sums of
    :func:`._weighted.similarity`, block by block of :data:`._weighted.PAIR_BLOCK` pairs (rows
    are picked per block: no copy of whole rows)."""
    n_b = B.shape[0] if rows is None else len(rows)
    sums = _weighted._Sums(A.shape[0], n_b)
    for sl in _weighted._blocks(A.shape[1]):
        cb = None if c is None else c[sl].astype(np.float64)
        b = _halves(B, sl) if rows is None else _picked(B, rows, sl)
        sums.add(_halves(A, sl), b, cb)
    return sums.result("spearman")


def _picked(B: np.ndarray, rows: np.ndarray, sl: slice) -> np.ndarray:
    """Float64 ranks of rows ``rows`` of ``B`` in the block ``sl``."""
    out = B[rows, sl].astype(np.float64)
    out *= 0.5
    return out


# --------------------------------------------------------------------------- the evaluation
class LongSpearman:
    """Spearman similarities and noise ceilings of long RDMs under bootstrap pair weights.

    Parameters
    ----------
    D : (n_subjects, n_pairs) float64 or float32
        The subjects' RDMs (float32 where that holds them exactly: only their order and, for
        pooling, float64 means are used).
    M : (n_models, n_pairs) float64 or float32
    pool : {"mean", "rsatoolbox"}

    Memory: the sort orders (4 bytes per pair and row, models and data), the subjects' ranks
    under the current weights (4 bytes per pair and subject), the models' ranks while they are
    compared, one pool's ranks while it is compared, and the cached pools' orders.
    """

    def __init__(self, D: np.ndarray, M: np.ndarray, pool: str):
        self.D, self.pool = D, pool
        self.S, self.P = D.shape
        self.d_rows = [SortedRow(x) for x in D]
        self.m_rows = [SortedRow(x) for x in M]
        self.pools: dict[tuple, SortedRow] = {}
        self.ranks = None  # (S, P) doubled ranks of D under self._ranks_of
        self._ranks_of: object = ()  # the weights self.ranks were built under (identity)
        if pool == "mean":  # sorted now, while no ranks are held: the peak is lower
            for counts in _weighted._pool_counts(np.ones(self.S), np.arange(self.S)):
                if self._same_as_subject(counts) is None:
                    self._pool_row(counts, None)

    # ---- ranks
    def _rank_rows(self, rows, c, out=None) -> np.ndarray:
        total = self.P if c is None else int(c.sum(dtype=np.uint64))
        dt = rank_dtype(total)
        if out is None or out.dtype != dt:
            out = np.empty((len(rows), self.P), dt)
        for r, row in enumerate(rows):
            doubled_ranks(row, c, out[r])
        return out

    def data_ranks(self, c) -> np.ndarray:
        """``(S, P)`` doubled ranks of the subjects' RDMs under ``c`` (kept until ``c``
        changes: one buffer, overwritten)."""
        if self._ranks_of is not c:
            self.ranks = self._rank_rows(self.d_rows, c, self.ranks)
            self._ranks_of = c
        return self.ranks

    def model_similarity(self, c) -> np.ndarray:
        """``(n_models, S)`` similarity of every model with every subject under ``c``."""
        Dr = self.data_ranks(c)
        Mr = self._rank_rows(self.m_rows, c)  # freed on return
        return rank_similarity(Mr, Dr, c)

    # ---- pools
    def _pool_values(self, counts: np.ndarray, c) -> np.ndarray:
        """The pool's values ``(P,)`` float64: the mean of the subjects' RDMs (pool="mean") or
        of their ranks under ``c`` (rsatoolbox), integer weights first, one division last,
        formed block by block as :func:`._weighted.pooled_ceiling` forms them (``counts @ T``:
        the same products and sums, so the same ties)."""
        acc = np.empty(self.P)
        src = self.D if self.pool == "mean" else self.data_ranks(c)
        for sl in _weighted._blocks(self.P):
            T = src[:, sl].astype(np.float64)
            if self.pool != "mean":
                T *= 0.5
            acc[sl] = counts @ T
        acc /= counts.sum()
        return acc

    def _same_as_subject(self, counts: np.ndarray) -> int | None:
        """The subject whose RDM the mean pool equals bit for bit (one subject, a power-of-two
        count: ``k x / k`` is exact), else None."""
        nz = np.flatnonzero(counts)
        if self.pool != "mean" or len(nz) != 1:
            return None
        k = int(counts[nz[0]])
        return int(nz[0]) if k > 0 and k & (k - 1) == 0 else None

    def _pool_row(self, counts: np.ndarray, c) -> SortedRow:
        """The sort order of a pool; the leave-one-out pools of all subjects (those of every
        stimulus-only sample) are kept, others sorted when needed."""
        key = tuple(int(v) for v in counts)
        if key in self.pools:
            return self.pools[key]
        vals = self._pool_values(counts, c)
        row = SortedRow(vals)
        del vals
        if self.pool == "mean" and set(key) <= {0, 1} and sum(key) >= self.S - 1:
            self.pools[key] = row
        return row

    def _pool_ranks(self, counts: np.ndarray, c) -> np.ndarray:
        """``(1, P)`` doubled ranks of the pool under ``c`` (a view of the subject's ranks
        when the pool is that subject's RDM)."""
        s = self._same_as_subject(counts)
        if s is not None:
            return self.data_ranks(c)[s : s + 1]
        row = self._pool_row(counts, c)
        return self._rank_rows([row], c)

    def ceiling(self, w: np.ndarray, c) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`._weighted.pooled_ceiling` for Spearman: ``(drawn, lower, upper)`` of the
        subjects drawn with weights ``w`` under pair weights ``c``; one pool at a time."""
        w = np.asarray(w, dtype=np.float64)
        drawn = np.flatnonzero(w > 0)
        counts = _weighted._pool_counts(w, drawn)
        every = np.array_equal(drawn, np.arange(self.S))
        sims = np.empty((len(counts), len(drawn)))
        for r in range(len(counts)):
            pr = self._pool_ranks(counts[r], c)
            sims[r] = rank_similarity(pr, self.data_ranks(c), c, None if every else drawn)[0]
            del pr  # one pool's ranks at a time
        upper = sims[-1]
        lower = np.diag(sims[:-1]) if len(drawn) > 1 else upper.copy()
        return drawn, lower, upper


def is_long(n_pairs: int) -> bool:
    """Whether RDMs of ``n_pairs`` take this path (longer than one block of pairs)."""
    return n_pairs > _weighted.PAIR_BLOCK
