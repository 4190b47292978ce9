"""The design stage's work: fit the structure proxy, design for lab-made targets, verify in the virtual lab.

Proxy folder `models/design/` (swapped in whole): config.json + model.pt (the ensemble), design.json (the design
parameters it was fitted with) and lineage.json (data version, features.parquet hash, SGPT and conditions-head
fingerprints), so `load_designer` refuses a proxy made from other data.

Verification (docs/design.md): `n_targets` hidden condition sets drawn like the virtual lab draws films (Latin
hypercube, another seed than the dataset), the films made there and measured give the targets; the method (proxy +
Adam), the lookup baseline (nearest training film) and random search on a gradient-boosting proxy (as many proxy
evaluations as the optimiser: starts × steps) each design conditions for every target; all designs, and the hidden
conditions themselves (the oracle: what the lab's measurement noise alone leaves), are made with the same
replicates and measured. Success: all three features within `tolerance` (relative) of the target.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from matmcl.artifacts import DESIGN_DIR, DESIGN_PLOTS_DIR, FEATURES_FILE
from matmcl.atomic import atomic_dir, write_csv, write_json
from matmcl.codebase import code_version
from matmcl.config import FeaturesConfig, SynthConfig, Workspace, section
from matmcl.design.baselines import GBMProxy, lookup, random_search
from matmcl.design.config import DesignConfig
from matmcl.design.lab import LabProtocol, measure_properties, measure_structures
from matmcl.design.optimize import (
    ConditionSpace,
    Design,
    check_property_target,
    check_structure_target,
    optimize,
    property_objective,
    structure_objective,
)
from matmcl.design.plots import plot_achieved, plot_trajectory
from matmcl.evaluation.stats import N_BOOTSTRAP, bootstrap_weights, percentile_ci
from matmcl.design.property_model import load_property_model, property_sources
from matmcl.design.proxy import STRUCTURE_COLUMNS, StructureProxy, fit_proxy, load_proxy, save_proxy
from matmcl.hashing import hash_files
from matmcl.lab.conditions import sample_conditions
from matmcl.lineage import DATA, Lineage, check_lineage, params_hash, write_lineage
from matmcl.schema import CONDITION_COLUMNS, FILM_ID, SPLIT
from matmcl.tracking import resolve_tracking, tracking_run
from matmcl.training.data import ConditionScaler, ProcessedData

FEATURES = "features"  # lineage key of features.parquet's content hash
DESIGN_PARAMS_FILE = "design.json"
MODEL_NAME = "matmcl-design-proxy"
DESIGNS_TABLE = "structure_designs.csv"
STREAM_TARGETS, STREAM_DESIGNS, STREAM_PAPER = 0, 1, 2  # lab streams (matmcl.design.lab)
PROPERTY_TARGET_SEED, PROPERTY_DESIGN_SEED = 1000, 2000  # offsets of the property fabrications' seeds


def features_version(processed_dir: str | Path) -> str:
    """Content hash of features.parquet (not part of the data version: only the proxy is trained on it)."""
    return hash_files([(FEATURES_FILE, Path(processed_dir) / FEATURES_FILE)])


def expected_sources(models_dir: str | Path, processed_dir: str | Path) -> dict[str, str]:
    """What the proxy must have been made from: data version, features hash, SGPT and conditions-head."""
    return {**property_sources(models_dir, processed_dir), FEATURES: features_version(processed_dir)}


@dataclass
class TrainingFilms:
    """Films of the processed table with measured features: standardized and physical conditions, the three
    features (n, 3) and the split."""

    u: np.ndarray
    conditions: np.ndarray
    features: np.ndarray
    split: np.ndarray

    @classmethod
    def load(cls, processed_dir: str | Path, scaler: ConditionScaler) -> TrainingFilms:
        table = ProcessedData.load(processed_dir).table
        films = table.drop_duplicates(FILM_ID)[[FILM_ID, SPLIT, *CONDITION_COLUMNS]]
        measured = pd.read_parquet(Path(processed_dir) / FEATURES_FILE, columns=[FILM_ID, *STRUCTURE_COLUMNS])
        films = films.merge(measured, on=FILM_ID).dropna(subset=list(STRUCTURE_COLUMNS))
        films = films[(films[list(STRUCTURE_COLUMNS)] > 0).all(axis=1)]
        conditions = films[list(CONDITION_COLUMNS)].to_numpy(float)
        return cls(((conditions - scaler.mean) / scaler.scale), conditions,
                   films[list(STRUCTURE_COLUMNS)].to_numpy(float), films[SPLIT].to_numpy())

    def subset(self, splits: tuple[str, ...]) -> TrainingFilms:
        keep = np.isin(self.split, splits)
        return TrainingFilms(self.u[keep], self.conditions[keep], self.features[keep], self.split[keep])


def proxy_quality(proxy: StructureProxy, films: TrainingFilms) -> dict[str, dict[str, float]]:
    """R² and mean absolute relative error per feature on films the proxy never saw."""
    mean, _ = proxy.predict(films.u)
    out = {}
    for j, name in enumerate(STRUCTURE_COLUMNS):
        y = films.features[:, j]
        out[name] = {"r2": float(1 - np.sum((y - mean[:, j]) ** 2) / np.sum((y - y.mean()) ** 2)),
                     "mape": float(np.mean(np.abs(mean[:, j] / y - 1)))}
    return out


def _spaces(scaler: ConditionScaler, n: int, fixed: Sequence[Mapping[str, float]] | Mapping[str, float] | None
            ) -> list[ConditionSpace]:
    """One condition space per target: the same fixed conditions for all, or one mapping per target."""
    per_target = [dict(fixed or {})] * n if fixed is None or isinstance(fixed, Mapping) else [dict(f) for f in fixed]
    if len(per_target) != n:
        raise ValueError(f"{len(per_target)} sets of fixed conditions for {n} targets")
    return [ConditionSpace(scaler, f) for f in per_target]


def design_structures(proxy: StructureProxy, scaler: ConditionScaler, targets: Sequence[Mapping[str, float]],
                      config: DesignConfig, fixed: Sequence[Mapping[str, float]] | Mapping[str, float] | None = None
                      ) -> list[tuple[Design, np.ndarray]]:
    """Conditions for structure targets ({orientation_order, diameter_nm, pore_size_um} each), optimised together;
    per target the design and the proxy's ensemble spread (3,) at it."""
    goals = np.stack([check_structure_target(t) for t in targets])
    spaces = _spaces(scaler, len(goals), fixed)
    designs = optimize(structure_objective(proxy, goals, config.spread_penalty), spaces, config.starts,
                       config.steps, config.opt_lr, config.seed)
    chosen = np.array([list(d.conditions.values()) for d in designs])
    _, spread = proxy.predict(spaces[0].scaled(chosen))
    return list(zip(designs, spread))


