"""The evaluation protocol's folds and per-direction metrics.

- `reference_films`: a deterministic subset of films (by a hash of the film id, so it needs only the film ids of
  conditions.csv and no split) from which the histogram-matching reference is pooled. The folds treat these films
  as training films in every fold: no test film's pixels ever shape the reference.
- `cv_folds`: film-level K-fold cross-validation, repeated; inside each fold's training films an inner validation
  set for early stopping and every choice (the test fold is never looked at before scoring).
- `direction_metrics`: R² pooled over both tensile directions and within each direction (L, T), their mean
  (`r2_dir`, the headline: pooled R² is inflated because the direction alone explains about half the variance),
  and RMSE.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from matmcl.evaluation.stats import grouped_folds

LONGITUDINAL_FLAG, TRANSVERSE_FLAG = 1, 0
REFERENCE_FRACTION = 0.1  # share of films whose frames make the histogram reference (preprocess.reference_films)
MIN_ROWS = 2


def _rank_key(film_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{film_id}".encode()).hexdigest()


def reference_films(film_ids: Sequence[str], fraction: float, seed: int = 0) -> list[str]:
    """The `fraction` of films (at least one) with the smallest sha256(seed:film_id): stable whatever other films
    exist, computable before any split. fraction 0 → no films (the reference then pools all frames)."""
    unique = sorted(set(map(str, film_ids)))
    if fraction <= 0 or not unique:
        return []
    n = max(1, int(round(fraction * len(unique))))
    return sorted(sorted(unique, key=lambda f: _rank_key(f, seed))[:n])


@dataclass(frozen=True)
class Fold:
    """One outer fold: its repeat and index, and the film ids of inner training, inner validation and test."""

    repeat: int
    fold: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"r{self.repeat}f{self.fold}"


def cv_folds(film_ids: Sequence[str], n_folds: int, n_repeats: int = 1, inner_val_fraction: float = 0.15,
             seed: int = 0, always_train: Sequence[str] = ()) -> Iterator[Fold]:
    """`n_repeats` × `n_folds` folds over the films not in `always_train`; those are added to every fold's inner
    training films. The inner validation films are a seeded random `inner_val_fraction` of the fold's other
    training films (outer-test films never enter it)."""
    fixed = sorted(set(map(str, always_train)))
    pool = np.array(sorted(set(map(str, film_ids)) - set(fixed)))
    for repeat, fold, train_idx, test_idx in grouped_folds(pool, n_folds, n_repeats, seed):
        train = pool[train_idx]
        rng = np.random.default_rng([seed, repeat, fold, 7])
        n_val = max(1, int(round(inner_val_fraction * (len(train) + len(fixed)))))
        val = set(rng.choice(train, size=min(n_val, len(train) - 1), replace=False).tolist())
        inner = sorted([f for f in train if f not in val] + fixed)
        yield Fold(repeat, fold, tuple(inner), tuple(sorted(val)), tuple(sorted(pool[test_idx].tolist())))


def r2_score_np(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """R² over finite measured values (NaN when fewer than two or no variance)."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    keep = np.isfinite(y_true)
    t, p = y_true[keep], y_pred[keep]
    if len(t) < MIN_ROWS:
        return float("nan")
    ss = float(((t - t.mean()) ** 2).sum())
    return float("nan") if ss == 0 else 1.0 - float(((t - p) ** 2).sum()) / ss


def rmse_np(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    keep = np.isfinite(y_true)
    return float(np.sqrt(np.mean((y_true[keep] - y_pred[keep]) ** 2))) if keep.sum() else float("nan")


def direction_r2(y_true: np.ndarray, y_pred: np.ndarray, direction: np.ndarray) -> float:
    """Mean of the within-direction R² of longitudinal and transverse rows (the protocol's headline R²)."""
    values = [r2_score_np(y_true[direction == flag], y_pred[direction == flag])
              for flag in (LONGITUDINAL_FLAG, TRANSVERSE_FLAG)]
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def direction_metrics(y_true: np.ndarray, y_pred: np.ndarray, direction: np.ndarray,
                      property_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per property: `r2` (pooled), `r2_L`, `r2_T`, `r2_dir` (mean of L and T), `rmse`, `rmse_L`, `rmse_T`."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    direction = np.asarray(direction)
    out = {}
    for j, name in enumerate(property_names):
        t, p = y_true[:, j], y_pred[:, j]
        lon, tra = direction == LONGITUDINAL_FLAG, direction == TRANSVERSE_FLAG
        out[name] = {"r2": r2_score_np(t, p), "r2_L": r2_score_np(t[lon], p[lon]),
                     "r2_T": r2_score_np(t[tra], p[tra]), "r2_dir": direction_r2(t, p, direction),
                     "rmse": rmse_np(t, p), "rmse_L": rmse_np(t[lon], p[lon]), "rmse_T": rmse_np(t[tra], p[tra])}
    return out
