"""The virtual lab's ceilings, simulated the way the lab measures: specimens, logged curves, extraction, replicate
means.

A ceiling is the best prediction any model could make from some information (the conditions; the film's latent
structure), scored like a model on the measured test values. Two refinements over scoring the noise-free ideal once:
- the extraction bias: what a perfect model can expect to *measure* is not the noise-free ideal; the tangent
  modulus of scattered specimens is on average ≈ 1 % above the tangent of the mean curve. `simulate_ceilings`
  measures the mean ratio extracted / ideal per property over many simulated specimens of every film (one factor per
  property: the per-film ratios scatter by specimen noise, not by any film trait, so a per-film mean of affordable
  size would only add noise), and the ceilings predict ideal × factor;
- re-simulated test sets: the same films re-measured with new specimens (structure ceiling), or new films spun at
  the same conditions and measured (conditions ceiling), so that a ceiling's R² is reported as its expected value
  over test sets, not one draw of specimen noise.
The draws are plain loops over curves (1–2 ms each); `simulate_ceilings` spreads them over forked workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matmcl.evaluation.protocol import direction_metrics
from matmcl.lab.mechanics import expected_properties
from matmcl.lab.physics import draw_film_structure
from matmcl.lab.tensile_curves import LoggerConfig, draw_specimen, log_curve
from matmcl.parallel import map_forked
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FILM_ID, PROPERTY_COLUMNS
from matmcl.tensile import STRAIN_COLUMN, STRESS_COLUMN, CurveError, extract_properties

STREAM_SPECIMEN_TRUTH, STREAM_RESIMULATION = 7, 8  # random streams (distinct from the virtual lab's own)
STRUCTURE, CONDITIONS = "structure", "conditions"


@dataclass(frozen=True)
class Measurement:
    """How the lab measured a film: `n_replicates` specimens per direction, logged at `strain_step_pct`."""

    n_replicates: int = 3
    strain_step_pct: float = 0.1


def measure_specimens(expected: pd.DataFrame, n_specimens: int, rng: np.random.Generator,
                      strain_step_pct: float) -> np.ndarray:
    """(rows, 5): per row of `expected` (five properties and `knee_sharpness`), the mean over `n_specimens` drawn
    specimens of the properties extracted from their logged curves; curves the extraction rejects are skipped, as
    the tensile stage skips them (NaN when all are)."""
    logger = LoggerConfig(strain_step_pct=strain_step_pct)
    out = np.full((len(expected), len(PROPERTY_COLUMNS)), np.nan)
    for i, row in enumerate(expected.to_dict("records")):
        values = []
        for _ in range(n_specimens):
            curve = log_curve(draw_specimen(row, rng, knee_sharpness=row["knee_sharpness"]), rng, logger)
            try:
                extracted = extract_properties(curve[STRAIN_COLUMN].to_numpy(), curve[STRESS_COLUMN].to_numpy())
            except CurveError:
                continue
            values.append([extracted[name] for name in PROPERTY_COLUMNS])
        if values:
            out[i] = np.mean(values, axis=0)
    return out


def _align(rows: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s rows (keyed by film and direction) in the order of `rows`."""
    keys = [FILM_ID, DIRECTION]
    return rows[keys].merge(frame, on=keys, how="left", validate="1:1")


def _fresh_films(films: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Expected properties per film × direction of new films spun at each film's conditions."""
    fresh = draw_film_structure(films[list(CONDITION_COLUMNS)].reset_index(drop=True), rng)
    fresh.insert(0, FILM_ID, films[FILM_ID].to_numpy())
    return expected_properties(fresh)


def _job(job: tuple[str, int], rows: pd.DataFrame, truth: pd.DataFrame, measurement: Measurement,
         n_bias_specimens: int, seed: int) -> np.ndarray:
    """One simulation: the per-property extraction bias (kind "bias": mean of extracted / ideal over
    `n_bias_specimens` specimens of every row), or re-simulated test set `k` of a ceiling, aligned to `rows`."""
    kind, k = job
    expected = _align(rows, truth)
    if kind == "bias":
        rng = np.random.default_rng([seed, STREAM_SPECIMEN_TRUTH])
        measured = measure_specimens(expected, n_bias_specimens, rng, measurement.strain_step_pct)
        return np.nanmean(measured / expected[list(PROPERTY_COLUMNS)].to_numpy(dtype=float), axis=0)
    rng = np.random.default_rng([seed, STREAM_RESIMULATION, int(kind == CONDITIONS), k])
    if kind == CONDITIONS:
        expected = _align(rows, _fresh_films(rows.drop_duplicates(FILM_ID), rng))
    return measure_specimens(expected, measurement.n_replicates, rng, measurement.strain_step_pct)


def simulate_ceilings(rows: pd.DataFrame, truth: pd.DataFrame, measurement: Measurement, n_bias_specimens: int,
                      n_resimulations: int, seed: int, workers: int = 1) -> dict[str, np.ndarray]:
    """For the table `rows` (film, direction, conditions) and the films' noise-free `truth`: `bias` (5,), the mean
    ratio extracted / ideal per property over `n_bias_specimens` specimens per row, and `n_resimulations`
    re-simulated measurements (k, rows, 5) for the structure ceiling (same films, new specimens) and the conditions
    ceiling (new films at the same conditions), each a mean over the lab's replicates."""
    jobs = [("bias", 0)] + [(kind, k) for kind in (STRUCTURE, CONDITIONS) for k in range(n_resimulations)]
    results = list(map_forked(_job, jobs, (rows, truth, measurement, n_bias_specimens, seed), workers))
    out = {"bias": results[0]}
    for kind in (STRUCTURE, CONDITIONS):
        out[kind] = np.stack([r for (name, _), r in zip(jobs, results, strict=True) if name == kind])
    return out


def expected_fold_metrics(prediction: np.ndarray, resimulated: np.ndarray, direction: np.ndarray
                          ) -> dict[str, dict[str, float]]:
    """Per property, the mean over re-simulated test sets (k, rows, 5) of `direction_metrics` of `prediction`."""
    per_set = [direction_metrics(measured, prediction, direction, PROPERTY_COLUMNS) for measured in resimulated]
    return {prop: {metric: float(np.nanmean([m[prop][metric] for m in per_set])) for metric in per_set[0][prop]}
            for prop in PROPERTY_COLUMNS}


def read_measurement(manifest: Mapping) -> Measurement:
    """The replicates and logger step the virtual lab used (its manifest's `config`)."""
    config = manifest.get("config", {})
    return Measurement(int(config.get("n_replicates", Measurement.n_replicates)),
                       float(config.get("strain_step_pct", Measurement.strain_step_pct)))
