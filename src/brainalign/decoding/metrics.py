"""Decoding metrics: identification accuracy, the caption-consistency ceiling, and caption-text
metrics (BLEU-1..4, ROUGE-L, CIDEr-D, METEOR where nltk is installed) with the human
leave-one-caption-out ceiling.

The text metrics follow the definitions of the COCO caption evaluation toolkit (pycocoevalcap):
corpus BLEU with the closest reference length, ROUGE-L with β = 1.2 (max precision and recall over
references), CIDEr-D with n = 1..4, σ = 6, clipped TF-IDF, ×10. Tokenisation is lower-case words
with punctuation removed (the toolkit's PTB tokeniser needs Java; differences are small).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy.stats import hypergeom

from brainalign.errors import InputError

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without punctuation."""
    if not isinstance(text, str):
        raise InputError(f"caption: expected a string, got {type(text).__name__}")
    return _TOKEN.findall(text.lower())


# --------------------------------------------------------------------------------------------------
# embedding-space metrics


def embedding_similarity(pred, target, metric: str = "correlation") -> np.ndarray:
    """Similarity of every predicted embedding with every target embedding.

    Parameters
    ----------
    pred, target : (n_images, d) arrays
    metric : ``"correlation"`` (Pearson r of the rows) or ``"cosine"``

    Returns
    -------
    (n_images, n_images) float64 array
        ``S[i, j]``: prediction ``i`` against target ``j`` (a zero row scores 0).
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != target.shape:
        raise InputError(
            f"pred and target: expected two (n_images, d) arrays of the same shape, got {pred.shape} "
            f"and {target.shape}"
        )
    if metric == "correlation":
        pred = pred - pred.mean(1, keepdims=True)
        target = target - target.mean(1, keepdims=True)
    elif metric != "cosine":
        raise InputError(f"metric={metric!r}: expected 'correlation' or 'cosine'")
    pn = np.linalg.norm(pred, axis=1, keepdims=True)
    tn = np.linalg.norm(target, axis=1, keepdims=True)
    return (pred / np.where(pn > 0, pn, 1)) @ (target / np.where(tn > 0, tn, 1)).T


def identification_accuracy(pred, target, n_way=2, top=(1, 5), metric: str = "correlation") -> dict:
    """N-way identification of each image's target embedding from its predicted embedding.

    For image i, the candidates are its own target and ``n_way − 1`` distractors drawn from the
    other images' targets; it is correct at top-k when fewer than k distractors are more similar to
    the prediction than the true target. The accuracy is the exact expectation over all distractor
    draws (hypergeometric), so no sampling noise.

    Parameters
    ----------
    pred, target : (n_images, d) arrays
    n_way : int or ``"all"``
        2 (pairwise), 50, ..., or ``"all"`` (every image is a candidate).
    top : int or tuple of int
    metric : ``"correlation"`` or ``"cosine"``

    Returns
    -------
    dict with ``n_way`` (int), ``top{k}`` (mean accuracy), ``chance_top{k}`` (= min(k, N)/N) and
    ``per_image_top{k}`` ((n_images,) arrays).
    """
    return identification_from_similarity(embedding_similarity(pred, target, metric), n_way, top)


def identification_from_similarity(S, n_way=2, top=(1, 5)) -> dict:
    """:func:`identification_accuracy` from the similarities it compares
    (:func:`embedding_similarity`): for a caller that reuses them (several ``n_way``, the
    nearest other caption).

    Parameters
    ----------
    S : (n_images, n_images) array
        Prediction ``i`` against target ``j``; the diagonal holds each image's own target.
    n_way, top
        As :func:`identification_accuracy`.
    """
    S = np.asarray(S)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise InputError(f"S: expected a square (n_images, n_images) array, got {S.shape}")
    n = S.shape[0]
    if n < 2:
        raise InputError(f"pred: identification needs at least 2 images, got {n}")
    N = n if n_way == "all" else n_way
    if not isinstance(N, (int, np.integer)) or N < 2 or N > n:
        raise InputError(
            f"n_way={n_way!r}: expected an int in 2..{n} (the number of images) or 'all'"
        )
    tops = (top,) if isinstance(top, (int, np.integer)) else tuple(top)
    true = np.diag(S)
    beats = (S > true[:, None]).sum(1)  # distractors more similar than the truth
    out = {"n_way": int(N)}
    for k in tops:
        if k < 1:
            raise InputError(f"top: expected values ≥ 1, got {k}")
        # P(fewer than k of the N−1 distractors drawn from n−1 are among the `beats` better ones)
        acc = hypergeom.cdf(k - 1, n - 1, beats, N - 1)
        out[f"top{k}"] = float(acc.mean())
        out[f"chance_top{k}"] = min(k, N) / N
        out[f"per_image_top{k}"] = acc
    return out


def prediction_scores(pred, target) -> np.ndarray:
    """Pearson r between each image's predicted and target embedding: (n_images,) (paper Fig. 2b)."""
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.ndim != 2 or pred.shape != target.shape:
        raise InputError(
            f"pred and target: expected (n_images, d) arrays of one shape, got {pred.shape}, {target.shape}"
        )
    return _rowwise_r(pred, target)


