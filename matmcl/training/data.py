"""Model inputs from a processed folder (docs/processed-format.md): standardized conditions, SEM patches, batches.

- Conditions: the six conditions standardized with `scaler.json`, the direction flag appended unscaled (7 inputs).
- Images: 8-bit patches held in memory at their stored size; a batch is resized to `image_size` with torch
  (bilinear, antialiased), scaled to [0, 1], and rotated by 90° for transverse rows (direction 0), so that the
  fibers' drum axis lies along the tensile direction of the row in both cases.
- Rows are paired with their film's patches (`RowPatches`). Pre-training batches run over film × direction rows;
  every epoch draws one random patch per row. The draws and the row order depend only on (seed, epoch), so a
  resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from matmcl.schema import (
    CONDITION_COLUMNS,
    DIRECTION,
    FILM_ID,
    PATCHES_FILE,
    PROPERTY_COLUMNS,
    SCALER_FILE,
    SPLIT,
    TABLE_FILE,
    TRANSVERSE,
)

FEATURES_FILE = "features.parquet"
PIXEL_MAX = 255.0
N_INPUTS = len(CONDITION_COLUMNS) + 1  # six standardized conditions + the direction flag


@dataclass(frozen=True)
class ConditionScaler:
    """Mean and scale of the six conditions (fitted on training films), as written to scaler.json."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> ConditionScaler:
        doc = json.loads(Path(path).read_text())
        if list(doc.get("columns", [])) != list(CONDITION_COLUMNS):
            raise ValueError(f"{path}: columns {doc.get('columns')} != the six conditions {list(CONDITION_COLUMNS)}")
        mean, scale = np.asarray(doc["mean"], dtype=float), np.asarray(doc["scale"], dtype=float)
        expected = (len(CONDITION_COLUMNS),)
        if mean.shape != expected or scale.shape != expected or not (scale > 0).all():
            raise ValueError(f"{path}: need {len(CONDITION_COLUMNS)} means and positive scales")
        return cls(mean, scale)

    def inputs(self, conditions: pd.DataFrame) -> np.ndarray:
        """(n, 7) float32 model inputs: standardized conditions, then the direction flag unscaled."""
        scaled = (conditions[list(CONDITION_COLUMNS)].to_numpy(dtype=float) - self.mean) / self.scale
        return np.column_stack([scaled, conditions[DIRECTION].to_numpy(dtype=float)]).astype(np.float32)


def model_images(patches: torch.Tensor, image_size: int, transverse: torch.Tensor) -> torch.Tensor:
    """uint8 patches (N, 1, H, W) → float (N, 1, image_size, image_size) in [0, 1]; `transverse` rows rotated 90°."""
    images = patches.float() / PIXEL_MAX
    if images.shape[-1] != image_size or images.shape[-2] != image_size:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True,
                               align_corners=False).clamp_(0.0, 1.0)
    rotated = torch.rot90(images, k=1, dims=(-2, -1))
    return torch.where(transverse.view(-1, 1, 1, 1), rotated, images)


def read_patch(path: str | Path) -> np.ndarray:
    """A patch PNG as a 2-D uint8 array."""
    return np.asarray(Image.open(path).convert("L"), dtype=np.uint8)


def _evenly_spaced(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """`n` rows spread evenly from the first to the last (all rows when there are fewer)."""
    return rows.iloc[np.unique(np.linspace(0, len(rows) - 1, n).round().astype(int))]


@dataclass
class PatchBank:
    """Patches of some films in memory, (P, 1, H, W) uint8, with each film's contiguous index range."""

    pixels: torch.Tensor
    start: dict[str, int]
    count: dict[str, int]

    @classmethod
    def load(cls, processed_dir: str | Path, film_ids: Sequence[str], per_film: int = 0) -> PatchBank:
        """The patches of `film_ids`: all of them, or `per_film` (> 0) evenly spaced ones per film (spread over
        its frames)."""
        processed_dir = Path(processed_dir)
        manifest = pd.read_parquet(processed_dir / PATCHES_FILE)
        manifest = manifest[manifest[FILM_ID].isin(set(film_ids))].sort_values([FILM_ID, "frame", "patch"])
        missing = sorted(set(film_ids) - set(manifest[FILM_ID]))
        if missing:
            raise ValueError(f"{processed_dir / PATCHES_FILE}: no patches for films {missing[:10]}")
        if per_film > 0:
            manifest = pd.concat([_evenly_spaced(film, per_film) for _, film in manifest.groupby(FILM_ID, sort=False)])
        arrays = [read_patch(processed_dir / p) for p in manifest["path"]]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"{processed_dir / PATCHES_FILE}: patches of different sizes {sorted(shapes)}")
        counts = manifest.groupby(FILM_ID, sort=False).size()
        starts = np.concatenate([[0], np.cumsum(counts.to_numpy())[:-1]])
        return cls(torch.from_numpy(np.stack(arrays))[:, None], dict(zip(counts.index, starts.tolist())),
                   dict(zip(counts.index, counts.tolist())))

    def film_patches(self, film_id: str) -> np.ndarray:
        """Indices of a film's patches in `pixels`."""
        return np.arange(self.start[film_id], self.start[film_id] + self.count[film_id])


