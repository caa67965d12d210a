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

__all__ = [
    "ClusterResult",
    "FDRResult",
    "SignFlipResult",
    "TFCEResult",
    "TTestResult",
    "as_adjacency",
    "cluster_test",
    "compare_models",
    "fdr",
    "flip_matrix",
    "one_sample_t",
    "paired_t",
    "sign_flip",
    "tfce",
    "tfce_test",
    "ttest_ind_paper",
]
