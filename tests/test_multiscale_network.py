"""Fiber-network mechanics (matmcl.multiscale) against analytic answers, and networks measured from synthetic frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matmcl.features.measure import measure_and_segment, measure_frame
from matmcl.features.synthetic import Look, MatSpec, render
from matmcl.multiscale.descriptors import (DESCRIPTOR_KEYS, NetworkConfig, film_descriptors, graph_descriptors,
                                          network_descriptors)
from matmcl.multiscale.mechanics import energy_gini, load_bearing_fraction, reference_thickness_um, solve_uniaxial
from matmcl.multiscale.network import (bonded_network, network_from_frame, network_from_record, network_from_segments,
                                      network_record, segmentation_network, skeleton_network)

STRAIN = 1e-3


def clip_to_box(segments: np.ndarray, box: float) -> np.ndarray:
    """The parts of straight segments (k, 2, 2) inside the square [0, box]² (Liang–Barsky)."""
    start, direction = segments[:, 0], segments[:, 1] - segments[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_low, t_high = (0 - start) / direction, (box - start) / direction
    enter = np.nanmax(np.c_[np.minimum(t_low, t_high), np.zeros(len(start))], axis=1)
    leave = np.nanmin(np.c_[np.maximum(t_low, t_high), np.ones(len(start))], axis=1)
    inside = leave > enter
    return np.stack([start + enter[:, None] * direction, start + leave[:, None] * direction], axis=1)[inside]


def random_fibers(n: int, length: float, box: float, seed: int) -> np.ndarray:
    """`n` straight fibers of `length`, uniform centres and directions (isotropic Mikado), clipped to the box."""
    rng = np.random.default_rng(seed)
    centre, angle = rng.uniform(0, box, (n, 2)), rng.uniform(0, np.pi, n)
    half = 0.5 * length * np.c_[np.cos(angle), np.sin(angle)]
    return clip_to_box(np.stack([centre - half, centre + half], axis=1), box)


def square_lattice(n: int, spacing: float, diameter: float):
    box = n * spacing
    lines = [[[0, (k + 0.5) * spacing], [box, (k + 0.5) * spacing]] for k in range(n)]
    lines += [[[(k + 0.5) * spacing, 0], [(k + 0.5) * spacing, box]] for k in range(n)]
    return network_from_segments(np.array(lines, float), np.full(2 * n, diameter), (box, box))


@pytest.mark.parametrize("model", ["truss", "frame"])
def test_square_lattice_modulus_is_EA_over_spacing_and_thickness(model):
    spacing, diameter = 2.0, 0.3
    network = square_lattice(6, spacing, diameter)
    expected = np.pi / 4 * diameter**2 / (spacing * reference_thickness_um(network))  # = φ/2 = 0.15
    assert expected == pytest.approx(0.15)
    moduli = [solve_uniaxial(network, axis, model, STRAIN).modulus_rel for axis in (0, 1)]
    assert moduli == pytest.approx([expected, expected], rel=1e-6)
    assert network.coordination_number() == pytest.approx(2 * 84 / 60)  # 36 four-fold, 24 one-fold nodes


def test_aligned_fibers_reach_the_voigt_bound_along_and_nothing_across():
    rng = np.random.default_rng(1)
    box = 10.0
    y = rng.uniform(2.0, 8.0, 25)
    diameters = rng.uniform(0.05, 0.3, 25)
    network = network_from_segments(np.stack([np.c_[np.zeros(25), y], np.c_[np.full(25, box), y]], axis=1),
                                    diameters, (box, box))
    phi = diameters.sum() / box  # Σ d·l / box area with l = box
    assert network.coverage() == pytest.approx(phi)
    for model in ("truss", "frame"):
        along = solve_uniaxial(network, 0, model, STRAIN)
        assert along.modulus_rel == pytest.approx(phi, rel=1e-6)  # Voigt: E·φ
        assert along.axial_force == pytest.approx(np.pi / 4 * diameters**2 * STRAIN, rel=1e-6)  # E·A·ε each
        assert load_bearing_fraction(along.axial_force) == 1.0
        assert solve_uniaxial(network, 1, model, STRAIN).modulus_rel == 0.0  # no fiber reaches the y grips
    halves = network_from_segments(np.array([[[0, 5], [4, 5]], [[6, 5], [10, 5]]], float), [0.2, 0.2], (box, box))
    assert solve_uniaxial(halves, 0, "frame", STRAIN).modulus_rel == 0.0  # each grip holds a piece, no path between


def test_long_random_truss_under_uniaxial_strain_stores_cox_energy():
    """Straight fibers spanning the box, held to the affine field on all edges: the affine state is the exact
    equilibrium (each fiber carries one tension through every crossing) and C11 = E·φ·⟨cos⁴θ⟩ (Cox 1952), whose
    isotropic mean is 3/8·E·φ (the Young's modulus with free sides is E·φ/3)."""
    box = 20.0
    network = network_from_segments(random_fibers(60, 200.0, box, seed=0), np.full(60, 0.1), (box, box))
    delta = network.xy_um[network.edges[:, 1]] - network.xy_um[network.edges[:, 0]]
    cos2 = (delta[:, 0] / network.chord_um) ** 2
    weight = network.diameter_um**2 * network.length_um
    volume = box * box * reference_thickness_um(network)
    phi = network.coverage()
    for axis, c2 in ((0, cos2), (1, 1 - cos2)):
        energy = solve_uniaxial(network, axis, "truss", STRAIN, lateral="affine").edge_energy.sum()
        c11 = 2 * energy / (STRAIN**2 * volume)
        assert c11 == pytest.approx(phi * np.sum(weight * c2**2) / weight.sum(), rel=1e-6)
        assert c11 == pytest.approx(3 / 8 * phi, rel=0.1)  # isotropic within sampling error


def test_mikado_frame_is_bending_dominated_and_stiffens_steeply_with_density():
    """Bonded Mikado networks (fibers of length ℓ, diameter d): a pin-jointed truss is floppy (z < 4, E ≈ 0); with
    bending the modulus rises much faster than the density above rigidity percolation (E ∝ ρ^x, x ≈ 5–7 in the
    bending-dominated regime: Head, Levine & MacKintosh 2003; Wilhelm & Frey 2003) and approaches the affine
    Cox value E·φ/3 from below; isotropic: L/T ≈ 1."""
    box, length = 20.0, 5.0
    results = {}
    for n in (200, 400):
        sums = np.zeros(3)
        for seed in (0, 1):
            network = network_from_segments(random_fibers(n, length, box, seed), np.full(n, 0.05), (box, box))
            network = network.merged(1.0)
            sums += [network.coverage()] + [solve_uniaxial(network, axis, "frame", STRAIN).modulus_rel
                                            for axis in (0, 1)]
            if n == 200 and seed == 0:
                truss = solve_uniaxial(network, 0, "truss", STRAIN).modulus_rel
                assert 0 <= truss < 1e-4 * network.coverage()
        results[n] = sums / 2
    (phi_low, l_low, t_low), (phi_high, l_high, t_high) = results[200], results[400]
    exponent = np.log((l_high + t_high) / (l_low + t_low)) / np.log(phi_high / phi_low)
    assert exponent > 3
    assert 0 < (l_high + t_high) / 2 < phi_high / 3
    assert 0.75 < l_high / t_high < 1.33


def test_plus_shaped_skeleton_gives_one_junction_four_arms():
    skeleton = np.zeros((41, 41), bool)
    skeleton[20, 5:36] = True
    skeleton[5:36, 20] = True
    radius = np.where(skeleton, 2.0, 0.0)  # a 3-pixel-wide mask: d = 2·r − 1 = 3 px
    network = skeleton_network(skeleton, radius, 0.1)
    assert len(network.xy_um) == 5 and len(network.edges) == 4
    assert network.length_um == pytest.approx(np.full(4, 1.5))  # 15 px arms of 0.1 µm
    assert network.diameter_um == pytest.approx(np.full(4, 0.3))
    assert network.coordination_number() == pytest.approx(8 / 5)
    diagonal = skeleton_network(np.eye(30, dtype=bool), np.ones((30, 30)), 0.1)  # one straight branch, two ends
    assert len(diagonal.edges) == 1 and diagonal.length_um[0] == pytest.approx(29 * np.sqrt(2) * 0.1)


LOOK = Look(electrons=25.0, psf_px=0.7)


def synthetic_frame(seed: int, **spec) -> np.ndarray:
    defaults = dict(field_nm=(6400.0, 6400.0), width_mean_nm=160.0, coverage=0.7, n_layers=2, seed=seed)
    return render(MatSpec(**{**defaults, **spec}), 20.0, LOOK).image


def test_frames_of_the_independent_generator_give_the_anisotropy_trend():
    aligned = network_descriptors(synthetic_frame(1, kappa=4.0), 20.0, "none")
    turned = network_descriptors(synthetic_frame(1, kappa=4.0, mean_angle_deg=90.0), 20.0, "none")
    isotropic = film_descriptors([synthetic_frame(s, balanced=True) for s in (2, 3)], 20.0, "none")
    assert set(DESCRIPTOR_KEYS) <= set(aligned)
    assert all(np.isfinite(aligned[key]) for key in DESCRIPTOR_KEYS)
    assert aligned["anisotropy_ratio"] > 5  # x (drum) = fiber direction: stiff along
    assert turned["anisotropy_ratio"] < 0.2
    assert 0.7 < isotropic["anisotropy_ratio"] < 1.4 and isotropic["n_frames"] == 2
    assert 2.5 < aligned["coordination_number"] < 4.5
    assert 0 < aligned["load_bearing_fraction_L"] <= 1 and 0 < aligned["energy_concentration_L"] < 1
    again = network_descriptors(synthetic_frame(1, kappa=4.0), 20.0, "none")
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in aligned.items() if k != "seconds"}


