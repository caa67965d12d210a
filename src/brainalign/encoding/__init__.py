"""Encoding models: ridge from caption embeddings to every unit, maps, agreement, in-silico contrasts."""

from brainalign.encoding.estimators import RidgeEncoder
from brainalign.encoding.insilico import (
    DEFAULT_SENTENCES,
    PAPER_CONTRASTS,
    ContrastResult,
    insilico_contrast,
    paper_contrasts,
    predict_maps,
    read_sentence_sets,
    sentence_vector,
)
from brainalign.encoding.maps import (
    EncodingMap,
    agreement_relation,
    encoding_map,
    interparticipant_agreement,
    plot_agreement_relation,
)
from brainalign.encoding.ridge import (
    DEFAULT_ALPHAS,
    FRACRIDGE_FRACTIONS,
    RidgeResult,
    fracridge_cv,
    fraction_to_alpha,
    make_folds,
    pearson_r,
    ridge_cv,
    ridge_fit,
)

__all__ = [
    "DEFAULT_ALPHAS",
    "FRACRIDGE_FRACTIONS",
    "PAPER_CONTRASTS",
    "DEFAULT_SENTENCES",
    "ContrastResult",
    "EncodingMap",
    "RidgeEncoder",
    "RidgeResult",
    "agreement_relation",
    "encoding_map",
    "fraction_to_alpha",
    "fracridge_cv",
    "insilico_contrast",
    "interparticipant_agreement",
    "make_folds",
    "paper_contrasts",
    "read_sentence_sets",
    "pearson_r",
    "plot_agreement_relation",
    "predict_maps",
    "ridge_cv",
    "ridge_fit",
    "sentence_vector",
]
