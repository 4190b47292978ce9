"""Tests of SGPT pre-training, property prediction, evaluation reports, prediction, model lineage and the tracked
stages (with the MLflow pyfunc), on a tiny fabricated processed folder (docs/processed-format.md) with a tiny
model."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from matmcl import cli
from matmcl.artifacts import HEADS_DIR, SGPT_DIR
from matmcl.codebase import code_version
from matmcl.lineage import LineageError, data_version, fingerprint, params_hash, read_lineage
from matmcl.predict import PredictionInputError, Predictor
from matmcl.predict_cli import add_predict_arguments, cmd_predict
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, DIRECTION, FEATURE_COLUMNS, FILM_ID, PROPERTY_COLUMNS
from matmcl.stages import training as stages
from matmcl.stages.context import StageContext
from matmcl.tracking import PARENT_TAG, PIPELINE_TAG, STAGE_TAG
from matmcl.training import properties
from matmcl.training.config import EvaluationConfig, PretrainConfig, PropertyConfig
from matmcl.training.data import PretrainBatches, ProcessedData, RowPatches, model_images
from matmcl.training.evaluate import evaluate
from matmcl.training.pretrain import pretrain, warmup_linear_decay
from matmcl.training.properties import FUSION_INPUTS, PropertyData, fit_predict, head_metadata, train_heads

REPO = Path(__file__).resolve().parents[1]
SERVED = ("matmcl_conditions", "matmcl_fusion")
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
    property_data.frozen_fits.clear()  # fit again, not the cached frozen-input head
    again = fit_predict(variant, property_data, PROPERTY, seed=0)
    assert first.prediction.shape == (2 * SPLIT_COUNTS["test"], len(PROPERTY_COLUMNS))
    assert np.isfinite(first.prediction).all()
    np.testing.assert_array_equal(first.prediction, again.prediction)


def test_fusion_reuses_the_fused_design_fit_for_the_frozen_variant(property_data: PropertyData):
    property_data.frozen_fits.clear()
    fit_predict("matmcl_fusion", property_data, PROPERTY, seed=0)
    assert len(property_data.frozen_fits) == len(PROPERTY.fusion_designs)
    reused = fit_predict("matmcl_fusion_frozen", property_data, PROPERTY, seed=0)
    assert len(property_data.frozen_fits) == len(PROPERTY.fusion_designs)  # the "fused" design's head, not a new one
    property_data.frozen_fits.clear()
    np.testing.assert_array_equal(reused.prediction,
                                  fit_predict("matmcl_fusion_frozen", property_data, PROPERTY, seed=0).prediction)


def test_frozen_variant_leaves_the_pretrained_encoder_untouched(property_data: PropertyData):
    before = {k: v.clone() for k, v in property_data.sgpt.state_dict().items()}
    fit_predict("matmcl_conditions", property_data, PROPERTY, seed=1)
    assert all(torch.equal(v, property_data.sgpt.state_dict()[k]) for k, v in before.items())


def write_ground_truth(raw: Path, processed: Path) -> None:
    table = pd.read_parquet(processed / "table.parquet")
    (raw / "ground_truth").mkdir(parents=True)
    truth = table[[FILM_ID, DIRECTION, *PROPERTY_COLUMNS]].assign(knee_sharpness=0.5)
    truth.to_parquet(raw / "ground_truth" / "properties.parquet")


CV_EVALUATION = dataclasses.replace(EVALUATION, folds=2, bootstrap=20, learning_curve=(0.5, 1.0), ablations=True)
CV_PROPERTY = dataclasses.replace(PROPERTY, seeds=(0,), fusion_designs=("fused", "table_image"))
CV_PRETRAIN = dataclasses.replace(PRETRAIN, epochs=2)


@pytest.fixture(scope="module")
def cv_reports(workspace: Path, processed: Path, tmp_path_factory) -> tuple[dict, Path]:
    tmp_path = tmp_path_factory.mktemp("cv")
    write_ground_truth(tmp_path / "raw", processed)
    out = evaluate(processed, workspace / "models" / SGPT_DIR, tmp_path / "reports", CV_PROPERTY, CV_EVALUATION,
                   raw_dir=tmp_path / "raw", progress=False, pretrain_config=CV_PRETRAIN)
    return out, tmp_path / "reports"


def test_evaluation_reports_have_the_documented_keys(cv_reports):
    out, reports = cv_reports
    report = json.loads((reports / "property.json").read_text())
    assert report["protocol"]["folds"] == 2 and report["protocol"]["repeats"] == 1
    assert report["protocol"]["n_films"] == N_FILMS
    assert set(report["variants"]) == set(CV_PROPERTY.variants)
    for variant in CV_PROPERTY.variants:
        for prop in PROPERTY_COLUMNS:
            entry = report["variants"][variant][prop]
            assert {"r2_mean", "r2_sd", "r2_ci95", "r2_L_mean", "r2_T_mean", "r2_dir_mean", "r2_dir_ci95",
                    "rmse_mean"} <= set(entry)
            assert len(report["per_fold"][variant]) == 2
    # The structure ceiling here is the measured table itself times the extraction bias of simulated specimens. The
    # tiny table's random yield strengths, tangents and strains make no curve the lab could log (their specimens
    # are made feasible first), but its fracture strengths and moduli do: for those the bias is ≈ 1 and the ceiling
    # R² ≈ 1 pooled and within each direction, and below that against re-simulated measurements (specimen noise).
    bias = report["ceiling_extraction_bias"]
    assert set(bias) == set(PROPERTY_COLUMNS) and all(b > 0 for b in bias.values())
    for prop in ("fracture_strength_mpa", "elastic_modulus_mpa"):
        assert bias[prop] == pytest.approx(1.0, abs=0.02)
        ceiling = report["ceilings"]["structure"][prop]
        assert ceiling["r2_mean"] > 0.99 and ceiling["r2_L_mean"] > 0.98 and ceiling["r2_T_mean"] > 0.98
        assert 0.5 < report["ceilings_expected"]["structure"][prop]["r2_mean"] < ceiling["r2_mean"]
    for name in ("conditions", "structure"):
        assert set(report["ceilings"][name]) == set(report["ceilings_expected"][name]) == set(PROPERTY_COLUMNS)
    pair = report["paired"]["matmcl_conditions__vs__gbm_conditions"]["fracture_strength_mpa"]
    assert {"delta_r2_mean", "delta_r2_ci95", "folds_won"} <= set(pair) and 0 <= pair["folds_won"] <= 2
    assert set(report["fusion_choices"]) <= {"fused", "table_image"} and len(report["fusion_choices"]) == 2
    assert "matmcl_conditions_clip" in report["ablations"]
    assert set(report["learning_curve"]["variants"]["no_sgpt"]) == {"0.5", "1.0"}
    # each fold's SGPT records its contrastive loss on the fold's inner-validation films, per epoch
    history = report["pretrain_history"]
    assert history["epoch"] == [1, 2] and len(history["val_loss_mean"]) == 2
    assert all(np.isfinite(history["val_loss_mean"])) and len(history["best_val_epoch"]) == 2
    lo, hi = report["variants"]["ridge_conditions"]["fracture_strength_mpa"]["r2_L_ci95"]
    assert lo <= hi
    alignment = json.loads((reports / "alignment.json").read_text())
    assert {"similarity", "ipr", "feature_correlation", "knn_probe_r2"} <= set(alignment)
    assert all(Path(p).is_file() for p in out["plots"])
    assert (reports / "evaluation" / "parity_matmcl_fusion.png").is_file()
    assert (reports / "evaluation" / "paired_forest.png").is_file()


def test_evaluation_without_ground_truth_omits_ceilings(workspace: Path, processed: Path, tmp_path: Path):
    config = dataclasses.replace(PROPERTY, variants=("ridge_conditions",), seeds=(0,))
    evaluation = dataclasses.replace(CV_EVALUATION, ablations=False, learning_curve=(1.0,),
                                     learning_curve_variants=("ridge_conditions",), paired=())
    report = evaluate(processed, workspace / "models" / SGPT_DIR, tmp_path, config, evaluation,
                      progress=False, pretrain_config=CV_PRETRAIN)["property"]
    assert "ceilings" not in report
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


@pytest.mark.parametrize("design", list(FUSION_INPUTS))
def test_predictor_rebuilds_the_inputs_each_fusion_design_was_trained_on(
        predictor: Predictor, property_data: PropertyData, design: str):
    modality = FUSION_INPUTS[design]
    stats = property_data.joint_stats(modality) if "+" in modality else None
    served = dataclasses.replace(predictor, fusion_design=design, joint_stats=stats)
    rebuilt = served._fusion_inputs(property_data.pairs("val"))
    trained = property_data.inputs("val", modality)
    torch.testing.assert_close(rebuilt.values, trained.values, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rebuilt.row, trained.row)


def test_served_fusion_head_records_the_design_chosen_on_validation(workspace: Path, predictor: Predictor):
    meta = head_metadata(workspace / "models" / HEADS_DIR / "matmcl_fusion")
    assert meta["design"] in FUSION_INPUTS and predictor.fusion_design == meta["design"]
    assert ("joint_mean" in meta) == ("+" in FUSION_INPUTS[meta["design"]])


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


def test_transformer_style_pretrains_through_the_same_loop(processed: Path, tmp_path: Path):
    config = dataclasses.replace(PRETRAIN, style="transformer", epochs=4)
    result = pretrain(processed, config, tmp_path / "sgpt", progress=False)
    losses = [entry["loss"] for entry in result.history]
    assert losses[-1] < losses[0]
    assert type(result.model.fusion).__name__ == "CrossAttentionFusion"


# ---------------------------------------------------------------- lineage


def copy_workspace(workspace: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the trained workspace (to break) and its processed folder."""
    root = shutil.copytree(workspace, tmp_path / "ws")
    return root, root / "data" / "processed"


