"""`measure_frame`: orientation, fiber diameter, pore size, porosity and beads of one SEM frame (docs/measurement.md).

Everything is measured on the usable area of the raw frame (info bar removed, no histogram matching) at scales set
by the frame's own fiber width: the model's patch size plays no part. Steps: info bar → fiber scale (wide fibers:
the frame is binned) → fiber mask → per-segment edge-to-edge widths from intensity profiles (half maximum, raised
for bright rims), whose directions give the orientation → the mask's edges moved to the edge level of the nearest
profile → pores, porosity and beads from that mask. `segment_fibers` (fiber scale, binning, mask, pruned skeleton)
is the shared first half: the pipeline's features stage also builds each frame's fiber network from it
(matmcl.multiscale.network), so a frame is segmented once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from matmcl.features.diameter import profile_widths, pruned_skeleton
from matmcl.features.orientation import edge_mean_angle, orientation_order
from matmcl.features.pores import open_area_fraction, pore_size_um
from matmcl.features.segmentation import bin_image, clean_mask, fiber_mask, fiber_scale_px, smoothing_sigma_px
from matmcl.sem.infobar import detect_info_bar

MEASURE_KEYS: tuple[str, ...] = (
    "orientation_order", "mean_angle_deg", "diameter_nm", "diameter_median_nm", "diameter_sd_nm", "pore_size_um",
    "porosity", "bead_density_per_um2", "info_bar_rows", "n_fibers_measured", "quality",
)
BEAD_WIDTH_RATIO = 2.2  # a bead is a blob wider than this many median fiber widths
MIN_FIBER_PX = 2.0  # narrower structures (noise grain) are not fibers: nothing is measured
MIN_WIDTH_PX = 3.0  # narrower fibers are not resolved: their widths are flagged
MAX_WIDTH_FRACTION = 1 / 8  # wider fibers (vs. the shorter image side) are too few per frame: flagged
BIN_ROUGH_PX = 8.0  # frames whose rough fiber width is ≥ k·this are binned k × k (fibers stay ≥ 4 px wide even
# where the rough width reads 2× high)
MIN_SEGMENTS = 10  # fewer measured segments are flagged
CONTRAST_PERCENTILES = (5.0, 95.0)
PERCENTILE_SUBSAMPLE = 2  # the contrast percentiles use every 2nd pixel in each direction
MIN_CONTRAST_LEVELS = 10.0  # grey levels of 255 between the two percentiles; less is flagged


def resolve_info_bar(image: np.ndarray, info_bar: str | int | None) -> int:
    """Rows to drop at the bottom: detected ("auto"), none ("none", None, 0) or a given count."""
    if info_bar in (None, "none"):
        return 0
    if info_bar == "auto":
        return detect_info_bar(image)
    rows = int(info_bar)
    if not 0 <= rows < image.shape[0]:
        raise ValueError(f"info bar of {rows} rows does not fit a frame of {image.shape[0]} rows")
    return rows


def usable_area(image: np.ndarray, pixel_size_nm: float, info_bar: str | int | None) -> tuple[np.ndarray, int]:
    """The frame above its info bar as float, and the bar's row count; ValueError on a non-2-D or empty image or a
    pixel size that is not a positive number."""
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale image, got shape {image.shape}")
    if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise ValueError(f"pixel size must be a positive number of nm, got {pixel_size_nm!r}")
    bar = resolve_info_bar(image, info_bar)
    return image[: image.shape[0] - bar].astype(float), bar


class FiberSegmentation(NamedTuple):
    """The fibers of a frame's usable area: `image` (binned k × k where fibers are wide) with its `pixel_size_nm`,
    the rough fiber width `width_px`, the distance transform `radius` of the fiber mask and the mask's `skeleton`
    without spurs and fragments (all in the pixels of `image`)."""

    image: np.ndarray
    pixel_size_nm: float
    width_px: float
    radius: np.ndarray
    skeleton: np.ndarray


def segment_fibers(area: np.ndarray, pixel_size_nm: float) -> FiberSegmentation:
    """Fiber scale → binning of wide fibers → fiber mask → distance transform → pruned skeleton of a usable area;
    ValueError when the area is flat (no fiber scale)."""
    rough = fiber_scale_px(area)
    if not np.isfinite(rough) or np.ptp(area) == 0:
        raise ValueError("the image is flat: no fibers to measure")
    factor = int(rough // BIN_ROUGH_PX)
    if factor > 1:  # wide fibers: measure on a binned image (the measurement is scale-free, the cost ∝ pixels)
        area, pixel_size_nm, rough = bin_image(area, factor), pixel_size_nm * factor, rough / factor
    mask = fiber_mask(area, rough)
    radius = ndimage.distance_transform_edt(mask)
    return FiberSegmentation(area, pixel_size_nm, rough, radius, pruned_skeleton(mask, radius))


def _weighted_stats(values: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Weighted mean, median and standard deviation."""
    mean = float(np.sum(values * weights) / weights.sum())
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    median = float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
    sd = float(np.sqrt(np.sum(weights * (values - mean) ** 2) / weights.sum()))
    return mean, median, sd


