"""Time of the Great Expectations `table` suite on a paper-sized table (235 films x 2 directions = 470 rows).

Reports the GX import, the first validation (ephemeral context and suite built then) and the median of later
runs (context and suite cached). Writes reports/bench_validation.json.

    python benchmarks/bench_validation.py [--films 235] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from matmcl.atomic import write_json
from matmcl.schema import CONDITION_RANGES, DIRECTION, FILM_ID, PROPERTY_COLUMNS

SEED = 0
PROPERTY_RANGE_MPA = (10.0, 60.0)  # any positive values will do; yield is drawn below fracture strength


def synthetic_table(n_films: int, rng: np.random.Generator) -> pd.DataFrame:
    """A valid film x direction table with random conditions and properties."""
    rows = []
    for i in range(n_films):
        conditions = {column: rng.uniform(low, high) for column, (low, high) in CONDITION_RANGES.items()}
        for direction in (0, 1):
            properties = {column: rng.uniform(*PROPERTY_RANGE_MPA) for column in PROPERTY_COLUMNS}
            properties["yield_strength_mpa"] = 0.5 * properties["fracture_strength_mpa"]
            rows.append({FILM_ID: f"F{i:04d}", **conditions, DIRECTION: direction, **properties, "split": "train"})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", type=int, default=235)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("reports/bench_validation.json"))
    args = parser.parse_args()

    table = synthetic_table(args.films, np.random.default_rng(SEED))
    start = time.perf_counter()
    import great_expectations  # noqa: F401  (timed: the import is most of the first call)

    from matmcl.validation import validate

    import_s = time.perf_counter() - start
    start = time.perf_counter()
    report = validate(table, "table")
    first_s = time.perf_counter() - start
    later = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        validate(table, "table")
        later.append(time.perf_counter() - start)
    result = {
        "rows": len(table),
        "n_expectations": report.n_expectations,
        "success": report.success,
        "gx_import_s": round(import_s, 3),
        "first_validation_s": round(first_s, 3),
        "cached_validation_median_s": round(statistics.median(later), 3),
        "repeats": args.repeats,
    }
    write_json(result, args.out)
    print(result)


if __name__ == "__main__":
    main()
