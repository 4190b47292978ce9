"""Stage `tensile`: the five properties of every curve, replicate means per film (and composite) and direction.

Bad curves follow `data.on_bad_curve`. A film (or composite) left without a readable curve in a direction after
the skips follows `data.on_missing`: one RawDataError naming it and its curve files, or it is dropped, logged and
listed in reports/tensile.json (`skipped_films`, `skipped_composites`). Nothing is written before every check passed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matmcl.artifacts import COMPOSITE_PROPERTIES_FILE, CURVE_PROPERTIES_FILE, GROUND_TRUTH_DIR, PROPERTIES_FILE
from matmcl.atomic import write_parquet
from matmcl.config import BoundsConfig, DataConfig
from matmcl.rawdata import MAX_LISTED, RawDataError, RawDataset, handle_incomplete, load_raw_dataset
from matmcl.schema import COMPOSITE_ID, DIRECTION, DIRECTION_NAMES, FILM_ID, PROPERTY_COLUMNS
from matmcl.stages.context import StageContext, StageResult, timed
from matmcl.tensile import CurveError, extract_properties, read_curve, summarize_replicates
from matmcl.validation import validate

log = logging.getLogger(__name__)

CURVE_COLUMNS = [DIRECTION, "replicate", "path", *PROPERTY_COLUMNS]


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
    return pd.DataFrame(rows, columns=[*id_columns, *CURVE_COLUMNS]), skipped


def lost_directions(curves: pd.DataFrame, per_curve: pd.DataFrame, key: str) -> list[tuple[str, str]]:
    """(id, reason) for every id of `curves` left without a readable curve in a direction (`per_curve`: the read ones).

    The reason names the direction and the curve files that were skipped.
    """
    readable = set(zip(per_curve[key], per_curve[DIRECTION]))
    problems = []
    for item, listed in curves.groupby(key, sort=False):
        reasons = []
        for flag, name in DIRECTION_NAMES.items():
            paths = listed.loc[listed[DIRECTION] == flag, "path"].tolist()
            if paths and (item, flag) not in readable:
                shown = ", ".join(paths[:MAX_LISTED]) + (" …" if len(paths) > MAX_LISTED else "")
                reasons.append(f"all {len(paths)} {name} tensile curve(s) unreadable ({shown})")
        if reasons:
            problems.append((str(item), ", ".join(reasons)))
    return problems


def relative_errors(measured: pd.DataFrame, truth: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """Median |measured − truth| / truth per property, matching rows on `keys`."""
    merged = measured.merge(truth, on=keys, suffixes=("", "_true"))
    return {p: round(float(np.median(np.abs(merged[p] / merged[f"{p}_true"] - 1))), 5) for p in PROPERTY_COLUMNS}


def _listed(skipped: list[tuple[str, str]], key: str) -> list[dict[str, str]]:
    return [{key: item, "reason": reason} for item, reason in skipped]


def tensile(ctx: StageContext) -> StageResult:
    """Write curve_properties, properties and composite_properties Parquet files and reports/tensile.json."""
    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws, cfg = ctx.workspace, ctx.config("data", DataConfig)
        dataset = load_raw_dataset(ws.raw, cfg.on_missing, ctx.config("bounds", BoundsConfig))
        per_curve, skipped = extract_curves(dataset.curves, ws.raw, [FILM_ID], cfg.on_bad_curve)
        lost = handle_incomplete(lost_directions(dataset.curves, per_curve, FILM_ID), "film", ws.raw, cfg.on_missing)
        dropped = {film for film, _ in lost}
        per_curve = per_curve[~per_curve[FILM_ID].isin(dropped)].reset_index(drop=True)
        if per_curve.empty:
            raise RawDataError(f"{ws.raw}: no film has readable tensile curves in both directions")
        properties = summarize_replicates(per_curve, FILM_ID)
        validate(properties, "properties").raise_for_failures()
        outputs = {CURVE_PROPERTIES_FILE: per_curve, PROPERTIES_FILE: properties}
        metrics.update(n_curves=len(per_curve), n_property_rows=len(properties), skipped_curves=skipped,
                       skipped_films=_listed(dataset.skipped + lost, FILM_ID))
        if dataset.composites is not None:
            composites, skipped_c, skipped_composites = _composites(ws.raw, dataset, dropped, cfg)
            if composites is not None:
                outputs[COMPOSITE_PROPERTIES_FILE] = composites
            metrics.update(n_composite_curves=int(composites["n_replicates"].sum()) if composites is not None else 0,
                           skipped_composite_curves=skipped_c,
                           skipped_composites=_listed(dataset.skipped_composites + skipped_composites, COMPOSITE_ID))
        truth = ws.raw / GROUND_TRUTH_DIR / "specimens.parquet"
        if truth.exists():
            metrics["tensile_rel_error"] = relative_errors(per_curve, pd.read_parquet(truth),
                                                           [FILM_ID, DIRECTION, "replicate"])
        for name, table in outputs.items():  # every check passed: only now write
            write_parquet(table, ws.processed / name)
        if COMPOSITE_PROPERTIES_FILE not in outputs:  # no composite left: a previous run's table must not be used
            (ws.processed / COMPOSITE_PROPERTIES_FILE).unlink(missing_ok=True)
    ctx.write_metrics("tensile", metrics)
    return StageResult(metrics)


def _composites(raw_dir: Path, dataset: RawDataset, dropped_films: set[str], cfg: DataConfig
                ) -> tuple[pd.DataFrame | None, list[dict[str, str]], list[tuple[str, str]]]:
    """Composite replicate means (None when no composite is left), skipped curves, skipped composites.

    A composite whose film was dropped here, or that lost a direction to bad curves, follows `cfg.on_missing`
    (a composite of a dropped film is skipped like in `load_raw_dataset`).
    """
    curves = dataset.composite_curves.merge(dataset.composites, on=COMPOSITE_ID)
    per_curve, skipped_curves = extract_curves(curves, raw_dir, [COMPOSITE_ID, FILM_ID], cfg.on_bad_curve)
    of_dropped = (dataset.composites.loc[dataset.composites[FILM_ID].isin(dropped_films), [COMPOSITE_ID, FILM_ID]]
                  .itertuples(index=False))
    skipped = [(composite, f"its film {film} was skipped") for composite, film in of_dropped]
    if skipped:
        log.warning("skipping %d composite(s) of skipped films: %s", len(skipped), skipped[:MAX_LISTED])
    gone = {c for c, _ in skipped}
    remaining = curves[~curves[COMPOSITE_ID].isin(gone)]
    skipped += handle_incomplete(lost_directions(remaining, per_curve, COMPOSITE_ID), "composite", raw_dir,
                                 cfg.on_missing)
    per_curve = per_curve[~per_curve[COMPOSITE_ID].isin({c for c, _ in skipped})]
    summary = summarize_replicates(per_curve, [COMPOSITE_ID, FILM_ID]) if len(per_curve) else None
    return summary, skipped_curves, skipped
