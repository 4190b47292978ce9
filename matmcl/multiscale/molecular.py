"""Molecular scale: descriptors of a polymer's coarse-grained bead-spring glass from a small MD run with ASE.

A periodic box of `n_chains` chains of `beads_per_chain` Lennard-Jones beads (one bead per repeat unit,
matmcl.lab.polymers) with harmonic bonds is melted (Langevin MD at k_B T = `melt_temperature_reduced` ε), annealed
cold, minimised (L-BFGS on the positions, then on positions and a hydrostatic cell towards zero pressure) and
strained stepwise along x, y and z in turn at fixed lateral size (uniaxial strain), relaxing the beads at each step.
The descriptors (MOLECULAR_KEYS; docs/multiscale.md):

- `cohesive_energy_ev_per_bead`: inter-chain cohesive energy per bead of the minimised glass, (Σ_chains E(chain
  alone, same conformation) − E(glass)) / N: the energy per bead to pull the chains apart to infinity (positive);
- `cohesive_energy_density_mpa`: the same per volume (the square of the Hildebrand solubility parameter);
- `coordination_number`: mean number of non-bonded beads within `coordination_cutoff_sigma` σ of a bead;
- `density_g_cm3`: mass density of the glass;
- `virial_modulus_gpa`: initial slope of the virial stress σ_ii (`atoms.get_stress()`) vs strain along i (the
  uniaxial-strain modulus C11, least squares over the points up to `modulus_max_strain`), mean over the three axes;
- `virial_peak_stress_gpa`, `peak_strain`: the largest σ_ii on each strain path and where it occurs (axis means).

Minimisations stop at `fmax_reduced` or their step budget (usually the budget: a glass relaxes slowly), so the
protocol, not full convergence, defines the numbers. A seed gives exactly the same numbers on one machine (one BLAS
thread); MD is chaotic, so another CPU or library build may land in another glass, as another seed would: between
seeds the modulus varies by ~10 %, cohesion and density by ~1 % (benchmarks/bench_molecular.py). Results are cached
per (polymer, config) because every film of a polymer asks for them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lj import LennardJones
from ase.calculators.mixing import SumCalculator
from ase.filters import UnitCellFilter
from ase.geometry import find_mic
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta
from ase.neighborlist import NeighborList, neighbor_list
from ase.optimize import LBFGS
from ase.stress import full_3x3_to_voigt_6_stress
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from matmcl.lab.polymers import Polymer, resolve_polymers

MOLECULAR_KEYS: tuple[str, ...] = (
    "cohesive_energy_ev_per_bead", "cohesive_energy_density_mpa", "coordination_number", "density_g_cm3",
    "virial_modulus_gpa", "virial_peak_stress_gpa", "peak_strain",
)
GRAMS_PER_AMU = 1.66053906660e-24
CM3_PER_A3 = 1e-24


@dataclass(frozen=True)
class MolecularConfig:
    """Parameters of the bead-spring MD (lengths in σ, energies in ε, times in τ = σ √(m/ε) of the polymer)."""

    seed: int = 0
    initial_density_reduced: float = 1.0  # ρσ³ of the starting lattice
    melt_temperature_reduced: float = 1.0  # k_B T / ε of the melting run
    md_steps: int = 200  # Langevin steps of the melting run
    anneal_temperature_reduced: float = 0.05  # k_B T / ε of the cold anneal before the minimisation
    anneal_steps: int = 100
    timestep_tau: float = 0.01
    friction_per_tau: float = 1.0  # Langevin friction
    cutoff_sigma: float = 2.5  # LJ cutoff
    cutoff_onset_sigma: float = 2.0  # LJ smoothly switched off from here to the cutoff
    skin_sigma: float = 0.3  # neighbour-list skin
    fmax_reduced: float = 0.02  # minimisations stop below this force (ε/σ) or after their step budget
    relax_steps: int = 100  # L-BFGS steps of the positions after the anneal
    cell_relax_steps: int = 40  # L-BFGS steps of positions and volume (zero pressure)
    strain_steps: int = 8  # per axis; the box is strained along x, y and z in turn (descriptors: the mean)
    max_strain: float = 0.2
    strain_relax_steps: int = 20  # L-BFGS steps per strain step
    modulus_max_strain: float = 0.05  # strain range of the initial-slope fit
    coordination_cutoff_sigma: float = 1.5


class HarmonicBonds(Calculator):
    """Harmonic bonds ½ k (r − b)² between listed bead pairs (minimum image), with forces and virial stress.

    Written here because ASE has no bonded-potential calculator; it is combined with ASE's LennardJones through
    SumCalculator. Stress = (1/V) Σ_bonds k (r − b) r⊗r / r (ASE convention: dE/dstrain / V, tension positive).
    """

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, bonds: np.ndarray, stiffness: float, rest_length: float) -> None:
        super().__init__()
        self.bonds = np.asarray(bonds, int).reshape(-1, 2)
        self.stiffness, self.rest_length = float(stiffness), float(rest_length)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        i, j = self.bonds.T
        vectors, lengths = find_mic(self.atoms.positions[j] - self.atoms.positions[i], self.atoms.cell, self.atoms.pbc)
        stretch = lengths - self.rest_length
        tension = self.stiffness * stretch  # dE/dr per bond
        pair_force = (tension / lengths)[:, None] * vectors  # pulls i towards j when stretched
        forces = np.zeros((len(self.atoms), 3))
        np.add.at(forces, i, pair_force)
        np.add.at(forces, j, -pair_force)
        self.results["energy"] = 0.5 * self.stiffness * float(stretch @ stretch)
        self.results["free_energy"] = self.results["energy"]
        self.results["forces"] = forces
        if self.atoms.cell.rank == 3:
            virial = np.einsum("b,bi,bj->ij", tension / lengths, vectors, vectors)
            self.results["stress"] = full_3x3_to_voigt_6_stress(virial / self.atoms.get_volume())


class SkinnedLennardJones(LennardJones):
    """ASE's LennardJones with a neighbour-list skin (ASE's default 0.3 Å rebuilds the list almost every MD step of
    beads several Å wide; a rebuild costs twice the force loop). Pairs beyond the cutoff contribute exactly zero."""

    def __init__(self, skin: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skin = skin

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:
        if self.nl is None or "numbers" in system_changes:
            self.nl = NeighborList([self.parameters.rc / 2] * len(atoms if atoms is not None else self.atoms),
                                   skin=self.skin, self_interaction=False, bothways=True)
            system_changes = [change for change in system_changes if change != "numbers"]
        super().calculate(atoms, properties, system_changes)


def bead_spring_calculator(polymer: Polymer, bonds: np.ndarray, config: MolecularConfig) -> SumCalculator:
    """ASE LennardJones (all bead pairs, smooth cutoff) plus the harmonic bonds."""
    sigma = polymer.sigma_angstrom
    lj = SkinnedLennardJones(config.skin_sigma * sigma, epsilon=polymer.epsilon_ev, sigma=sigma,
                             rc=config.cutoff_sigma * sigma, ro=config.cutoff_onset_sigma * sigma, smooth=True)
    return SumCalculator([lj, HarmonicBonds(bonds, polymer.bond_stiffness_ev_per_a2, polymer.bond_length_angstrom)])


def _grid_shape(n: int) -> tuple[int, int, int]:
    """The most cubic nx × ny × nz = n (aspect ratio at most 2, else ValueError)."""
    best = min(((a, b, n // (a * b)) for a in range(1, n + 1) if n % a == 0 for b in range(1, n // a + 1)
                if (n // a) % b == 0), key=lambda s: max(s) / min(s))
    if max(best) > 2 * min(best):
        raise ValueError(f"{n} beads do not fill a near-cubic lattice (best {best}): choose n_chains × beads_per_chain "
                         "with a near-cubic factorization, e.g. 150 = 5 × 5 × 6")
    return best


def _snake_path(shape: tuple[int, int, int]) -> np.ndarray:
    """Lattice sites in the order of a 3-D boustrophedon walk: consecutive sites are nearest neighbours."""
    nx, ny, nz = shape
    sites = []
    for z in range(nz):
        ys = range(ny) if z % 2 == 0 else range(ny - 1, -1, -1)
        for row, y in enumerate(ys):
            xs = range(nx) if (z * ny + row) % 2 == 0 else range(nx - 1, -1, -1)
            sites.extend((x, y, z) for x in xs)
    return np.array(sites, float)


def build_melt(polymer: Polymer, config: MolecularConfig) -> tuple[Atoms, np.ndarray]:
    """Chains laid along a snake walk through a cubic lattice at the initial density; returns atoms and bond pairs."""
    shape = _grid_shape(polymer.n_beads)
    spacing = polymer.sigma_angstrom / config.initial_density_reduced ** (1 / 3)
    atoms = Atoms(f"X{polymer.n_beads}", positions=(_snake_path(shape) + 0.5) * spacing,
                  cell=np.array(shape, float) * spacing, pbc=True)
    atoms.set_masses(np.full(polymer.n_beads, polymer.mass_amu))
    starts = np.arange(polymer.n_chains) * polymer.beads_per_chain
    bonds = np.array([(s + k, s + k + 1) for s in starts for k in range(polymer.beads_per_chain - 1)])
    atoms.calc = bead_spring_calculator(polymer, bonds, config)
    return atoms, bonds


def _relax(atoms: Atoms | UnitCellFilter, fmax: float, steps: int) -> None:
    LBFGS(atoms, logfile=None).run(fmax=fmax, steps=steps)


def _langevin(atoms: Atoms, polymer: Polymer, config: MolecularConfig, temperature_reduced: float, steps: int,
              rng: np.random.Generator) -> None:
    tau = polymer.sigma_angstrom * np.sqrt(polymer.mass_amu / polymer.epsilon_ev)  # ASE time units
    temperature_k = temperature_reduced * polymer.epsilon_ev / units.kB
    Langevin(atoms, timestep=config.timestep_tau * tau, temperature_K=temperature_k,
             friction=config.friction_per_tau / tau, fixcm=False, rng=rng, logfile=None).run(steps)


def melt_and_quench(polymer: Polymer, config: MolecularConfig) -> tuple[Atoms, np.ndarray]:
    """The zero-pressure bead-spring glass: lattice → Langevin melt → cold Langevin anneal → L-BFGS minimisation of
    the positions, then of positions and volume together (a cell change rebuilds the neighbour list: done last)."""
    atoms, bonds = build_melt(polymer, config)
    rng = np.random.default_rng(config.seed)
    thermalize_momenta(atoms, temperature_K=config.melt_temperature_reduced * polymer.epsilon_ev / units.kB, rng=rng)
    _langevin(atoms, polymer, config, config.melt_temperature_reduced, config.md_steps, rng)
    _langevin(atoms, polymer, config, config.anneal_temperature_reduced, config.anneal_steps, rng)
    atoms.set_momenta(np.zeros((len(atoms), 3)))
    fmax = config.fmax_reduced * polymer.epsilon_ev / polymer.sigma_angstrom
    _relax(atoms, fmax, config.relax_steps)
    _relax(UnitCellFilter(atoms, hydrostatic_strain=True), fmax, config.cell_relax_steps)
    return atoms, bonds


def chain_energies(atoms: Atoms, polymer: Polymer, config: MolecularConfig) -> float:
    """Σ over chains of the energy of each chain alone in vacuum, in its conformation in the glass."""
    n = polymer.beads_per_chain
    bonds = np.column_stack([np.arange(n - 1), np.arange(1, n)])
    total = 0.0
    for start in range(0, polymer.n_beads, n):
        positions = atoms.positions[start:start + n]
        steps, _ = find_mic(np.diff(positions, axis=0), atoms.cell, atoms.pbc)  # unwrap across the box faces
        chain = Atoms(f"X{n}", positions=np.vstack([positions[:1], positions[0] + steps.cumsum(0)]))
        chain.calc = bead_spring_calculator(polymer, bonds, config)
        total += chain.get_potential_energy()
    return total


def coordination_number(atoms: Atoms, bonds: np.ndarray, cutoff: float) -> float:
    """Mean number of non-bonded neighbours within `cutoff` (Å) per bead."""
    pairs = len(neighbor_list("i", atoms, cutoff))  # ordered pairs: each neighbour counted from both beads
    _, bond_lengths = find_mic(atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]], atoms.cell, atoms.pbc)
    return (pairs - 2 * int((bond_lengths < cutoff).sum())) / len(atoms)


def strain_curve(glass: Atoms, bonds: np.ndarray, polymer: Polymer, config: MolecularConfig,
                 axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Virial stress σ_axis,axis (GPa) at strains 0 … max_strain of uniaxial strain along `axis` (lateral box size
    fixed, beads relaxed at each step), on a copy of `glass`."""
    atoms = glass.copy()
    atoms.calc = bead_spring_calculator(polymer, bonds, config)
    fmax = config.fmax_reduced * polymer.epsilon_ev / polymer.sigma_angstrom
    strains = np.linspace(0.0, config.max_strain, config.strain_steps + 1)
    cell0 = atoms.cell.array.copy()
    stress = [atoms.get_stress()[axis] / units.GPa]
    for strain in strains[1:]:
        stretch = np.ones(3)
        stretch[axis] += strain
        atoms.set_cell(cell0 @ np.diag(stretch), scale_atoms=True)
        _relax(atoms, fmax, config.strain_relax_steps)
        stress.append(atoms.get_stress()[axis] / units.GPa)
    return strains, np.array(stress)


