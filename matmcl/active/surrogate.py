"""Conditions → five properties × two directions with uncertainty: one Gaussian process per output.

Why a Gaussian process (scikit-learn's `GaussianProcessRegressor`): at 30–150 films it is the most accurate of the
usual candidates for a smooth response of six conditions, it fits in well under a second per output, and its
posterior variance is exact and cheap to condition on fantasised films, which the batch acquisition needs
(matmcl.active.acquisition). A deep ensemble would need many more films to be calibrated and minutes per round on
2 cores; a bootstrap ensemble of boosted trees gives piecewise-constant means and variances that do not shrink
smoothly near data.

Each output is log(property) standardised over the training films (properties are positive with multiplicative
scatter), conditions are scaled to [0, 1] over `bounds`, and the kernel is a constant × anisotropic Matérn-5/2
(one length scale per condition, so unimportant conditions get long scales) + white noise (the film-to-film and
specimen scatter). In property units the prediction of a newly made film's measured value is the log-normal mean
exp(μ + (σ_f² + σ_n²)/2); its `sd` is the model's (epistemic) sd of the latent log-property turned into property
units, sd = mean · √(exp(σ_f²) − 1) — the uncertainty acquisition reduces; the noise sd is `noise_sd`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from matmcl.schema import CONDITION_COLUMNS, DIRECTION, DIRECTION_NAMES, PROPERTY_COLUMNS

OUTPUTS: tuple[str, ...] = tuple(f"{p}_{DIRECTION_NAMES[flag]}" for p in PROPERTY_COLUMNS
                                 for flag in sorted(DIRECTION_NAMES, reverse=True))  # longitudinal first
LENGTH_SCALE_BOUNDS = (0.05, 50.0)  # in units of the scaled [0, 1] condition range
NOISE_BOUNDS = (1e-4, 2.0)  # white-noise variance, standardised log units
Bounds = Mapping[str, tuple[float, float]]


def wide_properties(long: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """id × direction rows with the five properties → one row per id with the `OUTPUTS` columns (NaN where a
    direction is missing), indexed by id in order of first appearance."""
    wide = long.pivot(index=id_column, columns=DIRECTION, values=list(PROPERTY_COLUMNS))
    wide.columns = [f"{prop}_{DIRECTION_NAMES[int(flag)]}" for prop, flag in wide.columns]
    return wide.reindex(index=pd.unique(long[id_column]), columns=list(OUTPUTS))


def scale_conditions(conditions: pd.DataFrame, bounds: Bounds) -> np.ndarray:
    """(n, 6) conditions mapped to [0, 1] over `bounds` (values outside map outside)."""
    low = np.array([bounds[c][0] for c in CONDITION_COLUMNS])
    high = np.array([bounds[c][1] for c in CONDITION_COLUMNS])
    return (conditions[list(CONDITION_COLUMNS)].to_numpy(dtype=float) - low) / np.where(high > low, high - low, 1.0)


@dataclass
class OutputModel:
    """One output's Gaussian process on standardised log values."""

    gp: GaussianProcessRegressor
    log_mean: float
    log_sd: float
    best: float  # the highest training value, standardised log units (expected improvement's incumbent)

    @property
    def noise(self) -> float:
        """White-noise variance in standardised log units."""
        return float(self.gp.kernel_.k2.noise_level)


class PropertySurrogate:
    """`fit(conditions, targets)` then `predict(conditions)`; `targets` holds the `OUTPUTS` columns (NaN rows of
    an output are left out of that output's fit)."""

    def __init__(self, bounds: Bounds, restarts: int = 1, seed: int = 0) -> None:
        self.bounds = dict(bounds)
        self.restarts = restarts
        self.seed = seed
        self.models: dict[str, OutputModel] = {}

    def _kernel(self):
        matern = Matern(length_scale=np.ones(len(CONDITION_COLUMNS)), length_scale_bounds=LENGTH_SCALE_BOUNDS, nu=2.5)
        return ConstantKernel(1.0, (1e-2, 1e2)) * matern + WhiteKernel(0.1, NOISE_BOUNDS)

    def fit(self, conditions: pd.DataFrame, targets: pd.DataFrame) -> "PropertySurrogate":
        x = self.scale(conditions)
        for name in OUTPUTS:
            y = targets[name].to_numpy(dtype=float)
            keep = np.isfinite(y)
            if keep.sum() < 2:
                raise ValueError(f"surrogate: {name} has {keep.sum()} measured films; need at least 2")
            if (y[keep] <= 0).any():
                raise ValueError(f"surrogate: {name} has non-positive values; the model works on log(property)")
            log_y = np.log(y[keep])
            mean, sd = float(log_y.mean()), float(log_y.std()) or 1.0
            gp = GaussianProcessRegressor(self._kernel(), n_restarts_optimizer=self.restarts, random_state=self.seed)
            with warnings.catch_warnings():  # a length scale at its upper bound: a condition that does not matter
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(x[keep], (log_y - mean) / sd)
            self.models[name] = OutputModel(gp, mean, sd, float(((log_y - mean) / sd).max()))
        return self

    def scale(self, conditions: pd.DataFrame) -> np.ndarray:
        return scale_conditions(conditions, self.bounds)

    def latent(self, conditions: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per output: (mean, covariance) of the noise-free standardised log-property at the rows."""
        x = self.scale(conditions)
        out = {}
        for name, model in self.models.items():
            mean, cov = model.gp.predict(x, return_cov=True)
            out[name] = mean, cov - model.noise * np.eye(len(x))  # the kernel's white term sits on the diagonal
        return out

    def predict(self, conditions: pd.DataFrame) -> pd.DataFrame:
        """Per row: `<output>` (expected measured value, property units), `<output>_sd` (model sd, property units)
        and `<output>_noise_sd` (film-to-film and specimen scatter, property units)."""
        x = self.scale(conditions)
        columns = {}
        for name, model in self.models.items():
            z, z_sd = model.gp.predict(x, return_std=True)
            latent_var = np.clip(z_sd ** 2 - model.noise, 0.0, None) * model.log_sd ** 2
            noise_var = model.noise * model.log_sd ** 2
            mu = model.log_mean + model.log_sd * z
            mean = np.exp(mu + (latent_var + noise_var) / 2)
            columns[name] = mean
            columns[f"{name}_sd"] = mean * np.sqrt(np.expm1(latent_var))
            columns[f"{name}_noise_sd"] = mean * np.sqrt(np.expm1(noise_var))
        return pd.DataFrame(columns, index=conditions.index)
