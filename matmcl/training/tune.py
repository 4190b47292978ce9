"""`matmcl tune`: Optuna search over the property head's and (optionally) pre-training's settings, judged only on
one cross-validation fold's inner-validation films (never its test films). Not part of the main job.

Each trial fits `matmcl_conditions` on the fold's inner-training films and returns its mean inner-validation RMSE
(original units, the early-stopping criterion). Head settings: lr, weight decay, dropout, hidden width. With
`pretrain=True` a trial also samples pre-training lr, temperature and epochs and pre-trains its own SGPT (slow);
otherwise one SGPT per fold is pre-trained once and shared by all trials. `on_trial(number, params, value)` receives
each finished trial (the CLI logs it to MLflow).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from matmcl.schema import FILM_ID
from matmcl.training.config import EvaluationConfig, PretrainConfig, PropertyConfig
from matmcl.training.cv import CachedProcessed, _reference_films, cv_folds, fold_view
from matmcl.training.data import ProcessedData
from matmcl.training.pretrain import train_sgpt
from matmcl.training.properties import FITTERS, PropertyData

WIDTHS = (64, 128, 256)
PRETRAIN_EPOCHS = (10, 20, 30)
TrialCallback = Callable[[int, dict[str, Any], float], None]


def sample_head(trial: Any, config: PropertyConfig) -> PropertyConfig:
    """The head settings of one trial on top of `config`."""
    width = trial.suggest_categorical("hidden_width", list(WIDTHS))
    return dataclasses.replace(
        config, lr=trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        dropout=trial.suggest_float("dropout", 0.0, 0.5), hidden_dims=(width,) * len(config.hidden_dims))


def sample_pretrain(trial: Any, config: PretrainConfig) -> PretrainConfig:
    """The pre-training settings of one trial on top of `config`."""
    return dataclasses.replace(
        config, lr=trial.suggest_float("pretrain_lr", 1e-4, 3e-3, log=True),
        temperature=trial.suggest_float("temperature", 0.05, 0.5, log=True),
        epochs=trial.suggest_categorical("pretrain_epochs", list(PRETRAIN_EPOCHS)))


def tune(processed_dir: str | Path, pretrain_config: PretrainConfig, property_config: PropertyConfig,
         config: EvaluationConfig, n_trials: int, fold: int = 0, pretrain: bool = False, seed: int = 0,
         on_trial: TrialCallback | None = None) -> dict[str, Any]:
    """Run the search; returns {"best_params", "best_inner_val_rmse", "trials": [{number, params, value}], "fold"}."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = ProcessedData.load(processed_dir)
    base = CachedProcessed(loaded.directory, loaded.table, loaded.scaler, loaded.features)
    always, _ = _reference_films(Path(processed_dir), base.table[FILM_ID].unique(), config)
    folds = list(cv_folds(base.table[FILM_ID].unique(), config.folds, 1, config.inner_val_fraction, config.seed,
                          always))
    chosen = folds[fold]
    # the test films keep their split (PropertyData wants one) but nothing the objective computes reads them:
    # SGPT pre-trains on "train", heads fit on "train", stop early and are scored on "val"
    view = fold_view(base, chosen.train, chosen.val, chosen.test)
    bank = view.patches(view.table, 0)
    seed_head = property_config.seeds[0]
    shared: dict[str, Any] = {}

    def sgpt_for(pretrain_settings: PretrainConfig):
        if not pretrain and "sgpt" in shared:
            return shared["sgpt"]
        model, _ = train_sgpt(view, view.rows(["train"]), pretrain_settings, bank=bank, progress=False)
        if not pretrain:
            shared["sgpt"] = model
        return model

    def objective(trial: Any) -> float:
        head = sample_head(trial, property_config)
        settings = sample_pretrain(trial, pretrain_config) if pretrain else pretrain_config
        data = PropertyData(view, sgpt_for(settings), settings.image_size, head, {})
        return float(FITTERS["matmcl_conditions"](data, head, seed_head, "val").val_rmse)

    def callback(study: Any, trial: Any) -> None:
        if on_trial is not None and trial.value is not None:
            on_trial(trial.number, dict(trial.params), float(trial.value))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=n_trials, callbacks=[callback])
    finally:
        torch.set_num_threads(threads)
    return {"fold": chosen.name, "n_inner_train_films": len(chosen.train), "n_inner_val_films": len(chosen.val),
            "objective": "matmcl_conditions mean inner-validation RMSE (original units)", "pretrain_tuned": pretrain,
            "best_params": dict(study.best_params), "best_inner_val_rmse": float(study.best_value),
            "trials": [{"number": t.number, "params": dict(t.params), "value": t.value} for t in study.trials]}
