"""Raw folder reading and checking: each defect gives one RawDataError naming file, row and column (tiny data)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from matmcl.config import Bound, BoundsConfig, load_params, section
from matmcl.rawdata import (
    RawDataError,
    check_frame_size,
    load_raw_dataset,
    load_sem_image,
    read_conditions,
    read_curves_table,
    read_frames_table,
)
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, DIRECTION, FILM_ID, LONGITUDINAL, TRANSVERSE

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
FILMS = ("F001", "F002", "F003")
FRAME_HEIGHT, FRAME_WIDTH, INFO_BAR = 96, 80, 16
DIRECTIONS = ("longitudinal", "transverse")


def write_raw(root: Path, composites: bool = False) -> Path:
    """A complete raw folder: 3 films, 1 frame each, 1 curve per direction (plus 2 composites if asked)."""
    rng = np.random.default_rng(0)
    middle = {column: (low + high) / 2 for column, (low, high) in CONDITION_RANGES.items()}
    pd.DataFrame([{FILM_ID: film, **middle} for film in FILMS]).to_csv(root / "conditions.csv", index=False)
    frames = []
    for film in FILMS:
        path = f"sem/{film}/{film}_f0.png"
        (root / path).parent.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (FRAME_HEIGHT, FRAME_WIDTH), dtype=np.uint8)).save(root / path)
        frames.append({FILM_ID: film, "frame": 0, "path": path, "pixel_size_nm": 20.0, "info_bar_px": INFO_BAR})
    pd.DataFrame(frames).to_csv(root / "sem/frames.csv", index=False)
    write_curves(root / "tensile", FILM_ID, FILMS)
    if composites:
        (root / "composites").mkdir()
        pd.DataFrame({"composite_id": ["C1", "C2"], FILM_ID: ["F001", "F002"]}).to_csv(
            root / "composites/composites.csv", index=False
        )
        write_curves(root / "composites/tensile", "composite_id", ("C1", "C2"), prefix="composites/")
    return root


def write_curves(folder: Path, key: str, ids: tuple[str, ...], prefix: str = "") -> None:
    """One tiny stress-strain CSV per id and direction, and the curves table listing them."""
    curve = pd.DataFrame({"strain_pct": [0.0, 1.0, 2.0, 3.0], "stress_mpa": [0.0, 5.0, 8.0, 0.5]})
    rows = []
    for item in ids:
        (folder / item).mkdir(parents=True)
        for direction in DIRECTIONS:
            curve.to_csv(folder / item / f"{direction}_r0.csv", index=False)
            path = f"{prefix}tensile/{item}/{direction}_r0.csv"
            rows.append({key: item, "direction": direction, "replicate": 0, "path": path})
    pd.DataFrame(rows).to_csv(folder / "curves.csv", index=False)


def edit_csv(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Rewrite a CSV after `change` (cells kept as text)."""
    change(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)


def set_cell(row: int, column: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, column] = value
        return df

    return change


