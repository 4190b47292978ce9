"""The five tensile properties of one engineering stress-strain curve, curve-file reading, replicate averaging.

Definitions (the paper's, made exact; docs/tensile.md has the full text and the constants below):

- fracture strength: the maximum stress;
- elongation at break: the strain at that maximum;
- elastic modulus: slope of the initial linear part, i.e. of the least-squares window of the early curve with the
  highest lower confidence bound on its slope (the steepest straight stretch, robust to noise);
- yield strength: stress where the curve meets the elastic line shifted by 1 % strain (1 %-offset method);
- tangent modulus: least-squares slope of the post-yield region between 25 % and 90 % of the way from the yield
  strain to the elongation at break.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matmcl.schema import DIRECTION, PROPERTY_COLUMNS

ArrayLike = Sequence[float] | np.ndarray

__all__ = [
    "PROPERTY_COLUMNS",
    "STRAIN_COLUMN",
    "STRESS_COLUMN",
    "CurveError",
    "ElasticFit",
    "extract_properties",
    "fit_elastic_line",
    "read_curve",
    "summarize_replicates",
    "tangent_modulus",
    "tangent_window",
    "yield_point",
]

STRAIN_COLUMN = "strain_pct"
STRESS_COLUMN = "stress_mpa"
REPLICATE = "replicate"
N_REPLICATES = "n_replicates"
SD_SUFFIX = "_sd"

PCT_PER_UNIT = 100.0  # slopes are fitted in MPa per % strain; moduli are reported in MPa (per unit strain)

# Validation
MIN_POINTS = 20  # a curve needs at least this many logged points
FRACTURE_DROP_FRACTION = 0.10  # fractured: the last logged stress is below this fraction of the maximum
STRAIN_REVERSAL_TOLERANCE = 0.5  # a strain step may go backwards by at most this fraction of the median step

# Elastic modulus: candidate least-squares windows in the early curve
EARLY_STRESS_FRACTION = 0.8  # the early curve ends where stress first reaches this fraction of the maximum
MIN_WINDOW_POINTS = 5  # shortest window fitted
N_WINDOW_KNOTS = 96  # window ends lie on this many geometrically spaced indices (fine at the start of the curve)
SLOPE_CONFIDENCE_Z = 6.0  # windows are ranked by slope - z * SE(slope); large: thousands of windows compete
MAD_TO_SD = 1.4826  # median absolute deviation -> standard deviation for Gaussian noise
SECOND_DIFFERENCE_VARIANCE = 6.0  # var(y[i-1] - 2 y[i] + y[i+1]) = 6 var(y) for white noise

# Yield strength
OFFSET_STRAIN_PCT = 1.0

# Tangent modulus: fit window as fractions of the way from the yield strain to the elongation at break
TANGENT_WINDOW = (0.25, 0.90)
MIN_TANGENT_POINTS = 3


class CurveError(ValueError):
    """A stress-strain curve (or curve file) that cannot be analysed; the message names the problem."""


@dataclass(frozen=True)
class ElasticFit:
    """The fitted initial linear part: stress = intercept_mpa + slope_mpa_per_pct * strain_pct."""

    slope_mpa_per_pct: float
    intercept_mpa: float
    first_index: int
    last_index: int

    @property
    def modulus_mpa(self) -> float:
        """Elastic modulus in MPa (per unit strain)."""
        return self.slope_mpa_per_pct * PCT_PER_UNIT


def extract_properties(strain_pct: ArrayLike, stress_mpa: ArrayLike) -> dict[str, float]:
    """The five tensile properties (keys PROPERTY_COLUMNS) of one curve logged in test order.

    Raises CurveError for too few points, non-numeric or non-finite values, strain going backwards beyond noise,
    a curve that never fractures (last stress >= 10 % of the maximum), no 1 %-offset yield before the maximum, or
    a post-yield region too short for the tangent fit.
    """
    strain, stress = _validated_arrays(strain_pct, stress_mpa)
    peak = int(np.argmax(stress))
    elastic = fit_elastic_line(strain[: peak + 1], stress[: peak + 1])
    yield_strain, yield_stress = yield_point(strain[: peak + 1], stress[: peak + 1], elastic)
    tangent = tangent_modulus(strain[: peak + 1], stress[: peak + 1], yield_strain, float(strain[peak]))
    return {
        "fracture_strength_mpa": float(stress[peak]),
        "yield_strength_mpa": yield_stress,
        "elastic_modulus_mpa": elastic.modulus_mpa,
        "tangent_modulus_mpa": tangent,
        "elongation_at_break_pct": float(strain[peak]),
    }


def _validated_arrays(strain_pct: ArrayLike, stress_mpa: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        strain = np.asarray(strain_pct, dtype=float)
        stress = np.asarray(stress_mpa, dtype=float)
    except (TypeError, ValueError) as err:
        raise CurveError(f"non-numeric strain or stress values: {err}") from None
    if strain.ndim != 1 or strain.shape != stress.shape:
        raise CurveError(f"strain and stress must be 1-D of equal length, got shapes {strain.shape} and {stress.shape}")
    if len(strain) < MIN_POINTS:
        raise CurveError(f"too few points: {len(strain)} logged, at least {MIN_POINTS} needed")
    bad = np.flatnonzero(~(np.isfinite(strain) & np.isfinite(stress)))
    if len(bad):
        raise CurveError(f"NaN or infinite value at point {bad[0]} ({len(bad)} such points)")
    _check_strain_order(strain)
    peak_stress = stress.max()
    if peak_stress <= 0:
        raise CurveError(f"maximum stress {peak_stress:g} MPa is not positive")
    if stress[-1] >= FRACTURE_DROP_FRACTION * peak_stress:
        raise CurveError(
            f"curve never fractures: last stress {stress[-1]:.4g} MPa is not below "
            f"{FRACTURE_DROP_FRACTION:.0%} of the maximum {peak_stress:.4g} MPa"
        )
    return strain, stress


def _check_strain_order(strain: np.ndarray) -> None:
    steps = np.diff(strain)
    typical = float(np.median(np.abs(steps)))
    if typical <= 0:
        raise CurveError("strain does not advance: the median strain step is zero")
    backwards = np.flatnonzero(steps < -STRAIN_REVERSAL_TOLERANCE * typical)
    if len(backwards):
        i = int(backwards[0])
        raise CurveError(
            f"strain is not monotonic: it falls from {strain[i]:.4g} % to {strain[i + 1]:.4g} % at point {i + 1} "
            f"(more than {STRAIN_REVERSAL_TOLERANCE:g} x the median step {typical:.3g} %)"
        )


def fit_elastic_line(strain_pct: np.ndarray, stress_mpa: np.ndarray) -> ElasticFit:
    """Fit the initial linear part of a pre-peak curve.

    Candidate windows run between geometrically spaced indices of the early curve (up to where stress first
    reaches 80 % of its maximum) and hold at least 5 points. Each gets a least-squares line; the window with the
    highest `slope - 6 * SE(slope)` wins, where SE uses the larger of the window's residual variance and the curve's
    noise variance (from the MAD of second differences). Long straight windows therefore beat short lucky ones,
    and windows that reach into the yield knee lose both slope and confidence.
    """
    n_early = _early_length(stress_mpa)
    if n_early < MIN_WINDOW_POINTS:
        raise CurveError(f"too few points before the maximum stress: {n_early}, at least {MIN_WINDOW_POINTS} needed")
    x = strain_pct[:n_early] - strain_pct[:n_early].mean()
    y = stress_mpa[:n_early] - stress_mpa[:n_early].mean()
    starts, ends = _candidate_windows(n_early)
    n, sx, sy, sxx, sxy, syy = _window_sums(x, y, starts, ends)
    cxx = sxx - sx * sx / n
    cxy = sxy - sx * sy / n
    slope = cxy / cxx
    residual_var = np.maximum(syy - sy * sy / n - slope * cxy, 0.0) / (n - 2)
    noise_var = _noise_sd(y) ** 2
    standard_error = np.sqrt(np.maximum(residual_var, noise_var) / cxx)
    best = int(np.argmax(slope - SLOPE_CONFIDENCE_Z * standard_error))
    if slope[best] <= 0:
        raise CurveError("no rising initial linear part found")
    intercept = (sy[best] - slope[best] * sx[best]) / n[best]  # in centred coordinates
    intercept += stress_mpa[:n_early].mean() - slope[best] * strain_pct[:n_early].mean()
    return ElasticFit(float(slope[best]), float(intercept), int(starts[best]), int(ends[best]))


def _early_length(stress_mpa: np.ndarray) -> int:
    reached = np.flatnonzero(stress_mpa >= EARLY_STRESS_FRACTION * stress_mpa.max())
    return max(int(reached[0]) + 1, min(MIN_WINDOW_POINTS, len(stress_mpa)))


def _candidate_windows(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) index pairs, inclusive, with at least MIN_WINDOW_POINTS points."""
    knots = np.unique(np.concatenate([[0], np.round(np.geomspace(1, n_points, N_WINDOW_KNOTS)).astype(int) - 1]))
    starts, ends = np.meshgrid(knots, knots, indexing="ij")
    keep = ends - starts + 1 >= MIN_WINDOW_POINTS
    return starts[keep], ends[keep]


