"""Activations of the trained networks: :func:`brainalign.features.vision.activations`.

brainalign has one activations extractor, in :mod:`brainalign.features.vision` (an earlier stage
than this package). A :class:`~brainalign.networks.BLTNet` tells it, through
:meth:`~brainalign.networks.BLTNet.activation_spec`, its layer × timestep taps
(``layernorm_layer_{l}_time_{t}``, spatially averaged), its preprocessing (centre square, resize,
[-1, 1]) and the paper code's random test-time crop (``test_time_crop=True``, for comparisons
only). This module keeps the networks' import path: ``brainalign.networks.activations`` is that
function, and :func:`load_activations` reads its ``out`` folders.
"""

from __future__ import annotations

from brainalign.features.vision import activations, load_activations

__all__ = ["activations", "load_activations"]
