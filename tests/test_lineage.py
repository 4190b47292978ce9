"""Tests of matmcl.lineage on small hand-made folders: the data version, folder fingerprints and the lineage check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matmcl.lineage import (
    LINEAGE_FILE,
    Lineage,
    LineageError,
    check_lineage,
    data_version,
    fingerprint,
    params_hash,
    read_lineage,
    write_lineage,
)
from matmcl.training.config import PretrainConfig


def processed_folder(root: Path) -> Path:
    root.mkdir()
    for name in ("table.parquet", "splits.parquet", "scaler.json", "patches.parquet", "features.parquet",
                 "reference_histogram.json"):
        (root / name).write_bytes(name.encode())
    return root


def test_data_version_hashes_the_model_inputs_only(tmp_path: Path):
    processed = processed_folder(tmp_path / "processed")
    version = data_version(processed)
    assert len(version) == 16 and version == data_version(processed)
    for name in ("features.parquet", "reference_histogram.json"):  # not model inputs
        (processed / name).write_bytes(b"changed")
    assert data_version(processed) == version
    for name in ("table.parquet", "splits.parquet", "scaler.json", "patches.parquet"):
        original = (processed / name).read_bytes()
        (processed / name).write_bytes(original + b"!")
        assert data_version(processed) != version, name
        (processed / name).write_bytes(original)
    assert data_version(processed) == version
    (processed / "splits.parquet").unlink()
    assert data_version(processed) != version


def test_fingerprint_covers_every_file_but_the_lineage(tmp_path: Path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    first = fingerprint(folder)
    written = write_lineage(folder, Lineage("d" * 16, "p" * 16, "c" * 16, {"sgpt": "s" * 16}))
    assert written.fingerprint == first == fingerprint(folder)
    assert read_lineage(folder, "heads") == written
    (folder / "model.pt").write_bytes(b"other weights")
    assert fingerprint(folder) != first


def test_params_hash_depends_on_the_values():
    assert params_hash({"pretrain": PretrainConfig()}) == params_hash({"pretrain": PretrainConfig()})
    assert params_hash({"pretrain": PretrainConfig()}) != params_hash({"pretrain": PretrainConfig(seed=1)})


def test_check_names_both_sides_and_the_stage_to_rerun(tmp_path: Path):
    folder = tmp_path / "property"
    folder.mkdir()
    with pytest.raises(LineageError, match=rf"{LINEAGE_FILE} is missing .*: rerun `matmcl heads`"):
        check_lineage(folder, {"data": "a"}, "heads")
    lineage = write_lineage(folder, Lineage("a1", "p", "c", {"sgpt": "9f"}))
    assert check_lineage(folder, {"data": "a1", "sgpt": "9f"}, "heads") == lineage
    assert check_lineage(folder, {"sgpt": "9f"}, "heads") == lineage  # a subset is checked
    with pytest.raises(LineageError) as error:
        check_lineage(folder, {"data": "a1", "sgpt": "7a"}, "heads")
    assert str(error.value) == (f"{folder} was trained on data a1 / sgpt 9f, but the workspace has data a1 / sgpt 7a: "
                                "rerun `matmcl heads`")
    assert isinstance(error.value, ValueError)
    assert json.loads((folder / LINEAGE_FILE).read_text())["parents"] == {"sgpt": "9f"}
