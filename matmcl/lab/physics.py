"""Process–structure–property relations of the virtual lab (docs/virtual-lab.md explains each one).

Conditions → expected structure (diameter, beads, alignment, waviness, bonding, porosity) → a film's actual
structure (film-level random effects that show in both its SEM frames and its mechanics) → expected tensile
properties per direction from an orientation-averaged fiber-network model. All functions are vectorized over films.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, i0e, i1e, ive, logit

from matmcl.lab.polymers import POLYMER_COLUMN, POLYMERS, REFERENCE_POLYMER, resolve_polymers
from matmcl.schema import CONDITION_COLUMNS

# Reference condition around which the scaling laws are written.
REF_FLOW, REF_CONC, REF_VOLT, REF_TEMP, REF_HUM = 0.4, 20.0, 18.0, 25.0, 45.0


@dataclass(frozen=True)
class LabPhysics:
    """Constants of the process–structure–property model (priors from electrospinning-physics.md)."""

    # Fiber diameter: d = d_ref (c/c_ref)^a_c (Q/Q_ref)^(1/3) (V/V_ref)^(-2/3) exp(temperature, humidity) x drum
    diameter_ref_nm: float = 200.0
    conc_exponent: float = 1.8
    flow_exponent: float = 1.0 / 3.0
    voltage_exponent: float = -2.0 / 3.0
    temperature_coeff: float = -0.008  # per °C: hotter solution, thinner fibers
    humidity_coeff: float = 0.004  # per %RH: weak, system specific
    drum_thinning: float = 0.28  # max. relative thinning by take-up (Le et al. 2021: -27 % at 2500 rpm)
    drum_thinning_rpm: float = 1000.0
    diameter_floor_nm: float = 60.0
    diameter_cv_base: float = 0.18  # within-mat coefficient of variation
    diameter_cv_beads: float = 0.10
    bead_thinning: float = 0.5  # beaded jets leave thinner fibers between the beads
    # Beads: smooth switch below the entanglement concentration; humidity shifts it up a little.
    bead_conc_wt_pct: float = 17.0
    bead_conc_width: float = 1.0
    bead_humidity_shift: float = 0.05  # wt % per %RH
    bead_density_max_per_um2: float = 0.25
    # Alignment: S(r) = S0 + (S_max - S0)(1 - exp(-r / r0)), r0 grows with jet speed (voltage).
    order_random: float = 0.05
    order_max: float = 0.85
    drum_rpm_scale: float = 1200.0
    # Waviness above the critical take-up speed.
    critical_rpm: float = 2200.0
    waviness_rpm_scale: float = 800.0
    waviness_max: float = 0.5  # max. slope amplitude of the fiber undulation
    # Inter-fiber bonding: wetter fibers (humid, cool, high flow) fuse at junctions.
    bonding_offset: float = -0.2
    bonding_humidity: float = 0.05
    bonding_temperature: float = -0.06
    bonding_flow: float = 1.5
    # Bulk porosity of the mat.
    porosity_base: float = 0.86
    porosity_bonding: float = -0.12
    porosity_alignment: float = -0.06
    porosity_diameter: float = 0.03
    # Film-level random effects (what SEM reveals beyond the conditions).
    film_diameter_log_sd: float = 0.10
    film_order_logit_sd: float = 0.30
    film_angle_sd_deg: float = 3.0
    film_bonding_logit_sd: float = 0.50
    film_porosity_sd: float = 0.02
    porosity_range: tuple[float, float] = (0.55, 0.95)
    film_bead_log_sd: float = 0.25
    film_waviness_sd: float = 0.04
    # Mechanics: single-fiber size effect, network efficiency, junction (isotropic) contribution.
    fiber_modulus_mpa: float = 2500.0
    fiber_modulus_size_nm: float = 120.0
    fiber_strength_mpa: float = 300.0
    fiber_strength_size_nm: float = 150.0
    modulus_bond_base: float = 0.15
    modulus_bond_gain: float = 0.60
    strength_bond_base: float = 0.10
    strength_bond_gain: float = 0.50
    modulus_junction: float = 0.06
    strength_junction: float = 0.10
    bead_modulus_loss: float = 0.2
    bead_strength_loss: float = 0.5
    bead_elongation_loss: float = 0.4
    waviness_modulus_loss: float = 0.5
    waviness_elongation_gain: float = 1.5
    elongation_base_pct: float = 45.0
    elongation_size_exponent: float = 0.2
    elongation_bonding: tuple[float, float] = (1.3, -0.6)  # factor a + b·bonding: fused junctions embrittle
    elongation_alignment: float = 0.55
    yield_ratio_base: float = 0.35
    yield_ratio_bonding: float = 0.25
    yield_ratio_alignment: float = 0.10
    yield_ratio_range: tuple[float, float] = (0.25, 0.85)
    knee_sharpness: tuple[float, float] = (0.2, 0.7)  # a + b·bonding: bonded mats yield more abruptly
    # Silicone-polyurethane matrix of the composites.
    matrix_modulus_mpa: float = 8.0
    matrix_strength_mpa: float = 6.0
    matrix_elongation_pct: float = 400.0
    matrix_transfer: float = 0.6  # share of the missing bonding the matrix restores
    composite_uptake_sd: float = 0.03
    composite_uptake_range: tuple[float, float] = (0.8, 1.2)
    composite_elongation_gain: float = 0.5  # per unit matrix share


PHYSICS = LabPhysics()
COHESION_SCALE = "cohesion_scale"  # latent film column of multi-polymer labs: the polymer's ε/σ³ relative to PA6
# Inverting ⟨cos 2θ⟩ = I1(k)/I0(k): orders up to MAX_ORDER, concentrations up to MAX_KAPPA, bisection to float precision.
MAX_ORDER, MAX_KAPPA, BISECTION_STEPS = 0.995, 400.0, 60


def expected_structure(conditions: pd.DataFrame, phys: LabPhysics = PHYSICS) -> pd.DataFrame:
    """Structure the conditions imply on average (no film-level variation)."""
    q, c, v, r, t, h = (conditions[name].to_numpy(float) for name in CONDITION_COLUMNS)
    bead_fraction = expit((phys.bead_conc_wt_pct + phys.bead_humidity_shift * (h - REF_HUM) - c) / phys.bead_conc_width)
    drum = 1.0 - phys.drum_thinning * (1.0 - np.exp(-r / phys.drum_thinning_rpm))
    diameter = (
        phys.diameter_ref_nm
        * (c / REF_CONC) ** phys.conc_exponent
        * (q / REF_FLOW) ** phys.flow_exponent
        * (v / REF_VOLT) ** phys.voltage_exponent
        * np.exp(phys.temperature_coeff * (t - REF_TEMP) + phys.humidity_coeff * (h - REF_HUM))
        * drum
    )
    diameter = phys.diameter_floor_nm + np.maximum(diameter - phys.diameter_floor_nm, 0.0) * (1 - phys.bead_thinning * bead_fraction)
    r0 = phys.drum_rpm_scale * np.sqrt(v / REF_VOLT)
    order = phys.order_random + (phys.order_max - phys.order_random) * (1.0 - np.exp(-r / r0))
    waviness = phys.waviness_max * np.clip((r - phys.critical_rpm) / phys.waviness_rpm_scale, 0.0, 1.0)
    bonding = expit(
        phys.bonding_offset
        + phys.bonding_humidity * (h - REF_HUM)
        + phys.bonding_temperature * (t - REF_TEMP)
        + phys.bonding_flow * (q - REF_FLOW)
    )
    return pd.DataFrame(
        {
            "diameter_mean_nm": diameter,
            "diameter_cv": phys.diameter_cv_base + phys.diameter_cv_beads * bead_fraction,
            "base_order": order,
            "waviness": waviness,
            "bonding": bonding,
            "bead_fraction": bead_fraction,
            "bead_density_per_um2": phys.bead_density_max_per_um2 * bead_fraction,
        },
        index=conditions.index,
    )


def draw_film_structure(conditions: pd.DataFrame, rng: np.random.Generator, phys: LabPhysics = PHYSICS) -> pd.DataFrame:
    """A film's actual latent structure: the expected structure with film-level random effects."""
    exp = expected_structure(conditions, phys)
    n = len(exp)
    base_order = expit(logit(exp["base_order"].to_numpy()) + rng.normal(0, phys.film_order_logit_sd, n))
    bonding = expit(logit(exp["bonding"].to_numpy()) + rng.normal(0, phys.film_bonding_logit_sd, n))
    waviness = np.clip(exp["waviness"].to_numpy() + rng.normal(0, phys.film_waviness_sd, n), 0.0, None)
    waviness = np.where(exp["waviness"].to_numpy() > 0, waviness, 0.0)
    film = pd.DataFrame(
        {
            "diameter_mean_nm": exp["diameter_mean_nm"].to_numpy() * np.exp(rng.normal(0, phys.film_diameter_log_sd, n)),
            "diameter_cv": exp["diameter_cv"].to_numpy(),
            "base_order": base_order,
            "waviness": waviness,
            "mean_angle_deg": rng.normal(0.0, phys.film_angle_sd_deg, n),
            "bonding": bonding,
            "bead_fraction": exp["bead_fraction"].to_numpy(),
            "bead_density_per_um2": exp["bead_density_per_um2"].to_numpy() * np.exp(rng.normal(0, phys.film_bead_log_sd, n)),
        },
        index=conditions.index,
    )
    s2, s4 = orientation_moments(film["base_order"].to_numpy(), film["waviness"].to_numpy())
    film["orientation_order"], film["orientation_s4"] = s2, s4
    if POLYMER_COLUMN in conditions:
        film[COHESION_SCALE] = cohesion_scale(conditions[POLYMER_COLUMN])
    film["porosity"] = np.clip(
        phys.porosity_base
        + phys.porosity_bonding * bonding
        + phys.porosity_alignment * s2
        + phys.porosity_diameter * np.log(film["diameter_mean_nm"] / phys.diameter_ref_nm)
        + rng.normal(0, phys.film_porosity_sd, n),
        *phys.porosity_range,
    )
    return film


