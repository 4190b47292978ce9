"""The evaluation protocol: film-level K-fold cross-validation with a fresh SGPT per fold.

For every fold of `matmcl.evaluation.protocol.cv_folds` (films of the histogram-matching reference always train):
1. the fold's condition scaler is fitted on its inner-training films and its own SGPT is pre-trained on them only
   (no property labels, no inner-validation or test film);
2. every variant and baseline is fitted on the inner-training films, early-stopped and chosen (matmcl_fusion's
   design) on the inner-validation films, and scored once on the test fold;
3. ceilings (virtual lab only) are scored on the same test films;
4. optional ablations (SGPT without the fusion encoder, CLIP-style) and the learning curve (labels of 25 / 50 /
   100 % of the inner-training films; SGPT pre-trained on all of them, since it reads no labels).
Summaries: per property R² pooled and per direction (L, T, and their mean `r2_dir`, the headline), RMSE, mean ± sd
over folds, 95 % bootstrap CI over films of the out-of-fold predictions, and paired comparisons over folds.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matmcl.artifacts import GROUND_TRUTH_DIR, LAB_MANIFEST
from matmcl.evaluation.ceilings import (
    CONDITIONS,
    STRUCTURE,
    expected_fold_metrics,
    read_measurement,
    simulate_ceilings,
)
from matmcl.evaluation.protocol import (
    LONGITUDINAL_FLAG,
    Fold,
    cv_folds,
    direction_metrics,
    direction_r2,
    r2_score_np,
    reference_films,
)
from matmcl.evaluation.stats import bootstrap_weights, mean_ci, paired, percentile_ci, weighted_r2
from matmcl.lab.mechanics import resimulate_properties
from matmcl.parallel import map_forked
from matmcl.retrieval.embeddings import concat_folds, fold_embeddings
from matmcl.models.sgpt import TABLE
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FILM_ID, PROPERTY_COLUMNS, SPLIT
from matmcl.splits import fit_scaler
from matmcl.training.config import CLIP_OBJECTIVE, EvaluationConfig, PretrainConfig, PropertyConfig
from matmcl.training.data import ConditionScaler, PatchBank, ProcessedData
from matmcl.training.pretrain import train_sgpt
from matmcl.training.properties import FITTERS, PropertyData, _fit_frozen

GROUND_TRUTH = Path(GROUND_TRUTH_DIR) / "properties.parquet"
CLIP_VARIANT = "matmcl_conditions_clip"
CEILING_NAMES = (CONDITIONS, STRUCTURE)
UNUSED = "unused"
METRICS = ("r2", "r2_L", "r2_T", "r2_dir", "rmse", "rmse_L", "rmse_T")


@dataclass
class CachedProcessed(ProcessedData):
    """A processed folder's tables with another split assignment and scaler; patch banks loaded once, shared."""

    banks: dict[int, PatchBank] = field(default_factory=dict)

    def patches(self, rows: pd.DataFrame, per_film: int = 0) -> PatchBank:
        if per_film not in self.banks:
            self.banks[per_film] = PatchBank.load(self.directory, self.table[FILM_ID].unique().tolist(), per_film)
        return self.banks[per_film]


def fold_view(base: CachedProcessed, train: Sequence[str], val: Sequence[str], test: Sequence[str]
              ) -> CachedProcessed:
    """`base` with splits train/val/test from the film lists (other films "unused") and the scaler refitted on
    the training films."""
    split = pd.Series(UNUSED, index=base.table.index, dtype=object)
    for name, films in (("train", train), ("val", val), ("test", test)):
        split[base.table[FILM_ID].isin(set(films))] = name
    table = base.table.assign(**{SPLIT: split.to_numpy()})
    doc = fit_scaler(table[table[SPLIT] == "train"].drop_duplicates(FILM_ID))
    scaler = ConditionScaler(np.asarray(doc["mean"]), np.asarray(doc["scale"]))
    return dataclasses.replace(base, table=table, scaler=scaler)


@dataclass
class Ceilings:
    """The virtual lab's ceilings per table row (`predictions`: name → (rows, 5)), the re-simulated measurements their
    expected R² is scored on (name → (k, rows, 5)) and the extraction bias factors applied (5,)."""

    predictions: dict[str, np.ndarray]
    resimulated: dict[str, np.ndarray]
    bias: np.ndarray


