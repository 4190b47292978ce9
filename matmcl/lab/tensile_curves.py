"""Synthetic engineering stress-strain curves of electrospun mats and their composites (virtual tensile tester).

Curve model, written as strain of stress so that every piece inverts in closed form:

    strain(σ) = σ / E + g(σ),   g = plastic strain (unit strain, not %)
    g(σ) = 0                               σ <= σp          linear elastic part
    g(σ) = C (σ - σp)² / (2 δ)             σp < σ <= σk     yield knee, δ = σk - σp
    g(σ) = C (σ - σp - δ / 2)              σk < σ <= σf     linear hardening, tangent modulus 1 / (1/E + C)

The curve ends at (εb, σf) and the stress then falls to a few per cent of σf within a few logged points.
g is C¹ and convex, so stress rises monotonically to its maximum σf at εb, the slope is exactly E up to the
proportional limit σp, and the 1 %-offset line meets the curve where g = 1 %. The knee parameters (σp, σk, C) are
solved from g(σy) = 1 % and g(σf) = εb - σf/E, so matmcl.tensile's definitions return E, σy, σf and εb exactly;
the tangent modulus follows from the geometry. One shape parameter remains: `knee_sharpness` in [0, 1] places the
knee end σk between the sharp bilinear corner (1) and the roundest knee allowed (0): proportional limit at least
half the yield strength, knee ending within the first fifth of the post-yield stress rise (so before the
tangent-fit window).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matmcl.tensile import (
    OFFSET_STRAIN_PCT,
    PCT_PER_UNIT,
    PROPERTY_COLUMNS,
    STRAIN_COLUMN,
    STRESS_COLUMN,
    tangent_modulus,
    tangent_window,
)

__all__ = [
    "DEFAULT_KNEE_SHARPNESS",
    "IdealCurve",
    "LoggerConfig",
    "SpecimenScatter",
    "build_curve",
    "draw_specimen",
    "log_curve",
    "make_feasible",
]

OFFSET_STRAIN = OFFSET_STRAIN_PCT / PCT_PER_UNIT

DEFAULT_KNEE_SHARPNESS = 0.5
MIN_PROPORTIONAL_LIMIT_FRACTION = 0.5  # roundest knee: proportional limit >= this fraction of the yield strength
MAX_KNEE_END_FRACTION = 0.2  # roundest knee: ends within this fraction of the rise from yield to fracture strength
TANGENT_FIT_POINTS = 201  # dense noise-free points used to evaluate the true tangent modulus

# Feasibility (make_feasible): margins that keep a visible knee and a post-yield region
MAX_YIELD_RATIO = 0.95  # yield strength <= this fraction of the fracture strength
MIN_SECANT_RATIO = 1.25  # secant slope to the yield point >= this multiple of the secant slope to fracture
MIN_POST_YIELD_STRAIN_PCT = 2.0  # elongation at break >= yield-point strain + this


@dataclass(frozen=True)
class LoggerConfig:
    """How the virtual tensile tester logs a curve."""

    strain_step_pct: float = 0.1  # logger grid
    stress_noise_fraction: float = 0.002  # SD of stress noise as a fraction of the fracture strength
    strain_jitter_pct: float = 0.002  # SD of the strain reading noise
    fracture_tail: tuple[float, ...] = (0.45, 0.15, 0.04)  # stress / fracture strength at the steps after break
    min_break_gap: float = 0.25  # grid points closer than this many steps before the break point are skipped


@dataclass(frozen=True)
class SpecimenScatter:
    """Specimen-to-specimen scatter around a film's expected properties (lognormal, mean-preserving)."""

    modulus_cv: float = 0.04
    yield_cv: float = 0.05
    strength_cv: float = 0.05
    elongation_cv: float = 0.08
    stress_correlation: float = 0.5  # shared part (strip thickness / basis weight) of the modulus and strength scatter
    knee_sharpness_sd: float = 0.05


@dataclass(frozen=True)
class IdealCurve:
    """A noise-free specimen curve (see the module docstring for the model) and its true properties."""

    elastic_modulus_mpa: float
    yield_strength_mpa: float
    fracture_strength_mpa: float
    elongation_at_break_pct: float
    proportional_limit_mpa: float
    knee_end_mpa: float
    hardening_compliance_per_mpa: float  # C: plastic strain (unit strain) per MPa in the hardening branch
    tangent_modulus_mpa: float

    def stress(self, strain_pct: np.ndarray) -> np.ndarray:
        """Stress (MPa) at strains (%) between 0 and the elongation at break."""
        e = np.asarray(strain_pct, dtype=float) / PCT_PER_UNIT
        modulus, compliance = self.elastic_modulus_mpa, self.hardening_compliance_per_mpa
        sp, width = self.proportional_limit_mpa, self.knee_end_mpa - self.proportional_limit_mpa
        knee_start, knee_end = sp / modulus, _strain_on_curve(self.knee_end_mpa, modulus, sp, width, compliance)
        stress = modulus * e
        in_knee = (e > knee_start) & (e <= knee_end)
        r = e[in_knee] - knee_start
        stress[in_knee] = sp + 2 * r / (1 / modulus + np.sqrt(1 / modulus**2 + 2 * compliance * r / width))
        hardening = e > knee_end
        stress[hardening] = (e[hardening] + compliance * (sp + width / 2)) / (1 / modulus + compliance)
        return stress

    def properties(self) -> dict[str, float]:
        """The five true properties of this specimen (keys PROPERTY_COLUMNS)."""
        return {name: float(getattr(self, name)) for name in PROPERTY_COLUMNS}