def _rowwise_r(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1), np.nan)


def caption_consistency(caption_embeddings_per_image, metric: str = "correlation") -> dict:
    """The decoding noise ceiling: every caption's embedding against the mean of the image's others.

    The paper's code reset its list inside the caption loop and so kept only the fifth caption of
    each image; here every caption counts.

    Parameters
    ----------
    caption_embeddings_per_image : sequence of (n_captions_i, d) arrays (n_captions_i ≥ 2)

    Returns
    -------
    dict with ``per_caption`` (list of (n_captions_i,) arrays), ``per_image`` ((n_images,) mean over
    the image's captions) and ``mean`` (float, over images).
    """
    per_caption, per_image = [], []
    for i, E in enumerate(caption_embeddings_per_image):
        E = np.asarray(E, dtype=np.float64)
        if E.ndim != 2 or E.shape[0] < 2:
            raise InputError(
                f"caption_embeddings_per_image[{i}]: expected (n_captions ≥ 2, d), got shape {E.shape}"
            )
        k = E.shape[0]
        others = (E.sum(0, keepdims=True) - E) / (k - 1)
        r = np.diag(embedding_similarity(E, others, metric)).copy()
        per_caption.append(r)
        per_image.append(r.mean())
    if not per_image:
        raise InputError("caption_embeddings_per_image: empty")
    per_image = np.asarray(per_image)
    return {"per_caption": per_caption, "per_image": per_image, "mean": float(per_image.mean())}


# --------------------------------------------------------------------------------------------------
# caption text metrics


def _check_corpus(candidates, references):
    if isinstance(candidates, str):
        candidates = [candidates]
    candidates = list(candidates)
    references = [[r] if isinstance(r, str) else list(r) for r in references]
    if len(candidates) != len(references):
        raise InputError(
            f"candidates and references: {len(candidates)} candidates for {len(references)} reference "
            "lists; give one list of references per candidate"
        )
    if not candidates:
        raise InputError("candidates: empty")
    for i, refs in enumerate(references):
        if not refs:
            raise InputError(f"references[{i}]: needs at least one reference caption")
    return candidates, references


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(candidates, references, max_n: int = 4) -> dict:
    """Corpus BLEU-1..max_n (Papineni et al.; brevity penalty with the closest reference length).

    Returns ``{"bleu1": …, …, "bleu{max_n}": …}``.
    """
    candidates, references = _check_corpus(candidates, references)
    matches = np.zeros(max_n)
    totals = np.zeros(max_n)
    c_len = r_len = 0
    for cand, refs in zip(candidates, references, strict=True):
        c = tokenize(cand)
        rs = [tokenize(r) for r in refs]
        c_len += len(c)
        r_len += min((abs(len(r) - len(c)), len(r)) for r in rs)[1]
        for n in range(1, max_n + 1):
            cg = _ngrams(c, n)
            max_ref = Counter()
            for r in rs:
                for g, v in _ngrams(r, n).items():
                    max_ref[g] = max(max_ref[g], v)
            matches[n - 1] += sum(min(v, max_ref[g]) for g, v in cg.items())
            totals[n - 1] += max(len(c) - n + 1, 0)
    bp = 1.0 if c_len > r_len else (math.exp(1 - r_len / c_len) if c_len > 0 else 0.0)
    out = {}
    for n in range(1, max_n + 1):
        p = matches[:n] / np.where(totals[:n] > 0, totals[:n], 1)
        out[f"bleu{n}"] = 0.0 if np.any(p == 0) else float(bp * math.exp(np.mean(np.log(p))))
    return out


