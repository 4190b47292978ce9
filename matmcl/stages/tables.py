"""Stage `tables`: model-ready film × direction tables, film-level splits and the condition scaler."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from matmcl.atomic import write_json, write_parquet
from matmcl.config import TablesConfig
from matmcl.rawdata import read_conditions
from matmcl.schema import COMPOSITE_ID, CONDITION_COLUMNS, DIRECTION, FILM_ID, PROPERTY_COLUMNS
from matmcl.splits import film_splits, fit_scaler, split_ids
from matmcl.stages.context import StageContext, timed
from matmcl.validation import validate


def table_hash(df: pd.DataFrame) -> str:
    """Content hash of a table (the data version stored beside the scaler)."""
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()[:16]


def build_table(conditions: pd.DataFrame, properties: pd.DataFrame, splits: pd.DataFrame,
                keys: tuple[str, ...] = (FILM_ID,)) -> pd.DataFrame:
    """id column(s), six conditions, direction, five properties and split, one row per id × direction.

    Conditions are joined on `film_id`; the split on the first key (a composite has the split of its own id).
    """
    columns = [*keys, *CONDITION_COLUMNS, DIRECTION, *PROPERTY_COLUMNS, "split"]
    merged = properties.merge(conditions, on=FILM_ID).merge(splits[[keys[0], "split"]], on=keys[0])
    return merged.sort_values([keys[0], DIRECTION], ignore_index=True)[columns]


def tables(ctx: StageContext) -> dict[str, Any]:
    """Write table, splits, scaler.json and the composite table; validate; write reports/tables.json."""
    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws, cfg = ctx.workspace, ctx.config("tables", TablesConfig)
        conditions = read_conditions(ws.raw)
        properties = pd.read_parquet(ws.processed / "properties.parquet")
        with_patches = set(pd.read_parquet(ws.processed / "patches.parquet", columns=[FILM_ID])[FILM_ID])
        films = sorted(set(properties[FILM_ID]) & with_patches)
        splits = film_splits(films, cfg.split_fractions, cfg.seed, cfg.gallery_fraction)
        table = build_table(conditions, properties[properties[FILM_ID].isin(films)], splits)
        validate(table, "table").raise_for_failures()
        train = conditions[conditions[FILM_ID].isin(splits.loc[splits["split"] == "train", FILM_ID])]
        scaler = {**fit_scaler(train), "data_version": table_hash(table)}
        write_parquet(splits, ws.processed / "splits.parquet")
        write_parquet(table, ws.processed / "table.parquet")
        write_json(scaler, ws.processed / "scaler.json")
        metrics.update(n_films=len(films), n_rows=len(table), data_version=scaler["data_version"],
                       split_films=splits["split"].value_counts().to_dict(),
                       n_gallery=int(splits["gallery"].sum()), n_generation=int(splits["generation"].sum()))
        composite_file = ws.processed / "composite_properties.parquet"
        if composite_file.exists():
            composites = pd.read_parquet(composite_file)
            composite_splits = split_ids(composites[COMPOSITE_ID].unique(), cfg.split_fractions, cfg.seed)
            composite_table = build_table(conditions, composites, composite_splits.rename(columns={"id": COMPOSITE_ID}),
                                          (COMPOSITE_ID, FILM_ID))
            validate(composite_table.drop(columns=[COMPOSITE_ID]), "table").raise_for_failures()
            write_parquet(composite_table, ws.processed / "composite_table.parquet")
            metrics["n_composites"] = int(composite_table[COMPOSITE_ID].nunique())
    ctx.write_metrics("tables", metrics)
    return metrics
