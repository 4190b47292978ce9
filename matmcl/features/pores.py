"""Pore size of a mat image from its background (pore) mask, DiameterJ-style: the inscribed diameter on the medial axis."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize


def pore_size_um(background: np.ndarray, pixel_size_nm: float) -> float:
    """Mean pore size in µm: 2 × background distance-to-fiber, averaged over the background's skeleton.

    The skeleton of the pore space runs through the middle of every pore, where the distance to the nearest fiber
    is the pore's half width, so the mean inscribed diameter along it is a size that does not depend on how pores
    connect or where the image border cuts them. Returns NaN when the image has no background.
    """
    background = np.asarray(background, bool)
    if not background.any():
        return float("nan")
    distance = ndimage.distance_transform_edt(background)
    skeleton = skeletonize(background)
    values = distance[skeleton] if skeleton.any() else distance[background]
    return float(2.0 * values.mean() * pixel_size_nm / 1000.0)


def open_area_fraction(background: np.ndarray) -> float:
    """Share of the image that is pore space."""
    return float(np.asarray(background, bool).mean())
