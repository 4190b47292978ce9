"""Sampling processing conditions for the virtual lab: a seeded Latin hypercube over the plausible ranges."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import qmc

from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, FILM_ID

# Set-point resolution of a real electrospinning rig, per condition.
SETPOINT_STEP: dict[str, float] = {
    "flow_rate_ml_h": 0.05,
    "concentration_wt_pct": 0.5,
    "voltage_kv": 0.5,
    "drum_speed_rpm": 50.0,
    "temperature_c": 0.1,
    "humidity_pct": 1.0,
}


def film_ids(n: int, prefix: str = "F") -> list[str]:
    """Film ids F0001, F0002, ..."""
    return [f"{prefix}{i + 1:04d}" for i in range(n)]


def sample_conditions(n: int, seed: int) -> pd.DataFrame:
    """Draw `n` condition sets (Latin hypercube, rounded to set-point resolution) with film ids."""
    unit = qmc.LatinHypercube(d=len(CONDITION_COLUMNS), seed=seed).random(n)
    columns = {}
    for j, name in enumerate(CONDITION_COLUMNS):
        low, high = CONDITION_RANGES[name]
        step = SETPOINT_STEP[name]
        values = np.round((low + unit[:, j] * (high - low)) / step) * step
        columns[name] = np.clip(values, low, high).round(6)
    return pd.DataFrame({FILM_ID: film_ids(n), **columns})
