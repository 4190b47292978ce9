"""Reading and checking a raw lab data folder (layout: docs/data-format.md).

Every reader checks one table: required columns, cell types, missing values, ids, direction names, duplicates and
that referenced files exist. A problem raises `RawDataError` naming the file and, for a cell, its row and column.
Rows are numbered as in a spreadsheet: the header is row 1, the first data row is row 2. Raw files are only read.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image

from matmcl.artifacts import COMPOSITE_CURVES_CSV, COMPOSITES_CSV, CONDITIONS_CSV, CURVES_CSV, FRAMES_CSV
from matmcl.config import BoundsConfig
from matmcl.schema import (
    COMPOSITE_ID,
    CONDITION_COLUMNS,
    CONDITION_RANGES,
    DIRECTION,
    DIRECTION_FLAGS,
    DIRECTION_NAMES,
    FILM_ID,
)

logger = logging.getLogger(__name__)

FRAME = "frame"
PATH = "path"
PIXEL_SIZE_NM = "pixel_size_nm"
INFO_BAR_PX = "info_bar_px"
REPLICATE = "replicate"

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
FIRST_DATA_ROW = 2  # spreadsheet row number of the first data row (header = row 1)
NA_STRINGS = frozenset({"", "nan", "na", "n/a", "null", "none", "#n/a"})
MAX_LISTED = 5  # offending rows/films named in one message
HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
GRAY_LEVELS = 255

# Column kinds: "id" (string matching ID_PATTERN), "text", "number" (finite float), "positive" (> 0),
# "count" (integer >= 0), "optional_count" (a count, or empty / column absent: <NA>, nullable Int64) and "direction"
# (a name of DIRECTION_FLAGS, returned as its 0/1 flag).
ColumnKind = Literal["id", "text", "number", "positive", "count", "optional_count", "direction"]
CONDITIONS_SPEC: dict[str, ColumnKind] = {FILM_ID: "id", **{c: "number" for c in CONDITION_COLUMNS}}
FRAMES_SPEC: dict[str, ColumnKind] = {
    FILM_ID: "id",
    FRAME: "count",
    PATH: "text",
    PIXEL_SIZE_NM: "positive",
    INFO_BAR_PX: "optional_count",  # empty or absent: detect the bar (matmcl.sem.infobar)
}
COMPOSITES_SPEC: dict[str, ColumnKind] = {COMPOSITE_ID: "id", FILM_ID: "id"}


def curves_spec(key: str = FILM_ID) -> dict[str, ColumnKind]:
    """Columns of a curves table keyed by `key` (film_id, or composite_id for composites)."""
    return {key: "id", DIRECTION: "direction", REPLICATE: "count", PATH: "text"}


class RawDataError(ValueError):
    """A raw file or one of its cells is unusable; the message names the file (and row and column)."""


# ---------------------------------------------------------------------------------------------------------------
# CSV tables


def spreadsheet_rows(positions: Sequence[int] | np.ndarray) -> list[int]:
    """Spreadsheet row numbers (header = row 1) of 0-based data row positions."""
    return [int(p) + FIRST_DATA_ROW for p in positions]


def cell_error(path: Path | str, positions: Sequence[int], column: str, problem: str) -> RawDataError:
    """Error for bad cells of one column: `problem` describes the first; further rows are listed."""
    rows = spreadsheet_rows(positions)
    more = f"; also rows {', '.join(map(str, rows[1:MAX_LISTED]))}" if len(rows) > 1 else ""
    more += " …" if len(rows) > MAX_LISTED else ""
    return RawDataError(
        f"{path}: row {rows[0]}, column '{column}': {problem}{more} (rows as in a spreadsheet, header = row 1)"
    )


def read_csv_strings(path: Path | str) -> pd.DataFrame:
    """Read a CSV with every cell as a stripped string (no NA conversion), so each cell can be checked by hand."""
    path = Path(path)
    if not path.is_file():
        raise RawDataError(f"{path}: file not found (layout: docs/data-format.md)")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise RawDataError(f"{path}: the file is empty (a header row is required)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RawDataError(f"{path}: not a readable CSV file ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise RawDataError(f"{path}: no data rows below the header")
    return df.apply(lambda col: col.str.strip())


def check_columns(df: pd.DataFrame, expected: Sequence[str], path: Path | str) -> pd.DataFrame:
    """Keep the `expected` columns in that order; a missing one raises with the closest present name as hint."""
    missing = [c for c in expected if c not in df.columns]
    if missing:
        unexpected = [c for c in df.columns if c not in expected]
        hints = [_with_suggestion(name, unexpected) for name in missing]
        raise RawDataError(
            f"{path}: missing column(s) {', '.join(hints)}; expected columns: {', '.join(expected)}; "
            f"found: {', '.join(map(str, df.columns))}"
        )
    extra = [c for c in df.columns if c not in expected]
    if extra:
        logger.info("%s: ignoring extra column(s) %s", path, ", ".join(map(str, extra)))
    return df.loc[:, list(expected)]


def _with_suggestion(name: str, candidates: Sequence[str]) -> str:
    """`'name'`, followed by the closest candidate (case-insensitive) when one is close enough."""
    by_lower = {str(c).lower(): str(c) for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return f"'{name}' (did you mean '{by_lower[close[0]]}'?)" if close else f"'{name}'"


def _missing_mask(values: pd.Series) -> pd.Series:
    return values.str.lower().isin(NA_STRINGS)


def parse_numbers(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    """String cells → float64; a missing, non-numeric or infinite cell raises naming row and column."""
    missing = _missing_mask(values)
    if missing.any():
        raise cell_error(path, np.flatnonzero(missing), column, "missing value")
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = ~np.isfinite(numbers.to_numpy())
    if bad.any():
        positions = np.flatnonzero(bad)
        raise cell_error(path, positions, column, f"'{values.iloc[positions[0]]}' is not a finite number")
    return numbers


def _parse_count(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    numbers = parse_numbers(values, column, path)
    bad = (numbers < 0) | (numbers != np.round(numbers))
    if bad.any():
        positions = np.flatnonzero(bad)
        raise cell_error(path, positions, column, f"'{values.iloc[positions[0]]}' is not a whole number >= 0")
    return numbers.astype("int64")


def _parse_optional_count(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    """Counts where given, <NA> where the cell is empty (nullable Int64)."""
    missing = _missing_mask(values)
    counts = _parse_count(values.mask(missing, "0"), column, path).astype("Int64")
    return counts.mask(missing)


def _parse_positive(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    numbers = parse_numbers(values, column, path)
    if (numbers <= 0).any():
        positions = np.flatnonzero(numbers <= 0)
        raise cell_error(path, positions, column, f"'{values.iloc[positions[0]]}' is not > 0")
    return numbers


def _parse_text(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    missing = _missing_mask(values)
    if missing.any():
        raise cell_error(path, np.flatnonzero(missing), column, "missing value")
    return values


def parse_ids(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    """Check id cells: present and made of letters, digits, '_' and '-' only."""
    values = _parse_text(values, column, path)
    bad = ~values.str.fullmatch(ID_PATTERN.pattern)
    if bad.any():
        positions = np.flatnonzero(bad)
        problem = f"'{values.iloc[positions[0]]}' is not a valid id (letters, digits, '_' and '-' only)"
        raise cell_error(path, positions, column, problem)
    return values


def _parse_direction(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    names = _parse_text(values, column, path).str.lower()
    bad = ~names.isin(DIRECTION_FLAGS)
    if bad.any():
        positions = np.flatnonzero(bad)
        value = values.iloc[positions[0]]
        problem = f"'{value}' is not a direction; use {' or '.join(DIRECTION_FLAGS)}"
        close = difflib.get_close_matches(value.lower(), list(DIRECTION_FLAGS), n=1)
        problem += f" (did you mean '{close[0]}'?)" if close else ""
        raise cell_error(path, positions, column, problem)
    return names.map(DIRECTION_FLAGS).astype("int64")


PARSERS: dict[ColumnKind, Callable[[pd.Series, str, Path | str], pd.Series]] = {
    "id": parse_ids,
    "text": _parse_text,
    "number": parse_numbers,
    "positive": _parse_positive,
    "count": _parse_count,
    "optional_count": _parse_optional_count,
    "direction": _parse_direction,
}


def read_table(path: Path | str, spec: Mapping[str, ColumnKind]) -> pd.DataFrame:
    """Read a CSV and parse each column of `spec` by its kind (index: 0-based data row position)."""
    df = read_csv_strings(path)
    for column in (c for c, kind in spec.items() if kind == "optional_count" and c not in df.columns):
        df[column] = ""
    df = check_columns(df, list(spec), path)
    return pd.DataFrame({column: PARSERS[kind](df[column], column, path) for column, kind in spec.items()})


def check_unique(df: pd.DataFrame, key: Sequence[str], path: Path | str) -> None:
    """Raise if a value (or combination) of the `key` columns appears on more than one row."""
    key = list(key)
    duplicated = np.flatnonzero(df.duplicated(key, keep=False))
    if duplicated.size:
        first = df.iloc[duplicated[0]][key]
        same = np.flatnonzero((df[key] == first).all(axis=1))
        rows = ", ".join(map(str, spreadsheet_rows(same)))
        values = tuple(v.item() if isinstance(v, np.generic) else v for v in first)
        shown = f"{key[0]} '{values[0]}'" if len(key) == 1 else f"({', '.join(key)}) = {values}"
        raise RawDataError(f"{path}: duplicate {shown} in rows {rows} (rows as in a spreadsheet, header = row 1)")


def check_files_exist(df: pd.DataFrame, raw_dir: Path, path: Path | str) -> None:
    """Raise if a `path` cell does not name an existing file relative to `raw_dir`."""
    absent = np.flatnonzero([not (raw_dir / p).is_file() for p in df[PATH]])
    if absent.size:
        problem = f"file not found: {raw_dir / df[PATH].iloc[absent[0]]}"
        raise cell_error(path, absent, PATH, problem)


def warn_out_of_range(conditions: pd.DataFrame, path: Path | str) -> None:
    """Log a warning for condition values outside schema.CONDITION_RANGES (accepted: a lab may differ)."""
    for column, (low, high) in CONDITION_RANGES.items():
        outside = np.flatnonzero(~conditions[column].between(low, high))
        if outside.size:
            rows = ", ".join(map(str, spreadsheet_rows(outside[:MAX_LISTED])))
            logger.warning(
                "%s: %d value(s) of %s outside the usual range [%g, %g] (rows %s); accepted, but check the units",
                path, outside.size, column, low, high, rows,
            )


def check_bounds(conditions: pd.DataFrame, path: Path | str, bounds: BoundsConfig | None = None) -> None:
    """Raise one RawDataError for physically impossible conditions (outside `bounds`, default BoundsConfig()).

    The message names the file and, for every offending column, its bound and the spreadsheet rows.
    """
    problems = []
    for column, bound in (bounds or BoundsConfig()).items():
        outside = np.flatnonzero(~bound.contains(conditions[column].to_numpy()))
        if outside.size:
            rows = spreadsheet_rows(outside)
            more = f" (also rows {', '.join(map(str, rows[1:MAX_LISTED]))}{' …' if len(rows) > MAX_LISTED else ''})"
            problems.append(f"row {rows[0]}, column '{column}': {conditions[column].iloc[outside[0]]:g} is physically "
                            f"impossible, outside {bound}{more if len(rows) > 1 else ''}")
    if problems:
        raise RawDataError(f"{path}: {'; '.join(problems)} (bounds: params.yaml `bounds`, docs/validation.md; "
                           "rows as in a spreadsheet, header = row 1)")


def read_conditions(raw_dir: str | Path, bounds: BoundsConfig | None = None) -> pd.DataFrame:
    """conditions.csv → film_id + six float conditions; unique ids.

    Physically impossible values (outside `bounds`, default `BoundsConfig()`: params.yaml `bounds`) raise
    RawDataError; values merely outside the usual range (schema.CONDITION_RANGES) are logged, not rejected.
    """
    path = Path(raw_dir) / CONDITIONS_CSV
    conditions = read_table(path, CONDITIONS_SPEC)
    check_unique(conditions, [FILM_ID], path)
    check_bounds(conditions, path, bounds)
    warn_out_of_range(conditions, path)
    return conditions


def read_frames_table(raw_dir: str | Path) -> pd.DataFrame:
    """sem/frames.csv → film_id, frame, path, pixel_size_nm, info_bar_px; unique (film_id, frame); files exist."""
    raw_dir = Path(raw_dir)
    path = raw_dir / FRAMES_CSV
    frames = read_table(path, FRAMES_SPEC)
    check_unique(frames, [FILM_ID, FRAME], path)
    check_files_exist(frames, raw_dir, path)
    return frames


def read_curves_table(raw_dir: str | Path, composites: bool = False) -> pd.DataFrame:
    """tensile/curves.csv (or composites/tensile/curves.csv) → id, direction flag (1/0), replicate, path.

    Direction names are case-insensitive; (id, direction, replicate) is unique and every curve file exists.
    The curves' content is checked by matmcl.tensile.
    """
    raw_dir = Path(raw_dir)
    path = raw_dir / (COMPOSITE_CURVES_CSV if composites else CURVES_CSV)
    key = COMPOSITE_ID if composites else FILM_ID
    curves = read_table(path, curves_spec(key))
    check_unique(curves, [key, DIRECTION, REPLICATE], path)
    check_files_exist(curves, raw_dir, path)
    return curves


def read_composites(raw_dir: str | Path) -> pd.DataFrame:
    """composites/composites.csv → composite_id (unique), film_id."""
    path = Path(raw_dir) / COMPOSITES_CSV
    composites = read_table(path, COMPOSITES_SPEC)
    check_unique(composites, [COMPOSITE_ID], path)
    return composites


# ---------------------------------------------------------------------------------------------------------------
# SEM images


def load_sem_image(path: str | Path) -> np.ndarray:
    """Read an SEM frame as an (H, W) uint8 array.

    8-bit grayscale is returned as is; colour, palette and bilevel images are converted to luminance
    (ITU-R 601-2, PIL's "L"); 16-bit, 32-bit and float images are rescaled linearly from their actual
    min..max to 0..255. A missing, truncated or corrupt file raises RawDataError naming it.
    """
    image = _decode(Path(path))
    if image.mode in HIGH_BIT_MODES:
        return _rescale_to_uint8(np.asarray(image), path)
    return np.array(image if image.mode == "L" else image.convert("L"), dtype=np.uint8)


def _decode(path: Path) -> Image.Image:
    """Open, verify and fully decode an image (PIL opens lazily: only a full load detects truncation)."""
    if not path.is_file():
        raise RawDataError(f"{path}: image file not found")
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise RawDataError(f"{path}: cannot read image, the file is truncated or corrupt ({exc})") from exc


def _rescale_to_uint8(values: np.ndarray, path: str | Path) -> np.ndarray:
    """Linear map of the actual min..max to 0..255 (a constant image becomes all zeros)."""
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high == low:
        logger.warning("%s: constant image (all pixels %g); converted to zeros", path, low)
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (GRAY_LEVELS / (high - low))).astype(np.uint8)


def check_frame_size(image: np.ndarray, info_bar_px: int, tile_px: int, path: str | Path) -> None:
    """Raise RawDataError when the frame above its info bar is smaller than one `tile_px` square tile."""
    height, width = image.shape[:2]
    usable = height - info_bar_px
    if usable < tile_px or width < tile_px:
        raise RawDataError(
            f"{path}: frame is {width}x{height} px; without its {info_bar_px}-px info bar {width}x{max(usable, 0)} px "
            f"remain, smaller than one {tile_px}x{tile_px} tile (lower preprocess.tile_px, or check info_bar_px "
            f"in {FRAMES_CSV})"
        )


# ---------------------------------------------------------------------------------------------------------------
# The whole folder

OnMissing = Literal["error", "skip"]


@dataclass
class RawDataset:
    """A checked raw folder. Curves carry direction flags; paths stay relative to `raw_dir`."""

    raw_dir: Path
    conditions: pd.DataFrame
    frames: pd.DataFrame
    curves: pd.DataFrame
    composites: pd.DataFrame | None = None
    composite_curves: pd.DataFrame | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (film_id, reason)
    skipped_composites: list[tuple[str, str]] = field(default_factory=list)  # (composite_id, reason)

    @property
    def film_ids(self) -> list[str]:
        """Ids of the films kept, in conditions.csv order."""
        return self.conditions[FILM_ID].tolist()


def load_raw_dataset(raw_dir: str | Path, on_missing: OnMissing = "error", bounds: BoundsConfig | None = None
                     ) -> RawDataset:
    """Read and cross-check a raw folder (conditions checked against `bounds`, see `read_conditions`).

    Every film needs at least one frame and curves in both directions (every composite: curves in both
    directions). A film or composite lacking them raises (`on_missing="error"`) or is dropped, logged and listed
    in `skipped` / `skipped_composites` (`"skip"`). Frames, curves or composites of unknown films always raise.
    """
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', not {on_missing!r}")
    raw_dir = Path(raw_dir)
    conditions = read_conditions(raw_dir, bounds)
    frames, curves = read_frames_table(raw_dir), read_curves_table(raw_dir)
    known = set(conditions[FILM_ID])
    check_known_ids(frames, FILM_ID, known, raw_dir / FRAMES_CSV, CONDITIONS_CSV)
    check_known_ids(curves, FILM_ID, known, raw_dir / CURVES_CSV, CONDITIONS_CSV)

    problems = _incomplete(conditions[FILM_ID], {
        f"no SEM frames in {FRAMES_CSV}": set(frames[FILM_ID]),
        **_direction_sets(curves, FILM_ID, CURVES_CSV),
    })
    skipped = handle_incomplete(problems, "film", raw_dir, on_missing)
    dropped = {film_id for film_id, _ in skipped}
    dataset = RawDataset(
        raw_dir=raw_dir,
        conditions=_drop(conditions, FILM_ID, dropped),
        frames=_drop(frames, FILM_ID, dropped),
        curves=_drop(curves, FILM_ID, dropped),
        skipped=skipped,
    )
    if (raw_dir / COMPOSITES_CSV).exists():
        _attach_composites(dataset, known, dropped, on_missing)
    if dataset.conditions.empty:
        raise RawDataError(f"{raw_dir}: no film has both SEM frames and tensile curves in both directions")
    return dataset


def check_known_ids(df: pd.DataFrame, column: str, known: set[str], path: Path, source: Path) -> None:
    """Raise if `column` holds an id missing from `known` (the ids of `source`)."""
    unknown = np.flatnonzero(~df[column].isin(known))
    if unknown.size:
        problem = f"'{df[column].iloc[unknown[0]]}' is not in {source}"
        raise cell_error(path, unknown, column, problem)


def _direction_sets(curves: pd.DataFrame, key: str, source: Path) -> dict[str, set[str]]:
    """For each direction, the reason a film lacking it is incomplete → ids that have it."""
    return {
        f"no {name} tensile curves in {source}": set(curves.loc[curves[DIRECTION] == flag, key])
        for flag, name in DIRECTION_NAMES.items()
    }


def _incomplete(ids: pd.Series, present: Mapping[str, set[str]]) -> list[tuple[str, str]]:
    """(id, reasons) for every id missing from one of the `present` sets (keyed by the reason)."""
    problems = []
    for item in ids:
        reasons = [reason for reason, have in present.items() if item not in have]
        if reasons:
            problems.append((item, ", ".join(reasons)))
    return problems


def handle_incomplete(
    problems: list[tuple[str, str]], what: str, raw_dir: Path, on_missing: OnMissing
) -> list[tuple[str, str]]:
    """Raise for incomplete items (one error listing them), or log and return them as skipped."""
    if not problems:
        return []
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', not {on_missing!r}")
    listed = "; ".join(f"{item}: {reason}" for item, reason in problems[:MAX_LISTED])
    more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
    if on_missing == "error":
        raise RawDataError(
            f"{raw_dir}: {len(problems)} {what}(s) incomplete: {listed}{more}. Add the missing data, or load with "
            f"on_missing='skip' (params.yaml data.on_missing) to leave them out"
        )
    logger.warning("%s: skipping %d incomplete %s(s): %s%s", raw_dir, len(problems), what, listed, more)
    return problems


def _drop(df: pd.DataFrame, column: str, ids: set[str]) -> pd.DataFrame:
    return df.loc[~df[column].isin(ids)].reset_index(drop=True)


def _attach_composites(dataset: RawDataset, known: set[str], dropped: set[str], on_missing: OnMissing) -> None:
    """Read composites and their curves into `dataset`, with the same completeness rules as films."""
    raw_dir = dataset.raw_dir
    composites = read_composites(raw_dir)
    curves = read_curves_table(raw_dir, composites=True)
    check_known_ids(composites, FILM_ID, known, raw_dir / COMPOSITES_CSV, CONDITIONS_CSV)
    check_known_ids(curves, COMPOSITE_ID, set(composites[COMPOSITE_ID]), raw_dir / COMPOSITE_CURVES_CSV, COMPOSITES_CSV)
    pairs = composites[[COMPOSITE_ID, FILM_ID]].itertuples(index=False)
    skipped = [(composite, f"its film {film} was skipped") for composite, film in pairs if film in dropped]
    if skipped:
        logger.warning("skipping %d composite(s) of skipped films: %s", len(skipped), skipped[:MAX_LISTED])
    remaining = _drop(composites, COMPOSITE_ID, {c for c, _ in skipped})
    problems = _incomplete(remaining[COMPOSITE_ID], _direction_sets(curves, COMPOSITE_ID, COMPOSITE_CURVES_CSV))
    skipped += handle_incomplete(problems, "composite", raw_dir, on_missing)
    gone = {c for c, _ in skipped}
    dataset.composites = _drop(composites, COMPOSITE_ID, gone)
    dataset.composite_curves = _drop(curves, COMPOSITE_ID, gone)
    dataset.skipped_composites = skipped