def cohesion_scale(polymers: pd.Series) -> np.ndarray:
    """Each film's polymer's LJ energy density ε/σ³ relative to the reference polymer (PA6: exactly 1).

    The fiber modulus and strength scale with it: every elastic constant and the ideal strength of a Lennard-Jones
    solid are numbers times ε/σ³, and ε/σ³ ∝ the cohesive energy density the beads were fitted to (glassy polymers'
    moduli track it: Seitz, J. Appl. Polym. Sci. 49, 1331 (1993)). A parameter law rather than the MD's own ratios:
    those scatter by ~10 % between seeds (a 150-bead glass) and, the MD being chaotic, between machines; they agree
    with this law within that scatter (docs/multiscale.md).
    """
    names = polymers.to_numpy(str)
    reference = POLYMERS[REFERENCE_POLYMER]
    reference_density = reference.epsilon_ev / reference.sigma_angstrom**3
    ratio = {p.name: p.epsilon_ev / p.sigma_angstrom**3 / reference_density for p in resolve_polymers(np.unique(names))}
    return np.array([ratio[name] for name in names], float)


def _cohesion(film: pd.DataFrame) -> np.ndarray | float:
    """A film's cohesion scale; 1 (the reference polymer) when the film has no polymer."""
    return film[COHESION_SCALE].to_numpy() if COHESION_SCALE in film else 1.0