def test_model_folders_record_data_params_code_and_parent(workspace: Path, processed: Path):
    models = workspace / "models"
    sgpt = read_lineage(models / SGPT_DIR, "pretrain")
    assert sgpt.data_version == data_version(processed) and sgpt.parents == {}
    assert sgpt.params_hash == params_hash({"pretrain": PRETRAIN})
    assert sgpt.code_version == code_version("matmcl.training.pretrain")
    assert sgpt.fingerprint == fingerprint(models / SGPT_DIR)
    for variant in SERVED:
        head = read_lineage(models / HEADS_DIR / variant, "heads")
        assert head.data_version == sgpt.data_version and head.parents == {"sgpt": sgpt.fingerprint}
        assert head.params_hash == params_hash({"property": PROPERTY})
        assert head.code_version == code_version("matmcl.training.properties")
        assert head.fingerprint == fingerprint(models / HEADS_DIR / variant)
    # Folders are swapped in whole: no temporary siblings; the checkpoint lives outside the model folder.
    assert sorted(p.name for p in models.iterdir()) == [".sgpt_checkpoint", HEADS_DIR, SGPT_DIR]


def test_heads_of_a_replaced_sgpt_model_are_refused(workspace: Path, tmp_path: Path):
    """What a kill between `pretrain` and `heads` leaves: a new SGPT model beside heads trained on the old one."""
    root, processed = copy_workspace(workspace, tmp_path)
    old = fingerprint(root / "models" / SGPT_DIR)
    pretrain(processed, dataclasses.replace(PRETRAIN, seed=1, epochs=1), root / "models" / SGPT_DIR, progress=False)
    new = fingerprint(root / "models" / SGPT_DIR)
    version = data_version(processed)
    message = (rf"property/matmcl_\w+ was trained on data {version} / sgpt {old}, but the workspace has data "
               rf"{version} / sgpt {new}: rerun `matmcl heads`")
    with pytest.raises(LineageError, match=message):
        Predictor.load(root / "models", processed)
    flags = [f"--{c.replace('_', '-')}={v}" for c, v in known_conditions(processed, 1).iloc[0].items()]
    argv = ["--workspace", str(root), "--params", str(REPO / "params.yaml"), "--profile", "smoke", "predict", *flags]
    assert cli.main(argv) == cli.EXIT_USER_ERROR


