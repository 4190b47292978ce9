"""Stages `pretrain`, `heads` and `evaluate`: structure-guided pre-training, the served property heads, and the
evaluation of every variant against baselines and the virtual lab's ceilings (tracked in MLflow, one nested run per
stage under the pipeline run `ctx.run_id`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matmcl.stages.context import StageContext, StageResult, timed
from matmcl.training.runs import RunOptions, run_evaluation, run_heads, run_pretraining


def _stage(name: str, run, ctx: StageContext) -> StageResult:
    metrics: dict[str, Any] = {}
    with timed(metrics):
        stage_metrics, plots = run(ctx.workspace, ctx.params, RunOptions(ctx.run_id, ctx.progress))
        metrics.update(stage_metrics)
    ctx.write_metrics(name, metrics)
    return StageResult(metrics, plots)


def pretrain(ctx: StageContext) -> StageResult:
    """Pre-train SGPT into models/sgpt; write reports/pretrain.json and the loss plot."""
    return _stage("pretrain", run_pretraining, ctx)


def heads(ctx: StageContext) -> StageResult:
    """Fit the served property heads into models/property (refusing an SGPT model trained on other data); write
    reports/heads.json."""
    return _stage("heads", run_heads, ctx)


def evaluate(ctx: StageContext) -> StageResult:
    """Evaluate all variants over the seeds; write reports/property.json, alignment.json, evaluate.json and plots."""
    return _stage("evaluate", run_evaluation, ctx)


def interpret(ctx: StageContext) -> StageResult:
    """SHAP of the served conditions model and Grad-CAM of the vision encoder; write reports/interpret.json (with
    the physics checks), reports/interpret/shap_summary.png and grad_cam.png."""
    from matmcl.training.config import EvaluationConfig, PropertyConfig
    from matmcl.training.interpret import interpret as run_interpret

    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws = ctx.workspace
        out = run_interpret(ws.processed, ws.models, ws.reports, ctx.config("property", PropertyConfig),
                            ctx.config("evaluation", EvaluationConfig))
        metrics.update(out["report"]["physics_checks"])
    ctx.write_metrics("interpret_stage", metrics)
    return StageResult(metrics, {Path(p).stem: Path(p) for p in out["plots"]})