def _window_sums(x: np.ndarray, y: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, ...]:
    """Point count and sums of x, y, x², xy, y² over each inclusive window."""
    columns = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    cumulative = np.concatenate([np.zeros((6, 1)), np.cumsum(columns, axis=1)], axis=1)
    sums = cumulative[:, ends + 1] - cumulative[:, starts]
    return tuple(sums)


def _noise_sd(y: np.ndarray) -> float:
    """Stress noise estimated from the median absolute second difference (robust to the smooth curve)."""
    second = np.diff(y, n=2)
    return MAD_TO_SD * float(np.median(np.abs(second))) / np.sqrt(SECOND_DIFFERENCE_VARIANCE)


def yield_point(strain_pct: np.ndarray, stress_mpa: np.ndarray, elastic: ElasticFit) -> tuple[float, float]:
    """(strain %, stress MPa) where a pre-peak curve first meets the elastic line shifted by 1 % strain.

    The crossing is searched from the start of the elastic window on and located by linear interpolation between
    the two logged points that bracket it.
    """
    offset_line = elastic.intercept_mpa + elastic.slope_mpa_per_pct * (strain_pct - OFFSET_STRAIN_PCT)
    above = stress_mpa - offset_line
    k = np.arange(elastic.first_index, len(stress_mpa) - 1)
    crossing = k[(above[k] >= 0) & (above[k + 1] < 0)]
    if len(crossing) == 0:
        raise CurveError(
            f"no yield: the curve never meets the {OFFSET_STRAIN_PCT:g} %-offset elastic line before its maximum"
        )
    i = int(crossing[0])
    t = above[i] / (above[i] - above[i + 1])
    return (
        float(strain_pct[i] + t * (strain_pct[i + 1] - strain_pct[i])),
        float(stress_mpa[i] + t * (stress_mpa[i + 1] - stress_mpa[i])),
    )


