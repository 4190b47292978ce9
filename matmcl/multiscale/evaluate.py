"""The multiscale model on the evaluation protocol: variants, one-scale ablations, gates; the served model.

Protocol (issue 3, matmcl.evaluation.protocol.cv_folds with `evaluation.folds` × `repeats`, the histogram-reference
films always training as in the evaluate stage, so the test folds are the same films): per fold the descriptors and
targets are z-scored on the inner-training rows, every variant is fitted on them and early-stopped on the inner
validation rows, the fold's design is the neural variant with the lowest inner-validation loss (`chosen`; the test
fold is never looked at), and the one-scale-out ablations refit that design without one scale. Variants: `gbm`
(HistGradientBoosting per property on all descriptors concatenated, ln targets) and every design of
`multiscale.designs` without and with the cross-scale regularisation (`<design>_xreg`). Scores: per property R² within
each direction and their mean (`r2_mean`, the headline, as reports/property.json), pooled R², in original units;
mean ± sd over folds, t-interval over folds (`mean_ci`), paired differences over folds (`paired`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor

from matmcl.artifacts import (
    FEATURES_FILE,
    MOLECULAR_DESCRIPTORS_FILE,
    MULTISCALE_DIR,
    MULTISCALE_PLOTS_DIR,
    NETWORK_DESCRIPTORS_FILE,
)
from matmcl.atomic import atomic_dir, write_json
from matmcl.codebase import code_version
from matmcl.config import Workspace, section
from matmcl.evaluation.protocol import Fold, cv_folds, direction_metrics, reference_films
from matmcl.evaluation.stats import mean_ci, paired
from matmcl.hashing import hash_files
from matmcl.lineage import DATA, Lineage, check_lineage, data_version, params_hash, write_lineage
from matmcl.multiscale.config import GBM, MultiscaleConfig
from matmcl.multiscale.dataset import SCALES, FeatureScaler, MultiscaleData
from matmcl.multiscale.fusion import FusionEnsemble, FusionSpec
from matmcl.multiscale.plots import plot_ablation, plot_gates, plot_variants
from matmcl.parallel import map_forked
from matmcl.schema import PROPERTY_COLUMNS
from matmcl.target_scaling import LogTargetScaler
from matmcl.tracking import resolve_tracking, tracking_run
from matmcl.training.config import EvaluationConfig

CHOSEN = "chosen"  # the fold's neural variant with the lowest inner-validation loss
DESCRIPTORS = "descriptors"  # lineage key of the descriptor files' content hash
MODEL_FILE, CONFIG_FILE, SCALERS_FILE = "model.pt", "config.json", "scalers.json"
DESCRIPTOR_FILES = (FEATURES_FILE, NETWORK_DESCRIPTORS_FILE, MOLECULAR_DESCRIPTORS_FILE)


@dataclass
class FoldOutput:
    """One fold's test rows, predictions (original units) per variant and per ablated scale, inner-validation
    losses, the chosen variant and the GFM gate shares of its test rows."""

    name: str
    test: np.ndarray
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    ablations: dict[str, np.ndarray] = field(default_factory=dict)
    val_loss: dict[str, float] = field(default_factory=dict)
    chosen: str = ""
    gates: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """z-scored inputs per scale and targets of a set of rows, with the scalers fitted on the training rows."""

    features: FeatureScaler
    targets: LogTargetScaler

    @classmethod
    def fit(cls, data: MultiscaleData, train: np.ndarray) -> Prepared:
        return cls(FeatureScaler.fit(data, train), LogTargetScaler.fit(data.y[train]))

    def rows(self, data: MultiscaleData, index: np.ndarray, scales: Sequence[str] = SCALES
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        inputs = self.features.transform(data, index)
        return {s: inputs[s] for s in scales}, self.targets.transform(data.y[index])


def fit_gbm(x: np.ndarray, y: np.ndarray, config: MultiscaleConfig, seed: int) -> list[HistGradientBoostingRegressor]:
    """One HistGradientBoosting model per property on ln(property) (rows with a measured value)."""
    models = []
    for j in range(y.shape[1]):
        measured = np.isfinite(y[:, j])
        models.append(HistGradientBoostingRegressor(
            max_iter=config.gbm_max_iter, learning_rate=config.gbm_learning_rate,
            max_leaf_nodes=config.gbm_max_leaf_nodes, random_state=seed).fit(x[measured], np.log(y[measured, j])))
    return models


def fit_variant(variant: str, data: MultiscaleData, prepared: Prepared, train: np.ndarray, val: np.ndarray,
                config: MultiscaleConfig, scales: Sequence[str] = SCALES) -> tuple[FusionEnsemble, float]:
    """A fusion variant on the given scales, trained on `train` rows and early-stopped on `val` rows."""
    train_rows, val_rows = prepared.rows(data, train, scales), prepared.rows(data, val, scales)
    sizes = {s: train_rows[0][s].shape[1] for s in scales}
    spec = FusionSpec.of(variant, sizes, data.y.shape[1], config)
    return FusionEnsemble.fit(spec, train_rows, val_rows, config)


def _one_fold(fold: Fold, data: MultiscaleData, config: MultiscaleConfig) -> FoldOutput:
    train, val, test = data.index_of(fold.train), data.index_of(fold.val), data.index_of(fold.test)
    out = FoldOutput(fold.name, test)
    prepared = Prepared.fit(data, train)
    start = time.perf_counter()
    x = data.concatenated()
    out.predictions[GBM] = np.column_stack([np.exp(m.predict(x[test])) for m in fit_gbm(x[train], data.y[train],
                                                                                         config, fold.fold)])
    out.seconds[GBM] = time.perf_counter() - start
    models = {}
    for variant in config.variants:
        start = time.perf_counter()
        models[variant], out.val_loss[variant] = fit_variant(variant, data, prepared, train, val, config)
        z, gates = models[variant].predict(prepared.rows(data, test)[0])
        out.predictions[variant] = prepared.targets.inverse(z)
        if gates is not None:
            out.gates[variant] = gates
        out.seconds[variant] = time.perf_counter() - start
    out.chosen = min(out.val_loss, key=out.val_loss.get)
    out.predictions[CHOSEN] = out.predictions[out.chosen]
    start = time.perf_counter()
    for scale in SCALES:
        kept = [s for s in SCALES if s != scale]
        model, _ = fit_variant(out.chosen, data, prepared, train, val, config, kept)
        out.ablations[scale] = prepared.targets.inverse(model.predict(prepared.rows(data, test, kept)[0])[0])
    out.seconds["ablations"] = time.perf_counter() - start
    return out


def _fold_scores(outputs: Sequence[FoldOutput], data: MultiscaleData, key: str, ablation: bool = False
                 ) -> list[dict[str, dict[str, float]]]:
    """direction_metrics of variant (or ablated scale) `key` on every fold's test rows."""
    direction = data.direction()
    return [direction_metrics(data.y[o.test], (o.ablations if ablation else o.predictions)[key], direction[o.test],
                              PROPERTY_COLUMNS) for o in outputs]


