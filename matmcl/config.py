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
    """Where artifacts live, relative to the workspace root.

    `raw_dir` is the raw data the pipeline reads; `virtual_lab_dir` is the only folder the virtual lab writes. They
    are the same folder by default (the embedded virtual-lab data); a lab points `raw_dir` at its own folder.
    """

    raw_dir: str = "data/virtual_lab"
    virtual_lab_dir: str = "data/virtual_lab"
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
    polymers: tuple[str, ...] = ()  # matmcl.lab.polymers names, one per film in equal shares; (): the reference only


@dataclass(frozen=True)
class DataConfig:
    """How the data stages treat incomplete or bad raw input."""

    on_missing: str = "error"  # a film without frames or curves: "error" or "skip" (logged, counted)
    on_bad_curve: str = "skip"  # an unreadable or never-fracturing curve: "error" or "skip" (logged, counted)


@dataclass(frozen=True)
class Bound:
    """A physical interval [min, max]; either end may be open (`min_exclusive`, `max_exclusive`)."""

    min: float
    max: float
    min_exclusive: bool = False
    max_exclusive: bool = False

    def __post_init__(self) -> None:
        if not self.min < self.max:
            raise ValueError(f"bound {self}: min must be below max")

    def contains(self, values: Any) -> Any:
        """Element-wise: is each value inside the interval (NaN is not)."""
        above = values > self.min if self.min_exclusive else values >= self.min
        below = values < self.max if self.max_exclusive else values <= self.max
        return above & below

    def __str__(self) -> str:
        return f"{'(' if self.min_exclusive else '['}{self.min:g}, {self.max:g}{')' if self.max_exclusive else ']'}"

    @classmethod
    def parse(cls, name: str, value: Any) -> Bound:
        """A Bound from params: `{min:, max:, min_exclusive:, max_exclusive:}` or `[min, max]` (both inclusive)."""
        if isinstance(value, Bound):
            return value
        try:
            if isinstance(value, dict):
                unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
                if unknown:
                    raise ValueError(f"unknown keys {unknown}")
                return cls(float(value["min"]), float(value["max"]), bool(value.get("min_exclusive", False)),
                           bool(value.get("max_exclusive", False)))
            low, high = value
            return cls(float(low), float(high))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"params section 'bounds', {name}: {value!r} is not a bound; write "
                             f"{{min: ..., max: ..., min_exclusive: false, max_exclusive: false}} ({exc})") from exc


@dataclass(frozen=True)
class BoundsConfig:
    """Physically impossible processing conditions: values outside these bounds are errors (raw data, predict).

    One field per condition column (matmcl.schema.CONDITION_COLUMNS). Values merely outside the training range
    (schema.CONDITION_RANGES) are not errors: they are warned about. Documented in docs/validation.md.
    """

    flow_rate_ml_h: Bound = Bound(0.0, 100.0, min_exclusive=True)  # no flow spins no fiber
    concentration_wt_pct: Bound = Bound(0.0, 100.0, min_exclusive=True, max_exclusive=True)
    voltage_kv: Bound = Bound(0.0, 60.0, min_exclusive=True)  # lab electrospinning supplies stop at 30-60 kV
    drum_speed_rpm: Bound = Bound(0.0, 100000.0)  # 0: static collector
    temperature_c: Bound = Bound(-50.0, 150.0)
    humidity_pct: Bound = Bound(0.0, 100.0)  # relative humidity, %

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, Bound.parse(f.name, getattr(self, f.name)))

    def items(self) -> list[tuple[str, Bound]]:
        """(condition column, its bound) in column order."""
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]


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
    """Read params.yaml and apply a profile (argument, else $MATMCL_PROFILE, else the file's `profile`).

    A resolved file (written by `resolve_params`: no `profiles` section) already holds its profile's values; asking
    it for another profile is an error.
    """
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) if path.exists() else {}
    raw = raw or {}
    name = profile or os.environ.get(PROFILE_ENV) or raw.get("profile", "default")
    if RESOLVED_KEY in raw:
        source = raw.pop(RESOLVED_KEY)
        if name != source["profile"]:
            raise ValueError(f"{path} holds the resolved {source['profile']!r} profile, not {name!r}: unset "
                             f"${PROFILE_ENV} or choose the profile in {source['params']}")
        return raw
    profiles = raw.pop("profiles", {}) or {}
    if name not in profiles and name != "default":
        raise ValueError(f"unknown profile {name!r} in {path}; known: {sorted(profiles)}")
    params = deep_merge(raw, profiles.get(name) or {})
    params["profile"] = name
    return params


RESOLVED_KEY = "resolved_from"
RESOLVED_HEADER = ("# Generated by `matmcl resolve-params` from {source} with the {profile!r} profile applied: what\n"
                   "# every DVC stage reads (dvc.yaml). Do not edit: set values in {source}.\n")


def resolve_params(path: str | Path, out: str | Path) -> dict[str, Any]:
    """Write `out`: the sections of params file `path` with its own `profile` applied (not $MATMCL_PROFILE, which
    DVC cannot see: a different value is an error), deterministic, so DVC tracks each stage's resolved values."""
    path, out = Path(path), Path(out)
    raw = yaml.safe_load(path.read_text()) or {}
    file_profile = raw.get("profile", "default")
    env_profile = os.environ.get(PROFILE_ENV)
    if env_profile and env_profile != file_profile:
        raise ValueError(f"${PROFILE_ENV}={env_profile} but {path} selects profile {file_profile!r}: DVC only sees "
                         f"the file, so set `profile: {env_profile}` there (or unset ${PROFILE_ENV})")
    params = load_params(path, file_profile)
    if "workspace" in ((raw.get("profiles") or {}).get(file_profile) or {}):
        raise ValueError(f"profile {file_profile!r} in {path} overrides `workspace`: dvc.yaml's paths come from the "
                         "top-level section; move the paths there and run `matmcl dvc-yaml`")
    text = RESOLVED_HEADER.format(source=path.name, profile=file_profile) + yaml.safe_dump(
        {RESOLVED_KEY: {"params": path.name, "profile": file_profile}, **params}, sort_keys=False, width=120)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
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
    def virtual_lab(self) -> Path:
        return self.root / self.config.virtual_lab_dir

    @property
    def uses_virtual_lab(self) -> bool:
        """Whether the pipeline reads the virtual lab's folder (else a lab's own raw folder, never synthesized)."""
        return self.raw.resolve() == self.virtual_lab.resolve()

    def folder(self, group: str) -> Path:
        """The folder of an artifact group: raw, virtual_lab, processed, models or reports."""
        return getattr(self, group)

    @property
    def processed(self) -> Path:
        return self.root / self.config.processed_dir

    @property
    def models(self) -> Path:
        return self.root / self.config.models_dir

    @property
    def reports(self) -> Path:
        return self.root / self.config.reports_dir
