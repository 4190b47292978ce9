"""Structural features of SEM images (orientation, fiber diameter, pore size, porosity), per patch and per film.

`StructureFeatureExtractor` works on any grayscale SEM image of known pixel size (grey levels on the 0–255 scale
of 8-bit images, raw or histogram-matched). `extract_patch_features` runs it over the patch manifest of the
processed folder on a process pool, `film_features` averages patches per film and `feature_errors` compares film
features with the virtual lab's per-frame ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm.auto import tqdm

from matmcl.features.diameter import JUNCTION_EXCLUSION, fiber_diameter_nm
from matmcl.features.orientation import GRADIENT_SIGMA_PX, orientation_order
from matmcl.features.pores import open_area_fraction, pore_size_um
from matmcl.features.segmentation import (
    INITIAL_MIN_SIZE_PX,
    INITIAL_SIGMA_PX,
    MIN_SIGMA_PX,
    MASK_EDGE_OFFSET_PX,
    MIN_SIZE_PER_DIAMETER2,
    SIGMA_PER_DIAMETER,
    fiber_mask,
)
from matmcl.schema import FEATURE_COLUMNS, FILM_ID

PATCH_KEYS: tuple[str, ...] = (FILM_ID, "frame", "patch")
CHUNKS_PER_WORKER = 8  # patches are handed to the pool in about this many chunks per worker
ALIGNED_ORDER = 0.3  # films whose true order is below this have no meaningful mean angle (left out of its error)


class StructureFeatureExtractor(BaseEstimator, TransformerMixin):
    """Orientation order, mean angle, fiber diameter, pore size and porosity of grayscale SEM images.

    Parameters
    ----------
    pixel_size_nm : float or None
        Pixel size used when `transform` gets no `pixel_sizes`.
    gradient_sigma_px : float, default 1.0
        Gaussian derivative scale of the structure tensor (orientation).
    initial_sigma_px : float, default 0.7
        Smoothing of the first segmentation pass, which finds the fiber scale.
    initial_min_size_px : int, default 4
        Specks and holes smaller than this (pixels) are removed in the first pass.
    min_sigma_px : float, default 0.5
        Floor of the final smoothing.
    sigma_per_diameter : float, default 0.1
        Final smoothing σ per pixel of first-pass fiber diameter.
    min_size_per_diameter2 : float, default 0.1
        Final minimum speck/hole area per squared pixel of first-pass fiber diameter.
    junction_exclusion : float, default 1.0
        Skeleton points within this many local radii (+1 px) of a junction or branch end are not measured.
    edge_offset_px : float, default 1.0
        Subtracted from 2 × EDT: how much wider the segmented mask is than the fibers (calibrated on rendered frames).

    `diameter_nm` is the median skeleton width (see matmcl.features.diameter); `porosity` is the open-area fraction
    of the segmented mask and `pore_size_um` its DiameterJ pore size (matmcl.features.pores, the ground truth's
    definition).
    """

    def __init__(
        self,
        pixel_size_nm: float | None = None,
        gradient_sigma_px: float = GRADIENT_SIGMA_PX,
        initial_sigma_px: float = INITIAL_SIGMA_PX,
        initial_min_size_px: int = INITIAL_MIN_SIZE_PX,
        min_sigma_px: float = MIN_SIGMA_PX,
        sigma_per_diameter: float = SIGMA_PER_DIAMETER,
        min_size_per_diameter2: float = MIN_SIZE_PER_DIAMETER2,
        junction_exclusion: float = JUNCTION_EXCLUSION,
        edge_offset_px: float = MASK_EDGE_OFFSET_PX,
    ) -> None:
        self.pixel_size_nm = pixel_size_nm
        self.gradient_sigma_px = gradient_sigma_px
        self.initial_sigma_px = initial_sigma_px
        self.initial_min_size_px = initial_min_size_px
        self.min_sigma_px = min_sigma_px
        self.sigma_per_diameter = sigma_per_diameter
        self.min_size_per_diameter2 = min_size_per_diameter2
        self.junction_exclusion = junction_exclusion
        self.edge_offset_px = edge_offset_px

    def fit(self, images: Iterable[np.ndarray] | None = None, y: None = None) -> StructureFeatureExtractor:
        """No-op (nothing is learned); returns self."""
        return self

    def mask(self, image: np.ndarray) -> np.ndarray:
        """Fiber mask (True = fiber) of one image."""
        return fiber_mask(image, self.initial_sigma_px, self.initial_min_size_px, self.min_sigma_px,
                          self.sigma_per_diameter, self.min_size_per_diameter2)

    def image_features(self, image: np.ndarray, pixel_size_nm: float) -> dict[str, float]:
        """The five features (FEATURE_COLUMNS) of one grayscale image."""
        image = np.asarray(image)
        if image.ndim != 2:
            raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
        order, angle = orientation_order(image, self.gradient_sigma_px)
        fibers = self.mask(image)
        return {
            "orientation_order": order,
            "mean_angle_deg": angle,
            "diameter_nm": fiber_diameter_nm(fibers, pixel_size_nm, self.junction_exclusion,
                                             self.edge_offset_px).median_nm,
            "pore_size_um": pore_size_um(~fibers, pixel_size_nm),
            "porosity": open_area_fraction(~fibers),
        }

    def transform(self, images: Iterable[np.ndarray], pixel_sizes: float | Sequence[float] | None = None
                  ) -> pd.DataFrame:
        """One row of FEATURE_COLUMNS per image; `pixel_sizes` (nm, one per image or one for all) overrides the
        extractor's `pixel_size_nm`."""
        images = list(images)
        sizes = self._pixel_sizes(pixel_sizes, len(images))
        rows = [self.image_features(image, size) for image, size in zip(images, sizes)]
        return pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))

    def _pixel_sizes(self, pixel_sizes: float | Sequence[float] | None, n: int) -> np.ndarray:
        given = self.pixel_size_nm if pixel_sizes is None else pixel_sizes
        if given is None:
            raise ValueError("pixel size unknown: pass pixel_sizes or set pixel_size_nm")
        sizes = np.asarray(given, dtype=float)
        sizes = np.full(n, float(sizes)) if sizes.ndim == 0 else sizes
        if sizes.shape != (n,) or not np.all(sizes > 0):
            raise ValueError(f"need {n} positive pixel sizes, got {given!r}")
        return sizes


