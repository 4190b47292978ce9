"""Inverse design: bounds and fixed conditions, input errors, recovery of a known optimum, baselines, lab
measurement and the CLI's parsing (tiny models and frames; seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from matmcl.design.baselines import GBMProxy, lookup, random_search
from matmcl.design.config import DesignConfig
from matmcl.design.lab import LabProtocol, measure_structures
from matmcl.design.optimize import (
    ConditionSpace,
    check_property_target,
    check_structure_target,
    condition_name,
    optimize,
    property_objective,
)
from matmcl.design.pipeline import _score, design_properties, design_structures
from matmcl.design.proxy import STRUCTURE_COLUMNS, fit_proxy, load_proxy, save_proxy
from matmcl.design_cli import parse_fixed, parse_property
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES
from matmcl.training.data import ConditionScaler

RANGES = np.array([CONDITION_RANGES[c] for c in CONDITION_COLUMNS])
SCALER = ConditionScaler(RANGES.mean(axis=1), (RANGES[:, 1] - RANGES[:, 0]) / 4)
FAST = DesignConfig(starts=8, steps=120)


def known_structure(u: np.ndarray) -> np.ndarray:
    """A smooth, monotone condition → structure map: order from drum speed, diameter from concentration, pore size
    from flow rate (the other three conditions do nothing)."""
    return np.column_stack([1 / (1 + np.exp(-1.2 * u[:, 3])), 200 * np.exp(0.35 * u[:, 1]),
                            0.3 * np.exp(0.3 * u[:, 0])])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models: one thread is faster than two contending ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def proxy(one_torch_thread):
    torch.manual_seed(0)
    u = np.random.default_rng(0).uniform(-2, 2, size=(300, 6))
    return fit_proxy(u, known_structure(u), (32, 32), 3, 400, 0.02, 0.0, seed=0)


def test_proxy_learns_the_known_map_and_round_trips(proxy, tmp_path):
    u = np.random.default_rng(1).uniform(-1.5, 1.5, size=(50, 6))
    mean, spread = proxy.predict(u)
    assert np.median(np.abs(mean / known_structure(u) - 1)) < 0.03
    assert spread.shape == (50, 3) and (spread >= 0).all()
    again = load_proxy(save_proxy(proxy, tmp_path / "proxy"))
    np.testing.assert_allclose(again.predict(u)[0], mean, rtol=1e-6)


def test_optimiser_recovers_the_known_optimum(proxy):
    truth = np.array([0.6, 22.0, 15.0, 2000.0, 28.0, 50.0])
    target = known_structure(SCALER.inputs(pd.DataFrame([truth], columns=list(CONDITION_COLUMNS)).assign(direction=0))
                             [:, :6].astype(float))[0]
    free = {"flow_rate_ml_h", "concentration_wt_pct", "drum_speed_rpm"}
    fixed = {c: v for c, v in zip(CONDITION_COLUMNS, truth) if c not in free}
    [(design, spread)] = design_structures(proxy, SCALER, [dict(zip(STRUCTURE_COLUMNS, target))], FAST, fixed)
    designed = np.array(list(design.conditions.values()))
    np.testing.assert_allclose(designed, truth, rtol=0.05)
    np.testing.assert_allclose(design.prediction, target, rtol=0.03)
    assert design.trajectory.shape == (FAST.steps + 1, 6) and design.predicted_trajectory.shape == (FAST.steps + 1, 3)
    assert design.loss < abs(design.predicted_trajectory[0] / target - 1).mean() ** 2  # it improved on the start


def test_designs_stay_in_the_valid_ranges_and_keep_fixed_values_exactly(proxy):
    # unreachable targets push the optimiser to the range edges
    targets = [{"orientation_order": 0.999, "diameter_nm": 5000.0, "pore_size_um": 30.0},
               {"orientation_order": 0.001, "diameter_nm": 1.0, "pore_size_um": 0.001}]
    fixed = [{"temperature_c": 25.0, "humidity_pct": 45.0}, {"temperature_c": 19.3, "humidity_pct": 61.0}]
    designs = design_structures(proxy, SCALER, targets, FAST, fixed)
    for (design, _), fix in zip(designs, fixed):
        path = pd.DataFrame(design.trajectory, columns=list(CONDITION_COLUMNS))
        for column in CONDITION_COLUMNS:
            low, high = CONDITION_RANGES[column]
            assert path[column].between(low - 1e-4 * (high - low), high + 1e-4 * (high - low)).all(), column
        for column, value in fix.items():
            assert design.conditions[column] == value and (path[column] == value).all()
    high, low = designs[0][0].conditions, designs[1][0].conditions
    assert high["drum_speed_rpm"] == pytest.approx(3000, rel=1e-4) and low["drum_speed_rpm"] == pytest.approx(0, abs=1)
    assert high["concentration_wt_pct"] == pytest.approx(28, rel=1e-4)


def test_property_design_through_a_differentiable_model():
    def predict(u):  # strength rises with concentration and voltage (standardized)
        strength = 30 * torch.exp(0.2 * u[..., 1] + 0.1 * u[..., 2])
        return torch.stack([strength, strength / 2, 10 * strength, 5 * strength, 40 + 0 * strength], dim=-1)

    fixed = {"temperature_c": 25.0, "humidity_pct": 45.0}
    [design] = design_properties(predict, SCALER, [{"fracture_strength_mpa": 36.0}], FAST, fixed)
    assert design.prediction[0] == pytest.approx(36.0, rel=1e-3)
    assert design.conditions["temperature_c"] == 25.0 and design.conditions["humidity_pct"] == 45.0
    objective = property_objective(predict, ["fracture_strength_mpa"], np.array([[36.0], [20.0]]))
    loss, prediction = objective(torch.zeros(2, 3, 6))
    assert loss.shape == (2, 3) and prediction.shape == (2, 3, 1)
    np.testing.assert_allclose(loss[:, 0].numpy(), [(30 / 36 - 1) ** 2, (30 / 20 - 1) ** 2], rtol=1e-5)


@pytest.mark.parametrize("target, message", [
    ({"orientation_order": 1.2, "diameter_nm": 150.0, "pore_size_um": 0.4}, "orientation order must lie in"),
    ({"orientation_order": 0.5, "diameter_nm": -150.0, "pore_size_um": 0.4}, "diameter_nm must be positive"),
    ({"orientation_order": 0.5, "diameter_nm": 150.0, "pore_size_um": 0.0}, "pore_size_um must be positive"),
    ({"orientation_order": 0.5, "diameter_nm": 150.0}, "lacks"),
    ({"orientation_order": 0.5, "diameter_nm": np.nan, "pore_size_um": 0.4}, "non-finite"),
])
def test_infeasible_structure_targets_are_refused(target, message):
    with pytest.raises(ValueError, match=message):
        check_structure_target(target)


def test_bad_conditions_and_property_targets_are_refused(proxy):
    with pytest.raises(ValueError, match="unknown condition 'pressure'"):
        condition_name("pressure")
    assert condition_name("temperature") == "temperature_c" and condition_name("drum_speed") == "drum_speed_rpm"
    with pytest.raises(ValueError, match=r"fixed humidity_pct = 90 is outside the valid range \[25, 65\]"):
        ConditionSpace(SCALER, {"humidity_pct": 90.0})
    with pytest.raises(ValueError, match="cannot fix unknown condition"):
        ConditionSpace(SCALER, {"humidity": 45.0})
    with pytest.raises(ValueError, match="all six conditions are fixed"):
        ConditionSpace(SCALER, dict(zip(CONDITION_COLUMNS, RANGES.mean(axis=1))))
    with pytest.raises(ValueError, match="expected 6 conditions"):
        proxy.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="unknown property 'strength'"):
        check_property_target({"strength": 30.0})
    with pytest.raises(ValueError, match="must be a positive number"):
        check_property_target({"fracture_strength_mpa": -3.0})
    with pytest.raises(ValueError, match="2 sets of fixed conditions for 1 targets"):
        design_structures(proxy, SCALER, [{"orientation_order": 0.5, "diameter_nm": 150.0, "pore_size_um": 0.2}],
                          FAST, [{}, {}])


def test_cli_parsing():
    assert parse_fixed("temperature=25, humidity_pct=45") == {"temperature_c": 25.0, "humidity_pct": 45.0}
    assert parse_property("fracture_strength_mpa=40,direction=T") == ({"fracture_strength_mpa": 40.0}, "transverse")
    assert parse_property("elastic_modulus_mpa=500")[1] == "longitudinal"
    for text, message in (("temperature", "expected NAME=VALUE"), ("temperature=warm", "needs a number"),
                          ("temperature=25,temperature_c=26", "given twice"), ("pressure=3", "unknown condition")):
        with pytest.raises(ValueError, match=message):
            parse_fixed(text)
    with pytest.raises(ValueError, match="direction must be L or T"):
        parse_property("fracture_strength_mpa=40,direction=X")


def test_optimiser_is_deterministic_and_converges():
    space = ConditionSpace(SCALER, {})
    goal = torch.tensor([0.3, -0.2, 0.1, 0.0, 0.5, -0.4])

    def objective(u):
        return ((u - goal) ** 2).sum(dim=-1), u

    [joint] = optimize(objective, [space], starts=4, steps=120, lr=0.1, seed=3)
    [again] = optimize(objective, [space], starts=4, steps=120, lr=0.1, seed=3)
    np.testing.assert_array_equal(joint.trajectory, again.trajectory)  # same seed, same design
    np.testing.assert_allclose(space.scaled(joint.trajectory[-1]), goal.numpy(), atol=0.05)


def test_baselines():
    rng = np.random.default_rng(0)
    u = rng.uniform(-2, 2, size=(200, 6))
    conditions, features = SCALER.mean + u * SCALER.scale, known_structure(u)
    np.testing.assert_array_equal(lookup(features[17], features, conditions), conditions[17])
    gbm = GBMProxy(u, features, seed=0)
    target = known_structure(np.zeros((1, 6)))[0]
    space = ConditionSpace(SCALER, {"humidity_pct": 30.0})
    best = random_search(gbm, space, target, 2000, seed=0)
    assert best[5] == 30.0
    assert np.abs(known_structure(space.scaled(best[None]))[0] / target - 1).max() < 0.1


def test_score_counts_a_success_only_when_every_feature_is_within_tolerance():
    target = np.array([[0.5, 100.0, 0.2], [0.5, 100.0, 0.2], [0.5, 100.0, 0.2]])
    achieved = np.array([[0.54, 95.0, 0.21], [0.56, 100.0, 0.2], [np.nan, 100.0, 0.2]])
    score = _score(achieved, target, 0.1, STRUCTURE_COLUMNS)
    assert score["success_rate"] == pytest.approx(1 / 3)
    assert score["within_tolerance_by_feature"]["orientation_order"] == pytest.approx(1 / 3)


def test_lab_measures_designs_reproducibly():
    conditions = pd.DataFrame([[0.5, 22.0, 18.0, 2500.0, 25.0, 45.0], [0.5, 22.0, 18.0, 0.0, 25.0, 45.0]],
                              columns=list(CONDITION_COLUMNS))
    protocol = LabProtocol(192, 160, 16, 20.0, frames=1, film_effects=False, seed=0)
    first = measure_structures(conditions, protocol, stream=0)
    np.testing.assert_array_equal(first, measure_structures(conditions, protocol, stream=0))
    assert first.shape == (2, 3) and np.isfinite(first).all()
    assert first[0, 0] > first[1, 0] + 0.3  # a fast drum aligns the fibers
    assert not np.array_equal(first, measure_structures(conditions, protocol, stream=1))
