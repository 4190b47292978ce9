"""Learning-curve plot of the active-learning benchmark: R² against films spun, one panel per property."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matmcl.active.summary import MEAN
from matmcl.evaluation.plots import column_label, panel_grid, save_figure
from matmcl.schema import PROPERTY_COLUMNS


def plot_learning_curves(curves: dict[str, dict], reference: dict, fraction: float, path: str | Path,
                         metric: str = "r2") -> Path:
    """Mean R² over seeds (± sd band) per strategy against films spun; dashed: the full-data R², dotted: its
    `fraction` (the films-to-reach threshold)."""
    props = (*PROPERTY_COLUMNS, MEAN)
    fig, axes = panel_grid(len(props), 3)
    for ax, prop in zip(axes, props):
        for strategy, curve in curves.items():
            films = np.array(curve["films"])
            mean, sd = np.array(curve[prop][metric]["mean"]), np.array(curve[prop][metric]["sd"])
            ax.plot(films, mean, marker="o", ms=3, label=strategy.replace("_", " "))
            ax.fill_between(films, mean - sd, mean + sd, alpha=0.2)
        full = reference[prop]["r2_mean"]
        ax.axhline(full, color="k", ls="--", lw=0.8, label=f"full data ({reference['films']} films)")
        ax.axhline(fraction * full, color="k", ls=":", lw=0.8, label=f"{fraction:.0%} of full data")
        ax.set_title("Mean of the five properties" if prop == MEAN else column_label(prop).rsplit(" (", 1)[0])
        ax.set_xlabel("films spun")
        ax.set_ylabel("R² (mean of L and T)" if metric == "r2" else metric)
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)
