"""From the loop's runs (strategy × seed) to the report: learning curves (mean ± sd over seeds), the full-data
reference, films needed to reach a share of it, and paired comparisons of strategies per budget.

Headline metric: per property, the mean of the longitudinal and transverse R² (`r2`; pooled R² over both
directions is inflated because the direction alone explains much of the variance, docs/training.md). `mean` is
the R² averaged over the five properties; its films-to-reach is the first budget at which that average reaches
the same share of the averaged full-data R².
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matmcl.active.config import MODEL_STRATEGIES
from matmcl.active.loop import FULL_DATA
from matmcl.evaluation.stats import paired
from matmcl.schema import PROPERTY_COLUMNS

MEAN = "mean"  # the R² averaged over the five properties
METRICS = ("r2", "r2_pooled", "r2_longitudinal", "r2_transverse")
BASELINES = ("random", "latin_hypercube")


def _matrix(runs: Sequence[dict], prop: str, metric: str = "r2") -> np.ndarray:
    """(seeds, budgets) of one metric; `prop` = MEAN averages the five properties."""
    props = PROPERTY_COLUMNS if prop == MEAN else (prop,)
    return np.array([[np.mean([scores[p][metric] for p in props]) for scores in run["scores"]] for run in runs])


def _by_strategy(runs: Sequence[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for run in sorted(runs, key=lambda r: r["seed"]):
        grouped.setdefault(run["strategy"], []).append(run)
    return grouped


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in values]


def curves(runs: Sequence[dict]) -> dict[str, dict]:
    """Per strategy: films spun and, per property (and `mean`) and metric, mean and sd over seeds per budget."""
    out = {}
    for strategy, group in _by_strategy(runs).items():
        if strategy == FULL_DATA:
            continue
        entry = {"films": group[0]["films"], "seeds": [r["seed"] for r in group],
                 "edge_fraction": round(float(np.mean([r["edge_fraction"] for r in group])), 4)}
        for prop in (*PROPERTY_COLUMNS, MEAN):
            entry[prop] = {}
            for metric in METRICS:
                values = _matrix(group, prop, metric)
                entry[prop][metric] = {"mean": _rounded(values.mean(axis=0)),
                                       "sd": _rounded(values.std(axis=0, ddof=1) if len(values) > 1
                                                      else np.zeros(values.shape[1]))}
        out[strategy] = entry
    return out


def full_data(runs: Sequence[dict]) -> dict:
    """The full-data reference per property (and `mean`): R² mean and sd over seeds, films, definition."""
    group = _by_strategy(runs)[FULL_DATA]
    out: dict = {"films": group[0]["films"][0], "seeds": [r["seed"] for r in group],
                 "definition": "the same surrogate trained on a Latin-hypercube design of this many virtual-lab films "
                               "(the default dataset's size), one design per seed"}
    for prop in (*PROPERTY_COLUMNS, MEAN):
        values = _matrix(group, prop)[:, 0]
        out[prop] = {"r2_mean": round(float(values.mean()), 4),
                     "r2_sd": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)}
    return out


def films_to_reach(runs: Sequence[dict], reference: dict, fraction: float) -> dict[str, dict]:
    """Per strategy and property: the first budget whose R² reaches `fraction` × the full-data R² (mean over
    seeds), per seed (None: not within the budget) and its mean, sd, min and max over the seeds that reached it
    (no threshold where the full-data R² is not positive)."""
    out = {}
    for strategy, group in _by_strategy(runs).items():
        if strategy == FULL_DATA:
            continue
        films = np.array(group[0]["films"])
        out[strategy] = {}
        for prop in (*PROPERTY_COLUMNS, MEAN):
            if reference[prop]["r2_mean"] <= 0:
                out[strategy][prop] = {"threshold_r2": None, "note": "full-data R² ≤ 0: no threshold"}
                continue
            threshold = fraction * reference[prop]["r2_mean"]
            per_seed = [int(films[np.argmax(row >= threshold)]) if (row >= threshold).any() else None
                        for row in _matrix(group, prop)]
            reached = np.array([v for v in per_seed if v is not None], dtype=float)
            out[strategy][prop] = {
                "threshold_r2": round(threshold, 4), "per_seed": per_seed,
                "reached": f"{len(reached)}/{len(per_seed)}",
                **({"mean": float(reached.mean()), "sd": float(reached.std(ddof=1)) if len(reached) > 1 else 0.0,
                    "min": int(reached.min()), "max": int(reached.max())} if len(reached) else {})}
    return out


def _paired(a: np.ndarray, b: np.ndarray) -> dict:
    """`paired` over seeds, its fold counts named after seeds."""
    d = paired(a, b).as_dict()
    d["seeds_won"], d["n_seeds"] = d.pop("folds_won"), d.pop("n_folds")
    return d


def paired_comparisons(runs: Sequence[dict]) -> dict[str, dict]:
    """Each model strategy against each baseline: per property (and `mean`), the R² difference over seeds (mean,
    t-interval 95 % CI, seeds won) at every budget and averaged over budgets (the area between learning curves)."""
    grouped = _by_strategy(runs)
    out = {}
    for a in (s for s in MODEL_STRATEGIES if s in grouped):
        for b in (s for s in BASELINES if s in grouped):
            if [r["seed"] for r in grouped[a]] != [r["seed"] for r in grouped[b]]:
                raise ValueError(f"paired comparison {a} vs {b} needs the same seeds")
            comparison = {"films": grouped[a][0]["films"]}
            for prop in (*PROPERTY_COLUMNS, MEAN):
                ra, rb = _matrix(grouped[a], prop), _matrix(grouped[b], prop)
                per_budget = [_paired(ra[:, k], rb[:, k]) for k in range(ra.shape[1])]
                comparison[prop] = {
                    "per_budget": [{"films": n, **d} for n, d in zip(comparison["films"], per_budget)],
                    "mean_over_budgets": _paired(ra.mean(axis=1), rb.mean(axis=1))}
            out[f"{a}_vs_{b}"] = comparison
    return out
