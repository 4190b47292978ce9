"""Find the SEM information bar at the bottom of a frame.

Vendor bars (FEI/Thermo, Zeiss, Hitachi, JEOL, Tescan; dark or light) are a band of uniform background carrying
text, boxes and a scale bar. In such a band most pixels of every row sit at one grey level (the bar's background;
ink covers well under half a row), while rows of a specimen image spread over many levels. So a row is *flat*
when at least `FLAT_ROW` of its pixels lie within ±`LEVEL_TOLERANCE` grey levels of its most common level. The bar
is the run of flat rows at the bottom (gaps of up to `MAX_GAP_ROWS` text-heavy rows allowed), accepted when

- it holds at least one nearly blank row (margins between text lines, separator lines: `BLANK_ROW` flat),
- it is at least `MIN_ROWS` rows and at most `MAX_FRACTION` of the frame high, and
- the image rows just above it are clearly not flat (median flatness below `IMAGE_ROW`): a specimen with large
  saturated areas is not mistaken for a bar.

Otherwise the frame is taken to have no bar (0 rows). A bar overlaid on the image or at the top is not detected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

LEVEL_TOLERANCE = 3  # grey levels (of 255) around a row's mode that count as its background
FLAT_ROW = 0.5  # share of a row at its modal level that makes it a bar row
BLANK_ROW = 0.9  # a bar has at least one row this flat
IMAGE_ROW = 0.45  # median flatness of the image rows above the bar must stay below this
MAX_GAP_ROWS = 3  # text rows inside the bar that may fall below FLAT_ROW
MIN_ROWS = 4
MAX_FRACTION = 0.4  # of the frame height
CONTEXT_ROWS = 16  # image rows above the bar that must look like an image


def _to_levels(image: np.ndarray) -> np.ndarray:
    """Grey levels 0..255 as integers (other ranges are stretched linearly)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.intp)
    values = image.astype(float)
    low, high = float(values.min()), float(values.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.rint((values - low) * scale).astype(np.intp)


def row_flatness(image: np.ndarray) -> np.ndarray:
    """Per row: the largest share of its pixels within ±LEVEL_TOLERANCE of one grey level."""
    levels = _to_levels(image)
    height, width = levels.shape
    counts = np.bincount((levels + 256 * np.arange(height)[:, None]).ravel(), minlength=256 * height)
    window = ndimage.uniform_filter1d(counts.reshape(height, 256).astype(float), 2 * LEVEL_TOLERANCE + 1, axis=1,
                                      mode="constant") * (2 * LEVEL_TOLERANCE + 1)
    return window.max(axis=1) / width


def detect_info_bar(image: np.ndarray) -> int:
    """Number of rows of the info bar at the bottom of a 2-D frame (0 when it has none)."""
    if np.asarray(image).ndim != 2:
        raise ValueError(f"expected a 2-D grayscale frame, got shape {np.shape(image)}")
    height = image.shape[0]
    search = int(height * MAX_FRACTION) + CONTEXT_ROWS
    flat = row_flatness(image[height - min(search, height):])
    bar_like = flat >= FLAT_ROW
    bar_like = ndimage.binary_closing(np.pad(bar_like, MAX_GAP_ROWS + 1, constant_values=True),
                                      np.ones(MAX_GAP_ROWS + 1, bool))[MAX_GAP_ROWS + 1 : -MAX_GAP_ROWS - 1]
    if not bar_like[-1]:
        return 0
    not_bar = np.flatnonzero(~bar_like)
    top = not_bar[-1] + 1 if not_bar.size else 0
    rows = len(flat) - top
    above = flat[max(0, top - CONTEXT_ROWS) : top]
    if (rows < MIN_ROWS or rows > height * MAX_FRACTION or flat[top:].max() < BLANK_ROW
            or above.size == 0 or np.median(above) >= IMAGE_ROW):
        return 0
    return int(rows)


def info_bar_rows(image: np.ndarray, given: object) -> int:
    """The info-bar rows of a frame: the frames table's count where it gives one, else detected."""
    return detect_info_bar(image) if given is None or pd.isna(given) else int(given)
