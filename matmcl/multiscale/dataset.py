"""The multiscale model's inputs: one row per film × tensile direction, descriptors grouped by scale.

Scale groups (`SCALES`; docs/multiscale.md):
- `process`: the six conditions, the direction flag and three dimensionless / log-ratio process numbers:
  ln(c / c_e) (concentration over the entanglement concentration, c_e = 15 wt %: diameter ∝ (c/c_e)^2.6–3.1 and
  beads below it; reference/electrospinning-physics.md), ln(Q / V) (flow over voltage: the jet's volume per
  charge, which sets the diameter) and T / 298.15 K.
- `structure`: the measured film features (features.parquet): orientation order, ln diameter, ln pore size,
  porosity and the order signed to the test direction (+S along the drum, −S across: the affine share of fibers
  along the load is (3 + 4S)/8 along and (3 − 4S)/8 across).
- `network`: film means of the fiber-network descriptors (network_descriptors.parquet) seen from the sample's
  direction: stiffness along and across the test direction, ln anisotropy along/across, coordination over Maxwell's
  isostatic 2d = 4, coverage φ, stiffness along over the rule-of-mixtures (Voigt) bound E·φ, load-bearing fraction
  and strain-energy concentration along the test direction.
- `molecular`: the bead-spring MD descriptors of the film's polymer (molecular_descriptors.parquet) and the cohesive
  energy over k_B T at the spinning temperature (thermodynamic). Constant on single-polymer data apart from that
  ratio's temperature, which the process group already holds.

`FeatureScaler` z-scores every descriptor on its own (unit-wise: each carries its own unit) with the training rows'
mean and sd (sklearn StandardScaler, NaN-aware; a constant column gets scale 1, so it becomes 0) and fills missing
values with 0 (the training mean). `LogTargetScaler` (matmcl.target_scaling) z-scores the log of the five properties (all positive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from matmcl.artifacts import FEATURES_FILE, MOLECULAR_DESCRIPTORS_FILE, NETWORK_DESCRIPTORS_FILE, TABLE_FILE
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FILM_ID, LONGITUDINAL, PROPERTY_COLUMNS

SCALES: tuple[str, ...] = ("process", "structure", "network", "molecular")
ENTANGLEMENT_WT_PCT = 15.0  # c_e of the reference polymer (nylon in formic acid, electrospinning-physics.md)
REFERENCE_TEMPERATURE_K = 298.15
CELSIUS_TO_K = 273.15
BOLTZMANN_EV_PER_K = 8.617333262e-5
ISOSTATIC_COORDINATION = 4.0  # Maxwell's 2d for a 2-D network
STIFFNESS_FLOOR = 1e-3  # added to both stiffnesses in the anisotropy log-ratio (a frame without a path reads 0)
MD_PREFIX = "md_"  # molecular descriptor columns (the network has a coordination number too)
COHESIVE_KEY = MD_PREFIX + "cohesive_energy_ev_per_bead"


def _process(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows[list(CONDITION_COLUMNS)].astype(float).copy()
    out[DIRECTION] = rows[DIRECTION].astype(float)
    out["log_concentration_over_entanglement"] = np.log(rows["concentration_wt_pct"] / ENTANGLEMENT_WT_PCT)
    out["log_flow_over_voltage_ml_h_per_kv"] = np.log(rows["flow_rate_ml_h"] / rows["voltage_kv"])
    out["temperature_over_reference"] = (rows["temperature_c"] + CELSIUS_TO_K) / REFERENCE_TEMPERATURE_K
    return out


def _structure(rows: pd.DataFrame, along: np.ndarray) -> pd.DataFrame:
    order = rows["orientation_order"].astype(float)
    return pd.DataFrame({
        "orientation_order": order, "log_diameter_nm": np.log(rows["diameter_nm"]),
        "log_pore_size_um": np.log(rows["pore_size_um"]), "porosity": rows["porosity"].astype(float),
        "orientation_order_along_test": np.where(along, order, -order)}, index=rows.index)


def film_network_means(frames: pd.DataFrame) -> pd.DataFrame:
    """Film means of the frame descriptors (frames without a network skipped)."""
    keys = ["stiffness_L_rel", "stiffness_T_rel", "coordination_number", "coverage", "load_bearing_fraction_L",
            "load_bearing_fraction_T", "energy_concentration_L", "energy_concentration_T"]
    return frames.groupby(FILM_ID)[keys].mean().reset_index()


def _network(rows: pd.DataFrame, along: np.ndarray) -> pd.DataFrame:
    def pick(pattern: str, same: bool = True) -> np.ndarray:
        """The descriptor `pattern` (with {} for L/T) along the test direction (across it: same=False)."""
        first, second = ("L", "T") if same else ("T", "L")
        return np.where(along, rows[pattern.format(first)], rows[pattern.format(second)]).astype(float)

    stiff_along, stiff_across = pick("stiffness_{}_rel"), pick("stiffness_{}_rel", same=False)
    coverage = rows["coverage"].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        over_voigt = np.where(coverage > 0, stiff_along / coverage, np.nan)
    return pd.DataFrame({
        "stiffness_along_rel": stiff_along, "stiffness_across_rel": stiff_across,
        "log_anisotropy_along": np.log((stiff_along + STIFFNESS_FLOOR) / (stiff_across + STIFFNESS_FLOOR)),
        "coordination_over_isostatic": rows["coordination_number"] / ISOSTATIC_COORDINATION,
        "coverage": coverage, "stiffness_along_over_voigt": over_voigt,
        "load_bearing_fraction_along": pick("load_bearing_fraction_{}"),
        "energy_concentration_along": pick("energy_concentration_{}")}, index=rows.index)


def _molecular(rows: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    out = rows[list(keys)].astype(float).copy()
    kelvin = rows["temperature_c"].astype(float) + CELSIUS_TO_K
    out["cohesive_energy_over_kT"] = rows[COHESIVE_KEY].abs() / (BOLTZMANN_EV_PER_K * kelvin)
    return out


@dataclass(frozen=True)
class MultiscaleData:
    """Rows (film_id, direction), the descriptor columns of each scale (`groups`) and the targets `y` (original
    units, NaN where not measured)."""

    rows: pd.DataFrame
    groups: dict[str, pd.DataFrame]
    y: np.ndarray

    @classmethod
    def build(cls, table: pd.DataFrame, features: pd.DataFrame, network_frames: pd.DataFrame,
              molecular: pd.DataFrame) -> MultiscaleData:
        """Join the processed tables on film_id (every film of `table` must have all three descriptor sets)."""
        keys = [MD_PREFIX + c for c in molecular.columns if c not in (FILM_ID, "polymer")]
        molecular = molecular.rename(columns=lambda c: c if c in (FILM_ID, "polymer") else MD_PREFIX + c)
        rows = (table.merge(features, on=FILM_ID, how="left").merge(film_network_means(network_frames), on=FILM_ID,
                                                                     how="left")
                .merge(molecular[[FILM_ID, *keys]], on=FILM_ID, how="left"))
        for name, columns in (("features", ["orientation_order"]), ("network descriptors", ["coverage"]),
                              ("molecular descriptors", keys[:1])):
            missing = rows.loc[rows[columns].isna().all(axis=1), FILM_ID].unique().tolist()
            if missing:
                raise ValueError(f"films {missing[:5]} ({len(missing)}) have no {name}: rerun their stage")
        along = rows[DIRECTION].to_numpy() == LONGITUDINAL
        groups = {"process": _process(rows), "structure": _structure(rows, along), "network": _network(rows, along),
                  "molecular": _molecular(rows, keys)}
        return cls(rows[[FILM_ID, DIRECTION]].reset_index(drop=True),
                   {k: g.reset_index(drop=True) for k, g in groups.items()},
                   rows[list(PROPERTY_COLUMNS)].to_numpy(dtype=float))

    @classmethod
    def load(cls, processed_dir: str | Path) -> MultiscaleData:
        """From a workspace's processed folder (table, features, network and molecular descriptors)."""
        d = Path(processed_dir)
        return cls.build(pd.read_parquet(d / TABLE_FILE), pd.read_parquet(d / FEATURES_FILE),
                         pd.read_parquet(d / NETWORK_DESCRIPTORS_FILE), pd.read_parquet(d / MOLECULAR_DESCRIPTORS_FILE))

    @property
    def columns(self) -> dict[str, list[str]]:
        """The descriptor names of every scale."""
        return {scale: list(group.columns) for scale, group in self.groups.items()}

    def films(self) -> np.ndarray:
        return self.rows[FILM_ID].to_numpy()

    def direction(self) -> np.ndarray:
        return self.rows[DIRECTION].to_numpy()

    def index_of(self, films: Sequence[str]) -> np.ndarray:
        """Row indices of the films `films` (both directions)."""
        return np.flatnonzero(self.rows[FILM_ID].isin(set(films)).to_numpy())

    def concatenated(self, scales: Sequence[str] = SCALES) -> np.ndarray:
        """All descriptors of `scales` side by side (raw values: the gradient-boosting baseline's input)."""
        return np.column_stack([self.groups[s].to_numpy(dtype=float) for s in scales])


