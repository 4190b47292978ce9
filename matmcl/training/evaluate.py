"""Evaluation: the cross-validation protocol over every property variant (matmcl.training.cv) with the virtual lab's
ceilings, and the alignment analyses of the served SGPT on its test films.

Writes `property.json`, `alignment.json` and PNG plots into the reports folder (layout: docs/training.md).
Ceilings need the virtual lab's ground truth (`<raw_dir>/ground_truth/properties.parquet`); for real data they are
omitted with a note.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matmcl.atomic import write_json
from matmcl.evaluation.alignment import (
    MIN_TSNE_SAMPLES,
    cosine_similarity_matrix,
    diagonal_gap,
    feature_correlation,
    improved_precision_recall,
    knn_probe,
    top1_accuracy,
    tsne_embedding,
)
from matmcl.evaluation.plots import plot_forest, plot_metric_bars, plot_parity, plot_similarity_matrix, plot_tsne
from matmcl.evaluation.regression import MIN_SAMPLES_R2
from matmcl.models.sgpt import FUSED, IMAGE, TABLE
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FILM_ID, LONGITUDINAL, PROPERTY_COLUMNS
from matmcl.training.config import EvaluationConfig, PretrainConfig, PropertyConfig
from matmcl.training.cv import cross_validate
from matmcl.training.pretrain import check_sgpt
from matmcl.training.properties import PropertyData

PROPERTY_REPORT = "property.json"
ALIGNMENT_REPORT = "alignment.json"
PLOTS_DIR = "evaluation"  # reports/<PLOTS_DIR>/: parity, R² bars, similarity matrix and t-SNE plots


def _json_safe(value: Any) -> Any:
    """Nested data with NaN/inf floats replaced by None (strict JSON for DVC and the Dagster UI)."""
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- alignment --------------------------------------------------------------------------------------------------


def _row_embeddings(data: PropertyData, modality: str) -> np.ndarray:
    """Test-row embeddings of `modality`; image and fused ones averaged over a film's patches and re-normalised."""
    inputs = data.inputs("test", modality)
    z = inputs.average(inputs.values.double())
    return torch.nn.functional.normalize(z, dim=-1).numpy()


def representations(data: PropertyData) -> dict[str, np.ndarray]:
    """The four representations of every test row compared in the alignment analyses."""
    return {
        "conditions": data.x["test"][:, : len(CONDITION_COLUMNS)],
        "condition_embedding": _row_embeddings(data, TABLE),
        "image_embedding": _row_embeddings(data, IMAGE),
        "fused_embedding": _row_embeddings(data, FUSED),
    }


def feature_analyses(reps: Mapping[str, np.ndarray], features: np.ndarray, config: EvaluationConfig,
                     plots_dir: Path) -> tuple[dict[str, Any], list[Path]]:
    """Mantel correlation, KNN probe R² (mean over repeats) and t-SNE plots of each representation vs features."""
    names = list(config.features)
    probe = math.ceil(len(features) * config.knn_test_size) >= MIN_SAMPLES_R2
    tsne = len(features) >= MIN_TSNE_SAMPLES
    out: dict[str, Any] = {"feature_correlation": {}, "knn_probe_r2": {}, "notes": []}
    if not probe:
        out["notes"].append(f"too few test films ({len(features)}) for a KNN probe")
    if not tsne:
        out["notes"].append(f"too few test films ({len(features)}) for t-SNE")
    plots = []
    for name, rep in reps.items():
        correlations = feature_correlation(rep, features, names)
        out["feature_correlation"][name] = correlations
        if probe:
            probes = [knn_probe(rep, features, names, config.knn_neighbors, config.knn_test_size, config.seed + i)
                      for i in range(config.knn_repeats)]
            out["knn_probe_r2"][name] = {f: float(np.mean([p[f] for p in probes])) for f in names}
        if tsne:
            coordinates = tsne_embedding(rep, config.tsne_perplexity, config.seed, config.tsne_max_iter)
            plots.append(plot_tsne(coordinates, features, names, plots_dir / f"tsne_{name}.png", correlations))
    return out, plots


