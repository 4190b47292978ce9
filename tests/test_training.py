"""Tests of SGPT pre-training, property prediction, evaluation reports, prediction and tracking, on a tiny
fabricated processed folder (docs/processed-format.md) with a tiny model."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from matmcl.config import TrackingConfig
from matmcl.predict import PredictionInputError, Predictor
from matmcl.predict_cli import add_predict_arguments, cmd_predict
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, DIRECTION, FEATURE_COLUMNS, FILM_ID, PROPERTY_COLUMNS
from matmcl.tracking import NullRun, content_hash, data_version, tracking_run
from matmcl.training.config import EvaluationConfig, PretrainConfig, PropertyConfig
from matmcl.training.data import PretrainBatches, ProcessedData, RowPatches, model_images
from matmcl.training.evaluate import evaluate
from matmcl.training.pretrain import pretrain, warmup_linear_decay
from matmcl.training.properties import SGPT_DIR, PropertyData, fit_predict, train_heads

REPO = Path(__file__).resolve().parents[1]
N_FILMS, N_PATCHES, PATCH_PX, IMAGE_PX = 20, 3, 24, 16
SPLIT_COUNTS = {"train": 10, "val": 5, "test": 5}
PRETRAIN = PretrainConfig(model="tiny", image_size=IMAGE_PX, batch_size=8, lr=3e-3, epochs=6, checkpoint_every=1,
                          device="cpu")
PROPERTY = PropertyConfig(max_epochs=15, patience=5, seeds=(0, 1, 2), gbm_max_iter=20, fusion_patches=2,
                          device="cpu")
EVALUATION = EvaluationConfig(oracle_draws=4, knn_repeats=1, knn_test_size=0.4, tsne_max_iter=250)


pytestmark = pytest.mark.usefixtures("one_thread")


def stripes(angle: float, period: float, rng: np.random.Generator) -> np.ndarray:
    """A noisy stripe patch: orientation and spacing stand in for fiber alignment and diameter."""
    y, x = np.mgrid[:PATCH_PX, :PATCH_PX]
    wave = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + rng.uniform(0, 2 * np.pi))
    return np.clip(128 + 90 * wave + rng.normal(0, 20, wave.shape), 0, 255).astype(np.uint8)


def make_processed(root: Path, seed: int = 0) -> Path:
    """A processed folder of N_FILMS films whose patches and properties depend on their conditions."""
    rng = np.random.default_rng(seed)
    films = [f"F{i + 1:04d}" for i in range(N_FILMS)]
    low, high = np.array([CONDITION_RANGES[c] for c in CONDITION_COLUMNS]).T
    unit = rng.random((N_FILMS, len(CONDITION_COLUMNS)))
    conditions = pd.DataFrame(low + unit * (high - low), columns=list(CONDITION_COLUMNS)).assign(film_id=films)
    split = np.repeat(list(SPLIT_COUNTS), list(SPLIT_COUNTS.values()))
    rows, manifest = [], []
    for i, film in enumerate(films):
        for direction in (0, 1):
            props = 5 + 10 * unit[i, :5] * (1 + direction) + rng.normal(0, 0.2, 5)
            rows.append({FILM_ID: film, **conditions.iloc[i][list(CONDITION_COLUMNS)].to_dict(),
                         DIRECTION: direction, **dict(zip(PROPERTY_COLUMNS, props)), "split": split[i]})
        (root / "patches" / film).mkdir(parents=True, exist_ok=True)
        for p in range(N_PATCHES):
            path = f"patches/{film}/{film}_f0_p{p}.png"
            Image.fromarray(stripes(np.pi * unit[i, 3], 3 + 6 * unit[i, 1], rng)).save(root / path)
            manifest.append({FILM_ID: film, "frame": 0, "patch": p, "path": path})
    pd.DataFrame(rows).to_parquet(root / "table.parquet", index=False)
    pd.DataFrame(manifest).to_parquet(root / "patches.parquet", index=False)
    features = pd.DataFrame(rng.random((N_FILMS, len(FEATURE_COLUMNS))), columns=list(FEATURE_COLUMNS))
    features.assign(film_id=films).to_parquet(root / "features.parquet", index=False)
    pd.DataFrame({FILM_ID: films, "split": split}).to_parquet(root / "splits.parquet", index=False)
    train = conditions[split == "train"][list(CONDITION_COLUMNS)]
    scaler = {"columns": list(CONDITION_COLUMNS), "mean": train.mean().tolist(), "scale": train.std(ddof=0).tolist()}
    (root / "scaler.json").write_text(json.dumps(scaler))
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A workspace with data/processed, a tiny pre-trained models/sgpt and the served heads in models/property."""
    root = tmp_path_factory.mktemp("ws")
    processed = make_processed(root / "data" / "processed")
    pretrain(processed, PRETRAIN, root / "models" / SGPT_DIR, progress=False)
    train_heads(processed, root / "models", PROPERTY)
    return root


