"""Fiber vs. pore mask of a noisy SEM image, with denoising scaled to the fibers it finds.

Steps: square-root the grey levels (variance-stabilising for shot noise, and it lifts the dim back layers, which
the mask must count as fibers), Gaussian smoothing, Li's minimum cross-entropy threshold (it sits lower than Otsu's
between the dark pores and the many grey levels of the fiber layers, so dim fibers stay in), then removal of fiber
specks and pore holes below a minimum area.

A fixed smoothing cannot suit every mat: it closes the narrow gaps between thin fibers (pores too large, fibers too
wide) yet leaves noise speckle and the darker cores of thick fibers (secondary-electron edge effect) that split
thick fibers and pores. So the mask is made twice: a first pass at a fine scale measures the fiber diameter d
(pixels), and the final pass smooths with σ = max(min_sigma_px, sigma_per_diameter·d) and removes objects smaller
than min_size_per_diameter2·d² pixels — the same relative denoising for every fiber size, down to the pixel-level floor.
The defaults were chosen on rendered virtual-lab frames (benchmarks/bench_features.py reports the resulting errors).
On ideal sharp two-level images the mask comes out about 0.1·d too wide (the smoothing ramps the edges and Li's
threshold sits below half height); on blurred multi-layer SEM frames that is what the fiber edges need.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_li
from skimage.morphology import remove_small_holes, remove_small_objects

from matmcl.features.diameter import skeleton_diameters_px

INITIAL_SIGMA_PX = 0.7  # smoothing of the first, scale-finding pass
INITIAL_MIN_SIZE_PX = 4  # specks and holes smaller than this area (pixels) are removed in the first pass
MIN_SIGMA_PX = 0.5  # floor of the final smoothing (pixel-level resolution)
SIGMA_PER_DIAMETER = 0.1  # final smoothing σ per pixel of fiber diameter
MIN_SIZE_PER_DIAMETER2 = 0.1  # final minimum speck/hole area per squared pixel of fiber diameter
# The Li threshold sits low on the fibers' blurred edges (it must keep the dim back layers), so the mask is wider than
# the fibers; 2·EDT − 1 px matches the rendered diameters (calibrated with benchmarks/bench_features.py).
MASK_EDGE_OFFSET_PX = 1.0


def shot_noise_stabilized(image: np.ndarray) -> np.ndarray:
    """Square root of the (non-negative) grey levels as float: shot noise becomes about uniform."""
    return np.sqrt(np.clip(np.asarray(image, dtype=float), 0.0, None))


def threshold_mask(image: np.ndarray, sigma_px: float, min_size_px: int) -> np.ndarray:
    """Fiber mask at one scale: smooth the stabilized image, Li threshold, remove specks and holes < min_size_px."""
    smooth = ndimage.gaussian_filter(shot_noise_stabilized(image), sigma_px)
    if np.ptp(smooth) == 0:
        return np.zeros(smooth.shape, dtype=bool)
    mask = smooth > threshold_li(smooth)
    if min_size_px > 1:
        mask = remove_small_objects(mask, max_size=min_size_px - 1)
        mask = remove_small_holes(mask, max_size=min_size_px - 1)
    return mask


def fiber_mask(
    image: np.ndarray,
    initial_sigma_px: float = INITIAL_SIGMA_PX,
    initial_min_size_px: int = INITIAL_MIN_SIZE_PX,
    min_sigma_px: float = MIN_SIGMA_PX,
    sigma_per_diameter: float = SIGMA_PER_DIAMETER,
    min_size_per_diameter2: float = MIN_SIZE_PER_DIAMETER2,
) -> np.ndarray:
    """Boolean mask (True = fiber) of a grayscale image, denoised at a scale set by its own fiber diameter."""
    first = threshold_mask(image, initial_sigma_px, initial_min_size_px)
    widths = skeleton_diameters_px(first, edge_offset_px=MASK_EDGE_OFFSET_PX)
    if widths.size == 0:
        return first
    diameter_px = float(np.median(widths))
    sigma_px = max(min_sigma_px, sigma_per_diameter * diameter_px)
    return threshold_mask(image, sigma_px, int(round(min_size_per_diameter2 * diameter_px**2)))
