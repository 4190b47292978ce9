"""Active learning: the surrogate's uncertainty, the acquisition and its batches, the closed loop, the report's
summaries and `matmcl suggest`."""

import argparse

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from matmcl.active.acquisition import SCORE, expected_improvement, select_batch
from matmcl.active.config import ActiveLearningConfig
from matmcl.active.lab import drop_made, latin_hypercube_setpoints, random_setpoints, setpoint_grid
from matmcl.active.loop import Lab, held_out_films, run_strategy
from matmcl.active.summary import MEAN, curves, films_to_reach, full_data, paired_comparisons
from matmcl.active.surrogate import OUTPUTS, PropertySurrogate, scale_conditions
from matmcl.artifacts import TABLE_FILE
from matmcl.lab.conditions import SETPOINT_STEP
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, DIRECTION, FILM_ID, PROPERTY_COLUMNS
from matmcl.suggest_cli import add_suggest_arguments, cmd_suggest

MIDDLE = {c: (low + high) / 2 for c, (low, high) in CONDITION_RANGES.items()}


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):
        yield


def _conditions(unit_xy: np.ndarray) -> pd.DataFrame:
    """Films varying flow rate and concentration (unit coordinates) with the other four conditions mid-range."""
    frame = pd.DataFrame({c: np.full(len(unit_xy), MIDDLE[c]) for c in CONDITION_COLUMNS})
    for j, name in enumerate(CONDITION_COLUMNS[:2]):
        low, high = CONDITION_RANGES[name]
        frame[name] = low + unit_xy[:, j] * (high - low)
    return frame