def _summary(folds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per property: r2_mean (per-direction R², the headline), r2_sd, r2_ci95 (t-interval over folds),
    r2_longitudinal, r2_transverse and r2_pooled (means over folds)."""
    out = {}
    for prop in PROPERTY_COLUMNS:
        headline = np.array([f[prop]["r2_dir"] for f in folds])
        out[prop] = {"r2_mean": float(np.nanmean(headline)),
                     "r2_sd": float(np.nanstd(headline, ddof=1)) if len(headline) > 1 else 0.0,
                     "r2_ci95": list(mean_ci(headline)),
                     "r2_longitudinal": float(np.nanmean([f[prop]["r2_L"] for f in folds])),
                     "r2_transverse": float(np.nanmean([f[prop]["r2_T"] for f in folds])),
                     "r2_pooled": float(np.nanmean([f[prop]["r2"] for f in folds]))}
    return out


def _paired(a: list[dict], b: list[dict], name: str) -> dict[str, dict[str, Any]]:
    return {prop: paired([f[prop]["r2_dir"] for f in a], [f[prop]["r2_dir"] for f in b]).as_dict(name)
            for prop in PROPERTY_COLUMNS}


def _gates(outputs: Sequence[FoldOutput], variant: str) -> dict[str, dict[str, float]]:
    """Mean gate share of every scale per property over the test rows of all folds."""
    stacked = np.concatenate([o.gates[variant] for o in outputs if variant in o.gates])
    mean = stacked.mean(axis=0)
    return {prop: {scale: float(mean[j, s]) for s, scale in enumerate(SCALES)}
            for j, prop in enumerate(PROPERTY_COLUMNS)}


def served_design(choices: Sequence[str], val_loss: Mapping[str, float]) -> str:
    """The variant the folds chose most often on inner validation; a tie goes to the lower mean inner-validation
    loss."""
    counts = Counter(choices)
    return min(counts, key=lambda v: (-counts[v], val_loss[v]))


def summarize(outputs: Sequence[FoldOutput], data: MultiscaleData, config: MultiscaleConfig) -> dict[str, Any]:
    """The report's variants, per-fold headline R², paired comparisons, ablations, gates and choices."""
    names = [GBM, *config.variants, CHOSEN]
    scores = {v: _fold_scores(outputs, data, v) for v in names}
    choices = [o.chosen for o in outputs]
    report: dict[str, Any] = {
        "variants": {v: _summary(scores[v]) for v in names},
        "paired": {f"{v}__vs__{GBM}": _paired(scores[v], scores[GBM], "delta_r2") for v in names if v != GBM},
        "per_fold": {v: {p: [f[p]["r2_dir"] for f in scores[v]] for p in PROPERTY_COLUMNS} for v in names},
        "folds": [o.name for o in outputs], "ablation": {}, "choices": choices,
        "inner_validation_loss": {v: float(np.mean([o.val_loss[v] for o in outputs])) for v in config.variants}}
    report["chosen_design"] = served_design(choices, report["inner_validation_loss"])
    for scale in SCALES:
        ablated = _fold_scores(outputs, data, scale, ablation=True)
        summary = _summary(ablated)
        delta = _paired(ablated, scores[CHOSEN], "delta_r2_vs_full")
        report["ablation"][f"without_{scale}"] = {p: {**summary[p], **delta[p]} for p in PROPERTY_COLUMNS}
    for variant in (v for v in config.variants if v.startswith("gfm")):
        report["gates" if variant == "gfm" else f"gates_{variant}"] = _gates(outputs, variant)
    return report


def descriptors_version(processed_dir: str | Path) -> str:
    """Content hash of the descriptor files the multiscale model reads besides the data version's tables."""
    return hash_files((name, Path(processed_dir) / name) for name in DESCRIPTOR_FILES)


def expected_sources(processed_dir: str | Path) -> dict[str, str]:
    """What a served multiscale model must have been made from: the data version and the descriptors."""
    return {DATA: data_version(processed_dir), DESCRIPTORS: descriptors_version(processed_dir)}


def fit_served(data: MultiscaleData, variant: str, config: MultiscaleConfig, evaluation: EvaluationConfig
               ) -> tuple[FusionEnsemble, Prepared]:
    """The chosen variant on all films, early-stopped on a seeded inner-validation share of them."""
    films = np.unique(data.films())
    rng = np.random.default_rng([evaluation.seed, 11])
    val_films = rng.choice(films, size=max(1, int(round(evaluation.inner_val_fraction * len(films)))), replace=False)
    val = data.index_of(val_films)
    train = np.setdiff1d(np.arange(len(data.y)), val)
    prepared = Prepared.fit(data, train)
    model, _ = fit_variant(variant, data, prepared, train, val, config)
    return model, prepared


def save_served(folder: Path, model: FusionEnsemble, prepared: Prepared, data: MultiscaleData, variant: str,
                lineage: Lineage) -> Lineage:
    """Write the model folder (weights, config with the descriptor names per scale, scalers) and its lineage."""
    torch.save(model.state(), folder / MODEL_FILE)
    write_json({"variant": variant, "scales": data.columns, "properties": list(PROPERTY_COLUMNS),
                "targets": "z-score of ln(property)"}, folder / CONFIG_FILE)
    write_json({"features": prepared.features.as_dict(),
                "targets": prepared.targets.to_dict()},
               folder / SCALERS_FILE)
    return write_lineage(folder, lineage)


def load_served(folder: str | Path, processed_dir: str | Path) -> tuple[FusionEnsemble, Prepared, dict[str, Any]]:
    """The served model, its scalers and config; LineageError when it was made from other data or descriptors."""
    folder = Path(folder)
    check_lineage(folder, expected_sources(processed_dir), "multiscale")
    scalers = json.loads((folder / SCALERS_FILE).read_text())
    prepared = Prepared(FeatureScaler.from_dict(scalers["features"]),
                        LogTargetScaler.from_dict(scalers["targets"]))
    state = torch.load(folder / MODEL_FILE, weights_only=False)
    return FusionEnsemble.from_state(state), prepared, json.loads((folder / CONFIG_FILE).read_text())


def run_multiscale(workspace: Workspace, params: Mapping[str, Any], run_id: str | None = None, progress: bool = True
                   ) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate every variant and ablation, fit and save the chosen design, write the plots and log to MLflow;
    returns reports/multiscale.json's content and the plots."""
    start = time.perf_counter()
    config = section(params, "multiscale", MultiscaleConfig)
    evaluation = section(params, "evaluation", EvaluationConfig)
    data = MultiscaleData.load(workspace.processed)
    films = np.unique(data.films())
    always = reference_films(films, evaluation.reference_fraction)
    folds = list(cv_folds(films, evaluation.folds, evaluation.repeats, evaluation.inner_val_fraction, evaluation.seed,
                          always))
    outputs = list(map_forked(_one_fold, folds, (data, config), evaluation.workers, "multiscale folds", progress))
    report = summarize(outputs, data, config)
    cv_seconds = time.perf_counter() - start
    fit_start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: one thread is as fast, and immune to a busy machine's other load
    try:
        model, prepared = fit_served(data, report["chosen_design"], config, evaluation)
    finally:
        torch.set_num_threads(threads)
    sources = expected_sources(workspace.processed)
    lineage = Lineage.of(sources, params_hash({"multiscale": config, "evaluation": evaluation}), code_version(__name__))
    with atomic_dir(workspace.models / MULTISCALE_DIR) as tmp:
        lineage = save_served(tmp, model, prepared, data, report["chosen_design"], lineage)
    plots_dir = workspace.reports / MULTISCALE_PLOTS_DIR
    plots = {"variants": plot_variants(report["variants"], plots_dir / "r2_by_variant.png"),
             "ablation": plot_ablation(report["ablation"], plots_dir / "ablation_deltas.png")}
    if "gates" in report:
        plots["gates"] = plot_gates(report["gates"], plots_dir / "gates.png")
    report.update(
        scales=data.columns, n_films=int(len(films)), n_rows=int(len(data.y)),
        protocol={"folds": evaluation.folds, "repeats": evaluation.repeats,
                  "n_test_films": int(len(films) - len(always)), "n_reference_films": len(always),
                  "inner_val_fraction": evaluation.inner_val_fraction, "seeds": list(config.seeds),
                  "headline_metric": "r2_mean: mean of the longitudinal and transverse R²"},
        seconds_per_variant={k: float(np.sum([o.seconds.get(k, 0.0) for o in outputs]))
                             for k in (GBM, *config.variants, "ablations")},
        cv_seconds=round(cv_seconds, 2), served_fit_seconds=round(time.perf_counter() - fit_start, 2),
        data_version=sources[DATA], fingerprint=lineage.fingerprint)
    _track(workspace, params, run_id, report, plots, config, lineage)
    report["seconds"] = round(time.perf_counter() - start, 2)
    return report, plots


def _track(workspace: Workspace, params: Mapping[str, Any], run_id: str | None, report: dict[str, Any],
           plots: Mapping[str, Path], config: MultiscaleConfig, lineage: Lineage) -> None:
    tags = {"data_version": lineage.data_version, "code_version": lineage.code_version, "profile": params["profile"],
            "descriptors_version": lineage.parents[DESCRIPTORS], "fingerprint": lineage.fingerprint,
            "chosen_design": report["chosen_design"]}
    with tracking_run(resolve_tracking(params, workspace.root), "multiscale", run_id, tags) as run:
        run.log_params({"multiscale": dataclasses.asdict(config)})
        run.log_metrics({k: report[k] for k in ("variants", "ablation", "paired")})
        for path in plots.values():
            run.log_artifact(path)
        run.log_artifact(workspace.models / MULTISCALE_DIR, MULTISCALE_DIR)
    report["mlflow_run_id"] = run.run_id
