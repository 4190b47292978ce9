"""The closed loop: spin an initial design, then rounds of `batch_size` films chosen by a strategy, refit the
surrogate and score it on a fixed held-out set of virtual-lab films at every budget.

Strategies (one seed's runs share the initial design and its measured films, so they are compared paired):
- `uncertainty` / `expected_improvement`: the batch the acquisition picks from a fresh pool of `pool_size`
  Latin-hypercube set-points each round (films already made are left out);
- `random`: `batch_size` set-points drawn uniformly over the valid grid each round;
- `latin_hypercube`: at each budget n a fresh Latin-hypercube design of n films over the whole range (the lab's
  `sample_conditions` with the seed's design seed; at n = n_initial it is the shared initial design), spun anew —
  the best non-adaptive design of that size, which no lab could grow round by round.
The full-data reference is the same surrogate trained on `full_data_films` (default 235, the default dataset's size)
films of a Latin-hypercube design, one per seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from matmcl.active.acquisition import select_batch
from matmcl.active.config import LATIN_HYPERCUBE, MODEL_STRATEGIES, RANDOM, STRATEGIES, ActiveLearningConfig
from matmcl.active.lab import derived_seed, drop_made, latin_hypercube_setpoints, random_setpoints, spin
from matmcl.active.surrogate import PropertySurrogate, scale_conditions
from matmcl.lab.conditions import sample_conditions
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, PROPERTY_COLUMNS

FULL_DATA = "full_data"
STREAM_DESIGN, STREAM_SPIN, STREAM_POOL, STREAM_TEST = 31, 32, 33, 34  # beside the lab's and other stages' streams
EDGE = 0.05  # a set-point within 5 % of the range of an end counts as on the edge
DIRECTIONS = ("longitudinal", "transverse")


@dataclass(frozen=True)
class Lab:
    """How the virtual lab measures a film: replicate curves per direction and the logger's strain step."""

    n_replicates: int
    strain_step_pct: float

    def spin(self, conditions: pd.DataFrame, seed: int) -> pd.DataFrame:
        return spin(conditions, self.n_replicates, self.strain_step_pct, seed)


@dataclass(frozen=True)
class Films:
    """Conditions and measured properties (`OUTPUTS`) of a set of films, row-aligned."""

    conditions: pd.DataFrame
    targets: pd.DataFrame

    def __add__(self, other: "Films") -> "Films":
        return Films(pd.concat([self.conditions, other.conditions], ignore_index=True),
                     pd.concat([self.targets, other.targets], ignore_index=True))

    def __len__(self) -> int:
        return len(self.conditions)


def make_films(conditions: pd.DataFrame, lab: Lab, seed: int) -> Films:
    """Spin one film per condition row with lab stream `seed`."""
    conditions = conditions[list(CONDITION_COLUMNS)].reset_index(drop=True)
    return Films(conditions, lab.spin(conditions, seed))


def held_out_films(config: ActiveLearningConfig, lab: Lab) -> Films:
    """The fixed held-out films: `n_test` Latin-hypercube set-points, spun once."""
    conditions = sample_conditions(config.n_test, config.test_seed)
    return make_films(conditions, lab, derived_seed(config.test_seed, STREAM_TEST))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    keep = np.isfinite(y)
    return float(r2_score(y[keep], p[keep])) if keep.sum() > 1 else float("nan")


def score(surrogate: PropertySurrogate, test: Films) -> dict[str, dict[str, float]]:
    """Per property: R² per direction, their mean (`r2`, the headline) and pooled over both directions."""
    predicted = surrogate.predict(test.conditions)
    scores = {}
    for prop in PROPERTY_COLUMNS:
        names = [f"{prop}_{d}" for d in DIRECTIONS]
        per = {d: _r2(test.targets[n].to_numpy(), predicted[n].to_numpy()) for d, n in zip(DIRECTIONS, names)}
        pooled = _r2(test.targets[names].to_numpy().ravel(), predicted[names].to_numpy().ravel())
        scores[prop] = {"r2": float(np.mean(list(per.values()))), "r2_pooled": pooled,
                        **{f"r2_{d}": v for d, v in per.items()}}
    return scores


def _fit(films: Films, config: ActiveLearningConfig, seed: int) -> PropertySurrogate:
    return PropertySurrogate(CONDITION_RANGES, config.gp_restarts, seed).fit(films.conditions, films.targets)


def edge_fraction(conditions: pd.DataFrame) -> float:
    """Share of set-points (films × conditions) within `EDGE` of either end of their range."""
    unit = scale_conditions(conditions, CONDITION_RANGES)
    return float(((unit <= EDGE) | (unit >= 1 - EDGE)).mean())


def run_strategy(strategy: str, seed: int, config: ActiveLearningConfig, lab: Lab, test: Films) -> dict:
    """One strategy's loop for one seed: {strategy, seed, films: [n...], scores: [score() per budget],
    edge_fraction of its final design}."""
    code = STRATEGIES.index(strategy) if strategy in STRATEGIES else len(STRATEGIES)
    design_seed = derived_seed(seed, STREAM_DESIGN)
    if strategy == FULL_DATA:
        films = make_films(sample_conditions(config.full_data_films, derived_seed(seed, STREAM_DESIGN, 1)), lab,
                           derived_seed(seed, STREAM_SPIN, code))
        return {"strategy": strategy, "seed": seed, "films": [len(films)],
                "scores": [score(_fit(films, config, seed), test)], "edge_fraction": edge_fraction(films.conditions)}
    films = make_films(sample_conditions(config.n_initial, design_seed), lab, derived_seed(seed, STREAM_SPIN))
    scores = []
    for n in config.budgets:
        if strategy == LATIN_HYPERCUBE and n > config.n_initial:
            films = make_films(sample_conditions(n, design_seed), lab, derived_seed(seed, STREAM_SPIN, code, n))
        surrogate = _fit(films, config, seed)
        scores.append(score(surrogate, test))
        if n == config.budgets[-1] or strategy == LATIN_HYPERCUBE:
            continue
        pool_seed = derived_seed(seed, STREAM_POOL, code, n)
        if strategy == RANDOM:
            chosen = random_setpoints(config.batch_size, CONDITION_RANGES, pool_seed)
        elif strategy in MODEL_STRATEGIES:
            pool = drop_made(latin_hypercube_setpoints(config.pool_size, CONDITION_RANGES, pool_seed),
                             [films.conditions])
            chosen = select_batch(surrogate, pool, config.batch_size, strategy, config.ei_target)
        else:
            raise ValueError(f"active learning: unknown strategy {strategy!r}")
        films = films + make_films(chosen, lab, derived_seed(seed, STREAM_SPIN, code, n))
    return {"strategy": strategy, "seed": seed, "films": list(config.budgets), "scores": scores,
            "edge_fraction": edge_fraction(films.conditions)}
