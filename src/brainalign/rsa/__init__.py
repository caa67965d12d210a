"""Representational similarity analysis: RDMs, comparisons, ROI RSA, noise ceilings, searchlights."""

from brainalign.rsa.ceiling import noise_ceiling, normalise_by_ceiling, split_half_ceiling
from brainalign.rsa.ceiling_bounds import (
    NoiseCeiling,
    algonauts_r2,
    algonauts_score,
    noise_ceiling_bounds,
)
from brainalign.rsa.commonality import RdmCommonality, commonality_parts, rdm_commonality
from brainalign.rsa.compare import COMPARE_METHODS, compare_rdms
from brainalign.rsa.inference import RdmEvaluation, evaluate_models, rdm_permutation_test
from brainalign.rsa.known_results import objects92_known_results
from brainalign.rsa.maps import centres_to_volume
from brainalign.rsa.mds import rdm_mds
from brainalign.rsa.neighbourhoods import (
    SURFACE_RADIUS_MM,
    VOLUME_RADIUS_VOXELS,
    Neighbourhoods,
    mesh_adjacency,
    surface_neighbourhoods,
    volume_neighbourhoods,
)
from brainalign.rsa.project import project_to_fsaverage
from brainalign.rsa.rdm import compute_rdm, condense, from_rsatoolbox, squareform_rdm, to_rsatoolbox
from brainalign.rsa.roi import model_similarity, roi_rdms, roi_rsa
from brainalign.rsa.roi_evaluation import RoiEvaluations, compact_rdms, evaluate_rois
from brainalign.rsa.searchlight import searchlight
from brainalign.rsa.shared import common_shared_images, roi_noise_ceilings
from brainalign.rsa.subsets import load_subsets, make_subsets, save_subsets
from brainalign.rsa.weighted_rsa import (
    WeightedRsa,
    crossval_weighted_rdm,
    fit_weighted_rdm,
    k_fold_sets,
    weighted_rsa,
)

__all__ = [
    "COMPARE_METHODS",
    "SURFACE_RADIUS_MM",
    "VOLUME_RADIUS_VOXELS",
    "Neighbourhoods",
    "NoiseCeiling",
    "RdmCommonality",
    "RdmEvaluation",
    "RoiEvaluations",
    "WeightedRsa",
    "algonauts_r2",
    "algonauts_score",
    "evaluate_models",
    "evaluate_rois",
    "noise_ceiling_bounds",
    "objects92_known_results",
    "rdm_mds",
    "rdm_permutation_test",
    "centres_to_volume",
    "commonality_parts",
    "common_shared_images",
    "compact_rdms",
    "compare_rdms",
    "compute_rdm",
    "condense",
    "crossval_weighted_rdm",
    "fit_weighted_rdm",
    "k_fold_sets",
    "from_rsatoolbox",
    "load_subsets",
    "make_subsets",
    "mesh_adjacency",
    "model_similarity",
    "noise_ceiling",
    "normalise_by_ceiling",
    "project_to_fsaverage",
    "rdm_commonality",
    "roi_noise_ceilings",
    "roi_rdms",
    "roi_rsa",
    "split_half_ceiling",
    "save_subsets",
    "searchlight",
    "squareform_rdm",
    "surface_neighbourhoods",
    "to_rsatoolbox",
    "volume_neighbourhoods",
    "weighted_rsa",
]
