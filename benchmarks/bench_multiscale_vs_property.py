"""Paired comparison of the multiscale model with the evaluate stage's variants on the same CV folds.

The multiscale stage (reports/multiscale.json) and the evaluate stage (reports/property.json) use the same film-level
folds (`cv_folds` with the evaluation section's settings); this script checks that the fold names agree and pairs
their per-fold per-direction R² (mean of longitudinal and transverse) with `matmcl.evaluation.stats.paired`.

    python benchmarks/bench_multiscale_vs_property.py [--reports reports] [--out reports/multiscale_vs_property.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matmcl.atomic import write_json
from matmcl.evaluation.stats import paired
from matmcl.schema import PROPERTY_COLUMNS

MULTISCALE_VARIANTS = ("chosen", "gbm")
PROPERTY_VARIANTS = ("gbm_conditions_features", "gbm_conditions", "matmcl_fusion", "matmcl_conditions")


def compare(multiscale: dict, property_report: dict) -> dict:
    """`<multiscale variant>__vs__<property variant>.<property>` paired deltas of per-direction R² over folds."""
    names = [fold["name"] if isinstance(fold, dict) else fold for fold in multiscale["folds"]]
    if names != [fold["name"] for fold in property_report["folds"]]:
        raise ValueError("the two reports were made on different folds: rerun both stages with the same params")
    out = {}
    for ours in MULTISCALE_VARIANTS:
        for theirs in PROPERTY_VARIANTS:
            folds = property_report["per_fold"][theirs]
            out[f"{ours}__vs__{theirs}"] = {
                prop: paired(multiscale["per_fold"][ours][prop], [fold[prop]["r2_dir"] for fold in folds]
                             ).as_dict("delta_r2")
                for prop in PROPERTY_COLUMNS}
    return {"folds": names, "metric": "per-direction R² (mean of L and T) per fold", "paired": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--out", type=Path, default=Path("reports/multiscale_vs_property.json"))
    args = parser.parse_args()
    result = compare(json.loads((args.reports / "multiscale.json").read_text()),
                     json.loads((args.reports / "property.json").read_text()))
    write_json(result, args.out)
    for name, per_property in result["paired"].items():
        print(name, {p: round(v["delta_r2_mean"], 3) for p, v in per_property.items()})


if __name__ == "__main__":
    main()
