"""Group statistics: t-tests, FDR, sign-flip permutations, cluster and TFCE inference on meshes."""

from brainalign.stats.cluster import (
    ClusterResult,
    TFCEResult,
    as_adjacency,
    cluster_test,
    tfce,
    tfce_test,
)
from brainalign.stats.group import (
    FDRResult,
    SignFlipResult,
    TTestResult,
    compare_models,
    fdr,
    flip_matrix,
    one_sample_t,
    paired_t,
    sign_flip,
    ttest_ind_paper,
)
from brainalign.stats.scores import (
    ModelScoresResult,
    group_map,
    group_model_scores,
    subject_mean,
)

__all__ = [
    "ClusterResult",
    "FDRResult",
    "ModelScoresResult",
    "SignFlipResult",
    "TFCEResult",
    "TTestResult",
    "as_adjacency",
    "cluster_test",
    "compare_models",
    "fdr",
    "group_map",
    "group_model_scores",
    "flip_matrix",
    "one_sample_t",
    "paired_t",
    "sign_flip",
    "subject_mean",
    "tfce",
    "tfce_test",
    "ttest_ind_paper",
]
