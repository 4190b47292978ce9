"""Stages `generator` and `fid`: train the diffusion prior and decoder (models/generator), then evaluate generated
structures against real patches with FID/KID and measured fiber features (reports/generation.json, reports/fid.json,
reports/generation/*.png); docs/generation.md."""

from __future__ import annotations

from typing import Any

from matmcl.stages.context import StageContext, StageResult, timed


def train_generator(ctx: StageContext) -> StageResult:
    """Train prior and decoder from the served SGPT into models/generator; write reports/generator.json."""
    from matmcl.generation.train import train_generator as train

    metrics: dict[str, Any] = {}
    with timed(metrics):
        metrics.update(train(ctx.workspace, ctx.params, ctx.run_id, ctx.progress))
    ctx.write_metrics("generator", metrics)
    return StageResult(metrics)


def evaluate_generation(ctx: StageContext) -> StageResult:
    """FID/KID and feature correlations of generated vs real patches (seen and unseen conditions); write
    reports/generation.json, reports/fid.json and the plots."""
    from matmcl.generation.evaluate import evaluate_generation as evaluate

    metrics: dict[str, Any] = {}
    with timed(metrics):
        report, plots = evaluate(ctx.workspace, ctx.params, ctx.progress)
        metrics.update({key: report[key] for key in ("fid", "kid", "feature_pearson", "prior", "seconds_per_image")})
    ctx.write_metrics("fid", metrics)
    return StageResult(metrics, plots)