def test_stored_graph_gives_the_descriptors_of_the_frame(tmp_path):
    """The features stage stores each frame's unmerged graph (one parquet row, list cells) from the segmentation it
    measured on; the descriptors computed from the stored row equal those of the frame itself, exactly."""
    image = synthetic_frame(4, kappa=2.0)
    measured, segmentation = measure_and_segment(image, 20.0, "none")
    assert measured == measure_frame(image, 20.0, "none")
    pd.DataFrame([network_record(segmentation_network(segmentation))]).to_parquet(tmp_path / "networks.parquet")
    stored = network_from_record(pd.read_parquet(tmp_path / "networks.parquet").iloc[0].to_dict())
    direct = network_from_frame(image, 20.0, "none")
    for name in ("xy_um", "edges", "length_um", "diameter_um"):
        np.testing.assert_array_equal(getattr(bonded_network(stored), name), getattr(direct, name))
    drop = lambda d: {k: v for k, v in d.items() if k != "seconds"}  # noqa: E731
    assert drop(graph_descriptors(stored)) == drop(network_descriptors(image, 20.0, "none"))


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="non-empty 2-D"):
        network_from_frame(np.zeros((0, 0)), 20.0)
    with pytest.raises(ValueError, match="flat"):
        network_from_frame(np.full((200, 200), 80, np.uint8), 20.0, "none")
    with pytest.raises(ValueError, match="pixel size"):
        network_from_frame(np.zeros((50, 50)), -1.0)
    with pytest.raises(ValueError, match="model"):
        NetworkConfig(model="shell")


def test_energy_concentration_and_load_bearing_share():
    assert energy_gini(np.ones(10)) == pytest.approx(0.0)
    assert energy_gini(np.r_[np.zeros(9), 1.0]) == pytest.approx(0.9)
    assert load_bearing_fraction(np.r_[np.ones(9), 0.0]) == pytest.approx(0.9)


def test_image_without_fibers_raises():
    ramp = np.tile(np.arange(200, dtype=np.uint8), (200, 1))  # a brightness ramp: no fiber, no skeleton
    with pytest.raises(ValueError, match="no fiber segments"):
        network_from_frame(ramp, 20.0, "none")
