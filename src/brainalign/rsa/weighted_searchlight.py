"""Cross-validated weighted RSA at every searchlight centre (issue 22: RQ2 on maps).

At each centre a non-negative combination of the model RDMs is fitted on the pairs of the
training stimuli and scored on the pairs of the held-out stimuli, fold by fold, as
:func:`~brainalign.rsa.weighted_rsa.weighted_rsa` does in a ROI for one subject (rsatoolbox's
``ModelWeighted`` fitted by ``fit_regress_nn``, scored by ``crossval``).

The fit needs only each model's correlation with the centre's brain RDM on the training pairs and
the models' covariances there (the same at every centre); the held-out score needs only the
correlations on the test pairs. The searchlight engine computes those correlations at every centre
on the training and the test images of every fold in one pass (RDM-free or materialised, whichever
is cheaper, see :mod:`brainalign.rsa.searchlight`); the fits are non-negative least squares in the
models' k × k space, solved for all centres at once by trying each set of active models.

The same values give, without any further pass over the brain, the combination fitted without one
of the models: ``score − reduced[name]`` is the held-out gain of adding ``name`` to the others (a
map of what a target model explains beyond its controls).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from brainalign.backend import get_backend
from brainalign.errors import InputError
from brainalign.rsa._kernels import PAIR_SUMS_MAX_IMAGES, pair_sums, prepare_block
from brainalign.rsa.models import parse_models
from brainalign.rsa.neighbourhoods import Neighbourhoods
from brainalign.rsa.searchlight import (
    _check_arguments,
    _check_batch_size,
    _check_n_jobs,
    block_values,
)
from brainalign.rsa.weighted_rsa import WEIGHTED_METHODS, Fold, k_fold_sets, nn_least_squares
from brainalign.utils.validation import check_2d

#: largest fold (images) whose model RDMs are formed to get the models' covariances
MAX_BLOCK_IMAGES = 6000
_NUMPY = get_backend("numpy")  # the models' moments are numpy float64, whatever the backend


@dataclass(frozen=True)
class WeightedSearchlight:
    """Result of :func:`weighted_searchlight`; every map is in ``neighbourhoods.centres`` order.

    Attributes
    ----------
    names : list of str
        The models, in the order of the rows of ``weights`` and ``single``.
    score : ndarray, shape (n_centres,)
        Held-out correlation (or cosine) of the fitted combination, mean over folds.
    single : ndarray, shape (n_models, n_centres)
        Held-out correlation of each model alone on the same pairs, mean over folds.
    weights : ndarray, shape (n_models, n_centres)
        Unit-norm non-negative weights, mean over folds.
    reduced : dict of str to ndarray, shape (n_centres,)
        For each model asked for, the held-out score of the combination fitted without it.
    folds : list of Fold
        The stimulus folds (train and test images).
    """

    names: list[str]
    score: np.ndarray
    single: np.ndarray
    weights: np.ndarray
    reduced: dict[str, np.ndarray]
    folds: list[Fold]

    def gain(self, name: str) -> np.ndarray:
        """Held-out gain (n_centres,) of adding model ``name`` to the others."""
        if name not in self.reduced:
            raise InputError(
                f"gain({name!r}): not computed; pass reduced=[{name!r}] to weighted_searchlight "
                f"(computed: {sorted(self.reduced)})"
            )
        return self.score - self.reduced[name]


def nnls_columns(gram: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Non-negative least squares ``min ‖Ax − y‖`` for many right-hand sides at once.

    Parameters
    ----------
    gram : (k, k) array
        ``AᵀA`` (positive semi-definite), shared by every column.
    B : (k, N) array
        ``Aᵀy`` of each column. Columns with NaN give NaN.

    Returns
    -------
    x : ndarray, shape (k, N)
        The solutions: for each column the active set whose unconstrained solution is positive
        and meets the Karush–Kuhn–Tucker conditions (smallest sets first). Columns no set fits
        to rounding (a singular ``gram``) are solved one by one by the active-set algorithm of
        :func:`~brainalign.rsa.weighted_rsa.nn_least_squares`.
    """
    k, N = B.shape
    X = np.zeros((k, N))
    nan = np.isnan(B).any(0)
    X[:, nan] = np.nan
    tol = 1e-9 * np.nan_to_num(np.abs(B).max(0, initial=0.0))
    todo = np.flatnonzero(~nan & (np.nan_to_num(B) > tol).any(0))  # else x = 0 meets the KKT
    for size in range(1, k + 1):
        for active in combinations(range(k), size):
            if todo.size == 0:
                return X
            a = list(active)
            try:
                xa = np.linalg.solve(gram[np.ix_(a, a)], B[np.ix_(a, todo)])
            except np.linalg.LinAlgError:
                continue
            x = np.zeros((k, todo.size))
            x[a] = xa
            grad = B[:, todo] - gram @ x  # ≤ 0 off the active set at the optimum
            off = np.ones(k, bool)
            off[a] = False
            ok = (xa > 0).all(0) & (grad[off] <= tol[todo]).all(0)
            X[:, todo[ok]] = x[:, ok]
            todo = todo[~ok]
    for j in todo:
        X[:, j] = nn_least_squares(gram, B[:, j])
    return X


