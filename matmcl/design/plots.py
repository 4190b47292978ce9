"""Plots of inverse design: the optimisation trajectory (paper Fig. 4f) and target vs achieved in the lab."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from matmcl.evaluation.plots import column_label, panel_grid, save_figure
from matmcl.schema import CONDITION_COLUMNS, CONDITION_RANGES


def plot_trajectory(trajectory: np.ndarray, predicted: np.ndarray, target: Sequence[float], names: Sequence[str],
                    path: str | Path) -> Path:
    """Left: the conditions per step, min–max scaled to their valid ranges; then one panel per predicted quantity
    with its target (red dashed)."""
    fig, axes = panel_grid(1 + len(names), 4)
    steps = np.arange(len(trajectory))
    for j, column in enumerate(CONDITION_COLUMNS):
        low, high = CONDITION_RANGES[column]
        axes[0].plot(steps, (trajectory[:, j] - low) / (high - low), label=column)
    axes[0].set(xlabel="step", ylabel="condition (min–max scaled)", ylim=(-0.05, 1.05))
    axes[0].legend(fontsize=6)
    for ax, name, values, goal in zip(axes[1:], names, predicted.T, target):
        ax.plot(steps, values)
        ax.axhline(goal, color="red", ls="--", lw=1)
        ax.set(xlabel="step", ylabel=column_label(name, "predicted"))
    return save_figure(fig, path)


def plot_achieved(target: np.ndarray, achieved: Mapping[str, np.ndarray], names: Sequence[str], tolerance: float,
                  path: str | Path) -> Path:
    """Target vs measured-in-the-lab value per feature, one series per method; grey band: ±tolerance (relative)."""
    fig, axes = panel_grid(len(names), 4)
    for j, (ax, name) in enumerate(zip(axes, names)):
        values = np.concatenate([target[:, j], *(a[:, j] for a in achieved.values())])
        line = np.linspace(np.nanmin(values) * 0.9, np.nanmax(values) * 1.1, 2)
        ax.fill_between(line, line * (1 - tolerance), line * (1 + tolerance), color="0.88")
        ax.plot(line, line, "k--", lw=0.8)
        for method, values in achieved.items():
            ax.scatter(target[:, j], values[:, j], s=9, label=method)
        ax.set(xlabel=column_label(name, "target"), ylabel=column_label(name, "achieved"))
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)
