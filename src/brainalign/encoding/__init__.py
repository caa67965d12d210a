"""Encoding models: ridge from caption embeddings to every unit, maps, agreement, in-silico contrasts,
banded ridge and variance partitioning.

Targets may be memory-mapped; :class:`RowView` (also ``SubjectResponses.betas_view``) selects rows
of one without copying them, and fitting and scoring read it one block of units at a time.
"""

from brainalign.encoding.banded import (
    BandedRidgeEncoder,
    BandedRidgeResult,
    banded_ridge_cv,
    dirichlet_candidates,
    r2_split,
    stack_bands,
)
from brainalign.encoding.estimators import (
    RidgeEncoder,
    cross_val_predict,
    cross_val_r,
    smallest_training_part,
)
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
    split_half_reliability,
)
from brainalign.encoding.partition import (
    PartitionResult,
    all_subsets,
    inclusion_exclusion,
    variance_partition,
)
from brainalign.encoding.ridge import (
    DEFAULT_ALPHAS,
    EDGE_WARN_FRACTION,
    FRACRIDGE_FRACTIONS,
    RidgeResult,
    edge_counts,
    edges_open,
    fracridge_cv,
    fraction_to_alpha,
    make_folds,
    pearson_r,
    ridge_cv,
    ridge_fit,
)
from brainalign.utils.arrays import RowView

__all__ = [
    "BandedRidgeEncoder",
    "BandedRidgeResult",
    "PartitionResult",
    "all_subsets",
    "banded_ridge_cv",
    "dirichlet_candidates",
    "inclusion_exclusion",
    "r2_split",
    "stack_bands",
    "variance_partition",
    "DEFAULT_ALPHAS",
    "EDGE_WARN_FRACTION",
    "FRACRIDGE_FRACTIONS",
    "PAPER_CONTRASTS",
    "DEFAULT_SENTENCES",
    "ContrastResult",
    "EncodingMap",
    "RidgeEncoder",
    "RidgeResult",
    "RowView",
    "agreement_relation",
    "cross_val_predict",
    "cross_val_r",
    "edge_counts",
    "edges_open",
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
    "smallest_training_part",
    "split_half_reliability",
    "sentence_vector",
]
