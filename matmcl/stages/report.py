"""Stage `data_report`: reports/data.json (the data metrics `dvc metrics show` lists) and the data plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matmcl.artifacts import (
    FEATURES_FILE,
    FEATURES_PLOT,
    MATCHING_PLOT,
    PATCHES_FILE,
    PROPERTIES_PLOT,
    TABLE_FILE,
)
from matmcl.config import PreprocessConfig
from matmcl.evaluation.plots import (
    column_label,
    panel_grid,
    plot_image_grid,
    save_figure,
)
from matmcl.rawdata import load_sem_image, read_frames_table
from matmcl.schema import (
    DIRECTION,
    FEATURE_COLUMNS,
    FILM_ID,
    LONGITUDINAL,
    PROPERTY_COLUMNS,
    TRANSVERSE,
)
from matmcl.sem.infobar import info_bar_rows
from matmcl.sem.patching import tile_frame
from matmcl.lineage import data_version
from matmcl.stages.context import StageContext, StageResult

STAGE_METRICS = ("preprocess", "tensile", "features", "tables")
N_EXAMPLE_PATCHES = 4


def _read_metrics(reports: Path, name: str) -> dict[str, Any]:
    path = reports / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def plot_matching(ctx: StageContext, manifest: pd.DataFrame, path: Path) -> Path:
    """Patches of films with the darkest and brightest raw frames, before and after histogram matching."""
    ws, tile_px = ctx.workspace, ctx.config("preprocess", PreprocessConfig).tile_px
    order = manifest.sort_values("raw_mean")
    picks = pd.concat([order.head(N_EXAMPLE_PATCHES // 2), order.tail(N_EXAMPLE_PATCHES // 2)])
    frames = read_frames_table(ws.raw).set_index([FILM_ID, "frame"])
    images, titles = [], []
    for row in picks.itertuples(index=False):
        frame = frames.loc[(row.film_id, row.frame)]
        image = load_sem_image(ws.raw / frame["path"])
        tiles = tile_frame(image, info_bar_rows(image, frame["info_bar_px"]), tile_px)
        raw = next(t.array for t in tiles if (t.grid_row, t.grid_col) == (row.grid_row, row.grid_col))
        images += [raw, load_sem_image(ws.processed / row.path)]
        titles += [f"{row.film_id} f{row.frame} p{row.patch}: raw", "matched"]
    return plot_image_grid(images, titles, path, n_cols=4)


def plot_feature_histograms(features: pd.DataFrame, path: Path) -> Path:
    """Histogram of each per-film structural feature."""
    fig, axes = panel_grid(len(FEATURE_COLUMNS), 3)
    for ax, column in zip(axes, FEATURE_COLUMNS):
        ax.hist(features[column].dropna(), bins=30, color="tab:gray")
        ax.set_xlabel(column_label(column))
        ax.set_ylabel("films")
    return save_figure(fig, path)


def plot_properties(table: pd.DataFrame, features: pd.DataFrame, path: Path) -> Path:
    """Longitudinal vs transverse value of each property, coloured by the film's orientation order."""
    wide = table.pivot(index=FILM_ID, columns=DIRECTION, values=list(PROPERTY_COLUMNS))
    order = features.set_index(FILM_ID)["orientation_order"].reindex(wide.index)
    fig, axes = panel_grid(len(PROPERTY_COLUMNS), 3)
    for ax, prop in zip(axes, PROPERTY_COLUMNS):
        points = ax.scatter(wide[(prop, TRANSVERSE)], wide[(prop, LONGITUDINAL)], c=order, cmap="viridis", s=10)
        limit = np.nanmax(wide[prop].to_numpy())
        ax.plot([0, limit], [0, limit], "k--", lw=0.8)
        ax.set_xlabel(column_label(prop, "transverse"))
        ax.set_ylabel(column_label(prop, "longitudinal"))
    fig.colorbar(points, ax=axes[-1], label="orientation order S")
    return save_figure(fig, path)


def skipped_films(stage: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every film left out by any data stage (no frames, no curves, a direction lost to bad curves, ...), once,
    with all its reasons; the `tables` stage's generic reason only when no earlier stage gave one."""
    reasons: dict[str, list[str]] = {}
    for name in ("preprocess", "tensile", "tables"):
        for item in stage[name].get("skipped_films", []):
            listed = reasons.setdefault(item[FILM_ID], [])
            if item["reason"] not in listed and not (name == "tables" and listed):
                listed.append(item["reason"])
    return [{FILM_ID: film, "reasons": listed} for film, listed in sorted(reasons.items())]


def data_report(ctx: StageContext) -> StageResult:
    """Merge the stage metrics into reports/data.json and write the data plots; return both."""
    ws = ctx.workspace
    stage = {name: _read_metrics(ws.reports, name) for name in STAGE_METRICS}
    skipped = skipped_films(stage)
    data = {
        "n_films": stage["tables"].get("n_films"),
        "n_frames": stage["preprocess"].get("n_frames"),
        "n_patches": stage["preprocess"].get("n_patches"),
        "patch_throughput_per_s": stage["preprocess"].get("patch_throughput_per_s"),
        "n_curves": stage["tensile"].get("n_curves"),
        "n_skipped_curves": len(stage["tensile"].get("skipped_curves", [])),
        "n_skipped_films": len(skipped),
        "n_skipped_composites": len(stage["tensile"].get("skipped_composites", [])),
        "n_composites": stage["tables"].get("n_composites"),
        "data_version": data_version(ws.processed),
        "skipped_films": skipped,
    }
    for key, source in (("tensile_rel_error", "tensile"), ("feature_error", "features")):
        if key in stage[source]:
            data[key] = stage[source][key]
    ctx.write_metrics("data", data)
    manifest = pd.read_parquet(ws.processed / PATCHES_FILE)
    features = pd.read_parquet(ws.processed / FEATURES_FILE)
    table = pd.read_parquet(ws.processed / TABLE_FILE)
    plots = {
        "matching": plot_matching(ctx, manifest, ws.reports / MATCHING_PLOT),
        "features": plot_feature_histograms(features, ws.reports / FEATURES_PLOT),
        "properties": plot_properties(table, features, ws.reports / PROPERTIES_PLOT),
    }
    return StageResult(data, plots)