@functools.cache
def _descriptors(polymer: Polymer, config: MolecularConfig) -> tuple[float, ...]:
    with threadpool_limits(1):  # 3 × 3 linear algebra of the cell filter: BLAS threads only add overhead
        atoms, bonds = melt_and_quench(polymer, config)
        n, volume = len(atoms), atoms.get_volume()
        cohesive = (chain_energies(atoms, polymer, config) - atoms.get_potential_energy()) / n
        coordination = coordination_number(atoms, bonds, config.coordination_cutoff_sigma * polymer.sigma_angstrom)
        curves = [strain_curve(atoms, bonds, polymer, config, axis) for axis in range(3)]
    strains = curves[0][0]
    initial = strains <= config.modulus_max_strain + 1e-12
    modulus = np.mean([np.polyfit(strains[initial], stress[initial], 1)[0] for _, stress in curves])
    peaks = [int(np.argmax(stress)) for _, stress in curves]
    values = {
        "cohesive_energy_ev_per_bead": cohesive,
        "cohesive_energy_density_mpa": cohesive / (volume / n) / units.GPa * 1e3,
        "coordination_number": coordination,
        "density_g_cm3": n * polymer.mass_amu * GRAMS_PER_AMU / (volume * CM3_PER_A3),
        "virial_modulus_gpa": modulus,
        "virial_peak_stress_gpa": np.mean([stress[peak] for (_, stress), peak in zip(curves, peaks)]),
        "peak_strain": np.mean(strains[peaks]),
    }
    return tuple(float(values[key]) for key in MOLECULAR_KEYS)


def molecular_descriptors(polymer: Polymer, config: MolecularConfig = MolecularConfig()) -> dict[str, float]:
    """MOLECULAR_KEYS of `polymer`'s bead-spring glass (module docstring); cached per (polymer, config)."""
    return dict(zip(MOLECULAR_KEYS, _descriptors(polymer, config)))


def film_molecular_descriptors(polymer_names: Sequence[str], config: MolecularConfig = MolecularConfig(),
                               progress: bool = False) -> pd.DataFrame:
    """One row per entry of `polymer_names` (order and repeats kept): column `polymer` + MOLECULAR_KEYS.

    Each distinct polymer is simulated once; unknown names raise ValueError listing the registry.
    """
    names = list(polymer_names)
    polymers = {p.name: p for p in resolve_polymers(names)}
    table = {name: molecular_descriptors(polymer, config)
             for name, polymer in tqdm(polymers.items(), desc="bead-spring MD", unit="polymer", disable=not progress)}
    return pd.DataFrame([{"polymer": name, **table[name]} for name in names], columns=["polymer", *MOLECULAR_KEYS])
