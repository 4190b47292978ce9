"""Import the MatMCL authors' published data bundle into our processed layout (docs/authors-bundle.md).

Bundle (positional CSV columns: ID, six conditions, direction flag, four labels; two rows per ID):
    table/mech/{train,val,test}.csv, table/scaler.pkl (optional), table/retrieval_gallery/retrieval_gallery.csv
    and table/gen/gen.csv (optional, for flags), images/preprocessed/<ID>/<any name>
Output in `processed_dir`: table.parquet (yield strength NaN: the bundle has none), splits.parquet,
patches.parquet (pointing at the bundle's images in place) and bundle_import.json (what was found and decided).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.preprocessing import StandardScaler

from matmcl.atomic import write_json, write_parquet
from matmcl.rawdata import (
    FRAME,
    MAX_LISTED,
    PATH,
    PIXEL_SIZE_NM,
    RawDataError,
    cell_error,
    check_unique,
    parse_ids,
    parse_numbers,
    read_csv_strings,
)
from matmcl.artifacts import PATCHES_FILE, SPLITS_FILE, TABLE_FILE
from matmcl.schema import (
    CONDITION_COLUMNS,
    DIRECTION,
    DIRECTION_NAMES,
    FILM_ID,
    PROPERTY_COLUMNS,
    SPLIT,
    SPLIT_NAMES,
)
from matmcl.validation import YIELD_STRENGTH, condition_bounds, validate

logger = logging.getLogger(__name__)

MECH_DIR = Path("table/mech")
SCALER_PKL = Path("table/scaler.pkl")
GALLERY_CSV = Path("table/retrieval_gallery/retrieval_gallery.csv")
GENERATION_CSV = Path("table/gen/gen.csv")
PATCHES_DIR = Path("images/preprocessed")

METADATA_FILE = "bundle_import.json"

# The bundle's CSV columns by position (their code ignores the header names).
LABEL_COLUMNS: tuple[str, ...] = (
    "fracture_strength_mpa",
    "elongation_at_break_pct",
    "elastic_modulus_mpa",
    "tangent_modulus_mpa",
)
BUNDLE_COLUMNS: tuple[str, ...] = (FILM_ID, *CONDITION_COLUMNS, DIRECTION, *LABEL_COLUMNS)
TABLE_COLUMNS: tuple[str, ...] = (FILM_ID, *CONDITION_COLUMNS, DIRECTION, *PROPERTY_COLUMNS, SPLIT)
PATCH_COLUMNS: tuple[str, ...] = (
    FILM_ID, FRAME, "patch", "grid_row", "grid_col", PATH, PIXEL_SIZE_NM, "raw_mean", "raw_std", "matched_mean",
    "matched_std",
)
GALLERY, GENERATION = "gallery", "generation"

MIN_IN_RANGE_FRACTION = 0.5  # conditions count as physical units when this share of cells lies in the GX bounds
SCALER_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("sklearn.preprocessing._data", "StandardScaler"),
    ("sklearn.preprocessing.data", "StandardScaler"),  # scikit-learn < 0.22
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),  # pickled with numpy < 2
    ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles
})


@dataclass
class BundleImport:
    """What `import_authors_bundle` wrote."""

    table: pd.DataFrame
    splits: pd.DataFrame
    patches: pd.DataFrame
    metadata: dict[str, Any]


def import_authors_bundle(
    bundle_dir: str | Path,
    processed_dir: str | Path,
    *,
    pixel_size_nm: float = math.nan,
    conditions_scaled: bool | None = None,
) -> BundleImport:
    """Import the bundle at `bundle_dir` (its `datasets/` folder) into `processed_dir`; the bundle is only read.

    `pixel_size_nm`: physical pixel size of their patches (unknown in the bundle: NaN by default).
    `conditions_scaled`: whether the CSVs hold standardized conditions; None infers it from the values (share of
    cells inside the plausible physical ranges). Scaled values are converted back with table/scaler.pkl when
    present, else kept and recorded as scaled in bundle_import.json.
    """
    bundle_dir, processed_dir = Path(bundle_dir), Path(processed_dir)
    rows = read_mech_rows(bundle_dir)
    conditions, scaling = physical_conditions(rows[list(CONDITION_COLUMNS)], bundle_dir, conditions_scaled)
    table = rows.assign(**{c: conditions[c] for c in CONDITION_COLUMNS}, **{YIELD_STRENGTH: math.nan})
    table = table.loc[:, list(TABLE_COLUMNS)]
    film_ids = table[FILM_ID].drop_duplicates().tolist()
    splits, flag_info = film_splits(table, bundle_dir)
    patches, patch_info = list_patches(bundle_dir, film_ids, processed_dir, pixel_size_nm)

    physical = scaling["conditions_in_table"] == "physical"
    validate(table, "table", nullable={YIELD_STRENGTH}, check_ranges=physical).raise_for_failures()
    validate(patches, "patches", nullable={PIXEL_SIZE_NM} if math.isnan(pixel_size_nm) else ()).raise_for_failures()

    metadata = {
        "source": str(bundle_dir.resolve()),
        "n_films": len(film_ids),
        "n_rows": len(table),
        "n_patches": len(patches),
        "films_per_split": splits[SPLIT].value_counts().reindex(SPLIT_NAMES, fill_value=0).to_dict(),
        "yield_strength_mpa": "absent from the bundle: NaN in table.parquet",
        "pixel_size_nm": None if math.isnan(pixel_size_nm) else pixel_size_nm,
        **scaling,
        **flag_info,
        **patch_info,
    }
    write_parquet(table, processed_dir / TABLE_FILE)
    write_parquet(splits, processed_dir / SPLITS_FILE)
    write_parquet(patches, processed_dir / PATCHES_FILE)
    write_json(metadata, processed_dir / METADATA_FILE)
    logger.info("imported %d films (%d rows, %d patches) from %s", len(film_ids), len(table), len(patches), bundle_dir)
    return BundleImport(table, splits, patches, metadata)


# ---------------------------------------------------------------------------------------------------------------
# Tables


def read_bundle_csv(path: Path, n_columns: int = len(BUNDLE_COLUMNS)) -> pd.DataFrame:
    """Read a bundle CSV by position into the first `n_columns` of BUNDLE_COLUMNS (ids checked, numbers parsed)."""
    raw = read_csv_strings(path)
    if raw.shape[1] < n_columns:
        raise RawDataError(
            f"{path}: {raw.shape[1]} columns, expected at least {n_columns} read by position: "
            f"{', '.join(BUNDLE_COLUMNS[:n_columns])}"
        )
    parsed = {}
    for position, name in enumerate(BUNDLE_COLUMNS[:n_columns]):
        label = f"{raw.columns[position]} [position {position}, read as {name}]"
        parse = parse_ids if name == FILM_ID else parse_numbers
        parsed[name] = parse(raw.iloc[:, position], label, path)
        if name == DIRECTION:
            parsed[name] = _direction_flags(parsed[name], label, path)
    return pd.DataFrame(parsed)


def _direction_flags(values: pd.Series, label: str, path: Path) -> pd.Series:
    bad = np.flatnonzero(~values.isin(list(DIRECTION_NAMES)))
    if bad.size:
        raise cell_error(path, bad, label, f"{values.iloc[bad[0]]:g} is not a direction flag (0 or 1)")
    return values.astype("int64")


def read_mech_rows(bundle_dir: Path) -> pd.DataFrame:
    """table/mech/{train,val,test}.csv → one frame with a `split` column; (ID, direction) unique, one split per ID."""
    parts = []
    for split in SPLIT_NAMES:
        path = bundle_dir / MECH_DIR / f"{split}.csv"
        part = read_bundle_csv(path)
        check_unique(part, [FILM_ID, DIRECTION], path)
        parts.append(part.assign(**{SPLIT: split}))
    rows = pd.concat(parts, ignore_index=True)
    in_splits = rows.groupby(FILM_ID, sort=False)[SPLIT].unique()
    leaked = in_splits[in_splits.map(len) > 1]
    if not leaked.empty:
        listed = "; ".join(f"{film}: {', '.join(s)}" for film, s in leaked.head().items())
        raise RawDataError(f"{bundle_dir / MECH_DIR}: {len(leaked)} ID(s) appear in more than one split ({listed})")
    return rows


def read_ids(path: Path) -> set[str]:
    """IDs (first column) of an optional bundle CSV; empty when the file is absent."""
    if not path.is_file():
        return set()
    return set(read_bundle_csv(path, n_columns=1)[FILM_ID])


def film_splits(table: pd.DataFrame, bundle_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per film: split, and gallery / generation flags from the optional gallery and gen CSVs."""
    splits = table[[FILM_ID, SPLIT]].drop_duplicates(FILM_ID).reset_index(drop=True)
    info: dict[str, Any] = {}
    for flag, path in ((GALLERY, GALLERY_CSV), (GENERATION, GENERATION_CSV)):
        ids = read_ids(bundle_dir / path)
        splits[flag] = splits[FILM_ID].isin(ids)
        info[f"{flag}_csv_found"] = (bundle_dir / path).is_file()
        info[f"{flag}_ids_not_in_mech_tables"] = sorted(ids - set(splits[FILM_ID]))
    return splits, info


