"""Retrieval evaluation on galleries of films never used in training: each CV fold's test films.

Per fold (embeddings from `models/cv_embeddings.npz`), every test film is a query and the fold's test films are
the gallery; a query is correct when its own film is retrieved.
- cond_to_struct: the film's condition embedding against the gallery's structure embeddings;
  struct_to_cond: its structure embedding against the gallery's condition embeddings (cosine, `index.rank_of`).
- `similarity` (the paper's baseline): cond_to_struct takes the training film nearest to the query conditions
  (Euclidean, conditions standardized with the fold's training films), then ranks the gallery by cosine similarity
  to that film's structure embedding; struct_to_cond takes the training film of most similar structure, then ranks
  the gallery by Euclidean distance to its standardized conditions.
- `random`: expected values of a uniformly random ranking (top-k = k/N, MRR = H_N/N, feature distance = mean over
  the gallery), not seeded draws, so the baseline carries no sampling noise of its own.
Pooled metrics are means over all queries of all folds with percentile-bootstrap 95 % CIs resampling query films
(`matmcl.evaluation.stats`); per-fold means and sds are reported too, and the paired difference matmcl − similarity
on the same queries (`matmcl_minus_similarity`, same resamples). The structure-aware score is the distance,
in measured features z-scored over all films, between the query film and the top-1 result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from matmcl.evaluation.stats import bootstrap_weights, percentile_ci
from matmcl.retrieval.embeddings import ROLE_TEST, ROLE_TRAIN
from matmcl.retrieval.index import normalize, rank_of, top_k
from matmcl.retrieval.plots import QueryRow
from matmcl.schema import CONDITION_COLUMNS, FILM_ID
from matmcl.splits import fit_scaler

DIRECTIONS = ("cond_to_struct", "struct_to_cond")
METHODS = ("matmcl", "similarity", "random")


@dataclass
class FoldRanking:
    """One fold and direction: per query, the 1-based rank of its own film per method (random: None), the top-1
    gallery index per method, and the gallery size."""

    ranks: dict[str, np.ndarray]
    top1: dict[str, np.ndarray]
    n_gallery: int


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    doc = fit_scaler(pd.DataFrame(train, columns=list(CONDITION_COLUMNS)))
    mean, scale = np.asarray(doc["mean"]), np.asarray(doc["scale"])
    return [(x - mean) / scale for x in (train, *others)]


def _pairwise_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T, 0.0))


def rank_fold(train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> dict[str, FoldRanking]:
    """Ranks of every test film among the fold's test films, both directions, matmcl and similarity.

    `train`/`test`: "conditions" (n, 6) raw, "table" and "image" (n, d) unit embeddings; query i's film is
    gallery item i."""
    truth = np.arange(len(test["table"]))
    cond_train, cond_test = _standardize(train["conditions"], test["conditions"])
    scores = {
        "cond_to_struct": {
            "matmcl": test["table"] @ test["image"].T,
            "similarity": train["image"][_pairwise_distance(cond_test, cond_train).argmin(1)] @ test["image"].T,
        },
        "struct_to_cond": {
            "matmcl": test["image"] @ test["table"].T,
            "similarity": -_pairwise_distance(cond_train[(test["image"] @ train["image"].T).argmax(1)], cond_test),
        },
    }
    return {direction: FoldRanking({m: rank_of(s, truth) for m, s in by.items()},
                                   {m: s.argmax(1) for m, s in by.items()}, len(truth))
            for direction, by in scores.items()}


def hits(ranks: np.ndarray | None, n_gallery: np.ndarray, k: int) -> np.ndarray:
    """Per query: 1 when its film is within the top k (random: the expected value min(k, N)/N)."""
    if ranks is None:
        return np.minimum(k, n_gallery) / n_gallery
    return (ranks <= k).astype(float)


def reciprocal_ranks(ranks: np.ndarray | None, n_gallery: np.ndarray) -> np.ndarray:
    """Per query: 1/rank (random: the expected value H_N / N)."""
    if ranks is None:
        harmonic = np.cumsum(1.0 / np.arange(1, n_gallery.max() + 1))
        return harmonic[n_gallery - 1] / n_gallery
    return 1.0 / ranks


def _summary(values: dict[str, np.ndarray], fold: np.ndarray, weights: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    folds = np.unique(fold)
    for name, v in values.items():
        out[name] = float(v.mean())
        if weights is not None:
            out[f"{name}_ci95"] = list(percentile_ci(weights @ v / weights.sum(1)))
        per_fold = np.array([v[fold == f].mean() for f in folds])
        out.setdefault("fold_mean", {})[name] = float(per_fold.mean())
        out.setdefault("fold_sd", {})[name] = float(per_fold.std(ddof=1)) if len(folds) > 1 else 0.0
    return out


def evaluate_retrieval(rows: pd.DataFrame, table: np.ndarray, image: np.ndarray, features: pd.DataFrame | None,
                       feature_columns: Sequence[str], ks: Sequence[int], n_boot: int, seed: int) -> dict[str, Any]:
    """The retrieval report from the CV embeddings (`embeddings.read_cv_embeddings`): per direction and method,
    top-k accuracies, MRR, their 95 % CIs and per-fold mean ± sd, the top-k curve (k = 1 .. max(ks)), the feature
    distance of the top-1 result, and the gallery sizes. `features`: measured film features (film_id + columns)."""
    table, image = normalize(table), normalize(image)
    queries: dict[str, list] = {d: [] for d in DIRECTIONS}
    folds, sizes, gallery_films = [], [], []
    for n, ((repeat, fold), part) in enumerate(rows.groupby(["repeat", "fold"], sort=True)):
        sets = {}
        for role in (ROLE_TRAIN, ROLE_TEST):
            index = part.index[part["role"] == role].to_numpy()
            sets[role] = {"conditions": part.loc[index, list(CONDITION_COLUMNS)].to_numpy(float),
                          "table": table[index], "image": image[index]}
        test_ids = part.loc[part["role"] == ROLE_TEST, FILM_ID].to_numpy()
        for direction, ranking in rank_fold(sets[ROLE_TRAIN], sets[ROLE_TEST]).items():
            queries[direction].append(ranking)
        folds.append(np.full(len(test_ids), n))
        sizes.append(len(test_ids))
        gallery_films.append(test_ids)
    film_ids, fold = np.concatenate(gallery_films), np.concatenate(folds)
    n_gallery = np.array(sizes)[fold]
    weights = bootstrap_weights(film_ids, n_boot, seed) if n_boot >= 1 else None
    z = _zscored(features, feature_columns)
    curve_k = range(1, max(ks) + 1)
    report: dict[str, Any] = {"gallery_size": float(np.mean(sizes)), "gallery_sizes": sizes,
                              "n_queries": int(len(film_ids)), "n_folds": len(sizes),
                              "feature_distance_top1": {}, "curve": {"k": list(curve_k)}}
    for direction in DIRECTIONS:
        rankings: list[FoldRanking] = queries[direction]
        report[direction] = {}
        report["feature_distance_top1"][direction] = {}
        report["curve"][direction] = {}
        per_query = {}
        for method in METHODS:
            ranks = None if method == "random" else np.concatenate([r.ranks[method] for r in rankings])
            values = {f"top{k}": hits(ranks, n_gallery, k) for k in ks}
            values["mrr"] = reciprocal_ranks(ranks, n_gallery)
            per_query[method] = values
            report[direction][method] = _summary(values, fold, weights)
            report["curve"][direction][method] = [float(hits(ranks, n_gallery, k).mean()) for k in curve_k]
            if z is not None:
                distance = _top1_distance(rankings, method, gallery_films, z)
                report["feature_distance_top1"][direction][method] = float(np.nanmean(distance))
        report[direction]["matmcl_minus_similarity"] = _summary(
            {name: per_query["matmcl"][name] - per_query["similarity"][name] for name in per_query["matmcl"]},
            fold, weights)
    if z is None:
        report["notes"] = ["features.parquet missing: no feature distance"]
    report["feature_distance_top1"]["features"] = list(feature_columns)
    return report


def _zscored(features: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame | None:
    if features is None:
        return None
    values = features.set_index(FILM_ID)[list(columns)].astype(float)
    return (values - values.mean()) / values.std(ddof=0).replace(0.0, 1.0)


def _top1_distance(rankings: Sequence[FoldRanking], method: str, gallery_films: Sequence[np.ndarray],
                   z: pd.DataFrame) -> np.ndarray:
    """Per query: feature distance between its film and the top-1 result (random: mean over the gallery)."""
    out = []
    for ranking, films in zip(rankings, gallery_films, strict=True):
        f = z.reindex(films).to_numpy()
        distance = np.sqrt(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1))
        if method == "random":
            out.append(np.nanmean(distance, axis=1))
        else:
            out.append(distance[np.arange(len(films)), ranking.top1[method]])
    return np.concatenate(out)


def latency_ms_per_query(sizes: Sequence[int], dim: int, k: int, n_queries: int, seed: int) -> dict[str, float]:
    """Median wall time (ms) of one cosine top-k query (`index.top_k`) against synthetic galleries of unit
    float32 embeddings of each size, queries one at a time."""
    rng = np.random.default_rng(seed)
    out = {}
    for size in sizes:
        gallery = normalize(rng.standard_normal((size, dim), dtype=np.float32))
        queries = normalize(rng.standard_normal((n_queries + 1, dim), dtype=np.float32))
        top_k(queries[0], gallery, k)  # warm-up (page faults, BLAS threads)
        times = []
        for query in queries[1:]:
            began = time.perf_counter()
            top_k(query, gallery, k)
            times.append(time.perf_counter() - began)
        out[str(size)] = float(np.median(times) * 1000)
    return out


def _short_conditions(row: pd.Series) -> str:
    return (f"{row['concentration_wt_pct']:.0f} wt%, {row['voltage_kv']:.0f} kV\n"
            f"{row['drum_speed_rpm']:.0f} rpm, {row['flow_rate_ml_h']:.2f} mL/h")


def example_rows(rows: pd.DataFrame, table: np.ndarray, image: np.ndarray, patches: Mapping[str, np.ndarray],
                 n_queries: int, k: int, seed: int) -> dict[str, list[QueryRow]]:
    """Grid rows of `n_queries` seeded test films of the first fold, per direction: the query and SGPT's top-k
    gallery films (the fold's test films) with their similarity; `patches`: one patch per film id."""
    first = rows[(rows["repeat"] == rows["repeat"].min()) & (rows["fold"] == rows["fold"].min())
                 & (rows["role"] == ROLE_TEST)]
    index = first.index.to_numpy()
    chosen = np.sort(np.random.default_rng(seed).choice(len(index), min(n_queries, len(index)), replace=False))
    films = first[FILM_ID].to_numpy()
    unit = {"table": normalize(table[index]), "image": normalize(image[index])}
    out: dict[str, list[QueryRow]] = {}
    for direction, (query, against) in {"cond_to_struct": ("table", "image"),
                                        "struct_to_cond": ("image", "table")}.items():
        found, similarity = top_k(unit[query][chosen], unit[against], k)
        out[direction] = []
        for q, hits_, sims in zip(chosen, found, similarity, strict=True):
            captions = [f"{films[h]}  {s:.2f}" if direction == "cond_to_struct"
                        else f"{films[h]}  {s:.2f}\n{_short_conditions(first.iloc[h])}" for h, s in zip(hits_, sims)]
            caption = (f"{films[q]}\n{_short_conditions(first.iloc[q])}" if direction == "cond_to_struct"
                       else films[q])
            out[direction].append(QueryRow(caption, None if direction == "cond_to_struct" else patches[films[q]],
                                           [patches[films[h]] for h in hits_], captions, [h == q for h in hits_]))
    return out
