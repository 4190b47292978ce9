"""Stage `features`: structural features (orientation, diameter, pore size, porosity) per raw frame and per film."""

from __future__ import annotations

from typing import Any

import pandas as pd

from matmcl.artifacts import (FEATURE_ERRORS_CSV, FEATURES_FILE, FIBER_NETWORKS_FILE, FRAME_FEATURES_FILE,
                              GROUND_TRUTH_DIR)
from matmcl.atomic import write_csv, write_parquet
from matmcl.config import FeaturesConfig
from matmcl.features.extractor import extract_frame_structure, feature_errors, film_features
from matmcl.rawdata import read_frames_table
from matmcl.stages.context import StageContext, StageResult, timed



def features(ctx: StageContext) -> StageResult:
    """Measure every raw frame of sem/frames.csv (matmcl.features.measure_frame); write frame_features.parquet,
    features.parquet and each frame's fiber network graph (fiber_networks.parquet, for the descriptors stage, from
    the same segmentation); with virtual-lab ground truth, the errors (summary in reports/features.json, per film in
    reports/feature_errors_per_film.csv)."""
    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws, cfg = ctx.workspace, ctx.config("features", FeaturesConfig)
        frames = read_frames_table(ws.raw)
        per_frame, networks = extract_frame_structure(frames, ws.raw, workers=cfg.workers, progress=ctx.progress)
        per_film = film_features(per_frame)
        write_parquet(per_frame, ws.processed / FRAME_FEATURES_FILE)
        write_parquet(per_film, ws.processed / FEATURES_FILE)
        write_parquet(networks, ws.processed / FIBER_NETWORKS_FILE)
        metrics.update(n_frames=len(per_frame), n_films=len(per_film),
                       n_frames_with_warnings=int((per_frame["quality"] != "").sum()))
        truth = ws.raw / GROUND_TRUTH_DIR / "images.parquet"
        if truth.exists():
            errors = feature_errors(per_film, pd.read_parquet(truth))
            write_csv(errors.pop("per_film").round(5), ws.reports / FEATURE_ERRORS_CSV)
            metrics["feature_error"] = {k: round(float(v), 4) for k, v in errors.items()}
    ctx.write_metrics("features", metrics)
    return StageResult(metrics)