def tangent_window(yield_strain_pct: float, elongation_at_break_pct: float) -> tuple[float, float]:
    """Strain interval (%) of the tangent-modulus fit: 25 %-90 % of the way from yield strain to break."""
    span = elongation_at_break_pct - yield_strain_pct
    return yield_strain_pct + TANGENT_WINDOW[0] * span, yield_strain_pct + TANGENT_WINDOW[1] * span


def tangent_modulus(
    strain_pct: np.ndarray, stress_mpa: np.ndarray, yield_strain_pct: float, elongation_at_break_pct: float
) -> float:
    """Least-squares slope (MPa per unit strain) of the pre-peak points inside tangent_window."""
    low, high = tangent_window(yield_strain_pct, elongation_at_break_pct)
    inside = (strain_pct >= low) & (strain_pct <= high)
    if inside.sum() < MIN_TANGENT_POINTS:
        raise CurveError(
            f"post-yield region too short for the tangent fit: {int(inside.sum())} points between "
            f"{low:.3g} % and {high:.3g} %, at least {MIN_TANGENT_POINTS} needed"
        )
    slope = np.polyfit(strain_pct[inside], stress_mpa[inside], 1)[0]
    return float(slope * PCT_PER_UNIT)


def read_curve(path: str | Path) -> pd.DataFrame:
    """Read one curve CSV (columns strain_pct, stress_mpa) as floats; CurveError names the file and bad row."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise CurveError(f"{path}: empty file") from None
    except pd.errors.ParserError as err:
        raise CurveError(f"{path}: not a valid CSV file: {err}") from None
    missing = [c for c in (STRAIN_COLUMN, STRESS_COLUMN) if c not in raw.columns]
    if missing:
        raise CurveError(f"{path}: missing column(s) {missing}; found {list(raw.columns)}")
    if raw.empty:
        raise CurveError(f"{path}: no data rows")
    curve = pd.DataFrame({c: pd.to_numeric(raw[c], errors="coerce") for c in (STRAIN_COLUMN, STRESS_COLUMN)})
    for column in (STRAIN_COLUMN, STRESS_COLUMN):
        bad = np.flatnonzero(curve[column].isna().to_numpy())
        if len(bad):
            row = int(bad[0])
            raise CurveError(
                f"{path}: row {row + 1} (line {row + 2}): non-numeric {column} value {raw[column].iloc[row]!r}"
            )
    return curve.astype(float)


def summarize_replicates(per_curve: pd.DataFrame, id_columns: str | Sequence[str]) -> pd.DataFrame:
    """One row per id x direction: replicate means (property names), sample SDs (`<prop>_sd`), n_replicates.

    `per_curve` holds one row per curve with the id column(s) (`film_id`; or `composite_id`, optionally with
    `film_id`), direction, replicate and the five properties. Groups keep their order of first appearance; the SD
    of a single replicate is NaN. Raises ValueError for missing columns or a repeated replicate.
    """
    keys = [id_columns] if isinstance(id_columns, str) else list(id_columns)
    keys.append(DIRECTION)
    required = [*keys, REPLICATE, *PROPERTY_COLUMNS]
    missing = [c for c in required if c not in per_curve.columns]
    if missing:
        raise ValueError(f"per-curve table lacks column(s) {missing}")
    duplicated = per_curve.duplicated([*keys, REPLICATE])
    if duplicated.any():
        first = per_curve.loc[duplicated, [*keys, REPLICATE]].iloc[0].to_dict()
        raise ValueError(f"replicate listed twice: {first}")
    grouped = per_curve.groupby(keys, sort=False)[list(PROPERTY_COLUMNS)]
    means = grouped.mean()
    sds = grouped.std(ddof=1).add_suffix(SD_SUFFIX)
    counts = grouped.size().rename(N_REPLICATES)
    return pd.concat([means, sds, counts], axis=1).reset_index()
