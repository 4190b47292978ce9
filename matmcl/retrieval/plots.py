"""Retrieval plots: image grids of queries and their top-k results, and top-k accuracy curves (PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from matmcl.atomic import atomic_path
from matmcl.evaluation.plots import DPI, PANEL_INCHES

CELL_INCHES = 1.6
TRUTH_COLOR = "tab:green"
TRUTH_LINE = 5
STYLES = {"matmcl": "-o", "similarity": "-s", "random": "--"}
TITLES = {"cond_to_struct": "conditions → structure", "struct_to_cond": "structure → conditions"}


@dataclass(frozen=True)
class QueryRow:
    """One grid row: the query (a patch, or None for a condition query) with its caption, then the results."""

    caption: str
    patch: np.ndarray | None
    results: Sequence[np.ndarray]
    captions: Sequence[str]
    correct: Sequence[bool]


def plot_query_grid(rows: Sequence[QueryRow], title: str, path: str | Path) -> Path:
    """Query in the first column, ranked results to its right; the true film (when known) framed in green."""
    n_cols = 1 + max(len(r.results) for r in rows)
    fig = Figure(figsize=(CELL_INCHES * n_cols, (CELL_INCHES + 0.3) * len(rows)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), n_cols, squeeze=False))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    for i, row in enumerate(rows):
        query = axes[i, 0]
        if row.patch is not None:
            query.imshow(row.patch, cmap="gray", vmin=0, vmax=255)
        query.text(0.5, 0.5 if row.patch is None else -0.08, row.caption, transform=query.transAxes, ha="center",
                   va="center" if row.patch is None else "top", fontsize=6.5)
        query.set_title(f"query {i + 1}", fontsize=8, fontweight="bold")
        for j, (patch, caption, correct) in enumerate(zip(row.results, row.captions, row.correct, strict=True)):
            ax = axes[i, j + 1]
            ax.imshow(patch, cmap="gray", vmin=0, vmax=255)
            ax.set_title(caption, fontsize=6.5, color=TRUTH_COLOR if correct else "black")
            if correct:
                h, w = patch.shape
                ax.add_patch(Rectangle((0, 0), w - 1, h - 1, fill=False, edgecolor=TRUTH_COLOR, lw=TRUTH_LINE))
    fig.suptitle(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def plot_topk_curves(curves: Mapping[str, Mapping[str, Sequence[float]]], ks: Sequence[int], path: str | Path
                     ) -> Path:
    """Top-k accuracy against k for each method, one panel per direction."""
    fig = Figure(figsize=(2 * PANEL_INCHES, PANEL_INCHES), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (direction, by_method) in zip(axes, curves.items(), strict=True):
        for method, values in by_method.items():
            ax.plot(ks, values, STYLES.get(method, "-"), label=method, markersize=4)
        ax.set_title(TITLES.get(direction, direction), fontsize=9)
        ax.set_xlabel("k")
        ax.set_ylabel("top-k accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)
