"""Fiber scale and fiber mask of a noisy SEM image, with denoising that follows the fiber width.

`fiber_scale_px` finds the typical fiber width without a mask: for fibers of width w and contrast C the summed
excess brightness over the background is C·w·L and the summed gradient magnitude 2·C·L (two edges of length L), so
w ≈ 2·Σ(f − background)/Σ|∇f|, contrast-free. Noise inflates Σ|∇f| at a fine scale σ, blur merges fibers at a
coarse one (w(σ) grows about 5σ on dense mats), so σ starts at the pixel level and steps up to w/`SCALE_SIGMA_RATIO`
a few times, where noise has faded but fibers are still apart. The estimate is rough — it reads high, up to about
2×, on dense mats where crossings and touching fibers hide edges — and only sets the mask's smoothing.

`fiber_mask` smooths the square-rooted image (variance-stabilising for shot noise; lifts the dim back layers) with
σ = w/`SMOOTH_PER_WIDTH`, thresholds it with Li's minimum cross-entropy (low enough to keep dim back-layer fibers)
and removes fiber specks and pore holes smaller than (w·`MIN_SIZE_PER_WIDTH`)². Its edges are only approximate:
widths come from intensity profiles (matmcl.features.diameter), which also move the mask edges to half height.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_li
from skimage.morphology import remove_small_holes, remove_small_objects

SCALE_SIGMA_RATIO = 10.0  # gradient scale σ = width / this while estimating the width
SCALE_ITERATIONS = 3
BACKGROUND_PERCENTILE = 2.0  # background level of the scale estimate
MIN_SIGMA_PX = 0.5
SCALE_BIN_SIGMA_PX = 2.0  # at a scale σ ≥ k·this the estimate runs on the image binned k × k (less work)
SMOOTH_PER_WIDTH = 8.0  # mask smoothing σ = width / this (at least MIN_SIGMA_PX)
LI_SUBSAMPLE = 3  # Li's threshold is computed on every 3rd pixel in each direction (a histogram statistic)
MIN_SIZE_PER_WIDTH = 0.3  # specks and holes smaller than (this · width)² pixels are removed


def shot_noise_stabilized(image: np.ndarray) -> np.ndarray:
    """Square root of the (non-negative) grey levels as float: shot noise becomes about uniform."""
    return np.sqrt(np.clip(np.asarray(image, dtype=float), 0.0, None))


def fiber_scale_px(image: np.ndarray) -> float:
    """Rough typical fiber width in pixels (NaN for a flat image)."""
    values = np.asarray(image, dtype=float)
    sigma = MIN_SIGMA_PX
    width = float("nan")
    for _ in range(SCALE_ITERATIONS):
        factor = max(1, int(sigma // SCALE_BIN_SIGMA_PX))
        smooth = ndimage.gaussian_filter(bin_image(values, factor), sigma / factor)
        excess = np.clip(smooth - np.percentile(smooth[::2, ::2], BACKGROUND_PERCENTILE), 0, None).sum()
        edges = np.hypot(*np.gradient(smooth)).sum()
        if edges <= 0 or excess <= 0:
            return float("nan")
        width = 2.0 * factor * excess / edges
        new_sigma = float(np.clip(width / SCALE_SIGMA_RATIO, MIN_SIGMA_PX, min(values.shape) / 16))
        if new_sigma <= sigma:
            break
        sigma = new_sigma
    return width


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of factor × factor pixel blocks (the last incomplete rows and columns are dropped)."""
    if factor <= 1:
        return image
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    return image[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor).mean(axis=(1, 3))


def smoothing_sigma_px(width_px: float) -> float:
    """Mask smoothing for fibers about `width_px` wide."""
    return max(MIN_SIGMA_PX, width_px / SMOOTH_PER_WIDTH)


def fiber_mask(image: np.ndarray, width_px: float) -> np.ndarray:
    """Boolean mask (True = fiber) of a grayscale image whose fibers are about `width_px` wide."""
    smooth = ndimage.gaussian_filter(shot_noise_stabilized(image), smoothing_sigma_px(width_px))
    if np.ptp(smooth) == 0:
        return np.zeros(smooth.shape, dtype=bool)
    return clean_mask(smooth > threshold_li(smooth[::LI_SUBSAMPLE, ::LI_SUBSAMPLE]), width_px)


def clean_mask(mask: np.ndarray, width_px: float) -> np.ndarray:
    """Remove fiber specks and fill pore holes smaller than (MIN_SIZE_PER_WIDTH · width)² pixels."""
    min_size = int((MIN_SIZE_PER_WIDTH * width_px) ** 2)
    if min_size > 1:
        mask = remove_small_objects(mask, max_size=min_size - 1)
        mask = remove_small_holes(mask, max_size=min_size - 1)
    return mask
