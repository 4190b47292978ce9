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