def design_properties(predict: Callable[[torch.Tensor], torch.Tensor], scaler: ConditionScaler,
                      targets: Sequence[Mapping[str, float]], config: DesignConfig,
                      fixed: Sequence[Mapping[str, float]] | Mapping[str, float] | None = None) -> list[Design]:
    """Conditions for property targets ({property column: value} each, the same columns for all) through the
    served conditions model, optimised together."""
    goals = [check_property_target(t) for t in targets]
    columns = list(goals[0])
    if any(list(g) != columns for g in goals):
        raise ValueError("every property target of one batch needs the same properties")
    values = np.array([list(g.values()) for g in goals])
    return optimize(property_objective(predict, columns, values), _spaces(scaler, len(goals), fixed), config.starts,
                    config.steps, config.opt_lr, config.seed)


def load_designer(models_dir: str | Path, processed_dir: str | Path) -> tuple[StructureProxy, DesignConfig,
                                                                              ConditionScaler]:
    """The served proxy, the design parameters it was fitted with and the condition scaler; LineageError when the
    proxy was made from other data, features, SGPT model or heads than the workspace holds."""
    folder = Path(models_dir) / DESIGN_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing; run `matmcl inverse-design` (or `matmcl run`) first")
    check_lineage(folder, expected_sources(models_dir, processed_dir), "inverse-design")
    doc = json.loads((folder / DESIGN_PARAMS_FILE).read_text())
    return load_proxy(folder), section({"design": doc}, "design", DesignConfig), \
        ProcessedData.load(processed_dir).scaler


