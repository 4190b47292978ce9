"""Structural features of SEM fiber images; `measure_frame` is the public entry point (docs/measurement.md)."""

from matmcl.features.measure import MEASURE_KEYS, measure_frame

__all__ = ["MEASURE_KEYS", "measure_frame"]
