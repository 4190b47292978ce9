"""How much the pre-training seed matters: pre-train SGPT with several seeds on the workspace's processed data,
score the SGPT-based variants (mean over the head seeds of params `property.seeds`) and the baseline, and write
reports/sgpt_seeds.json (per pre-training seed and mean ± sd across them).

Usage: python benchmarks/bench_sgpt_seeds.py [--seeds 0 1 2] [--profile default]   (after `matmcl run`)
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from matmcl.atomic import write_json
from matmcl.config import Workspace, WorkspaceConfig, load_params, section
from matmcl.schema import PROPERTY_COLUMNS
from matmcl.training.config import PretrainConfig, PropertyConfig
from matmcl.training.evaluate import evaluate_variants
from matmcl.training.pretrain import pretrain
from matmcl.training.properties import PropertyData

VARIANTS = ("matmcl_conditions", "matmcl_fusion", "gbm_conditions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/sgpt_seeds.json")
    args = parser.parse_args()
    params = load_params(args.params, args.profile)
    workspace = Workspace(Path("."), section(params, "workspace", WorkspaceConfig))
    pretrain_config = section(params, "pretrain", PretrainConfig)
    property_config = replace(section(params, "property", PropertyConfig), variants=VARIANTS)
    per_seed: dict[int, dict] = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            pretrain(workspace.processed, replace(pretrain_config, seed=seed), tmp, progress=False)
            data = PropertyData.load(workspace.processed, tmp, property_config)
            scored = evaluate_variants(data, property_config, progress=False)["variants"]
        per_seed[seed] = {v: {p: scored[v][p]["r2_mean"] for p in PROPERTY_COLUMNS} for v in VARIANTS}
        print(seed, per_seed[seed])
    summary = {v: {p: {"r2_mean": float(np.mean([per_seed[s][v][p] for s in args.seeds])),
                       "r2_sd": float(np.std([per_seed[s][v][p] for s in args.seeds], ddof=1))}
                   for p in PROPERTY_COLUMNS} for v in VARIANTS}
    write_json({"profile": args.profile, "pretrain_seeds": args.seeds, "head_seeds": list(property_config.seeds),
                "per_pretrain_seed": {str(s): r for s, r in per_seed.items()}, "across_pretrain_seeds": summary},
               args.out)


if __name__ == "__main__":
    main()
