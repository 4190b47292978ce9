"""Histogram matching of 8-bit patches to a pooled 256-bin reference histogram.

The reference is the grey-level histogram of the usable area (info bar dropped) of every frame, summed frame by
frame so memory stays at 256 counts. Matching maps each grey level through the patch's CDF onto the reference's
quantile function — the lookup table `skimage.exposure.match_histograms` builds for a reference image, computed
from the histogram instead and rounded to uint8.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from matmcl.atomic import write_json

N_LEVELS = 256
FORMAT_VERSION = 1


def grey_histogram(image: np.ndarray) -> np.ndarray:
    """Counts of the 256 grey levels of a uint8 image."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    return np.bincount(image.ravel(), minlength=N_LEVELS).astype(np.int64)


def _check_reference(reference_hist: np.ndarray) -> np.ndarray:
    reference_hist = np.asarray(reference_hist)
    if reference_hist.shape != (N_LEVELS,) or (reference_hist < 0).any() or reference_hist.sum() <= 0:
        raise ValueError(f"reference histogram must be {N_LEVELS} non-negative counts with a positive sum")
    return reference_hist


def matching_lut(source_hist: np.ndarray, reference_hist: np.ndarray) -> np.ndarray:
    """uint8 lookup table sending each source grey level to the reference level at the same quantile."""
    reference_hist = _check_reference(reference_hist)
    src_quantiles = np.cumsum(source_hist) / source_hist.sum()
    ref_levels = np.flatnonzero(reference_hist)
    ref_quantiles = np.cumsum(reference_hist[ref_levels]) / reference_hist.sum()
    mapped = np.interp(src_quantiles, ref_quantiles, ref_levels)
    return np.clip(np.rint(mapped), 0, N_LEVELS - 1).astype(np.uint8)


def match_histogram(patch: np.ndarray, reference_hist: np.ndarray) -> np.ndarray:
    """Return `patch` (uint8) with its grey-level distribution matched to `reference_hist` (256 counts)."""
    return matching_lut(grey_histogram(patch), reference_hist)[patch]


def save_reference(reference_hist: np.ndarray, path: str | Path, **provenance: Any) -> Path:
    """Write the reference histogram as JSON (counts plus how it was built) atomically."""
    counts = _check_reference(reference_hist)
    doc = {
        "format_version": FORMAT_VERSION,
        "n_levels": N_LEVELS,
        "counts": [int(c) for c in counts],
        "n_pixels": int(counts.sum()),
        **provenance,
    }
    return write_json(doc, path)


def load_reference(path: str | Path) -> np.ndarray:
    """Read the 256 counts of a reference histogram written by `save_reference`."""
    doc = json.loads(Path(path).read_text())
    counts = np.asarray(doc.get("counts", []), dtype=np.int64)
    if counts.shape != (N_LEVELS,):
        raise ValueError(f"{path}: expected {N_LEVELS} counts, got {counts.shape[0]}")
    return _check_reference(counts)
