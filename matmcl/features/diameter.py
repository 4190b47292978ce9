"""Fiber diameter from a fiber mask, DiameterJ-style: twice the distance to the background along the skeleton.

On the skeleton (the centerline of every fiber) the Euclidean distance transform (EDT) is the local fiber radius.
Skeleton points near junctions (where crossing fibers merge into wider blobs), near branch ends (spurs, fiber ends)
and near the image border (which cuts fibers) are dropped: those within `junction_exclusion` local radii + 1 pixel
of such a point. The width at a point is 2·EDT − edge_offset_px: with offset 0 (DiameterJ) it is unbiased for a
mask whose boundary is the fiber's true edge at any angle (±0.5 px of pixel quantization); a mask that lies outside
the edges (a low threshold on blurred edges) needs the offset (see matmcl.features.segmentation.MASK_EDGE_OFFSET_PX).

The median of the samples is the robust summary: merged parallel fibers and beads make a tail of large widths that
pulls the mean up. Both are reported.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

JUNCTION_EXCLUSION = 1.0  # radius around junctions and ends left out, in local fiber radii (plus one pixel)
_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]])


class DiameterStats(NamedTuple):
    """Summary of the diameter samples of one image (NaN when no skeleton point survives)."""

    mean_nm: float
    median_nm: float
    n_points: int


def skeleton_diameters_px(mask: np.ndarray, junction_exclusion: float = JUNCTION_EXCLUSION,
                          edge_offset_px: float = 0.0) -> np.ndarray:
    """Local fiber widths 2·EDT − edge_offset_px (pixels) at skeleton points away from junctions, ends and border."""
    mask = np.asarray(mask, dtype=bool)
    skeleton = skeletonize(mask)
    if not skeleton.any():
        return np.empty(0)
    radius = ndimage.distance_transform_edt(mask)
    neighbours = ndimage.convolve(skeleton.astype(np.int32), _NEIGHBOURS, mode="constant")
    special = skeleton & ((neighbours >= 3) | (neighbours <= 1))
    rows, cols = np.nonzero(skeleton)
    local = radius[rows, cols]
    # The image border cuts fibers like a branch end: the distance transform does not see beyond it.
    border = np.minimum.reduce([rows, cols, mask.shape[0] - 1 - rows, mask.shape[1] - 1 - cols])
    keep = border > junction_exclusion * local + 1.0
    if special.any():
        distance, (near_rows, near_cols) = ndimage.distance_transform_edt(~special, return_indices=True)
        reach = junction_exclusion * radius[near_rows[rows, cols], near_cols[rows, cols]] + 1.0
        keep &= distance[rows, cols] > reach
    return 2.0 * local[keep] - edge_offset_px


def fiber_diameter_nm(mask: np.ndarray, pixel_size_nm: float, junction_exclusion: float = JUNCTION_EXCLUSION,
                      edge_offset_px: float = 0.0) -> DiameterStats:
    """Mean and median fiber diameter (nm) of a fiber mask and the number of skeleton points they rest on."""
    widths = skeleton_diameters_px(mask, junction_exclusion, edge_offset_px) * pixel_size_nm
    if widths.size == 0:
        return DiameterStats(float("nan"), float("nan"), 0)
    return DiameterStats(float(widths.mean()), float(np.median(widths)), int(widths.size))
