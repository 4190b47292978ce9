"""Great Expectations suites for the pipeline's tables, run on DataFrames in one cached ephemeral context.

`validate(df, "table")` returns a `ValidationReport` whose failures name the column and show example values and
DataFrame index labels; `report.raise_for_failures()` raises `ValidationError` listing them all. Conditions are
checked against the same physical bounds (`matmcl.config.BoundsConfig`) that `matmcl.rawdata` enforces when it reads
conditions.csv, so a table built from raw data the reader accepted never fails on a condition value. GX is imported
and its context built on first use only (importing GX takes seconds); suites are built once per process.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from matmcl.config import Bound, BoundsConfig
from matmcl.rawdata import ID_PATTERN, PATH, PIXEL_SIZE_NM
from matmcl.schema import (
    CONDITION_COLUMNS,
    CONDITION_RANGES,
    DIRECTION,
    DIRECTION_NAMES,
    FILM_ID,
    PROPERTY_COLUMNS,
    SPLIT,
    SPLIT_NAMES,
)

if TYPE_CHECKING:
    from great_expectations.core.validation_definition import ValidationDefinition

logger = logging.getLogger(__name__)

FRACTURE_STRENGTH = "fracture_strength_mpa"
YIELD_STRENGTH = "yield_strength_mpa"

RANGE_MARGIN = 0.5  # condition_bounds: this fraction of the schema range width beyond either end
PHYSICAL_LIMITS: dict[str, tuple[float, float]] = {"humidity_pct": (0.0, 100.0)}  # others: >= 0
NUMERIC_TYPES: list[str] = ["int32", "int64", "float32", "float64", "Int64Dtype", "Float64Dtype"]
MAX_EXAMPLES = 5
ID_REGEX = f"^{ID_PATTERN.pattern}$"
NOT_NULL_TYPE = "expect_column_values_to_not_be_null"

SUITE_COLUMNS: dict[str, tuple[str, ...]] = {
    "conditions": (FILM_ID, *CONDITION_COLUMNS),
    "properties": (FILM_ID, DIRECTION, *PROPERTY_COLUMNS),
    "table": (FILM_ID, *CONDITION_COLUMNS, DIRECTION, *PROPERTY_COLUMNS, SPLIT),
    "patches": (FILM_ID, PATH, PIXEL_SIZE_NM),
}
SUITES: tuple[str, ...] = tuple(SUITE_COLUMNS)


class ValidationError(ValueError):
    """A table failed its expectation suite; the message lists every failure."""


@dataclass
class ValidationReport:
    """Outcome of one suite on one DataFrame."""

    suite: str
    success: bool
    n_expectations: int
    failures: list[str] = field(default_factory=list)

    def raise_for_failures(self) -> None:
        """Raise ValidationError listing every failure (no-op on success)."""
        if not self.success:
            listed = "\n".join(f"  - {failure}" for failure in self.failures)
            raise ValidationError(f"validation suite {self.suite!r} failed {len(self.failures)} check(s):\n{listed}")


def condition_bounds(column: str) -> tuple[float, float]:
    """A condition's schema range widened by RANGE_MARGIN, clipped to physical limits.

    Not a validity check (the suites use the physical `BoundsConfig`): a heuristic for "looks like physical units"
    (the authors' bundle importer uses it to tell scaled from physical conditions).
    """
    low, high = CONDITION_RANGES[column]
    margin = RANGE_MARGIN * (high - low)
    floor, ceiling = PHYSICAL_LIMITS.get(column, (0.0, float("inf")))
    return max(low - margin, floor), min(high + margin, ceiling)


def validate(
    df: pd.DataFrame, suite: str, *, nullable: Iterable[str] = (), check_ranges: bool = True,
    bounds: BoundsConfig | None = None,
) -> ValidationReport:
    """Run the named suite (one of SUITES) on `df`.

    `nullable`: columns allowed to hold nulls (e.g. yield strength of the authors' bundle).
    `check_ranges=False` skips the condition bound checks (for conditions kept in scaled units).
    `bounds`: the physical condition bounds (default `BoundsConfig()`; pass params.yaml's `bounds`).
    """
    if suite not in SUITE_COLUMNS:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    definition = _validation_definition(suite, frozenset(nullable), check_ranges, bounds or BoundsConfig())
    n_expectations = len(definition.suite.expectations)
    missing = [c for c in SUITE_COLUMNS[suite] if c not in df.columns]
    if missing:
        return ValidationReport(suite, False, n_expectations, [f"missing column(s): {', '.join(missing)}"])
    result = definition.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES},
    )
    failures = [_failure_message(r) for r in result.results if not r.success]
    return ValidationReport(suite, bool(result.success), n_expectations, failures)


# ---------------------------------------------------------------------------------------------------------------
# Suites: plain data here; GX objects are made from them on first use.


@dataclass(frozen=True)
class Check:
    """One expectation: its GX class name, what a failure means (for messages) and its arguments."""

    expectation: str
    problem: str
    kwargs: dict[str, Any]


def _not_null(column: str) -> Check:
    return Check("ExpectColumnValuesToNotBeNull", "null values", {"column": column})


def _numeric(column: str) -> Check:
    kwargs = {"column": column, "type_list": NUMERIC_TYPES}
    return Check("ExpectColumnValuesToBeInTypeList", "a non-numeric dtype", kwargs)


def _between(column: str, low: float, high: float | None = None, strict_low: bool = False,
             strict_high: bool = False) -> Check:
    upper = "inf)" if high is None else f"{high:g}{')' if strict_high else ']'}"
    interval = f"{'(' if strict_low else '['}{low:g}, {upper}"
    kwargs = {"column": column, "min_value": low, "max_value": high, "strict_min": strict_low,
              "strict_max": strict_high}
    return Check("ExpectColumnValuesToBeBetween", f"values outside {interval}", kwargs)


def _within(column: str, bound: Bound) -> Check:
    """The physical bound of a condition column (the one matmcl.rawdata enforces)."""
    return _between(column, bound.min, bound.max, bound.min_exclusive, bound.max_exclusive)


def _in_set(column: str, values: Iterable[Any]) -> Check:
    values = list(values)
    return Check("ExpectColumnValuesToBeInSet", f"values not in {values}", {"column": column, "value_set": values})


def _id_checks(unique: bool) -> list[Check]:
    kwargs = {"column": FILM_ID, "regex": ID_REGEX}
    checks = [Check("ExpectColumnValuesToMatchRegex", f"ids not matching {ID_REGEX}", kwargs)]
    if unique:
        checks.append(Check("ExpectColumnValuesToBeUnique", "duplicate ids", {"column": FILM_ID}))
    return checks


def _condition_checks(check_ranges: bool, bounds: BoundsConfig) -> list[Check]:
    checks = [_numeric(c) for c in CONDITION_COLUMNS]
    if check_ranges:
        checks += [_within(c, getattr(bounds, c)) for c in CONDITION_COLUMNS]
    return checks


def _direction_checks() -> list[Check]:
    pair = [FILM_ID, DIRECTION]
    return [
        _in_set(DIRECTION, sorted(DIRECTION_NAMES)),
        Check("ExpectCompoundColumnsToBeUnique", "duplicate (film_id, direction) pairs", {"column_list": pair}),
    ]


def _property_checks() -> list[Check]:
    ordered = {"column_A": FRACTURE_STRENGTH, "column_B": YIELD_STRENGTH, "or_equal": True,
               "ignore_row_if": "either_value_is_missing"}
    return (
        [_numeric(c) for c in PROPERTY_COLUMNS]
        + [_between(c, 0, strict_low=True) for c in PROPERTY_COLUMNS]
        + [Check("ExpectColumnPairValuesAToBeGreaterThanB", "yield strength above fracture strength", ordered)]
    )


def suite_checks(suite: str, nullable: Iterable[str] = (), check_ranges: bool = True,
                 bounds: BoundsConfig | None = None) -> list[Check]:
    """Every check of a suite: not-null for each of its columns except `nullable`, then its own checks."""
    checks = [_not_null(c) for c in SUITE_COLUMNS[suite] if c not in set(nullable)]
    bounds = bounds or BoundsConfig()
    if suite == "conditions":
        return checks + _id_checks(unique=True) + _condition_checks(check_ranges, bounds)
    if suite == "properties":
        return checks + _id_checks(unique=False) + _direction_checks() + _property_checks()
    if suite == "table":
        return (checks + _id_checks(unique=False) + _condition_checks(check_ranges, bounds) + _direction_checks()
                + _property_checks() + [_in_set(SPLIT, SPLIT_NAMES)])
    return checks + _id_checks(unique=False) + [_numeric(PIXEL_SIZE_NM), _between(PIXEL_SIZE_NM, 0, strict_low=True)]


@functools.cache
def _gx_context() -> tuple[Any, Any]:
    """The process-wide ephemeral GX context and its whole-DataFrame batch definition (built on first use)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("matmcl").add_dataframe_asset("dataframe")
    return context, asset.add_batch_definition_whole_dataframe("whole")


@functools.cache
def _validation_definition(suite: str, nullable: frozenset[str], check_ranges: bool, bounds: BoundsConfig
                           ) -> ValidationDefinition:
    """Build (once per process and option set) the GX validation definition of a suite."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context, batch_definition = _gx_context()
    limits = ",".join(f"{c}={b}" for c, b in bounds.items()) if check_ranges else ""
    name = f"{suite}|nullable={','.join(sorted(nullable))}|ranges={check_ranges}|{limits}"
    expectations = [
        getattr(gxe, check.expectation)(**check.kwargs, meta={"problem": check.problem})
        for check in suite_checks(suite, nullable, check_ranges, bounds)
    ]
    gx_suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    logger.debug("built GX suite %s with %d expectations", name, len(expectations))
    return context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite))


# ---------------------------------------------------------------------------------------------------------------
# Failure messages


def _failure_message(result: Any) -> str:
    """One line: the column(s), what is wrong, how many rows, example values and their index labels."""
    config = result.expectation_config
    where = _columns_label(config.kwargs)
    problem = config.meta["problem"]
    error = _exception_message(result.exception_info)
    if error:
        return f"{where}: could not check for {problem}: {error}"
    details = result.result
    if "unexpected_count" not in details:
        return f"{where}: {problem} (observed {details.get('observed_value')})"
    index = [_plain(v) for v in details.get("partial_unexpected_index_list", [])]
    if config.type == NOT_NULL_TYPE:  # the examples would all be null
        return f"{where}: {details['unexpected_count']} row(s) with {problem} at index {index}"
    examples = [_plain(v) for v in details.get("partial_unexpected_list", [])]
    return f"{where}: {details['unexpected_count']} row(s) with {problem}, e.g. {examples} at index {index}"


def _columns_label(kwargs: dict[str, Any]) -> str:
    if "column" in kwargs:
        return f"column '{kwargs['column']}'"
    names = kwargs.get("column_list") or [kwargs["column_A"], kwargs["column_B"]]
    return f"columns {', '.join(repr(n) for n in names)}"


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports an expectation that raised either flat or per metric; return the first message."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    nested = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    return str(nested[0].get("exception_message")) if nested else None


def _plain(value: Any) -> Any:
    """numpy scalars (also inside tuples/dicts) → Python values, for readable messages."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.item() if hasattr(value, "item") else value
