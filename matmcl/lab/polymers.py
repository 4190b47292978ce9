"""Coarse-grained bead-spring parameter sets of the virtual lab's polymers (docs/multiscale.md).

One bead is one repeat unit. Its parameters follow from four handbook numbers of the polymer, so that the
*relative* cohesion and stiffness of the polymers are right; the absolute numbers of such a coarse-grained model are
not those of the real material and are only ever used relative to the reference polymer:

- bead volume v = M0 / (ρ N_A) from the repeat-unit mass M0 and the density ρ;
- LJ diameter σ = (v / ρ*)^(1/3): the bead-spring glass relaxes to the reduced density ρ* at zero pressure (measured
  with `matmcl.multiscale.molecular` on the reference polymer), so the simulated density is close to ρ;
- LJ well depth ε = δ² v / z: the cohesive energy density δ² (Hildebrand solubility parameter δ) times the bead
  volume is the cohesive energy per bead, and a bead-spring glass binds z ε per bead (measured likewise);
- harmonic bond stiffness k = E_f v / b² with rest length b = 0.97 σ (the Kremer–Grest bond length): a bond is as
  stiff as a column of the bulk fiber (modulus E_f) with the bead's volume, cross-section v/b and length b. This gives
  k ≈ 19–53 ε/σ², the range of common bead-spring models (Kremer & Grest, J. Chem. Phys. 92, 5057 (1990): 30 ε/σ²).

Sources (typical values; handbooks spread by about ±10 %): solubility parameters and densities from J. Brandrup,
E. H. Immergut, E. A. Grulke (eds.), Polymer Handbook, 4th ed., Wiley 1999 (section VII) and C. M. Hansen, Hansen
Solubility Parameters: A User's Handbook, 2nd ed., CRC 2007; moduli of drawn fibers from W. E. Morton and
J. W. S. Hearle, Physical Properties of Textile Fibres, 4th ed., Woodhead 2008 (nylon 6, acrylic) and PVDF
monofilament data sheets, oriented polystyrene. The reference polymer PA6 keeps the lab's fiber modulus and
strength (2500 / 300 MPa); the other polymers' scale with ε/σ³ (matmcl.lab.physics.cohesion_scale).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

AVOGADRO_PER_A3_CM3 = 0.602214076  # N_A × 1 Å³ in cm³/mol
MPA_A3_IN_EV = 1e6 * 1e-30 / 1.602176634e-19  # 1 MPa × 1 Å³ in eV
GPA_PER_EV_A3 = 160.21766208  # 1 eV/Å³ in GPa
# Properties of the bead-spring glass made by matmcl.multiscale.molecular (MolecularConfig defaults, reference polymer).
GLASS_REDUCED_DENSITY = 1.0  # ρσ³ of the minimised glass (PA6 1.150 g/cm³ simulated vs 1.14)
GLASS_COHESION_PER_EPSILON = 5.4  # its inter-chain cohesive energy per bead / ε (5.40 ± 0.01, seeds 0–2)
KREMER_GREST_BOND = 0.97  # bond rest length / σ


@dataclass(frozen=True)
class Polymer:
    """Bead-spring model of a polymer: LJ beads (one per repeat unit) joined by harmonic bonds into chains."""

    name: str
    mass_amu: float  # bead (repeat unit) mass
    epsilon_ev: float  # LJ well depth of the non-bonded pairs
    sigma_angstrom: float  # LJ diameter
    bond_stiffness_ev_per_a2: float  # harmonic bond energy ½ k (r − b)²
    bond_length_angstrom: float  # rest length b
    beads_per_chain: int = 10
    n_chains: int = 15

    @property
    def n_beads(self) -> int:
        return self.beads_per_chain * self.n_chains


def coarse_grain(name: str, repeat_unit_mass_g_mol: float, density_g_cm3: float, solubility_parameter_mpa_sqrt: float,
                 fiber_modulus_gpa: float, beads_per_chain: int = 10, n_chains: int = 15) -> Polymer:
    """Bead-spring parameters from handbook numbers (the mapping in the module docstring)."""
    volume_a3 = repeat_unit_mass_g_mol / (density_g_cm3 * AVOGADRO_PER_A3_CM3)
    sigma = (volume_a3 / GLASS_REDUCED_DENSITY) ** (1 / 3)
    cohesive_ev = solubility_parameter_mpa_sqrt**2 * volume_a3 * MPA_A3_IN_EV
    bond = KREMER_GREST_BOND * sigma
    stiffness = fiber_modulus_gpa / GPA_PER_EV_A3 * volume_a3 / bond**2
    return Polymer(name, repeat_unit_mass_g_mol, cohesive_ev / GLASS_COHESION_PER_EPSILON, sigma, stiffness, bond,
                   beads_per_chain, n_chains)


POLYMERS: dict[str, Polymer] = {
    p.name: p
    for p in (
        # polyamide 6, -[NH(CH2)5CO]-: δ ≈ 22.9 MPa^½, ρ 1.14 g/cm³ (semicrystalline fiber), nylon-6 fiber 2.5 GPa
        coarse_grain("PA6", 113.16, 1.14, 22.9, 2.5),
        # polyacrylonitrile, -[CH2CH(CN)]-: δ ≈ 27.4 MPa^½ (strongly polar nitrile), ρ 1.18, acrylic fiber 5.0 GPa
        coarse_grain("PAN", 53.06, 1.18, 27.4, 5.0),
        # poly(vinylidene fluoride), -[CH2CF2]-: δ ≈ 23.2 MPa^½, ρ 1.78, PVDF monofilament 1.8 GPa
        coarse_grain("PVDF", 64.03, 1.78, 23.2, 1.8),
        # polystyrene, -[CH2CH(C6H5)]-: δ ≈ 18.6 MPa^½ (apolar), ρ 1.05, oriented PS 3.2 GPa
        coarse_grain("PS", 104.15, 1.05, 18.6, 3.2),
    )
}
REFERENCE_POLYMER = "PA6"  # the polymer of the default virtual lab (LabPhysics fiber modulus and strength)
POLYMER_COLUMN = "polymer"  # optional column of conditions.csv and the ground truth: a film's polymer


def resolve_polymers(names: Iterable[str]) -> list[Polymer]:
    """The registry entries of `names`; an unknown name raises ValueError listing the registry."""
    names = list(names)
    unknown = sorted(set(names) - set(POLYMERS))
    if unknown:
        raise ValueError(f"unknown polymer(s) {unknown}; known: {sorted(POLYMERS)} (matmcl.lab.polymers.POLYMERS)")
    return [POLYMERS[name] for name in names]