def _edge_level_mask(image: np.ndarray, points: np.ndarray, levels: np.ndarray, width_px: float) -> np.ndarray:
    """Fiber where the image, smoothed as for the fiber mask, exceeds the edge level of the nearest measured profile
    (nearest on a grid coarsened to about half a fiber width)."""
    step = max(1, int(width_px / 2))
    shape = (-(-image.shape[0] // step), -(-image.shape[1] // step))
    rows, cols = (np.asarray(points) // step).astype(int).T
    grid = np.full(shape, np.nan)
    grid[rows, cols] = levels
    nearest = ndimage.distance_transform_edt(np.isnan(grid), return_distances=False, return_indices=True)
    coarse = grid[tuple(nearest)]
    level = np.repeat(np.repeat(coarse, step, axis=0), step, axis=1)[: image.shape[0], : image.shape[1]]
    return clean_mask(ndimage.gaussian_filter(image, smoothing_sigma_px(width_px)) > level, width_px)


def _bead_count(radius: np.ndarray, width_px: float) -> int:
    """Blobs of the fiber mask (`radius`: its distance transform) more than BEAD_WIDTH_RATIO fiber widths across."""
    return int(ndimage.label(radius > 0.5 * BEAD_WIDTH_RATIO * width_px)[1])


def measure_frame(image: np.ndarray, pixel_size_nm: float, info_bar: str | int | None = "auto") -> dict[str, Any]:
    """Structural features of one grayscale SEM frame (keys MEASURE_KEYS; None where undefined)."""
    return measure_and_segment(image, pixel_size_nm, info_bar)[0]


def measure_and_segment(image: np.ndarray, pixel_size_nm: float, info_bar: str | int | None = "auto"
                        ) -> tuple[dict[str, Any], FiberSegmentation | None]:
    """`measure_frame`'s result and the segmentation it measured on (None when the frame is flat). A frame of too
    little contrast is segmented but not measured."""
    area, bar = usable_area(image, pixel_size_nm, info_bar)
    result: dict[str, Any] = dict.fromkeys(MEASURE_KEYS)
    result.update(info_bar_rows=bar, n_fibers_measured=0, quality=[], orientation_order=0.0)
    quality: list[str] = result["quality"]
    try:
        segmentation = segment_fibers(area, pixel_size_nm)
    except ValueError:
        segmentation = None
    low, high = np.percentile(area[::PERCENTILE_SUBSAMPLE, ::PERCENTILE_SUBSAMPLE], CONTRAST_PERCENTILES)
    scale = 255.0 / np.abs(area).max() if area.max() > 0 else 1.0
    if (high - low) * scale < MIN_CONTRAST_LEVELS:
        quality.append("low contrast: no fibers measured")
    elif segmentation is None:
        quality.append("flat image: no fiber scale, nothing measured")
    else:
        _measure_segmented(segmentation, high - low, result)
    return result, segmentation


def _measure_segmented(segmentation: FiberSegmentation, contrast: float, result: dict[str, Any]) -> None:
    """Fill `result` (measure_frame's keys) from a segmented frame of the given grey-level contrast."""
    area, pixel_size_nm, rough, radius, skeleton = segmentation
    quality: list[str] = result["quality"]
    widths = profile_widths(area, skeleton, radius, rough, contrast)
    n_segments = int(widths.segment_width_px.size)
    if n_segments == 0:
        quality.append("no fiber segment measured")
        return
    mean, median, sd = _weighted_stats(widths.segment_width_px, widths.segment_weight)
    if median < MIN_FIBER_PX:
        quality.append(f"no resolvable fibers (structures about {median:.1f} px wide): nothing measured")
        return
    order, angle = orientation_order(widths.angles_rad, widths.arc_px)
    fibers = _edge_level_mask(area, widths.points, widths.levels, median)
    if angle is not None:
        angle = edge_mean_angle(fibers)
    result.update(orientation_order=order, mean_angle_deg=angle, n_fibers_measured=n_segments)
    if angle is None:
        quality.append(f"orientation order {order:.3f} too weak to define a mean angle")
    pores = ~fibers
    area_um2 = area.size * (pixel_size_nm / 1000) ** 2
    result.update(
        diameter_nm=mean * pixel_size_nm, diameter_median_nm=median * pixel_size_nm, diameter_sd_nm=sd * pixel_size_nm,
        pore_size_um=pore_size_um(pores, pixel_size_nm) if pores.any() else None, porosity=open_area_fraction(pores),
        bead_density_per_um2=_bead_count(radius, median) / area_um2,
    )
    if median < MIN_WIDTH_PX:
        quality.append(f"fibers about {median:.1f} px wide: below {MIN_WIDTH_PX:g} px widths are not resolved")
    if median > MAX_WIDTH_FRACTION * min(area.shape):
        quality.append(f"fibers about {median:.0f} px wide: too few per frame, image a larger field")
    if n_segments < MIN_SEGMENTS:
        quality.append(f"only {n_segments} fiber segments measured")


# ---------------------------------------------------------------------------------------------------------------
# Pixel size from TIFF metadata

_UNITS_NM = {"m": 1e9, "mm": 1e6, "um": 1e3, "µm": 1e3, "micron": 1e3, "microns": 1e3, "nm": 1.0, "pm": 1e-3}
_TEXT_PIXEL_SIZE = re.compile(r"(?:PixelWidth|PixelSizeX|Pixel Size|PixelSize)\s*[=:]\s*([0-9.eE+-]+)\s*([a-zµ]*)")


def tiff_pixel_size_nm(path: str | Path) -> float | None:
    """Pixel size (nm) recorded by the microscope in a TIFF: FEI/Thermo (`[Scan] PixelWidth`, m), Zeiss SmartSEM
    (`AP_PIXEL_SIZE`), ImageJ (unit + resolution), or a `PixelWidth=`/`PixelSizeX=` entry in any text tag (Tescan
    and others; metres unless a unit follows). None when the file is not a TIFF or records none."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            fei = tif.fei_metadata or {}
            for section in ("Scan", "EScan"):
                value = fei.get(section, {}).get("PixelWidth")
                if isinstance(value, (int, float)) and value > 0:
                    return float(value) * 1e9
            zeiss = tif.sem_metadata or {}
            for key in ("ap_pixel_size", "ap_image_pixel_size"):
                entry = zeiss.get(key)
                if entry and len(entry) >= 3 and entry[2] in _UNITS_NM and entry[1] > 0:
                    return float(entry[1]) * _UNITS_NM[entry[2]]
            page = tif.pages.first
            imagej = tif.imagej_metadata or {}
            unit = str(imagej.get("unit", "")).replace("\\u00B5", "µ").lower()
            resolution = page.tags.get("XResolution")
            if unit in _UNITS_NM and resolution is not None:
                numerator, denominator = resolution.value
                if numerator > 0:
                    return denominator / numerator * _UNITS_NM[unit]
            for tag in page.tags.values():
                if isinstance(tag.value, str) and (match := _TEXT_PIXEL_SIZE.search(tag.value)):
                    value, unit = float(match.group(1)), match.group(2) or "m"
                    if value > 0 and unit in _UNITS_NM:
                        return value * _UNITS_NM[unit]
    except (tifffile.TiffFileError, OSError, ValueError):
        return None
    return None
