"""The registry of analyses, in the order they are planned and reported.

A new analysis is a module here that defines ``ANALYSIS`` (see
:class:`brainalign.pipeline.analysis.Analysis`), plus its line below. Networks come first: the
models they add are scored by the RSA analyses.
"""

from brainalign.pipeline.analyses import (
    decoding,
    encoding,
    networks,
    rdm_rsa,
    response_decoding,
    response_encoding,
    roi_rsa,
    searchlight,
    searchlight_contrasts,
    variance_partitioning,
    weighted_rsa,
)

ANALYSES = (
    networks.ANALYSIS,
    roi_rsa.ANALYSIS,
    searchlight.ANALYSIS,
    searchlight_contrasts.ANALYSIS,
    encoding.ANALYSIS,
    variance_partitioning.ANALYSIS,
    decoding.ANALYSIS,
    rdm_rsa.ANALYSIS,
    response_encoding.ANALYSIS,
    response_decoding.ANALYSIS,
    weighted_rsa.ANALYSIS,
    weighted_rsa.RDM_ANALYSIS,
)

__all__ = ["ANALYSES"]