def _lcs(a, b):
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(candidates, references, beta: float = 1.2) -> float:
    """ROUGE-L (coco-caption): per candidate, F-measure of the best LCS precision and recall over
    its references; mean over candidates."""
    candidates, references = _check_corpus(candidates, references)
    scores = []
    for cand, refs in zip(candidates, references, strict=True):
        c = tokenize(cand)
        precs, recs = [], []
        for r in refs:
            rt = tokenize(r)
            lcs = _lcs(c, rt)
            precs.append(lcs / len(c) if c else 0.0)
            recs.append(lcs / len(rt) if rt else 0.0)
        p, r = max(precs), max(recs)
        scores.append(((1 + beta**2) * p * r) / (r + beta**2 * p) if p > 0 and r > 0 else 0.0)
    return float(np.mean(scores))


def cider_d(candidates, references, n: int = 4, sigma: float = 6.0) -> float:
    """CIDEr-D (Vedantam et al., coco-caption's implementation): TF-IDF n-gram cosine with clipping
    and a length penalty, averaged over n = 1..4 and references, ×10; document frequencies from the
    references of this corpus."""
    candidates, references = _check_corpus(candidates, references)

    def counts(text):
        toks = tokenize(text)
        c = Counter()
        for k in range(1, n + 1):
            c.update(_ngrams(toks, k))
        return c, len(toks)

    ref_counts = [[counts(r) for r in refs] for refs in references]
    df = Counter()
    for refs in ref_counts:
        for g in set(g for c, _ in refs for g in c):
            df[g] += 1
    log_n = math.log(float(len(references)))

    def vec(c):
        v = [dict() for _ in range(n)]
        norm = np.zeros(n)
        for g, tf in c.items():
            k = len(g) - 1
            w = float(tf) * (log_n - math.log(max(1.0, df[g])))
            v[k][g] = w
            norm[k] += w * w
        return v, np.sqrt(norm)

    scores = []
    for cand, refs in zip(candidates, ref_counts, strict=True):
        cc, c_len = counts(cand)
        vc, nc = vec(cc)
        total = np.zeros(n)
        for rc, r_len in refs:
            vr, nr = vec(rc)
            delta = float(c_len - r_len)
            for k in range(n):
                val = sum(min(w, vr[k][g]) * vr[k][g] for g, w in vc[k].items() if g in vr[k])
                if nc[k] != 0 and nr[k] != 0:
                    val /= nc[k] * nr[k]
                total[k] += val * math.exp(-(delta**2) / (2 * sigma**2))
        scores.append(total.mean() / len(refs) * 10.0)
    return float(np.mean(scores))


def meteor(candidates, references) -> float | None:
    """METEOR via nltk when it (and its WordNet data) is installed; otherwise None."""
    try:
        from nltk.translate.meteor_score import meteor_score
    except ImportError:
        return None
    candidates, references = _check_corpus(candidates, references)
    try:
        return float(
            np.mean(
                [
                    meteor_score([tokenize(r) for r in refs], tokenize(c))
                    for c, refs in zip(candidates, references, strict=True)
                ]
            )
        )
    except LookupError:  # WordNet data not downloaded
        return None


def caption_scores(candidates, references) -> dict:
    """All caption metrics of decoded captions against their reference captions (corpus level)."""
    out = bleu(candidates, references)
    out["rouge_l"] = rouge_l(candidates, references)
    out["cider_d"] = cider_d(candidates, references)
    m = meteor(candidates, references)
    if m is not None:
        out["meteor"] = m
    return out


def human_ceiling(references_per_image: Sequence[Sequence[str]]) -> dict:
    """Leave-one-caption-out human ceiling: each image's k-th caption scored against its other
    captions, for every k up to the smallest caption count, averaged over k."""
    refs = [list(r) for r in references_per_image]
    if not refs or min(len(r) for r in refs) < 2:
        raise InputError(
            "references_per_image: every image needs at least 2 captions for a ceiling"
        )
    k_max = min(len(r) for r in refs)
    runs = []
    for k in range(k_max):
        cands = [r[k] for r in refs]
        others = [r[:k] + r[k + 1 :] for r in refs]
        runs.append(caption_scores(cands, others))
    return {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