def ceiling_predictions(table: pd.DataFrame, raw_dir: Path, config: EvaluationConfig) -> Ceilings:
    """Per row of `table`: the conditions-only ceiling (mean of `oracle_draws` re-simulated films of its condition)
    and the structure ceiling (the film's own noise-free properties), both times the mean extraction bias of the
    lab's measurement, with re-simulated test sets (matmcl.evaluation.ceilings)."""
    keys = [FILM_ID, DIRECTION]
    films = table.drop_duplicates(FILM_ID).reset_index(drop=True)
    resimulated = resimulate_properties(films[list(CONDITION_COLUMNS)], config.oracle_draws, config.seed)
    resimulated.insert(0, FILM_ID, films[FILM_ID].to_numpy()[resimulated.pop("row").to_numpy()])
    truth = pd.read_parquet(raw_dir / GROUND_TRUTH)
    manifest = raw_dir / LAB_MANIFEST
    measurement = read_measurement(json.loads(manifest.read_text()) if manifest.is_file() else {})
    simulated = simulate_ceilings(table, truth, measurement, config.ceiling_bias_specimens,
                                  config.ceiling_resimulations, config.seed, config.workers)
    out = {}
    for name, source in zip(CEILING_NAMES, (resimulated, truth), strict=True):
        aligned = table[keys].merge(source[[*keys, *PROPERTY_COLUMNS]], on=keys, how="left", validate="1:1")
        out[name] = aligned[list(PROPERTY_COLUMNS)].to_numpy(dtype=float) * simulated["bias"]
    return Ceilings(out, {STRUCTURE: simulated[STRUCTURE], CONDITIONS: simulated[CONDITIONS]}, simulated["bias"])


def expected_ceilings(ceilings: Ceilings, folds: Sequence[Fold], films: np.ndarray, direction: np.ndarray
                      ) -> dict[str, dict[str, dict[str, float]]]:
    """Per ceiling and property: the mean over folds of the ceiling's expected R² (pooled, L, T and their mean)
    over the re-simulated measurements of the fold's test films."""
    per_fold: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in ceilings.predictions}
    for fold in folds:
        test = np.flatnonzero(np.isin(films, list(fold.test)))
        for name, prediction in ceilings.predictions.items():
            per_fold[name].append(expected_fold_metrics(prediction[test], ceilings.resimulated[name][:, test],
                                                        direction[test]))
    return {name: {prop: {f"{metric}_mean": float(np.nanmean([fold[prop][metric] for fold in values]))
                          for metric in ("r2", "r2_L", "r2_T", "r2_dir")}
                   for prop in PROPERTY_COLUMNS}
            for name, values in per_fold.items()}


@dataclass
class Scores:
    """Per-fold metrics and out-of-fold predictions of one model."""

    folds: list[dict[str, dict[str, float]]] = field(default_factory=list)
    oof: dict[int, np.ndarray] = field(default_factory=dict)  # repeat → (n_rows, 5) predictions (NaN: not tested)
    choices: list[str | None] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, repeat: int, test_index: np.ndarray, n_rows: int, y: np.ndarray, prediction: np.ndarray,
            direction: np.ndarray, choice: str | None = None) -> None:
        self.folds.append(direction_metrics(y, prediction, direction, PROPERTY_COLUMNS))
        self.oof.setdefault(repeat, np.full((n_rows, len(PROPERTY_COLUMNS)), np.nan))[test_index] = prediction
        self.choices.append(choice)

    def per_fold(self, prop: str, metric: str = "r2_dir") -> list[float]:
        return [fold[prop][metric] for fold in self.folds]


def _ci(values: tuple[float, float]) -> list[float]:
    return [float(values[0]), float(values[1])]


