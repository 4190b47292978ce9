"""Property prediction: five properties from conditions (and optionally SEM patches), one variant per approach.

Variants (PropertyConfig.variants), all behind `fit_predict(variant, data, config, seed)`:
- `matmcl_conditions`: frozen pre-trained table encoder + projector → multi-task head (conditions only);
- `matmcl_fusion`: frozen fusion encoder + projector on (conditions, patch) → head; a row's prediction is the mean
  over its film's patches (every epoch draws one patch per row);
- `no_sgpt`: the `matmcl_conditions` architecture trained end to end from random weights;
- `gbm_conditions`, `ridge_conditions`: scikit-learn HistGradientBoosting / RidgeCV per property on the 7 raw
  model inputs (standardized conditions + direction).
Neural heads learn standardized targets with Adam and stop early on the mean validation RMSE in original units,
keeping the best epoch. Frozen embeddings are computed once per `PropertyData` and shared by all seeds.
`PropertyData.load` refuses an SGPT folder trained on other data (LineageError); the served heads record the data
version and the SGPT fingerprint in their lineage.json and `load_head` refuses them when those differ.
"""

from __future__ import annotations

import dataclasses

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits
from torch import nn

from matmcl.artifacts import HEADS_DIR, SGPT_DIR
from matmcl.atomic import atomic_dir, write_json
from matmcl.codebase import code_version
from matmcl.evaluation.regression import regression_metrics
from matmcl.lineage import Lineage, check_lineage, params_hash, write_lineage
from matmcl.models.heads import PropertyHead, PropertyHeadConfig, PropertyRegressor
from matmcl.models.serialization import load_pretrained, save_pretrained
from matmcl.models.sgpt import FUSED, IMAGE, TABLE, SGPTModel
from matmcl.schema import FILM_ID, PROPERTY_COLUMNS
from matmcl.target_scaling import TargetScaler
from matmcl.training.config import PropertyConfig, resolve_device
from matmcl.training.data import PatchBank, ProcessedData, RowPatches, draw_one_per_row
from matmcl.training.pretrain import check_sgpt, load_sgpt

SPLITS = ("train", "val", "test")
TARGETS_FILE = "targets.json"
FROZEN_MODALITY = {"matmcl_conditions": TABLE, "matmcl_fusion": FUSED}  # the heads `matmcl predict` serves
IMAGE_PRE = "image_pre"  # the image encoder's output before the shared projector
FUSION_INPUTS = {"fused": FUSED, "table_image": "table+image", "table_image_pre": "table+image_pre"}


@dataclass
class RowInputs:
    """Model inputs of `n_rows` rows: `values[k]` belongs to row `row[k]` (a row may own several, one per patch)."""

    values: torch.Tensor
    row: torch.Tensor
    n_rows: int

    @classmethod
    def one_per_row(cls, values: torch.Tensor) -> RowInputs:
        return cls(values, torch.arange(len(values)), len(values))

    def draw(self, rng: np.random.Generator) -> torch.Tensor:
        """Index of one uniformly drawn input per row, in row order."""
        return draw_one_per_row(self.row, self.n_rows, rng)

    def average(self, outputs: torch.Tensor) -> torch.Tensor:
        """Mean of per-input `outputs` (len(values), k) over each row's inputs → (n_rows, k)."""
        sums = torch.zeros(self.n_rows, outputs.shape[1], dtype=outputs.dtype).index_add_(0, self.row, outputs)
        return sums / torch.bincount(self.row, minlength=self.n_rows).unsqueeze(1)


@torch.no_grad()
def embed_pairs(model: SGPTModel, modality: str, pairs: RowPatches, image_size: int, batch_size: int,
                device: torch.device) -> RowInputs:
    """Joint-space embeddings of every (row, patch) pair: "fused" (conditions + patch), "image" (patch only) or
    "image_pre" (the image encoder's features before the projector)."""
    model.eval().to(device)
    chunks = []
    for index in torch.arange(len(pairs)).split(batch_size):
        x, images = pairs.pair_batch(index, image_size)
        images = images.to(device)
        if modality == FUSED:
            z = model.embed_fused(x.to(device), images)
        elif modality == IMAGE_PRE:
            z = model.encoders[IMAGE](images)
        else:
            z = model.embed_image(images)
        chunks.append(z.cpu())
    return RowInputs(torch.cat(chunks), pairs.row, pairs.n_rows)


