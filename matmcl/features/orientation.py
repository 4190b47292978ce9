"""Fiber orientation from the centre lines: the order parameter and mean angle of the local fiber directions.

The direction of a fiber at a centre-line pixel is the main axis of the nearby pixels of its skeleton segment
(matmcl.features.diameter), taken at points spread evenly along all measured segments, so every unit of fiber
length counts once whatever its brightness, depth layer or width — the definition of the truth:

    m = ⟨exp(2iθ)⟩ over centre-line points,   S = |m|,   θ0 = ½·arg m.

S = ⟨cos 2(θ − θ0)⟩ is the 2-D nematic order (= 2⟨cos²(θ − θ0)⟩ − 1); for fiber angles drawn from
p(θ) ∝ exp(k·cos 2(θ − θ0)) it is I1(k)/I0(k). A ring, an isotropic mat or noise gives S near 0 (0 without any
centre line, never NaN); below `MIN_ORDER_FOR_ANGLE` the mean angle is undefined (None).

Angles are counter-clockwise from the image x axis as displayed (y up), in (−90°, 90°].
"""

from __future__ import annotations

import numpy as np

MIN_ORDER_FOR_ANGLE = 0.05  # below this S the mean angle is undefined


def orientation_order(angles_rad: np.ndarray) -> tuple[float, float | None]:
    """Order parameter S in [0, 1] and mean angle θ0 in degrees (None when S < MIN_ORDER_FOR_ANGLE) of fiber
    directions given as angles (radians, counter-clockwise, y up; axial: θ and θ + π are the same direction)."""
    angles = np.asarray(angles_rad, dtype=float)
    if angles.size == 0:
        return 0.0, None
    moment = np.exp(2j * angles).mean()
    order = float(abs(moment))
    return order, (float(np.rad2deg(0.5 * np.angle(moment))) if order >= MIN_ORDER_FOR_ANGLE else None)
