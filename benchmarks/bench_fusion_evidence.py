"""Why the image-using models stay below `gbm_conditions_features`: how much film-level structure each fold's SGPT
image embedding carries, measured on the evaluation folds.

Reads the evaluate stage's per-fold film embeddings (models/cv_embeddings.npz: each fold's SGPT, its inner-training
and test films), the measured structural features (data/processed/features.parquet) and the property table. Per fold,
fitted on the fold's training films and scored on its test films:
1. structure probes: each measured feature predicted from the conditions (gradient boosting), from the image
   embedding (ridge), and from both (gradient boosting on the conditions plus the embedding's first principal
   components) — the test R² says how much of the film's measured structure the embedding holds beyond the
   conditions (`film_specific_share_captured`: (R²_both − R²_conditions) / (1 − R²_conditions));
2. property models: gradient boosting on conditions + direction, plus either the measured features (the
   `gbm_conditions_features` bar) or the embedding's principal components (`gbm_conditions_embedding`), per-direction
   R² (mean of L and T) on the test rows, with paired comparisons over folds.
If the embedding models stay near the conditions-only model while the measured features lift it, the bottleneck is
what the SGPT image representation keeps, not the head on top of it. Writes reports/fusion_evidence.json.

    python benchmarks/bench_fusion_evidence.py [--workspace .] [--params FILE] [--components 8]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits

from matmcl.artifacts import CV_EMBEDDINGS, FEATURES_FILE, TABLE_FILE
from matmcl.atomic import write_json
from matmcl.config import Workspace, WorkspaceConfig, load_params, section
from matmcl.evaluation.protocol import direction_r2, r2_score_np
from matmcl.evaluation.stats import paired
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FILM_ID, PROPERTY_COLUMNS
from matmcl.training.config import PropertyConfig

SEED = 0


def _gbm(config: PropertyConfig) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(max_iter=config.gbm_max_iter, learning_rate=config.gbm_learning_rate,
                                         max_leaf_nodes=config.gbm_max_leaf_nodes, early_stopping=False,
                                         random_state=SEED)


def _fit_predict(make, x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """One regressor per target column (rows with a finite target), predicting `x_test`."""
    columns = []
    for j in range(y.shape[1]):
        ok = np.isfinite(y[:, j])
        columns.append(make().fit(x[ok], y[ok, j]).predict(x_test))
    return np.column_stack(columns)


def _fold_scores(fold: pd.DataFrame, features: pd.DataFrame, table: pd.DataFrame, feature_names: list[str],
                 config: PropertyConfig, components: int) -> dict[str, dict[str, list[float]]]:
    train, test = fold[fold["role"] == "train"], fold[fold["role"] == "test"]
    pca = PCA(components, random_state=SEED).fit(np.stack(train["image"]))
    pcs = {name: pca.transform(np.stack(part["image"])) for name, part in (("train", train), ("test", test))}
    conditions = {name: np.stack(part["conditions"]) for name, part in (("train", train), ("test", test))}
    films = {name: part[FILM_ID].to_numpy() for name, part in (("train", train), ("test", test))}
    measured = {name: features.set_index(FILM_ID).loc[ids, feature_names].to_numpy(dtype=float)
                for name, ids in films.items()}
    scores: dict[str, dict[str, list[float]]] = {"structure": {}, "property": {}}
    probes = {
        "conditions": (lambda: _gbm(config), conditions),
        "image_embedding": (lambda: RidgeCV(alphas=np.logspace(-3, 3, 13)),
                            {k: np.stack(part["image"]) for k, part in (("train", train), ("test", test))}),
        "conditions+image_embedding": (lambda: _gbm(config),
                                       {k: np.column_stack([conditions[k], pcs[k]]) for k in conditions}),
    }
    for name, (make, x) in probes.items():
        prediction = _fit_predict(make, x["train"], measured["train"], x["test"])
        for j, feature in enumerate(feature_names):
            scores["structure"].setdefault(f"{name}/{feature}", []).append(
                r2_score_np(measured["test"][:, j], prediction[:, j]))
    extras = {"gbm_conditions": None, "gbm_conditions_features": measured, "gbm_conditions_embedding": pcs}
    for name, extra in extras.items():
        rows = {}
        for split in ("train", "test"):
            part = table[table[FILM_ID].isin(set(films[split]))]
            position = {film: i for i, film in enumerate(films[split])}
            index = part[FILM_ID].map(position).to_numpy()
            x = [part[list(CONDITION_COLUMNS)].to_numpy(dtype=float), part[[DIRECTION]].to_numpy(dtype=float)]
            if extra is not None:
                x.append(extra[split][index])
            rows[split] = (np.column_stack(x), part[list(PROPERTY_COLUMNS)].to_numpy(dtype=float),
                           part[DIRECTION].to_numpy())
        prediction = _fit_predict(lambda: _gbm(config), rows["train"][0], rows["train"][1], rows["test"][0])
        y_test, direction = rows["test"][1], rows["test"][2]
        for j, prop in enumerate(PROPERTY_COLUMNS):
            scores["property"].setdefault(f"{name}/{prop}", []).append(
                direction_r2(y_test[:, j], prediction[:, j], direction))
    return scores


def evidence(workspace: Workspace, config: PropertyConfig, components: int) -> dict[str, Any]:
    """The report: per-fold structure-probe and property R² and their summaries."""
    processed = workspace.processed
    with np.load(workspace.models / CV_EMBEDDINGS, allow_pickle=False) as npz:
        rows = pd.DataFrame({"fold": npz["fold"], "repeat": npz["repeat"], FILM_ID: npz[FILM_ID], "role": npz["role"],
                             "conditions": list(npz["conditions"]), "image": list(npz["image"])})
    features = pd.read_parquet(processed / FEATURES_FILE)
    table = pd.read_parquet(processed / TABLE_FILE)
    feature_names = [f for f in config.structure_features if f in features.columns and f != "mean_angle_deg"]
    per_fold: dict[str, dict[str, list[float]]] = {"structure": {}, "property": {}}
    with threadpool_limits(1):
        for _, fold in rows[rows["repeat"] == 0].groupby("fold", sort=True):
            for kind, values in _fold_scores(fold, features, table, feature_names, config, components).items():
                for key, value in values.items():
                    per_fold[kind].setdefault(key, []).extend(value)
    summary = {kind: {key: {"r2_mean": float(np.nanmean(v)), "r2_sd": float(np.nanstd(v, ddof=1))}
                      for key, v in values.items()} for kind, values in per_fold.items()}
    captured = {}  # share of the film-specific (not condition-explained) variance of a feature the embedding adds
    for feature in feature_names:
        alone = summary["structure"][f"conditions/{feature}"]["r2_mean"]
        both = summary["structure"][f"conditions+image_embedding/{feature}"]["r2_mean"]
        captured[feature] = (both - alone) / (1 - alone) if alone < 1 else float("nan")
    comparisons = {}
    for a, b in (("gbm_conditions_embedding", "gbm_conditions"),
                 ("gbm_conditions_embedding", "gbm_conditions_features"),
                 ("gbm_conditions_features", "gbm_conditions")):
        comparisons[f"{a}__vs__{b}"] = {
            prop: paired(per_fold["property"][f"{a}/{prop}"], per_fold["property"][f"{b}/{prop}"]).as_dict("delta_r2")
            for prop in PROPERTY_COLUMNS}
    return {"folds": int(rows["fold"].nunique()), "pca_components": components, "features": feature_names,
            "metric": {"structure": "test R² per measured feature (film level)",
                       "property": "per-direction R² (mean of L and T) on the test rows"},
            "summary": summary, "film_specific_share_captured": captured, "paired": comparisons,
            "per_fold": per_fold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("."), help="workspace after `matmcl evaluate`")
    parser.add_argument("--components", type=int, default=8, help="principal components of the image embedding")
    parser.add_argument("--params", type=Path, help="parameter file (default: <workspace>/params.yaml)")
    args = parser.parse_args()
    params = load_params(args.params or args.workspace / "params.yaml")
    workspace = Workspace(args.workspace, section(params, "workspace", WorkspaceConfig))
    report = evidence(workspace, section(params, "property", PropertyConfig), args.components)
    path = write_json(report, workspace.reports / "fusion_evidence.json")
    for kind in ("structure", "property"):
        for key, value in report["summary"][kind].items():
            print(f"{kind:9s} {key:60s} R² {value['r2_mean']:+.3f} ± {value['r2_sd']:.3f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
