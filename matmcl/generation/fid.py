"""Fréchet and kernel distances between two sets of feature vectors, exact at small N.

torchmetrics and clean-fid are not installed and would be a heavy dependency for two formulas, so they are written
here. With 10 images and 128-d features (N < d) both covariances are singular and `scipy.linalg.sqrtm` of their
product is unstable; the trace term is instead the nuclear norm of the small cross matrix of the centred sets:
with A = (X₁ − μ₁)/√(n₁−1) and B = (X₂ − μ₂)/√(n₂−1), tr √(Σ₁Σ₂) = ‖A Bᵀ‖_*, so

    FID = ‖μ₁ − μ₂‖² + ‖A‖_F² + ‖B‖_F² − 2 ‖A Bᵀ‖_*      (float64; equal to the sqrtm formula whenever that is defined)

KID is the unbiased MMD² with the polynomial kernel k(x, y) = (xᵀy / d + 1)³ (Bińkowski et al., 2018), over all
images (no subsets: N is small).
"""

from __future__ import annotations

import numpy as np


def _features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"{name}: need a 2-D array of at least 2 feature vectors, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or infinite values")
    return x


def _pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _features(x, "first set"), _features(y, "second set")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: {x.shape[1]} vs {y.shape[1]}")
    return x, y


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """FID between feature sets x (n₁, d) and y (n₂, d) by the nuclear-norm formula (exact for any n, d)."""
    x, y = _pair(x, y)
    a = (x - x.mean(0)) / np.sqrt(len(x) - 1)
    b = (y - y.mean(0)) / np.sqrt(len(y) - 1)
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    value = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.sum(a * a) + np.sum(b * b) - 2.0 * cross
    return float(max(value, 0.0))


def kernel_distance(x: np.ndarray, y: np.ndarray) -> float:
    """KID: unbiased MMD² between x (n₁, d) and y (n₂, d) with the cubic polynomial kernel (may be < 0)."""
    x, y = _pair(x, y)
    d = x.shape[1]
    kxx, kyy, kxy = ((p @ q.T / d + 1.0) ** 3 for p, q in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())
