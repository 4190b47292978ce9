"""The composite stage's work: FP stages, the ablation protocol, the served model, screening, report and plots.

Model folder `models/composite/` (swapped in whole): `nanofiber_fp/` (stage S+FP: the SGPT table encoder fine-tuned
on nanofiber properties; lineage parents: data version, SGPT fingerprint) and `msl/` (the served S+FP+CP model,
refit on all composites with the decay most often chosen on inner validation and the median chosen epoch; lineage
parents: data version, composite data version, SGPT and nanofiber_fp fingerprints). `CompositePredictor`
(matmcl.composites.serving) refuses the folder when any of these differ from the workspace's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from matmcl.artifacts import COMPOSITE_DIR, COMPOSITE_PLOTS_DIR, COMPOSITE_TABLE_FILE, SCALER_FILE, SGPT_DIR, stage_report
from matmcl.atomic import atomic_dir, write_csv
from matmcl.codebase import code_version
from matmcl.composites.config import BASELINE, MSL, CompositeConfig
from matmcl.composites.msl import (
    NEURAL,
    CompositeData,
    FoldResult,
    Starts,
    conditions_frame,
    fit_cp,
    model_config,
    predict,
    run_ablation,
    train_fp,
)
from matmcl.composites.model import save_model
from matmcl.composites.plots import plot_parity, plot_screening
from matmcl.composites.screening import fabricate, screen, verify
from matmcl.config import SynthConfig, Workspace, section
from matmcl.evaluation.stats import mean_ci, paired
from matmcl.hashing import hash_files
from matmcl.lineage import DATA, Lineage, params_hash, write_lineage
from matmcl.schema import DIRECTION, DIRECTION_NAMES, PROPERTY_COLUMNS
from matmcl.tracking import resolve_tracking, tracking_run
from matmcl.training.pretrain import check_sgpt, load_sgpt

log = logging.getLogger(__name__)

FP_DIR, MSL_DIR = "nanofiber_fp", "msl"
COMPOSITE_DATA = "composite_data"  # lineage key of the composite table's content hash
NANOFIBER_FP = "nanofiber_fp"
MODEL_NAME = "matmcl-composite"
SCREEN_TABLE = "screening_candidates.csv"


def composite_data_version(processed_dir: str | Path) -> str:
    """Content hash (16 hex) of the composite table and the condition scaler the composite model reads."""
    return hash_files((name, Path(processed_dir) / name) for name in (COMPOSITE_TABLE_FILE, SCALER_FILE))


def expected_sources(models_dir: str | Path, processed_dir: str | Path) -> dict[str, str]:
    """What the served composite model must have been made from: data and composite data versions, SGPT."""
    return {**check_sgpt(Path(models_dir) / SGPT_DIR, processed_dir),
            COMPOSITE_DATA: composite_data_version(processed_dir)}


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    ok = np.isfinite(y)
    return float(np.sqrt(np.mean((y[ok] - p[ok]) ** 2))) if ok.any() else float("nan")


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    ok = np.isfinite(y)
    ss = np.sum((y[ok] - y[ok].mean()) ** 2)
    return float(1 - np.sum((y[ok] - p[ok]) ** 2) / ss) if ok.sum() > 1 and ss > 0 else float("nan")


def _summary(values: list[float]) -> dict[str, Any]:
    values_arr = np.asarray(values, dtype=float)
    return {"mean": float(np.nanmean(values_arr)), "sd": float(np.nanstd(values_arr, ddof=1)),
            "ci95": list(mean_ci(values_arr))}


def fold_scores(results: list[FoldResult], y: np.ndarray, directions: np.ndarray
                ) -> dict[str, dict[str, dict[str, list[float]]]]:
    """scores[metric][variant][property (or property@direction)] = one value per fold, in fold order."""
    scores: dict[str, dict[str, dict[str, list[float]]]] = {"rmse": {}, "r2": {}}
    for result in results:
        for metric, fn in (("rmse", _rmse), ("r2", _r2)):
            per = scores[metric].setdefault(result.variant, {})
            for j, prop in enumerate(PROPERTY_COLUMNS):
                truth = y[result.test, j]
                per.setdefault(prop, []).append(fn(truth, result.prediction[:, j]))
                for flag, name in DIRECTION_NAMES.items():
                    rows = directions[result.test] == flag
                    per.setdefault(f"{prop}@{name}", []).append(fn(truth[rows], result.prediction[rows, j]))
    return scores


def summarize(results: list[FoldResult], data: CompositeData, config: CompositeConfig) -> dict[str, Any]:
    """The report's rmse / r2 / paired / by-direction sections and the targets."""
    y, directions = data.composites.y, data.composites.frame[DIRECTION].to_numpy()
    scores = fold_scores(results, y, directions)
    variants = list(scores["rmse"])
    report: dict[str, Any] = {"rmse": {}, "r2": {}, "paired": {}, "by_direction": {}}
    for variant in variants:
        rmse, r2 = scores["rmse"][variant], scores["r2"][variant]
        report["rmse"][variant] = {p: _summary(rmse[p]) for p in PROPERTY_COLUMNS}
        report["r2"][variant] = {p: _summary(r2[p]) for p in PROPERTY_COLUMNS}
        report["by_direction"][variant] = {
            name: {p: {"rmse": _summary(rmse[f"{p}@{name}"])["mean"], "r2": _summary(r2[f"{p}@{name}"])["mean"]}
                   for p in PROPERTY_COLUMNS} for name in DIRECTION_NAMES.values()}
        if variant != BASELINE:
            report["paired"][f"{variant}__vs__{BASELINE}"] = {
                p: paired(rmse[p], scores["rmse"][BASELINE][p], higher_is_better=False).as_dict("delta_rmse")
                for p in PROPERTY_COLUMNS}
    chosen = [r for r in results if r.variant in NEURAL]
    report["inner_validation"] = {
        v: {"decays": dict(Counter(str(r.decay) for r in chosen if r.variant == v)),
            "median_epoch": float(np.median([r.best_epoch for r in chosen if r.variant == v]))}
        for v in dict.fromkeys(r.variant for r in chosen)}
    report["targets"] = targets(scores["rmse"], report)
    return report


