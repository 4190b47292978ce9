"""Stage `preprocess`: SEM frames → histogram-matched patches and their manifest."""

from __future__ import annotations

import logging
from typing import Any

from matmcl.config import BoundsConfig, DataConfig, PreprocessConfig
from matmcl.rawdata import load_raw_dataset
from matmcl.sem.preprocess import preprocess_frames
from matmcl.stages.context import StageContext, StageResult, timed
from matmcl.validation import validate

log = logging.getLogger(__name__)


def preprocess(ctx: StageContext) -> StageResult:
    """Validate the raw dataset, patch and histogram-match every frame; write reports/preprocess.json."""
    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws = ctx.workspace
        dataset = load_raw_dataset(ws.raw, ctx.config("data", DataConfig).on_missing,
                                   ctx.config("bounds", BoundsConfig))
        manifest, stats = preprocess_frames(dataset.frames, ws.raw, ws.processed, ctx.config("preprocess", PreprocessConfig),
                                            progress=ctx.progress)
        validate(manifest, "patches").raise_for_failures()
        metrics.update(
            n_films=int(manifest["film_id"].nunique()),
            n_frames=stats["n_frames"],
            n_patches=stats["n_patches"],
            patch_throughput_per_s=round(stats["patches_per_s"], 2),
            skipped_films=[{"film_id": f, "reason": r} for f, r in dataset.skipped],
        )
    ctx.write_metrics("preprocess", metrics)
    return StageResult(metrics)
