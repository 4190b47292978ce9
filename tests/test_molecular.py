"""Molecular scale: the bead-spring calculator against analytic LJ results, the MD descriptors, and the multi-polymer
virtual lab (docs/multiscale.md)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.optimize import minimize_scalar

from matmcl.config import SynthConfig
from matmcl.lab import physics
from matmcl.lab.conditions import sample_conditions
from matmcl.lab.generate import generate_dataset
from matmcl.lab.physics import COHESION_SCALE, cohesion_scale, draw_film_structure, mat_mechanics
from matmcl.lab.polymers import POLYMER_COLUMN, POLYMERS, REFERENCE_POLYMER, Polymer, coarse_grain
from matmcl.multiscale.molecular import (
    MOLECULAR_KEYS,
    _descriptors,
    MolecularConfig,
    bead_spring_calculator,
    build_melt,
    coordination_number,
    film_molecular_descriptors,
    molecular_descriptors,
)
from matmcl.schema import CONDITION_COLUMNS, FILM_ID

EPS, SIGMA = 0.01, 3.4  # eV, Å
BEAD = Polymer("bead", 40.0, EPS, SIGMA, 0.05, 3.3)
NO_BONDS = np.empty((0, 2), int)
# A few hundred force calls: seconds, not the descriptors' accuracy.
TINY_MD = MolecularConfig(md_steps=30, anneal_steps=20, relax_steps=20, cell_relax_steps=10, strain_steps=4,
                          max_strain=0.2, strain_relax_steps=5, modulus_max_strain=0.05)
TINY = dict(beads_per_chain=6, n_chains=4)  # 24 beads on a 2 × 3 × 4 lattice


def lj_with(atoms: Atoms, config: MolecularConfig = MolecularConfig(), bonds: np.ndarray = NO_BONDS) -> Atoms:
    atoms.calc = bead_spring_calculator(BEAD, bonds, config)
    return atoms


def fcc(nearest_neighbour: float, repeat: int = 3) -> Atoms:
    return bulk("Ar", "fcc", a=nearest_neighbour * np.sqrt(2), cubic=True).repeat(repeat)


def smooth_lj(r: np.ndarray, rc: float, ro: float) -> np.ndarray:
    """The pair energy ASE's smooth LennardJones documents: 4ε(σ¹²/r¹² − σ⁶/r⁶) × a switch from ro to rc in r²."""
    u = 4 * EPS * ((SIGMA / r) ** 12 - (SIGMA / r) ** 6)
    switch = np.where(r < ro, 1.0, (rc**2 - r**2) ** 2 * (rc**2 + 2 * r**2 - 3 * ro**2) / (rc**2 - ro**2) ** 3)
    return np.where(r < rc, u * switch, 0.0)


def fcc_lattice_sum(nearest_neighbour: float, config: MolecularConfig) -> float:
    """Energy per atom of a perfect FCC crystal: ½ Σ over lattice vectors of the pair energy (independent of ASE)."""
    a = nearest_neighbour * np.sqrt(2)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    n = int(np.ceil(config.cutoff_sigma * SIGMA / a)) + 1
    cells = np.array(list(itertools.product(range(-n, n + 1), repeat=3)))
    r = np.linalg.norm(((cells[:, None, :] + basis[None]) * a).reshape(-1, 3), axis=1)
    r = r[r > 0]
    return 0.5 * smooth_lj(r, config.cutoff_sigma * SIGMA, config.cutoff_onset_sigma * SIGMA).sum()


