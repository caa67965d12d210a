"""Inference on RDM model comparisons as rsatoolbox does it (Schütt et al. 2023, eLife).

A model's score in an ROI is the mean over subjects of the similarity (Pearson, Spearman,
cosine or Kendall's tau-a) between the model RDM and each subject's RDM. Its uncertainty has two
sources, the sample of subjects and the sample of stimuli, and :func:`evaluate_models` estimates
it as ``rsatoolbox.inference.eval_dual_bootstrap`` does for fixed models:

1. ``N`` bootstrap samples, each drawing subjects and stimuli with replacement. Each sample is
   evaluated three times: resampling both, only the subjects, only the stimuli (all with the
   same draws). A stimulus drawn ``k`` times repeats its rows and columns; the entries between
   two copies of one stimulus are dropped. The noise ceiling is re-estimated on every sample.
2. The covariances ``V_both``, ``V_subj``, ``V_stim`` of (model scores, lower and upper bound)
   over the samples are combined into the corrected variance (Schütt et al. 2023, eq. 9)::

       V = S/(S-1) V_subj + n/(n-1) V_stim - S n / ((S-1)(n-1)) (V_both - V_subj - V_stim)

   clipped below by the larger of the two single-factor terms and above by ``V_both``, for each
   model, each difference between two models and each model minus a ceiling bound.
3. Confidence intervals ``score ± t_{dof} · sqrt(V)`` and t-tests (against 0, one-sided; against
   the lower bound and between models, two-sided) with ``dof = min(S, n) - 1``.

The scores are the full-data estimates (rsatoolbox's ``eval_fixed``); the bootstrap only gives
their variance. Pearson, Spearman and cosine run on pair weights instead of resampled RDMs
(:mod:`brainalign.rsa._weighted`), so 1,000 samples of 92 stimuli take seconds; Kendall's tau-a
is evaluated on explicitly resampled vectors and is slow (use few samples or no bootstrap).
Given the same draws (``samples=``), the samples' scores and the variances equal rsatoolbox's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from brainalign.errors import InputError
from brainalign.rsa import _long_ranks, _weighted
from brainalign.rsa.ceiling_bounds import (
    POOLS,
    NoiseCeiling,
    as_condensed_stack,
    noise_ceiling_bounds,
)
from brainalign.rsa.compare import COMPARE_METHODS, compare_rdms
from brainalign.rsa.rdm import n_conditions_from_condensed
from brainalign.utils.validation import check_random_state

BOOTSTRAP_MODES = ("auto", "dual", "subjects", "stimuli", "none")
#: the three evaluations of every dual-bootstrap sample, in rsatoolbox's order
SAMPLE_TYPES = ("both", "subjects", "stimuli")


def bootstrap_indices(
    n_subjects: int, n_stimuli: int, n_bootstrap: int = 1000, random_state=0
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap draws: ``(n_bootstrap, n_subjects)`` subject and ``(n_bootstrap, n_stimuli)``
    stimulus indices, each drawn uniformly with replacement."""
    rng = check_random_state(random_state)
    return (
        rng.integers(0, n_subjects, size=(n_bootstrap, n_subjects)),
        rng.integers(0, n_stimuli, size=(n_bootstrap, n_stimuli)),
    )


def corrected_variance(v_both, v_subj, v_stim, n_subjects: int, n_stimuli: int) -> np.ndarray:
    """The dual-bootstrap variance (Schütt et al. 2023; rsatoolbox's ``_dual_bootstrap``)."""
    S, n = n_subjects, n_stimuli
    a, b = S / (S - 1), n / (n - 1)
    v = a * v_subj + b * v_stim - (S * n / (n - 1) / (S - 1)) * (v_both - v_subj - v_stim)
    v = np.maximum(np.maximum(v, a * v_subj), b * v_stim)
    return np.minimum(v, v_both)