def joint_row_means(parts: Sequence[RowInputs]) -> torch.Tensor:
    """One row per input row: the concatenation of each part's row means (float64; "a+b" inputs before
    standardization)."""
    return torch.cat([p.average(p.values.double()) for p in parts], dim=1)


@torch.no_grad()
def embed_conditions(model: SGPTModel, inputs: torch.Tensor, device: torch.device) -> RowInputs:
    """Joint-space condition embeddings of model inputs (n, 7), one per row."""
    return RowInputs.one_per_row(model.eval().to(device).embed_table(inputs.to(device)).cpu())


class PropertyData:
    """Train/val/test rows of a processed folder with the pre-trained model; caches each split's model inputs.

    `sources`: what heads trained on it are made from ({"data": data version, "sgpt": SGPT fingerprint}).
    """

    def __init__(self, processed: ProcessedData, sgpt: SGPTModel, image_size: int, config: PropertyConfig,
                 sources: Mapping[str, str]) -> None:
        self.processed, self.sgpt, self.image_size, self.config = processed, sgpt, image_size, config
        self.sources = dict(sources)
        self.device = resolve_device(config.device)
        self.rows = {split: processed.rows([split]) for split in SPLITS}
        self.x = {split: processed.scaler.inputs(rows) for split, rows in self.rows.items()}
        self.y = {split: rows[list(PROPERTY_COLUMNS)].to_numpy(dtype=float) for split, rows in self.rows.items()}
        self.targets = TargetScaler.fit(self.y["train"])
        self._bank: PatchBank | None = None
        self._inputs: dict[tuple[str, str], RowInputs] = {}
        self._joint_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.frozen_fits: dict[tuple, FitResult] = {}  # _fit_frozen results: matmcl_fusion's "fused" design is
        # the matmcl_fusion_frozen variant (same inputs, config and seed), fitted once per data

    @classmethod
    def load(cls, processed_dir: str | Path, sgpt_dir: str | Path, config: PropertyConfig) -> PropertyData:
        """The processed folder with the SGPT folder, which must have been trained on it (else LineageError)."""
        sources = check_sgpt(sgpt_dir, processed_dir)
        sgpt, pretrain_config = load_sgpt(sgpt_dir)
        return cls(ProcessedData.load(processed_dir), sgpt, pretrain_config.image_size, config, sources)

    def pairs(self, split: str) -> RowPatches:
        """The split's rows, each with `config.fusion_patches` evenly spaced patches of its film (0: all)."""
        if self._bank is None:
            self._bank = self.processed.patches(pd.concat(self.rows.values()), self.config.fusion_patches)
        return RowPatches.from_bank(self.rows[split], self.processed.scaler, self._bank)

    def inputs(self, split: str, modality: str | None) -> RowInputs:
        """Inputs of a split: raw model inputs (modality None), frozen embeddings of TABLE, IMAGE, IMAGE_PRE or FUSED,
        or "a+b": one input per row, the concatenation of a's and b's row means (standardized with the train
        split's statistics)."""
        key = (split, str(modality))
        if key not in self._inputs:
            raw = torch.from_numpy(self.x[split])
            if modality is None:
                self._inputs[key] = RowInputs.one_per_row(raw)
            elif modality == TABLE:
                self._inputs[key] = embed_conditions(self.sgpt, raw, self.device)
            elif "+" in modality:
                self._inputs[key] = self._joint(split, modality)
            else:
                self._inputs[key] = embed_pairs(self.sgpt, modality, self.pairs(split), self.image_size,
                                                self.config.embed_batch_size, self.device)
        return self._inputs[key]


    def _joint(self, split: str, modality: str) -> RowInputs:
        if modality not in self._joint_stats:
            train = self._joint_row_means("train", modality)
            self._joint_stats[modality] = (train.mean(0), train.std(0).clamp(min=1e-6))
        mean, std = self._joint_stats[modality]
        return RowInputs.one_per_row(((self._joint_row_means(split, modality) - mean) / std).float())

    def _joint_row_means(self, split: str, modality: str) -> torch.Tensor:
        return joint_row_means([self.inputs(split, part) for part in modality.split("+")])

    def joint_stats(self, modality: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and sd over the train split that standardize the joint inputs "a+b" of `inputs`."""
        self.inputs("train", modality)
        return self._joint_stats[modality]

    def structure(self, split: str) -> np.ndarray:
        """The film's measured structural features (`config.structure_features` of features.parquet) per row."""
        if self.processed.features is None:
            raise ValueError(f"{self.processed.directory}: features.parquet missing (needed by *_features variants)")
        columns = list(self.config.structure_features)
        merged = self.rows[split][[FILM_ID]].merge(self.processed.features[[FILM_ID, *columns]], on=FILM_ID,
                                                   how="left")
        return merged[columns].to_numpy(dtype=float)


@dataclass
class FitResult:
    """Predictions (n_rows, 5) in physical units for the requested split, the fitted model and, for neural
    variants, the epoch with the best validation RMSE."""

    prediction: np.ndarray
    model: Any
    best_epoch: int | None = None
    choice: str | None = None  # what validation chose (matmcl_fusion's design)
    val_rmse: float | None = None


def head_config(in_dim: int, config: PropertyConfig) -> PropertyHeadConfig:
    return PropertyHeadConfig(in_dim=in_dim, hidden_dims=config.hidden_dims, n_props=len(PROPERTY_COLUMNS),
                              dropout=config.dropout)


@torch.no_grad()
def predict_rows(module: nn.Module, inputs: RowInputs, targets: TargetScaler, device: torch.device) -> np.ndarray:
    """Row predictions in physical units: the module's outputs averaged over each row's inputs."""
    module.eval()
    outputs = module(inputs.values.to(device)).cpu().double()
    return targets.inverse(inputs.average(outputs).numpy())


def mean_rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over properties of the RMSE in original units (the early-stopping criterion)."""
    return float(np.nanmean([m["rmse"] for m in regression_metrics(y_true, y_pred, PROPERTY_COLUMNS).values()]))


def train_neural(module: nn.Module, data: PropertyData, modality: str | None, config: PropertyConfig,
                 seed: int) -> tuple[nn.Module, int]:
    """Train `module` on the train split with early stopping on validation; returns it at its best epoch."""
    device = data.device
    module.to(device)
    train, val = data.inputs("train", modality), data.inputs("val", modality)
    y = torch.from_numpy(data.targets.transform(data.y["train"])).float()
    measured = torch.isfinite(y)
    y = torch.nan_to_num(y)
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(seed)
    best, best_epoch, best_state = float("inf"), 0, copy.deepcopy(module.state_dict())
    for epoch in range(1, config.max_epochs + 1):
        module.train()
        chosen = train.draw(rng)
        for rows in torch.from_numpy(rng.permutation(train.n_rows)).split(config.batch_size):
            out = module(train.values[chosen[rows]].to(device))
            mask = measured[rows].to(device)
            loss = ((out - y[rows].to(device)) ** 2 * mask).sum() / mask.sum().clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        score = mean_rmse(data.y["val"], predict_rows(module, val, data.targets, device))
        if score < best:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(module.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    module.load_state_dict(best_state)
    return module.cpu(), best_epoch


def _fit_frozen(modality: str) -> Callable[[PropertyData, PropertyConfig, int, str], FitResult]:
    """A head on frozen SGPT inputs of `modality` (TABLE, FUSED or a joint "a+b", see PropertyData.inputs)."""

    def fit(data: PropertyData, config: PropertyConfig, seed: int, split: str) -> FitResult:
        key = (modality, repr(config), seed, split)
        if key not in data.frozen_fits:
            data.frozen_fits[key] = fit_once(data, config, seed, split)
        return data.frozen_fits[key]

    def fit_once(data: PropertyData, config: PropertyConfig, seed: int, split: str) -> FitResult:
        torch.manual_seed(seed)
        in_dim = data.inputs("train", modality).values.shape[1]
        head = PropertyHead(head_config(in_dim, config))
        head, best_epoch = train_neural(head, data, modality, config, seed)
        cpu = torch.device("cpu")
        val_rmse = mean_rmse(data.y["val"], predict_rows(head, data.inputs("val", modality), data.targets, cpu))
        prediction = predict_rows(head, data.inputs(split, modality), data.targets, cpu)
        return FitResult(prediction, head, best_epoch, val_rmse=val_rmse)

    return fit


def _fit_fusion(data: PropertyData, config: PropertyConfig, seed: int, split: str) -> FitResult:
    """matmcl_fusion: one frozen-input head per design of `config.fusion_designs`; the one with the lowest mean
    validation RMSE is kept (the choice never sees the split being predicted unless that is "val")."""
    best: FitResult | None = None
    for design in config.fusion_designs:
        result = _fit_frozen(FUSION_INPUTS[design])(data, config, seed, split)
        if best is None or result.val_rmse < best.val_rmse:
            best = dataclasses.replace(result, choice=design)
    return best


def _fit_no_sgpt(data: PropertyData, config: PropertyConfig, seed: int, split: str) -> FitResult:
    """The matmcl_conditions architecture (table encoder + projector + head) trained from random weights."""
    torch.manual_seed(seed)
    embedder = SGPTModel(data.sgpt.config).embedder(TABLE)
    model = PropertyRegressor(embedder, PropertyHead(head_config(data.sgpt.config.embed_dim, config)), freeze=False)
    model, best_epoch = train_neural(model, data, None, config, seed)
    prediction = predict_rows(model, data.inputs(split, None), data.targets, torch.device("cpu"))
    return FitResult(prediction, model, best_epoch)


def _fit_per_property(make: Callable[[PropertyConfig, int], Any]) -> Callable[..., FitResult]:
    """A scikit-learn regressor per property on the raw model inputs (rows without that property left out)."""

    def fit(data: PropertyData, config: PropertyConfig, seed: int, split: str) -> FitResult:
        return _fit_columns(make, data.x["train"], data.y["train"], data.x[split], config, seed)

    return fit


def _fit_gbm_features(data: PropertyData, config: PropertyConfig, seed: int, split: str) -> FitResult:
    """Gradient boosting per property on the 7 inputs plus the film's measured structural features: the bar for any
    image-using model (the features come from the same SEM frames)."""
    x_train = np.column_stack([data.x["train"], data.structure("train")])
    x_split = np.column_stack([data.x[split], data.structure(split)])
    return _fit_columns(_gbm, x_train, data.y["train"], x_split, config, seed)


def _fit_columns(make: Callable[[PropertyConfig, int], Any], x: np.ndarray, y: np.ndarray, x_split: np.ndarray,
                 config: PropertyConfig, seed: int) -> FitResult:
    """One regressor per property column (rows without that property left out), predicting `x_split`.

    Runs with one OpenMP/BLAS thread: on a few shared cores HistGradientBoosting's OpenMP threads spin against
    each other and a 300-row fit takes ~40x longer than single-threaded."""
    with threadpool_limits(1):
        models = [make(config, seed).fit(x[np.isfinite(y[:, j])], y[np.isfinite(y[:, j]), j])
                  for j in range(y.shape[1])]
        return FitResult(np.column_stack([m.predict(x_split) for m in models]), models)


def _gbm(config: PropertyConfig, seed: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(max_iter=config.gbm_max_iter, learning_rate=config.gbm_learning_rate,
                                         max_leaf_nodes=config.gbm_max_leaf_nodes, early_stopping=False,
                                         random_state=seed)


def _ridge(config: PropertyConfig, seed: int) -> RidgeCV:
    return RidgeCV(alphas=config.ridge_alphas)


FITTERS: dict[str, Callable[[PropertyData, PropertyConfig, int, str], FitResult]] = {
    "matmcl_conditions": _fit_frozen(TABLE),
    "matmcl_fusion": _fit_fusion,
    "matmcl_fusion_frozen": _fit_frozen(FUSED),
    "no_sgpt": _fit_no_sgpt,
    "gbm_conditions": _fit_per_property(_gbm),
    "ridge_conditions": _fit_per_property(_ridge),
    "gbm_conditions_features": _fit_gbm_features,
}


# The served heads (matmcl predict): the conditions head and the fusion head of the design matmcl_fusion picks on
# the validation films (its inputs: `FUSION_INPUTS[design]`, recorded with the head; the Predictor rebuilds them).
SERVED_FITTERS = {"matmcl_conditions": FITTERS["matmcl_conditions"], "matmcl_fusion": FITTERS["matmcl_fusion"]}


def fit_predict(variant: str, data: PropertyData, config: PropertyConfig, seed: int,
                split: str = "test") -> FitResult:
    """Fit `variant` on the train split (validation for early stopping) and predict the rows of `split`."""
    if variant not in FITTERS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(FITTERS)}")
    return FITTERS[variant](data, config, seed, split)


def save_head(directory: str | Path, head: PropertyHead, targets: TargetScaler, **metadata: Any) -> Path:
    """Write a head folder: config.json + model.pt (save_pretrained) and targets.json (target scaling, metadata)."""
    directory = save_pretrained(head, head.config, directory)
    write_json({**targets.to_dict(), **metadata}, directory / TARGETS_FILE)
    return directory


def head_metadata(directory: str | Path) -> dict[str, Any]:
    """What `save_head` recorded beside the head: target scaling and metadata (variant, seed, fusion design...)."""
    path = Path(directory) / TARGETS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; expected a folder written by save_head")
    return json.loads(path.read_text())


def load_head(directory: str | Path, sources: Mapping[str, str]) -> tuple[PropertyHead, TargetScaler]:
    """A head folder written by `train_heads`: the head (eval mode) and its target scaling. LineageError when it was
    not made from `sources` (e.g. `check_sgpt`'s {"data": ..., "sgpt": ...}; any subset is checked)."""
    check_lineage(directory, sources, "heads")
    config, state = load_pretrained(directory, PropertyHeadConfig, PropertyHead.__name__)
    head = PropertyHead(config)
    head.load_state_dict(state)
    return head.eval(), TargetScaler.from_dict(head_metadata(directory))


def train_heads(processed_dir: str | Path, models_dir: str | Path, config: PropertyConfig,
                variants: tuple[str, ...] = tuple(FROZEN_MODALITY)) -> dict[str, dict[str, Any]]:
    """Fit the heads the Predictor serves (first seed) on models_dir/sgpt and swap models_dir/property in whole, one
    folder per variant with its lineage.json.

    Returns per variant the best epoch and the validation metrics.
    """
    models_dir = Path(models_dir)
    data = PropertyData.load(processed_dir, models_dir / SGPT_DIR, config)
    lineage = Lineage.of(data.sources, params_hash({"property": config}), code_version(__name__))
    seed = config.seeds[0]
    summary = {}
    with atomic_dir(models_dir / HEADS_DIR) as tmp:
        for variant in variants:
            result = SERVED_FITTERS[variant](data, config, seed, "val")
            design = {}
            if result.choice is not None:  # the fusion design and, for joint inputs, their standardization
                design = {"design": result.choice}
                if "+" in FUSION_INPUTS[result.choice]:
                    mean, std = data.joint_stats(FUSION_INPUTS[result.choice])
                    design.update(joint_mean=mean.tolist(), joint_std=std.tolist())
            save_head(tmp / variant, result.model, data.targets, variant=variant, seed=seed,
                      best_epoch=result.best_epoch, **design)
            write_lineage(tmp / variant, lineage)
            summary[variant] = {"best_epoch": result.best_epoch, "design": result.choice,
                                "val": regression_metrics(data.y["val"], result.prediction, PROPERTY_COLUMNS)}
    return summary