def test_lj_dimer_minimum_through_the_combined_calculator():
    def energy(distance: float) -> float:
        return lj_with(Atoms("X2", positions=[[0, 0, 0], [distance, 0, 0]])).get_potential_energy()

    best = minimize_scalar(energy, bounds=(0.95 * SIGMA, 1.6 * SIGMA), method="bounded", options={"xatol": 1e-7})
    assert best.x == pytest.approx(2 ** (1 / 6) * SIGMA, rel=1e-5)
    at_minimum = lj_with(Atoms("X2", positions=[[0, 0, 0], [2 ** (1 / 6) * SIGMA, 0, 0]]))
    assert at_minimum.get_potential_energy() == pytest.approx(-EPS, rel=1e-12)
    assert np.abs(at_minimum.get_forces()).max() < 1e-12
    # A bond adds ½ k (r − b)² and its force on top of the LJ pair.
    bonded = lj_with(Atoms("X2", positions=[[0, 0, 0], [1.2 * SIGMA, 0, 0]]), bonds=np.array([[0, 1]]))
    stretch = 1.2 * SIGMA - BEAD.bond_length_angstrom
    lj_only = lj_with(Atoms("X2", positions=[[0, 0, 0], [1.2 * SIGMA, 0, 0]]))
    assert bonded.get_potential_energy() - lj_only.get_potential_energy() == pytest.approx(
        0.5 * BEAD.bond_stiffness_ev_per_a2 * stretch**2, rel=1e-12)
    assert bonded.get_forces()[1, 0] - lj_only.get_forces()[1, 0] == pytest.approx(
        -BEAD.bond_stiffness_ev_per_a2 * stretch, rel=1e-12)


def test_fcc_crystal_coordination_and_cohesive_energy_match_lattice_sums():
    nearest = 2 ** (1 / 6) * SIGMA
    crystal = lj_with(fcc(nearest))
    assert coordination_number(crystal, NO_BONDS, 1.5 * SIGMA) == 12
    per_atom = crystal.get_potential_energy() / len(crystal)
    assert per_atom == pytest.approx(fcc_lattice_sum(nearest, MolecularConfig()), rel=1e-10)
    squeezed = lj_with(fcc(1.02 * SIGMA))
    expected = fcc_lattice_sum(1.02 * SIGMA, MolecularConfig())
    assert squeezed.get_potential_energy() / len(squeezed) == pytest.approx(expected, rel=1e-10)
    # The lattice sum itself, with a long cutoff, gives the classic FCC result: 2ε(A12 (σ/r)¹² − A6 (σ/r)⁶) with
    # A12 = 12.13188, A6 = 14.45392, minimum −8.610 ε at r = 1.0902 σ (Kittel, Introduction to Solid State Physics).
    long_range = MolecularConfig(cutoff_sigma=30.0, cutoff_onset_sigma=29.5)  # the tail beyond: 4·10⁻⁴ ε
    best = minimize_scalar(lambda r: fcc_lattice_sum(r, long_range), bounds=(1.05 * SIGMA, 1.15 * SIGMA),
                           method="bounded", options={"xatol": 1e-6})
    assert best.x / SIGMA == pytest.approx(1.0902, abs=2e-4)
    assert best.fun / EPS == pytest.approx(-8.610, abs=1e-3)


@pytest.mark.parametrize("component", [0, 1, 3, 5])  # xx, yy, yz, xy (Voigt)
def test_virial_stress_is_the_energy_derivative_over_volume(component):
    crystal = fcc(1.1 * SIGMA, 2)
    crystal.rattle(0.05 * SIGMA, seed=1)
    bonds = np.array([[0, 1], [2, 3], [4, 9], [10, 20]])
    lj_with(crystal, bonds=bonds)
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)][component]

    def energy(strain: float) -> float:
        deformation = np.eye(3)
        deformation[voigt] += strain / (2 if voigt[0] != voigt[1] else 1)
        deformation[voigt[::-1]] += strain / 2 if voigt[0] != voigt[1] else 0.0
        strained = crystal.copy()
        strained.set_cell(crystal.cell.array @ deformation, scale_atoms=True)
        return lj_with(strained, bonds=bonds).get_potential_energy()

    h = 1e-5
    numeric = (energy(h) - energy(-h)) / (2 * h) / crystal.get_volume()
    assert crystal.get_stress()[component] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_larger_epsilon_gives_larger_cohesion_and_modulus_and_runs_are_deterministic():
    weak = coarse_grain("weak", 60.0, 1.2, 18.0, 2.0, **TINY)
    strong = dataclasses.replace(weak, name="strong", epsilon_ev=2 * weak.epsilon_ev)
    d_weak, d_strong = molecular_descriptors(weak, TINY_MD), molecular_descriptors(strong, TINY_MD)
    assert set(d_weak) == set(MOLECULAR_KEYS)
    assert d_strong["cohesive_energy_ev_per_bead"] > 1.5 * d_weak["cohesive_energy_ev_per_bead"] > 0
    assert d_strong["virial_modulus_gpa"] > 1.3 * d_weak["virial_modulus_gpa"] > 0
    assert d_strong["virial_peak_stress_gpa"] > d_weak["virial_peak_stress_gpa"] > 0
    assert 0.8 < d_weak["density_g_cm3"] / 1.2 < 1.3  # the coarse-graining keeps the handbook density roughly
    other_seed = molecular_descriptors(weak, dataclasses.replace(TINY_MD, seed=1))
    _descriptors.cache_clear()  # a fresh run, not the cache: same seed, same numbers
    assert molecular_descriptors(dataclasses.replace(weak), dataclasses.replace(TINY_MD)) == d_weak != other_seed


