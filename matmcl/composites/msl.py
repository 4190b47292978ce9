"""Multi-stage learning (S → FP → CP) and its ablations on the composites, under repeated grouped K-fold.

Data: `CompositeData` (processed/composite_table.parquet: one row per composite × direction, the film's six
conditions, the five composite properties) and `NanofiberData` (processed/table.parquet without the films any
composite was made from, so that no test composite's film is seen in stage FP; its train and val splits).
Stages: S = the SGPT table encoder + projector (`load_sgpt_stage`); FP = the whole model fine-tuned on nanofiber
properties (`train_fp`, once per start: SGPT or random); CP = fine-tuning on composite rows (`fit_cp`) with
layer-wise learning-rate decay. Variants (matmcl.composites.config.VARIANTS):
`CP` (random init, one rate), `FP+CP`, `S+CP`, `S+FP+CP` (decay searched on inner validation),
`S+FP+CP_no_lrd` (decay 1), `gbm_conditions` (gradient boosting on the 7 raw inputs) and `physics_linear`
(the S+FP model's predicted nanofiber properties → composite properties by RidgeCV per property).
`run_ablation` scores every variant on the same folds; a neural variant trains on the fold's training composites
minus an inner validation share, which picks the decay (among `config.decays`) and the epoch (early stopping on
the mean standardized RMSE); the test composites are never seen before they are predicted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from matmcl.artifacts import COMPOSITE_TABLE_FILE, SCALER_FILE, TABLE_FILE
from matmcl.composites.config import BASELINE, CompositeConfig
from matmcl.composites.model import (
    MSLModelConfig,
    build_regressor,
    layerwise_optimizer,
    load_sgpt_stage,
    load_stage,
)
from matmcl.evaluation.stats import grouped_folds
from matmcl.models.heads import PropertyHeadConfig, PropertyRegressor
from matmcl.models.sgpt import SGPTModel
from matmcl.parallel import map_forked
from matmcl.schema import COMPOSITE_ID, CONDITION_COLUMNS, DIRECTION, FILM_ID, PROPERTY_COLUMNS, SPLIT
from matmcl.target_scaling import TargetScaler
from matmcl.training.data import ConditionScaler
from matmcl.training.pretrain import warmup_linear_decay

log = logging.getLogger(__name__)

N_PROPS = len(PROPERTY_COLUMNS)
NO_DECAY = 1.0
FP_VAL_FRACTION = 0.2  # share of FP training films for validation when no val film is left


@dataclass
class Rows:
    """Model inputs (n, 7: standardized conditions + direction), targets (n, 5) and the group of every row."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    frame: pd.DataFrame

    @classmethod
    def of(cls, frame: pd.DataFrame, scaler: ConditionScaler, group: str) -> Rows:
        frame = frame.reset_index(drop=True)
        return cls(scaler.inputs(frame), frame[list(PROPERTY_COLUMNS)].to_numpy(dtype=float),
                   frame[group].to_numpy(), frame)

    def take(self, index: np.ndarray) -> Rows:
        return Rows(self.x[index], self.y[index], self.groups[index], self.frame.iloc[index].reset_index(drop=True))

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class CompositeData:
    """The composite rows (grouped by film: a film's composites stay together) and the nanofiber FP data."""

    composites: Rows
    fp_train: Rows
    fp_val: Rows
    scaler: ConditionScaler

    @classmethod
    def load(cls, processed_dir: str | Path) -> CompositeData:
        processed_dir = Path(processed_dir)
        path = processed_dir / COMPOSITE_TABLE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the raw data has no composites (or run `matmcl tables`)")
        scaler = ConditionScaler.load(processed_dir / SCALER_FILE)
        composites = pd.read_parquet(path).sort_values([COMPOSITE_ID, DIRECTION], ignore_index=True)
        table = pd.read_parquet(processed_dir / TABLE_FILE)
        nanofiber = table[~table[FILM_ID].isin(set(composites[FILM_ID]))]
        fp = {split: Rows.of(nanofiber[nanofiber[SPLIT] == split], scaler, FILM_ID) for split in ("train", "val")}
        if np.unique(fp["train"].groups).size < 2:
            raise ValueError(f"{processed_dir / TABLE_FILE}: fewer than 2 training films left without composites "
                             "for stage FP")
        if not len(fp["val"]):  # every val film made a composite (tiny data): validate on a share of train films
            train, val = inner_split(fp["train"].groups, FP_VAL_FRACTION, 0)
            fp = {"train": fp["train"].take(train), "val": fp["train"].take(val)}
        return cls(Rows.of(composites, scaler, FILM_ID), fp["train"], fp["val"], scaler)


