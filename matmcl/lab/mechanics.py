"""Tensile side of the virtual lab: expected properties per direction, specimen curves, and the conditions-only
oracle (re-simulating a condition many times)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from matmcl.atomic import write_csv
from matmcl.lab.physics import PHYSICS, LabPhysics, composite_mechanics, draw_film_structure, mat_mechanics
from matmcl.lab.tensile_curves import LoggerConfig, build_curve, draw_specimen, log_curve, make_feasible
from matmcl.schema import COMPOSITE_ID, DIRECTION, FILM_ID, LONGITUDINAL, PROPERTY_COLUMNS, TRANSVERSE

# Tensile direction → angle from the drum (image x) axis in degrees.
DIRECTION_ANGLE_DEG = {LONGITUDINAL: 0.0, TRANSVERSE: 90.0}


def _ideal_properties(targets: pd.DataFrame) -> pd.DataFrame:
    """The five properties (tangent modulus from the curve geometry) of noise-free curves with these targets."""
    rows = []
    for row in targets.itertuples(index=False):
        feasible = make_feasible(row._asdict())
        rows.append(build_curve(**feasible, knee_sharpness=row.knee_sharpness).properties())
    return pd.DataFrame(rows, columns=list(PROPERTY_COLUMNS), index=targets.index)


def _by_direction(ids: pd.Series, id_column: str, mechanics) -> pd.DataFrame:
    """Stack `mechanics(angle)` for both directions into id × direction rows with ideal properties and knee."""
    parts = []
    for flag, angle in DIRECTION_ANGLE_DEG.items():
        targets = mechanics(angle).reset_index(drop=True)
        ideal = _ideal_properties(targets)
        parts.append(pd.DataFrame({id_column: ids.to_numpy(), DIRECTION: flag})
                     .join(ideal).assign(knee_sharpness=targets["knee_sharpness"]))
    return pd.concat(parts, ignore_index=True).sort_values([id_column, DIRECTION], kind="stable", ignore_index=True)


def expected_properties(films: pd.DataFrame, phys: LabPhysics = PHYSICS) -> pd.DataFrame:
    """Noise-free expected properties of each film (must hold `film_id` and the latent structure) per direction."""
    return _by_direction(films[FILM_ID], FILM_ID, lambda angle: mat_mechanics(films, angle, phys))


def composite_expected_properties(films: pd.DataFrame, composite_ids: pd.Series, rng: np.random.Generator,
                                  phys: LabPhysics = PHYSICS) -> pd.DataFrame:
    """Noise-free expected properties of the composites made from `films` (same order as `composite_ids`)."""
    frame = _by_direction(composite_ids, COMPOSITE_ID, lambda angle: composite_mechanics(films, angle, rng, phys))
    return frame.merge(pd.DataFrame({COMPOSITE_ID: composite_ids.to_numpy(), FILM_ID: films[FILM_ID].to_numpy()}),
                       on=COMPOSITE_ID).loc[:, [COMPOSITE_ID, FILM_ID, DIRECTION, *PROPERTY_COLUMNS, "knee_sharpness"]]


def write_specimen_curves(expected: Mapping[str, float], paths: Sequence[Path], rng: np.random.Generator,
                          strain_step_pct: float) -> list[dict[str, float]]:
    """Cut one specimen per path from a film with `expected` properties, log its curve to CSV, return true properties."""
    logger = LoggerConfig(strain_step_pct=strain_step_pct)
    truths = []
    for path in paths:
        specimen = draw_specimen(expected, rng, knee_sharpness=expected["knee_sharpness"])
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_csv(log_curve(specimen, rng, logger).round(5), path)
        truths.append(specimen.properties())
    return truths


def resimulate_properties(conditions: pd.DataFrame, n_draws: int, seed: int, phys: LabPhysics = PHYSICS) -> pd.DataFrame:
    """Mean expected properties over `n_draws` fresh films per condition row: the best any conditions-only model can do.

    Returns one row per input row × direction (`row`, `direction`, five properties), averaging the film-level
    variation away; specimen scatter is mean-one and needs no simulation.
    """
    repeated = conditions.loc[conditions.index.repeat(n_draws)].reset_index(drop=True)
    films = draw_film_structure(repeated, np.random.default_rng([seed, 99]), phys)
    films.insert(0, FILM_ID, np.repeat(np.arange(len(conditions)), n_draws))
    props = expected_properties(films, phys)
    return (props.groupby([FILM_ID, DIRECTION])[list(PROPERTY_COLUMNS)].mean().reset_index()
            .rename(columns={FILM_ID: "row"}))

