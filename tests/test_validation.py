"""Great Expectations suites: a good table passes, each planted defect is reported with its column and index."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from matmcl.config import Bound, BoundsConfig
from matmcl.predict import PredictionInputError, Predictor, check_conditions
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, DIRECTION, FILM_ID, PROPERTY_COLUMNS
from matmcl.validation import ValidationError, condition_bounds, validate

N_FILMS = 6
PROPERTIES = {
    "fracture_strength_mpa": 30.0,
    "yield_strength_mpa": 12.0,
    "elastic_modulus_mpa": 400.0,
    "tangent_modulus_mpa": 60.0,
    "elongation_at_break_pct": 45.0,
}


def good_table() -> pd.DataFrame:
    """Film x direction table with mid-range conditions, positive properties and all three splits."""
    middle = {column: (low + high) / 2 for column, (low, high) in CONDITION_RANGES.items()}
    splits = ["train", "train", "train", "train", "val", "test"]
    rows = [
        {FILM_ID: f"F{i:03d}", **middle, DIRECTION: direction, **PROPERTIES, "split": splits[i]}
        for i in range(N_FILMS)
        for direction in (0, 1)
    ]
    return pd.DataFrame(rows)


def with_cell(row: int, column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, column] = value
        return df

    return change


def test_good_table_passes_every_suite() -> None:
    table = good_table()
    report = validate(table, "table")
    assert report.success and report.failures == []
    assert report.n_expectations > len(table.columns)
    report.raise_for_failures()
    assert validate(table[[FILM_ID, DIRECTION, *PROPERTY_COLUMNS]], "properties").success
    assert validate(table.drop_duplicates(FILM_ID)[[FILM_ID, *CONDITION_COLUMNS]], "conditions").success


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            with_cell(3, "yield_strength_mpa", 31.0),
            "columns 'fracture_strength_mpa', 'yield_strength_mpa': 1 row(s) with yield strength above fracture "
            "strength, e.g. [(30.0, 31.0)] at index [3]",
        ),
        (with_cell(5, DIRECTION, 2), "column 'direction': 1 row(s) with values not in [0, 1], e.g. [2] at index [5]"),
        (with_cell(7, "voltage_kv", np.nan), "column 'voltage_kv': 1 row(s) with null values at index [7]"),
        (
            with_cell(2, FILM_ID, "F000"),
            "columns 'film_id', 'direction': 2 row(s) with duplicate (film_id, direction) pairs",
        ),
        (with_cell(4, "split", "tst"), "column 'split': 1 row(s) with values not in ['train', 'val', 'test']"),
        (with_cell(1, "voltage_kv", 250.0), "column 'voltage_kv': 1 row(s) with values outside (0, 60], e.g. [250.0]"),
        (with_cell(2, "concentration_wt_pct", 100.0), "column 'concentration_wt_pct': 1 row(s) with values outside "
                                                      "(0, 100), e.g. [100.0] at index [2]"),
        (
            with_cell(0, "elongation_at_break_pct", 0.0),
            "column 'elongation_at_break_pct': 1 row(s) with values outside (0, inf), e.g. [0.0] at index [0]",
        ),
    ],
    ids=["yield-above-fracture", "direction-2", "null", "duplicate-pair", "split", "range", "open-end",
         "not-positive"],
)
def test_table_suite_reports_each_defect(change: Callable[[pd.DataFrame], pd.DataFrame], expected: str) -> None:
    report = validate(change(good_table()), "table")
    assert not report.success
    assert len(report.failures) == 1 and report.failures[0].startswith(expected), report.failures


def test_duplicate_film_id_in_conditions() -> None:
    conditions = good_table().drop_duplicates(FILM_ID)[[FILM_ID, *CONDITION_COLUMNS]].reset_index(drop=True)
    conditions.loc[4, FILM_ID] = "F001"
    report = validate(conditions, "conditions")
    assert report.failures == ["column 'film_id': 2 row(s) with duplicate ids, e.g. ['F001', 'F001'] at index [1, 4]"]


def test_raise_for_failures_lists_all_and_missing_columns_are_reported() -> None:
    table = good_table()
    table.loc[0, "yield_strength_mpa"] = 99.0
    table.loc[1, DIRECTION] = 3
    with pytest.raises(ValidationError, match=r"validation suite 'table' failed 2 check\(s\):\n  - column") as info:
        validate(table, "table").raise_for_failures()
    assert "yield strength above fracture strength" in str(info.value)
    assert validate(table.drop(columns=["split"]), "table").failures == ["missing column(s): split"]


def test_options_allow_missing_yield_and_scaled_conditions() -> None:
    table = good_table()
    table["yield_strength_mpa"] = np.nan
    table[list(CONDITION_COLUMNS)] = 0.5  # standardized values: outside the physical ranges
    assert not validate(table, "table").success
    assert validate(table, "table", nullable={"yield_strength_mpa"}, check_ranges=False).success


def test_patches_suite() -> None:
    patches = pd.DataFrame({FILM_ID: ["F001", "F001", "F002"], "path": ["a.png", None, "c.png"],
                            "pixel_size_nm": [20.0, 20.0, 0.0]})
    failures = validate(patches, "patches").failures
    assert failures == [
        "column 'path': 1 row(s) with null values at index [1]",
        "column 'pixel_size_nm': 1 row(s) with values outside (0, inf), e.g. [0.0] at index [2]",
    ]


def test_suites_accept_what_the_raw_reader_accepts() -> None:
    """Out of the training range but physically possible (the reader only warns): no suite failure later."""
    table = good_table()
    table.loc[1, "voltage_kv"], table.loc[2, "drum_speed_rpm"], table.loc[3, "humidity_pct"] = 40.0, 8000.0, 100.0
    assert validate(table, "table").success
    assert not validate(with_cell(0, "flow_rate_ml_h", 0.0)(table), "table").success
    wide = BoundsConfig(voltage_kv=Bound(0.0, 300.0, min_exclusive=True))
    assert validate(with_cell(1, "voltage_kv", 250.0)(good_table()), "table", bounds=wide).success


def test_prediction_rejects_physically_impossible_conditions() -> None:
    middle = {column: (low + high) / 2 for column, (low, high) in CONDITION_RANGES.items()}
    conditions = pd.DataFrame([middle, {**middle, "voltage_kv": 1e6}, middle])
    with pytest.raises(PredictionInputError, match=r"physically impossible value of voltage_kv in row\(s\) \[1\]: "
                                                   r"1e\+06 is outside \(0, 60\]"):
        check_conditions(conditions)
    predictor = Predictor.__new__(Predictor)  # the inputs are checked before the model is touched
    with pytest.raises(PredictionInputError, match="voltage_kv in row"):
        predictor.predict(conditions)
    with pytest.raises(PredictionInputError, match=r"flow_rate_ml_h in row\(s\) \[0, 2\]: -0.2 is outside \(0, 100\]"):
        check_conditions(conditions.assign(flow_rate_ml_h=[-0.2, 0.5, -1.0]))
    unusual = check_conditions(conditions.assign(voltage_kv=[40.0, 12.0, 59.0]))  # outside training range only
    assert unusual["voltage_kv"].tolist() == [40.0, 12.0, 59.0]


def test_condition_bounds_widen_the_schema_range_within_physical_limits() -> None:
    assert condition_bounds("voltage_kv") == (5.5, 31.5)
    assert condition_bounds("drum_speed_rpm") == (0.0, 4500.0)
    assert condition_bounds("humidity_pct") == (5.0, 85.0)


def test_unknown_suite() -> None:
    with pytest.raises(ValueError, match="unknown suite 'tables'"):
        validate(good_table(), "tables")
