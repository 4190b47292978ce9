"""The active-learning benchmark as one call: the held-out films, every strategy × seed loop and the full-data
reference on forked workers (matmcl.parallel.map_forked), the report and its plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matmcl.active.config import LATIN_HYPERCUBE, ActiveLearningConfig
from matmcl.active.loop import FULL_DATA, Films, Lab, held_out_films, run_strategy
from matmcl.active.plots import plot_learning_curves
from matmcl.active.summary import curves, films_to_reach, full_data, paired_comparisons
from matmcl.parallel import map_forked


def _job(job: tuple[str, int], config: ActiveLearningConfig, lab: Lab, test: Films) -> dict:
    return run_strategy(job[0], job[1], config, lab, test)


def run_benchmark(config: ActiveLearningConfig, lab: Lab, plots_dir: Path, progress: bool = False
                  ) -> tuple[dict[str, Any], dict[str, Path]]:
    """(report, plots) of the benchmark: `strategies.<s>.curve`, `films_to_reach`, `full_data_r2`, `paired`."""
    test = held_out_films(config, lab)
    jobs = [(strategy, seed) for seed in config.seeds for strategy in (FULL_DATA, *config.strategies)]
    jobs.sort(key=lambda job: job[0] != LATIN_HYPERCUBE)  # the longest runs first keep both workers busy
    runs = list(map_forked(_job, jobs, (config, lab, test), config.workers, "active learning", progress))
    learning = curves(runs)
    reference = full_data(runs)
    report = {
        "setup": {"n_initial": config.n_initial, "batch_size": config.batch_size, "budget": config.budget,
                  "seeds": list(config.seeds), "test_films": config.n_test, "pool_size": config.pool_size,
                  "replicates_per_direction": lab.n_replicates, "reach_fraction": config.reach_fraction,
                  "headline_metric": "r2 = mean of the longitudinal and transverse R² on the held-out films"},
        "strategies": {strategy: {"curve": curve} for strategy, curve in learning.items()},
        "full_data_r2": reference,
        "films_to_reach": films_to_reach(runs, reference, config.reach_fraction),
        "paired": paired_comparisons(runs),
    }
    plots = {"learning_curves": plot_learning_curves(learning, reference, config.reach_fraction,
                                                     plots_dir / "learning_curves.png")}
    return report, plots
