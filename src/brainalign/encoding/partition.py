"""Variance partitioning: what each feature band explains alone and in common with the others.

Two estimates of each band's share of the held-out variance, per target:

* **inclusion–exclusion** (de Heer et al. 2017): fit the joint model and every sub-model (each
  non-empty subset of bands; one band by ridge, several by banded ridge), score each on held-out
  images (R²), and read the regions of the Venn diagram from those R²s. With ``R²(U)`` the score of
  the model on bands ``U`` (``R²(∅) = 0``) and ``B`` all bands, the variance explained by exactly
  the bands of ``S`` (by all of them and by none of the others) is::

      region(S) = Σ_{T ⊆ S} (−1)^{|T|+1} R²(T ∪ (B∖S))

  so the unique part of band ``b`` is ``R²(B) − R²(B∖{b})``, the part shared by two bands ``a, b``
  of two is ``R²(a) + R²(b) − R²(ab)``, and the regions sum to ``R²(B)``. Regions of finite data can
  be negative (a sub-model scoring above the joint model on the held-out images).
* **split R²** of the joint banded model (himalaya's ``r2_score_split``): the joint model's R² split
  over bands by the product measure, one fit instead of ``2^n_bands − 1``.

Noise-ceiling normalisation divides every part by the squared ceiling: the ceiling is given as a
correlation (the highest Pearson r a model could reach, e.g. a Spearman–Brown corrected split-half
reliability), so ``ceiling²`` is the explainable share of the variance.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from brainalign.encoding.banded import (
    DEFAULT_CONCENTRATION,
    banded_ridge_cv,
    dirichlet_candidates,
    stack_bands,
)
from brainalign.encoding.ridge import DEFAULT_ALPHAS, DEFAULT_MEMORY_BUDGET
from brainalign.errors import InputError
from brainalign.utils.arrays import as_targets

#: most bands the inclusion–exclusion fits every subset of (2^n − 1 models)
MAX_PARTITION_BANDS = 6


@dataclass
class PartitionResult:
    """What :func:`variance_partition` returns.

    Attributes
    ----------
    band_names : list of str
    subsets : list of tuple of int
        Every non-empty subset of bands (indices), in order of size then index.
    subset_r2 : (n_subsets, n_targets) float32
        Held-out R² of the model fitted on each subset.
    regions : dict tuple of int → (n_targets,) float32
        Inclusion–exclusion region of each subset: the variance explained by exactly those bands
        (unique parts are the one-band regions).
    unique : (n_bands, n_targets) float32
        ``R²(all) − R²(all but b)``.
    shared : (n_targets,) float32
        Everything explained by more than one band: ``R²(all) − Σ unique``.
    split_r2 : (n_bands, n_targets) float32
        The joint banded model's held-out R² split per band (product measure).
    joint_r2 : (n_targets,) float32
        Held-out R² of the joint model.
    normalised : bool
        Whether the parts were divided by the squared noise ceiling.
    """

    band_names: list
    subsets: list
    subset_r2: np.ndarray
    regions: dict
    unique: np.ndarray
    shared: np.ndarray
    split_r2: np.ndarray
    joint_r2: np.ndarray
    normalised: bool = False

    def region_name(self, subset) -> str:
        """``"mpnet ∩ nouns"``-style name of a region."""
        return " ∩ ".join(self.band_names[i] for i in subset)


def all_subsets(n_bands: int) -> list:
    """Every non-empty subset of ``range(n_bands)``, by size then lexicographically."""
    return [c for k in range(1, n_bands + 1) for c in itertools.combinations(range(n_bands), k)]


def inclusion_exclusion(subset_r2: dict, n_bands: int) -> dict:
    """Venn regions from the R² of every sub-model.

    Parameters
    ----------
    subset_r2 : dict tuple of int → (n_targets,) array
        R² of the model on each non-empty subset of ``range(n_bands)`` (sorted tuples).
    n_bands : int

    Returns
    -------
    dict tuple of int → (n_targets,) float64
        ``region(S) = Σ_{T ⊆ S} (−1)^{|T|+1} R²(T ∪ (B∖S))``: the variance explained by exactly the
        bands of ``S``.
    """
    full = tuple(range(n_bands))
    missing = [s for s in all_subsets(n_bands) if s not in subset_r2]
    if missing:
        raise InputError(f"subset_r2: missing the R² of the sub-models {missing}")

    def r2(bands):
        key = tuple(sorted(bands))
        return 0.0 if not key else np.asarray(subset_r2[key], dtype=np.float64)

    out = {}
    for S in all_subsets(n_bands):
        rest = set(full) - set(S)
        total = 0.0
        for k in range(len(S) + 1):
            for T in itertools.combinations(S, k):
                total = total + (-1) ** (k + 1) * r2(set(T) | rest)
        out[S] = total
    return out


def normalise_by_ceiling(values, ceiling) -> np.ndarray:
    """``values / ceiling²`` per target; NaN where the ceiling (a correlation) is ≤ 0 or NaN."""
    values = np.asarray(values, dtype=np.float64)
    c = np.asarray(ceiling, dtype=np.float64)
    if c.shape != values.shape[-1:]:
        raise InputError(
            f"noise_ceiling: expected one value per target ({values.shape[-1]},), got {c.shape}"
        )
    ok = np.isfinite(c) & (c > 0)
    return np.where(ok, values / np.where(ok, c * c, 1.0), np.nan)


def variance_partition(
    Xs,
    Y,
    *,
    test,
    alphas=DEFAULT_ALPHAS,
    gammas=None,
    n_iter: int = 20,
    concentration=DEFAULT_CONCENTRATION,
    random_state=0,
    cv=5,
    noise_ceiling=None,
    backend: str = "numpy",
    device: str | None = None,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    solver: str = "random_search",
    max_iter: int = 10,
) -> PartitionResult:
    """Unique and shared held-out variance of each feature band, per target.

    Parameters
    ----------
    Xs : list of (n_images, p_k) arrays, or dict name → array
        Training bands (2 to ``MAX_PARTITION_BANDS``).
    Y : (n_images, n_targets) array, memory map or ``RowView``
        Training targets.
    test : tuple (Xs_test, Y_test)
        Held-out bands and targets (e.g. NSD's 515 shared images): every R² is computed there.
    alphas, cv : as :func:`~brainalign.encoding.banded.banded_ridge_cv`
        The same folds and alphas serve every sub-model (a one-band sub-model is plain ridge with
        one alpha per target).
    gammas : (n_candidates, n_bands) array, optional
        Band weights of the joint model; a sub-model uses the rows' weights of its bands,
        renormalised (duplicates dropped). Default: Dirichlet random search per model
        (``n_iter``, ``concentration``, ``random_state``).
    noise_ceiling : (n_targets,) array, optional
        Ceiling as a correlation; every part is divided by its square.
    solver, max_iter : as :func:`~brainalign.encoding.banded.banded_ridge_cv`
        ``"hyper_gradient"`` refines every model's penalties (a one-band model's alpha too) by
        ``max_iter`` gradient steps from its random search.

    Returns
    -------
    PartitionResult
    """
    X, bands, names = stack_bands(Xs)
    nb = len(bands)
    if not 2 <= nb <= MAX_PARTITION_BANDS:
        raise InputError(
            f"Xs: variance partitioning needs 2 to {MAX_PARTITION_BANDS} bands, got {nb} "
            f"({names}); merge bands to stay under 2^n − 1 sub-models"
        )
    Y = as_targets(Y)
    try:
        Xs_te, Y_te = test
    except (TypeError, ValueError):
        raise InputError("test: expected a pair (Xs_test, Y_test) of held-out images") from None
    X_te, _, _ = stack_bands(Xs_te, expected=[b.stop - b.start for b in bands])
    if gammas is not None:
        gammas = np.asarray(gammas, dtype=np.float64)
        if gammas.ndim != 2 or gammas.shape[1] != nb:
            raise InputError(f"gammas: expected an (n_candidates, {nb}) array, got {gammas.shape}")
    common = dict(
        alphas=alphas,
        cv=cv,
        backend=backend,
        device=device,
        block_size=block_size,
        memory_budget=memory_budget,
        solver=solver,
        max_iter=max_iter,
    )
    subsets = all_subsets(nb)
    r2 = {}
    split = joint = None
    for S in subsets:
        if len(S) == 1:
            g = np.ones((1, 1))  # one band: plain ridge with a per-target alpha
        elif gammas is None:
            g = dirichlet_candidates(len(S), n_iter, concentration, random_state)
        elif len(S) == nb:
            g = gammas
        else:
            g = gammas[:, list(S)]
            g = g[g.sum(1) > 0]
            g = np.unique(np.round(g / g.sum(1, keepdims=True), 12), axis=0)
        res = banded_ridge_cv(
            [X[:, bands[i]] for i in S],
            Y,
            gammas=g,
            test=([X_te[:, bands[i]] for i in S], Y_te),
            return_coef=False,
            **common,
        )
        r2[S] = res.test_r2
        if len(S) == nb:
            split, joint = res.test_r2_split, res.test_r2
    regions = inclusion_exclusion(r2, nb)
    unique = np.stack([regions[(i,)] for i in range(nb)])
    shared = joint - unique.sum(0)
    subset_r2 = np.stack([r2[S] for S in subsets])
    normalised = noise_ceiling is not None
    if normalised:
        subset_r2 = normalise_by_ceiling(subset_r2, noise_ceiling)
        regions = {S: normalise_by_ceiling(v, noise_ceiling) for S, v in regions.items()}
        unique = normalise_by_ceiling(unique, noise_ceiling)
        shared = normalise_by_ceiling(shared, noise_ceiling)
        split = normalise_by_ceiling(split, noise_ceiling)
        joint = normalise_by_ceiling(joint, noise_ceiling)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return PartitionResult(
        band_names=names,
        subsets=subsets,
        subset_r2=f32(subset_r2),
        regions={S: f32(v) for S, v in regions.items()},
        unique=f32(unique),
        shared=f32(shared),
        split_r2=f32(split),
        joint_r2=f32(joint),
        normalised=normalised,
    )
