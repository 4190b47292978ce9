"""The pipeline's structural features: `measure_frame` on every raw SEM frame, averaged per film.

`extract_frame_features` measures each frame of a frames table (docs/data-format.md) on a process pool;
`extract_frame_structure` also builds each frame's fiber network from the same segmentation (one
`network_record` row per frame, for the descriptors stage). `film_features` aggregates frames per film and
`feature_errors` compares film features with the virtual lab's per-frame ground truth. Measurement happens on the raw
frames (info bar removed), not on the model's histogram-matched patches: the patch size and the matching must not
change what is measured.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from matmcl.features.measure import MEASURE_KEYS, measure_and_segment
from matmcl.features.orientation import MIN_ORDER_FOR_ANGLE
from matmcl.multiscale.network import NETWORK_RECORD_KEYS, network_record, segmentation_network
from matmcl.rawdata import load_sem_image
from matmcl.schema import FEATURE_COLUMNS, FILM_ID

FRAME_KEYS: tuple[str, ...] = (FILM_ID, "frame")
CHUNKS_PER_WORKER = 4  # frames are handed to the pool in about this many chunks per worker
ALIGNED_ORDER = 0.3  # films whose true order is below this have no meaningful mean angle (left out of its error)
FRAME_COLUMNS: tuple[str, ...] = (*FRAME_KEYS, *(k for k in MEASURE_KEYS if k != "quality"), "quality")


def info_bar_cell(value: object) -> int | str:
    """A frames-table info_bar_px cell: a row count, or "auto" when it is missing."""
    return "auto" if value is None or pd.isna(value) else int(value)


def _measure_task(task: tuple[str, int, str, float, object, bool]) -> tuple[dict, dict | None]:
    """Measure one frame (runs in a worker): its features row (quality warnings joined into one string) and, when
    asked, its fiber network row (`error` says why a frame has none)."""
    film_id, frame, path, pixel_size_nm, info_bar, with_network = task
    result, segmentation = measure_and_segment(load_sem_image(path), pixel_size_nm, info_bar_cell(info_bar))
    row = {FILM_ID: film_id, "frame": frame, **result, "quality": "; ".join(result["quality"])}
    if not with_network:
        return row, None
    network = {FILM_ID: film_id, "frame": frame, **dict.fromkeys(NETWORK_RECORD_KEYS), "error": ""}
    if segmentation is None:
        network["error"] = "the image is flat: no fibers to build a network from"
        return row, network
    try:
        network.update(network_record(segmentation_network(segmentation)))
    except ValueError as error:
        network["error"] = str(error)
    return row, network


def extract_frame_structure(frames: pd.DataFrame, raw_dir: str | Path, workers: int = 2, progress: bool = True,
                            networks: bool = True) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One row of FRAME_COLUMNS per frame of `frames` (film_id, frame, path relative to raw_dir, pixel_size_nm,
    info_bar_px), in table order whatever the number of workers; with `networks`, also one row per frame of
    film_id, frame, NETWORK_RECORD_KEYS (the unmerged fiber network) and error."""
    missing = [c for c in (*FRAME_KEYS, "path", "pixel_size_nm", "info_bar_px") if c not in frames.columns]
    if missing:
        raise ValueError(f"frames table lacks columns {missing}")
    tasks = [(str(r.film_id), int(r.frame), str(Path(raw_dir) / r.path), float(r.pixel_size_nm), r.info_bar_px,
              networks) for r in frames.itertuples(index=False)]
    chunksize = max(1, math.ceil(len(tasks) / (max(1, workers) * CHUNKS_PER_WORKER)))
    rows, network_rows = [], []
    with tqdm(total=len(tasks), desc="structure features", unit="frame", disable=not progress) as bar:
        with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            for row, network in (pool.map(_measure_task, tasks, chunksize=chunksize) if pool
                                 else map(_measure_task, tasks)):
                rows.append(row)
                network_rows.append(network)
                bar.update()
    features = pd.DataFrame(rows, columns=list(FRAME_COLUMNS)).astype({c: float for c in FEATURE_COLUMNS})
    return features, pd.DataFrame(network_rows) if networks else None