@dataclass(frozen=True)
class FeatureScaler:
    """Unit-wise z-scoring per scale, fitted on training rows only; missing values become 0 (the training mean)."""

    mean: dict[str, np.ndarray]
    scale: dict[str, np.ndarray]

    @classmethod
    def fit(cls, data: MultiscaleData, train: np.ndarray) -> FeatureScaler:
        fitted = {s: StandardScaler().fit(g.to_numpy(dtype=float)[train]) for s, g in data.groups.items()}
        return cls({s: np.nan_to_num(f.mean_) for s, f in fitted.items()}, {s: f.scale_ for s, f in fitted.items()})

    def transform(self, data: MultiscaleData, index: np.ndarray) -> dict[str, np.ndarray]:
        """{scale: (len(index), n_descriptors) float32} z-scores."""
        return {s: np.nan_to_num((data.groups[s].to_numpy(dtype=float)[index] - self.mean[s]) / self.scale[s]
                                 ).astype(np.float32) for s in self.mean}

    def as_dict(self) -> dict[str, dict[str, list[float]]]:
        return {s: {"mean": self.mean[s].tolist(), "scale": self.scale[s].tolist()} for s in self.mean}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Mapping[str, Sequence[float]]]) -> FeatureScaler:
        return cls({s: np.asarray(v["mean"]) for s, v in doc.items()},
                   {s: np.asarray(v["scale"]) for s, v in doc.items()})
