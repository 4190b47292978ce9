"""Tracked training runs for the pipeline: pre-training, the served property heads, and the evaluation.

Each function reads its typed config from the resolved params, does the work with matmcl.training, logs params,
metrics, plots, dataset lineage and models to MLflow (when `options.track`) and returns a metrics dict for
reports/<stage>.json. Registered models: `matmcl-sgpt` and `matmcl-<variant>` (the heads, each wrapped with its
frozen SGPT embedder), with the profile name as alias.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from matmcl.atomic import atomic_path
from matmcl.config import TrackingConfig, Workspace, section
from matmcl.evaluation.plots import DPI, PANEL_INCHES
from matmcl.models.heads import PropertyRegressor
from matmcl.models.sgpt import count_parameters
from matmcl.tracking import NullRun, data_version, tracking_run
from matmcl.training.config import EvaluationConfig, PretrainConfig, PropertyConfig
from matmcl.training.data import TABLE_FILE
from matmcl.training.evaluate import ALIGNMENT_REPORT, PROPERTY_REPORT, evaluate
from matmcl.training.pretrain import load_sgpt, pretrain
from matmcl.training.properties import FROZEN_MODALITY, HEADS_DIR, SGPT_DIR, TARGETS_FILE, load_head, train_heads

SGPT_MODEL_NAME = "matmcl-sgpt"
LOSS_PLOT = "pretrain_loss.png"


@dataclass(frozen=True)
class RunOptions:
    """Whether to log to MLflow, the Dagster run id to tag, and whether to show progress bars."""

    track: bool = True
    dagster_run_id: str | None = None
    progress: bool = True


def _run(workspace: Workspace, params: dict[str, Any], name: str, options: RunOptions):
    """An MLflow run (or NullRun) tagged with the data version, git commit, Dagster run id and profile."""
    return tracking_run(section(params, "tracking", TrackingConfig), name, options.track,
                        data_version(workspace.processed), options.dagster_run_id, {"profile": params["profile"]})


def _log_table(run: NullRun, workspace: Workspace) -> None:
    path = workspace.processed / TABLE_FILE
    run.log_dataset(pd.read_parquet(path), "processed_table", path)


def plot_losses(history: list[dict[str, float]], path: str | Path) -> Path:
    """Total and per-modality pre-training loss per epoch."""
    fig = Figure(figsize=(2 * PANEL_INCHES, PANEL_INCHES), layout="constrained")
    ax = fig.subplots()
    epochs = [entry["epoch"] for entry in history]
    for key in (k for k in history[0] if k.startswith("loss")):
        ax.plot(epochs, [entry[key] for entry in history], label=key.replace("loss_", "").replace("loss", "total"))
    ax.set_xlabel("epoch")
    ax.set_ylabel("NT-Xent loss")
    ax.legend()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def run_pretraining(workspace: Workspace, params: dict[str, Any], options: RunOptions = RunOptions()
                    ) -> dict[str, Any]:
    """Pre-train SGPT into models/sgpt (resuming from its checkpoint); returns final losses and timing."""
    config = section(params, "pretrain", PretrainConfig)
    with _run(workspace, params, "pretrain", options) as run:
        run.log_params({"pretrain": dataclasses.asdict(config), "sgpt": dataclasses.asdict(config.sgpt_config())})
        _log_table(run, workspace)
        result = pretrain(workspace.processed, config, workspace.models / SGPT_DIR, progress=options.progress,
                          on_epoch_end=lambda entry: run.log_metrics(entry, step=int(entry["epoch"])))
        run.log_artifact(plot_losses(result.history, workspace.reports / LOSS_PLOT))
        run.log_model(result.model, "sgpt", SGPT_MODEL_NAME, params["profile"])
    last = result.history[-1]
    return {"epochs": len(result.history), "n_parameters": count_parameters(result.model),
            "final": {k: v for k, v in last.items() if k.startswith("loss")},
            "first": {k: v for k, v in result.history[0].items() if k.startswith("loss")},
            "train_seconds": sum(entry["seconds"] for entry in result.history), "mlflow_run_id": run.run_id}


def run_heads(workspace: Workspace, params: dict[str, Any], options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Fit the served heads (matmcl_conditions, matmcl_fusion) into models/property; returns validation metrics."""
    config = section(params, "property", PropertyConfig)
    with _run(workspace, params, "property_heads", options) as run:
        run.log_params({"property": dataclasses.asdict(config)})
        _log_table(run, workspace)
        summary = train_heads(workspace.processed, workspace.models, config)
        run.log_metrics(summary)
        sgpt, _ = load_sgpt(workspace.models / SGPT_DIR)
        for variant, modality in FROZEN_MODALITY.items():
            folder = workspace.models / HEADS_DIR / variant
            head, _ = load_head(folder)
            run.log_model(PropertyRegressor(sgpt.embedder(modality), head), variant, f"matmcl-{variant}",
                          params["profile"])
            run.log_artifact(folder / TARGETS_FILE, artifact_path=variant)
    return {**summary, "mlflow_run_id": run.run_id}


def run_evaluation(workspace: Workspace, params: dict[str, Any], options: RunOptions = RunOptions()
                   ) -> dict[str, Any]:
    """Evaluate every variant and the alignment on the test films into reports/; returns the headline numbers."""
    property_config = section(params, "property", PropertyConfig)
    evaluation_config = section(params, "evaluation", EvaluationConfig)
    with _run(workspace, params, "evaluation", options) as run:
        run.log_params({"property": dataclasses.asdict(property_config),
                        "evaluation": dataclasses.asdict(evaluation_config)})
        _log_table(run, workspace)
        result = evaluate(workspace.processed, workspace.models / SGPT_DIR, workspace.reports, property_config,
                          evaluation_config, workspace.raw, options.progress)
        report = result["property"]
        run.log_metrics({key: report[key] for key in ("variants", "oracle_r2_conditions", "oracle_r2_structure")
                         if key in report})
        run.log_metrics({"alignment": result["alignment"]})
        for path in [*result["plots"], workspace.reports / PROPERTY_REPORT, workspace.reports / ALIGNMENT_REPORT]:
            run.log_artifact(path)
    r2 = {variant: {prop: m["r2_mean"] for prop, m in props.items()} for variant, props in report["variants"].items()}
    return {"r2_mean": r2, "seconds": report["seconds"], "mlflow_run_id": run.run_id}
