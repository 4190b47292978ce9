"""Sampling processing conditions for the virtual lab: a seeded Latin hypercube over the plausible ranges, and
optionally a polymer per film."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import qmc

from matmcl.lab.polymers import POLYMER_COLUMN, resolve_polymers
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, FILM_ID

POLYMER_STREAM = 5  # random stream of the polymer assignment (the Latin hypercube does not depend on it)

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


def sample_conditions(n: int, seed: int, polymers: Sequence[str] = ()) -> pd.DataFrame:
    """Draw `n` condition sets (Latin hypercube, rounded to set-point resolution) with film ids.

    With `polymers` (names of matmcl.lab.polymers.POLYMERS) a `polymer` column assigns them in equal shares (counts
    differ by at most one), in a seeded random order independent of the six numeric conditions.
    """
    unit = qmc.LatinHypercube(d=len(CONDITION_COLUMNS), seed=seed).random(n)
    columns = {}
    for j, name in enumerate(CONDITION_COLUMNS):
        low, high = CONDITION_RANGES[name]
        step = SETPOINT_STEP[name]
        values = np.round((low + unit[:, j] * (high - low)) / step) * step
        columns[name] = np.clip(values, low, high).round(6)
    frame = pd.DataFrame({FILM_ID: film_ids(n), **columns})
    if polymers:
        names = np.array([polymer.name for polymer in resolve_polymers(polymers)])
        order = np.random.default_rng([seed, POLYMER_STREAM]).permutation(np.arange(n) % len(names))
        frame[POLYMER_COLUMN] = names[order]
    return frame