# ---------------------------------------------------------------------------------------------------------------
# Conditions: scaled or physical


class _ScalerUnpickler(pickle.Unpickler):
    """Unpickler that resolves only what a pickled StandardScaler needs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SCALER_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "StandardScaler":
            return StandardScaler
        return super().find_class(module, name)


def load_scaler(path: Path) -> StandardScaler:
    """Unpickle a StandardScaler over the six conditions; anything else raises RawDataError."""
    try:
        with path.open("rb") as file:
            scaler = _ScalerUnpickler(file).load()
    except Exception as exc:  # unpickling garbage can raise almost anything
        raise RawDataError(f"{path}: not loaded ({exc}); only a pickled sklearn StandardScaler is accepted") from exc
    if not isinstance(scaler, StandardScaler) or getattr(scaler, "n_features_in_", None) != len(CONDITION_COLUMNS):
        raise RawDataError(f"{path}: holds {type(scaler).__name__}, not a StandardScaler fitted on the six conditions")
    return scaler


def in_range_fraction(conditions: pd.DataFrame) -> float:
    """Share of condition cells inside the validation bounds (schema ranges with margin)."""
    inside = [conditions[c].between(*condition_bounds(c)).to_numpy() for c in CONDITION_COLUMNS]
    return float(np.mean(inside))


def physical_conditions(
    conditions: pd.DataFrame, bundle_dir: Path, scaled: bool | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Conditions in physical units where possible, and a record of what was found and done."""
    fraction = in_range_fraction(conditions)
    inferred = scaled is None
    if inferred:
        scaled = fraction < MIN_IN_RANGE_FRACTION
    scaler_path = bundle_dir / SCALER_PKL
    info = {
        "conditions_in_csv": "scaled" if scaled else "physical",
        "conditions_scaling_inferred": inferred,
        "conditions_in_range_fraction": round(fraction, 4),
        "scaler_found": scaler_path.is_file(),
        "conditions_in_table": "physical",
    }
    if not scaled:
        return conditions, info
    if not scaler_path.is_file():
        logger.warning("%s: conditions look standardized and %s is absent; kept scaled", bundle_dir, SCALER_PKL)
        return conditions, info | {"conditions_in_table": "scaled"}
    values = load_scaler(scaler_path).inverse_transform(conditions.to_numpy())
    physical = pd.DataFrame(values, columns=list(CONDITION_COLUMNS), index=conditions.index)
    info["conditions_in_range_fraction_after_unscaling"] = round(in_range_fraction(physical), 4)
    return physical, info


