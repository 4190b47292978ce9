"""Stage `tables`: model-ready film × direction tables, film-level splits and the condition scaler.

Every table is built and validated before any file is written, so a failure leaves data/processed as it was.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from matmcl.artifacts import (
    COMPOSITE_PROPERTIES_FILE,
    COMPOSITE_TABLE_FILE,
    PATCHES_FILE,
    PROPERTIES_FILE,
    SCALER_FILE,
    SPLITS_FILE,
    TABLE_FILE,
)
from matmcl.atomic import write_json, write_parquet
from matmcl.lineage import data_version
from matmcl.config import BoundsConfig, TablesConfig
from matmcl.rawdata import read_conditions
from matmcl.schema import COMPOSITE_ID, CONDITION_COLUMNS, DIRECTION, FILM_ID, PROPERTY_COLUMNS
from matmcl.splits import film_splits, fit_scaler, split_ids
from matmcl.stages.context import StageContext, StageResult, timed
from matmcl.validation import validate


NO_PROPERTIES = "no tensile properties (see reports/tensile.json)"
NO_PATCHES = "no SEM patches (see reports/preprocess.json)"


def build_table(conditions: pd.DataFrame, properties: pd.DataFrame, splits: pd.DataFrame,
                keys: tuple[str, ...] = (FILM_ID,)) -> pd.DataFrame:
    """id column(s), six conditions, direction, five properties and split, one row per id × direction.

    Conditions are joined on `film_id`; the split on the first key (a composite has the split of its own id).
    """
    columns = [*keys, *CONDITION_COLUMNS, DIRECTION, *PROPERTY_COLUMNS, "split"]
    merged = properties.merge(conditions, on=FILM_ID).merge(splits[[keys[0], "split"]], on=keys[0])
    return merged.sort_values([keys[0], DIRECTION], ignore_index=True)[columns]


def left_out(conditions: pd.DataFrame, with_properties: set[str], with_patches: set[str]) -> list[dict[str, str]]:
    """Films of conditions.csv missing from the table, each with the reason (the stage that dropped it)."""
    listed = []
    for film in conditions[FILM_ID]:
        reasons = [reason for reason, have in ((NO_PROPERTIES, with_properties), (NO_PATCHES, with_patches))
                   if film not in have]
        if reasons:
            listed.append({FILM_ID: film, "reason": ", ".join(reasons)})
    return listed


def tables(ctx: StageContext) -> StageResult:
    """Write table, splits, scaler.json and the composite table; validate; write reports/tables.json."""
    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws, cfg = ctx.workspace, ctx.config("tables", TablesConfig)
        bounds = ctx.config("bounds", BoundsConfig)
        conditions = read_conditions(ws.raw, bounds)
        properties = pd.read_parquet(ws.processed / PROPERTIES_FILE)
        with_patches = set(pd.read_parquet(ws.processed / PATCHES_FILE, columns=[FILM_ID])[FILM_ID])
        films = sorted(set(properties[FILM_ID]) & with_patches)
        splits = film_splits(films, cfg.split_fractions, cfg.seed, cfg.gallery_fraction)
        table = build_table(conditions, properties[properties[FILM_ID].isin(films)], splits)
        validate(table, "table", bounds=bounds).raise_for_failures()
        train = conditions[conditions[FILM_ID].isin(splits.loc[splits["split"] == "train", FILM_ID])]
        scaler = fit_scaler(train)
        outputs = {SPLITS_FILE: splits, TABLE_FILE: table}
        metrics.update(n_films=len(films), n_rows=len(table),
                       split_films=splits["split"].value_counts().to_dict(),
                       n_gallery=int(splits["gallery"].sum()), n_generation=int(splits["generation"].sum()),
                       skipped_films=left_out(conditions, set(properties[FILM_ID]), with_patches))
        composite_file = ws.processed / COMPOSITE_PROPERTIES_FILE
        if composite_file.exists():
            composites = pd.read_parquet(composite_file)
            composite_splits = split_ids(composites[COMPOSITE_ID].unique(), cfg.split_fractions, cfg.seed)
            composite_table = build_table(conditions, composites, composite_splits.rename(columns={"id": COMPOSITE_ID}),
                                          (COMPOSITE_ID, FILM_ID))
            validate(composite_table.drop(columns=[COMPOSITE_ID]), "table", bounds=bounds).raise_for_failures()
            outputs[COMPOSITE_TABLE_FILE] = composite_table
            metrics["n_composites"] = int(composite_table[COMPOSITE_ID].nunique())
        for name, frame in outputs.items():  # every table passed its checks: only now write
            write_parquet(frame, ws.processed / name)
        write_json(scaler, ws.processed / SCALER_FILE)
        if COMPOSITE_TABLE_FILE not in outputs:  # no composites (any more): drop a previous run's table
            (ws.processed / COMPOSITE_TABLE_FILE).unlink(missing_ok=True)
        metrics["data_version"] = data_version(ws.processed)
    ctx.write_metrics("tables", metrics)
    return StageResult(metrics)