def summarize(scores: Scores, y: np.ndarray, direction: np.ndarray, films: np.ndarray, n_boot: int, seed: int
              ) -> dict[str, dict[str, Any]]:
    """Per property: mean and sd over folds of every metric, t-CI of the fold mean of r2_dir, and percentile
    bootstrap CIs over films of the out-of-fold R² (pooled `r2_ci95`, per-direction mean `r2_dir_ci95`; first
    repeat)."""
    out: dict[str, dict[str, Any]] = {}
    oof = scores.oof[min(scores.oof)]
    tested = np.isfinite(oof).all(axis=1)
    weights = bootstrap_weights(films[tested], n_boot, seed) if n_boot >= 1 else None
    lon = direction[tested] == LONGITUDINAL_FLAG
    for j, prop in enumerate(PROPERTY_COLUMNS):
        entry: dict[str, Any] = {}
        for metric in METRICS:
            values = np.array(scores.per_fold(prop, metric), dtype=float)
            entry[f"{metric}_mean"] = float(np.nanmean(values))
            entry[f"{metric}_sd"] = float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0
        entry["r2_dir_fold_ci95"] = _ci(mean_ci(scores.per_fold(prop)))
        t, p, d = y[tested, j], oof[tested, j], direction[tested]
        entry["r2_oof"] = r2_score_np(t, p)
        entry["r2_dir_oof"] = direction_r2(t, p, d)
        out[prop] = entry
        if weights is None:
            continue
        entry["r2_ci95"] = _ci(percentile_ci(weighted_r2(t, p, weights)))
        by_direction = [weighted_r2(t[m], p[m], weights[:, m]) for m in (lon, ~lon)]
        entry["r2_L_ci95"], entry["r2_T_ci95"] = (_ci(percentile_ci(r)) for r in by_direction)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            entry["r2_dir_ci95"] = _ci(percentile_ci(np.nanmean(np.column_stack(by_direction), axis=1)))
    return out


def compare(a: Scores, b: Scores) -> dict[str, dict[str, Any]]:
    """Paired comparison a − b over folds per property, on r2_dir (the headline) and on pooled R²."""
    out = {}
    for prop in PROPERTY_COLUMNS:
        headline = paired(a.per_fold(prop), b.per_fold(prop)).as_dict("delta_r2")
        pooled = paired(a.per_fold(prop, "r2"), b.per_fold(prop, "r2")).as_dict("delta_r2_pooled")
        out[prop] = {**headline, "delta_r2_pooled_mean": pooled["delta_r2_pooled_mean"],
                     "delta_r2_pooled_ci95": pooled["delta_r2_pooled_ci95"],
                     "folds_won_pooled": pooled["folds_won"]}
    return out


def _label_subset(view: CachedProcessed, fraction: float, seed: int) -> CachedProcessed:
    """`view` with only `fraction` of its training films keeping the "train" split (others unused)."""
    if fraction >= 1:
        return view
    train = view.table.loc[view.table[SPLIT] == "train", FILM_ID].unique()
    keep = np.random.default_rng([seed, int(fraction * 1000)]).choice(
        train, size=max(2, int(round(fraction * len(train)))), replace=False)
    split = view.table[SPLIT].where(~((view.table[SPLIT] == "train") & ~view.table[FILM_ID].isin(set(keep))), UNUSED)
    return dataclasses.replace(view, table=view.table.assign(**{SPLIT: split.to_numpy()}))


def _reference_films(processed_dir: Path, films: Sequence[str], config: EvaluationConfig) -> tuple[list[str], str]:
    """Films whose frames made the histogram-matching reference (always training films) and a note."""
    import json

    path = processed_dir / "reference_histogram.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    if doc.get("films"):
        return sorted(map(str, doc["films"])), f"histogram reference from {len(doc['films'])} reference films"
    chosen = reference_films(films, config.reference_fraction)
    return chosen, ("histogram reference pooled over all frames (preprocess.reference: pooled), so it saw test "
                    f"films' pixels; {len(chosen)} reference-subset films are kept out of the test folds anyway")


