"""Speed of the virtual tensile tester and of property extraction on 1500-point curves.

Times `draw_specimen` (targets + knee solve + true tangent modulus), `log_curve` (noisy logged curve) and
`extract_properties` on a PA6-mat-like film with 150 % elongation (1500 logged points at 0.1 % strain). Each
timing is the fastest of `--repeats` rounds (the CPUs are shared). Writes reports/bench_tensile.json.

    python benchmarks/bench_tensile.py [--rounds 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from matmcl.atomic import write_json
from matmcl.lab.tensile_curves import draw_specimen, log_curve
from matmcl.tensile import STRAIN_COLUMN, STRESS_COLUMN, extract_properties

EXPECTED = {
    "elastic_modulus_mpa": 150.0,
    "yield_strength_mpa": 5.0,
    "fracture_strength_mpa": 12.0,
    "elongation_at_break_pct": 150.0,
}
SEED = 0


def fastest_us(call: Callable[[], object], rounds: int, repeats: int) -> float:
    """Fastest mean time of one call over `repeats` rounds of `rounds` calls, in microseconds."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            call()
        best = min(best, (time.perf_counter() - start) / rounds)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="calls per timing round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per timing; the fastest is reported")
    parser.add_argument("--out", type=Path, default=Path("reports/bench_tensile.json"))
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    specimen = draw_specimen(EXPECTED, rng)
    curve = log_curve(specimen, rng)
    strain, stress = curve[STRAIN_COLUMN].to_numpy(), curve[STRESS_COLUMN].to_numpy()
    result = {
        "n_points": len(curve),
        "draw_specimen_us": fastest_us(lambda: draw_specimen(EXPECTED, rng), args.rounds, args.repeats),
        "log_curve_us": fastest_us(lambda: log_curve(specimen, rng), args.rounds, args.repeats),
        "extract_properties_us": fastest_us(lambda: extract_properties(strain, stress), args.rounds, args.repeats),
    }
    for key, value in result.items():
        print(f"{key}: {value:.0f}")
    write_json(result, args.out)


if __name__ == "__main__":
    main()