@pytest.fixture(scope="module")
def processed(workspace: Path) -> Path:
    return workspace / "data" / "processed"


# ---------------------------------------------------------------- data


def test_batches_standardize_conditions_and_rotate_transverse_patches(processed: Path):
    data = ProcessedData.load(processed)
    rows = data.rows(["train"])
    pairs = RowPatches.from_bank(rows, data.scaler, data.patches(rows))
    assert len(pairs) == N_PATCHES * len(rows)
    batches = PretrainBatches(pairs, IMAGE_PX, batch_size=len(rows))
    batch = next(batches.epoch(seed=0, epoch=0))
    again = next(batches.epoch(seed=0, epoch=0))
    assert batch["table"].shape == (len(rows), 7) and batch["image"].shape == (len(rows), 1, IMAGE_PX, IMAGE_PX)
    assert torch.equal(batch["image"], again["image"]) and torch.equal(batch["table"], again["table"])
    assert sorted(map(tuple, batch["table"].tolist())) == sorted(map(tuple, pairs.inputs.tolist()))  # each row once
    assert not torch.equal(batch["image"], next(batches.epoch(seed=0, epoch=1))["image"])
    assert batch["image"].min() >= 0 and batch["image"].max() <= 1
    # The inputs: six conditions standardized on the training films (mean 0, sd 1), direction last, unscaled.
    inputs = pairs.inputs.numpy()
    np.testing.assert_allclose(inputs[:, :6].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(inputs[:, :6].std(axis=0), 1, atol=1e-5)
    np.testing.assert_array_equal(inputs[:, 6], rows[DIRECTION].to_numpy())
    paired = PretrainBatches(pairs, IMAGE_PX, batch_size=4, groups=rows[FILM_ID].factorize()[0])
    for table in (b["table"] for b in paired.epoch(seed=0, epoch=0)):  # both directions of a film side by side
        assert torch.equal(table[0::2, :6], table[1::2, :6]) and (table[0::2, 6] != table[1::2, 6]).all()
    evenly = data.patches(rows, per_film=2)
    assert set(evenly.count.values()) == {2} and len(evenly.pixels) == 2 * rows[FILM_ID].nunique()
    # A transverse row sees its patch rotated by 90°.
    patch = torch.arange(4 * 4, dtype=torch.uint8).reshape(1, 1, 4, 4)
    upright, turned = model_images(patch.repeat(2, 1, 1, 1), 4, torch.tensor([False, True]))
    assert torch.equal(turned, torch.rot90(upright, 1, dims=(-2, -1)))


def test_warmup_then_linear_decay():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_linear_decay(optimizer, total_steps=20, warmup_fraction=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[:3] == pytest.approx([0.5, 1.0, 18 / 18])
    assert lrs[-1] == pytest.approx(1 / 18) and all(a >= b for a, b in zip(lrs[1:], lrs[2:]))


# ---------------------------------------------------------------- pre-training


def test_tiny_pretraining_reduces_the_loss(workspace: Path):
    recorded = json.loads((workspace / "models" / SGPT_DIR / "pretrain_config.json").read_text())
    assert recorded == json.loads(json.dumps(dataclasses.asdict(PRETRAIN)))
    seen = []  # the fixture's run finished: calling again restores it from its last checkpoint, training nothing
    result = pretrain(workspace / "data" / "processed", PRETRAIN, workspace / "models" / SGPT_DIR, progress=False,
                      on_epoch_end=seen.append)
    assert seen == []
    losses = [entry["loss"] for entry in result.history]
    assert len(losses) == PRETRAIN.epochs
    assert losses[-1] < 0.8 * losses[0]
    assert set(result.history[0]) >= {"loss", "loss_table", "loss_image", "lr"}


class Interrupt(Exception):
    pass


def test_resume_after_interruption_ends_like_an_uninterrupted_run(processed: Path, tmp_path: Path):
    config = dataclasses.replace(PRETRAIN, epochs=4)
    straight = pretrain(processed, config, tmp_path / "straight", progress=False)

    def stop_after_two(entry: dict[str, float]) -> None:
        if entry["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        pretrain(processed, config, tmp_path / "resumed", progress=False, on_epoch_end=stop_after_two)
    assert not (tmp_path / "resumed" / "model.pt").exists()
    seen = []
    resumed = pretrain(processed, config, tmp_path / "resumed", progress=False, on_epoch_end=seen.append)
    assert [entry["epoch"] for entry in seen] == [3, 4]  # continued from the epoch-2 checkpoint
    assert [e["loss"] for e in resumed.history] == [e["loss"] for e in straight.history]
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


# ---------------------------------------------------------------- property prediction and evaluation


@pytest.fixture(scope="module")
def property_data(workspace: Path) -> PropertyData:
    return PropertyData.load(workspace / "data" / "processed", workspace / "models" / SGPT_DIR, PROPERTY)


@pytest.mark.parametrize("variant", PROPERTY.variants)
def test_every_variant_predicts_the_test_rows_reproducibly(property_data: PropertyData, variant: str):
    first = fit_predict(variant, property_data, PROPERTY, seed=0)
    again = fit_predict(variant, property_data, PROPERTY, seed=0)
    assert first.prediction.shape == (2 * SPLIT_COUNTS["test"], len(PROPERTY_COLUMNS))
    assert np.isfinite(first.prediction).all()
    np.testing.assert_array_equal(first.prediction, again.prediction)


def test_frozen_variant_leaves_the_pretrained_encoder_untouched(property_data: PropertyData):
    before = {k: v.clone() for k, v in property_data.sgpt.state_dict().items()}
    fit_predict("matmcl_conditions", property_data, PROPERTY, seed=1)
    assert all(torch.equal(v, property_data.sgpt.state_dict()[k]) for k, v in before.items())


def write_ground_truth(raw: Path, processed: Path) -> None:
    table = pd.read_parquet(processed / "table.parquet")
    (raw / "ground_truth").mkdir(parents=True)
    table[[FILM_ID, DIRECTION, *PROPERTY_COLUMNS]].to_parquet(raw / "ground_truth" / "properties.parquet")


def test_evaluation_reports_have_the_documented_keys(workspace: Path, processed: Path, tmp_path: Path):
    write_ground_truth(tmp_path / "raw", processed)
    out = evaluate(processed, workspace / "models" / SGPT_DIR, tmp_path / "reports", PROPERTY, EVALUATION,
                   raw_dir=tmp_path / "raw", progress=False)
    report = json.loads((tmp_path / "reports" / "property.json").read_text())
    assert set(report["variants"]) == set(PROPERTY.variants)
    for variant in PROPERTY.variants:
        for prop in PROPERTY_COLUMNS:
            assert set(report["variants"][variant][prop]) == {"r2_mean", "r2_sd", "rmse_mean", "rmse_sd"}
    # The structure ceiling here is the measured table itself: R² = 1.
    assert report["oracle_r2_structure"] == {prop: pytest.approx(1.0) for prop in PROPERTY_COLUMNS}
    assert set(report["oracle_r2_conditions"]) == set(PROPERTY_COLUMNS)
    alignment = json.loads((tmp_path / "reports" / "alignment.json").read_text())
    assert {"similarity", "ipr", "feature_correlation", "knn_probe_r2"} <= set(alignment)
    assert set(alignment["knn_probe_r2"]) == {"conditions", "condition_embedding", "image_embedding",
                                              "fused_embedding"}
    assert all(Path(p).is_file() for p in out["plots"])
    assert (tmp_path / "reports" / "evaluation" / "parity_matmcl_fusion.png").is_file()


def test_evaluation_without_ground_truth_omits_ceilings(workspace: Path, processed: Path, tmp_path: Path):
    config = dataclasses.replace(PROPERTY, variants=("ridge_conditions",), seeds=(0,))
    report = evaluate(processed, workspace / "models" / SGPT_DIR, tmp_path, config, EVALUATION,
                      progress=False)["property"]
    assert "oracle_r2_conditions" not in report and "oracle_r2_structure" not in report
    assert any("ground truth" in note for note in report["notes"])


# ---------------------------------------------------------------- prediction


@pytest.fixture(scope="module")
def predictor(workspace: Path) -> Predictor:
    return Predictor.load(workspace / "models", workspace / "data" / "processed")


def known_conditions(processed: Path, n: int = 3) -> pd.DataFrame:
    table = pd.read_parquet(processed / "table.parquet")
    return table[table["split"] == "train"].drop_duplicates(FILM_ID)[list(CONDITION_COLUMNS)].head(n)


def test_prediction_on_known_conditions_is_reproducible(workspace: Path, processed: Path, predictor: Predictor):
    conditions = known_conditions(processed)
    first = predictor.predict(conditions)
    second = Predictor.load(workspace / "models", processed).predict(conditions)
    pd.testing.assert_frame_equal(first, second)
    assert len(first) == 2 * len(conditions)
    assert first.groupby("row")[DIRECTION].apply(sorted).tolist() == [[0, 1]] * len(conditions)
    assert (first["model"] == "matmcl_conditions").all() and (first["out_of_range"] == "").all()
    assert np.isfinite(first[list(PROPERTY_COLUMNS)].to_numpy()).all()


def test_prediction_with_patches_uses_the_fusion_head(processed: Path, predictor: Predictor):
    conditions = known_conditions(processed, 2)
    patches = [np.asarray(Image.open(processed / "patches/F0001/F0001_f0_p0.png"))]
    result = predictor.predict(conditions, [None, patches])
    assert result.loc[result["row"] == 1, "model"].eq("matmcl_fusion").all()
    assert result.loc[result["row"] == 0, "model"].eq("matmcl_conditions").all()
    np.testing.assert_allclose(result[result["row"] == 0][list(PROPERTY_COLUMNS)],
                               predictor.predict(conditions.head(1))[list(PROPERTY_COLUMNS)], rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.drop(columns="voltage_kv"), r"missing condition column\(s\) \['voltage_kv'\]"),
        (lambda c: c.assign(humidity_pct=[40.0, np.nan, 41.0]),
         r"missing \(NaN\) value of humidity_pct in row\(s\) \[1\]"),
        (lambda c: c.assign(voltage_kv=["15", "high", "16"]), r"non-numeric value of voltage_kv in row\(s\) \[1\]"),
        (lambda c: c.iloc[:0], "no condition rows"),
    ],
)
def test_bad_conditions_give_clear_errors(processed: Path, predictor: Predictor, change, message):
    with pytest.raises(PredictionInputError, match=message):
        predictor.predict(change(known_conditions(processed)))


def test_bad_images_give_clear_errors(processed: Path, predictor: Predictor):
    conditions = known_conditions(processed, 2)
    with pytest.raises(PredictionInputError, match="1 image entries for 2 condition rows"):
        predictor.predict(conditions, [None])
    with pytest.raises(PredictionInputError, match="row 1, patch 0: need a 2-D uint8"):
        predictor.predict(conditions, [None, [np.zeros((8, 8), dtype=float)]])


def test_out_of_range_conditions_are_predicted_with_a_warning(processed: Path, predictor: Predictor, caplog):
    conditions = known_conditions(processed).assign(drum_speed_rpm=[100.0, 1e5, 200.0])
    with caplog.at_level(logging.WARNING, logger="matmcl.predict"):
        result = predictor.predict(conditions)
    assert result.loc[result["row"] == 1, "out_of_range"].eq("drum_speed_rpm").all()
    assert "row 1: drum_speed_rpm" in caplog.text


def test_predict_command_writes_both_directions(workspace: Path, processed: Path, tmp_path: Path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--workspace", default=str(workspace))
    add_predict_arguments(parser)
    row = known_conditions(processed, 1).iloc[0]
    flags = [f"--{c.replace('_', '-')}={row[c]}" for c in CONDITION_COLUMNS]
    assert cmd_predict(parser.parse_args([*flags, "--out", str(tmp_path / "p.csv")])) == 0
    written = pd.read_csv(tmp_path / "p.csv")
    assert written["direction_name"].tolist() == ["transverse", "longitudinal"]
    with pytest.raises(PredictionInputError, match="no conditions"):
        cmd_predict(parser.parse_args([]))


# ---------------------------------------------------------------- tracking


def test_data_version_follows_the_tables(processed: Path, tmp_path: Path):
    assert data_version(processed) == content_hash(processed)  # no dvc.lock, no stored version
    copy = tmp_path / "processed"
    copy.mkdir()
    for name in ("table.parquet", "scaler.json"):
        (copy / name).write_bytes((processed / name).read_bytes())
    first = content_hash(copy)
    pd.read_parquet(copy / "table.parquet").head(4).to_parquet(copy / "table.parquet")
    assert content_hash(copy) != first
    scaler = json.loads((copy / "scaler.json").read_text())
    (copy / "scaler.json").write_text(json.dumps({**scaler, "data_version": "abc123"}))
    assert data_version(copy) == "abc123"


def test_tracking_disabled_is_a_no_op():
    with tracking_run(TrackingConfig(mlflow_uri="sqlite:////nonexistent/x.db"), "r", enabled=False) as run:
        assert isinstance(run, NullRun)
        run.log_metrics({"loss": 1.0})


@pytest.mark.slow
def test_tracking_logs_run_model_alias_and_lineage(workspace: Path, tmp_path: Path, monkeypatch):
    import mlflow

    from matmcl.models.sgpt import SGPTModel

    monkeypatch.chdir(tmp_path)  # artifacts go below the working directory
    config = TrackingConfig(mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="test")
    table = pd.read_parquet(workspace / "data" / "processed" / "table.parquet")
    with tracking_run(config, "pretrain", data_version="v1", dagster_run_id="dagster-42") as run:
        run.log_params({"pretrain": {"lr": 0.1}})
        run.log_metrics({"loss": 2.0, "per": {"table": 1.0, "skipped": float("nan")}}, step=1)
        run.log_dataset(table, "processed_table", workspace / "data" / "processed" / "table.parquet")
        run.log_model(SGPTModel.from_pretrained(workspace / "models" / SGPT_DIR), "sgpt", "matmcl-sgpt", "smoke")
    client = mlflow.MlflowClient(tracking_uri=config.mlflow_uri)
    logged = client.get_run(run.run_id)
    assert logged.data.tags["data_version"] == "v1" and logged.data.tags["dagster_run_id"] == "dagster-42"
    assert logged.data.tags["git_commit"]
    assert logged.data.params == {"pretrain.lr": "0.1"}
    assert logged.data.metrics == {"loss": 2.0, "per.table": 1.0}
    assert [d.dataset.name for d in logged.inputs.dataset_inputs] == ["processed_table"]
    assert client.get_model_version_by_alias("matmcl-sgpt", "smoke").run_id == run.run_id


def test_transformer_style_pretrains_through_the_same_loop(processed: Path, tmp_path: Path):
    config = dataclasses.replace(PRETRAIN, style="transformer", epochs=4)
    result = pretrain(processed, config, tmp_path / "sgpt", progress=False)
    losses = [entry["loss"] for entry in result.history]
    assert losses[-1] < losses[0]
    assert type(result.model.fusion).__name__ == "CrossAttentionFusion"
