"""Typed parameters: one dataclass per pipeline step, loaded from params.yaml with a named profile applied."""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

DEFAULT_PARAMS = Path("params.yaml")
PROFILE_ENV = "MATMCL_PROFILE"


@dataclass(frozen=True)
class WorkspaceConfig:
    """Where artifacts live, relative to the workspace root."""

    raw_dir: str = "data/raw"
    processed_dir: str = "data/processed"
    models_dir: str = "models"
    reports_dir: str = "reports"


@dataclass(frozen=True)
class SynthConfig:
    """Virtual electrospinning lab: dataset size, SEM frame geometry and tensile logging."""

    n_films: int = 235
    n_frames: int = 4
    frame_width_px: int = 640
    frame_height_px: int = 480
    info_bar_px: int = 64
    pixel_size_nm: float = 20.0
    n_replicates: int = 3
    n_composites: int = 40
    strain_step_pct: float = 0.1
    seed: int = 0
    workers: int = 2


@dataclass(frozen=True)
class DataConfig:
    """How the data stages treat incomplete or bad raw input."""

    on_missing: str = "error"  # a film without frames or curves: "error" or "skip" (logged, counted)
    on_bad_curve: str = "skip"  # an unreadable or never-fracturing curve: "error" or "skip" (logged, counted)


@dataclass(frozen=True)
class PreprocessConfig:
    """SEM patching and histogram matching."""

    tile_px: int = 128
    reference: str = "pooled"
    workers: int = 2


@dataclass(frozen=True)
class FeaturesConfig:
    """Structural feature extraction from SEM patches."""

    workers: int = 2


@dataclass(frozen=True)
class TablesConfig:
    """Model-ready tables: film-level splits and the condition scaler."""

    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    gallery_fraction: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow tracking store."""

    mlflow_uri: str = "sqlite:///mlflow.db"  # a relative sqlite path is taken relative to the workspace root
    experiment: str = "matmcl"
    enabled: bool = True


T = TypeVar("T")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return `base` with `override` merged into it recursively (override wins)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_params(path: str | Path = DEFAULT_PARAMS, profile: str | None = None) -> dict[str, Any]:
    """Read params.yaml and apply a profile (argument, else $MATMCL_PROFILE, else the file's `profile`)."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) if path.exists() else {}
    raw = raw or {}
    profiles = raw.pop("profiles", {}) or {}
    name = profile or os.environ.get(PROFILE_ENV) or raw.get("profile", "default")
    if name not in profiles and name != "default":
        raise ValueError(f"unknown profile {name!r} in {path}; known: {sorted(profiles)}")
    params = deep_merge(raw, profiles.get(name) or {})
    params["profile"] = name
    return params


def section(params: dict[str, Any], name: str, cls: type[T]) -> T:
    """Build the dataclass `cls` from `params[name]`, rejecting unknown keys with a clear error."""
    values = dict(params.get(name) or {})
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"params section {name!r}: unknown keys {unknown}; known: {sorted(known)}")
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    return cls(**values)


@dataclass(frozen=True)
class Workspace:
    """A workspace root and its artifact folders."""

    root: Path
    config: WorkspaceConfig = field(default_factory=WorkspaceConfig)

    @property
    def raw(self) -> Path:
        return self.root / self.config.raw_dir

    @property
    def processed(self) -> Path:
        return self.root / self.config.processed_dir

    @property
    def models(self) -> Path:
        return self.root / self.config.models_dir

    @property
    def reports(self) -> Path:
        return self.root / self.config.reports_dir
