"""Virtual-screening throughput: conditions per second of the conditions-only predictor on CPU.

Loads the trained models (models/sgpt, models/property/matmcl_conditions) and the processed folder, draws
`--n` random condition sets uniformly inside the training range and times `Predictor.predict` (both directions,
input checks and range flags included). Each timing is the fastest of `--repeats` rounds (the CPUs are shared).
Writes reports/screening.json.

    python benchmarks/bench_screening.py [--workspace .] [--params FILE] [--n 10000] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from matmcl.atomic import write_json
from matmcl.config import Workspace, WorkspaceConfig, load_params, section
from matmcl.predict import Predictor
from matmcl.schema import CONDITION_COLUMNS

SEED = 0


def random_conditions(predictor: Predictor, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` condition sets drawn uniformly inside the training range."""
    low, high = predictor.train_min.to_numpy(), predictor.train_max.to_numpy()
    return pd.DataFrame(low + rng.random((n, len(low))) * (high - low), columns=list(CONDITION_COLUMNS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("."), help="workspace holding models/ and data/")
    parser.add_argument("--params", type=Path, help="parameter file (default: <workspace>/params.yaml)")
    parser.add_argument("--n", type=int, default=10_000, help="condition sets per call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls; the fastest is reported")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("reports/screening.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    params = load_params(args.params or args.workspace / "params.yaml")
    workspace = Workspace(args.workspace, section(params, "workspace", WorkspaceConfig))
    predictor = Predictor.load(workspace.models, workspace.processed)
    conditions = random_conditions(predictor, args.n, np.random.default_rng(SEED))
    best = np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        predictor.predict(conditions)
        best = min(best, time.perf_counter() - start)
    result = {
        "conditions_per_second": args.n / best,
        "n_conditions": args.n,
        "seconds": best,
        "threads": args.threads,
        "device": "cpu",
        "profile": params["profile"],
    }
    print(f"{result['conditions_per_second']:.0f} conditions/s ({args.n} in {best:.3f} s, {args.threads} threads)")
    write_json(result, args.out)


if __name__ == "__main__":
    main()
