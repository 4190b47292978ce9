"""The virtual lab's ceilings: extraction bias from simulated specimens, re-simulated test sets."""

import numpy as np
import pandas as pd
import pytest

from matmcl.evaluation.ceilings import (
    CONDITIONS,
    STRUCTURE,
    Measurement,
    expected_fold_metrics,
    measure_specimens,
    simulate_ceilings,
)
from matmcl.evaluation.protocol import direction_metrics
from matmcl.lab.conditions import sample_conditions
from matmcl.lab.mechanics import expected_properties
from matmcl.lab.physics import draw_film_structure
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FILM_ID, PROPERTY_COLUMNS


@pytest.fixture(scope="module")
def films() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table-like rows (film × direction with conditions) and the films' noise-free truth."""
    conditions = sample_conditions(4, seed=3)
    structure = draw_film_structure(conditions[list(CONDITION_COLUMNS)], np.random.default_rng(3))
    structure.insert(0, FILM_ID, conditions[FILM_ID].to_numpy())
    truth = expected_properties(structure)
    rows = truth[[FILM_ID, DIRECTION]].merge(conditions, on=FILM_ID).sample(frac=1.0, random_state=0).reset_index(drop=True)
    return rows, truth


def test_specimen_means_converge_to_the_ideal_except_the_tangent_bias(films):
    _, truth = films
    measured = measure_specimens(truth, 300, np.random.default_rng(0), 0.1)
    ratio = measured / truth[list(PROPERTY_COLUMNS)].to_numpy()
    strength = PROPERTY_COLUMNS.index("fracture_strength_mpa")
    tangent = PROPERTY_COLUMNS.index("tangent_modulus_mpa")
    assert np.all(np.abs(ratio[:, strength] - 1) < 0.02)  # specimen scatter is mean-one: no bias
    assert ratio[:, tangent].mean() > 1.002  # the tangent of scattered curves is above the mean curve's


def test_ceiling_simulation_is_seeded_aligned_and_independent_of_workers(films):
    rows, truth = films
    one = simulate_ceilings(rows, truth, Measurement(3, 0.1), 5, 2, seed=1, workers=1)
    two = simulate_ceilings(rows, truth, Measurement(3, 0.1), 5, 2, seed=1, workers=2)
    for key in ("bias", STRUCTURE, CONDITIONS):
        np.testing.assert_array_equal(one[key], two[key])
    assert one[STRUCTURE].shape == one[CONDITIONS].shape == (2, len(rows), len(PROPERTY_COLUMNS))
    ideal = rows[[FILM_ID, DIRECTION]].merge(truth, on=[FILM_ID, DIRECTION])[list(PROPERTY_COLUMNS)].to_numpy()
    # re-measured films stay near their own ideal (aligned to the shuffled rows); new films scatter much more
    structure_error = np.abs(one[STRUCTURE] / ideal - 1).mean()
    conditions_error = np.abs(one[CONDITIONS] / ideal - 1).mean()
    assert structure_error < 0.06 and conditions_error > structure_error
    assert np.all((one["bias"] > 0.95) & (one["bias"] < 1.05))


def test_expected_fold_metrics_average_the_metrics_over_test_sets():
    rng = np.random.default_rng(0)
    prediction = rng.normal(size=(20, len(PROPERTY_COLUMNS)))
    direction = np.tile([0, 1], 10)
    sets = np.stack([prediction + 0.1 * rng.normal(size=prediction.shape) for _ in range(3)])
    got = expected_fold_metrics(prediction, sets, direction)
    by_hand = [direction_metrics(s, prediction, direction, PROPERTY_COLUMNS) for s in sets]
    for prop in PROPERTY_COLUMNS:
        assert got[prop]["r2_dir"] == pytest.approx(np.mean([m[prop]["r2_dir"] for m in by_hand]))
        assert 0.9 < got[prop]["r2"] < 1.0
