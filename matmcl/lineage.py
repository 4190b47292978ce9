"""Lineage of the models: the data, parameters, code and parent models each model folder was made from.

- `data_version(processed_dir)`: sha256 (16 hex) over the names and bytes of the processed files the models are
  trained on (`DATA_FILES`, those present, in that order: the inputs of the pretrain and heads stages). The patch
  pixels enter through their manifest (patches.parquet: path and the raw and matched mean and sd of every patch);
  the PNGs themselves are not read, so the version is cheap enough to compute at every load. features.parquet and
  reference_histogram.json are left out: no model is trained on them (a new reference re-matches the patches, which
  changes the manifest), so a change to them leaves the models valid, as DVC sees it too. This is the one data
  version of the project: MLflow tags, Dagster metadata, reports and model folders all use it.
- Every model folder holds `lineage.json` (`Lineage`): the data version, a hash of the parameter sections that made
  it, the code version, its parents' fingerprints (heads: the SGPT folder) and its own `fingerprint` (sha256 of the
  folder's other files, i.e. weights and configs).
- `check_lineage(folder, expected, rerun)` raises `LineageError` naming both sides and the stage to rerun when the
  recorded data version or a parent fingerprint differs from the workspace's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matmcl.artifacts import PATCHES_FILE, SCALER_FILE, SPLITS_FILE, TABLE_FILE
from matmcl.atomic import write_json
from matmcl.hashing import HASH_CHARS, hash_files

LINEAGE_FILE = "lineage.json"
DATA_FILES = (TABLE_FILE, SPLITS_FILE, SCALER_FILE, PATCHES_FILE)
DATA = "data"  # the data version's key among the expected fingerprints of `check_lineage`


class LineageError(ValueError):
    """A model folder made from other data or parent models than the workspace holds (or with no lineage)."""


def data_version(processed_dir: str | Path) -> str:
    """Content hash of the processed files the models are trained on (`DATA_FILES` present in `processed_dir`)."""
    processed_dir = Path(processed_dir)
    return hash_files((name, processed_dir / name) for name in DATA_FILES if (processed_dir / name).is_file())


def fingerprint(directory: str | Path) -> str:
    """Content hash of a model folder: every file in it (sorted relative paths) except lineage.json."""
    directory = Path(directory)
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return hash_files((name, directory / name) for name in files if name != LINEAGE_FILE)


def params_hash(sections: Mapping[str, Any]) -> str:
    """Hash of typed parameter sections, e.g. {"pretrain": PretrainConfig(...)} (dataclasses or plain data)."""
    plain = {name: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
             for name, value in sections.items()}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:HASH_CHARS]


@dataclass(frozen=True)
class Lineage:
    """What a model folder was made from (lineage.json) and its own fingerprint."""

    data_version: str
    params_hash: str
    code_version: str
    parents: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""

    @classmethod
    def of(cls, sources: Mapping[str, str], params_hash: str, code_version: str) -> Lineage:
        """A lineage made from `sources` ({"data": data version, parent: fingerprint, ...})."""
        return cls(sources[DATA], params_hash, code_version, {k: v for k, v in sources.items() if k != DATA})

    def sources(self) -> dict[str, str]:
        """The data version and the parents' fingerprints, keyed as in `check_lineage`'s `expected`."""
        return {DATA: self.data_version, **self.parents}


def write_lineage(directory: str | Path, lineage: Lineage) -> Lineage:
    """Write lineage.json into a finished model folder, with the folder's fingerprint; return what was written."""
    written = dataclasses.replace(lineage, fingerprint=fingerprint(directory))
    write_json(dataclasses.asdict(written), Path(directory) / LINEAGE_FILE)
    return written


def read_lineage(directory: str | Path, rerun: str) -> Lineage:
    """The lineage of a model folder; LineageError (saying to rerun `matmcl <rerun>`) when it has none."""
    path = Path(directory) / LINEAGE_FILE
    if not path.is_file():
        raise LineageError(f"{path} is missing (a model folder written by an older matmcl or by hand): "
                           f"rerun `matmcl {rerun}`")
    return Lineage(**json.loads(path.read_text()))


def _describe(fingerprints: Mapping[str, str], keys: Iterable[str]) -> str:
    return " / ".join(f"{key} {fingerprints.get(key, 'none')}" for key in keys)


def check_lineage(directory: str | Path, expected: Mapping[str, str], rerun: str) -> Lineage:
    """The folder's lineage if its data version and parents match `expected` ({"data": ..., "sgpt": ...}), else a
    LineageError naming both sides and the stage to rerun."""
    lineage = read_lineage(directory, rerun)
    recorded = lineage.sources()
    if any(recorded.get(key) != value for key, value in expected.items()):
        raise LineageError(f"{directory} was trained on {_describe(recorded, expected)}, but the workspace has "
                           f"{_describe(expected, expected)}: rerun `matmcl {rerun}`")
    return lineage
