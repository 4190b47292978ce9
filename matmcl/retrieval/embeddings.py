"""Film-level embeddings of an SGPT model in its joint space.

- condition embedding (`table`): the film's longitudinal row (six standardized conditions, direction 1);
- structure embedding (`image`): mean of the L2-normalised image embeddings of the film's patches in their stored
  (longitudinal) orientation, re-normalised.
The CV hook (`fold_embeddings`) stores these for each fold's inner-training and test films in
`models/cv_embeddings.npz`, so retrieval is evaluated without re-training or re-encoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from matmcl.atomic import atomic_path
from matmcl.models.sgpt import IMAGE, SGPTModel
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FILM_ID, LONGITUDINAL
from matmcl.training.data import N_INPUTS, ConditionScaler, PatchBank, RowPatches
from matmcl.training.properties import embed_conditions, embed_pairs

ROLE_TRAIN, ROLE_TEST = "train", "test"
DATA_VERSION_KEY = "data_version"
CV_FIELDS = ("fold", "repeat", FILM_ID, "role", "conditions", "table", "image")


@dataclass(frozen=True)
class FilmEmbeddings:
    """Per film: id, raw conditions (n, 6) and unit condition / structure embeddings (n, d) float32."""

    film_id: np.ndarray
    conditions: np.ndarray
    table: np.ndarray
    image: np.ndarray


def film_rows(table: pd.DataFrame, film_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """One longitudinal row per film (the six conditions, direction 1), in `film_ids` order (default: all)."""
    films = table.drop_duplicates(FILM_ID).set_index(FILM_ID)
    ids = list(films.index) if film_ids is None else list(film_ids)
    return films.loc[ids, list(CONDITION_COLUMNS)].reset_index().assign(**{DIRECTION: LONGITUDINAL})


def bank_of(patches: Mapping[str, Sequence[np.ndarray]]) -> PatchBank:
    """A PatchBank of 2-D uint8 patches given per film (e.g. cut from a user's SEM frames)."""
    counts = [len(p) for p in patches.values()]
    if min(counts, default=0) == 0:
        raise ValueError("every film needs at least one patch")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
    pixels = torch.from_numpy(np.stack([np.asarray(p, dtype=np.uint8) for ps in patches.values() for p in ps]))
    return PatchBank(pixels[:, None], dict(zip(patches, starts)), dict(zip(patches, counts)))


def embed_structures(model: SGPTModel, image_size: int, bank: PatchBank, film_ids: Sequence[str], batch_size: int,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """(n, d) unit structure embeddings: each film's patch embeddings (longitudinal orientation) averaged and
    re-normalised."""
    per_film = [bank.film_patches(f) for f in film_ids]
    pairs = RowPatches(inputs=torch.zeros(len(per_film), N_INPUTS), transverse=torch.zeros(len(per_film), dtype=bool),
                       pixels=bank.pixels, row=torch.from_numpy(np.repeat(np.arange(len(per_film)),
                                                                          [len(p) for p in per_film])),
                       patch=torch.from_numpy(np.concatenate(per_film)))
    per_patch = embed_pairs(model, IMAGE, pairs, image_size, batch_size, torch.device(device))
    return torch.nn.functional.normalize(per_patch.average(per_patch.values), dim=-1).numpy().astype(np.float32)


def embed_condition_rows(model: SGPTModel, scaler: ConditionScaler, rows: pd.DataFrame,
                         device: str | torch.device = "cpu") -> np.ndarray:
    """(n, d) unit condition embeddings of rows holding the six conditions and `direction`."""
    inputs = torch.from_numpy(scaler.inputs(rows))
    return embed_conditions(model, inputs, torch.device(device)).values.numpy().astype(np.float32)


def embed_films(model: SGPTModel, image_size: int, scaler: ConditionScaler, rows: pd.DataFrame, bank: PatchBank,
                batch_size: int, device: str | torch.device = "cpu") -> FilmEmbeddings:
    """Condition and structure embeddings of the films of `rows` (one longitudinal row per film, see `film_rows`)
    from the patches of `bank`."""
    ids = rows[FILM_ID].to_numpy(dtype=str)
    return FilmEmbeddings(ids, rows[list(CONDITION_COLUMNS)].to_numpy(dtype=float),
                          embed_condition_rows(model, scaler, rows, device),
                          embed_structures(model, image_size, bank, ids, batch_size, device))


def fold_embeddings(model: SGPTModel, image_size: int, scaler: ConditionScaler, table: pd.DataFrame,
                    bank: PatchBank, train: Sequence[str], test: Sequence[str], fold: int, repeat: int,
                    batch_size: int) -> dict[str, np.ndarray]:
    """One CV fold's embeddings of its inner-training (`role` "train") and test films, as arrays of CV_FIELDS."""
    ids = [*train, *test]
    emb = embed_films(model, image_size, scaler, film_rows(table, ids), bank, batch_size)
    return {"fold": np.full(len(ids), fold), "repeat": np.full(len(ids), repeat), FILM_ID: emb.film_id,
            "role": np.array([ROLE_TRAIN] * len(train) + [ROLE_TEST] * len(test)), "conditions": emb.conditions,
            "table": emb.table, "image": emb.image}


def concat_folds(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The folds' embedding arrays stacked (empty dict when there are none)."""
    return {key: np.concatenate([p[key] for p in parts]) for key in CV_FIELDS} if parts else {}


def write_cv_embeddings(arrays: Mapping[str, np.ndarray], data_version: str, path: str | Path) -> Path:
    """Write the folds' embeddings and the data version they were computed on to an .npz, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays, **{DATA_VERSION_KEY: np.array(data_version)})
    return Path(path)


def read_cv_embeddings(path: str | Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, str]:
    """(one row per fold × film: fold, repeat, film_id, role and the six conditions; table and image embeddings;
    the data version)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `matmcl evaluate` (it stores each CV fold's embeddings)")
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in (*CV_FIELDS, DATA_VERSION_KEY) if k not in npz.files]
        if missing:
            raise ValueError(f"{path} lacks {missing}: rerun `matmcl evaluate`")
        rows = pd.DataFrame({k: npz[k] for k in ("fold", "repeat", FILM_ID, "role")})
        rows[list(CONDITION_COLUMNS)] = npz["conditions"]
        return rows, npz["table"], npz["image"], str(npz[DATA_VERSION_KEY])
