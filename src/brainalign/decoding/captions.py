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


@dataclass(frozen=True)
class CaptionSources:
    """Which bank captions are captions of which images of the data set.

    A caption string can belong to several images (COCO has identical captions for different
    images), so a bank caption may have several sources: pairs ``(rows[j], image_ids[j])``.

    Attributes
    ----------
    n_captions : int
        Captions in the bank.
    rows : (n_pairs,) int64
        Bank index of each pair.
    image_ids : (n_pairs,) int64
        The image whose caption it is.
    """

    n_captions: int
    rows: np.ndarray
    image_ids: np.ndarray

    @classmethod
    def from_array(cls, source_ids) -> CaptionSources:
        """From one image id per bank caption (-1 for a caption of no image)."""
        src = np.asarray(source_ids)
        if src.ndim != 1 or not np.issubdtype(src.dtype, np.integer):
            raise InputError(
                f"source_ids: expected one integer image id per bank caption (-1 for none), got "
                f"{src.dtype} array of shape {src.shape}; see caption_sources()"
            )
        rows = np.flatnonzero(src >= 0)
        return cls(len(src), rows.astype(np.int64), src[rows].astype(np.int64))

    def of(self, image_ids) -> np.ndarray:
        """(n_captions,) bool: the bank captions that are a caption of any of ``image_ids``."""
        mask = np.zeros(self.n_captions, dtype=bool)
        mask[self.rows[np.isin(self.image_ids, np.asarray(image_ids))]] = True
        return mask


def caption_sources(bank_captions, image_ids, captions_per_image) -> CaptionSources:
    """The images each bank caption is a caption of (compared as the bank stores text:
    whitespace collapsed).

    Every image whose captions hold a string is a source of each bank caption equal to it, so
    leaving out a test image's captions leaves out that string wherever it comes from (another
    image's identical caption, or a corpus entry).

    Parameters
    ----------
    bank_captions : list of str
    image_ids : (n_images,) int array
    captions_per_image : list of list of str, aligned with ``image_ids``

    Returns
    -------
    CaptionSources
    """
    from brainalign.decoding.bank import normalise_caption

    ids = np.asarray(image_ids).tolist()
    if len(ids) != len(captions_per_image):
        raise InputError(
            f"captions_per_image: expected one list of captions per image id ({len(ids)}), got "
            f"{len(captions_per_image)}"
        )
    images_of: dict[str, list[int]] = {}
    for i, caps in zip(ids, captions_per_image, strict=True):
        for c in caps:
            owners = images_of.setdefault(normalise_caption(c), [])
            if not owners or owners[-1] != int(i):
                owners.append(int(i))
    rows, owners = [], []
    for j, c in enumerate(bank_captions):
        for i in images_of.get(normalise_caption(c), ()):
            rows.append(j)
            owners.append(i)
    return CaptionSources(
        len(bank_captions), np.asarray(rows, np.int64), np.asarray(owners, np.int64)
    )


def bank_captions(captions_per_image, corpus=None) -> list[str]:
    """The captions of the decoding bank: a corpus file's (``corpus``, see
    :func:`~brainalign.decoding.read_corpus`) or, by default, the data set's own captions (the
    default of ``brainalign decode`` and ``[analyses.decoding] bank``)."""
    from brainalign.decoding.bank import read_corpus

    if corpus is not None:
        return list(read_corpus(corpus))
    return [c for caps in captions_per_image for c in caps]


def decode_captions(
    responses,
    embeddings,
    bank,
    sources,
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
    sources : CaptionSources or (len(bank),) int array
        The images each bank caption is a caption of (:func:`caption_sources`; an array gives
        one image per caption, -1 for none): the test images' own captions are left out of
        the search, since decoding must not retrieve what it is scored on.
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
    if not isinstance(sources, CaptionSources):
        sources = CaptionSources.from_array(sources)
    if sources.n_captions != len(bank):
        raise InputError(
            f"sources: made for a bank of {sources.n_captions} captions, but the bank holds "
            f"{len(bank)}; compute them with caption_sources(bank.captions, ...)"
        )
    res = decode_subject(responses, embeddings, rois=rois, **decoder_params)
    pred = np.asarray(res.predicted, dtype=np.float32)
    sims, idx = bank.search(pred, k=k, exclude=sources.of(res.test_ids), identity=identity)
    is_train = sources.of(res.train_ids)
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


__all__ = [
    "CaptionDecoding",
    "CaptionSources",
    "bank_captions",
    "caption_ceiling",
    "caption_sources",
    "decode_captions",
]