# ---------------------------------------------------------------------------------------------------------------
# Patches


def list_patches(
    bundle_dir: Path, film_ids: list[str], processed_dir: Path, pixel_size_nm: float
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Manifest of images/preprocessed/<ID>/* for the table's films, paths relative to `processed_dir`."""
    root = bundle_dir / PATCHES_DIR
    if not root.is_dir():
        raise RawDataError(f"{root}: folder not found (the bundle's preprocessed SEM patches)")
    rows, without = [], []
    for film_id in film_ids:
        files = _image_files(root / film_id)
        if not files:
            without.append(film_id)
        rows += [_patch_row(film_id, k, file, processed_dir, pixel_size_nm) for k, file in enumerate(files)]
    if without:
        logger.warning("%d film(s) without patches in %s: %s", len(without), root, without[:MAX_LISTED])
    orphans = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in set(film_ids))
    patches = pd.DataFrame(rows, columns=list(PATCH_COLUMNS)).astype({"grid_row": "Int64", "grid_col": "Int64"})
    return patches, {"films_without_patches": without, "patch_folders_not_in_mech_tables": orphans}


def _image_files(folder: Path) -> list[Path]:
    """Files of `folder` with an image extension PIL knows, sorted by name (none if the folder is absent)."""
    if not folder.is_dir():
        return []
    extensions = set(Image.registered_extensions())
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)


def _patch_row(film_id: str, patch: int, file: Path, processed_dir: Path, pixel_size_nm: float) -> dict[str, Any]:
    """One manifest row: the bundle has one frame per film as far as we know, no grid and no raw statistics."""
    return {
        FILM_ID: film_id, FRAME: 0, "patch": patch, "grid_row": pd.NA, "grid_col": pd.NA,
        PATH: _relative_path(file, processed_dir), PIXEL_SIZE_NM: pixel_size_nm,
        "raw_mean": math.nan, "raw_std": math.nan, "matched_mean": math.nan, "matched_std": math.nan,
    }


def _relative_path(file: Path, start: Path) -> str:
    """`file` relative to `start` (absolute when no relative path exists, e.g. another drive)."""
    try:
        return Path(os.path.relpath(file.resolve(), start.resolve())).as_posix()
    except ValueError:
        return file.resolve().as_posix()
