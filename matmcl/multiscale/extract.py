"""The descriptors stage's work: network descriptors of every frame's fiber network, molecular descriptors of every
film.

The features stage segments each raw frame once and stores its unmerged fiber network (processed/fiber_networks
.parquet, matmcl.multiscale.network.network_record); here each network is merged and solved on forked worker
processes (matmcl.parallel.map_forked). A frame without a network (no fibers, an empty image, no edge left after
merging) gets NaN descriptors and the reason in `error` instead of failing the stage, and the film means skip it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matmcl.lab.polymers import REFERENCE_POLYMER
from matmcl.multiscale.descriptors import DESCRIPTOR_KEYS, NetworkConfig, graph_descriptors
from matmcl.multiscale.network import network_from_record
from matmcl.parallel import map_forked
from matmcl.schema import FILM_ID

POLYMER = "polymer"
NETWORK_COLUMNS: tuple[str, ...] = (FILM_ID, "frame", *DESCRIPTOR_KEYS, "error")


def _describe_frame(record: dict, config: NetworkConfig) -> dict:
    row: dict = {FILM_ID: record[FILM_ID], "frame": record["frame"], "error": record["error"]}
    if not row["error"]:
        try:
            return {**row, **graph_descriptors(network_from_record(record), config)}
        except ValueError as error:
            row["error"] = str(error)
    return {**row, **{key: np.nan for key in DESCRIPTOR_KEYS}}


def frame_network_descriptors(networks: pd.DataFrame, config: NetworkConfig = NetworkConfig(), workers: int = 2,
                              progress: bool = True) -> pd.DataFrame:
    """One row of NETWORK_COLUMNS per row of a fiber-networks table (film_id, frame, the keys of
    matmcl.multiscale.network.network_record, error), in table order whatever the number of workers."""
    records = networks.to_dict("records")
    rows = list(map_forked(_describe_frame, records, (config,), workers, "network descriptors", progress))
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