def targets(rmse: dict[str, dict[str, list[float]]], report: dict[str, Any]) -> dict[str, Any]:
    """S+FP+CP vs CP on fracture strength, and on how many properties S+FP+CP is best or tied-best (tied: the paired
    95 % CI of its RMSE difference to the best variant contains 0)."""
    if MSL not in rmse:
        return {}
    strength = "fracture_strength_mpa"
    reduction = 1 - report["rmse"][MSL][strength]["mean"] / report["rmse"][BASELINE][strength]["mean"]
    best_or_tied = []
    for prop in PROPERTY_COLUMNS:
        best = min(rmse, key=lambda v: np.nanmean(rmse[v][prop]))
        if best == MSL:
            best_or_tied.append(prop)
            continue
        low, _ = paired(rmse[MSL][prop], rmse[best][prop], higher_is_better=False).delta_ci95
        if low <= 0:
            best_or_tied.append(prop)
    return {"fracture_strength_rmse_reduction_vs_CP": float(reduction),
            "fracture_strength_reduction_met": bool(reduction >= 0.30),
            "best_or_tied_best_properties": best_or_tied, "best_or_tied_best_met": len(best_or_tied) >= 4}


def _predictor(regressor, targets, scaler) -> Any:
    def run(conditions: pd.DataFrame) -> pd.DataFrame:
        rows = conditions_frame(conditions)
        out = rows[["row", DIRECTION]].copy()
        out[list(PROPERTY_COLUMNS)] = predict(regressor, scaler.inputs(rows), targets)
        return out
    return run


def _oof_strength(results: list[FoldResult], data: CompositeData) -> dict[str, np.ndarray]:
    """Out-of-fold fracture-strength predictions of the first repeat, per variant (for the parity plot)."""
    n = len(data.composites)
    out: dict[str, np.ndarray] = {}
    for result in results:
        if result.repeat == 0:
            out.setdefault(result.variant, np.full(n, np.nan))[result.test] = result.prediction[:, 0]
    return out


