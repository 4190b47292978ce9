"""Stage `tensile`: the five properties of every curve, replicate means per film (and composite) and direction."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matmcl.atomic import write_parquet
from matmcl.config import DataConfig
from matmcl.rawdata import RawDataError, load_raw_dataset
from matmcl.schema import COMPOSITE_ID, DIRECTION, FILM_ID, PROPERTY_COLUMNS
from matmcl.stages.context import StageContext, timed
from matmcl.tensile import CurveError, extract_properties, read_curve, summarize_replicates
from matmcl.validation import validate

log = logging.getLogger(__name__)


def extract_curves(curves: pd.DataFrame, raw_dir: Path, id_columns: list[str], on_bad_curve: str
                   ) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Properties of every curve listed in `curves`; bad curves raise or are skipped (returned with the reason)."""
    rows, skipped = [], []
    for row in curves.itertuples(index=False):
        path = raw_dir / row.path
        try:
            curve = read_curve(path)
            props = extract_properties(curve["strain_pct"], curve["stress_mpa"])
        except CurveError as err:
            if on_bad_curve != "skip":
                raise RawDataError(f"{path}: {err}") from err
            log.warning("skipping tensile curve %s: %s", path, err)
            skipped.append({"path": str(row.path), "reason": str(err)})
            continue
        ids = {c: getattr(row, c) for c in id_columns}
        rows.append({**ids, DIRECTION: int(row.direction), "replicate": int(row.replicate), "path": row.path, **props})
    return pd.DataFrame(rows), skipped


def relative_errors(measured: pd.DataFrame, truth: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """Median |measured − truth| / truth per property, matching rows on `keys`."""
    merged = measured.merge(truth, on=keys, suffixes=("", "_true"))
    return {p: round(float(np.median(np.abs(merged[p] / merged[f"{p}_true"] - 1))), 5) for p in PROPERTY_COLUMNS}


def tensile(ctx: StageContext) -> dict[str, Any]:
    """Write curve_properties, properties and composite_properties Parquet files and reports/tensile.json."""
    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws, cfg = ctx.workspace, ctx.config("data", DataConfig)
        dataset = load_raw_dataset(ws.raw, cfg.on_missing)
        per_curve, skipped = extract_curves(dataset.curves, ws.raw, [FILM_ID], cfg.on_bad_curve)
        properties = summarize_replicates(per_curve, FILM_ID)
        validate(properties, "properties").raise_for_failures()
        write_parquet(per_curve, ws.processed / "curve_properties.parquet")
        write_parquet(properties, ws.processed / "properties.parquet")
        metrics.update(n_curves=len(per_curve), n_property_rows=len(properties), skipped_curves=skipped)
        if dataset.composites is not None:
            composite_curves = dataset.composite_curves.merge(dataset.composites, on=COMPOSITE_ID)
            per_composite, skipped_c = extract_curves(composite_curves, ws.raw, [COMPOSITE_ID, FILM_ID], cfg.on_bad_curve)
            write_parquet(summarize_replicates(per_composite, [COMPOSITE_ID, FILM_ID]),
                          ws.processed / "composite_properties.parquet")
            metrics.update(n_composite_curves=len(per_composite), skipped_composite_curves=skipped_c)
        truth = ws.raw / "ground_truth" / "specimens.parquet"
        if truth.exists():
            metrics["tensile_rel_error"] = relative_errors(per_curve, pd.read_parquet(truth), [FILM_ID, DIRECTION, "replicate"])
    ctx.write_metrics("tensile", metrics)
    return metrics
