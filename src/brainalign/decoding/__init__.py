"""Decoding: brain → caption embedding → caption (nearest neighbour in a caption bank), and metrics."""

from brainalign.decoding.bank import CaptionBank, read_corpus, search_embeddings
from brainalign.decoding.captions import (
    CaptionDecoding,
    caption_ceiling,
    caption_sources,
    decode_captions,
)
from brainalign.decoding.decoder import (
    STREAMS_ROIS,
    DecodingResult,
    EmbeddingDecoder,
    decode_subject,
    nearest_training_captions,
    select_units,
)
from brainalign.decoding.metrics import (
    bleu,
    caption_consistency,
    caption_scores,
    cider_d,
    human_ceiling,
    identification_accuracy,
    meteor,
    prediction_scores,
    rouge_l,
    tokenize,
)

__all__ = [
    "CaptionDecoding",
    "caption_ceiling",
    "caption_sources",
    "decode_captions",
    "STREAMS_ROIS",
    "CaptionBank",
    "DecodingResult",
    "EmbeddingDecoder",
    "bleu",
    "caption_consistency",
    "caption_scores",
    "cider_d",
    "decode_subject",
    "human_ceiling",
    "identification_accuracy",
    "meteor",
    "nearest_training_captions",
    "prediction_scores",
    "read_corpus",
    "rouge_l",
    "search_embeddings",
    "select_units",
    "tokenize",
]
