"""Stages `pretrain`, `heads` and `evaluate`: structure-guided pre-training, the served property heads, and the
evaluation of every variant against baselines and the virtual lab's ceilings (tracked in MLflow)."""

from __future__ import annotations

from typing import Any

from matmcl.config import TrackingConfig, deep_merge
from matmcl.stages.context import StageContext, timed
from matmcl.training.runs import RunOptions, run_evaluation, run_heads, run_pretraining

SQLITE_PREFIX = "sqlite:///"


def _tracked(ctx: StageContext, dagster_run_id: str | None) -> tuple[dict[str, Any], RunOptions]:
    """Params with a relative sqlite store resolved against the workspace root, and the run options."""
    tracking = ctx.config("tracking", TrackingConfig)
    uri = tracking.mlflow_uri
    if uri.startswith(SQLITE_PREFIX) and not uri[len(SQLITE_PREFIX):].startswith("/"):
        uri = SQLITE_PREFIX + str((ctx.workspace.root / uri[len(SQLITE_PREFIX):]).resolve())
    params = deep_merge(ctx.params, {"tracking": {"mlflow_uri": uri}})
    return params, RunOptions(track=tracking.enabled, dagster_run_id=dagster_run_id, progress=ctx.progress)


def _stage(name: str, run, ctx: StageContext, dagster_run_id: str | None) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    with timed(metrics):
        params, options = _tracked(ctx, dagster_run_id)
        metrics.update(run(ctx.workspace, params, options))
    ctx.write_metrics(name, metrics)
    return metrics


def pretrain(ctx: StageContext, dagster_run_id: str | None = None) -> dict[str, Any]:
    """Pre-train SGPT into models/sgpt; write reports/pretrain.json."""
    return _stage("pretrain", run_pretraining, ctx, dagster_run_id)


def heads(ctx: StageContext, dagster_run_id: str | None = None) -> dict[str, Any]:
    """Fit the served property heads into models/property; write reports/heads.json."""
    return _stage("heads", run_heads, ctx, dagster_run_id)


def evaluate(ctx: StageContext, dagster_run_id: str | None = None) -> dict[str, Any]:
    """Evaluate all variants over the seeds; write reports/property.json, alignment.json, evaluate.json and plots."""
    return _stage("evaluate", run_evaluation, ctx, dagster_run_id)
