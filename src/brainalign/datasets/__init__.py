"""Data: the real NSD layout, the virtual NSD, stimuli and cortical surfaces."""

from brainalign.datasets.base import Stimuli, SubjectResponses

__all__ = ["Stimuli", "SubjectResponses"]