def alignment_analyses(data: PropertyData, config: EvaluationConfig, plots_dir: Path
                       ) -> tuple[dict[str, Any], list[Path]]:
    """Similarity and IPR on every test row; structural-feature analyses on one (longitudinal) row per test film."""
    reps = representations(data)
    similarity = cosine_similarity_matrix(reps["condition_embedding"], reps["fused_embedding"])
    report: dict[str, Any] = {
        "n_rows": len(similarity),
        "similarity": {"diagonal_gap": diagonal_gap(similarity), "top1": top1_accuracy(similarity),
                       "top1_chance": 1 / len(similarity)},
        "notes": [],
    }
    if len(similarity) > config.ipr_k:
        report["ipr"] = {name: improved_precision_recall(reps["fused_embedding"], reps[f"{name}_embedding"],
                                                         config.ipr_k) for name in ("condition", "image")}
    else:
        report["notes"].append(f"too few test rows ({len(similarity)}) for IPR with k={config.ipr_k}")
    plots = [plot_similarity_matrix(similarity, plots_dir / "similarity_matrix.png")]
    features = data.processed.features
    if features is None:
        report["notes"].append("features.parquet missing: no structural-feature analyses")
        return report, plots
    rows = data.rows["test"]
    longitudinal = (rows[DIRECTION] == LONGITUDINAL).to_numpy()
    film_features = rows.loc[longitudinal, [FILM_ID]].merge(features, on=FILM_ID, how="left")
    report["n_films"] = int(longitudinal.sum())
    analyses, tsne_plots = feature_analyses({k: v[longitudinal] for k, v in reps.items()},
                                            film_features[list(config.features)].to_numpy(dtype=float), config,
                                            plots_dir)
    report["notes"] += analyses.pop("notes")
    return {**report, **analyses}, plots + tsne_plots


# --- the whole evaluation ----------------------------------------------------------------------------------------


def _summary_bars(report: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """Variant summaries plus each ceiling (sd 0) for the bar chart of `metric` (e.g. "r2_dir")."""
    bars = {v: {p: {f"{metric}_mean": m[f"{metric}_mean"], f"{metric}_sd": m[f"{metric}_sd"]}
                for p, m in props.items()} for v, props in report["variants"].items()}
    for name, props in report.get("ceilings", {}).items():
        bars[f"ceiling ({name})"] = {p: {f"{metric}_mean": m[f"{metric}_mean"], f"{metric}_sd": 0.0}
                                     for p, m in props.items()}
    return bars


def evaluate(processed_dir: str | Path, sgpt_dir: str | Path, reports_dir: str | Path,
             property_config: PropertyConfig, evaluation_config: EvaluationConfig, raw_dir: str | Path | None = None,
             progress: bool = True, pretrain_config: PretrainConfig | None = None) -> dict[str, Any]:
    """Run the cross-validation protocol (matmcl.training.cv) and the alignment analyses of the served SGPT on its
    test films; write property.json, alignment.json and the plots (in reports/evaluation/); return both reports,
    the plot paths (`plots`) and each fold SGPT's film embeddings (`embeddings`, for matmcl.retrieval)."""
    reports_dir = Path(reports_dir)
    plots_dir = reports_dir / PLOTS_DIR
    plots_dir.mkdir(parents=True, exist_ok=True)
    check_sgpt(sgpt_dir, processed_dir)  # refuse a served SGPT of other data before the (long) protocol runs
    began = time.perf_counter()
    cv = cross_validate(processed_dir, raw_dir, pretrain_config or PretrainConfig(), property_config,
                        evaluation_config, progress)
    property_report = cv["report"]
    property_report["seconds"]["cross_validation"] = time.perf_counter() - began
    tested = cv["tested"]
    plots = [plot_parity(cv["y"][tested], prediction[tested], PROPERTY_COLUMNS, plots_dir / f"parity_{variant}.png")
             for variant, prediction in cv["oof"].items()]
    plots.append(plot_metric_bars(_summary_bars(property_report, "r2_dir"), plots_dir / "r2_bars.png",
                                  metric="r2_dir", title="Per-direction R² (mean of L and T; mean ± sd over folds)"))
    plots.append(plot_metric_bars(_summary_bars(property_report, "r2"), plots_dir / "r2_bars_pooled.png",
                                  title="Pooled R² (both directions; mean ± sd over folds)"))
    if property_report["paired"]:
        plots.append(plot_forest(property_report["paired"], plots_dir / "paired_forest.png",
                                 title="Paired differences in per-direction R² (mean and 95 % CI over folds)"))

    data = PropertyData.load(processed_dir, sgpt_dir, property_config)
    alignment, alignment_plots = alignment_analyses(data, evaluation_config, plots_dir)
    property_report, alignment = _json_safe(property_report), _json_safe(alignment)
    write_json(property_report, reports_dir / PROPERTY_REPORT)
    write_json(alignment, reports_dir / ALIGNMENT_REPORT)
    return {"property": property_report, "alignment": alignment, "plots": plots + alignment_plots,
            "embeddings": cv["embeddings"]}
