"""From a subject's brain to captions: decode embeddings, then retrieve captions from a bank.

One function for every caller (the pipeline's decoding stage and ``brainalign decode``), so the
same data always decodes to the same captions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainalign.decoding.decoder import DecodingResult, decode_subject
from brainalign.errors import InputError


@dataclass
class CaptionDecoding:
    """What :func:`decode_captions` returns.

    Attributes
    ----------
    decoding : DecodingResult
        Predicted embeddings (n_test, dim), scores and identification accuracies.
    top_idx, top_sim : arrays, shape (n_test, k)
        The ``k`` nearest bank captions of each prediction (indices, cosine similarities),
        never a caption of the test images themselves.
    train_idx, train_sim : arrays, shape (n_test,)
        The nearest caption of a training image (paper Fig. 2b: is decoding more than
        retrieving a training item?); -1 / NaN when the bank holds no training caption.
    """

    decoding: DecodingResult
    top_idx: np.ndarray
    top_sim: np.ndarray
    train_idx: np.ndarray
    train_sim: np.ndarray


def caption_sources(bank_captions, image_ids, captions_per_image) -> np.ndarray:
    """The image each bank caption belongs to (-1 when it is no caption of these images).

    Parameters
    ----------
    bank_captions : list of str
    image_ids : (n_images,) int array
    captions_per_image : list of list of str, aligned with ``image_ids``

    Returns
    -------
    (n_captions,) int64 array
    """
    source: dict[str, int] = {}
    for i, caps in zip(np.asarray(image_ids).tolist(), captions_per_image, strict=True):
        for c in caps:
            source.setdefault(c, int(i))
    return np.array([source.get(c, -1) for c in bank_captions], dtype=np.int64)


def decode_captions(
    responses,
    embeddings,
    bank,
    source_ids,
    *,
    rois=None,
    k: int = 5,
    identity: str | None = None,
    **decoder_params,
) -> CaptionDecoding:
    """Decode caption embeddings from a subject (train non-shared, test shared), then captions.

    Parameters
    ----------
    responses : SubjectResponses
    embeddings : (n_images, dim) array aligned with ``responses.image_ids``
    bank : CaptionBank
        Built with the same sentence encoder as ``embeddings``.
    source_ids : (len(bank),) int array
        The image each bank caption describes (-1 for captions of no image of the data set,
        see :func:`caption_sources`): the test images' own captions are left out of the search,
        since decoding must not retrieve what it is scored on.
    rois : sequence of str, optional
        ROIs whose units are used (default: all streams ROIs present).
    k : int
        Bank neighbours kept per test image.
    identity : str, optional
        The identity of the encoder behind ``embeddings``; refused if it differs from the bank's.
    **decoder_params
        Passed to :class:`~brainalign.decoding.EmbeddingDecoder` (``alphas``, ``mode``,
        ``fit_intercept``, ``backend``, ``device`` …).
    """
    source_ids = np.asarray(source_ids)
    if source_ids.shape != (len(bank),):
        raise InputError(
            f"source_ids: expected one image id per bank caption ({len(bank)}), got "
            f"shape {source_ids.shape}"
        )
    res = decode_subject(responses, embeddings, rois=rois, **decoder_params)
    pred = np.asarray(res.predicted, dtype=np.float32)
    sims, idx = bank.search(pred, k=k, exclude=np.isin(source_ids, res.test_ids), identity=identity)
    is_train = np.isin(source_ids, res.train_ids)
    if is_train.any():
        tsims, tidx = bank.search(pred, k=1, exclude=~is_train, identity=identity)
        train_idx, train_sim = np.asarray(tidx)[:, 0], np.asarray(tsims, np.float32)[:, 0]
    else:
        train_idx = np.full(len(pred), -1, dtype=np.int64)
        train_sim = np.full(len(pred), np.nan, dtype=np.float32)
    return CaptionDecoding(res, np.asarray(idx), np.asarray(sims, np.float32), train_idx, train_sim)


def caption_ceiling(captions_per_image, encoder) -> np.ndarray:
    """The decoding ceiling per image: each caption against the mean of the image's others.

    Parameters
    ----------
    captions_per_image : list of list of str
        At least two captions per image.
    encoder : sentence encoder
        Anything with ``encode(list of str) -> (n, dim)``; the decoded space's encoder.

    Returns
    -------
    (n_images,) float array: :func:`~brainalign.decoding.caption_consistency` per image.
    """
    from brainalign.decoding.metrics import caption_consistency

    flat = [c for cs in captions_per_image for c in cs]
    E = np.asarray(encoder.encode(flat), dtype=np.float64)
    bounds = np.cumsum([0] + [len(cs) for cs in captions_per_image])
    per_image = [E[bounds[i] : bounds[i + 1]] for i in range(len(captions_per_image))]
    return np.asarray(caption_consistency(per_image)["per_image"])


__all__ = ["CaptionDecoding", "caption_ceiling", "caption_sources", "decode_captions"]