def extract_frame_features(frames: pd.DataFrame, raw_dir: str | Path, workers: int = 2, progress: bool = True
                           ) -> pd.DataFrame:
    """One row of FRAME_COLUMNS per frame of `frames` (see `extract_frame_structure`), no networks."""
    return extract_frame_structure(frames, raw_dir, workers, progress, networks=False)[0]


def film_features(frame_features: pd.DataFrame) -> pd.DataFrame:
    """Per-film FEATURE_COLUMNS and `n_frames` from frame features.

    Diameter, pore size, porosity and order are frame means (undefined frames skipped). The mean angle is half the
    argument of the mean moment S·exp(2iθ0) over the frames that define an angle; NaN when none does or when the
    film's mean order is below matmcl.features.orientation.MIN_ORDER_FOR_ANGLE.
    """
    frames = frame_features.assign(moment=frame_features["orientation_order"].to_numpy(float)
                                   * np.exp(2j * np.deg2rad(frame_features["mean_angle_deg"].to_numpy(float))))
    groups = frames.groupby(FILM_ID, sort=False)
    films = groups[["orientation_order", "diameter_nm", "pore_size_um", "porosity"]].mean()
    angle = groups["moment"].agg(lambda m: np.rad2deg(0.5 * np.angle(m.dropna().mean())) if m.notna().any()
                                 else np.nan)
    films["mean_angle_deg"] = angle.where(films["orientation_order"] >= MIN_ORDER_FOR_ANGLE)
    films["n_frames"] = groups.size()
    return films.reset_index()[[FILM_ID, *FEATURE_COLUMNS, "n_frames"]]


def _angle_difference_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Difference of two axial angles (period 180°), in [−90°, 90°)."""
    return (np.asarray(a) - np.asarray(b) + 90.0) % 180.0 - 90.0


def feature_errors(film_features: pd.DataFrame, truth_images: pd.DataFrame) -> dict[str, float | int | pd.DataFrame]:
    """Film features vs. ground truth (film means of ground_truth/images.parquet rows).

    Returns `per_film` (a DataFrame with truth, estimate and error per film) and the summary: `diameter_mape`,
    `orientation_order_mae`, `pore_size_mape`, `porosity_mae` (vs. the true open-area fraction),
    `mean_angle_mae_deg` (films with true order ≥ 0.3) and `n_films`.
    """
    truth_columns = ["diameter_mean_nm", "orientation_order", "mean_angle_deg", "pore_size_um", "open_area_fraction"]
    truth = truth_images.groupby(FILM_ID, sort=False)[truth_columns].mean().add_prefix("true_").reset_index()
    table = film_features.merge(truth, on=FILM_ID, how="inner")
    if table.empty:
        raise ValueError("no film of the features has ground truth")
    table["diameter_rel_error"] = table["diameter_nm"] / table["true_diameter_mean_nm"] - 1
    table["orientation_order_error"] = table["orientation_order"] - table["true_orientation_order"]
    table["pore_size_rel_error"] = table["pore_size_um"] / table["true_pore_size_um"] - 1
    table["porosity_error"] = table["porosity"] - table["true_open_area_fraction"]
    table["mean_angle_error_deg"] = _angle_difference_deg(table["mean_angle_deg"], table["true_mean_angle_deg"])
    aligned = table["true_orientation_order"] >= ALIGNED_ORDER
    return {
        "per_film": table,
        "diameter_mape": float(table["diameter_rel_error"].abs().mean()),
        "orientation_order_mae": float(table["orientation_order_error"].abs().mean()),
        "pore_size_mape": float(table["pore_size_rel_error"].abs().mean()),
        "porosity_mae": float(table["porosity_error"].abs().mean()),
        "mean_angle_mae_deg": float(table.loc[aligned, "mean_angle_error_deg"].abs().mean()),
        "n_films": int(len(table)),
    }