def model_config(sgpt: SGPTModel, config: CompositeConfig) -> MSLModelConfig:
    return MSLModelConfig(sgpt.config, PropertyHeadConfig(sgpt.config.embed_dim, config.hidden_dims, N_PROPS,
                                                          config.dropout))


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _masked_targets(y: np.ndarray, targets: TargetScaler) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.from_numpy(targets.transform(y)).float()
    mask = torch.isfinite(z)
    return torch.nan_to_num(z), mask


@torch.no_grad()
def predict(regressor: PropertyRegressor, x: np.ndarray, targets: TargetScaler) -> np.ndarray:
    """Predictions (n, 5) in physical units."""
    regressor.eval()
    return targets.inverse(regressor(torch.from_numpy(np.asarray(x, dtype=np.float32))).double().numpy())


def standardized_rmse(y: np.ndarray, prediction: np.ndarray, targets: TargetScaler) -> float:
    """Mean over properties of the RMSE in target standard deviations (every property counts alike)."""
    z = (prediction - y) / targets.scale
    return float(np.nanmean(np.sqrt(np.nanmean(z ** 2, axis=0))))


@dataclass
class Fit:
    """A fitted neural model at its best epoch, its target scaling, the epoch, decay and validation score."""

    regressor: PropertyRegressor
    targets: TargetScaler
    best_epoch: int
    decay: float
    val_score: float
    history: list[float] = field(default_factory=list)


def _train(regressor: PropertyRegressor, optimizer: torch.optim.Optimizer, scheduler: Any, train: Rows,
           val: Rows | None, targets: TargetScaler, epochs: int, patience: int, batch_size: int, seed: int
           ) -> tuple[int, float, list[float]]:
    """Masked MSE on standardized targets; keeps the epoch with the best validation score (or runs `epochs`)."""
    x = torch.from_numpy(train.x)
    z, mask = _masked_targets(train.y, targets)
    rng = np.random.default_rng(seed)
    best, best_epoch, best_state, history = math.inf, epochs, None, []
    for epoch in range(1, epochs + 1):
        regressor.train()
        order = torch.from_numpy(rng.permutation(len(train)))
        for rows in order.split(batch_size or len(train)):
            out = regressor(x[rows])
            m = mask[rows]
            loss = ((out - z[rows]) ** 2 * m).sum() / m.sum().clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if val is None:
            continue
        score = standardized_rmse(val.y, predict(regressor, val.x, targets), targets)
        history.append(score)
        if score < best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in regressor.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        regressor.load_state_dict(best_state)
    return best_epoch, best, history


def train_fp(start: Callable[[], PropertyRegressor], data: CompositeData, config: CompositeConfig, seed: int) -> Fit:
    """Stage FP: fine-tune the whole model on nanofiber properties (early stopping on the val films)."""
    torch.manual_seed(seed)
    regressor = start()
    targets = TargetScaler.fit(data.fp_train.y)
    optimizer = torch.optim.Adam(regressor.parameters(), lr=config.fp_lr, weight_decay=config.weight_decay)
    epoch, score, history = _train(regressor, optimizer, None, data.fp_train, data.fp_val, targets,
                                   config.fp_max_epochs, config.fp_patience, config.fp_batch_size, seed)
    return Fit(regressor.eval(), targets, epoch, NO_DECAY, score, history)


