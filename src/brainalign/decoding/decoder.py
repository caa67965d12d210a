"""Decoding: brain activity → caption embedding (paper §5), with the same ridge solver as encoding.

With many more units than images the solver works in the dual (kernel) form automatically, so a
decoder from tens of thousands of vertices costs an n × n eigendecomposition per fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainalign.datasets.base import STREAMS_ROIS
from brainalign.decoding.metrics import identification_accuracy, prediction_scores
from brainalign.encoding.estimators import _RidgeBase
from brainalign.errors import InputError
from brainalign.utils.arrays import RowView

# The decoding defaults, one place for every caller: ``EmbeddingDecoder``, ``decode_subject``,
# ``brainalign decode`` and the pipeline's ``[analyses.decoding]``. (The default caption bank,
# the data set's own captions, is :func:`brainalign.decoding.bank_captions`.)

#: Penalty grid of the decoder: 1e-4 ... 1e8, half-decade steps. From many brain units to a
#: 768-d caption embedding, many dimensions choose the weakest penalty: on the demo's virtual NSD
#: the former grid 1 ... 1e5 left 263-557 of 768 at alpha = 1 in every subject, an edge still
#: open (1 > 1e-3 of the kernel's smallest eigenvalue, 334-598). This grid reaches saturation
#: at the small end for any kernel whose smallest eigenvalue exceeds 0.1 (there 238-532
#: dimensions still choose 1e-4: the minimum-norm least-squares limit, which no smaller alpha
#: changes, so no warning), and at the large end for largest eigenvalues below ~1e5 (the
#: demo's: 7e3-1.3e4). The edge counts and whether each end is open: ``edge_counts_``,
#: ``edges_open_``.
DECODING_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-4, 8, 25))
#: The decoder fits an intercept (the paper's code dropped it: ``fit_intercept="paper"``).
DECODING_FIT_INTERCEPT = True
#: Bank neighbours kept per test image.
DECODING_K = 5


class EmbeddingDecoder(_RidgeBase):
    """Cross-validated ridge from brain units to a caption embedding (one alpha per dimension).

    Parameters are those of :class:`brainalign.encoding.RidgeEncoder` (``alphas``, ``cv``,
    ``alpha_per_target``, ``mode="ridge"|"fracridge"``, ``fit_intercept``, ``backend``, ``device``
    …), except that ``alphas=None`` is the decoding grid ``DECODING_ALPHAS``.
    ``mode="fracridge", fit_intercept="paper"`` reproduces the published decoder exactly,
    including its dropped intercept (which shifts the predicted embeddings).

    Attributes
    ----------
    coef_ : (dim, n_units) float32
    intercept_ : (dim,) float32
    alpha_ : (dim,) float64
    """

    _default_alphas = np.asarray(DECODING_ALPHAS)

    def fit(self, X, y):
        """Fit on brain responses ``X`` (n_images × n_units) and embeddings ``y`` (n_images × dim)."""
        return self._fit_arrays(X, y)

    def score(self, X, y, sample_weight=None):
        """Prediction score per image: Pearson r between predicted and target embedding.

        Returns an (n_images,) array (paper Fig. 2b); for a 1-D target, the Pearson r over images.
        """
        pred, y = self._predictions_and_targets(X, y, sample_weight)
        if y.ndim == 1:
            return super().score(X, y)
        return prediction_scores(pred, y).astype(np.float32)


def select_units(responses, rois=None) -> np.ndarray:
    """Indices of the units to decode from: the union of ``rois`` (default: all streams ROIs present)
    minus units with any NaN response.

    Parameters
    ----------
    responses : SubjectResponses
    rois : sequence of str, optional
    """
    masks = getattr(responses, "rois", None)
    if masks is None:
        raise InputError("responses: expected a SubjectResponses with ROI masks (or pass units=)")
    names = [r for r in STREAMS_ROIS if r in masks] if rois is None else list(rois)
    if not names:
        raise InputError(
            f"rois: none of the streams ROIs {STREAMS_ROIS} is in this subject's ROIs "
            f"({sorted(masks)}); pass rois= explicitly"
        )
    missing = [r for r in names if r not in masks]
    if missing:
        raise InputError(f"rois: {missing} not among this subject's ROIs ({sorted(masks)})")
    sel = np.zeros(responses.n_units, bool)
    for r in names:
        sel |= np.asarray(masks[r], bool)
    finite = np.ones(responses.n_units, bool)
    idx = np.flatnonzero(sel)
    finite_sel = np.isfinite(np.asarray(responses.betas[:, idx])).all(0)
    finite[idx[~finite_sel]] = False
    return np.flatnonzero(sel & finite)


@dataclass
class DecodingResult:
    """Result of :func:`decode_subject`.

    Attributes
    ----------
    predicted, target : (n_test, dim) float32
    scores : (n_test,) float32
        Pearson r per test image (prediction score).
    identification : dict
        ``{"2": …, "50": …, "all": …}`` results of :func:`identification_accuracy`.
    decoder : EmbeddingDecoder
    units : (n_units_used,) int64
    test_ids, train_ids : (n,) int64
    """

    predicted: np.ndarray
    target: np.ndarray
    scores: np.ndarray
    identification: dict
    decoder: EmbeddingDecoder
    units: np.ndarray
    test_ids: np.ndarray
    train_ids: np.ndarray


def decode_subject(
    responses,
    embeddings,
    *,
    rois=None,
    units=None,
    train=None,
    test=None,
    n_ways=(2, 50, "all"),
    **decoder_params,
) -> DecodingResult:
    """Train a decoder on a subject's non-shared images and decode the shared ones (paper §5).

    Parameters
    ----------
    responses : SubjectResponses
    embeddings : (n_images, dim) array aligned with ``responses.image_ids``
    rois : sequence of str, optional
        ROIs whose units are used (default: all streams ROIs present).
    units : index array, optional
        Use these units instead of ``rois``.
    train, test : bool masks, optional
        Any other split (default: ``~shared`` / ``shared``).
    n_ways : tuple
        Identification settings to report (values larger than the test set are skipped).
    **decoder_params
        Passed to :class:`EmbeddingDecoder`.
    """
    E = np.asarray(embeddings, dtype=np.float32)
    if E.ndim != 2 or E.shape[0] != responses.n_images:
        raise InputError(
            f"embeddings: expected ({responses.n_images}, dim) aligned with the responses' images, got {E.shape}"
        )
    test_m = np.asarray(responses.shared if test is None else test, bool)
    train_m = ~test_m if train is None else np.asarray(train, bool)
    if test_m.shape != (responses.n_images,) or train_m.shape != (responses.n_images,):
        raise InputError(f"train/test: expected boolean masks of length {responses.n_images}")
    if (train_m & test_m).any() or train_m.sum() < 2 or test_m.sum() < 2:
        raise InputError("train/test: need disjoint sets of at least 2 images each")
    idx = select_units(responses, rois) if units is None else np.asarray(units, dtype=np.int64)
    # the training and test rows are read apart (no whole-subject copy), and the decoder may
    # centre its own training copy in place
    X_train = np.asarray(RowView(responses.betas, train_m, columns=idx))
    X_test = np.asarray(RowView(responses.betas, test_m, columns=idx))
    decoder_params.setdefault("copy_X", False)
    dec = EmbeddingDecoder(**decoder_params).fit(X_train, E[train_m])
    del X_train
    pred = dec.predict(X_test).astype(np.float32)
    target = E[test_m]
    n_test = int(test_m.sum())
    ident = {}
    for nw in n_ways:
        if nw == "all" or nw <= n_test:
            ident[str(nw)] = identification_accuracy(pred, target, n_way=nw, top=(1, 5))
    return DecodingResult(
        predicted=pred,
        target=target,
        scores=prediction_scores(pred, target).astype(np.float32),
        identification=ident,
        decoder=dec,
        units=idx,
        test_ids=responses.image_ids[test_m],
        train_ids=responses.image_ids[train_m],
    )


def nearest_training_captions(
    predicted, train_captions, encoder=None, train_embeddings=None, identity=None
):
    """The training caption nearest to each predicted embedding (paper Fig. 2b's comparison: is
    decoding more than retrieving a training item?).

    Parameters
    ----------
    predicted : (n, dim) array
    train_captions : list of list of str (per training image) or list of str
    encoder : sentence encoder, optional
        Embeds every training caption (exact per-caption search).
    train_embeddings : (n_train_images, dim) array, optional
        Without an encoder: per-image embeddings; each image is represented by its first caption.
    identity : str, optional
        Identity of the encoder behind ``train_embeddings`` (checked against nothing; recorded).

    Returns
    -------
    list of str, one per prediction.
    """
    from brainalign.decoding.bank import CaptionBank

    per_image = [[c] if isinstance(c, str) else list(c) for c in train_captions]
    if encoder is not None:
        flat = [c for caps in per_image for c in caps]
        bank = CaptionBank.build(flat, encoder, None, dtype="float32")
    elif train_embeddings is not None:
        bank = CaptionBank.from_embeddings(
            train_embeddings, [caps[0] for caps in per_image], identity or "unknown"
        )
    else:
        raise InputError("nearest_training_captions: give encoder= or train_embeddings=")
    return [row[0] for row in bank.search_captions(np.asarray(predicted, dtype=np.float32), k=1)]