def cross_validate(processed_dir: str | Path, raw_dir: str | Path | None, pretrain_config: PretrainConfig,
                   property_config: PropertyConfig, config: EvaluationConfig, progress: bool = True
                   ) -> dict[str, Any]:
    """Run the protocol; returns the report (JSON-ready except NaN), `oof` (repeat 0 out-of-fold predictions per
    variant, with `y` and `rows`) for plots, and `embeddings` (each fold SGPT's film embeddings of its inner-training
    and test films, matmcl.retrieval.embeddings.CV_FIELDS) for the retrieval evaluation."""
    processed_dir = Path(processed_dir)
    loaded = ProcessedData.load(processed_dir)
    base = CachedProcessed(loaded.directory, loaded.table, loaded.scaler, loaded.features)
    table = base.table
    films = table[FILM_ID].to_numpy()
    y = table[list(PROPERTY_COLUMNS)].to_numpy(dtype=float)
    direction = table[DIRECTION].to_numpy()
    always, reference_note = _reference_films(processed_dir, table[FILM_ID].unique(), config)
    fold_config = pretrain_config if not config.fold_pretrain_epochs else dataclasses.replace(
        pretrain_config, epochs=config.fold_pretrain_epochs)
    clip_config = dataclasses.replace(fold_config, objective=CLIP_OBJECTIVE)
    seed = property_config.seeds[0]
    variants = list(property_config.variants)
    scores: dict[str, Scores] = {v: Scores() for v in variants}
    if config.ablations:
        scores[CLIP_VARIANT] = Scores()
    ceilings: dict[str, Scores] = {}
    ceiling_rows, simulated = None, None
    if raw_dir is not None and (Path(raw_dir) / GROUND_TRUTH).is_file():
        simulated = ceiling_predictions(table, Path(raw_dir), config)
        ceiling_rows = simulated.predictions
        ceilings = {name: Scores() for name in ceiling_rows}
    fractions = sorted(set(config.learning_curve))
    curve: dict[str, dict[float, Scores]] = {v: {f: Scores() for f in fractions}
                                             for v in config.learning_curve_variants}
    folds = list(cv_folds(table[FILM_ID].unique(), config.folds, config.repeats, config.inner_val_fraction,
                          config.seed, always))
    timing: dict[str, float] = {"pretrain": 0.0, "pretrain_clip": 0.0}
    histories: list[list[dict[str, float]]] = []
    embeddings: list[dict[str, np.ndarray]] = []
    for per_film in {0, property_config.fusion_patches}:  # load the patches once, before the workers fork
        base.patches(table, per_film)
    shared = (base, y, direction, fold_config, clip_config, property_config, config, seed, variants,
              ceiling_rows)
    for result in map_forked(_one_fold, folds, shared, config.workers, "cross-validation folds", progress):
        _merge(result, scores, ceilings, curve, timing, histories, embeddings)
    n_boot = config.bootstrap
    report: dict[str, Any] = {
        "protocol": {"folds": config.folds, "repeats": config.repeats, "n_films": int(table[FILM_ID].nunique()),
                     "n_test_films": int(table[FILM_ID].nunique() - len(always)),
                     "n_reference_films": len(always), "inner_val_fraction": config.inner_val_fraction,
                     "fold_pretrain_epochs": fold_config.epochs, "head_seed": seed,
                     "headline_metric": "r2_dir: mean of the longitudinal and transverse R²",
                     "bootstrap": n_boot, "reference": reference_note},
        "variants": {v: summarize(scores[v], y, direction, films, n_boot, config.seed) for v in variants},
        "per_fold": {v: s.folds for v, s in scores.items()},
        "fusion_choices": scores["matmcl_fusion"].choices if "matmcl_fusion" in scores else [],
        "seconds": {**{v: s.seconds for v, s in scores.items()}, **timing},
        "folds": [{"name": f.name, "n_train": len(f.train), "n_val": len(f.val), "n_test": len(f.test)}
                  for f in folds],
        "notes": [reference_note],
    }
    if ceilings:
        report["ceilings"] = {name: {prop: {k: v for k, v in entry.items() if k.startswith(("r2_mean", "r2_L_mean",
                                                                                           "r2_T_mean", "r2_dir_mean",
                                                                                           "r2_dir_sd"))}
                                     for prop, entry in summarize(s, y, direction, films, 0, config.seed).items()}
                              for name, s in ceilings.items()}
        report["ceilings_expected"] = expected_ceilings(simulated, folds, films, direction)
        report["ceiling_extraction_bias"] = dict(zip(PROPERTY_COLUMNS, simulated.bias.round(5).tolist()))
        report["notes"].append(
            f"ceilings: scored per fold on the same test films (`ceilings`) and as the expected value over "
            f"{config.ceiling_resimulations} re-simulated measurements of those films (`ceilings_expected`: new "
            f"specimens of the same films for the structure ceiling, new films at the same conditions for the "
            f"conditions ceiling); both ceilings predict the noise-free properties times the mean extraction bias of "
            f"{config.ceiling_bias_specimens} simulated specimens per row (`ceiling_extraction_bias`)")
    else:
        report["notes"].append("ceilings omitted: no virtual-lab ground truth (raw_dir/ground_truth/properties.parquet)")
    report["paired"] = {}
    for name in config.paired:
        a, _, b = name.partition("__vs__")
        if a in scores and b in scores:
            report["paired"][name] = compare(scores[a], scores[b])
    if config.ablations:
        report["ablations"] = {
            CLIP_VARIANT: summarize(scores[CLIP_VARIANT], y, direction, films, n_boot, config.seed),
            "description": {CLIP_VARIANT: "matmcl_conditions on an SGPT pre-trained CLIP-style (table vs image "
                                          "directly, no fusion encoder), same folds and schedule",
                            "no_sgpt": "the matmcl_conditions network trained from random weights (see variants)"},
        }
    report["pretrain_history"] = _history_report(histories)
    if fractions:
        report["learning_curve"] = _curve_report(curve, scores, fractions)
    else:
        report["notes"].append("learning curve off (evaluation.learning_curve: []); the paper profile runs it")
    if not config.ablations:
        report["notes"].append("ablations off (evaluation.ablations: false); the paper profile runs them")
    oof = {v: s.oof[0] for v, s in scores.items() if 0 in s.oof}
    return {"report": report, "oof": oof, "y": y, "direction": direction, "tested": np.isfinite(
        next(iter(oof.values()))).all(axis=1) if oof else None, "embeddings": concat_folds(embeddings)}