def fit_cp(start: Callable[[], PropertyRegressor], train: Rows, val: Rows | None, decay: float,
           config: CompositeConfig, seed: int, epochs: int | None = None) -> Fit:
    """Stage CP: fine-tune on composite rows, full batch, with layer-wise decay `decay` and warm-up/linear decay
    over `cp_max_epochs`; early stopping on `val`, or exactly `epochs` epochs when `val` is None."""
    torch.manual_seed(seed)
    regressor = start()
    targets = TargetScaler.fit(train.y)
    optimizer = layerwise_optimizer(regressor, config.cp_lr, decay, config.weight_decay)
    scheduler = warmup_linear_decay(optimizer, config.cp_max_epochs, config.cp_warmup_fraction)
    epoch, score, history = _train(regressor, optimizer, scheduler, train, val, targets,
                                   epochs or config.cp_max_epochs, config.cp_patience, 0, seed)
    return Fit(regressor.eval(), targets, epoch, decay, score, history)


@dataclass
class Starts:
    """How each neural variant's model starts: builders of fresh regressors with the right weights loaded."""

    model_config: MSLModelConfig
    sgpt: SGPTModel
    fp_sgpt: dict[str, torch.Tensor] | None = None  # S+FP weights
    fp_random: dict[str, torch.Tensor] | None = None  # FP from random weights

    def random(self) -> PropertyRegressor:
        return build_regressor(self.model_config)

    def s(self) -> PropertyRegressor:
        return load_sgpt_stage(build_regressor(self.model_config), self.sgpt)

    def fp(self, state: dict[str, torch.Tensor] | None, what: str) -> Callable[[], PropertyRegressor]:
        if state is None:
            raise ValueError(f"the {what} stage was not trained")
        return lambda: load_stage(build_regressor(self.model_config), state, what)

    def of(self, variant: str) -> tuple[Callable[[], PropertyRegressor], bool]:
        """(builder, whether the layer decay is searched) of a neural variant."""
        return {
            "CP": (self.random, False),
            "FP+CP": (self.fp(self.fp_random, "FP (random init)") if self.fp_random is not None else None, True),
            "S+CP": (self.s, True),
            "S+FP+CP": (self.fp(self.fp_sgpt, "S+FP") if self.fp_sgpt is not None else None, True),
            "S+FP+CP_no_lrd": (self.fp(self.fp_sgpt, "S+FP") if self.fp_sgpt is not None else None, False),
        }[variant]


NEURAL = ("CP", "FP+CP", "S+CP", "S+FP+CP", "S+FP+CP_no_lrd")