def run_composite(workspace: Workspace, params: dict[str, Any], run_id: str | None = None, progress: bool = True
                  ) -> tuple[dict[str, Any], dict[str, Path]]:
    """Everything the composite stage does; returns reports/composite.json's content and the plots."""
    config = section(params, "composite", CompositeConfig)
    synth = section(params, "synth", SynthConfig)
    start = time.perf_counter()
    sources = expected_sources(workspace.models, workspace.processed)
    sgpt, _ = load_sgpt(workspace.models / SGPT_DIR)
    data = CompositeData.load(workspace.processed)
    starts = Starts(model_config(sgpt, config), sgpt)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is as fast and leaves the other core to the rest
    try:
        timings: dict[str, float] = {}
        fp = train_fp(starts.s, data, config, config.seed)
        starts.fp_sgpt = fp.regressor.state_dict()
        if "FP+CP" in config.variants:
            starts.fp_random = train_fp(starts.random, data, config, config.seed).regressor.state_dict()
        timings["fp"] = time.perf_counter() - start
        features = predict(fp.regressor, data.composites.x, fp.targets)
        results = run_ablation(data, starts, features, config, progress)
        timings["ablation"] = time.perf_counter() - start - timings["fp"]
        report = summarize(results, data, config)
        msl_runs = [r for r in results if r.variant == MSL]
        decay = float(Counter(r.decay for r in msl_runs).most_common(1)[0][0]) if msl_runs else config.layer_decay
        epochs = int(np.median([r.best_epoch for r in msl_runs])) if msl_runs else config.cp_max_epochs
        served = fit_cp(starts.fp(starts.fp_sgpt, "S+FP"), data.composites, None, decay, config, config.seed, epochs)
    finally:
        torch.set_num_threads(threads)
    params_digest = params_hash({"composite": config})
    code = code_version(__name__)
    with atomic_dir(workspace.models / COMPOSITE_DIR) as tmp:
        save_model(tmp / FP_DIR, fp.regressor, starts.model_config, fp.targets, stage="S+FP", best_epoch=fp.best_epoch)
        fp_lineage = write_lineage(tmp / FP_DIR, Lineage.of(
            {DATA: sources[DATA], SGPT_DIR: sources[SGPT_DIR]}, params_digest, code))
        save_model(tmp / MSL_DIR, served.regressor, starts.model_config, served.targets, stage=MSL, decay=decay,
                   epochs=epochs)
        msl_lineage = write_lineage(tmp / MSL_DIR, Lineage.of(
            {**sources, NANOFIBER_FP: fp_lineage.fingerprint}, params_digest, code))
    scaler = data.scaler
    table, picks = screen(_predictor(fp.regressor, fp.targets, scaler),
                          _predictor(served.regressor, served.targets, scaler),
                          config.screen_candidates, config.screen_top, config.screen_random, config.seed)
    screening: dict[str, Any] = {"n_screened": len(table)}
    plots_dir = workspace.reports / COMPOSITE_PLOTS_DIR
    plots = {"parity": plot_parity(data.composites.y[:, 0], _oof_strength(results, data), config.parity_band_mpa,
                                   plots_dir / "parity_fracture_strength.png")}
    if workspace.uses_virtual_lab:
        measured = fabricate(picks, config.screen_fabrications, synth.n_replicates, synth.strain_step_pct, config.seed)
        candidates, medians = verify(picks, measured)
        screening.update(candidates=candidates, median_rel_error=medians["fracture_strength"],
                         median_rel_error_by_property=medians, n_fabrications=config.screen_fabrications,
                         n_replicates=synth.n_replicates)
        plots["screening"] = plot_screening(candidates, plots_dir / "screening.png")
    else:
        screening["candidates"] = picks.to_dict(orient="records")
        screening["note"] = "raw data is a lab's own: candidates are predicted only (fabricate them to verify)"
    write_csv(picks, plots_dir / SCREEN_TABLE)
    report["screening"] = screening
    report["protocol"] = {"folds": config.folds, "repeats": config.repeats,
                          "n_composites": int(data.composites.frame["composite_id"].nunique()),
                          "n_rows": len(data.composites), "grouping": "film_id",
                          "n_fp_train_films": int(np.unique(data.fp_train.groups).size),
                          "fp_excludes_composite_films": True, "layer_decay_grid": list(config.decays),
                          "served": {"decay": decay, "epochs": epochs}}
    report["fp"] = {"best_epoch": fp.best_epoch, "val_standardized_rmse": fp.val_score}
    report["lineage"] = {"msl": dataclasses.asdict(msl_lineage), "nanofiber_fp": dataclasses.asdict(fp_lineage)}
    report["timing"] = {k: round(v, 2) for k, v in timings.items()}
    report["data_version"] = sources[DATA]
    _track(workspace, params, run_id, report, plots, served.regressor, sources, msl_lineage, fp_lineage)
    report["mlflow_run_id"] = report.pop("_mlflow_run_id", None)
    return report, plots


def _mlflow_names(metrics: Any) -> Any:
    """MLflow metric names allow no "+": S+FP+CP → S-FP-CP."""
    if isinstance(metrics, dict):
        return {str(k).replace("+", "-"): _mlflow_names(v) for k, v in metrics.items()}
    return metrics


def _sgpt_run(workspace: Workspace, sgpt_fingerprint: str) -> str | None:
    """The MLflow run that logged this SGPT model (reports/pretrain.json, when its fingerprint matches)."""
    path = workspace.reports / stage_report("pretrain")
    if path.is_file():
        doc = json.loads(path.read_text())
        if doc.get("fingerprint") == sgpt_fingerprint:
            return doc.get("mlflow_run_id")
    return None


def _track(workspace: Workspace, params: dict[str, Any], run_id: str | None, report: dict[str, Any],
           plots: dict[str, Path], model, sources: dict[str, str], msl: Lineage, fp: Lineage) -> None:
    tags = {"data_version": sources[DATA], "code_version": code_version(__name__), "profile": params["profile"],
            "parent.sgpt.fingerprint": sources[SGPT_DIR], "parent.nanofiber_fp.fingerprint": fp.fingerprint,
            "composite_data_version": sources[COMPOSITE_DATA], "fingerprint": msl.fingerprint}
    sgpt_run = _sgpt_run(workspace, sources[SGPT_DIR])
    if sgpt_run:
        tags["parent.sgpt.mlflow_run_id"] = sgpt_run
    with tracking_run(resolve_tracking(params, workspace.root), "composite", run_id, tags) as run:
        run.log_params({"composite": dataclasses.asdict(section(params, "composite", CompositeConfig))})
        run.log_metrics(_mlflow_names({k: report[k] for k in ("rmse", "r2", "paired")}))
        for path in plots.values():
            run.log_artifact(path)
        folder = workspace.models / COMPOSITE_DIR
        run.log_artifact(folder / FP_DIR, FP_DIR)
        run.log_artifact(folder / MSL_DIR, MSL_DIR)
        run.log_model(model, "composite_msl", MODEL_NAME, params["profile"])
    report["_mlflow_run_id"] = run.run_id
