"""Tracked training runs for the pipeline: pre-training, the served property heads, and the evaluation.

Each function reads its typed config from the resolved params, does the work with matmcl.training, logs params,
metrics, plots, dataset lineage and models to MLflow (one run per stage, nested under its pipeline run: see
matmcl.tracking) and returns the metrics for reports/<stage>.json and its plots. Every run is tagged with the data
version (matmcl.lineage), the code version of the module that does the work and the profile; the metrics carry the
same data version. Registered models, with the profile name as alias: `matmcl-sgpt` (the torch module) and
`matmcl-matmcl_conditions` (the pyfunc of matmcl.serving: physical conditions in, properties out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from matmcl.artifacts import CV_EMBEDDINGS, HEADS_DIR, PRETRAIN_LOSS_PLOT, SCALER_FILE, SGPT_DIR, TABLE_FILE
from matmcl.atomic import atomic_path
from matmcl.codebase import code_version
from matmcl.config import Workspace, section
from matmcl.evaluation.plots import DPI, PANEL_INCHES
from matmcl.lineage import LINEAGE_FILE, data_version
from matmcl.models.sgpt import count_parameters
from matmcl.retrieval.embeddings import write_cv_embeddings
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FILM_ID, SPLIT
from matmcl.tracking import NullRun, resolve_tracking, tracking_run
from matmcl.training.config import EvaluationConfig, PretrainConfig, PropertyConfig
from matmcl.training.evaluate import ALIGNMENT_REPORT, PROPERTY_REPORT, evaluate
from matmcl.training.pretrain import pretrain
from matmcl.training.properties import train_heads

SGPT_MODEL_NAME = "matmcl-sgpt"
CONDITIONS_VARIANT, FUSION_VARIANT = "matmcl_conditions", "matmcl_fusion"
EXAMPLE_FILMS = 2  # training films (both directions) in the pyfunc's input example

Plots = dict[str, Path]


@dataclass(frozen=True)
class RunOptions:
    """The pipeline run the stage belongs to (None: its own, see matmcl.tracking) and whether to show progress."""

    run_id: str | None = None
    progress: bool = True


@contextmanager
def _run(workspace: Workspace, params: dict[str, Any], stage: str, module: str, options: RunOptions
         ) -> Iterator[tuple[NullRun, str]]:
    """The stage's MLflow run (or NullRun) tagged with data version, code version and profile; and the data
    version."""
    version = data_version(workspace.processed)
    tags = {"data_version": version, "code_version": code_version(module), "profile": params["profile"]}
    with tracking_run(resolve_tracking(params, workspace.root), stage, options.run_id, tags) as run:
        _log_table(run, workspace)
        yield run, version


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
                    ) -> tuple[dict[str, Any], Plots]:
    """Pre-train SGPT into models/sgpt (resuming from its checkpoint); returns final losses and timing, and the
    loss plot."""
    config = section(params, "pretrain", PretrainConfig)
    with _run(workspace, params, "pretrain", pretrain.__module__, options) as (run, version):
        run.log_params({"pretrain": dataclasses.asdict(config), "sgpt": dataclasses.asdict(config.sgpt_config())})
        result = pretrain(workspace.processed, config, workspace.models / SGPT_DIR, progress=options.progress,
                          on_epoch_end=lambda entry: run.log_metrics(entry, step=int(entry["epoch"])))
        plot = plot_losses(result.history, workspace.reports / PRETRAIN_LOSS_PLOT)
        run.log_artifact(plot)
        run.log_artifact(workspace.models / SGPT_DIR / LINEAGE_FILE, SGPT_DIR)
        run.log_model(result.model, SGPT_DIR, SGPT_MODEL_NAME, params["profile"])
    last = result.history[-1]
    metrics = {"epochs": len(result.history), "n_parameters": count_parameters(result.model),
               "final": {k: v for k, v in last.items() if k.startswith("loss")},
               "first": {k: v for k, v in result.history[0].items() if k.startswith("loss")},
               "train_seconds": sum(entry["seconds"] for entry in result.history), "data_version": version,
               "fingerprint": result.lineage.fingerprint, "mlflow_run_id": run.run_id}
    return metrics, {"loss": plot}


def input_example(workspace: Workspace) -> pd.DataFrame:
    """The pyfunc's input example: both directions of the first training films, conditions in physical units."""
    table = pd.read_parquet(workspace.processed / TABLE_FILE)
    train = table[table[SPLIT] == "train"]
    films = train[FILM_ID].drop_duplicates().head(EXAMPLE_FILMS)
    return train[train[FILM_ID].isin(films)][[*CONDITION_COLUMNS, DIRECTION]].reset_index(drop=True)