def _patch_rows(tasks: list[tuple[str, float]], extractor: StructureFeatureExtractor) -> list[dict[str, float]]:
    """Features of a chunk of (PNG path, pixel size) patches (runs in a worker)."""
    return [extractor.image_features(np.asarray(Image.open(path).convert("L")), size) for path, size in tasks]


def extract_patch_features(manifest: pd.DataFrame, processed_dir: str | Path, workers: int = 2, progress: bool = True,
                           extractor: StructureFeatureExtractor | None = None) -> pd.DataFrame:
    """Features of every patch of `manifest` (film_id, frame, patch, path relative to processed_dir, pixel_size_nm).

    Returns film_id, frame, patch and FEATURE_COLUMNS in manifest order, whatever the number of workers.
    """
    missing = [c for c in (*PATCH_KEYS, "path", "pixel_size_nm") if c not in manifest.columns]
    if missing:
        raise ValueError(f"patch manifest lacks columns {missing}")
    extractor = extractor or StructureFeatureExtractor()
    root = Path(processed_dir)
    tasks = [(str(root / path), float(size)) for path, size in zip(manifest["path"], manifest["pixel_size_nm"])]
    size = max(1, math.ceil(len(tasks) / (max(1, workers) * CHUNKS_PER_WORKER)))
    batches = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    work = partial(_patch_rows, extractor=extractor)
    rows: list[dict[str, float]] = []
    with tqdm(total=len(tasks), desc="structure features", unit="patch", disable=not progress) as bar:
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for result in pool.map(work, batches):
                    rows.extend(result)
                    bar.update(len(result))
        else:
            for batch in batches:
                rows.extend(work(batch))
                bar.update(len(batch))
    features = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))
    return pd.concat([manifest[list(PATCH_KEYS)].reset_index(drop=True), features], axis=1)