def error_of(call: Callable[[], object]) -> str:
    with pytest.raises(RawDataError) as info:
        call()
    return str(info.value)


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    return write_raw(tmp_path)


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root`, by relative path."""
    files = (p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# --- a good folder -----------------------------------------------------------------------------------------------


def test_good_folder_loads_with_direction_flags_and_leaves_files_untouched(tmp_path: Path) -> None:
    raw = write_raw(tmp_path, composites=True)
    before = digests(raw)
    dataset = load_raw_dataset(raw)
    for path in dataset.frames["path"]:
        load_sem_image(raw / path)
    assert digests(raw) == before
    assert dataset.film_ids == list(FILMS)
    assert dataset.conditions["voltage_kv"].dtype == np.float64
    assert sorted(dataset.curves[DIRECTION].unique()) == [TRANSVERSE, LONGITUDINAL]
    assert dataset.frames["info_bar_px"].tolist() == [INFO_BAR] * 3
    assert dataset.composites["composite_id"].tolist() == ["C1", "C2"]
    assert len(dataset.composite_curves) == 4
    assert dataset.skipped == [] and dataset.skipped_composites == []


def test_out_of_range_condition_is_accepted_with_a_warning(raw: Path, caplog: pytest.LogCaptureFixture) -> None:
    edit_csv(raw / "conditions.csv", set_cell(1, "voltage_kv", "40"))
    with caplog.at_level(logging.WARNING, logger="matmcl.rawdata"):
        conditions = read_conditions(raw)
    assert conditions.loc[1, "voltage_kv"] == 40.0
    assert "voltage_kv outside the usual range" in caplog.text and "rows 3" in caplog.text


# --- physically impossible conditions -----------------------------------------------------------------------------


def test_negative_flow_rate_names_file_row_column_and_bound(raw: Path) -> None:
    edit_csv(raw / "conditions.csv", set_cell(1, "flow_rate_ml_h", "-0.5"))
    message = error_of(lambda: read_conditions(raw))
    assert message.startswith(
        f"{raw / 'conditions.csv'}: row 3, column 'flow_rate_ml_h': -0.5 is physically impossible, outside (0, 100]"
    )
    assert "params.yaml `bounds`" in message and "header = row 1" in message
    assert error_of(lambda: load_raw_dataset(raw, on_missing="skip")) == message  # every reader of the folder


def test_million_kilovolts_and_other_impossible_values_are_one_error(raw: Path) -> None:
    edit_csv(raw / "conditions.csv", set_cell(0, "voltage_kv", "1e6"))
    edit_csv(raw / "conditions.csv", set_cell(2, "voltage_kv", "-3"))
    edit_csv(raw / "conditions.csv", set_cell(1, "humidity_pct", "120"))
    message = error_of(lambda: read_conditions(raw))
    assert "row 2, column 'voltage_kv': 1e+06 is physically impossible, outside (0, 60] (also rows 4)" in message
    assert "row 3, column 'humidity_pct': 120 is physically impossible, outside [0, 100]" in message


@pytest.mark.parametrize(
    ("column", "value", "accepted"),
    [("flow_rate_ml_h", "0", False), ("concentration_wt_pct", "100", False), ("voltage_kv", "60", True),
     ("drum_speed_rpm", "0", True), ("temperature_c", "-51", False), ("humidity_pct", "100", True),
     ("humidity_pct", "0", True), ("humidity_pct", "100.5", False)],
)
def test_bound_ends_are_open_or_closed_as_documented(raw: Path, column: str, value: str, accepted: bool) -> None:
    edit_csv(raw / "conditions.csv", set_cell(0, column, value))
    if accepted:
        assert read_conditions(raw).loc[0, column] == float(value)
    else:
        assert f"row 2, column '{column}': {float(value):g} is physically impossible" in error_of(
            lambda: read_conditions(raw))


def test_bounds_come_from_params_and_can_be_changed(raw: Path) -> None:
    bounds = section(load_params(PARAMS), "bounds", BoundsConfig)
    assert bounds == BoundsConfig() and [column for column, _ in bounds.items()] == list(CONDITION_COLUMNS)
    assert str(bounds.flow_rate_ml_h) == "(0, 100]" and str(bounds.concentration_wt_pct) == "(0, 100)"
    edit_csv(raw / "conditions.csv", set_cell(0, "voltage_kv", "1e6"))
    wide = section({"bounds": {"voltage_kv": [0, 2e6]}}, "bounds", BoundsConfig)  # list form: both ends closed
    assert wide.voltage_kv == Bound(0.0, 2e6) and wide.humidity_pct == BoundsConfig().humidity_pct
    assert read_conditions(raw, wide).loc[0, "voltage_kv"] == 1e6
    with pytest.raises(ValueError, match="bounds', voltage_kv: .* is not a bound"):
        BoundsConfig(voltage_kv={"min": 0, "maximum": 60})
    with pytest.raises(ValueError, match="min must be below max"):
        Bound(5.0, 1.0)


# --- table defects -----------------------------------------------------------------------------------------------


def test_empty_or_absent_info_bar_means_detect_and_a_bad_one_is_named(raw: Path) -> None:
    edit_csv(raw / "sem/frames.csv", set_cell(1, "info_bar_px", ""))
    frames = read_frames_table(raw)
    assert frames["info_bar_px"].isna().tolist() == [False, True, False]
    assert frames["info_bar_px"].iloc[0] == INFO_BAR
    edit_csv(raw / "sem/frames.csv", lambda df: df.drop(columns=["info_bar_px"]))
    assert read_frames_table(raw)["info_bar_px"].isna().all()
    edit_csv(raw / "sem/frames.csv", lambda df: df.assign(info_bar_px=["16", "-2", ""]))
    assert "row 3, column 'info_bar_px': '-2' is not a whole number >= 0" in error_of(lambda: read_frames_table(raw))


def test_missing_column_lists_the_expected_names(raw: Path) -> None:
    edit_csv(raw / "conditions.csv", lambda df: df.drop(columns=["voltage_kv"]))
    message = error_of(lambda: read_conditions(raw))
    assert "conditions.csv: missing column(s) 'voltage_kv';" in message
    assert "expected columns: film_id, flow_rate_ml_h, concentration_wt_pct, voltage_kv" in message


def test_misspelled_column_suggests_the_closest_name(raw: Path) -> None:
    edit_csv(raw / "conditions.csv", lambda df: df.rename(columns={"voltage_kv": "voltge_kv"}))
    message = error_of(lambda: read_conditions(raw))
    assert "missing column(s) 'voltage_kv' (did you mean 'voltge_kv'?)" in message


def test_non_numeric_value_names_file_row_column_and_value(raw: Path) -> None:
    edit_csv(raw / "conditions.csv", set_cell(1, "voltage_kv", "18kV"))
    message = error_of(lambda: read_conditions(raw))
    assert "conditions.csv: row 3, column 'voltage_kv': '18kV' is not a finite number" in message
    assert "header = row 1" in message


def test_missing_value_names_row_and_column(raw: Path) -> None:
    edit_csv(raw / "sem/frames.csv", set_cell(2, "pixel_size_nm", "NaN"))
    message = error_of(lambda: load_raw_dataset(raw))
    assert "frames.csv: row 4, column 'pixel_size_nm': missing value" in message


def test_duplicate_id_names_both_rows(raw: Path) -> None:
    edit_csv(raw / "conditions.csv", set_cell(2, FILM_ID, "F002"))
    message = error_of(lambda: read_conditions(raw))
    assert "conditions.csv: duplicate film_id 'F002' in rows 3, 4" in message


def test_bad_direction_name_suggests_the_closest(raw: Path) -> None:
    edit_csv(raw / "tensile/curves.csv", set_cell(0, "direction", "longitudnal"))
    message = error_of(lambda: read_curves_table(raw))
    assert "curves.csv: row 2, column 'direction': 'longitudnal' is not a direction" in message
    assert "did you mean 'longitudinal'?" in message


def test_missing_referenced_file_is_named(raw: Path) -> None:
    (raw / "tensile/F003/transverse_r0.csv").unlink()
    message = error_of(lambda: read_curves_table(raw))
    assert "curves.csv: row 7, column 'path': file not found:" in message
    assert "F003/transverse_r0.csv" in message


def test_frames_of_an_unknown_film_are_an_error(raw: Path) -> None:
    edit_csv(raw / "sem/frames.csv", set_cell(0, FILM_ID, "F999"))
    message = error_of(lambda: load_raw_dataset(raw, on_missing="skip"))
    assert "frames.csv: row 2, column 'film_id': 'F999' is not in conditions.csv" in message


# --- incomplete films --------------------------------------------------------------------------------------------


def test_film_without_frames_errors_or_is_skipped(raw: Path) -> None:
    edit_csv(raw / "sem/frames.csv", lambda df: df[df[FILM_ID] != "F002"])
    message = error_of(lambda: load_raw_dataset(raw))
    assert "1 film(s) incomplete: F002: no SEM frames in sem/frames.csv" in message
    assert "on_missing='skip'" in message
    dataset = load_raw_dataset(raw, on_missing="skip")
    assert dataset.film_ids == ["F001", "F003"]
    assert dataset.skipped == [("F002", "no SEM frames in sem/frames.csv")]
    assert "F002" not in set(dataset.curves[FILM_ID])


def test_film_without_curves_in_one_direction_errors_or_is_skipped(tmp_path: Path) -> None:
    raw = write_raw(tmp_path, composites=True)
    edit_csv(raw / "tensile/curves.csv", lambda df: df[(df[FILM_ID] != "F001") | (df["direction"] != "transverse")])
    message = error_of(lambda: load_raw_dataset(raw))
    assert "F001: no transverse tensile curves in tensile/curves.csv" in message
    dataset = load_raw_dataset(raw, on_missing="skip")
    assert dataset.skipped == [("F001", "no transverse tensile curves in tensile/curves.csv")]
    assert dataset.skipped_composites == [("C1", "its film F001 was skipped")]
    assert dataset.composites["composite_id"].tolist() == ["C2"]


# --- SEM images --------------------------------------------------------------------------------------------------


def test_truncated_image_is_named(raw: Path) -> None:
    path = raw / "sem/F001/F001_f0.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = error_of(lambda: load_sem_image(path))
    assert message.startswith(f"{path}: cannot read image, the file is truncated or corrupt")


def test_corrupt_image_is_named(raw: Path) -> None:
    path = raw / "sem/F002/F002_f0.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    message = error_of(lambda: load_sem_image(path))
    assert message.startswith(f"{path}: cannot read image")


def test_rgb_and_rgba_are_converted_to_luminance(tmp_path: Path) -> None:
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 100, 100]]], dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    alpha = np.full((1, 4, 1), 128, dtype=np.uint8)
    Image.fromarray(np.concatenate([pixels, alpha], axis=2)).save(tmp_path / "rgba.png")
    for name in ("rgb.png", "rgba.png"):
        gray = load_sem_image(tmp_path / name)
        assert gray.dtype == np.uint8 and gray.shape == (1, 4)
        assert gray.tolist() == [[76, 150, 29, 100]]  # 0.299 R + 0.587 G + 0.114 B


def test_16_bit_is_rescaled_over_its_actual_range(tmp_path: Path) -> None:
    values = np.array([[1000, 1500, 3000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    gray = load_sem_image(tmp_path / "deep.png")
    assert gray.dtype == np.uint8
    assert gray.tolist() == [[0, 64, 255]]  # (1500 - 1000) / 2000 * 255 = 63.75


def test_frame_smaller_than_a_tile_is_named() -> None:
    image = np.zeros((FRAME_HEIGHT, FRAME_WIDTH), dtype=np.uint8)
    check_frame_size(image, INFO_BAR, 64, "F001_f0.png")
    with pytest.raises(RawDataError, match=r"F001_f0.png: frame is 80x96 px; without its 16-px info bar 80x80 px "
                                           r"remain, smaller than one 96x96 tile"):
        check_frame_size(image, INFO_BAR, 96, "F001_f0.png")
