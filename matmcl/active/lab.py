"""Spinning and measuring films in the virtual lab for the active-learning loop, and valid set-points to choose from.

`spin` makes one film per condition row with the film-level random effects and measures both directions from
`n_replicates` written and read-back specimen curves per direction: matmcl.composites.screening.`fabricate` (the
tensile stage's extraction), keeping the nanofiber films. Set-points lie on the rig's grid
(matmcl.lab.conditions.SETPOINT_STEP) inside the bounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import qmc

from matmcl.active.surrogate import Bounds, wide_properties
from matmcl.composites.screening import fabricate
from matmcl.lab.conditions import SETPOINT_STEP
from matmcl.schema import CONDITION_COLUMNS


def derived_seed(*keys: int) -> int:
    """One 32-bit seed from a tuple of integers (independent streams for seed × strategy × round)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def spin(conditions: pd.DataFrame, n_replicates: int, strain_step_pct: float, seed: int) -> pd.DataFrame:
    """Measured properties (`OUTPUTS` columns, property units) of one new film per condition row, same index (NaN
    where no curve of a direction could be read)."""
    measured = fabricate(conditions, 1, n_replicates, strain_step_pct, seed, composites=False)
    films = measured[measured["material"] == "nanofiber"]
    return wide_properties(films, "row").reindex(range(len(conditions))).set_axis(conditions.index)


def setpoint_grid(bounds: Bounds) -> dict[str, np.ndarray]:
    """Per condition, the rig's set-points inside [low, high]."""
    grid = {}
    for name in CONDITION_COLUMNS:
        low, high = bounds[name]
        step = SETPOINT_STEP[name]
        first, last = int(np.ceil(low / step - 1e-9)), int(np.floor(high / step + 1e-9))
        grid[name] = (np.arange(first, max(first, last) + 1) * step).round(6)
    return grid


def _snap(unit: np.ndarray, bounds: Bounds) -> pd.DataFrame:
    """[0, 1]^6 points → nearest set-points of the grid inside `bounds`."""
    columns = {}
    for j, (name, values) in enumerate(setpoint_grid(bounds).items()):
        low, high = values[0], values[-1]
        columns[name] = values[np.clip(np.round((low + unit[:, j] * (high - low) - low) / SETPOINT_STEP[name]),
                                       0, len(values) - 1).astype(int)]
    return pd.DataFrame(columns)


def latin_hypercube_setpoints(n: int, bounds: Bounds, seed: int) -> pd.DataFrame:
    """`n` conditions from a Latin hypercube over `bounds`, rounded to set-points."""
    return _snap(qmc.LatinHypercube(d=len(CONDITION_COLUMNS), seed=seed).random(n), bounds)


def random_setpoints(n: int, bounds: Bounds, seed: int) -> pd.DataFrame:
    """`n` conditions drawn uniformly over the valid set-points of `bounds`."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: rng.choice(values, n) for name, values in setpoint_grid(bounds).items()})


def drop_made(candidates: pd.DataFrame, made: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Candidates without duplicates and without any condition set already made (compared at set-point precision)."""
    def keys(frame: pd.DataFrame) -> pd.Index:
        return pd.MultiIndex.from_frame(frame[list(CONDITION_COLUMNS)].round(6))

    taken = keys(pd.concat(made, ignore_index=True)) if made else pd.MultiIndex.from_tuples([])
    own = keys(candidates)
    keep = ~own.duplicated() & ~own.isin(taken)
    return candidates[keep].reset_index(drop=True)