def test_film_table_keeps_order_and_rejects_unknown_polymers(monkeypatch):
    monkeypatch.setattr("matmcl.multiscale.molecular.resolve_polymers",
                        lambda names: [coarse_grain(n, 60.0, 1.2, 18.0 + len(n), 2.0, **TINY) for n in names])
    table = film_molecular_descriptors(["ab", "abc", "ab"], TINY_MD)
    assert list(table.columns) == ["polymer", *MOLECULAR_KEYS]
    assert table["polymer"].tolist() == ["ab", "abc", "ab"]
    assert table.iloc[0, 1:].tolist() == table.iloc[2, 1:].tolist() != table.iloc[1, 1:].tolist()
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unknown polymer.*'NYLON'.*known: \\['PA6', 'PAN', 'PS', 'PVDF'\\]"):
        film_molecular_descriptors(["PA6", "NYLON"], TINY_MD)


def test_registry_keeps_the_reference_polymer_and_scales_fibers_by_cohesive_energy_density():
    assert REFERENCE_POLYMER == "PA6" and {"PA6", "PAN", "PVDF", "PS"} <= set(POLYMERS)
    assert physics.PHYSICS.fiber_modulus_mpa == 2500.0 and physics.PHYSICS.fiber_strength_mpa == 300.0
    scale = dict(zip(POLYMERS, cohesion_scale(pd.Series(list(POLYMERS)))))
    # ε/σ³ ∝ δ²: the handbook solubility parameters' squared ratios (22.9, 27.4, 23.2, 18.6 MPa^½).
    assert scale["PA6"] == 1.0
    assert scale["PAN"] == pytest.approx((27.4 / 22.9) ** 2, rel=1e-12)
    assert scale["PVDF"] == pytest.approx((23.2 / 22.9) ** 2, rel=1e-12)
    assert scale["PS"] == pytest.approx((18.6 / 22.9) ** 2, rel=1e-12)
    # Bonds as stiff as a bead-sized column of the fiber: 20–55 ε/σ², the range of common bead-spring models.
    reduced = [p.bond_stiffness_ev_per_a2 * p.sigma_angstrom**2 / p.epsilon_ev for p in POLYMERS.values()]
    assert 15 < min(reduced) and max(reduced) < 60


def test_polymer_assignment_is_balanced_and_leaves_the_numeric_conditions_alone():
    plain = sample_conditions(10, seed=3)
    mixed = sample_conditions(10, seed=3, polymers=("PA6", "PAN", "PVDF"))
    assert POLYMER_COLUMN not in plain and list(plain.columns) == [FILM_ID, *CONDITION_COLUMNS]
    pd.testing.assert_frame_equal(mixed.drop(columns=POLYMER_COLUMN), plain)
    assert sorted(mixed[POLYMER_COLUMN].value_counts().tolist()) == [3, 3, 4]
    assert mixed[POLYMER_COLUMN].tolist() == sample_conditions(10, 3, ("PA6", "PAN", "PVDF"))[POLYMER_COLUMN].tolist()
    with pytest.raises(ValueError, match="known: \\['PA6', 'PAN', 'PS', 'PVDF'\\]"):
        sample_conditions(4, 0, ("PA6", "PET"))