def inner_split(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row positions: a seeded `fraction` of the groups (at least one) for inner validation."""
    unique = np.unique(groups)
    n_val = max(1, int(round(fraction * len(unique))))
    val_groups = set(np.random.default_rng(seed).permutation(unique)[:n_val])
    is_val = np.array([g in val_groups for g in groups])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def fit_neural(variant: str, starts: Starts, train: Rows, config: CompositeConfig, seed: int, split_seed: int) -> Fit:
    """A neural variant on `train`: the decay (searched or 1) and epoch picked on an inner validation share (the
    same composites for every variant of a fold: `split_seed`)."""
    start, searched = starts.of(variant)
    inner_train, inner_val = inner_split(train.groups, config.inner_fraction, split_seed)
    decays = config.decays if searched else (NO_DECAY,)
    fits = [fit_cp(start, train.take(inner_train), train.take(inner_val), decay, config, _seed(seed, k))
            for k, decay in enumerate(decays)]
    return min(fits, key=lambda fit: fit.val_score)


def fit_gbm(train: Rows, config: CompositeConfig, seed: int) -> list[HistGradientBoostingRegressor]:
    models = []
    for j in range(N_PROPS):
        ok = np.isfinite(train.y[:, j])
        models.append(HistGradientBoostingRegressor(
            max_iter=config.gbm_max_iter, learning_rate=config.gbm_learning_rate,
            max_leaf_nodes=config.gbm_max_leaf_nodes, min_samples_leaf=config.gbm_min_samples_leaf,
            early_stopping=False, random_state=seed).fit(train.x[ok], train.y[ok, j]))
    return models


def fit_linear(features: np.ndarray, y: np.ndarray, config: CompositeConfig) -> list[Any]:
    """Per composite property, RidgeCV on the standardized predicted nanofiber properties."""
    models = []
    for j in range(N_PROPS):
        ok = np.isfinite(y[:, j])
        models.append(make_pipeline(StandardScaler(), RidgeCV(alphas=config.ridge_alphas)).fit(features[ok], y[ok, j]))
    return models


def _columns(models: list[Any], x: np.ndarray) -> np.ndarray:
    return np.column_stack([m.predict(x) for m in models])


@dataclass
class FoldResult:
    """One variant on one outer fold: the test rows' predictions and what was chosen on inner validation."""

    variant: str
    repeat: int
    fold: int
    test: np.ndarray
    prediction: np.ndarray
    decay: float | None = None
    best_epoch: int | None = None


def _fold_results(job: tuple[int, int, np.ndarray, np.ndarray], data: CompositeData, starts: Starts,
                  nanofiber_features: np.ndarray | None, config: CompositeConfig) -> list[FoldResult]:
    """Every variant of `config.variants` on one outer fold (`job` = repeat, fold, train and test rows)."""
    repeat, fold, train_index, test_index = job
    comp = data.composites
    train, test = comp.take(train_index), comp.take(test_index)
    results = []
    for v, variant in enumerate(config.variants):
        seed = _seed(config.seed, repeat, fold, v)
        result = FoldResult(variant, repeat, fold, test_index, np.empty(0))
        if variant in NEURAL:
            fit = fit_neural(variant, starts, train, config, seed, _seed(config.seed, repeat, fold))
            result.prediction = predict(fit.regressor, test.x, fit.targets)
            result.decay, result.best_epoch = fit.decay, fit.best_epoch
        elif variant == "gbm_conditions":
            result.prediction = _columns(fit_gbm(train, config, seed), test.x)
        elif variant == "physics_linear":
            if nanofiber_features is None:
                raise ValueError("physics_linear needs the S+FP model's nanofiber predictions")
            models = fit_linear(nanofiber_features[train_index], train.y, config)
            result.prediction = _columns(models, nanofiber_features[test_index])
        results.append(result)
    return results


def run_ablation(data: CompositeData, starts: Starts, nanofiber_features: np.ndarray | None,
                 config: CompositeConfig, progress: bool = False) -> list[FoldResult]:
    """Every variant of `config.variants` on the same `repeats` × `folds` grouped folds, `config.workers` folds at
    a time (deterministic per seed, whatever the number of workers).

    `nanofiber_features`: the S+FP model's predicted nanofiber properties of every composite row (physics_linear).
    """
    folds = list(grouped_folds(data.composites.groups, config.folds, config.repeats, config.seed))
    shared = (data, starts, nanofiber_features, config)
    return [result for fold in map_forked(_fold_results, folds, shared, config.workers, "composite ablation folds",
                                          progress) for result in fold]


def baseline_first(variants: tuple[str, ...]) -> list[str]:
    return [BASELINE, *[v for v in variants if v != BASELINE]]


def conditions_frame(conditions: pd.DataFrame) -> pd.DataFrame:
    """Both direction rows of each condition row (`row` = input position), for prediction."""
    values = conditions[list(CONDITION_COLUMNS)].reset_index(drop=True)
    rows = pd.concat([values.assign(**{DIRECTION: flag}) for flag in (1, 0)])
    return rows.rename_axis("row").reset_index().sort_values(["row", DIRECTION], ascending=[True, False],
                                                              kind="stable", ignore_index=True)