def _history_report(histories: Sequence[Sequence[Mapping[str, float]]]) -> dict[str, Any]:
    """Per-epoch pre-training loss and inner-validation contrastive loss, mean over folds, and each fold's epoch
    of lowest inner-validation loss (what the schedule length is judged by; the test films are not involved)."""
    if not histories or not all("val_loss" in h for fold in histories for h in fold):
        return {"per_fold": [list(fold) for fold in histories]}
    n = min(len(fold) for fold in histories)
    val = np.array([[h["val_loss"] for h in fold[:n]] for fold in histories])
    train = np.array([[h["loss"] for h in fold[:n]] for fold in histories])
    return {"epoch": list(range(1, n + 1)), "loss_mean": train.mean(0).round(4).tolist(),
            "val_loss_mean": val.mean(0).round(4).tolist(),
            "best_val_epoch": [int(np.argmin(v)) + 1 for v in val],
            "seconds_per_epoch": float(np.mean([h["seconds"] for fold in histories for h in fold]))}


def _curve_report(curve: Mapping[str, Mapping[float, Scores]], scores: Mapping[str, Scores],
                  fractions: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"fractions": list(fractions), "metric": "r2_dir", "variants": {}, "paired": {}}
    for variant, by_fraction in curve.items():
        out["variants"][variant] = {
            str(f): {prop: {"r2_dir_mean": float(np.nanmean(s.per_fold(prop))),
                            "r2_dir_sd": float(np.nanstd(s.per_fold(prop), ddof=1)) if len(s.folds) > 1 else 0.0,
                            "r2_mean": float(np.nanmean(s.per_fold(prop, "r2")))}
                     for prop in PROPERTY_COLUMNS}
            for f, s in by_fraction.items() if s.folds}
    pairs = [("matmcl_conditions", "no_sgpt"), ("matmcl_conditions", "gbm_conditions")]
    for a, b in pairs:
        if a in curve and b in curve:
            out["paired"][f"{a}__vs__{b}"] = {str(f): compare(curve[a][f], curve[b][f]) for f in fractions
                                              if curve[a][f].folds and curve[b][f].folds}
    return out


def _one_fold(fold: Fold, base: CachedProcessed, y: np.ndarray, direction: np.ndarray, fold_config: PretrainConfig,
              clip_config: PretrainConfig, property_config: PropertyConfig, config: EvaluationConfig, seed: int,
              variants: Sequence[str], ceiling_rows: Mapping[str, np.ndarray] | None) -> dict[str, Any]:
    """Run one fold on fresh accumulators and return them for `_merge` (matmcl.parallel runs it on one thread)."""
    scores = {v: Scores() for v in variants}
    if config.ablations:
        scores[CLIP_VARIANT] = Scores()
    ceilings = {name: Scores() for name in (ceiling_rows or {})}
    curve = {v: {f: Scores() for f in sorted(set(config.learning_curve))} for v in config.learning_curve_variants}
    timing: dict[str, float] = {"pretrain": 0.0, "pretrain_clip": 0.0}
    histories: list[list[dict[str, float]]] = []
    embeddings: list[dict[str, np.ndarray]] = []
    _run_fold(fold, base, y, direction, fold_config, clip_config, property_config, config, seed, variants,
              scores, ceilings, ceiling_rows, curve, timing, histories, embeddings)
    return {"scores": scores, "ceilings": ceilings, "curve": curve, "timing": timing, "histories": histories,
            "embeddings": embeddings}


