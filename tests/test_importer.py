"""Importer of the authors' bundle, on a tiny fake bundle written here (6 IDs, 2 patches each)."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.preprocessing import StandardScaler

from matmcl.importers import import_authors_bundle
from matmcl.rawdata import RawDataError
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, DIRECTION, FILM_ID

SPLIT_OF = {"1": "train", "2": "train", "3": "train", "4": "train", "5": "val", "6": "test"}
HEADER = ["ID", "flow", "conc", "volt", "speed", "temp", "hum", "dir", "strength", "elong", "modulus", "tangent"]
PATCHES_PER_ID = 2
NO_PATCHES_ID = "6"
ORPHAN_FOLDER = "99"


def physical_conditions() -> np.ndarray:
    """One row of six conditions per ID, spread over the plausible ranges."""
    fractions = np.linspace(0.1, 0.9, len(SPLIT_OF))[:, None] * np.ones(len(CONDITION_COLUMNS))
    low, high = (np.array([CONDITION_RANGES[c][k] for c in CONDITION_COLUMNS]) for k in (0, 1))
    return low + fractions * (high - low)


def write_bundle(root: Path, scaled: bool = True, scaler: bool = True) -> Path:
    """datasets/ with table/mech/{train,val,test}.csv, gallery and gen CSVs, scaler.pkl and preprocessed patches."""
    bundle = root / "datasets"
    physical = physical_conditions()
    fitted = StandardScaler().fit(physical)
    values = fitted.transform(physical) if scaled else physical
    rows = [
        [film, *values[i], direction, 30.0 + i, 40.0 + i, 400.0 + i, 60.0 + i]
        for i, film in enumerate(SPLIT_OF)
        for direction in (0, 1)
    ]
    table = pd.DataFrame(rows, columns=HEADER)
    (bundle / "table/mech").mkdir(parents=True)
    for split in ("train", "val", "test"):
        table[table["ID"].map(SPLIT_OF) == split].to_csv(bundle / f"table/mech/{split}.csv", index=False)
    film_5 = table[table["ID"] == "5"]
    gallery = table[table["ID"] == "6"]
    generation = pd.concat([film_5, film_5.assign(ID="42")])  # 42: a condition set never made
    for name, part in (("retrieval_gallery", gallery), ("gen", generation)):
        (bundle / f"table/{name}").mkdir()
        part.iloc[:, :8].to_csv(bundle / f"table/{name}/{name}.csv", index=False)
    if scaler:
        (bundle / "table/scaler.pkl").write_bytes(pickle.dumps(fitted))
    for film in [*SPLIT_OF, ORPHAN_FOLDER]:
        if film == NO_PATCHES_ID:
            continue
        folder = bundle / "images/preprocessed" / film
        folder.mkdir(parents=True)
        for k in range(PATCHES_PER_ID):
            Image.fromarray(np.full((8, 8), 10 * k, dtype=np.uint8)).save(folder / f"{film}_{k}.png")
        (folder / "notes.txt").write_text("not an image")
    return bundle


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root`, by relative path."""
    files = (p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_scaled_bundle_with_scaler_is_imported_in_physical_units(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "authors")
    before = digests(bundle)
    processed = tmp_path / "processed"
    result = import_authors_bundle(bundle, processed, pixel_size_nm=25.0)

    assert digests(bundle) == before
    assert sorted(p.name for p in processed.iterdir()) == [
        "bundle_import.json", "patches.parquet", "splits.parquet", "table.parquet",
    ]
    table = pd.read_parquet(processed / "table.parquet")
    assert len(table) == 2 * len(SPLIT_OF)
    np.testing.assert_allclose(table[list(CONDITION_COLUMNS)].to_numpy()[::2], physical_conditions(), rtol=1e-9)
    first = table[(table[FILM_ID] == "3") & (table[DIRECTION] == 1)].iloc[0]
    assert (first["fracture_strength_mpa"], first["elongation_at_break_pct"]) == (32.0, 42.0)
    assert (first["elastic_modulus_mpa"], first["tangent_modulus_mpa"]) == (402.0, 62.0)
    assert table["yield_strength_mpa"].isna().all()

    splits = pd.read_parquet(processed / "splits.parquet").set_index(FILM_ID)
    assert splits["split"].to_dict() == SPLIT_OF
    assert splits.index[splits["gallery"]].tolist() == ["6"]
    assert splits.index[splits["generation"]].tolist() == ["5"]

    patches = pd.read_parquet(processed / "patches.parquet")
    assert len(patches) == PATCHES_PER_ID * (len(SPLIT_OF) - 1)
    assert patches.groupby(FILM_ID)["patch"].apply(list).to_dict()["1"] == [0, 1]
    for path in patches["path"]:
        assert (processed / path).resolve().parent.parent == (bundle / "images/preprocessed").resolve()
    assert (patches["pixel_size_nm"] == 25.0).all()

    metadata = json.loads((processed / "bundle_import.json").read_text())
    assert metadata == result.metadata | {"films_per_split": {"train": 4, "val": 1, "test": 1}}
    assert (metadata["conditions_in_csv"], metadata["conditions_in_table"]) == ("scaled", "physical")
    assert metadata["conditions_scaling_inferred"] is True
    assert metadata["films_without_patches"] == [NO_PATCHES_ID]
    assert metadata["patch_folders_not_in_mech_tables"] == [ORPHAN_FOLDER]
    assert metadata["generation_ids_not_in_mech_tables"] == ["42"]


def test_scaled_bundle_without_scaler_keeps_scaled_values_and_says_so(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "authors", scaler=False)
    result = import_authors_bundle(bundle, tmp_path / "processed")
    assert result.metadata["conditions_in_table"] == "scaled"
    assert result.metadata["pixel_size_nm"] is None and result.patches["pixel_size_nm"].isna().all()
    assert abs(result.table["voltage_kv"].mean()) < 1e-9  # standardized values, untouched


def test_physical_csv_is_kept_even_with_a_scaler(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "authors", scaled=False)
    result = import_authors_bundle(bundle, tmp_path / "processed")
    assert result.metadata["conditions_in_csv"] == "physical"
    np.testing.assert_allclose(result.table[list(CONDITION_COLUMNS)].to_numpy()[::2], physical_conditions())


class Sneaky:
    """Unpickling this would call print: a stand-in for a malicious pickle."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return print, ("unpickled!",)


@pytest.mark.parametrize(
    ("payload", "message"),
    [(Sneaky(), "refusing to load builtins.print"), ({"mean_": [0.0]}, "holds dict, not a StandardScaler")],
)
def test_scaler_pickle_other_than_a_standard_scaler_is_refused(tmp_path: Path, payload: object, message: str) -> None:
    bundle = write_bundle(tmp_path / "authors")
    (bundle / "table/scaler.pkl").write_bytes(pickle.dumps(payload))
    with pytest.raises(RawDataError, match=message):
        import_authors_bundle(bundle, tmp_path / "processed", conditions_scaled=True)
    assert not (tmp_path / "processed").exists()


def test_id_in_two_splits_is_an_error(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "authors")
    val = pd.read_csv(bundle / "table/mech/val.csv")
    val.assign(ID=1).to_csv(bundle / "table/mech/val.csv", index=False)
    with pytest.raises(RawDataError, match=r"1 ID\(s\) appear in more than one split \(1: train, val\)"):
        import_authors_bundle(bundle, tmp_path / "processed")


def test_bad_direction_flag_names_file_row_and_column(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "authors")
    test = pd.read_csv(bundle / "table/mech/test.csv")
    test.loc[1, "dir"] = 2
    test.to_csv(bundle / "table/mech/test.csv", index=False)
    message = r"test.csv: row 3, column 'dir \[position 7, read as direction\]': 2 is not a direction flag"
    with pytest.raises(RawDataError, match=message):
        import_authors_bundle(bundle, tmp_path / "processed")


def test_import_bundle_command_writes_tables_and_a_train_only_scaler(tmp_path, capsys):
    from matmcl.cli import main

    bundle = write_bundle(tmp_path / "bundle")
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    code = main(["--params", str(params), "--workspace", str(tmp_path / "ws"), "--quiet", "import-bundle", str(bundle)])
    assert code == 0
    processed = tmp_path / "ws" / "data" / "processed"
    table = pd.read_parquet(processed / "table.parquet")
    scaler = json.loads((processed / "scaler.json").read_text())
    train = table[table["split"] == "train"].drop_duplicates(FILM_ID)
    np.testing.assert_allclose(scaler["mean"], train[list(CONDITION_COLUMNS)].mean().to_numpy())
    assert json.loads(capsys.readouterr().out)["n_films"] == table[FILM_ID].nunique()
