"""Data stages on a tiny virtual-lab workspace: accuracy against ground truth and behaviour on bad input."""

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from matmcl.config import deep_merge
from matmcl.rawdata import RawDataError
from matmcl.stages.context import StageContext
from matmcl.stages.features import features
from matmcl.stages.preprocess import preprocess
from matmcl.stages.raw import synthesize
from matmcl.stages.report import data_report
from matmcl.stages.tables import tables
from matmcl.stages.tensile import tensile

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def context(root: Path, **overrides) -> StageContext:
    ctx = StageContext.load(root, PARAMS, "smoke", progress=False)
    return StageContext(ctx.workspace, deep_merge(ctx.params, overrides), False) if overrides else ctx


def raw_of(root: Path) -> Path:
    return context(root).workspace.raw


def processed_of(root: Path) -> Path:
    return context(root).workspace.processed


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stages")
    ctx = context(root)
    synthesize(ctx)
    preprocess(ctx)
    tensile(ctx)
    return root


def copy_workspace(lab: Path, tmp_path: Path) -> Path:
    shutil.copytree(lab, tmp_path / "ws")
    return tmp_path / "ws"


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder` (hidden temp files included), by relative path."""
    files = (p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def spreadsheet_row(raw: Path, film: str) -> int:
    """Row of `film` in conditions.csv as a spreadsheet shows it (header = row 1)."""
    return int(pd.read_csv(raw / "conditions.csv")["film_id"].tolist().index(film)) + 2


def set_condition(raw: Path, film: str, column: str, value: str) -> None:
    table = pd.read_csv(raw / "conditions.csv", dtype=str)
    table.loc[table["film_id"] == film, column] = value
    table.to_csv(raw / "conditions.csv", index=False)


def spoil_curves(raw: Path, key: str, item: str, direction: str | None = None, composites: bool = False) -> list[str]:
    """Make the curve files of `item` (one direction, or all) unreadable (header only); return their paths."""
    listed = pd.read_csv(raw / ("composites/tensile/curves.csv" if composites else "tensile/curves.csv"))
    chosen = listed[(listed[key] == item) & ((listed["direction"] == direction) if direction else True)]
    for path in chosen["path"]:
        (raw / path).write_text("strain_pct,stress_mpa\n")
    return chosen["path"].tolist()


def test_tensile_stage_meets_the_accuracy_target(lab):
    metrics = json.loads((context(lab).workspace.reports / "tensile.json").read_text())
    assert max(metrics["tensile_rel_error"].values()) <= 0.02
    assert metrics["skipped_films"] == [] and metrics["skipped_composites"] == []
    properties = pd.read_parquet(processed_of(lab) / "properties.parquet")
    assert len(properties) == 24 and (properties["n_replicates"] == 3).all()


def test_patches_cover_every_frame(lab):
    manifest = pd.read_parquet(processed_of(lab) / "patches.parquet")
    assert len(manifest) == 12 * 2 * 6  # smoke frames 384 x 320, 64-px bar: 3 x 2 tiles of 128
    assert manifest.groupby("film_id").size().eq(12).all()


def test_unfractured_curve_is_skipped_and_counted_or_named_in_the_error(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    path = raw_of(root) / "tensile/F0001/longitudinal_r0.csv"
    curve = pd.read_csv(path)
    curve.iloc[:-3].to_csv(path, index=False)  # drop the fracture tail
    metrics = tensile(context(root)).metrics
    assert [s["path"] for s in metrics["skipped_curves"]] == ["tensile/F0001/longitudinal_r0.csv"]
    assert metrics["skipped_films"] == []  # two longitudinal replicates remain
    properties = pd.read_parquet(processed_of(root) / "properties.parquet")
    assert properties.set_index(["film_id", "direction"]).loc[("F0001", 1), "n_replicates"] == 2
    with pytest.raises(RawDataError, match="F0001/longitudinal_r0.csv.*fractur"):
        tensile(context(root, data={"on_bad_curve": "error"}))


def test_film_without_frames_fails_or_is_skipped(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    frames = raw_of(root) / "sem/frames.csv"
    table = pd.read_csv(frames)
    table[table["film_id"] != "F0002"].to_csv(frames, index=False)
    with pytest.raises(RawDataError, match="F0002"):
        preprocess(context(root))
    metrics = preprocess(context(root, data={"on_missing": "skip"})).metrics
    assert metrics["n_films"] == 11 and metrics["skipped_films"][0]["film_id"] == "F0002"


def test_failed_stage_leaves_earlier_outputs_untouched(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    before = (processed_of(root) / "patches.parquet").read_bytes()
    (raw_of(root) / "sem/F0003/F0003_f1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(RawDataError, match="F0003_f1.png"):
        preprocess(context(root))
    assert (processed_of(root) / "patches.parquet").read_bytes() == before
    assert not list(processed_of(root).glob(".*tmp"))


@pytest.mark.parametrize("stage", [preprocess, tensile, tables], ids=["preprocess", "tensile", "tables"])
def test_impossible_condition_fails_the_stage_before_anything_is_written(lab, tmp_path, stage):
    root = copy_workspace(lab, tmp_path)
    raw, reports = raw_of(root), context(root).workspace.reports
    set_condition(raw, "F0004", "flow_rate_ml_h", "-0.5")
    before = {"processed": digests(processed_of(root)), "reports": digests(reports)}
    with pytest.raises(RawDataError) as info:
        stage(context(root, data={"on_missing": "skip"}))
    row = spreadsheet_row(raw, "F0004")
    assert str(info.value).startswith(
        f"{raw / 'conditions.csv'}: row {row}, column 'flow_rate_ml_h': -0.5 is physically impossible, outside (0, 100]"
    )
    assert {"processed": digests(processed_of(root)), "reports": digests(reports)} == before  # no new or changed file


def test_impossible_condition_in_a_fresh_workspace_writes_nothing(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    shutil.rmtree(processed_of(root))
    set_condition(raw_of(root), "F0006", "voltage_kv", "1e6")
    with pytest.raises(RawDataError, match=r"column 'voltage_kv': 1e\+06 is physically impossible, outside \(0, 60\]"):
        preprocess(context(root))
    assert not processed_of(root).exists() or not any(processed_of(root).rglob("*"))


def test_films_losing_a_direction_to_bad_curves_are_an_error_by_default(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    raw = raw_of(root)
    everything = spoil_curves(raw, "film_id", "F0005")
    transverse = spoil_curves(raw, "film_id", "F0007", "transverse")
    before = digests(processed_of(root))
    with pytest.raises(RawDataError) as info:
        tensile(context(root))
    message = str(info.value)
    assert "2 film(s) incomplete: F0005: all 3 longitudinal tensile curve(s) unreadable" in message
    assert "F0005: all 3 transverse" not in message and "all 3 transverse tensile curve(s) unreadable" in message
    assert f"F0007: all 3 transverse tensile curve(s) unreadable ({', '.join(transverse)})" in message
    assert all(path in message for path in everything)
    assert "F0007: all 3 longitudinal" not in message and "on_missing='skip'" in message
    assert digests(processed_of(root)) == before


def test_skipped_films_are_dropped_listed_and_counted_in_data_json(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    raw = raw_of(root)
    frames = pd.read_csv(raw / "sem/frames.csv")
    frames[frames["film_id"] != "F0002"].to_csv(raw / "sem/frames.csv", index=False)  # no frames
    spoil_curves(raw, "film_id", "F0005")  # every curve unreadable (its composite C003 goes too)
    spoil_curves(raw, "film_id", "F0007", "transverse")  # one direction unreadable
    spoil_curves(raw, "composite_id", "C002", "longitudinal", composites=True)  # a composite loses a direction
    ctx = context(root, data={"on_missing": "skip"})
    preprocess(ctx)
    features(ctx)
    metrics = tensile(ctx).metrics

    assert [s["film_id"] for s in metrics["skipped_films"]] == ["F0002", "F0005", "F0007"]
    reasons = {s["film_id"]: s["reason"] for s in metrics["skipped_films"]}
    assert reasons["F0002"] == "no SEM frames in sem/frames.csv"
    assert reasons["F0007"].startswith("all 3 transverse tensile curve(s) unreadable (tensile/F0007/transverse_r")
    assert "longitudinal" in reasons["F0005"] and "transverse" in reasons["F0005"]
    assert len(metrics["skipped_curves"]) == 6 + 3 and len(metrics["skipped_composite_curves"]) == 3
    assert [(s["composite_id"], s["reason"][:30]) for s in metrics["skipped_composites"]] == [
        ("C003", "its film F0005 was skipped"), ("C002", "all 3 longitudinal tensile cur")]
    properties = pd.read_parquet(processed_of(root) / "properties.parquet")
    assert sorted(set(properties["film_id"]) & {"F0002", "F0005", "F0007"}) == []
    assert len(properties) == 9 * 2 and properties.groupby("film_id")["direction"].nunique().eq(2).all()
    composites = pd.read_parquet(processed_of(root) / "composite_properties.parquet")
    assert sorted(composites["composite_id"].unique()) == ["C001", "C004", "C005", "C006"]

    assert tables(ctx).metrics["n_films"] == 9
    table = pd.read_parquet(processed_of(root) / "table.parquet")
    assert not set(table["film_id"]) & {"F0002", "F0005", "F0007"}
    data = data_report(ctx).metrics
    assert data["n_skipped_films"] == 3 and data["n_films"] == 9 and data["n_skipped_composites"] == 2
    assert data["n_skipped_curves"] == 9
    listed = {s["film_id"]: s["reasons"] for s in data["skipped_films"]}
    assert listed["F0002"] == ["no SEM frames in sem/frames.csv"]  # said by preprocess and tensile: listed once
    assert listed["F0005"] == [reasons["F0005"]] and listed["F0007"] == [reasons["F0007"]]
    assert json.loads((context(root).workspace.reports / "data.json").read_text())["n_skipped_films"] == 3


def test_tables_split_by_film_with_train_only_scaler(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    metrics = tables(context(root)).metrics
    table = pd.read_parquet(processed_of(root) / "table.parquet")
    assert table.groupby("film_id")["split"].nunique().eq(1).all()
    assert metrics["n_rows"] == 24 and sum(metrics["split_films"].values()) == 12 and metrics["skipped_films"] == []
    composite = pd.read_parquet(processed_of(root) / "composite_table.parquet")
    assert composite["composite_id"].nunique() == 6 and set(composite["direction"]) == {0, 1}