def kappa_for_order(order: np.ndarray) -> np.ndarray:
    """Von Mises concentration k on 2θ with ⟨cos 2θ⟩ = I1(k)/I0(k) = order (solved by bisection)."""
    order = np.clip(np.asarray(order, float), 1e-6, MAX_ORDER)
    lo, hi = np.zeros_like(order), np.full_like(order, MAX_KAPPA)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        too_low = i1e(mid) / i0e(mid) < order
        lo, hi = np.where(too_low, mid, lo), np.where(too_low, hi, mid)
    return 0.5 * (lo + hi)


def orientation_moments(base_order: np.ndarray, waviness: np.ndarray, n_phase: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """⟨cos 2φ⟩ and ⟨cos 4φ⟩ of local fiber angles: von Mises fiber axes plus sinusoidal undulation of slope `waviness`."""
    kappa = kappa_for_order(base_order)
    s2_axis = i1e(kappa) / i0e(kappa)
    s4_axis = ive(2, kappa) / i0e(kappa)
    phase = np.linspace(0, 2 * np.pi, n_phase, endpoint=False)
    # Local angle of y = A sin(u): atan(slope cos u); weight by arc length so long segments count more.
    local = np.arctan(np.asarray(waviness, float)[:, None] * np.cos(phase)[None, :])
    weight = 1.0 / np.cos(local)
    wav2 = (np.cos(2 * local) * weight).sum(1) / weight.sum(1)
    wav4 = (np.cos(4 * local) * weight).sum(1) / weight.sum(1)
    return s2_axis * wav2, s4_axis * wav4


def mat_mechanics(film: pd.DataFrame, direction_deg: float, phys: LabPhysics = PHYSICS) -> pd.DataFrame:
    """Expected elastic modulus, yield and fracture strength, elongation and knee shape along `direction_deg`.

    Orientation-averaged affine network: E ∝ E_f(d)(1-p) κ (⟨cos⁴⟩ + β); strength with ⟨cos²⟩ (weaker exponent).
    """
    d = film["diameter_mean_nm"].to_numpy()
    s2, s4 = film["orientation_order"].to_numpy(), film["orientation_s4"].to_numpy()
    bonding, porosity = film["bonding"].to_numpy(), film["porosity"].to_numpy()
    beads, wav = film["bead_fraction"].to_numpy(), film["waviness"].to_numpy()
    rel = np.deg2rad(direction_deg - film["mean_angle_deg"].to_numpy())
    c2, c4 = np.cos(2 * rel), np.cos(4 * rel)
    along = 0.5 * (1.0 + c2)  # 1 along the mean fiber axis, 0 across it

    eta_modulus = 3 / 8 + 0.5 * s2 * c2 + 1 / 8 * s4 * c4 + phys.modulus_junction
    eta_strength = 0.5 + 0.5 * s2 * c2 + phys.strength_junction
    cohesion = _cohesion(film)  # the film's polymer (multi-polymer labs)
    fiber_modulus = phys.fiber_modulus_mpa * cohesion * (1 + phys.fiber_modulus_size_nm / d)
    fiber_strength = phys.fiber_strength_mpa * cohesion * (1 + np.sqrt(phys.fiber_strength_size_nm / d))
    modulus = (
        fiber_modulus * (1 - porosity) * (phys.modulus_bond_base + phys.modulus_bond_gain * bonding) * eta_modulus
        * (1 - phys.bead_modulus_loss * beads) * (1 - phys.waviness_modulus_loss * wav * along)
    )
    strength = (
        fiber_strength * (1 - porosity) * (phys.strength_bond_base + phys.strength_bond_gain * bonding) * eta_strength
        * (1 - phys.bead_strength_loss * beads)
    )
    elongation = (
        phys.elongation_base_pct * (d / phys.diameter_ref_nm) ** phys.elongation_size_exponent
        * (phys.elongation_bonding[0] + phys.elongation_bonding[1] * bonding)
        * (1 - phys.elongation_alignment * s2 * c2) * (1 - phys.bead_elongation_loss * beads)
        * (1 + phys.waviness_elongation_gain * wav * along)
    )
    yield_ratio = np.clip(
        phys.yield_ratio_base + phys.yield_ratio_bonding * bonding + phys.yield_ratio_alignment * s2 * c2, *phys.yield_ratio_range
    )
    return pd.DataFrame(
        {
            "elastic_modulus_mpa": modulus,
            "yield_strength_mpa": yield_ratio * strength,
            "fracture_strength_mpa": strength,
            "elongation_at_break_pct": elongation,
            "knee_sharpness": phys.knee_sharpness[0] + phys.knee_sharpness[1] * bonding,
        },
        index=film.index,
    )


def composite_mechanics(
    film: pd.DataFrame, direction_deg: float, rng: np.random.Generator, phys: LabPhysics = PHYSICS
) -> pd.DataFrame:
    """Silicone-PU composite of a mat: matrix fills the pores and restores part of the missing junction bonding."""
    uptake = np.clip(1 + rng.normal(0, phys.composite_uptake_sd, len(film)), *phys.composite_uptake_range)
    filled = film.assign(bonding=film["bonding"] + phys.matrix_transfer * (1 - film["bonding"]))
    reinforced = mat_mechanics(filled, direction_deg, phys)
    matrix_share = film["porosity"].to_numpy() * uptake
    modulus = reinforced["elastic_modulus_mpa"].to_numpy() + phys.matrix_modulus_mpa * matrix_share
    strength = reinforced["fracture_strength_mpa"].to_numpy() + phys.matrix_strength_mpa * matrix_share
    elongation = reinforced["elongation_at_break_pct"].to_numpy() * (1 + phys.composite_elongation_gain * matrix_share)
    elongation = np.minimum(elongation, phys.matrix_elongation_pct)
    ratio = reinforced["yield_strength_mpa"].to_numpy() / reinforced["fracture_strength_mpa"].to_numpy()
    return pd.DataFrame(
        {
            "elastic_modulus_mpa": modulus,
            "yield_strength_mpa": ratio * strength,
            "fracture_strength_mpa": strength,
            "elongation_at_break_pct": elongation,
            "knee_sharpness": reinforced["knee_sharpness"].to_numpy(),
        },
        index=film.index,
    )