def _rel_errors(achieved: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.abs(achieved / target - 1)


def _successes(achieved: np.ndarray, target: np.ndarray, tolerance: float) -> np.ndarray:
    """Per target: every column within tolerance (a NaN measurement fails)."""
    return np.all(np.nan_to_num(_rel_errors(achieved, target), nan=np.inf) <= tolerance, axis=1)


def _paired_success(a: np.ndarray, b: np.ndarray, seed: int) -> dict[str, Any]:
    """Success-rate difference a − b over the same targets with its 95 % bootstrap CI (targets resampled)."""
    weights = bootstrap_weights(np.arange(len(a)), N_BOOTSTRAP, seed)
    delta = a.astype(float) - b.astype(float)
    return {"delta": float(delta.mean()), "delta_ci95": list(percentile_ci(weights @ delta / len(a)))}


def _score(achieved: np.ndarray, target: np.ndarray, tolerance: float, names: tuple[str, ...]) -> dict[str, Any]:
    """Success rate (every column within tolerance; a NaN measurement fails), median relative error (over targets
    × columns) and per column."""
    errors = _rel_errors(achieved, target)
    success = _successes(achieved, target, tolerance)
    return {"success_rate": float(success.mean()), "median_rel_error": float(np.nanmedian(errors)),
            "median_rel_error_by_feature": {n: float(np.nanmedian(errors[:, j])) for j, n in enumerate(names)},
            "within_tolerance_by_feature": {n: float(np.mean(errors[:, j] <= tolerance)) for j, n in enumerate(names)}}


def _named(values: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(STRUCTURE_COLUMNS, values)}


def _frame(rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(np.atleast_2d(rows), columns=list(CONDITION_COLUMNS))


def verify_structure(proxy: StructureProxy, scaler: ConditionScaler, films: TrainingFilms, config: DesignConfig,
                     protocol: LabProtocol, progress: bool
                     ) -> tuple[dict[str, Any], dict[str, np.ndarray], pd.DataFrame]:
    """The structure verification (module docstring): the report section, the achieved features per method (with
    `target` first) for the scatter plot, and one row per target (hidden conditions, target, every method's
    conditions and measured features)."""
    hidden = sample_conditions(config.n_targets, config.seed)[list(CONDITION_COLUMNS)]
    targets = measure_structures(hidden, protocol, STREAM_TARGETS, progress, "lab: targets")
    usable = np.isfinite(targets).all(axis=1) & (targets > 0).all(axis=1) & (targets[:, 0] < 1)
    hidden, targets = hidden[usable].reset_index(drop=True), targets[usable]
    space = ConditionSpace(scaler, {})
    gbm = GBMProxy(films.u, films.features, config.seed)
    method = design_structures(proxy, scaler, [dict(zip(STRUCTURE_COLUMNS, t)) for t in targets], config)
    spreads = np.array([spread for _, spread in method]) / targets
    designs = {"method": np.array([list(d.conditions.values()) for d, _ in method]),
               "lookup": np.array([lookup(t, films.features, films.conditions) for t in targets]),
               "random_search": np.array([random_search(gbm, space, t, config.starts * config.steps, config.seed + k)
                                          for k, t in enumerate(targets)])}
    achieved = {"oracle": measure_structures(hidden, protocol, STREAM_DESIGNS, progress, "lab: oracle")}
    for name, rows in designs.items():
        achieved[name] = measure_structures(_frame(rows), protocol, STREAM_DESIGNS, progress, f"lab: {name}")
    section_ = {**_score(achieved["method"], targets, config.tolerance, STRUCTURE_COLUMNS),
                "n_targets": int(len(targets)), "n_unmeasurable_targets": int((~usable).sum()),
                "median_relative_spread": {n: float(np.median(spreads[:, j]))
                                           for j, n in enumerate(STRUCTURE_COLUMNS)},
                "baselines": {m: _score(achieved[m], targets, config.tolerance, STRUCTURE_COLUMNS)
                              for m in ("lookup", "random_search", "oracle")}}
    success = {m: _successes(a, targets, config.tolerance) for m, a in achieved.items()}
    section_["method_vs"] = {m: _paired_success(success["method"], success[m], config.seed)
                             for m in ("lookup", "random_search", "oracle")}
    section_["better_than_baselines"] = bool(all(section_["success_rate"] > section_["baselines"][m]["success_rate"]
                                                 for m in ("lookup", "random_search")))
    section_["target_met"] = bool(section_["success_rate"] >= 0.8 and section_["better_than_baselines"])
    table = pd.concat([hidden.add_prefix("hidden_"), pd.DataFrame(targets, columns=list(STRUCTURE_COLUMNS)).add_prefix(
        "target_")] + [_frame(rows).add_prefix(f"{name}_") for name, rows in designs.items()] + [
        pd.DataFrame(values, columns=list(STRUCTURE_COLUMNS)).add_prefix(f"{name}_measured_")
        for name, values in achieved.items()], axis=1)
    return section_, {"target": targets, **achieved}, table


def verify_property(models_dir: Path, processed_dir: Path, scaler: ConditionScaler, config: DesignConfig,
                    synth: SynthConfig, progress: bool) -> dict[str, Any]:
    """Property targets measured on films made at hidden conditions; designs with the fixed conditions at the
    hidden values; both fabricated and measured from written tensile curves."""
    predict = load_property_model(models_dir, processed_dir, config.property_direction)
    hidden = sample_conditions(config.n_property_targets, config.seed + 1)[list(CONDITION_COLUMNS)]
    columns = list(config.property_columns)

    def measure(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
        return measure_properties(rows, config.property_direction, config.n_fabrications, synth.n_replicates,
                                  synth.strain_step_pct, seed)[columns]

    targets = measure(hidden, config.seed + PROPERTY_TARGET_SEED).to_numpy()
    fixed = hidden[list(config.property_fixed)].to_dict("records")
    designs = design_properties(predict, scaler, [dict(zip(columns, t)) for t in targets], config, fixed)
    predicted = np.array([d.prediction for d in designs])
    achieved = measure(_frame(np.array([list(d.conditions.values()) for d in designs])),
                       config.seed + PROPERTY_DESIGN_SEED).to_numpy()
    return {**_score(achieved, targets, config.tolerance, tuple(columns)),
            "median_model_rel_error": float(np.median(_rel_errors(predicted, achieved))),
            "n_targets": len(targets), "columns": columns, "direction": config.property_direction,
            "fixed": list(config.property_fixed), "n_fabrications": config.n_fabrications}


def paper_example(proxy: StructureProxy, scaler: ConditionScaler, config: DesignConfig, protocol: LabProtocol,
                  plots_dir: Path) -> tuple[dict[str, Any], Path]:
    """The paper's example target, designed, made in the lab (synth's frames per film) and its trajectory plot."""
    target = dict(zip(STRUCTURE_COLUMNS, config.paper_target))
    [(design, spread)] = design_structures(proxy, scaler, [target], config)
    lab = measure_structures(_frame(np.array(list(design.conditions.values()))), protocol, STREAM_PAPER)[0]
    goal = np.array(config.paper_target)
    plot = plot_trajectory(design.trajectory, design.predicted_trajectory, config.paper_target, STRUCTURE_COLUMNS,
                           plots_dir / "trajectory_paper_example.png")
    return {"target": target, "conditions": design.conditions, "proxy": _named(design.prediction),
            "proxy_spread": _named(spread), "lab": _named(lab), "rel_error": _named(_rel_errors(lab, goal)),
            "objective": design.loss}, plot


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: one torch thread is as fast and leaves the other core to the lab's workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def lab_protocol(params: dict[str, Any], config: DesignConfig) -> LabProtocol:
    """How the design stage makes and measures films: `config`'s frame size (0: the virtual lab's), the lab's info bar
    and pixel size, `frames_per_design` frames per film, on `features.workers` processes."""
    synth = section(params, "synth", SynthConfig)
    return LabProtocol(config.frame_width_px or synth.frame_width_px, config.frame_height_px or synth.frame_height_px,
                       synth.info_bar_px, synth.pixel_size_nm, config.frames_per_design, config.film_effects,
                       config.seed, section(params, "features", FeaturesConfig).workers)


def run_design(workspace: Workspace, params: dict[str, Any], run_id: str | None = None, progress: bool = True
               ) -> tuple[dict[str, Any], dict[str, Path]]:
    """Everything the design stage does; returns reports/design.json's content and the plots."""
    config = section(params, "design", DesignConfig)
    synth = section(params, "synth", SynthConfig)
    processed, models = workspace.processed, workspace.models
    sources = expected_sources(models, processed)
    scaler = ProcessedData.load(processed).scaler
    films = TrainingFilms.load(processed, scaler)
    fit_films = films.subset(("train", "val"))
    timing: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timing[name] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    with _one_torch_thread():
        proxy = fit_proxy(fit_films.u, fit_films.features, config.hidden_dims, config.ensemble, config.epochs,
                          config.lr, config.weight_decay, config.seed)
        with atomic_dir(models / DESIGN_DIR) as tmp:
            save_proxy(proxy, tmp)
            write_json(dataclasses.asdict(config), tmp / DESIGN_PARAMS_FILE)
            lineage = write_lineage(tmp, Lineage.of(sources, params_hash({"design": config}),
                                                    code_version(__name__)))
        report: dict[str, Any] = {"proxy": {"n_films": len(fit_films.u),
                                            "test": proxy_quality(proxy, films.subset(("test",)))}}
        lap("proxy")
        plots_dir = workspace.reports / DESIGN_PLOTS_DIR
        protocol = lab_protocol(params, config)
        plots: dict[str, Path] = {}
        if workspace.uses_virtual_lab:
            report["paper_example"], plots["trajectory"] = paper_example(
                proxy, scaler, config, dataclasses.replace(protocol, frames=synth.n_frames), plots_dir)
            lap("paper_example")
            report["structure"], achieved, table = verify_structure(proxy, scaler, fit_films, config, protocol,
                                                                    progress)
            write_csv(table, plots_dir / DESIGNS_TABLE)
            plots["achieved"] = plot_achieved(achieved.pop("target"), achieved, STRUCTURE_COLUMNS,
                                              config.tolerance, plots_dir / "target_vs_achieved.png")
            lap("structure")
            report["property"] = verify_property(models, processed, scaler, config, synth, progress)
            lap("property")
            report["verification"] = {"frame_px": [protocol.width_px, protocol.height_px],
                                      "info_bar_px": synth.info_bar_px,
                                      "pixel_size_nm": synth.pixel_size_nm, "frames_per_design": protocol.frames,
                                      "paper_example_frames": synth.n_frames, "film_effects": config.film_effects,
                                      "tolerance": config.tolerance,
                                      "random_search_evaluations": config.starts * config.steps}
        else:
            report["note"] = "raw data is a lab's own: designs are not verified (make them to verify)"
    report["lineage"] = dataclasses.asdict(lineage)
    report["data_version"] = sources[DATA]
    report["mlflow_run_id"] = _track(workspace, params, run_id, report, plots, proxy, sources, lineage)
    lap("tracking")
    report["timing"] = timing
    return report, plots


def _track(workspace: Workspace, params: dict[str, Any], run_id: str | None, report: dict[str, Any],
           plots: dict[str, Path], proxy: StructureProxy, sources: dict[str, str], lineage: Lineage) -> str | None:
    tags = {"data_version": sources[DATA], "code_version": lineage.code_version, "profile": params["profile"],
            "fingerprint": lineage.fingerprint, **{f"parent.{k}.fingerprint": v for k, v in sources.items()
                                                    if k != DATA}}
    with tracking_run(resolve_tracking(params, workspace.root), "design", run_id, tags) as run:
        run.log_params({"design": dataclasses.asdict(section(params, "design", DesignConfig))})
        run.log_metrics({k: report[k] for k in ("proxy", "structure", "property", "paper_example") if k in report})
        for path in plots.values():
            run.log_artifact(path)
        run.log_artifact(workspace.models / DESIGN_DIR, DESIGN_DIR)
        run.log_model(proxy, "design_proxy", MODEL_NAME, params["profile"])
        return run.run_id
