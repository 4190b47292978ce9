"""Predict the five properties of a mat, in both tensile directions, from its processing conditions.

Conditions only (virtual screening) uses the `matmcl_conditions` head; when SEM patches are given for a row, that
row is predicted by the `matmcl_fusion` head, averaged over its patches. Input checks: a missing condition column,
a non-numeric or missing (NaN) value raise `PredictionInputError` naming the column and rows; values outside the
training range are predicted but flagged in the `out_of_range` column and logged as a warning. `Predictor.load`
refuses (LineageError) models trained on other data than the processed folder holds, and heads trained on another
SGPT model than the one beside them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from matmcl.artifacts import HEADS_DIR, PATCHES_FILE, REFERENCE_FILE, SGPT_DIR
from matmcl.config import BoundsConfig
from matmcl.models.heads import PropertyHead
from matmcl.models.sgpt import TABLE, SGPTModel
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, DIRECTION_NAMES, PROPERTY_COLUMNS, TRANSVERSE
from matmcl.sem.histmatch import load_reference, match_histogram
from matmcl.sem.patching import tile_frame
from matmcl.target_scaling import TargetScaler
from matmcl.training.data import ConditionScaler, ProcessedData, RowPatches, read_patch
from matmcl.training.properties import (
    FUSION_INPUTS,
    RowInputs,
    embed_conditions,
    embed_pairs,
    head_metadata,
    joint_row_means,
    load_head,
    predict_rows,
)
from matmcl.training.pretrain import check_sgpt, load_sgpt

log = logging.getLogger(__name__)

CONDITIONS_MODEL, FUSION_MODEL = "matmcl_conditions", "matmcl_fusion"
ROW, MODEL, OUT_OF_RANGE = "row", "model", "out_of_range"
DIRECTION_NAME = "direction_name"
CPU = torch.device("cpu")
EMBED_BATCH = 256

Patches = Sequence[np.ndarray]


class PredictionInputError(ValueError):
    """Conditions or images that cannot be predicted; the message names the column, row or patch."""


def _positions(flags: pd.Series | np.ndarray, limit: int = 10) -> list[int]:
    """0-based positions of the first `limit` true flags (the `row` numbers of the output)."""
    return np.flatnonzero(np.asarray(flags))[:limit].tolist()


def check_conditions(conditions: pd.DataFrame, bounds: BoundsConfig | None = None) -> pd.DataFrame:
    """The six condition columns as floats; raises PredictionInputError for missing columns, text, NaN, infinite
    or physically impossible values (outside `bounds`, default `BoundsConfig()`: the bounds raw data is read with).
    Values merely outside the training range are not rejected here (Predictor.predict flags them)."""
    if len(conditions) == 0:
        raise PredictionInputError("no condition rows to predict")
    missing = [c for c in CONDITION_COLUMNS if c not in conditions.columns]
    if missing:
        raise PredictionInputError(f"missing condition column(s) {missing}; every row needs {list(CONDITION_COLUMNS)}")
    values = conditions[list(CONDITION_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    text = values.isna() & conditions[list(CONDITION_COLUMNS)].notna()
    for label, bad in (("non-numeric", text), ("missing (NaN)", values.isna() & ~text)):
        if bad.to_numpy().any():
            column = bad.any().idxmax()
            raise PredictionInputError(f"{label} value of {column} in row(s) {_positions(bad[column])}")
    infinite = ~np.isfinite(values.to_numpy())
    if infinite.any():
        raise PredictionInputError(f"infinite condition value in row(s) {_positions(infinite.any(axis=1))}")
    for column, bound in (bounds or BoundsConfig()).items():
        impossible = ~bound.contains(values[column].to_numpy(dtype=float))
        if impossible.any():
            raise PredictionInputError(
                f"physically impossible value of {column} in row(s) {_positions(impossible)}: "
                f"{values[column].to_numpy(dtype=float)[impossible][0]:g} is outside {bound} (params.yaml bounds)")
    return values.astype(float).reset_index(drop=True)


def check_direction(rows: pd.DataFrame) -> np.ndarray:
    """The `direction` column as integer flags (1 longitudinal, 0 transverse); PredictionInputError otherwise."""
    if DIRECTION not in rows.columns:
        raise PredictionInputError(f"missing column {DIRECTION!r}: 1 (longitudinal) or 0 (transverse) per row")
    flags = pd.to_numeric(rows[DIRECTION], errors="coerce")
    bad = ~flags.isin(list(DIRECTION_NAMES))
    if bad.any():
        raise PredictionInputError(f"{DIRECTION} must be 1 (longitudinal) or 0 (transverse); not in row(s) "
                                   f"{_positions(bad)}")
    return flags.to_numpy(dtype=np.int64)


@torch.no_grad()
def predict_conditions(sgpt: SGPTModel, head: PropertyHead, targets: TargetScaler, scaler: ConditionScaler,
                       rows: pd.DataFrame) -> np.ndarray:
    """The conditions head's five properties (physical units) for rows of the six conditions and `direction`."""
    x = torch.from_numpy(scaler.inputs(rows))
    return predict_rows(head, embed_conditions(sgpt, x, CPU), targets, CPU)