def draw_one_per_row(row: torch.Tensor, n_rows: int, rng: np.random.Generator) -> torch.Tensor:
    """For items owned by rows (`row[k]` = owner of item k), the index of one uniformly drawn item per row."""
    order = torch.argsort(row, stable=True)
    counts = torch.bincount(row, minlength=n_rows)
    offsets = torch.from_numpy(np.floor(rng.random(n_rows) * counts.numpy()).astype(np.int64))
    return order[torch.cumsum(counts, 0) - counts + offsets]


@dataclass
class RowPatches:
    """Film × direction rows paired with patches: pair k joins row `row[k]` and patch `patch[k]` of `pixels`."""

    inputs: torch.Tensor
    transverse: torch.Tensor
    pixels: torch.Tensor
    row: torch.Tensor
    patch: torch.Tensor

    @classmethod
    def from_bank(cls, rows: pd.DataFrame, scaler: ConditionScaler, bank: PatchBank) -> RowPatches:
        """Each row with every patch of its film in `bank`."""
        per_row = [bank.film_patches(f) for f in rows[FILM_ID]]
        return cls(
            inputs=torch.from_numpy(scaler.inputs(rows)),
            transverse=torch.from_numpy(rows[DIRECTION].to_numpy() == TRANSVERSE),
            pixels=bank.pixels,
            row=torch.from_numpy(np.repeat(np.arange(len(rows)), [len(p) for p in per_row])),
            patch=torch.from_numpy(np.concatenate(per_row)),
        )

    def __len__(self) -> int:
        """Number of (row, patch) pairs."""
        return len(self.row)

    @property
    def n_rows(self) -> int:
        return len(self.inputs)

    def pair_batch(self, pairs: torch.Tensor, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(conditions (b, 7), images (b, 1, S, S)) of the pairs with indices `pairs`."""
        rows = self.row[pairs]
        return self.inputs[rows], model_images(self.pixels[self.patch[pairs]], image_size, self.transverse[rows])


@dataclass
class ProcessedData:
    """The model-ready tables of a processed folder: film × direction rows, the condition scaler, features."""

    directory: Path
    table: pd.DataFrame
    scaler: ConditionScaler
    features: pd.DataFrame | None

    @classmethod
    def load(cls, processed_dir: str | Path) -> ProcessedData:
        directory = Path(processed_dir)
        table = pd.read_parquet(directory / TABLE_FILE)
        needed = [FILM_ID, *CONDITION_COLUMNS, DIRECTION, *PROPERTY_COLUMNS, SPLIT]
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise ValueError(f"{directory / TABLE_FILE} lacks columns {missing}")
        features_path = directory / FEATURES_FILE
        features = pd.read_parquet(features_path) if features_path.exists() else None
        table = table.sort_values([FILM_ID, DIRECTION], kind="stable", ignore_index=True)
        return cls(directory, table, ConditionScaler.load(directory / SCALER_FILE), features)

    def rows(self, splits: Sequence[str]) -> pd.DataFrame:
        """Table rows of the films in `splits` (an error if there are none)."""
        rows = self.table[self.table[SPLIT].isin(list(splits))].reset_index(drop=True)
        if rows.empty:
            raise ValueError(f"{self.directory / TABLE_FILE}: no rows in splits {list(splits)}")
        return rows

    def patches(self, rows: pd.DataFrame, per_film: int = 0) -> PatchBank:
        """The patches of the films of `rows` (all, or `per_film` evenly spaced ones per film)."""
        return PatchBank.load(self.directory, rows[FILM_ID].unique().tolist(), per_film)


class PretrainBatches:
    """Pre-training batches over film × direction rows: {"table": (B, 7), "image": (B, 1, S, S)}.

    With `groups` (e.g. film codes per row), rows of a group stay adjacent in the shuffled order, so that both
    directions of a film usually share a batch and are negatives of each other.
    """

    def __init__(self, pairs: RowPatches, image_size: int, batch_size: int, groups: np.ndarray | None = None) -> None:
        self.pairs, self.image_size, self.batch_size, self.groups = pairs, image_size, batch_size, groups

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-self.pairs.n_rows // self.batch_size)

    def _row_order(self, rng: np.random.Generator) -> np.ndarray:
        if self.groups is None:
            return rng.permutation(self.pairs.n_rows)
        rank = rng.permutation(self.groups.max() + 1)[self.groups]
        return np.argsort(rank, kind="stable")

    def epoch(self, seed: int, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of one epoch: one random patch drawn per row and the rows shuffled, both from (seed, epoch)."""
        rng = np.random.default_rng([seed, epoch])
        chosen = draw_one_per_row(self.pairs.row, self.pairs.n_rows, rng)
        order = chosen[torch.from_numpy(self._row_order(rng))]
        for batch in order.split(self.batch_size):
            table, image = self.pairs.pair_batch(batch, self.image_size)
            yield {"table": table, "image": image}
