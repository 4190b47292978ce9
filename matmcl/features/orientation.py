"""Fiber orientation: the order parameter from the centre lines, the mean angle from the fiber mask's edges.

The direction of a fiber at a centre-line pixel is the main axis of the nearby pixels of its skeleton segment
(matmcl.features.diameter), taken at every pixel of the measured segments, so every unit of fiber length counts
once whatever its brightness, depth layer or width — the definition of the truth:

    m = ⟨exp(2iθ)⟩ over centre-line points,   S = |m|,   θ0 = ½·arg m.

S = ⟨cos 2(θ − θ0)⟩ is the 2-D nematic order (= 2⟨cos²(θ − θ0)⟩ − 1); for fiber angles drawn from
p(θ) ∝ exp(k·cos 2(θ − θ0)) it is I1(k)/I0(k). A ring, an isotropic mat or noise gives S near 0 (0 without any
centre line, never NaN); below `MIN_ORDER_FOR_ANGLE` the mean angle is undefined (None). Each centre-line pixel counts
with the length of centre line it stands for (an 8-connected line has √2 times fewer pixels per unit length on the
diagonal).
The mean angle θ0 of a frame comes from the fiber mask's edges (`edge_mean_angle`), whose directions survive the
crossings far better than the centre lines do; their order is diluted by the corners, so S comes from the centre
lines.

Angles are counter-clockwise from the image x axis as displayed (y up), in (−90°, 90°].
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MIN_ORDER_FOR_ANGLE = 0.05  # below this S the mean angle is undefined
EDGE_SIGMA_PX = 1.0  # smoothing of the fiber mask before its edge directions are taken (removes the pixel staircase)


def orientation_order(angles_rad: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float | None]:
    """Order parameter S in [0, 1] and mean angle θ0 in degrees (None when S < MIN_ORDER_FOR_ANGLE) of fiber
    directions given as angles (radians, counter-clockwise, y up; axial: θ and θ + π are the same direction),
    each counted with its weight (the centre-line length it stands for; default: equal)."""
    angles = np.asarray(angles_rad, dtype=float)
    if angles.size == 0:
        return 0.0, None
    moment = np.average(np.exp(2j * angles), weights=weights)
    order = float(abs(moment))
    return order, (float(np.rad2deg(0.5 * np.angle(moment))) if order >= MIN_ORDER_FOR_ANGLE else None)


def edge_mean_angle(mask: np.ndarray) -> float | None:
    """Mean fiber angle θ0 (degrees, as in `orientation_order`) from the edge directions of a fiber mask: every unit
    of edge length counts once (weight |∇|), the fiber direction is normal to the gradient. The corners at crossings
    and rough edges add directions in all orientations: they dilute the order but do not turn its axis, and far more
    edge than centre line survives the crossings, so the angle is less noisy than the centre lines'. None without
    edges."""
    values = mask.astype(np.float32)
    d_row = ndimage.gaussian_filter(values, EDGE_SIGMA_PX, order=(1, 0))
    d_col = ndimage.gaussian_filter(values, EDGE_SIGMA_PX, order=(0, 1))
    edge = np.abs(d_row) + np.abs(d_col) > 1e-3  # the edge band (a unit step's peak gradient is 0.4)
    if not edge.any():
        return None
    x, y = d_col[edge].astype(float), -d_row[edge].astype(float)  # the gradient, y up
    magnitude = np.hypot(x, y)
    # Σ |∇|·exp(2iφ) = Σ (x² − y², 2xy)/|∇|; the fiber direction is the normal turned by 90° (sign flip).
    moment = -complex(np.sum((x * x - y * y) / magnitude), np.sum(2 * x * y / magnitude))
    return float(np.rad2deg(0.5 * np.angle(moment)))
