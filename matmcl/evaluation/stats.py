"""Uncertainty of evaluation results: grouped folds, bootstrap confidence intervals over groups (films, composites)
and paired comparisons of two models on the same folds.

Every comparison in the reports is paired: both models are scored on the same held-out groups of the same fold,
and the difference is summarised over folds (mean, 95 % CI, folds won). Bootstrap intervals resample whole groups
(a film's two tensile directions, or a composite's rows, move together), never single rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from sklearn.model_selection import GroupKFold

CONFIDENCE = 0.95
N_BOOTSTRAP = 1000

Metric = Callable[[np.ndarray, np.ndarray], float]


def grouped_folds(groups: Sequence, n_folds: int, n_repeats: int = 1, seed: int = 0
                  ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train_index, test_index) of `n_repeats` × `n_folds` folds in which every group (film id)
    lies wholly in train or test; each repeat shuffles the groups with its own seed."""
    groups = np.asarray(groups)
    unique = np.unique(groups)
    if len(unique) < n_folds:
        raise ValueError(f"{len(unique)} groups cannot make {n_folds} folds")
    for repeat in range(n_repeats):
        order = np.random.default_rng([seed, repeat]).permutation(len(unique))
        relabel = dict(zip(unique[order], range(len(unique))))
        coded = np.array([relabel[g] for g in groups])
        for fold, (train, test) in enumerate(GroupKFold(n_splits=n_folds).split(coded, groups=coded)):
            yield repeat, fold, train, test


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t confidence interval of the mean of `values` (e.g. one score per fold); NaN for fewer than two."""
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    half = scipy_stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, groups: Sequence, metric: Metric,
                 n_boot: int = N_BOOTSTRAP, seed: int = 0, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of `metric(y_true, y_pred)` resampling whole groups with replacement."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    unique, codes = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(codes == g) for g in range(len(unique))]
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n_boot):
        rows = np.concatenate([rows_of[g] for g in rng.integers(0, len(unique), len(unique))])
        scores.append(metric(y_true[rows], y_pred[rows]))
    low, high = np.nanpercentile(scores, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(low), float(high)


def bootstrap_weights(groups: Sequence, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """(n_boot, n_rows) multiplicities of every row in `n_boot` resamples of whole groups with replacement (the
    row-weight form of `bootstrap_ci`'s resampling, for vectorised metrics)."""
    unique, codes = np.unique(np.asarray(groups), return_inverse=True)
    draws = np.random.default_rng(seed).integers(0, len(unique), (n_boot, len(unique)))
    counts = np.zeros((n_boot, len(unique)))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts[:, codes]


def weighted_r2(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """R² of every weight row (n_boot, n_rows) over the finite `y_true` (NaN when fewer than two distinct rows or
    no variance): equal to `r2_score_np` on the resample those multiplicities describe."""
    keep = np.isfinite(y_true)
    t, p, w = y_true[keep], np.asarray(y_pred, dtype=float)[keep], weights[:, keep]
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w @ t) / total
        ss_tot = w @ (t ** 2) - total * mean ** 2
        ss_res = w @ ((t - p) ** 2)
        r2 = 1.0 - ss_res / ss_tot
    r2[((w > 0).sum(axis=1) < 2) | ~(ss_tot > 1e-12 * np.maximum(w @ (t ** 2), 1e-300))] = np.nan
    return r2


def percentile_ci(scores: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of bootstrap scores (NaN draws ignored)."""
    if not np.isfinite(scores).any():
        return float("nan"), float("nan")
    low, high = np.nanpercentile(scores, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(low), float(high)


@dataclass(frozen=True)
class Paired:
    """A paired comparison over folds: the mean difference (a − b), its CI and how many folds a won."""

    delta_mean: float
    delta_ci95: tuple[float, float]
    folds_won: int
    n_folds: int

    def as_dict(self, name: str = "delta") -> dict:
        return {f"{name}_mean": self.delta_mean, f"{name}_ci95": list(self.delta_ci95), "folds_won": self.folds_won,
                "n_folds": self.n_folds}


def paired(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True) -> Paired:
    """Compare per-fold scores `a` and `b` of two models on the same folds (e.g. R², or RMSE with
    `higher_is_better=False`, where a fold is won by the lower value)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same folds: {a.shape} vs {b.shape}")
    delta = a - b
    won = delta > 0 if higher_is_better else delta < 0
    return Paired(float(np.nanmean(delta)), mean_ci(delta), int(won.sum()), int(np.isfinite(delta).sum()))
