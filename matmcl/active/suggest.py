"""The next conditions for a real lab (`matmcl suggest`): fit the surrogate on the workspace's processed table and
pick a batch with the benchmark's acquisition.

Candidates are a Latin hypercube of `pool_size` set-points inside the training range of each condition (the
surrogate does not extrapolate), rounded to the rig's set-point steps, never a condition set already made.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from matmcl.active.acquisition import SCORE, select_batch
from matmcl.active.config import MODEL_STRATEGIES, ActiveLearningConfig
from matmcl.active.lab import drop_made, latin_hypercube_setpoints
from matmcl.active.surrogate import OUTPUTS, PropertySurrogate, wide_properties
from matmcl.artifacts import TABLE_FILE
from matmcl.schema import CONDITION_COLUMNS, FILM_ID

MIN_FILMS = 3


def read_films(processed_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(conditions, `OUTPUTS` targets) per film from data/processed/table.parquet; a clear error when missing."""
    path = Path(processed_dir) / TABLE_FILE
    if not path.is_file():
        raise ValueError(f"no processed table {path}: run `matmcl run --data-only` (or the data stages up to "
                         f"`matmcl tables`) first")
    table = pd.read_parquet(path)
    conditions = table.groupby(FILM_ID, sort=False)[list(CONDITION_COLUMNS)].first()
    targets = wide_properties(table, FILM_ID).loc[conditions.index]
    measured = targets.notna().any(axis=1)
    if measured.sum() < MIN_FILMS:
        raise ValueError(f"{path}: {measured.sum()} films with measured properties; suggest needs at least "
                         f"{MIN_FILMS}")
    return conditions.reset_index(drop=True), targets.reset_index(drop=True)


def suggest(conditions: pd.DataFrame, targets: pd.DataFrame, n: int, strategy: str, seed: int,
            config: ActiveLearningConfig) -> pd.DataFrame:
    """`n` proposed films in pick order: six conditions, `<output>` and `<output>_sd` (property units) for the ten
    outputs, and `acquisition_score`."""
    if strategy not in MODEL_STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(MODEL_STRATEGIES)}, got {strategy!r}")
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    bounds = {c: (float(conditions[c].min()), float(conditions[c].max())) for c in CONDITION_COLUMNS}
    pool = drop_made(latin_hypercube_setpoints(config.pool_size, bounds, seed), [conditions])
    if len(pool) < n:
        raise ValueError(f"only {len(pool)} new set-points inside the training range; ask for fewer than {n}")
    with threadpool_limits(1):  # matrices of a few hundred films: one BLAS thread is faster than several
        surrogate = PropertySurrogate(bounds, config.gp_restarts, seed).fit(conditions, targets)
        chosen = select_batch(surrogate, pool, n, strategy, config.ei_target).reset_index(drop=True)
        predicted = surrogate.predict(chosen)
    columns = [c for name in OUTPUTS for c in (name, f"{name}_sd")]
    return pd.concat([chosen[list(CONDITION_COLUMNS)], predicted[columns], chosen[[SCORE]]], axis=1)
