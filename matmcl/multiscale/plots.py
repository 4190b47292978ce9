"""Plots of reports/multiscale.json: R² per variant with CI bars, ablation deltas, the GFM gates heatmap."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from matmcl.atomic import atomic_path
from matmcl.evaluation.plots import BAR_GROUP_WIDTH, DPI, PANEL_INCHES
from matmcl.schema import PROPERTY_COLUMNS

SHORT = {p: p.split("_")[0] for p in PROPERTY_COLUMNS}  # fracture, yield, elastic, tangent, elongation


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def _bars(entries: Mapping[str, Mapping[str, Mapping]], value: str, ci: str, ylabel: str, path: Path) -> Path:
    """Grouped bars: one group per property, one bar per entry, t-interval error bars."""
    fig = Figure(figsize=(3 * PANEL_INCHES, PANEL_INCHES), layout="constrained")
    ax = fig.subplots()
    names = list(entries)
    width = BAR_GROUP_WIDTH / len(names)
    x = np.arange(len(PROPERTY_COLUMNS))
    for i, name in enumerate(names):
        means = np.array([entries[name][p][value] for p in PROPERTY_COLUMNS])
        low = np.array([entries[name][p][ci][0] for p in PROPERTY_COLUMNS])
        high = np.array([entries[name][p][ci][1] for p in PROPERTY_COLUMNS])
        errors = np.nan_to_num(np.vstack([means - low, high - means]))
        ax.bar(x + (i - (len(names) - 1) / 2) * width, means, width, yerr=errors, capsize=2, label=name)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, [SHORT[p] for p in PROPERTY_COLUMNS])
    ax.set_ylabel(ylabel)
    fig.legend(loc="outside right upper", fontsize="small")
    return _save(fig, path)


def plot_variants(variants: Mapping[str, Mapping[str, Mapping]], path: str | Path) -> Path:
    """Per-direction R² (mean over folds, 95 % t-interval) of every variant and property."""
    return _bars(variants, "r2_mean", "r2_ci95", "per-direction R² (test folds)", Path(path))


def plot_ablation(ablation: Mapping[str, Mapping[str, Mapping]], path: str | Path) -> Path:
    """Paired R² change of each one-scale-out ablation against the full chosen model (mean, 95 % CI over folds)."""
    return _bars(ablation, "delta_r2_vs_full_mean", "delta_r2_vs_full_ci95", "ΔR² without the scale vs full",
                 Path(path))


def plot_gates(gates: Mapping[str, Mapping[str, float]], path: str | Path) -> Path:
    """Heatmap of the mean GFM gate share of every scale (columns) per property (rows)."""
    scales = list(next(iter(gates.values())))
    values = np.array([[gates[p][s] for s in scales] for p in PROPERTY_COLUMNS])
    fig = Figure(figsize=(1.6 * PANEL_INCHES, PANEL_INCHES), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=max(0.5, float(values.max())), aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.35 else "black", fontsize=8)
    ax.set_xticks(range(len(scales)), scales, rotation=30)
    ax.set_yticks(range(len(PROPERTY_COLUMNS)), [SHORT[p] for p in PROPERTY_COLUMNS])
    fig.colorbar(image, ax=ax, label="gate share")
    return _save(fig, path)
