"""Gradient design of processing conditions (paper: Adam, lr 0.1, 120 steps from a random start).

All starts of all targets are one batch: Adam's update is element-wise, so optimising the sum of the per-start
losses moves every start exactly as its own optimiser would. The conditions live in the standardized space of scaler.json; after each
step they are projected (clamped) onto the valid condition ranges (schema.CONDITION_RANGES, the training range) and
fixed conditions are reset to their values, so they are kept exactly. The best start is the one with the lowest
final objective.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from matmcl.design.proxy import STRUCTURE_COLUMNS, StructureProxy
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES, PROPERTY_COLUMNS
from matmcl.training.data import ConditionScaler

# u (T, S, 6): S starts for each of T targets → loss (T, S), prediction (T, S, k)
Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def condition_name(name: str) -> str:
    """The condition column `name` stands for: the column itself or its unit-less stem (temperature →
    temperature_c); ValueError naming the six columns otherwise."""
    matches = [c for c in CONDITION_COLUMNS if name in (c, c.rsplit("_", 1)[0]) or c.startswith(f"{name}_")]
    if len(matches) != 1:
        raise ValueError(f"unknown condition {name!r}; conditions: {list(CONDITION_COLUMNS)}")
    return matches[0]


@dataclass(frozen=True)
class ConditionSpace:
    """Standardized condition space with the valid ranges and the fixed conditions of one design."""

    scaler: ConditionScaler
    fixed: Mapping[str, float]

    def __post_init__(self) -> None:
        for name, value in self.fixed.items():
            if name not in CONDITION_COLUMNS:
                raise ValueError(f"cannot fix unknown condition {name!r}; conditions: {list(CONDITION_COLUMNS)}")
            low, high = CONDITION_RANGES[name]
            if not (np.isfinite(value) and low <= value <= high):
                raise ValueError(f"fixed {name} = {value:g} is outside the valid range [{low:g}, {high:g}]")
        if len(self.fixed) == len(CONDITION_COLUMNS):
            raise ValueError("all six conditions are fixed: nothing left to design")

    def scaled(self, physical: np.ndarray) -> np.ndarray:
        return (np.asarray(physical, dtype=float) - self.scaler.mean) / self.scaler.scale

    def physical(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, dtype=float) * self.scaler.scale + self.scaler.mean

    def ranges(self) -> np.ndarray:
        """(6, 2) physical [low, high] per condition; a fixed condition's range is its value."""
        ranges = np.array([CONDITION_RANGES[c] for c in CONDITION_COLUMNS], dtype=float)
        for j, name in enumerate(CONDITION_COLUMNS):
            if name in self.fixed:
                ranges[j] = self.fixed[name]
        return ranges

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` uniform random valid condition sets (physical units, fixed ones at their values)."""
        ranges = self.ranges()
        return rng.uniform(ranges[:, 0], ranges[:, 1], size=(n, len(CONDITION_COLUMNS)))

    def frame(self, physical: np.ndarray) -> pd.DataFrame:
        """Physical conditions (n, 6) as a frame with the condition columns; fixed ones exactly at their values."""
        out = pd.DataFrame(np.atleast_2d(physical), columns=list(CONDITION_COLUMNS))
        for name, value in self.fixed.items():
            out[name] = float(value)
        return out


def check_structure_target(target: Mapping[str, float]) -> np.ndarray:
    """The target as (orientation order, diameter nm, pore size µm); ValueError for a missing or impossible one."""
    missing = [c for c in STRUCTURE_COLUMNS if c not in target]
    if missing:
        raise ValueError(f"structure target lacks {missing}; give all of {list(STRUCTURE_COLUMNS)}")
    values = np.array([float(target[c]) for c in STRUCTURE_COLUMNS])
    if not np.isfinite(values).all():
        raise ValueError(f"structure target {dict(target)} has a non-finite value")
    if not 0 < values[0] < 1:
        raise ValueError(f"orientation order must lie in (0, 1), got {values[0]:g}")
    for name, value in zip(STRUCTURE_COLUMNS[1:], values[1:]):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value:g}")
    return values


def check_property_target(target: Mapping[str, float]) -> dict[str, float]:
    """Property targets {column: value > 0}; ValueError for an unknown column or a non-positive value."""
    if not target:
        raise ValueError(f"no property target; give one or more of {list(PROPERTY_COLUMNS)}")
    for name, value in target.items():
        if name not in PROPERTY_COLUMNS:
            raise ValueError(f"unknown property {name!r}; properties: {list(PROPERTY_COLUMNS)}")
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"target {name} must be a positive number, got {value:g}")
    return {name: float(value) for name, value in target.items()}


def structure_objective(proxy: StructureProxy, targets: np.ndarray, spread_penalty: float) -> Objective:
    """Mean squared relative error of the ensemble mean to each target (T, 3), plus `spread_penalty` × the mean
    squared relative ensemble spread (keeps designs where the films support the proxy)."""
    proxy.requires_grad_(False).eval()
    goal = torch.as_tensor(np.atleast_2d(targets), dtype=torch.float32)[:, None]

    def objective(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        members = proxy(u)
        mean = members.mean(dim=0)
        loss = ((mean / goal - 1) ** 2).mean(dim=-1) + spread_penalty * ((members.std(dim=0) / goal) ** 2).mean(dim=-1)
        return loss, mean

    return objective


def property_objective(predict: Callable[[torch.Tensor], torch.Tensor], columns: Sequence[str],
                       targets: np.ndarray) -> Objective:
    """Mean squared relative error of predicted properties (`predict`: u (..., 6) → (..., 5) physical units) to
    the targets (T, len(columns)) of the given property columns."""
    index = [PROPERTY_COLUMNS.index(c) for c in columns]
    goal = torch.as_tensor(np.atleast_2d(targets), dtype=torch.float32)[:, None]

    def objective(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        predicted = predict(u)[..., index]
        return ((predicted / goal - 1) ** 2).mean(dim=-1), predicted

    return objective


@dataclass
class Design:
    """The best start's final conditions (physical), objective and prediction, and its trajectory per step."""

    conditions: dict[str, float]
    loss: float
    prediction: np.ndarray
    trajectory: np.ndarray  # (steps + 1, 6) physical conditions
    predicted_trajectory: np.ndarray  # (steps + 1, k)


def optimize(objective: Objective, spaces: Sequence[ConditionSpace], starts: int, steps: int, lr: float,
             seed: int) -> list[Design]:
    """Adam on `starts` random valid starts per target (one space per target, the objective's targets in the same
    order), all at once, projected after every step; the best start's design per target."""
    rng = np.random.default_rng(seed)
    scaled = [space.scaled(space.ranges().T) for space in spaces]
    low, high = (torch.as_tensor(np.stack([s[k] for s in scaled])[:, None], dtype=torch.float32) for k in (0, 1))
    start = np.stack([space.scaled(space.sample(starts, rng)) for space in spaces])
    u = torch.as_tensor(start, dtype=torch.float32).clamp(low, high).requires_grad_(True)
    optimizer = torch.optim.Adam([u], lr=lr)
    path, predicted = [], []
    for step in range(steps + 1):
        loss, prediction = objective(u)
        path.append(u.detach().clone())
        predicted.append(prediction.detach().clone())
        if step == steps:
            break
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        with torch.no_grad():
            u.copy_(torch.minimum(torch.maximum(u, low), high))
    best = torch.argmin(loss.detach(), dim=1).tolist()
    path_all, predicted_all, final = torch.stack(path).double().numpy(), torch.stack(predicted).double().numpy(), \
        loss.detach().double().numpy()
    designs = []
    for t, (space, k) in enumerate(zip(spaces, best)):
        trajectory = space.frame(space.physical(path_all[:, t, k])).to_numpy()
        designs.append(Design(dict(zip(CONDITION_COLUMNS, trajectory[-1].tolist())), float(final[t, k]),
                              predicted_all[-1, t, k], trajectory, predicted_all[:, t, k]))
    return designs
