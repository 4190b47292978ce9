"""Column names shared by every stage (units in the names), and the direction convention."""

from __future__ import annotations

FILM_ID = "film_id"
COMPOSITE_ID = "composite_id"

CONDITION_COLUMNS: tuple[str, ...] = (
    "flow_rate_ml_h",
    "concentration_wt_pct",
    "voltage_kv",
    "drum_speed_rpm",
    "temperature_c",
    "humidity_pct",
)

# Plausible ranges of the conditions (electrospinning-physics.md, section 1); used to sample the virtual lab and
# to warn about predictions outside the training range.
CONDITION_RANGES: dict[str, tuple[float, float]] = {
    "flow_rate_ml_h": (0.1, 1.0),
    "concentration_wt_pct": (12.0, 28.0),
    "voltage_kv": (12.0, 25.0),
    "drum_speed_rpm": (0.0, 3000.0),
    "temperature_c": (18.0, 32.0),
    "humidity_pct": (25.0, 65.0),
}

DIRECTION = "direction"
LONGITUDINAL = 1  # along the drum winding direction (image x axis)
TRANSVERSE = 0
DIRECTION_NAMES: dict[int, str] = {LONGITUDINAL: "longitudinal", TRANSVERSE: "transverse"}
DIRECTION_FLAGS: dict[str, int] = {name: flag for flag, name in DIRECTION_NAMES.items()}

PROPERTY_COLUMNS: tuple[str, ...] = (
    "fracture_strength_mpa",
    "yield_strength_mpa",
    "elastic_modulus_mpa",
    "tangent_modulus_mpa",
    "elongation_at_break_pct",
)

FEATURE_COLUMNS: tuple[str, ...] = (
    "orientation_order",
    "mean_angle_deg",
    "diameter_nm",
    "pore_size_um",
    "porosity",
)

SPLIT = "split"
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")

# Processed files every consumer reads (the full layout: docs/processed-format.md).
TABLE_FILE = "table.parquet"
PATCHES_FILE = "patches.parquet"
SCALER_FILE = "scaler.json"
