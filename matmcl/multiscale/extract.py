"""The descriptors stage's work: network descriptors of every raw SEM frame, molecular descriptors of every film.

Frames are measured on forked worker processes (matmcl.parallel.map_forked; a frame costs ~0.1 s, so two workers
halve the stage); a frame whose network cannot be built (no fibers, an empty image) gets NaN descriptors and the
reason in `error` instead of failing the stage, and the film means skip it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matmcl.features.extractor import info_bar_cell
from matmcl.lab.polymers import REFERENCE_POLYMER
from matmcl.multiscale.descriptors import DESCRIPTOR_KEYS, NetworkConfig, network_descriptors
from matmcl.parallel import map_forked
from matmcl.rawdata import load_sem_image
from matmcl.schema import FILM_ID

POLYMER = "polymer"
NETWORK_COLUMNS: tuple[str, ...] = (FILM_ID, "frame", *DESCRIPTOR_KEYS, "error")


def _describe_frame(task: tuple[str, int, str, float, object], config: NetworkConfig) -> dict:
    film_id, frame, path, pixel_size_nm, info_bar = task
    row: dict = {FILM_ID: film_id, "frame": frame, "error": ""}
    try:
        row.update(network_descriptors(load_sem_image(path), pixel_size_nm, info_bar_cell(info_bar), config))
    except ValueError as error:
        row.update({key: np.nan for key in DESCRIPTOR_KEYS}, error=str(error))
    return row


def frame_network_descriptors(frames: pd.DataFrame, raw_dir: str | Path, config: NetworkConfig = NetworkConfig(),
                              workers: int = 2, progress: bool = True) -> pd.DataFrame:
    """One row of NETWORK_COLUMNS per frame of a frames table (film_id, frame, path relative to raw_dir,
    pixel_size_nm, info_bar_px), in table order whatever the number of workers."""
    tasks = [(str(r.film_id), int(r.frame), str(Path(raw_dir) / r.path), float(r.pixel_size_nm), r.info_bar_px)
             for r in frames.itertuples(index=False)]
    rows = list(map_forked(_describe_frame, tasks, (config,), workers, "network descriptors", progress))
    return pd.DataFrame(rows, columns=list(NETWORK_COLUMNS)).astype({k: float for k in DESCRIPTOR_KEYS})


def film_polymers(conditions_csv: str | Path) -> pd.DataFrame:
    """film_id and polymer of every film of a raw conditions.csv: its `polymer` column when present (the validated
    reader drops extra columns, so it is read here directly), else the reference polymer of the virtual lab."""
    table = pd.read_csv(conditions_csv, dtype=str)
    films = table[FILM_ID].str.strip()
    if POLYMER in table.columns:
        polymers = table[POLYMER].fillna("").str.strip()
        missing = films[polymers == ""].tolist()
        if missing:
            raise ValueError(f"{conditions_csv}: films {missing[:5]} have an empty {POLYMER!r} cell")
    else:
        polymers = pd.Series(REFERENCE_POLYMER, index=table.index)
    return pd.DataFrame({FILM_ID: films, POLYMER: polymers})
