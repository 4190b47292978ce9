"""z-scores of the five property targets, fitted on training rows (NaN-aware): `TargetScaler` for the property heads
and the composite model, `LogTargetScaler` (z-scores of ln(property)) for the multiscale model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from matmcl.schema import PROPERTY_COLUMNS


@dataclass(frozen=True)
class TargetScaler:
    """Per-property mean and scale of the training targets (NaN-aware); constant properties get scale 1."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScaler:
        scale = np.nanstd(y, axis=0)
        return cls(np.nanmean(y, axis=0), np.where(scale > 0, scale, 1.0))

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (y - self.mean) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(PROPERTY_COLUMNS), "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TargetScaler:
        if list(doc["columns"]) != list(PROPERTY_COLUMNS):
            raise ValueError(f"target columns {doc['columns']} != {list(PROPERTY_COLUMNS)}")
        return cls(np.asarray(doc["mean"], dtype=float), np.asarray(doc["scale"], dtype=float))


class LogTargetScaler(TargetScaler):
    """z-scores of ln(property): every measured property must be positive."""

    @classmethod
    def fit(cls, y: np.ndarray) -> LogTargetScaler:
        if np.any(y[np.isfinite(y)] <= 0):
            raise ValueError("ln(property) targets: every measured property must be positive")
        return super().fit(np.log(y))

    def transform(self, y: np.ndarray) -> np.ndarray:
        return super().transform(np.log(y)).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.exp(super().inverse(np.asarray(z, dtype=float)))
