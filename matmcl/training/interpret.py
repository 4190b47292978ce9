"""Interpretability of the served models (stage `interpret`): SHAP of the conditions model and Grad-CAM of the
vision encoder; writes reports/interpret.json and PNGs into reports/interpret/ (matmcl.evaluation.interpret)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from matmcl.artifacts import GRAD_CAM_PLOT, HEADS_DIR, INTERPRET_REPORT, SGPT_DIR, SHAP_PLOT
from matmcl.atomic import write_json
from matmcl.evaluation.interpret import (
    grad_cam_alignment,
    mean_abs,
    physics_checks,
    plot_grad_cam,
    plot_shap_summary,
    shap_values,
)
from matmcl.schema import DIRECTION, FILM_ID, LONGITUDINAL
from matmcl.training.config import EvaluationConfig, PropertyConfig
from matmcl.training.data import ProcessedData, RowPatches
from matmcl.training.properties import PropertyData, load_head

SHAP_BACKGROUND, SHAP_EXPLAIN, CAM_FILMS = 50, 60, 8


def _peak_share(maps: np.ndarray) -> dict[str, Any]:
    """Mean over the non-empty heat maps of the brightest pixel's share of the map's total (1/size² for a flat map,
    towards 1 for a single hot spot), and how many maps were empty (no positive evidence: all zero after ReLU)."""
    totals = maps.reshape(len(maps), -1).sum(axis=1)
    shares = [float(m.max() / t) for m, t in zip(maps, totals, strict=True) if t > 0]
    return {"mean_map_entropy_share": float(np.mean(shares)) if shares else None,
            "n_empty_maps": int(len(maps) - len(shares))}


def interpret(processed_dir: str | Path, models_dir: str | Path, reports_dir: str | Path,
              property_config: PropertyConfig, config: EvaluationConfig) -> dict[str, Any]:
    """SHAP (background: training rows; explained: test rows) and Grad-CAM (test films, longitudinal, one patch
    each); returns the report and the plot paths."""
    models_dir, reports_dir = Path(models_dir), Path(reports_dir)
    data = PropertyData.load(processed_dir, models_dir / SGPT_DIR, property_config)
    head, targets = load_head(models_dir / HEADS_DIR / "matmcl_conditions", data.sources)
    sgpt = data.sgpt.eval()

    @torch.no_grad()
    def predict(x7: np.ndarray) -> np.ndarray:
        return targets.inverse(head(sgpt.embed_table(torch.from_numpy(np.asarray(x7, np.float32)))).double().numpy())

    rng = np.random.default_rng(config.seed)
    train_x = data.x["train"][:, :6]
    test_x = np.unique(data.x["test"][:, :6], axis=0)
    background = train_x[rng.choice(len(train_x), min(SHAP_BACKGROUND, len(train_x)), replace=False)]
    explain = test_x[: SHAP_EXPLAIN]
    values = shap_values(predict, background, explain, config.seed)
    importance = mean_abs(values)
    plots = [plot_shap_summary(values, explain, reports_dir / SHAP_PLOT)]

    processed = ProcessedData.load(processed_dir)
    rows = data.rows["test"]
    rows = rows[rows[DIRECTION] == LONGITUDINAL].head(CAM_FILMS).reset_index(drop=True)
    pairs = RowPatches.from_bank(rows, processed.scaler, processed.patches(rows, per_film=1))
    table, images = pairs.pair_batch(torch.arange(len(pairs)), data.image_size)
    maps = grad_cam_alignment(sgpt, table, images)
    plots.append(plot_grad_cam(images[:, 0].numpy(), maps, rows[FILM_ID].tolist(), reports_dir / GRAD_CAM_PLOT))
    report = {"shap_mean_abs": importance, "physics_checks": physics_checks(importance),
              "n_background": len(background), "n_explained": len(explain),
              "grad_cam": {"target": "cos(image embedding, condition embedding)", "layer": "image encoder, last "
                           "residual stage", "films": rows[FILM_ID].tolist(),
                           **_peak_share(maps)}}
    write_json(report, reports_dir / INTERPRET_REPORT)
    return {"report": report, "plots": plots}