def patches_from_frame(frame: np.ndarray, info_bar_px: int, tile_px: int, reference: np.ndarray) -> list[np.ndarray]:
    """Cut a raw SEM frame into `tile_px` patches above its info bar, histogram-matched like the training patches."""
    return [match_histogram(tile.array, reference) for tile in tile_frame(frame, info_bar_px, tile_px)]


def _check_patches(images: Sequence[Patches | None], n_rows: int) -> None:
    if len(images) != n_rows:
        raise PredictionInputError(f"{len(images)} image entries for {n_rows} condition rows; give one per row "
                                   "(None for rows without SEM patches)")
    shapes = set()
    for i, patches in enumerate(images):
        for k, patch in enumerate(patches or []):
            patch = np.asarray(patch)
            if patch.ndim != 2 or patch.dtype != np.uint8:
                raise PredictionInputError(f"row {i}, patch {k}: need a 2-D uint8 grayscale patch, got "
                                           f"shape {patch.shape} and dtype {patch.dtype}")
            shapes.add(patch.shape)
    if len(shapes) > 1:
        raise PredictionInputError(f"patches of different sizes {sorted(shapes)}; give same-size patches")


@dataclass
class Predictor:
    """The pre-trained SGPT model, the served heads, the condition scaler and the training range."""

    sgpt: SGPTModel
    image_size: int
    scaler: ConditionScaler
    heads: dict[str, tuple[PropertyHead, TargetScaler]]
    train_min: pd.Series
    train_max: pd.Series
    reference: np.ndarray | None = None
    patch_px: int | None = None
    fusion_design: str = "fused"  # the fusion head's inputs (FUSION_INPUTS), chosen on validation by `heads`
    joint_stats: tuple[torch.Tensor, torch.Tensor] | None = None  # standardization of joint "a+b" inputs

    @classmethod
    def load(cls, models_dir: str | Path, processed_dir: str | Path) -> Predictor:
        """From models_dir/sgpt, models_dir/property/<variant> and the processed folder (scaler, training range).

        LineageError when SGPT was trained on other data than `processed_dir` holds, or the heads on other data or
        another SGPT model.
        """
        models_dir, processed_dir = Path(models_dir), Path(processed_dir)
        sources = check_sgpt(models_dir / SGPT_DIR, processed_dir)
        sgpt, pretrain_config = load_sgpt(models_dir / SGPT_DIR)
        heads = {v: load_head(models_dir / HEADS_DIR / v, sources) for v in (CONDITIONS_MODEL, FUSION_MODEL)
                 if (models_dir / HEADS_DIR / v).is_dir()}
        if CONDITIONS_MODEL not in heads:
            raise FileNotFoundError(f"{models_dir / HEADS_DIR / CONDITIONS_MODEL} is missing; train the heads first")
        processed = ProcessedData.load(processed_dir)
        train = processed.rows(["train"])[list(CONDITION_COLUMNS)]
        reference_path = processed_dir / REFERENCE_FILE
        first_patch = pd.read_parquet(processed_dir / PATCHES_FILE, columns=["path"])["path"].iloc[0]
        design, joint_stats = "fused", None
        if FUSION_MODEL in heads:
            meta = head_metadata(models_dir / HEADS_DIR / FUSION_MODEL)
            design = meta.get("design", design)
            if "joint_mean" in meta:
                joint_stats = (torch.tensor(meta["joint_mean"], dtype=torch.float64),
                               torch.tensor(meta["joint_std"], dtype=torch.float64))
        return cls(sgpt.to(CPU).eval(), pretrain_config.image_size, processed.scaler, heads, train.min(), train.max(),
                   load_reference(reference_path) if reference_path.is_file() else None,
                   read_patch(processed_dir / first_patch).shape[0], design, joint_stats)

    def out_of_range(self, conditions: pd.DataFrame) -> list[str]:
        """Per row, the comma-joined names of conditions outside the training range ("" when inside)."""
        outside = (conditions < self.train_min) | (conditions > self.train_max)
        return [",".join(outside.columns[flags]) for flags in outside.to_numpy()]

    def patches_from_frame(self, frame: np.ndarray, info_bar_px: int) -> list[np.ndarray]:
        """A raw SEM frame → patches prepared like the training patches (same tile size and reference)."""
        if self.reference is None:
            raise FileNotFoundError(f"the processed folder has no {REFERENCE_FILE}: cannot match SEM frames")
        return patches_from_frame(frame, info_bar_px, self.patch_px, self.reference)

    @torch.no_grad()
    def predict(self, conditions: pd.DataFrame, images: Sequence[Patches | None] | None = None,
                bounds: BoundsConfig | None = None) -> pd.DataFrame:
        """Five properties in physical units for each condition row × both directions.

        `images` (optional): one entry per condition row, a list of preprocessed patches (2-D uint8, histogram-
        matched, e.g. from `patches_from_frame`) or None; rows with patches use the fusion head. Columns of the
        result: `row` (input position), the six conditions, `direction`, `direction_name`, the five properties,
        `model` and `out_of_range`. Physically impossible conditions (outside `bounds`, default `BoundsConfig()`)
        raise PredictionInputError.
        """
        values = check_conditions(conditions, bounds)
        rows = pd.concat([values.assign(**{DIRECTION: flag}) for flag in sorted(DIRECTION_NAMES)])
        rows = rows.rename_axis(ROW).reset_index().sort_values([ROW, DIRECTION], kind="stable", ignore_index=True)
        prediction = predict_conditions(self.sgpt, *self.heads[CONDITIONS_MODEL], self.scaler, rows)
        model = np.full(len(rows), CONDITIONS_MODEL, dtype=object)
        if images is not None:
            _check_patches(images, len(values))
            with_images = np.array([images[i] is not None and len(images[i]) > 0 for i in rows[ROW]])
            if with_images.any():
                if FUSION_MODEL not in self.heads:
                    raise FileNotFoundError(f"no {FUSION_MODEL} head was trained: cannot use SEM images")
                prediction[with_images] = self._fusion(rows[with_images], images)
                model[with_images] = FUSION_MODEL
        out = rows.assign(**{DIRECTION_NAME: rows[DIRECTION].map(DIRECTION_NAMES)})
        out[list(PROPERTY_COLUMNS)] = prediction
        out[MODEL] = model
        out[OUT_OF_RANGE] = self.out_of_range(rows[list(CONDITION_COLUMNS)])
        flagged = out.loc[out[OUT_OF_RANGE] != "", [ROW, OUT_OF_RANGE]].drop_duplicates(ROW)
        if len(flagged):
            log.warning("conditions outside the training range (extrapolation, less reliable): %s",
                        "; ".join(f"row {r.row}: {r.out_of_range}" for r in flagged.itertuples()))
        return out

    def _fusion(self, rows: pd.DataFrame, images: Sequence[Patches | None]) -> np.ndarray:
        """Fusion-head predictions of rows that have patches, averaged over each row's patches."""
        per_row = [images[i] for i in rows[ROW]]
        pairs = RowPatches(
            inputs=torch.from_numpy(self.scaler.inputs(rows)),
            transverse=torch.from_numpy(rows[DIRECTION].to_numpy() == TRANSVERSE),
            pixels=torch.from_numpy(np.stack([p for patches in per_row for p in patches]))[:, None],
            row=torch.from_numpy(np.repeat(np.arange(len(rows)), [len(p) for p in per_row])),
            patch=torch.arange(sum(len(p) for p in per_row)),
        )
        head, targets = self.heads[FUSION_MODEL]
        return predict_rows(head, self._fusion_inputs(pairs), targets, CPU)

    def _fusion_inputs(self, pairs: RowPatches) -> RowInputs:
        """The fusion head's inputs, as `heads` trained it: per-patch fused embeddings, or the standardized
        concatenation of row means ("table+image", "table+image_pre")."""
        modality = FUSION_INPUTS[self.fusion_design]
        if "+" not in modality:
            return embed_pairs(self.sgpt, modality, pairs, self.image_size, EMBED_BATCH, CPU)
        if self.joint_stats is None:
            raise FileNotFoundError(f"the {FUSION_MODEL} head ({self.fusion_design}) lacks its input statistics; "
                                    "rerun `matmcl heads`")
        parts = [embed_conditions(self.sgpt, pairs.inputs, CPU) if part == TABLE
                 else embed_pairs(self.sgpt, part, pairs, self.image_size, EMBED_BATCH, CPU)
                 for part in modality.split("+")]
        mean, std = self.joint_stats
        return RowInputs.one_per_row(((joint_row_means(parts) - mean) / std).float())
