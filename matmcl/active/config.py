"""Typed parameters of the active-learning benchmark and of `matmcl suggest` (params section `active_learning`)."""

from __future__ import annotations

from dataclasses import dataclass

UNCERTAINTY = "uncertainty"
EXPECTED_IMPROVEMENT = "expected_improvement"
RANDOM = "random"
LATIN_HYPERCUBE = "latin_hypercube"
MODEL_STRATEGIES = (UNCERTAINTY, EXPECTED_IMPROVEMENT)  # strategies that ask the surrogate
STRATEGIES = (*MODEL_STRATEGIES, RANDOM, LATIN_HYPERCUBE)


@dataclass(frozen=True)
class ActiveLearningConfig:
    """Loop sizes, strategies, seeds, the held-out test set, the full-data reference and the surrogate's settings."""

    n_initial: int = 30
    batch_size: int = 10
    budget: int = 150
    strategies: tuple[str, ...] = (UNCERTAINTY, RANDOM, LATIN_HYPERCUBE)
    seeds: tuple[int, ...] = (0, 1, 2)
    n_test: int = 300
    test_seed: int = 1000
    full_data_films: int = 235
    reach_fraction: float = 0.95
    pool_size: int = 1000
    gp_restarts: int = 1
    ei_target: str = "fracture_strength_mpa_longitudinal"
    workers: int = 2

    def __post_init__(self) -> None:
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"active_learning.strategies: unknown {unknown}; known: {list(STRATEGIES)}")
        if self.n_initial < 2 or self.batch_size < 1 or self.budget < self.n_initial:
            raise ValueError("active_learning: need n_initial ≥ 2, batch_size ≥ 1 and budget ≥ n_initial")
        if not 0 < self.reach_fraction <= 1:
            raise ValueError("active_learning.reach_fraction must lie in (0, 1]")

    @property
    def budgets(self) -> tuple[int, ...]:
        """Films spun at each evaluation: n_initial, n_initial + batch_size, ... up to budget."""
        return tuple(range(self.n_initial, self.budget + 1, self.batch_size))
