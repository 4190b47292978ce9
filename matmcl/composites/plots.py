"""Plots of the composite stage: parity of fracture strength per variant (paper Fig. 5d, ±band) and the screening
candidates' predicted vs simulated fracture strengths (Fig. 5h)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from matmcl.atomic import atomic_path
from matmcl.evaluation.plots import DPI, PANEL_INCHES

COLUMNS = 4


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def plot_parity(measured: np.ndarray, predicted: dict[str, np.ndarray], band: float, path: str | Path) -> Path:
    """Measured vs out-of-fold predicted fracture strength, one panel per variant; grey: |error| <= band."""
    n = len(predicted)
    rows = math.ceil(n / COLUMNS)
    fig = Figure(figsize=(PANEL_INCHES * min(n, COLUMNS), PANEL_INCHES * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, min(n, COLUMNS))).ravel()
    finite = np.concatenate([measured, *predicted.values()])
    finite = finite[np.isfinite(finite)]
    low, high = float(finite.min()) * 0.9, float(finite.max()) * 1.1
    line = np.array([low, high])
    for ax, (variant, pred) in zip(axes, predicted.items()):
        ax.fill_between(line, line - band, line + band, color="0.85", label=f"±{band:g} MPa")
        ax.plot(line, line, "k--", lw=0.8)
        ax.scatter(measured, pred, s=12)
        ok = np.isfinite(pred)
        rmse = float(np.sqrt(np.mean((pred[ok] - measured[ok]) ** 2)))
        ax.set_title(f"{variant} (RMSE {rmse:.1f})", fontsize=9)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_xlabel("Measured fracture strength (MPa)")
        ax.set_ylabel("Predicted (MPa)")
    for ax in axes[n:]:
        ax.set_visible(False)
    return _save(fig, Path(path))


def plot_screening(candidates: list[dict], path: str | Path) -> Path:
    """Predicted vs simulated fracture strength of each screening candidate (nanofiber and composite, L and T)."""
    fig = Figure(figsize=(2 * PANEL_INCHES, PANEL_INCHES), layout="constrained")
    ax = fig.subplots()
    keys = [k for k in candidates[0]["predicted"] if k.endswith(("longitudinal", "transverse"))]
    width = 0.8 / (2 * len(keys))
    x = np.arange(len(candidates))
    for i, key in enumerate(keys):
        label = key.replace("_fracture_strength_mpa_", " ")
        ax.bar(x + (2 * i) * width, [c["predicted"][key] for c in candidates], width, label=f"{label} predicted")
        ax.bar(x + (2 * i + 1) * width, [c["simulated"][key] for c in candidates], width, label=f"{label} simulated",
               alpha=0.6)
    ax.set_xticks(x + 0.4 - width / 2, [c["pick"] for c in candidates])
    ax.set_ylabel("Fracture strength (MPa)")
    ax.legend(fontsize=6, ncols=2)
    return _save(fig, Path(path))