def _targets(conditions: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Smooth positive toy responses with 2 % multiplicative noise, one per output."""
    unit = scale_conditions(conditions, CONDITION_RANGES)
    return pd.DataFrame({name: np.exp(1 + np.sin(2 * unit[:, 0] + k) + unit[:, 1] + 0.02 * rng.normal(size=len(unit)))
                         for k, name in enumerate(OUTPUTS)})


@pytest.fixture(scope="module")
def corner_model():
    """A surrogate trained on 12 films in the low-flow, low-concentration quarter of the range."""
    with threadpool_limits(1):
        rng = np.random.default_rng(0)
        conditions = _conditions(rng.uniform(0, 0.5, (12, 2)))
        return PropertySurrogate(CONDITION_RANGES, 0, 0).fit(conditions, _targets(conditions, rng)), conditions


def test_surrogate_is_accurate_and_its_sd_shrinks_near_training_films(corner_model):
    model, train = corner_model
    near = _conditions(np.array([[0.25, 0.25]]))
    far = _conditions(np.array([[0.95, 0.95]]))
    p_near, p_far, p_train = model.predict(near), model.predict(far), model.predict(train)
    for name in OUTPUTS:
        assert p_near[f"{name}_sd"].iloc[0] < 0.3 * p_far[f"{name}_sd"].iloc[0]
    truth = _targets(train, np.random.default_rng(0))
    assert np.allclose(p_train[list(OUTPUTS)], truth, rtol=0.08)  # fits its own films to about the noise


def test_uncertainty_picks_the_candidate_far_from_the_data(corner_model):
    model, _ = corner_model
    candidates = _conditions(np.array([[0.2, 0.2], [0.3, 0.1], [0.9, 0.9], [0.4, 0.3]]))
    batch = select_batch(model, candidates, 1, "uncertainty")
    assert batch.index[0] == 2
    scores = select_batch(model, candidates, 4, "uncertainty")[SCORE].to_numpy()
    assert np.all(np.diff(scores) <= 1e-12)  # each pick is scored after conditioning on the earlier ones


def test_batch_is_diverse(corner_model):
    model, _ = corner_model
    grid = np.array([[x, y] for x in np.linspace(0, 1, 21) for y in np.linspace(0, 1, 21)])
    batch = select_batch(model, _conditions(grid), 8, "uncertainty")
    assert batch.index.is_unique
    unit = scale_conditions(batch, CONDITION_RANGES)[:, :2]
    gaps = np.linalg.norm(unit[:, None] - unit[None], axis=-1)[np.triu_indices(len(unit), 1)]
    assert gaps.min() >= 0.15  # the top-8 marginal variances all sit in the far corner, within 0.15 of each other


def test_expected_improvement_formula_and_picks():
    assert expected_improvement(np.array([0.0]), np.array([1.0]), 0.0)[0] == pytest.approx(1 / np.sqrt(2 * np.pi))
    assert expected_improvement(np.array([2.0]), np.array([1e-9]), 0.5)[0] == pytest.approx(1.5)
    rng = np.random.default_rng(1)
    conditions = _conditions(rng.uniform(0, 1, (15, 2)))
    model = PropertySurrogate(CONDITION_RANGES, 0, 0).fit(conditions, _targets(conditions, rng))
    candidates = _conditions(np.array([[0.0, 0.0], [0.5, 1.0]]))  # toy response grows with both coordinates
    assert select_batch(model, candidates, 1, "expected_improvement", OUTPUTS[0]).index[0] == 1


def test_setpoints_lie_on_the_grid_inside_the_bounds_and_made_films_are_dropped():
    bounds = {c: (low + 0.013 * (high - low), high - 0.27 * (high - low))
              for c, (low, high) in CONDITION_RANGES.items()}
    for sample in (latin_hypercube_setpoints(200, bounds, 0), random_setpoints(200, bounds, 0)):
        for c in CONDITION_COLUMNS:
            assert sample[c].between(*bounds[c]).all()
            steps = sample[c] / SETPOINT_STEP[c]
            assert np.allclose(steps, np.round(steps), atol=1e-6)
        assert sample[list(CONDITION_COLUMNS)].nunique().min() > 5
    assert all(len(v) >= 2 for v in setpoint_grid(bounds).values())
    pool = latin_hypercube_setpoints(50, CONDITION_RANGES, 1)
    kept = drop_made(pd.concat([pool, pool.iloc[:3]]), [pool.iloc[:10]])
    assert len(kept) == 40 and not kept.duplicated().any()


TINY = ActiveLearningConfig(n_initial=6, batch_size=3, budget=12, seeds=(0,), n_test=12, pool_size=60,
                            gp_restarts=0, full_data_films=12, workers=1)
LAB = Lab(n_replicates=2, strain_step_pct=0.1)


@pytest.fixture(scope="module")
def tiny_test():
    with threadpool_limits(1):
        return held_out_films(TINY, LAB)


def test_loop_on_a_tiny_budget_runs_and_is_deterministic(tiny_test):
    first = run_strategy("uncertainty", 0, TINY, LAB, tiny_test)
    again = run_strategy("uncertainty", 0, TINY, LAB, tiny_test)
    assert first == again
    assert first["films"] == [6, 9, 12] and len(first["scores"]) == 3
    assert set(first["scores"][0]) == set(PROPERTY_COLUMNS)
    for scores in first["scores"]:
        for values in scores.values():
            assert values["r2"] == pytest.approx((values["r2_longitudinal"] + values["r2_transverse"]) / 2)
    lhs = run_strategy("latin_hypercube", 0, TINY, LAB, tiny_test)
    assert lhs["scores"][0] == first["scores"][0]  # the shared initial design, spun once
    assert lhs["scores"][1] != first["scores"][1]
    other_seed = run_strategy("uncertainty", 1, TINY, LAB, tiny_test)
    assert other_seed["scores"][0] != first["scores"][0]


def _run(strategy: str, seed: int, values: list[float]) -> dict:
    return {"strategy": strategy, "seed": seed, "films": [30, 40, 50][:len(values)], "edge_fraction": 0.1,
            "scores": [{p: {m: v for m in ("r2", "r2_pooled", "r2_longitudinal", "r2_transverse")}
                        for p in PROPERTY_COLUMNS} for v in values]}


def test_summaries_count_films_to_reach_and_pair_over_seeds():
    runs = [_run("full_data", 0, [0.80]), _run("full_data", 1, [0.60]),
            _run("uncertainty", 0, [0.5, 0.67, 0.70]), _run("uncertainty", 1, [0.4, 0.5, 0.6]),
            _run("random", 0, [0.5, 0.6, 0.68]), _run("random", 1, [0.4, 0.45, 0.55])]
    reference = full_data(runs)
    assert reference[MEAN]["r2_mean"] == pytest.approx(0.70)
    reach = films_to_reach(runs, reference, 0.95)  # threshold 0.665
    assert reach["uncertainty"][MEAN]["per_seed"] == [40, None]
    assert reach["uncertainty"][MEAN]["reached"] == "1/2" and reach["uncertainty"][MEAN]["mean"] == 40
    assert reach["random"][MEAN]["per_seed"] == [50, None]
    pair = paired_comparisons(runs)["uncertainty_vs_random"][MEAN]
    assert [b["delta_mean"] for b in pair["per_budget"]] == pytest.approx([0.0, 0.06, 0.035])
    assert pair["per_budget"][1]["seeds_won"] == 2 and pair["per_budget"][1]["n_seeds"] == 2
    assert pair["mean_over_budgets"]["delta_mean"] == pytest.approx(0.095 / 3)
    curve = curves(runs)["random"]
    assert curve[MEAN]["r2"]["mean"] == pytest.approx([0.45, 0.525, 0.615])
    assert "full_data" not in curves(runs)
    hopeless = [_run("full_data", 0, [-0.2]), _run("random", 0, [0.1])]
    assert films_to_reach(hopeless, full_data(hopeless), 0.95)["random"][MEAN]["threshold_r2"] is None


def _suggest_args(tmp_path, n: int, out=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_suggest_arguments(parser)
    args = parser.parse_args(["--n", str(n)] + (["--out", str(out)] if out else []))
    args.params, args.profile, args.workspace = str(tmp_path / "params.yaml"), None, str(tmp_path)
    return args


def test_suggest_prints_n_new_films_inside_the_training_range(tmp_path, capsys):
    rng = np.random.default_rng(3)
    conditions = latin_hypercube_setpoints(14, {c: (low, (low + high) / 2) for c, (low, high) in
                                                CONDITION_RANGES.items()}, 3)
    targets = _targets(conditions, rng)
    rows = []
    for i, (film, wide) in enumerate(zip(conditions.itertuples(index=False), targets.itertuples(index=False))):
        for flag, direction in ((1, "longitudinal"), (0, "transverse")):
            rows.append({FILM_ID: f"F{i:04d}", **film._asdict(), DIRECTION: flag,
                         **{p: getattr(wide, f"{p}_{direction}") for p in PROPERTY_COLUMNS}, "split": "train"})
    processed = tmp_path / "data" / "processed"
    with pytest.raises(ValueError, match="matmcl run --data-only"):
        cmd_suggest(_suggest_args(tmp_path, 4))
    processed.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(processed / TABLE_FILE)
    out = tmp_path / "next.csv"
    assert cmd_suggest(_suggest_args(tmp_path, 4, out)) == 0
    printed = capsys.readouterr().out
    assert "4 proposed films from 14 made" in printed
    table = pd.read_csv(out)
    assert len(table) == 4 and (table[SCORE] > 0).all()
    for c in CONDITION_COLUMNS:
        assert table[c].between(conditions[c].min(), conditions[c].max()).all()
    made = set(map(tuple, conditions.round(6).to_numpy()))
    assert not made & set(map(tuple, table[list(CONDITION_COLUMNS)].round(6).to_numpy()))
    assert (table[[f"{o}_sd" for o in OUTPUTS]] > 0).all().all()
    lines = printed.splitlines()
    assert lines[1].split()[:2] == ["rank", CONDITION_COLUMNS[0]]
    assert [line.split()[0] for line in lines[2:6]] == ["1", "2", "3", "4"]
    assert lines[8].split() == ["rank"] + [f"{p.split('_')[0]}_{d}" for p in PROPERTY_COLUMNS for d in "LT"]
    assert [line.split()[0] for line in lines[9:13]] == ["1", "2", "3", "4"] and lines[9].count("±") == 10
    assert lines[-1].startswith("written:")
