"""SEM preprocessing: frames → histogram-matched PNG patches, their manifest and the reference histogram.

Two passes over the frames, each parallel over frames in a process pool:
1. reference: sum the grey-level histograms of every frame's usable area (or load a given reference JSON);
2. patches: tile each frame, match every patch to the reference, write PNGs, return one manifest row per patch.
Patches are written into a temporary folder that replaces `<out_dir>/patches` only after every frame succeeded;
the manifest and the reference histogram are written afterwards, each atomically. Output order is frames sorted by
(film_id, frame), then patch number, whatever the number of workers. Layout: docs/processed-format.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from matmcl.atomic import atomic_dir, write_parquet
from matmcl.config import PreprocessConfig
from matmcl.rawdata import check_frame_size, load_sem_image
from matmcl.schema import PATCHES_FILE
from matmcl.sem.histmatch import N_LEVELS, grey_histogram, load_reference, match_histogram, save_reference
from matmcl.sem.infobar import info_bar_rows
from matmcl.sem.patching import grid_shape, patch_index, tile_frame, usable_area

FRAME_COLUMNS: tuple[str, ...] = ("film_id", "frame", "path", "pixel_size_nm", "info_bar_px")
MANIFEST_COLUMNS: tuple[str, ...] = (
    "film_id",
    "frame",
    "patch",
    "grid_row",
    "grid_col",
    "path",
    "pixel_size_nm",
    "raw_mean",
    "raw_std",
    "matched_mean",
    "matched_std",
)
PATCHES_DIR = "patches"
MANIFEST_FILE = PATCHES_FILE
REFERENCE_FILE = "reference_histogram.json"
POOLED_REFERENCE = "pooled"
REFERENCE_FILMS = "reference_films"  # pooled over a fixed film subset (matmcl.evaluation.protocol)
PNG_COMPRESS_LEVEL = 1  # zlib level: ~6x faster than PIL's default 6 for ~15 % larger files (lossless either way)
CHUNKS_PER_WORKER = 4  # tasks are handed out in about this many chunks per worker (load balance vs. overhead)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class FrameTask:
    """One SEM frame to process: its identity, its file and its geometry."""

    film_id: str
    frame: int
    path: Path
    pixel_size_nm: float
    info_bar_px: int | None  # None: detect the bar in the frame (matmcl.sem.infobar)


def patch_name(film_id: str, frame: int, patch: int) -> str:
    """Path of a patch PNG relative to the patches folder."""
    return f"{film_id}/{film_id}_f{frame}_p{patch}.png"


def frame_tasks(frames: pd.DataFrame, raw_dir: str | Path) -> list[FrameTask]:
    """Turn a frames table (as `matmcl.rawdata.read_frames_table` validates it) into tasks sorted by (film_id, frame)."""
    missing = [c for c in FRAME_COLUMNS if c not in frames.columns]
    if missing:
        raise ValueError(f"frames table lacks columns {missing}; expected {list(FRAME_COLUMNS)}")
    if frames.empty:
        raise ValueError("frames table is empty: nothing to preprocess")
    ordered = frames.sort_values(["film_id", "frame"], kind="stable")
    return [
        FrameTask(str(r.film_id), int(r.frame), Path(raw_dir) / str(r.path), float(r.pixel_size_nm),
                  None if pd.isna(r.info_bar_px) else int(r.info_bar_px))
        for r in ordered.itertuples(index=False)
    ]


def load_frame(task: FrameTask, tile_px: int) -> tuple[np.ndarray, int]:
    """Read a frame as uint8 and its info-bar rows (the table's, or detected where it gives none); check that at
    least one tile fits above the bar (RawDataError if not)."""
    image = load_sem_image(task.path)
    bar = info_bar_rows(image, task.info_bar_px)
    check_frame_size(image, bar, tile_px, task.path)
    return image, bar


def frame_histogram(task: FrameTask, tile_px: int) -> np.ndarray:
    """Grey-level histogram of a frame's usable area (pass 1 worker)."""
    return grey_histogram(usable_area(*load_frame(task, tile_px)))


def write_png(array: np.ndarray, path: Path) -> None:
    """Write an 8-bit grayscale PNG (no metadata, so identical pixels give identical bytes)."""
    Image.fromarray(array).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def process_frame(task: FrameTask, tile_px: int, reference_hist: np.ndarray, patches_dir: Path) -> list[dict[str, Any]]:
    """Tile a frame, match and write its patches under `patches_dir`; return their manifest rows (pass 2 worker)."""
    image, bar = load_frame(task, tile_px)
    tiles = tile_frame(image, bar, tile_px)
    n_cols = grid_shape(*image.shape, bar, tile_px)[1]
    (patches_dir / task.film_id).mkdir(parents=True, exist_ok=True)
    rows = []
    for tile in tiles:
        patch = patch_index(tile.grid_row, tile.grid_col, n_cols)
        name = patch_name(task.film_id, task.frame, patch)
        matched = match_histogram(tile.array, reference_hist)
        write_png(matched, patches_dir / name)
        rows.append(
            {
                "film_id": task.film_id,
                "frame": task.frame,
                "patch": patch,
                "grid_row": tile.grid_row,
                "grid_col": tile.grid_col,
                "path": f"{PATCHES_DIR}/{name}",
                "pixel_size_nm": task.pixel_size_nm,
                "raw_mean": float(tile.array.mean()),
                "raw_std": float(tile.array.std()),
                "matched_mean": float(matched.mean()),
                "matched_std": float(matched.std()),
            }
        )
    return rows


def map_frames(
    fn: Callable[[T], R], tasks: Sequence[T], workers: int, desc: str, progress: bool
) -> Iterator[R]:
    """Yield `fn(task)` for each task in order, in a pool of `workers` processes (in-process if ≤ 1)."""
    bar = partial(tqdm, total=len(tasks), desc=desc, unit="frame", disable=not progress)
    if workers <= 1:
        yield from bar(map(fn, tasks))
        return
    chunksize = max(1, math.ceil(len(tasks) / (workers * CHUNKS_PER_WORKER)))
    executor = ProcessPoolExecutor(max_workers=workers)
    try:
        yield from bar(executor.map(fn, tasks, chunksize=chunksize))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def pooled_reference(tasks: Sequence[FrameTask], config: PreprocessConfig, progress: bool) -> np.ndarray:
    """Sum of the usable-area histograms of all frames, accumulated as frames finish."""
    total = np.zeros(N_LEVELS, dtype=np.int64)
    fn = partial(frame_histogram, tile_px=config.tile_px)
    for hist in map_frames(fn, tasks, config.workers, "reference histogram", progress):
        total += hist
    return total


def resolve_reference(
    tasks: Sequence[FrameTask], config: PreprocessConfig, progress: bool
) -> tuple[np.ndarray, dict[str, Any]]:
    """The reference histogram and its provenance: pooled over `tasks`, or read from the JSON `config.reference`."""
    if config.reference == POOLED_REFERENCE:
        info = {"method": POOLED_REFERENCE, "source": "usable area (info bar dropped) of every frame"}
        return pooled_reference(tasks, config, progress), {**info, "n_frames": len(tasks)}
    if config.reference == REFERENCE_FILMS:
        # Only the frames of a fixed film subset (chosen from film ids alone, before any split); the evaluation
        # protocol keeps these films in training in every fold, so no test film's pixels shape the reference.
        from matmcl.evaluation.protocol import REFERENCE_FRACTION, reference_films

        films = reference_films([t.film_id for t in tasks], REFERENCE_FRACTION)
        chosen = [t for t in tasks if t.film_id in set(films)]
        info = {"method": REFERENCE_FILMS, "source": "usable area of the frames of the reference films",
                "films": films, "n_frames": len(chosen)}
        return pooled_reference(chosen, config, progress), info
    path = Path(config.reference)
    if not path.is_file():
        raise ValueError(f"preprocess.reference must be {POOLED_REFERENCE!r}, {REFERENCE_FILMS!r} or a reference JSON "
                         f"file; got {path}")
    return load_reference(path), {"method": "file", "source": str(path)}


def preprocess_frames(
    frames: pd.DataFrame,
    raw_dir: str | Path,
    out_dir: str | Path,
    config: PreprocessConfig,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Write `patches/`, `patches.parquet` and `reference_histogram.json` under `out_dir`; return manifest and stats.

    `frames` has the columns of raw `sem/frames.csv`, paths relative to `raw_dir`. A frame that cannot be read or
    is too small raises the loader's RawDataError naming the file; nothing under `out_dir` changes then.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    tasks = frame_tasks(frames, raw_dir)
    reference_hist, reference_info = resolve_reference(tasks, config, progress)
    rows: list[dict[str, Any]] = []
    with atomic_dir(out_dir / PATCHES_DIR) as tmp_dir:
        fn = partial(process_frame, tile_px=config.tile_px, reference_hist=reference_hist, patches_dir=tmp_dir)
        for frame_rows in map_frames(fn, tasks, config.workers, "patches", progress):
            rows.extend(frame_rows)
    save_reference(reference_hist, out_dir / REFERENCE_FILE, **reference_info)
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    write_parquet(manifest, out_dir / MANIFEST_FILE)
    seconds = time.perf_counter() - start
    stats = {
        "n_frames": len(tasks),
        "n_patches": len(manifest),
        "seconds": seconds,
        "patches_per_s": len(manifest) / seconds if seconds > 0 else 0.0,
        "workers": config.workers,
        "tile_px": config.tile_px,
    }
    return manifest, stats
