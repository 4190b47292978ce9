"""Figures of the generation stages: image strips beside their conditions and measured features (contact sheets,
`matmcl generate` grids) and material × material FID heatmaps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from matmcl.evaluation.plots import DPI, PANEL_INCHES, save_figure

GAP_PX = 2  # white gap between the crops of a strip
LABEL_INCHES = 3.4  # width of the text column beside each row
ROW_INCHES = 0.7  # crops at about 1.6x their 64 px (a contact sheet stays well under 2 MB)


def strip(images: np.ndarray, gap: int = GAP_PX) -> np.ndarray:
    """uint8 crops (n, S, S) side by side with white gaps → (S, n·S + (n−1)·gap)."""
    images = np.asarray(images)
    size = images.shape[1]
    out = np.full((size, len(images) * (images.shape[2] + gap) - gap), 255, dtype=np.uint8)
    for k, image in enumerate(images):
        out[:, k * (images.shape[2] + gap):k * (images.shape[2] + gap) + images.shape[2]] = image
    return out


def plot_strips(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str], column_titles: Sequence[str],
                path: str | Path) -> Path:
    """One row per material: its text label, then one strip of crops (n, S, S) per column (e.g. real | generated)."""
    if len(rows) != len(row_labels):
        raise ValueError(f"{len(rows)} rows but {len(row_labels)} labels")
    n_cols = len(column_titles)
    widths = [strip(images).shape[1] / strip(images).shape[0] for images in rows[0]]
    fig = Figure(figsize=(LABEL_INCHES + ROW_INCHES * sum(widths), ROW_INCHES * len(rows) + 0.4),
                 layout="constrained")
    axes = fig.subplots(len(rows), n_cols + 1, squeeze=False, width_ratios=[LABEL_INCHES / ROW_INCHES, *widths])
    for r, (images, label) in enumerate(zip(rows, row_labels, strict=True)):
        axes[r, 0].text(0.0, 0.5, label, fontsize=7, va="center", ha="left", family="monospace")
        axes[r, 0].set_axis_off()
        for c, crops in enumerate(images):
            axes[r, c + 1].imshow(strip(crops), cmap="gray", vmin=0, vmax=255)
            axes[r, c + 1].set_axis_off()
            if r == 0:
                axes[r, c + 1].set_title(column_titles[c], fontsize=9)
    return save_figure(fig, path)


def plot_fid_heatmap(fid: np.ndarray, films: Sequence[str], title: str, path: str | Path) -> Path:
    """Generated (rows) × real (columns) FID matrix of the evaluated films; the diagonal should be lowest."""
    fig = Figure(figsize=(PANEL_INCHES * 1.6, PANEL_INCHES * 1.4), layout="constrained", dpi=DPI)
    ax = fig.subplots()
    image = ax.imshow(fid, cmap="viridis_r")
    fig.colorbar(image, ax=ax, label="FID (SGPT vision features)")
    ax.set_xticks(range(len(films)), films, rotation=90, fontsize=6)
    ax.set_yticks(range(len(films)), films, fontsize=6)
    ax.set_xlabel("real patches of film")
    ax.set_ylabel("generated for film's conditions")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)
