"""Data stages on a tiny virtual-lab workspace: accuracy against ground truth and behaviour on bad input."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from matmcl.config import deep_merge
from matmcl.rawdata import RawDataError
from matmcl.stages.context import StageContext
from matmcl.stages.preprocess import preprocess
from matmcl.stages.raw import synthesize
from matmcl.stages.tables import tables
from matmcl.stages.tensile import tensile

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def context(root: Path, **overrides) -> StageContext:
    ctx = StageContext.load(root, PARAMS, "smoke", progress=False)
    return StageContext(ctx.workspace, deep_merge(ctx.params, overrides), False) if overrides else ctx


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


def test_tensile_stage_meets_the_accuracy_target(lab):
    metrics = pd.read_json(lab / "reports/tensile.json", typ="series")
    assert max(metrics["tensile_rel_error"].values()) <= 0.02
    properties = pd.read_parquet(lab / "data/processed/properties.parquet")
    assert len(properties) == 24 and (properties["n_replicates"] == 3).all()


def test_patches_cover_every_frame(lab):
    manifest = pd.read_parquet(lab / "data/processed/patches.parquet")
    assert len(manifest) == 12 * 2 * 6  # smoke frames 384 x 320, 64-px bar: 3 x 2 tiles of 128
    assert manifest.groupby("film_id").size().eq(12).all()


def test_unfractured_curve_is_skipped_and_counted_or_named_in_the_error(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    path = root / "data/raw/tensile/F0001/longitudinal_r0.csv"
    curve = pd.read_csv(path)
    curve.iloc[:-3].to_csv(path, index=False)  # drop the fracture tail
    metrics = tensile(context(root))
    assert [s["path"] for s in metrics["skipped_curves"]] == ["tensile/F0001/longitudinal_r0.csv"]
    properties = pd.read_parquet(root / "data/processed/properties.parquet")
    assert properties.set_index(["film_id", "direction"]).loc[("F0001", 1), "n_replicates"] == 2
    with pytest.raises(RawDataError, match="F0001/longitudinal_r0.csv.*fractur"):
        tensile(context(root, data={"on_bad_curve": "error"}))


def test_film_without_frames_fails_or_is_skipped(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    frames = root / "data/raw/sem/frames.csv"
    table = pd.read_csv(frames)
    table[table["film_id"] != "F0002"].to_csv(frames, index=False)
    with pytest.raises(RawDataError, match="F0002"):
        preprocess(context(root))
    metrics = preprocess(context(root, data={"on_missing": "skip"}))
    assert metrics["n_films"] == 11 and metrics["skipped_films"][0]["film_id"] == "F0002"


def test_failed_stage_leaves_earlier_outputs_untouched(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    before = (root / "data/processed/patches.parquet").read_bytes()
    (root / "data/raw/sem/F0003/F0003_f1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(RawDataError, match="F0003_f1.png"):
        preprocess(context(root))
    assert (root / "data/processed/patches.parquet").read_bytes() == before
    assert not list((root / "data/processed").glob(".*tmp"))


def test_tables_split_by_film_with_train_only_scaler(lab, tmp_path):
    root = copy_workspace(lab, tmp_path)
    metrics = tables(context(root))
    table = pd.read_parquet(root / "data/processed/table.parquet")
    assert table.groupby("film_id")["split"].nunique().eq(1).all()
    assert metrics["n_rows"] == 24 and sum(metrics["split_films"].values()) == 12
    composite = pd.read_parquet(root / "data/processed/composite_table.parquet")
    assert composite["composite_id"].nunique() == 6 and set(composite["direction"]) == {0, 1}
