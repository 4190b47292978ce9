"""Property-prediction metrics: per-property R² and RMSE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import mean_squared_error, r2_score

MIN_SAMPLES_R2 = 2  # R² needs at least two measured values


def _as_2d(values: np.ndarray) -> np.ndarray:
    """Return `values` as a float (n_samples, n_outputs) array; a 1-D array becomes one column."""
    values = np.asarray(values, dtype=float)
    return values[:, None] if values.ndim == 1 else values


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, property_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per-property R² and RMSE of multi-output predictions: `{prop: {"r2": ..., "rmse": ...}}`.

    Rows where the measured value is NaN (a property not measured for that sample) are left out of that
    property's metrics; a property with fewer than two measured values gets NaN metrics.
    """
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true shape {y_true.shape} != y_pred shape {y_pred.shape}")
    if y_true.shape[1] != len(property_names):
        raise ValueError(f"{y_true.shape[1]} outputs but {len(property_names)} property names")
    metrics = {}
    for j, name in enumerate(property_names):
        measured = np.isfinite(y_true[:, j])
        if measured.sum() < MIN_SAMPLES_R2:
            metrics[name] = {"r2": float("nan"), "rmse": float("nan")}
            continue
        t, p = y_true[measured, j], y_pred[measured, j]
        metrics[name] = {"r2": float(r2_score(t, p)), "rmse": float(np.sqrt(mean_squared_error(t, p)))}
    return metrics