def _frame_moments(patch_features: pd.DataFrame) -> pd.DataFrame:
    """Per frame: the mean over its patches of the complex orientation moment S·exp(2iθ0) (NaN patches skipped)."""
    angle = np.deg2rad(2.0 * patch_features["mean_angle_deg"].to_numpy(float))
    moment = patch_features["orientation_order"].to_numpy(float) * np.exp(1j * angle)
    frames = patch_features[[FILM_ID, "frame"]].assign(moment=moment)
    return frames.dropna().groupby([FILM_ID, "frame"], sort=False)["moment"].mean().reset_index()


def film_features(patch_features: pd.DataFrame) -> pd.DataFrame:
    """Per-film features from patch features (film_id, frame, patch + FEATURE_COLUMNS), with `n_patches`.

    Diameter, pore size and porosity are patch means (NaN patches skipped). Orientation is averaged as the complex
    moment S·exp(2iθ0): per frame the modulus of its patches' mean moment (the order of the frame's whole field of
    view, as in the ground truth), then the mean of these per film; `mean_angle_deg` is half the argument of the
    film's mean frame moment.
    """
    groups = patch_features.groupby(FILM_ID, sort=False)
    films = groups[["diameter_nm", "pore_size_um", "porosity"]].mean()
    frames = _frame_moments(patch_features)
    by_film = frames.groupby(FILM_ID, sort=False)["moment"]
    films["orientation_order"] = by_film.agg(lambda m: np.abs(m).mean())
    films["mean_angle_deg"] = by_film.agg(lambda m: np.rad2deg(0.5 * np.angle(m.mean())))
    films["n_patches"] = groups.size()
    return films.reset_index()[[FILM_ID, *FEATURE_COLUMNS, "n_patches"]]


def _angle_difference_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Difference of two axial angles (period 180°), in [−90°, 90°)."""
    return (np.asarray(a) - np.asarray(b) + 90.0) % 180.0 - 90.0


def feature_errors(film_features: pd.DataFrame, truth_images: pd.DataFrame) -> dict[str, float | int | pd.DataFrame]:
    """Film features vs. ground truth (film means of ground_truth/images.parquet rows).

    Returns `per_film` (a DataFrame with truth, estimate and error per film) and the summary: `diameter_mape`,
    `orientation_order_mae`, `pore_size_mape`, `porosity_mae` (vs. the true open-area fraction),
    `mean_angle_mae_deg` (films with true order ≥ 0.3) and `n_films`.
    """
    truth_columns = ["diameter_mean_nm", "orientation_order", "mean_angle_deg", "pore_size_um", "open_area_fraction"]
    truth = truth_images.groupby(FILM_ID, sort=False)[truth_columns].mean().add_prefix("true_").reset_index()
    table = film_features.merge(truth, on=FILM_ID, how="inner")
    if table.empty:
        raise ValueError("no film of the features has ground truth")
    table["diameter_rel_error"] = table["diameter_nm"] / table["true_diameter_mean_nm"] - 1
    table["orientation_order_error"] = table["orientation_order"] - table["true_orientation_order"]
    table["pore_size_rel_error"] = table["pore_size_um"] / table["true_pore_size_um"] - 1
    table["porosity_error"] = table["porosity"] - table["true_open_area_fraction"]
    table["mean_angle_error_deg"] = _angle_difference_deg(table["mean_angle_deg"], table["true_mean_angle_deg"])
    aligned = table["true_orientation_order"] >= ALIGNED_ORDER
    return {
        "per_film": table,
        "diameter_mape": float(table["diameter_rel_error"].abs().mean()),
        "orientation_order_mae": float(table["orientation_order_error"].abs().mean()),
        "pore_size_mape": float(table["pore_size_rel_error"].abs().mean()),
        "porosity_mae": float(table["porosity_error"].abs().mean()),
        "mean_angle_mae_deg": float(table.loc[aligned, "mean_angle_error_deg"].abs().mean()),
        "n_films": int(len(table)),
    }
