"""Stage `features`: structural features (orientation, diameter, pore size, porosity) per patch and per film."""

from __future__ import annotations

from typing import Any

import pandas as pd

from matmcl.atomic import write_csv, write_parquet
from matmcl.config import FeaturesConfig
from matmcl.features.extractor import extract_patch_features, feature_errors, film_features
from matmcl.stages.context import StageContext, timed

PER_FILM_ERRORS = "feature_errors_per_film.csv"  # virtual lab only: each film's features vs the render's truth


def features(ctx: StageContext) -> dict[str, Any]:
    """Write patch_features.parquet and features.parquet; with virtual-lab ground truth, the errors (summary in
    reports/features.json, per film in reports/feature_errors_per_film.csv)."""
    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws, cfg = ctx.workspace, ctx.config("features", FeaturesConfig)
        manifest = pd.read_parquet(ws.processed / "patches.parquet")
        per_patch = extract_patch_features(manifest, ws.processed, workers=cfg.workers, progress=ctx.progress)
        per_film = film_features(per_patch)
        write_parquet(per_patch, ws.processed / "patch_features.parquet")
        write_parquet(per_film, ws.processed / "features.parquet")
        metrics.update(n_patches=len(per_patch), n_films=len(per_film))
        truth = ws.raw / "ground_truth" / "images.parquet"
        if truth.exists():
            errors = feature_errors(per_film, pd.read_parquet(truth))
            write_csv(errors.pop("per_film").round(5), ws.reports / PER_FILM_ERRORS)
            metrics["feature_error"] = {k: round(float(v), 4) for k, v in errors.items()}
    ctx.write_metrics("features", metrics)
    return metrics
