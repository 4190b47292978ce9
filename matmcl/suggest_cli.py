"""`matmcl suggest`: the next films a lab should spin, chosen by the active-learning surrogate's uncertainty from
the workspace's processed data (docs/active_learning.md; the model code is imported only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from matmcl.schema import CONDITION_COLUMNS, DIRECTION_NAMES, PROPERTY_COLUMNS

STRATEGY_CHOICES = ("uncertainty", "expected_improvement")
SHORT_DIRECTION = {name: name[0].upper() for name in DIRECTION_NAMES.values()}


def add_suggest_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `matmcl suggest`: batch size, acquisition strategy, seed, output CSV."""
    parser.add_argument("--n", type=int, help="films to propose (default: params active_learning.batch_size)")
    parser.add_argument("--strategy", choices=STRATEGY_CHOICES, default="uncertainty",
                        help="uncertainty: largest model variance over the five properties and two directions; "
                             "expected_improvement: toward a higher params active_learning.ei_target")
    parser.add_argument("--seed", type=int, default=0, help="seed of the candidate pool and the model fit")
    parser.add_argument("--out", help="also write the proposals (numeric columns) to this CSV")


def _tables(proposals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For the terminal: (rank, conditions and score; rank and each property as 'mean ± sd' per direction, named by
    the first word of the property and L/T)."""
    ranks = range(1, len(proposals) + 1)
    conditions = proposals[list(CONDITION_COLUMNS)].assign(score=proposals["acquisition_score"].round(3))
    conditions.insert(0, "rank", ranks)
    predicted = pd.DataFrame({"rank": ranks})
    for prop in PROPERTY_COLUMNS:
        for direction, short in SHORT_DIRECTION.items():
            name = f"{prop}_{direction}"
            predicted[f"{prop.split('_')[0]}_{short}"] = [f"{m:.3g} ± {s:.2g}" for m, s in
                                                         zip(proposals[name], proposals[f"{name}_sd"])]
    return conditions, predicted


def cmd_suggest(args: argparse.Namespace) -> int:
    """Propose the next conditions to spin: fit the surrogate on data/processed/table.parquet and pick `--n` new
    set-points inside the training range with the largest acquisition score; print conditions, predicted
    properties ± model sd (L: longitudinal, T: transverse) and the score."""
    from matmcl.active.config import ActiveLearningConfig
    from matmcl.active.suggest import read_films, suggest
    from matmcl.atomic import write_csv
    from matmcl.config import Workspace, WorkspaceConfig, load_params, section

    params = load_params(args.params, args.profile)
    workspace = Workspace(Path(args.workspace), section(params, "workspace", WorkspaceConfig))
    config = section(params, "active_learning", ActiveLearningConfig)
    conditions, targets = read_films(workspace.processed)
    proposals = suggest(conditions, targets, args.n or config.batch_size, args.strategy, args.seed, config)
    chosen, predicted = _tables(proposals)
    print(f"{len(proposals)} proposed films from {len(conditions)} made ({args.strategy})")
    print(chosen.to_string(index=False))
    print("\npredicted mean ± model sd (MPa; elongation %; L longitudinal, T transverse)")
    print(predicted.to_string(index=False))
    if args.out:
        print(f"\nwritten: {write_csv(proposals, args.out)}")
    return 0