def _strain_on_curve(stress: float, modulus: float, sp: float, width: float, compliance: float) -> float:
    """Unit strain of the model at a stress in the knee or hardening branch (inverse of IdealCurve.stress)."""
    y = stress - sp
    plastic = compliance * y * y / (2 * width) if y < width else compliance * (y - width / 2)
    return stress / modulus + plastic


def build_curve(
    elastic_modulus_mpa: float,
    yield_strength_mpa: float,
    fracture_strength_mpa: float,
    elongation_at_break_pct: float,
    knee_sharpness: float = DEFAULT_KNEE_SHARPNESS,
) -> IdealCurve:
    """The noise-free curve with exactly these E, σy (1 % offset), σf and εb, and its tangent modulus.

    Raises ValueError unless 0 < σy < σf, E > 0, 0 <= knee_sharpness <= 1 and the targets admit a concave curve:
    the secant to the fracture point must be flatter than the secant to the yield point (σf/εb < σy/εy with
    εy = σy/E + 1 %). make_feasible moves targets into that region.
    """
    modulus, sy, sf = elastic_modulus_mpa, yield_strength_mpa, fracture_strength_mpa
    _check_targets(modulus, sy, sf, elongation_at_break_pct, knee_sharpness)
    plastic_at_break = elongation_at_break_pct / PCT_PER_UNIT - sf / modulus
    sp, sk, compliance = _knee(sy, sf, plastic_at_break, knee_sharpness)
    shape = dict(proportional_limit_mpa=sp, knee_end_mpa=sk, hardening_compliance_per_mpa=compliance)
    targets = dict(
        elastic_modulus_mpa=float(modulus),
        yield_strength_mpa=float(sy),
        fracture_strength_mpa=float(sf),
        elongation_at_break_pct=float(elongation_at_break_pct),
    )
    provisional = IdealCurve(**targets, **shape, tangent_modulus_mpa=np.nan)
    yield_strain_pct = (sy / modulus + OFFSET_STRAIN) * PCT_PER_UNIT
    dense = np.linspace(*tangent_window(yield_strain_pct, elongation_at_break_pct), TANGENT_FIT_POINTS)
    tangent = tangent_modulus(dense, provisional.stress(dense), yield_strain_pct, elongation_at_break_pct)
    return IdealCurve(**targets, **shape, tangent_modulus_mpa=tangent)


def _check_targets(modulus: float, sy: float, sf: float, elongation_pct: float, sharpness: float) -> None:
    if not (modulus > 0 and 0 < sy < sf and elongation_pct > 0):
        raise ValueError(
            f"need E > 0, 0 < σy < σf and εb > 0; got E={modulus}, σy={sy}, σf={sf}, εb={elongation_pct}"
        )
    if not 0 <= sharpness <= 1:
        raise ValueError(f"knee_sharpness must lie in [0, 1], got {sharpness}")
    yield_strain_pct = (sy / modulus + OFFSET_STRAIN) * PCT_PER_UNIT
    if sf / elongation_pct >= sy / yield_strain_pct:
        raise ValueError(
            f"no concave curve: secant to fracture {sf / elongation_pct:.4g} MPa/% is not flatter than secant to "
            f"the yield point {sy / yield_strain_pct:.4g} MPa/% (E={modulus}, σy={sy}, σf={sf}, εb={elongation_pct})"
        )


def _knee(sy: float, sf: float, plastic_at_break: float, sharpness: float) -> tuple[float, float, float]:
    """(σp, σk, C) with g(σy) = OFFSET_STRAIN and g(σf) = plastic_at_break; σk set by the sharpness."""
    corner = _bilinear_corner(sy, sf, plastic_at_break)
    limit = min(sy + MAX_KNEE_END_FRACTION * (sf - sy), _knee_end_at_min_proportional(sy, sf, plastic_at_break))
    roundest = max(corner, limit)
    sk = roundest - sharpness * (roundest - corner)
    if sk <= sy:  # yield point on the straight hardening branch
        compliance = (plastic_at_break - OFFSET_STRAIN) / (sf - sy)
        return float(2 * corner - sk), float(sk), float(compliance)
    sp = _proportional_limit_yield_in_knee(sy, sf, plastic_at_break, sk)
    return float(sp), float(sk), float(plastic_at_break / (sf - (sp + sk) / 2))


def _bilinear_corner(sy: float, sf: float, plastic_at_break: float) -> float:
    """Stress where the hardening line through both targets meets the elastic line (the sharp-knee limit)."""
    compliance = (plastic_at_break - OFFSET_STRAIN) / (sf - sy)
    return sy - OFFSET_STRAIN / compliance


