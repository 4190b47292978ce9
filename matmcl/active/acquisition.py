"""Choosing the next batch of films from a candidate pool with the surrogate's uncertainty.

Scores (on the surrogate's standardised log-properties, so every output counts alike):
- `uncertainty` (max-variance): the model's variance of the noise-free property summed over the five properties and
  two directions;
- `expected_improvement`: expected improvement of one output (`target`, e.g. longitudinal fracture strength) over
  the best film made so far.

Batch selection is greedy with kriging-believer fantasies: after each pick the Gaussian processes are conditioned on
a film at the picked conditions whose value is the predicted mean (a Gaussian process's posterior covariance does
not depend on the observed values, so this update is exact for the variance), the incumbent becomes the better of
itself and the pick's mean, and the next pick is scored again. Candidates near an earlier pick lose most of their
variance, so the batch spreads out without a hand-tuned distance penalty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from matmcl.active.config import EXPECTED_IMPROVEMENT, UNCERTAINTY
from matmcl.active.surrogate import PropertySurrogate

SCORE = "acquisition_score"


def _condition(cov: np.ndarray, j: int, noise: float) -> np.ndarray:
    """Posterior covariance after one more noisy observation at candidate j (rank-one update)."""
    column = cov[:, j].copy()
    return cov - np.outer(column, column) / (column[j] + noise)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """E[max(f − best, 0)] for f ~ N(mean, sd²) (0 where sd is 0 and mean ≤ best)."""
    sd = np.maximum(sd, 1e-12)
    z = (mean - best) / sd
    return (mean - best) * norm.cdf(z) + sd * norm.pdf(z)


def select_batch(surrogate: PropertySurrogate, candidates: pd.DataFrame, n: int, strategy: str,
                 target: str | None = None) -> pd.DataFrame:
    """The `n` candidates picked in order, with their `acquisition_score` at the time of the pick."""
    if strategy not in (UNCERTAINTY, EXPECTED_IMPROVEMENT):
        raise ValueError(f"acquisition: unknown strategy {strategy!r}; use {UNCERTAINTY} or {EXPECTED_IMPROVEMENT}")
    if n > len(candidates):
        raise ValueError(f"acquisition: {n} picks asked from {len(candidates)} candidates")
    names = list(surrogate.models) if strategy == UNCERTAINTY else [target]
    if strategy == EXPECTED_IMPROVEMENT and target not in surrogate.models:
        raise ValueError(f"acquisition: expected improvement needs a target output, one of {list(surrogate.models)}")
    latent = surrogate.latent(candidates)
    means = {k: latent[k][0] for k in names}
    covs = {k: latent[k][1] for k in names}
    best = surrogate.models[names[0]].best
    picks, scores = [], []
    available = np.ones(len(candidates), dtype=bool)
    for _ in range(n):
        if strategy == UNCERTAINTY:
            score = sum(np.clip(np.diag(c), 0.0, None) for c in covs.values())
        else:
            score = expected_improvement(means[target], np.sqrt(np.clip(np.diag(covs[target]), 0.0, None)), best)
        j = int(np.argmax(np.where(available, score, -np.inf)))
        picks.append(j)
        scores.append(float(score[j]))
        available[j] = False
        if strategy == EXPECTED_IMPROVEMENT:
            best = max(best, float(means[target][j]))
        covs = {k: _condition(c, j, surrogate.models[k].noise) for k, c in covs.items()}
    return candidates.iloc[picks].assign(**{SCORE: scores})
