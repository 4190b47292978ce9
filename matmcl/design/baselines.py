"""Baselines of inverse design: the nearest training film (lookup) and random search on a gradient-boosting proxy."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from matmcl.design.optimize import ConditionSpace
from matmcl.design.proxy import to_latent


def lookup(target: np.ndarray, film_features: np.ndarray, film_conditions: np.ndarray) -> np.ndarray:
    """Conditions (6,) of the film whose features are nearest the target: Euclidean distance of the z-scored latent
    features (logit order, log diameter, log pore size: relative differences count alike at every size)."""
    latent = to_latent(film_features)
    mean, scale = latent.mean(axis=0), latent.std(axis=0)
    distance = np.linalg.norm((latent - mean) / scale - (to_latent(target[None]) - mean) / scale, axis=1)
    return film_conditions[int(np.argmin(distance))]


class GBMProxy:
    """One scikit-learn HistGradientBoosting regressor per latent feature, on standardized conditions (one OpenMP
    thread: on a few hundred rows more threads only contend)."""

    def __init__(self, u: np.ndarray, features: np.ndarray, seed: int) -> None:
        latent = to_latent(features)
        with threadpool_limits(1):
            self.models = [HistGradientBoostingRegressor(random_state=seed).fit(u, latent[:, j])
                           for j in range(latent.shape[1])]

    def predict(self, u: np.ndarray) -> np.ndarray:
        """(n, 3) features in physical units."""
        with threadpool_limits(1):
            z = np.column_stack([m.predict(u) for m in self.models])
        return np.column_stack([1 / (1 + np.exp(-z[:, 0])), np.exp(z[:, 1]), np.exp(z[:, 2])])


def random_search(gbm: GBMProxy, space: ConditionSpace, target: np.ndarray, n_evaluations: int, seed: int
                  ) -> np.ndarray:
    """Physical conditions (6,) of the best of `n_evaluations` random valid conditions by the GBM proxy's mean
    squared relative error to the target."""
    candidates = space.sample(n_evaluations, np.random.default_rng(seed))
    loss = ((gbm.predict(space.scaled(candidates)) / target - 1) ** 2).mean(axis=1)
    return candidates[int(np.argmin(loss))]