def _knee_end_at_min_proportional(sy: float, sf: float, plastic_at_break: float) -> float:
    """Knee end σk at which the proportional limit falls to MIN_PROPORTIONAL_LIMIT_FRACTION * σy (inf if never)."""
    corner = _bilinear_corner(sy, sf, plastic_at_break)
    sp = MIN_PROPORTIONAL_LIMIT_FRACTION * sy
    if sp >= corner:
        return corner
    if 2 * corner - sp <= sy:  # reached while the yield point is still on the hardening branch
        return 2 * corner - sp
    discriminant = (sf - sp) ** 2 - plastic_at_break * (sy - sp) ** 2 / OFFSET_STRAIN
    return sf - np.sqrt(discriminant) if discriminant >= 0 else np.inf


def _proportional_limit_yield_in_knee(sy: float, sf: float, plastic_at_break: float, sk: float) -> float:
    """σp solving g(σy) = OFFSET_STRAIN (σy in the knee) and g(σf) = plastic_at_break for a given knee end σk."""
    a, p = plastic_at_break, OFFSET_STRAIN
    quadratic = a - p
    half_linear = a * sy - p * sf
    constant = a * sy**2 - p * sk * (2 * sf - sk)
    return (half_linear - np.sqrt(half_linear**2 - quadratic * constant)) / quadratic


def make_feasible(expected: Mapping[str, float]) -> dict[str, float]:
    """Targets moved minimally into the valid region: σy <= 0.95 σf, then εb raised until the secant to the yield
    point is 1.25x steeper than the secant to fracture and the post-yield strain is at least 2 %."""
    modulus = expected["elastic_modulus_mpa"]
    sf = expected["fracture_strength_mpa"]
    sy = min(expected["yield_strength_mpa"], MAX_YIELD_RATIO * sf)
    yield_strain_pct = (sy / modulus + OFFSET_STRAIN) * PCT_PER_UNIT
    elongation = max(
        expected["elongation_at_break_pct"],
        MIN_SECANT_RATIO * yield_strain_pct * sf / sy,
        yield_strain_pct + MIN_POST_YIELD_STRAIN_PCT,
    )
    return {
        "elastic_modulus_mpa": modulus,
        "yield_strength_mpa": sy,
        "fracture_strength_mpa": sf,
        "elongation_at_break_pct": elongation,
    }


def draw_specimen(
    expected: Mapping[str, float],
    rng: np.random.Generator,
    knee_sharpness: float = DEFAULT_KNEE_SHARPNESS,
    scatter: SpecimenScatter = SpecimenScatter(),
) -> IdealCurve:
    """One specimen cut from a film with these expected properties (E, σy, σf, εb; other keys are ignored).

    Modulus, yield and fracture strength share a common lognormal factor (stress_correlation) plus their own;
    elongation and knee sharpness scatter independently. The draw is made feasible before the curve is built.
    """
    shared, own = rng.standard_normal(), rng.standard_normal(4)
    rho = scatter.stress_correlation
    stress_z = np.sqrt(rho) * shared + np.sqrt(1 - rho) * own[:3]
    factors = _lognormal_factor(
        np.array([scatter.modulus_cv, scatter.yield_cv, scatter.strength_cv, scatter.elongation_cv]),
        np.append(stress_z, own[3]),
    )
    names = ("elastic_modulus_mpa", "yield_strength_mpa", "fracture_strength_mpa", "elongation_at_break_pct")
    drawn = make_feasible({name: expected[name] * f for name, f in zip(names, factors, strict=True)})
    sharpness = float(np.clip(knee_sharpness + scatter.knee_sharpness_sd * rng.standard_normal(), 0.0, 1.0))
    return build_curve(**drawn, knee_sharpness=sharpness)


def _lognormal_factor(cv: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Mean-one lognormal factors with coefficients of variation cv from standard normal draws z."""
    sigma = np.sqrt(np.log1p(cv**2))
    return np.exp(sigma * z - sigma**2 / 2)


def log_curve(curve: IdealCurve, rng: np.random.Generator, logger: LoggerConfig = LoggerConfig()) -> pd.DataFrame:
    """The curve as the tester logs it: strain_pct on the logger grid up to the break point (εb itself is logged),
    then the fracture tail; Gaussian stress noise and strain jitter. Deterministic for a given generator state."""
    step, elongation = logger.strain_step_pct, curve.elongation_at_break_pct
    n_grid = int(np.floor(elongation / step - logger.min_break_gap)) + 1
    grid = np.append(np.arange(n_grid) * step, elongation)
    tail_strain = elongation + step * np.arange(1, len(logger.fracture_tail) + 1)
    tail_stress = curve.fracture_strength_mpa * np.asarray(logger.fracture_tail)
    strain = np.concatenate([grid, tail_strain])
    stress = np.concatenate([curve.stress(grid), tail_stress])
    stress = stress + logger.stress_noise_fraction * curve.fracture_strength_mpa * rng.standard_normal(len(stress))
    strain = strain + logger.strain_jitter_pct * rng.standard_normal(len(strain))
    return pd.DataFrame({STRAIN_COLUMN: strain, STRESS_COLUMN: stress})