@dataclass
class RdmEvaluation:
    """Scores of models on one ROI's subjects' RDMs, with bootstrap variances and tests.

    Attributes
    ----------
    models : list of str
    method : str
    bootstrap : str
        ``dual``, ``subjects``, ``stimuli`` or ``none`` (t across subjects).
    scores : (n_models, n_subjects)
        Each subject's similarity with each model.
    ceiling : NoiseCeiling
        Full-data lower and upper bounds per subject.
    variance : (n_models,)
        Variance of each model's mean score.
    diff_variance : (n_models, n_models)
        Variance of each difference of two models' mean scores.
    ceiling_variance : (n_models, 2)
        Variance of each model's mean minus the lower / upper bound.
    dof : int
    samples : (n_ok, n_models + 2, n_types)
        Per bootstrap sample (those with >= 3 distinct stimuli) and sample type: the models'
        scores, then the lower and upper bound.
    """

    models: list[str]
    method: str
    bootstrap: str
    scores: np.ndarray
    ceiling: NoiseCeiling
    variance: np.ndarray
    diff_variance: np.ndarray
    ceiling_variance: np.ndarray
    dof: int
    samples: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))

    @property
    def mean(self) -> np.ndarray:
        """Each model's score: the mean over subjects of its similarity (full data)."""
        return self.scores.mean(axis=1)

    @property
    def sem(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.variance, 0.0))

    @property
    def bootstrap_mean(self) -> np.ndarray:
        """Mean of the models' scores over samples and sample types (rsatoolbox's ``get_means``)."""
        k = len(self.models)
        return self.samples[:, :k].mean(axis=2).mean(axis=0)

    def ci(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """``score ± t_{dof}((1 + level) / 2) · sem`` per model."""
        if not 0 < level < 1:
            raise InputError(f"level={level!r}: expected a confidence level in (0, 1)")
        half = stats.t.ppf((1 + level) / 2, self.dof) * self.sem
        return self.mean - half, self.mean + half

    def p_zero(self) -> np.ndarray:
        """One-sided t-test of each model's score against 0."""
        t = self.mean / np.sqrt(np.maximum(self.variance, np.finfo(float).eps))
        return stats.t.sf(t, self.dof)

    def p_noise(self) -> np.ndarray:
        """Two-sided t-test of each model's score against the lower bound of the ceiling."""
        d = self.mean - self.ceiling.lower_mean
        t = d / np.sqrt(np.maximum(self.ceiling_variance[:, 0], np.finfo(float).eps))
        return 2 * stats.t.sf(np.abs(t), self.dof)

    def pairwise(self) -> tuple[np.ndarray, np.ndarray]:
        """``(diff, p)``: score of row model − column model and its two-sided t-test p."""
        d = self.mean[:, None] - self.mean[None, :]
        t = d / np.sqrt(np.maximum(self.diff_variance, np.finfo(float).eps))
        p = 2 * stats.t.sf(np.abs(t), self.dof)
        np.fill_diagonal(p, 1.0)
        return d, p

    def table(self, level: float = 0.95):
        """One row per model: score, sem, CI, p against 0 and against the lower bound."""
        import pandas as pd

        low, high = self.ci(level)
        return pd.DataFrame(
            {
                "model": self.models,
                "score": self.mean,
                "sem": self.sem,
                "ci_low": low,
                "ci_high": high,
                "p_zero": self.p_zero(),
                "p_noise": self.p_noise(),
            }
        )

    def pairwise_table(self):
        """One row per pair of models (a before b): score difference a − b and its p."""
        import pandas as pd

        d, p = self.pairwise()
        iu, ju = np.triu_indices(len(self.models), k=1)
        return pd.DataFrame(
            {
                "model_a": [self.models[i] for i in iu],
                "model_b": [self.models[j] for j in ju],
                "diff": d[iu, ju],
                "p": p[iu, ju],
            }
        )


def _as_stack(x, name: str, method: str) -> np.ndarray:
    """:func:`as_condensed_stack`, except that a long float32 ``(n_rdms, n_pairs)`` stack stays
    float32 for Spearman, which uses only the values' order and float64 means of them
    (converting would double the memory: issue 23, 10,000 stimuli)."""
    x_is_f32 = isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 2
    if not (method == "spearman" and x_is_f32 and _long_ranks.is_long(x.shape[1])):
        return as_condensed_stack(x, name)
    n_conditions_from_condensed(x.shape[1], name)
    for sl in _weighted._blocks(x.shape[1]):
        if not np.isfinite(x[:, sl]).all():
            raise InputError(f"{name}: contains NaN or infinite dissimilarities")
    return x


def _as_models(models, model_names, method: str) -> tuple[list[str], np.ndarray]:
    if isinstance(models, Mapping):
        names = list(models)
        M = np.vstack([as_condensed_stack(v, f"models[{k!r}]") for k, v in models.items()])
    else:
        M = _as_stack(models, "models", method)
        names = (
            list(model_names) if model_names is not None else [f"model_{i}" for i in range(len(M))]
        )
    if len(names) != len(M):
        raise InputError(f"model_names: {len(names)} names for {len(M)} model RDMs")
    if len(set(names)) != len(names):
        raise InputError(f"model_names: duplicate names in {names}")
    return names, M


def long_spearman(method: str, n_pairs: int) -> bool:
    """Whether :func:`evaluate_models` takes the compact Spearman path
    (:mod:`brainalign.rsa._long_ranks`): Spearman on RDMs longer than one block of pairs."""
    return method == "spearman" and _long_ranks.is_long(n_pairs)


def _variances(V: np.ndarray, k: int, mode: str, S: int, n: int):
    """Per-model, pairwise and ceiling variances from the samples' covariances ``V`` (t, m, m)."""
    diag = np.einsum("tii->ti", V)
    model = diag[:, :k]
    diff = diag[:, :k, None] + diag[:, None, :k] - 2 * V[:, :k, :k]
    nc = diag[:, :k, None] - 2 * V[:, :k, k:] + diag[:, None, k:]
    if mode == "dual":
        return tuple(corrected_variance(x[0], x[1], x[2], S, n) for x in (model, diff, nc))
    factor = S / (S - 1) if mode == "subjects" else n / (n - 1)
    return tuple(factor * x[0] for x in (model, diff, nc))


def evaluate_models(
    models,
    data_rdms,
    method: str = "spearman",
    *,
    model_names: Sequence[str] | None = None,
    bootstrap: str = "dual",
    n_bootstrap: int = 1000,
    pool: str = "mean",
    random_state=0,
    samples: tuple[np.ndarray, np.ndarray] | None = None,
) -> RdmEvaluation:
    """Score fixed model RDMs against subjects' RDMs with rsatoolbox's bootstrap inference.

    Parameters
    ----------
    models : mapping name -> RDM, or array (n_models, n_pairs) / (n_models, n, n)
    data_rdms : array (n_subjects, n_pairs) or (n_subjects, n, n)
        One ROI's RDMs, one per subject, over the same stimuli as the models. One subject's
        RDM needs ``bootstrap="stimuli"`` and has no noise ceiling (its bounds are NaN).
    method : {"pearson", "spearman", "cosine", "kendall_tau_a"}
    model_names : list of str, optional
        Names when ``models`` is an array.
    bootstrap : {"dual", "subjects", "stimuli", "none", "auto"}
        ``dual``: subjects and stimuli with the corrected variance (rsatoolbox's
        ``eval_dual_bootstrap``); ``subjects`` / ``stimuli``: one factor (variance × m/(m-1));
        ``none``: the t-test across subjects (rsatoolbox's ``eval_fixed``). With one subject,
        ``stimuli`` is the only inference (rsatoolbox's ``eval_bootstrap_pattern``); ``auto``
        takes ``dual`` with two or more subjects and ``stimuli`` with one.
    n_bootstrap : int
    pool : {"mean", "rsatoolbox"}
        How the noise ceiling pools RDMs (:func:`brainalign.rsa.noise_ceiling_bounds`);
        ``"rsatoolbox"`` reproduces rsatoolbox's ceilings exactly.
    random_state : int or Generator
    samples : (subject_indices, stimulus_indices), optional
        Bootstrap draws to use instead of drawing (e.g. rsatoolbox's, to compare).

    Returns
    -------
    RdmEvaluation
    """
    if method not in COMPARE_METHODS:
        raise InputError(f"method={method!r}: expected one of {COMPARE_METHODS}")
    if bootstrap not in BOOTSTRAP_MODES:
        raise InputError(f"bootstrap={bootstrap!r}: expected one of {BOOTSTRAP_MODES}")
    if pool not in POOLS:
        raise InputError(f"pool={pool!r}: expected one of {POOLS}")
    names, M = _as_models(models, model_names, method)
    D = _as_stack(data_rdms, "data_rdms", method)
    if M.shape[1] != D.shape[1]:
        raise InputError(
            f"models and data_rdms: RDMs of different sizes ({M.shape[1]} vs {D.shape[1]} pairs); "
            "both must cover the same stimuli in the same order"
        )
    S, P = D.shape
    n = n_conditions_from_condensed(P, "data_rdms")
    if bootstrap == "auto":
        bootstrap = "dual" if S > 1 else "stimuli"
    # one subject: only the stimuli can be resampled, and there is no ceiling (no other subject)
    one = S == 1
    if one and bootstrap != "stimuli":
        raise InputError(
            f"data_rdms: one subject's RDM, but bootstrap={bootstrap!r} resamples or tests across "
            "subjects; use bootstrap='stimuli' (resampling stimuli, as rsatoolbox does for one "
            "subject) or give >= 2 subjects' RDMs"
        )
    k = len(names)
    fast = method in _weighted.FAST_METHODS
    # Spearman on long RDMs: compact sort orders and integer ranks (issue 23, 10,000 stimuli)
    ranks = _long_ranks.LongSpearman(D, M, pool) if long_spearman(method, P) else None
    prep_d = _weighted.RankPrep(D) if method == "spearman" and ranks is None else None
    prep_m = _weighted.RankPrep(M) if method == "spearman" and ranks is None else None
    # squares kept for short RDMs only; long ones are summed block by block (_weighted)
    short = P <= _weighted.PAIR_BLOCK
    D2 = D * D if method != "spearman" and short else None
    M2 = M * M if method != "spearman" and short else None
    Dv_full = None
    if ranks is not None:
        scores = ranks.model_similarity(None)
        if not one:
            ceiling = NoiseCeiling(*ranks.ceiling(np.ones(S), None)[1:], method, pool)
    else:
        if fast:
            Dv_full = _weighted.compare_values(D, method, None, prep_d)
            scores = _weighted.similarity(
                _weighted.compare_values(M, method, None, prep_m), Dv_full, method, None, M2, D2
            )
        else:
            scores = np.atleast_2d(compare_rdms(M, D, method=method))
        if not one:
            ceiling = noise_ceiling_bounds(D, method=method, pool=pool)
    if one:
        ceiling = NoiseCeiling(np.full(1, np.nan), np.full(1, np.nan), method, pool)
    if bootstrap == "none":
        cov = np.atleast_2d(np.cov(scores, ddof=1)) / S
        model = np.diag(cov)
        diff = model[:, None] + model[None, :] - 2 * cov
        return RdmEvaluation(
            names,
            method,
            bootstrap,
            scores,
            ceiling,
            model,
            diff,
            np.stack([model, model], axis=1),
            S - 1,
        )
    if samples is None:
        subj_idx, stim_idx = bootstrap_indices(S, n, n_bootstrap, random_state)
    else:
        subj_idx, stim_idx = (np.asarray(a, dtype=np.int64) for a in samples)
        if subj_idx.ndim != 2 or stim_idx.ndim != 2 or len(subj_idx) != len(stim_idx):
            raise InputError("samples: expected (n_bootstrap, n_subjects) and (n_bootstrap, n)")
    types = {"dual": (0, 1, 2), "subjects": (1,), "stimuli": (2,)}[bootstrap]
    resample_stimuli = 0 in types or 2 in types
    out = np.full((len(subj_idx), k + 2, 3), np.nan)
    ones = np.ones(S)
    # the stimulus-only samples pool every subject once: with mean pooling the pools never change
    pool_prep = None
    if method == "spearman" and ranks is None and pool == "mean" and 2 in types:
        pool_prep = _weighted.RankPrep(_weighted.loo_pools(D))
    # the types with pair weights first: long Spearman ranks the data once under them, then
    # once unweighted (the order of the types changes no result)
    order = sorted(types, key=lambda t: t == 1)
    for i in range(len(subj_idx)):
        w = np.bincount(subj_idx[i], minlength=S).astype(np.float64)
        kk = np.bincount(stim_idx[i], minlength=n)
        if resample_stimuli and (kk > 0).sum() < 3:
            continue
        # k_i k_j per pair, without 16-byte-per-pair indices (1 byte per pair for long Spearman)
        c = (
            _long_ranks.compact_pair_weights(kk)
            if ranks is not None
            else _weighted.pair_weights(kk)
        )
        if resample_stimuli:
            if ranks is not None:
                sim = ranks.model_similarity(c)
            elif fast:
                Dv = _weighted.compare_values(D, method, c, prep_d)
                Mv = _weighted.compare_values(M, method, c, prep_m)
                sim = _weighted.similarity(Mv, Dv, method, c, M2, D2)
            else:
                sim = np.atleast_2d(
                    compare_rdms(_weighted.expand(M, c), _weighted.expand(D, c), method=method)
                )
        for t in order:
            if t == 0:
                evals, ww, cc = sim @ w / w.sum(), w, c
            elif t == 1:
                evals, ww, cc = scores @ w / w.sum(), w, None
            else:
                evals, ww, cc = sim.mean(axis=1), ones, c
            if one:
                lo = up = np.nan
            elif ranks is not None:
                _, lo, up = ranks.ceiling(ww, cc)
            elif fast:
                _, lo, up = _weighted.pooled_ceiling(
                    D,
                    ww,
                    method,
                    pool,
                    cc,
                    prep_d,
                    D_values=Dv_full if t == 1 else Dv,
                    pool_prep=pool_prep if t == 2 else None,
                )
            else:
                _, lo, up = _weighted.expanded_ceiling(D, ww, method, pool, cc)
            out[i, :k, t] = evals
            out[i, k, t] = np.mean(lo)
            out[i, k + 1, t] = np.mean(up)
        del c
    ok = np.isfinite(out[:, 0, types[0]])
    out = out[ok]
    X = out - out.mean(axis=0, keepdims=True)
    V = np.einsum("ijt,ilt->tjl", X, X) / max(len(out) - 1, 1)
    model, diff, nc = _variances(V[list(types)] if bootstrap != "dual" else V, k, bootstrap, S, n)
    dof = min(S, n) - 1 if bootstrap == "dual" else (S - 1 if bootstrap == "subjects" else n - 1)
    return RdmEvaluation(
        names, method, bootstrap, scores, ceiling, model, diff, nc, dof, out[:, :, list(types)]
    )


def rdm_permutation_test(
    rdm_a,
    rdm_b,
    method: str = "spearman",
    n_permutations: int = 10_000,
    random_state=0,
) -> tuple[float, float]:
    """Similarity of two RDMs and its stimulus-label randomisation p-value (Kriegeskorte et al.
    2008): the stimuli of ``rdm_b`` are permuted ``n_permutations`` times, and
    ``p = (1 + #{r_perm >= r}) / (1 + n_permutations)`` (one-sided, positive similarity).

    Parameters
    ----------
    rdm_a, rdm_b : condensed (n_pairs,) or square (n, n) RDMs over the same stimuli
    method : {"pearson", "spearman", "cosine", "kendall_tau_a"}

    Returns
    -------
    (r, p) : float, float
    """
    a = as_condensed_stack(rdm_a, "rdm_a")
    b = as_condensed_stack(rdm_b, "rdm_b")
    if len(a) != 1 or len(b) != 1 or a.shape != b.shape:
        raise InputError(f"rdm_a, rdm_b: expected two RDMs of one size, got {a.shape}, {b.shape}")
    a, b = a[0], b[0]
    n = n_conditions_from_condensed(a.shape[0])
    r = float(compare_rdms(a, b, method=method))
    rng = check_random_state(random_state)
    sq = np.full((n, n), -1, dtype=np.int64)
    iu, ju = np.triu_indices(n, k=1)
    sq[iu, ju] = np.arange(len(iu))
    sq[ju, iu] = np.arange(len(iu))
    fast = method in _weighted.FAST_METHODS
    if fast:
        A = _weighted.compare_values(a[None], method)
        B = _weighted.compare_values(b[None], method)[0]
    count = 0
    done = 0
    while done < n_permutations:
        m = min(1000, n_permutations - done)
        perms = np.argsort(rng.random((m, n)), axis=1)
        idx = sq[perms[:, iu], perms[:, ju]]  # pair (i, j) takes b's entry of (π(i), π(j))
        if fast:
            rp = _weighted.similarity(A, B[idx], method)[0]
        else:
            rp = np.array([compare_rdms(a, b[ix], method=method) for ix in idx])
        count += int((rp >= r - 1e-12).sum())
        done += m
    return r, (1 + count) / (1 + n_permutations)


__all__ = [
    "BOOTSTRAP_MODES",
    "RdmEvaluation",
    "SAMPLE_TYPES",
    "bootstrap_indices",
    "corrected_variance",
    "evaluate_models",
    "rdm_permutation_test",
]