def _log_conditions_model(run: NullRun, workspace: Workspace, profile: str) -> None:
    """Log and register the matmcl_conditions pyfunc (nothing, and no MLflow import, when tracking is off)."""
    if run.run_id is None:
        return
    from matmcl.serving import HEAD, SCALER, SGPT, ConditionsModel

    artifacts = {SGPT: workspace.models / SGPT_DIR, HEAD: workspace.models / HEADS_DIR / CONDITIONS_VARIANT,
                 SCALER: workspace.processed / SCALER_FILE}
    example = input_example(workspace)
    output = ConditionsModel().load(artifacts).predict(None, example)
    run.log_pyfunc(CONDITIONS_VARIANT, ConditionsModel(), artifacts, example, output,
                   f"matmcl-{CONDITIONS_VARIANT}", profile)


def run_heads(workspace: Workspace, params: dict[str, Any], options: RunOptions = RunOptions()
              ) -> tuple[dict[str, Any], Plots]:
    """Fit the served heads (matmcl_conditions, matmcl_fusion) into models/property; returns validation metrics."""
    config = section(params, "property", PropertyConfig)
    with _run(workspace, params, "heads", train_heads.__module__, options) as (run, version):
        run.log_params({"property": dataclasses.asdict(config)})
        summary = train_heads(workspace.processed, workspace.models, config)
        run.log_metrics(summary)
        _log_conditions_model(run, workspace, params["profile"])
        fusion = workspace.models / HEADS_DIR / FUSION_VARIANT
        run.log_artifact(fusion, FUSION_VARIANT)  # config, weights, targets.json, lineage.json
    return {**summary, "data_version": version, "mlflow_run_id": run.run_id}, {}


def run_evaluation(workspace: Workspace, params: dict[str, Any], options: RunOptions = RunOptions()
                   ) -> tuple[dict[str, Any], Plots]:
    """Evaluate every variant and the alignment on the test films into reports/, and store each fold SGPT's film
    embeddings in models/cv_embeddings.npz (for the retrieval stage); returns the headline numbers and the plots."""
    property_config = section(params, "property", PropertyConfig)
    evaluation_config = section(params, "evaluation", EvaluationConfig)
    pretrain_config = section(params, "pretrain", PretrainConfig)
    with _run(workspace, params, "evaluate", evaluate.__module__, options) as (run, version):
        run.log_params({"property": dataclasses.asdict(property_config),
                        "evaluation": dataclasses.asdict(evaluation_config)})
        result = evaluate(workspace.processed, workspace.models / SGPT_DIR, workspace.reports, property_config,
                          evaluation_config, workspace.raw, options.progress, pretrain_config)
        report = result["property"]
        write_cv_embeddings(result["embeddings"], version, workspace.models / CV_EMBEDDINGS)
        run.log_metrics({key: report[key] for key in ("variants", "ceilings", "paired") if key in report})
        run.log_metrics({"alignment": result["alignment"]})
        for path in [*result["plots"], workspace.reports / PROPERTY_REPORT, workspace.reports / ALIGNMENT_REPORT]:
            run.log_artifact(path)
    r2 = {variant: {prop: m["r2_dir_mean"] for prop, m in props.items()}
          for variant, props in report["variants"].items()}
    metrics = {"r2_dir_mean": r2, "protocol": report["protocol"], "seconds": report["seconds"],
               "data_version": version, "mlflow_run_id": run.run_id}
    return metrics, {Path(path).stem: Path(path) for path in result["plots"]}