def _merge(result: Mapping[str, Any], scores: dict[str, Scores], ceilings: dict[str, Scores],
           curve: dict[str, dict[float, Scores]], timing: dict[str, float],
           histories: list[list[dict[str, float]]], embeddings: list[dict[str, np.ndarray]]) -> None:
    """Append one fold's accumulators to the run's."""
    pairs = [(scores[k], v) for k, v in result["scores"].items()]
    pairs += [(ceilings[k], v) for k, v in result["ceilings"].items()]
    pairs += [(curve[k][f], v) for k, by_f in result["curve"].items() for f, v in by_f.items()]
    for into, part in pairs:
        into.folds.extend(part.folds)
        into.choices.extend(part.choices)
        into.seconds += part.seconds
        for repeat, oof in part.oof.items():
            target = into.oof.setdefault(repeat, np.full(oof.shape, np.nan))
            tested = np.isfinite(oof).all(axis=1)
            target[tested] = oof[tested]
    for key, value in result["timing"].items():
        timing[key] = timing.get(key, 0.0) + value
    histories.extend(result["histories"])
    embeddings.extend(result["embeddings"])


def _run_fold(fold: Fold, base: CachedProcessed, y: np.ndarray, direction: np.ndarray, fold_config: PretrainConfig,
              clip_config: PretrainConfig, property_config: PropertyConfig, config: EvaluationConfig, seed: int,
              variants: Sequence[str], scores: dict[str, Scores], ceilings: dict[str, Scores],
              ceiling_rows: Mapping[str, np.ndarray] | None, curve: dict[str, dict[float, Scores]],
              timing: dict[str, float], histories: list[list[dict[str, float]]],
              embeddings: list[dict[str, np.ndarray]]) -> None:
    view = fold_view(base, fold.train, fold.val, fold.test)
    test_index = np.flatnonzero((view.table[SPLIT] == "test").to_numpy())
    n_rows = len(base.table)
    y_test, d_test = y[test_index], direction[test_index]
    bank = view.patches(view.table, 0)
    began = time.perf_counter()
    sgpt, history = train_sgpt(view, view.rows(["train"]), fold_config, bank=bank, progress=False,
                               val_rows=view.rows(["val"]))
    timing["pretrain"] += time.perf_counter() - began
    histories.append([{k: h[k] for k in ("epoch", "loss", "val_loss", "seconds") if k in h} for h in history])
    embeddings.append(fold_embeddings(sgpt, fold_config.image_size, view.scaler, view.table,
                                      view.patches(view.table, property_config.fusion_patches), fold.train, fold.test,
                                      fold.fold, fold.repeat, property_config.embed_batch_size))
    data = PropertyData(view, sgpt, fold_config.image_size, property_config, {})
    by_variant = {}
    for variant in variants:
        began = time.perf_counter()
        result = FITTERS[variant](data, property_config, seed, "test")
        scores[variant].seconds += time.perf_counter() - began
        scores[variant].add(fold.repeat, test_index, n_rows, y_test, result.prediction, d_test, result.choice)
        by_variant[variant] = result
    for name, predictions in (ceiling_rows or {}).items():
        ceilings[name].add(fold.repeat, test_index, n_rows, y_test, predictions[test_index], d_test)
    if config.ablations:
        began = time.perf_counter()
        clip, _ = train_sgpt(view, view.rows(["train"]), clip_config, bank=bank, progress=False)
        timing["pretrain_clip"] += time.perf_counter() - began
        clip_data = PropertyData(view, clip, clip_config.image_size, property_config, {})
        began = time.perf_counter()
        result = _fit_frozen(TABLE)(clip_data, property_config, seed, "test")
        scores[CLIP_VARIANT].seconds += time.perf_counter() - began
        scores[CLIP_VARIANT].add(fold.repeat, test_index, n_rows, y_test, result.prediction, d_test)
    for variant, by_fraction in curve.items():
        for fraction, curve_scores in by_fraction.items():
            if fraction >= 1 and variant in by_variant:
                prediction = by_variant[variant].prediction
            else:
                subset = PropertyData(_label_subset(view, fraction, config.seed + fold.fold), sgpt,
                                      fold_config.image_size, property_config, {})
                prediction = FITTERS[variant](subset, property_config, seed, "test").prediction
            curve_scores.add(fold.repeat, test_index, n_rows, y_test, prediction, d_test)