def test_models_refuse_other_data(workspace: Path, tmp_path: Path):
    """What a second `matmcl run` with other parameters leaves if it stops after the data stages: new data, old
    models."""
    root, processed = copy_workspace(workspace, tmp_path)
    old = data_version(processed)
    make_processed(processed, seed=1)
    new = data_version(processed)
    assert new != old
    message = rf"sgpt was trained on data {old}, but the workspace has data {new}: rerun `matmcl pretrain`"
    for refused in (lambda: Predictor.load(root / "models", processed),
                    lambda: train_heads(processed, root / "models", PROPERTY),
                    lambda: evaluate(processed, root / "models" / SGPT_DIR, tmp_path / "reports", PROPERTY,
                                     EVALUATION, progress=False)):
        with pytest.raises(LineageError, match=message):
            refused()


def test_failed_heads_leave_the_served_heads_untouched(workspace: Path, tmp_path: Path, monkeypatch):
    root, processed = copy_workspace(workspace, tmp_path)
    heads = root / "models" / HEADS_DIR
    before = {variant: fingerprint(heads / variant) for variant in SERVED}
    def fail(*args, **kwargs):
        raise Interrupt

    monkeypatch.setitem(properties.SERVED_FITTERS, "matmcl_fusion", fail)  # killed on the second variant
    with pytest.raises(Interrupt):
        train_heads(processed, root / "models", PROPERTY)
    assert {variant: fingerprint(heads / variant) for variant in SERVED} == before
    assert sorted(p.name for p in (root / "models").iterdir()) == [".sgpt_checkpoint", HEADS_DIR, SGPT_DIR]