def test_fiber_properties_follow_the_polymer_cohesion():
    conditions = sample_conditions(8, seed=1)[list(CONDITION_COLUMNS)]
    reference = draw_film_structure(conditions, np.random.default_rng(0))
    films = {name: draw_film_structure(conditions.assign(polymer=name), np.random.default_rng(0))
             for name in ("PA6", "PAN")}
    assert COHESION_SCALE not in reference and (films["PA6"][COHESION_SCALE] == 1.0).all()
    pd.testing.assert_frame_equal(films["PA6"].drop(columns=COHESION_SCALE), reference)  # same random effects
    base = mat_mechanics(reference, 0.0)
    pd.testing.assert_frame_equal(mat_mechanics(films["PA6"], 0.0), base)
    pan = mat_mechanics(films["PAN"], 0.0)
    scale = films["PAN"][COHESION_SCALE].iloc[0]
    assert scale > 1.4
    for column in ("elastic_modulus_mpa", "yield_strength_mpa", "fracture_strength_mpa"):
        np.testing.assert_allclose(pan[column] / base[column], scale, rtol=1e-12)
    np.testing.assert_array_equal(pan["elongation_at_break_pct"], base["elongation_at_break_pct"])


def test_multi_polymer_synth_writes_the_polymer_and_stiffer_polymers_make_stiffer_films(tmp_path):
    small = SynthConfig(n_films=6, n_frames=1, frame_width_px=160, frame_height_px=128, info_bar_px=32,
                        n_composites=2, workers=1)
    generate_dataset(tmp_path / "plain", small, progress=False)
    generate_dataset(tmp_path / "mixed", dataclasses.replace(small, polymers=("PA6", "PAN", "PVDF")), progress=False)
    plain = pd.read_csv(tmp_path / "plain" / "conditions.csv")
    mixed = pd.read_csv(tmp_path / "mixed" / "conditions.csv")
    assert list(plain.columns) == [FILM_ID, *CONDITION_COLUMNS]
    pd.testing.assert_frame_equal(mixed.drop(columns=POLYMER_COLUMN), plain)
    assert mixed[POLYMER_COLUMN].value_counts().tolist() == [2, 2, 2]
    truth_plain = pd.read_parquet(tmp_path / "plain" / "ground_truth" / "films.parquet")
    truth = pd.read_parquet(tmp_path / "mixed" / "ground_truth" / "films.parquet")
    assert POLYMER_COLUMN not in truth_plain and COHESION_SCALE not in truth_plain
    assert truth[POLYMER_COLUMN].tolist() == mixed[POLYMER_COLUMN].tolist()
    # Same films, same random effects: each film's modulus changes by its polymer's scale, PA6 films not at all.
    ratio = (pd.read_parquet(tmp_path / "mixed" / "ground_truth" / "properties.parquet")["elastic_modulus_mpa"]
             / pd.read_parquet(tmp_path / "plain" / "ground_truth" / "properties.parquet")["elastic_modulus_mpa"])
    per_film = ratio.groupby(np.repeat(truth[POLYMER_COLUMN].to_numpy(), 2)).mean()
    scales = truth.groupby(POLYMER_COLUMN)[COHESION_SCALE].first()
    assert per_film["PA6"] == 1.0
    np.testing.assert_allclose(per_film[scales.index], scales, rtol=0.02)
    stiffest = scales.idxmax()
    assert stiffest == "PAN" and per_film["PAN"] > 1.4


def test_melt_starts_as_chains_on_a_snake_walk_and_rejects_elongated_boxes():
    polymer = POLYMERS["PA6"]
    atoms, bonds = build_melt(polymer, MolecularConfig())
    assert len(atoms) == 150 and len(bonds) == 15 * 9
    lengths = np.linalg.norm(atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]], axis=1)
    np.testing.assert_allclose(lengths, polymer.sigma_angstrom, rtol=1e-12)  # lattice spacing at ρσ³ = 1
    assert atoms.get_volume() == pytest.approx(150 * polymer.sigma_angstrom**3, rel=1e-12)
    with pytest.raises(ValueError, match="near-cubic"):
        build_melt(dataclasses.replace(polymer, beads_per_chain=7, n_chains=1), MolecularConfig())
