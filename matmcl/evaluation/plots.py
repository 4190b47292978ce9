"""Evaluation plots as PNG files: parity plots, similarity heatmaps, t-SNE maps, image grids and metric bars.

Every function draws on its own `matplotlib.figure.Figure` (Agg rendering, no pyplot state), writes the PNG
atomically to `path` and returns `path`. Axis labels are derived from column names that carry their unit
(`fracture_strength_mpa` → "Fracture strength (MPa)").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from matmcl.atomic import atomic_path
from matmcl.evaluation.alignment import diagonal_gap, top1_accuracy
from matmcl.evaluation.regression import regression_metrics

DPI = 130
PANEL_INCHES = 3.2  # width and height of one panel
DEFAULT_COLUMNS = 3
IMAGE_GRID_COLUMNS = 4
BAR_GROUP_WIDTH = 0.8  # share of a property's slot taken by its bars
UINT8_MAX = 255
MARKER_SIZE = 14
HEATMAP_INCHES = (4.8, 4.2)
BAR_INCHES = 0.5  # figure width per bar of the metric chart
BAR_HEIGHT_INCHES = 3.8
# Column-name suffixes and the unit they denote; longer suffixes first so `_wt_pct` wins over `_pct`.
UNIT_SUFFIXES: dict[str, str] = {
    "wt_pct": "wt%",
    "ml_h": "mL/h",
    "mpa": "MPa",
    "gpa": "GPa",
    "pct": "%",
    "nm": "nm",
    "um": "µm",
    "deg": "°",
    "kv": "kV",
    "rpm": "rpm",
    "c": "°C",
}
METRIC_LABELS: dict[str, str] = {"r2": "R²", "rmse": "RMSE"}


def split_unit(name: str) -> tuple[str, str | None]:
    """Split a column name into a readable quantity and its unit: "pore_size_um" → ("Pore size", "µm")."""
    unit = None
    for suffix, symbol in UNIT_SUFFIXES.items():
        if name.endswith(f"_{suffix}"):
            name, unit = name[: -len(suffix) - 1], symbol
            break
    return name.replace("_", " ").capitalize(), unit


def column_label(name: str, prefix: str = "") -> str:
    """Axis label of a column, with its unit in parentheses: "Measured fracture strength (MPa)"."""
    quantity, unit = split_unit(name)
    text = f"{prefix} {quantity.lower()}" if prefix else quantity
    return f"{text} ({unit})" if unit else text


def panel_grid(n_panels: int, n_cols: int) -> tuple[Figure, list[Axes]]:
    """A figure with a grid of `n_panels` panels (unused grid cells hidden), `n_cols` per row at most."""
    n_cols = max(1, min(n_cols, n_panels))
    n_rows = math.ceil(n_panels / n_cols)
    fig = Figure(figsize=(PANEL_INCHES * n_cols, PANEL_INCHES * n_rows), layout="constrained")
    axes = list(fig.subplots(n_rows, n_cols, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as PNG to `path` atomically and return the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def plot_parity(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    property_names: Sequence[str],
    path: str | Path,
    n_cols: int = DEFAULT_COLUMNS,
) -> Path:
    """Measured vs predicted, one panel per property, with the y = x line and R² in each title."""
    y_true = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(len(y_pred), -1)
    metrics = regression_metrics(y_true, y_pred, property_names)
    fig, axes = panel_grid(len(property_names), n_cols)
    for j, (ax, name) in enumerate(zip(axes, property_names, strict=True)):
        measured = np.isfinite(y_true[:, j])
        if not measured.any():
            ax.set_title(f"{split_unit(name)[0]}: no measured values")
            continue
        t, p = y_true[measured, j], y_pred[measured, j]
        ax.scatter(t, p, s=MARKER_SIZE, alpha=0.7)
        low, high = np.min(np.r_[t, p]), np.max(np.r_[t, p])
        ax.plot([low, high], [low, high], "k--", linewidth=1, label="y = x")
        ax.set_xlabel(column_label(name, "Measured"))
        ax.set_ylabel(column_label(name, "Predicted"))
        ax.set_title(f"{split_unit(name)[0]}, R² = {metrics[name]['r2']:.3f}")
        ax.set_aspect("equal", adjustable="datalim")
    return save_figure(fig, path)


def plot_similarity_matrix(
    similarity: np.ndarray,
    path: str | Path,
    row_label: str = "Condition embedding",
    col_label: str = "Fused embedding",
    title: str = "Cosine similarity",
    limits: tuple[float, float] | None = None,
) -> Path:
    """Heatmap of a similarity matrix; for a square (paired) matrix the diagonal gap and top-1 accuracy are shown.

    The colour range is the data's own unless `limits` fixes it (e.g. (-1, 1) to compare models side by side).
    """
    similarity = np.asarray(similarity, dtype=float)
    fig = Figure(figsize=HEATMAP_INCHES, layout="constrained")
    ax = fig.subplots()
    low, high = limits if limits is not None else (None, None)
    image = ax.imshow(similarity, cmap="viridis", vmin=low, vmax=high)
    fig.colorbar(image, ax=ax, label="cosine similarity")
    ax.set_xlabel(f"{col_label} (sample)")
    ax.set_ylabel(f"{row_label} (sample)")
    if similarity.shape[0] == similarity.shape[1] and len(similarity) > 1:
        title = f"{title}\ndiagonal gap {diagonal_gap(similarity):.3f}, top-1 {top1_accuracy(similarity):.2f}"
    ax.set_title(title)
    return save_figure(fig, path)


def plot_tsne(
    coordinates: np.ndarray,
    features: np.ndarray,
    feature_names: Sequence[str],
    path: str | Path,
    correlations: Mapping[str, float] | None = None,
    n_cols: int = DEFAULT_COLUMNS,
) -> Path:
    """t-SNE scatter coloured by each structural feature, one panel per feature; `correlations` go in the titles."""
    coordinates = np.asarray(coordinates, dtype=float)
    features = np.asarray(features, dtype=float).reshape(len(features), -1)
    fig, axes = panel_grid(len(feature_names), n_cols)
    for j, (ax, name) in enumerate(zip(axes, feature_names, strict=True)):
        known = np.isfinite(features[:, j])
        points = ax.scatter(*coordinates[known].T, c=features[known, j], s=MARKER_SIZE, cmap="viridis")
        fig.colorbar(points, ax=ax, label=column_label(name))
        title = split_unit(name)[0]
        if correlations is not None:
            title = f"{title}, r = {correlations[name]:.2f}"
        ax.set_title(title)
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
    return save_figure(fig, path)


def plot_image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
    n_cols: int = IMAGE_GRID_COLUMNS,
    cmap: str = "gray",
) -> Path:
    """Grid of images (2-D grey or H×W×3); uint8 images show on 0–255, float images on their own range."""
    if len(images) != len(titles):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    fig, axes = panel_grid(len(images), n_cols)
    for ax, image, title in zip(axes, images, titles, strict=True):
        image = np.asarray(image)
        limits = (0, UINT8_MAX) if image.dtype == np.uint8 else (None, None)
        ax.imshow(image, cmap=cmap, vmin=limits[0], vmax=limits[1])
        ax.set_title(title)
        ax.set_axis_off()
    return save_figure(fig, path)


def plot_metric_bars(
    summaries: Mapping[str, Mapping[str, Mapping[str, float]]],
    path: str | Path,
    metric: str = "r2",
    title: str | None = None,
) -> Path:
    """Grouped bars of mean ± sd of `metric`: one group per property, one bar per variant.

    `summaries` maps a variant name to `{prop: {"<metric>_mean", "<metric>_sd", ...}}` (e.g. over folds).
    """
    variants = list(summaries)
    properties = list(next(iter(summaries.values())))
    width = BAR_GROUP_WIDTH / len(variants)
    slots = np.arange(len(properties))
    fig_width = max(2 * PANEL_INCHES, BAR_INCHES * len(properties) * len(variants))
    fig = Figure(figsize=(fig_width, BAR_HEIGHT_INCHES), layout="constrained")
    ax = fig.subplots()
    for i, variant in enumerate(variants):
        means = [summaries[variant][prop][f"{metric}_mean"] for prop in properties]
        sds = [summaries[variant][prop][f"{metric}_sd"] for prop in properties]
        offset = (i - (len(variants) - 1) / 2) * width
        ax.bar(slots + offset, means, width, yerr=sds, capsize=3, label=variant)
    ax.set_xticks(slots, [split_unit(prop)[0] for prop in properties], rotation=20, ha="right")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.axhline(0, color="k", linewidth=0.8)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_forest(paired: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | Path,
                key: str = "delta_r2", title: str | None = None) -> Path:
    """Forest plot of paired differences: one panel per property, one row per comparison "a__vs__b", the mean
    difference with its 95 % CI (`{key}_mean`, `{key}_ci95`) and a line at zero."""
    comparisons = list(paired)
    properties = list(next(iter(paired.values())))
    fig, axes = panel_grid(len(properties), len(properties))
    fig.set_size_inches(PANEL_INCHES * len(properties), 0.35 * len(comparisons) + 1.2)
    y = np.arange(len(comparisons))[::-1]
    for ax, prop in zip(axes, properties, strict=False):
        means = np.array([paired[c][prop][f"{key}_mean"] for c in comparisons], dtype=float)
        cis = np.array([[np.nan, np.nan] if paired[c][prop][f"{key}_ci95"] is None else paired[c][prop][f"{key}_ci95"]
                        for c in comparisons], dtype=float)
        err = np.abs(np.vstack([means - cis[:, 0], cis[:, 1] - means]))
        ax.errorbar(means, y, xerr=np.nan_to_num(err), fmt="o", capsize=3)
        ax.axvline(0, color="k", linewidth=0.8)
        ax.set_title(split_unit(prop)[0], fontsize="small")
        ax.set_xlabel("ΔR² (a − b)")
        ax.set_yticks(y, [c.replace("__vs__", " − ") for c in comparisons] if ax is axes[0] else [""] * len(y),
                      fontsize="x-small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