# ---------------------------------------------------------------- tracked stages and the MLflow pyfunc


@pytest.mark.slow
def test_stages_log_nested_runs_and_a_pyfunc_that_needs_no_workspace(workspace: Path, tmp_path: Path,
                                                                      mlflow_store: str):
    import mlflow

    root, processed = copy_workspace(workspace, tmp_path)
    ctx = dataclasses.replace(StageContext.load(root, REPO / "params.yaml", "smoke", progress=False),
                              run_id="pipeline-run-1")
    assert stages.pretrain(ctx).plots["loss"].is_file()
    heads = stages.heads(ctx).metrics
    version = data_version(processed)
    assert heads["data_version"] == version
    assert json.loads((root / "reports" / "pretrain.json").read_text())["data_version"] == version

    client = mlflow.MlflowClient(mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("matmcl").experiment_id],
                              filter_string=f"tags.`{PIPELINE_TAG}` = 'pipeline-run-1'")
    by_stage = {run.data.tags[STAGE_TAG]: run for run in runs}
    assert sorted(by_stage) == ["heads", "pipeline", "pretrain"] and len(runs) == 3
    parent = by_stage["pipeline"].info.run_id
    assert by_stage["pretrain"].data.tags[PARENT_TAG] == parent == by_stage["heads"].data.tags[PARENT_TAG]
    for run in runs:
        tags = run.data.tags
        assert tags["data_version"] == version and tags["profile"] == "smoke" and tags["git_commit"]
        assert "dagster_run_id" not in tags  # not a Dagster run id
    assert by_stage["heads"].data.tags["code_version"] == code_version("matmcl.training.properties")
    assert by_stage["pipeline"].info.status == "FINISHED"

    conditions = known_conditions(processed, 2)
    expected = Predictor.load(root / "models", processed).predict(conditions)
    shutil.rmtree(root)  # the registered model carries everything it needs
    model = mlflow.pyfunc.load_model("models:/matmcl-matmcl_conditions@smoke")
    assert model.metadata.get_input_schema().input_names() == [*CONDITION_COLUMNS, DIRECTION]
    assert model.metadata.get_output_schema().input_names() == list(PROPERTY_COLUMNS)
    assert model.metadata.saved_input_example_info is not None
    predicted = model.predict(expected[[*CONDITION_COLUMNS, DIRECTION]])
    np.testing.assert_allclose(predicted[list(PROPERTY_COLUMNS)], expected[list(PROPERTY_COLUMNS)], rtol=1e-6)
    with pytest.raises(PredictionInputError, match=r"direction must be 1 \(longitudinal\) or 0"):
        model.predict(expected[[*CONDITION_COLUMNS, DIRECTION]].assign(direction=2))


def test_tune_searches_head_settings_on_one_folds_inner_validation(processed: Path):
    from matmcl.training.tune import tune

    seen = []
    result = tune(processed, CV_PRETRAIN, dataclasses.replace(PROPERTY, seeds=(0,), max_epochs=5),
                  dataclasses.replace(EVALUATION, folds=2), n_trials=3, on_trial=lambda n, p, v: seen.append((n, v)))
    assert [n for n, _ in seen] == [0, 1, 2] and len(result["trials"]) == 3
    assert result["best_inner_val_rmse"] == pytest.approx(min(v for _, v in seen))
    assert set(result["best_params"]) == {"lr", "weight_decay", "dropout", "hidden_width"}
    # scored on the inner-validation films only: inner train + inner validation leave the fold's test films out
    assert result["n_inner_train_films"] + result["n_inner_val_films"] < N_FILMS
