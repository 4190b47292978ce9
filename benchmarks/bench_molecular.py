"""Cost and seed spread of the bead-spring MD descriptors (matmcl.multiscale.molecular) of the registry's polymers.

Per polymer and seed: `molecular_descriptors` with the default MolecularConfig (one process, one BLAS thread), its
wall time and CPU time (the target, 20 s per polymer, is on CPU time: on a shared machine wall time counts the
wait). Reported per polymer: mean, sd and coefficient of variation over the seeds of every descriptor, the mean
seconds, and the ratios to the reference polymer of the mean virial modulus and peak stress next to the ratio of the
LJ energy density ε/σ³ (the scaling law the virtual lab uses for the fiber modulus and strength). Writes
reports/molecular.json (or --out).

    python benchmarks/bench_molecular.py [--polymers PA6 PAN PVDF] [--seeds 0 1 2] [--out reports/molecular.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import pandas as pd

from matmcl.atomic import write_json
from matmcl.lab.physics import cohesion_scale
from matmcl.lab.polymers import POLYMERS, REFERENCE_POLYMER, resolve_polymers
from matmcl.multiscale.molecular import MOLECULAR_KEYS, MolecularConfig, molecular_descriptors

TARGET_SECONDS_PER_POLYMER = 20.0


def summarize(table: pd.DataFrame, names: list[str]) -> dict:
    """Per-polymer mean, sd, CV, seconds and MD ratios vs the lab's cohesion scale, from one row per polymer × seed."""
    grouped = table.groupby("polymer")
    means, sds = grouped[list(MOLECULAR_KEYS)].mean(), grouped[list(MOLECULAR_KEYS)].std(ddof=1)
    reference = means.loc[REFERENCE_POLYMER]
    report = {
        "config": dataclasses.asdict(MolecularConfig()),
        "seeds": sorted(table["seed"].unique().tolist()),
        "target_cpu_seconds_per_polymer": TARGET_SECONDS_PER_POLYMER,
        "polymers": {
            name: {
                "mean": means.loc[name].round(5).to_dict(),
                "sd": sds.loc[name].round(5).to_dict(),
                "cv": (sds.loc[name] / means.loc[name].abs()).round(4).to_dict(),
                "seconds_mean": round(float(grouped["seconds"].mean()[name]), 2),
                "cpu_seconds_mean": round(float(grouped["cpu_seconds"].mean()[name]), 2),
                "modulus_ratio_md": round(float(means.loc[name, "virial_modulus_gpa"]
                                                / reference["virial_modulus_gpa"]), 4),
                "peak_stress_ratio_md": round(float(means.loc[name, "virial_peak_stress_gpa"]
                                                    / reference["virial_peak_stress_gpa"]), 4),
                "lab_cohesion_scale": round(float(scale), 4),
            }
            for name, scale in zip(names, cohesion_scale(pd.Series(names)))
        },
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    report["meets_target"] = bool((grouped["cpu_seconds"].mean() <= TARGET_SECONDS_PER_POLYMER).all())
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polymers", nargs="+", default=sorted(POLYMERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("reports/molecular.json"))
    args = parser.parse_args()
    names = list(dict.fromkeys([REFERENCE_POLYMER, *args.polymers]))
    rows = []
    for polymer in resolve_polymers(names):
        for seed in args.seeds:
            start, cpu = time.perf_counter(), time.process_time()
            values = molecular_descriptors(polymer, dataclasses.replace(MolecularConfig(), seed=seed))
            rows.append({"polymer": polymer.name, "seed": seed, **values, "seconds": time.perf_counter() - start,
                         "cpu_seconds": time.process_time() - cpu})
            print(rows[-1], flush=True)
    report = summarize(pd.DataFrame(rows), names)
    write_json(report, args.out)
    print(report)


if __name__ == "__main__":
    main()