def _block_rdms(parsed: list, n_images: int, rows: np.ndarray) -> np.ndarray:
    """The models' condensed RDMs (n_models, n_pairs) over the images ``rows``, as the
    searchlight forms them (correlation distance of the standardised features)."""
    if rows.size > MAX_BLOCK_IMAGES:
        raise InputError(
            f"weighted searchlight: a fold has {rows.size} images (more than {MAX_BLOCK_IMAGES}); "
            "use fewer images (e.g. the shared ones) or more folds"
        )
    return prepare_block(_NUMPY, parsed, n_images, rows, need_rdm_free=False).condensed


def _moments(M: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The models' (k, k) covariances over pairs (Pearson; mean products for cosine) and their
    standard deviations (root mean squares)."""
    if method == "pearson":
        M = M - M.mean(1, keepdims=True)
    gram = M @ M.T / M.shape[1]
    return gram, np.sqrt(np.diag(gram))


def _fold_fit(r_train, r_test, train, test, keep) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm weights (k, n_centres) and held-out scores (n_centres,) of the models ``keep``
    for one fold: ``r_*`` are the models' correlations with the brain RDMs (k, n_centres),
    ``train``/``test`` the models' moments on those pairs."""
    (g_tr, sd_tr), (g_te, sd_te) = train, test
    sub = np.ix_(keep, keep)
    theta = nnls_columns(g_tr[sub], r_train[keep] * sd_tr[keep, None])
    norm = np.sqrt(np.sum(theta**2, axis=0))
    theta = theta / np.where(norm > 0, norm, 1.0)
    num = np.sum(theta * r_test[keep] * sd_te[keep, None], axis=0)
    den = np.sqrt(np.maximum(np.einsum("kc,kl,lc->c", theta, g_te[sub], theta), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        # a zero combination is a constant prediction: similarity 0, as in the ROI analysis
        score = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return theta, np.where(np.isnan(num), np.nan, score)


def weighted_searchlight(
    betas,
    models,
    neighbourhoods: Neighbourhoods,
    *,
    method: str = "pearson",
    k_stimuli: int | None = None,
    random_state=0,
    reduced=(),
    backend: str = "numpy",
    device=None,
    batch_size="auto",
    dtype="float32",
    path: str = "auto",
    min_units: int = 2,
    memory_budget: int | None = None,
    chunk_size: int = 4096,
    n_jobs: int | None = -1,
    verbose=None,
) -> WeightedSearchlight:
    """Cross-validated weighted RSA of one subject at every searchlight centre.

    Parameters
    ----------
    betas : array, shape (n_images, n_units)
        Responses of one subject (units with a non-finite value are dropped, as in
        :func:`~brainalign.rsa.searchlight.searchlight`).
    models : list or dict of arrays
        At least two feature matrices (n_images × d, correlation-distance RDMs) and/or condensed
        RDMs over the images.
    neighbourhoods : Neighbourhoods
        Searchlight centres and their units.
    method : {"pearson", "cosine"}
        Comparison the weights are fitted for and the held-out score (rsatoolbox's corr and
        cosine).
    k_stimuli : int or None
        Stimulus folds, at least 2 (None: rsatoolbox's default for the number of images).
    random_state : int, Generator or False
        Shuffles the images before forming folds (``False`` keeps their order).
    reduced : list of str
        Models whose removal is also scored (``result.gain(name)``).
    backend, device, batch_size, dtype, path, min_units, memory_budget, chunk_size, n_jobs, verbose
        As :func:`~brainalign.rsa.searchlight.searchlight`.

    Returns
    -------
    WeightedSearchlight
    """
    betas = check_2d(betas, "betas")
    n_images = betas.shape[0]
    if method not in WEIGHTED_METHODS:
        raise InputError(f"method={method!r}: the weighted searchlight fits {WEIGHTED_METHODS}")
    dtype = _check_arguments(betas, neighbourhoods, method, "full", path, min_units, dtype)
    _check_batch_size(batch_size)
    n_jobs = _check_n_jobs(n_jobs)
    names, parsed = parse_models(models, n_images)
    if len(names) < 2:
        raise InputError("models: a weighted combination needs at least two models")
    unknown = [m for m in reduced if m not in names]
    if unknown:
        raise InputError(f"reduced: {unknown} are not among the models {names}")
    folds = k_fold_sets(1, n_images, 1, k_stimuli, random_state)
    if len(folds) < 2:
        raise InputError("k_stimuli: expected at least 2 folds, so that every score is held out")
    blocks = [rows for f in folds for rows in (f.train_stimuli, f.test_stimuli)]
    moments = [_moments(_block_rdms(parsed, n_images, rows), method) for rows in blocks]
    # up to PAIR_SUMS_MAX_IMAGES, one brain RDM per centre over every image, summed over each
    # block's pairs, costs a fraction of one RDM per block (the training blocks overlap)
    pairs = (
        pair_sums(parsed, n_images, blocks, method)
        if n_images <= PAIR_SUMS_MAX_IMAGES and path != "rdm_free"
        else None
    )
    values = block_values(
        betas,
        names,
        parsed,
        neighbourhoods,
        [np.arange(n_images)] if pairs is not None else blocks,
        mean=False,
        method=method,
        backend=backend,
        device=device,
        batch_size=batch_size,
        checkpoint_dir=None,
        dtype=dtype,
        path=path,
        min_units=min_units,
        memory_budget=memory_budget,
        chunk_size=chunk_size,
        zero_pad_limit=4 << 30,
        n_jobs=n_jobs,
        verbose=verbose,
        pairs=pairs,
    )  # (2 n_folds, n_models, n_centres): training and test blocks of each fold
    k = len(names)
    every = list(range(k))
    fits = [
        _fold_fit(values[2 * f], values[2 * f + 1], moments[2 * f], moments[2 * f + 1], every)
        for f in range(len(folds))
    ]
    reduced_scores = {
        name: np.mean(
            [
                _fold_fit(
                    values[2 * f],
                    values[2 * f + 1],
                    moments[2 * f],
                    moments[2 * f + 1],
                    [j for j in every if names[j] != name],
                )[1]
                for f in range(len(folds))
            ],
            axis=0,
        )
        for name in reduced
    }
    return WeightedSearchlight(
        names=names,
        score=np.mean([s for _, s in fits], axis=0),
        single=values[1::2].mean(0),
        weights=np.mean([w for w, _ in fits], axis=0),
        reduced=reduced_scores,
        folds=folds,
    )
