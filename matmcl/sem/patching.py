"""Cut an SEM frame into non-overlapping square patches on a grid anchored at the top-left corner.

Rule: the bottom `info_bar_px` rows (the SEM information bar) are dropped first; of the remaining usable area
(height H − info_bar_px, width W) the grid has `(H − info_bar_px) // tile_px` rows and `W // tile_px` columns.
Leftover rows at the bottom and columns at the right are dropped. A 2560 × 1920 frame with a 128-row info bar and
512-px tiles gives 3 rows × 5 columns = 15 patches covering rows 0–1535 (the bottom 384 rows are dropped, as in the
paper). Patches are numbered row-major: `patch = grid_row * n_cols + grid_col`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One patch of a frame: its grid position and its pixels (a view into the frame)."""

    grid_row: int
    grid_col: int
    array: np.ndarray


def usable_area(image: np.ndarray, info_bar_px: int) -> np.ndarray:
    """Return the frame without its bottom `info_bar_px` rows (a view)."""
    if not 0 <= info_bar_px < image.shape[0]:
        raise ValueError(f"info_bar_px={info_bar_px} must be in [0, {image.shape[0]}) (the frame height)")
    return image[: image.shape[0] - info_bar_px]


def grid_shape(height: int, width: int, info_bar_px: int, tile_px: int) -> tuple[int, int]:
    """Number of (rows, columns) of `tile_px` squares that fit above the info bar."""
    if tile_px <= 0:
        raise ValueError(f"tile_px must be positive, got {tile_px}")
    return (height - info_bar_px) // tile_px, width // tile_px


def patch_index(grid_row: int, grid_col: int, n_cols: int) -> int:
    """Row-major patch number within its frame."""
    return grid_row * n_cols + grid_col


def tile_frame(image: np.ndarray, info_bar_px: int, tile_px: int) -> list[Tile]:
    """Cut a 2-D frame into row-major `tile_px` squares above the info bar; raise if not even one fits."""
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale frame, got shape {image.shape}")
    area = usable_area(image, info_bar_px)
    n_rows, n_cols = grid_shape(*image.shape, info_bar_px, tile_px)
    if n_rows == 0 or n_cols == 0:
        raise ValueError(
            f"no {tile_px}px tile fits in a {image.shape[1]}x{image.shape[0]} frame with a {info_bar_px}-row info bar"
        )
    return [
        Tile(r, c, area[r * tile_px : (r + 1) * tile_px, c * tile_px : (c + 1) * tile_px])
        for r in range(n_rows)
        for c in range(n_cols)
    ]
