"""Continuum descriptors of the fiber network seen in one SEM frame, and their film means (docs/multiscale.md).

Per frame: the network (`network_from_frame`, or `graph_descriptors` on the graph the features stage stored), two
uniaxial solves (`solve_uniaxial`, x = drum / longitudinal = L, y = transverse = T) and from them the effective
stiffnesses relative to the fiber modulus, their ratio, the mean coordination number, the load-bearing fraction and
the strain-energy concentration (Gini) in each direction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from matmcl.multiscale.mechanics import MODELS, energy_gini, load_bearing_fraction, solve_uniaxial
from matmcl.multiscale.network import FiberNetwork, bonded_network, network_from_frame

DESCRIPTOR_KEYS: tuple[str, ...] = (
    "stiffness_L_rel", "stiffness_T_rel", "anisotropy_ratio", "coordination_number", "coverage",
    "load_bearing_fraction_L", "load_bearing_fraction_T", "energy_concentration_L", "energy_concentration_T",
    "n_nodes", "n_edges", "seconds",
)


@dataclass(frozen=True)
class NetworkConfig:
    """Parameters of the network descriptors.

    model: "frame" (bonded joints, bending; default: a skeleton's 3-way junctions leave a pin-jointed truss floppy)
        or "truss".
    strain: applied uniaxial strain (linear solve: the moduli do not depend on it).
    grip_fraction: grip depth as a share of the box length along the load (plus the largest fiber diameter).
    merge_per_diameter: nodes closer than this many fiber diameters are one joint (a crossing's two junctions).
    load_threshold: an edge bears load when its |axial force| ≥ this × the mean |axial force|.
    regularisation: ground springs as a share of the mean diagonal stiffness (keeps mechanisms finite).
    """

    model: str = "frame"
    strain: float = 1e-3
    grip_fraction: float = 0.02
    merge_per_diameter: float = 1.0
    load_threshold: float = 0.01
    regularisation: float = 1e-9

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")


def describe_network(network: FiberNetwork, config: NetworkConfig = NetworkConfig()) -> dict[str, float]:
    """Descriptors of a built network (all keys of DESCRIPTOR_KEYS except `seconds`)."""
    result: dict[str, float] = {
        "coordination_number": network.coordination_number(), "coverage": network.coverage(),
        "n_nodes": int(len(network.xy_um)), "n_edges": int(len(network.edges)),
    }
    for axis, name in ((0, "L"), (1, "T")):
        solved = solve_uniaxial(network, axis, config.model, config.strain, config.grip_fraction,
                                regularisation=config.regularisation)
        result[f"stiffness_{name}_rel"] = solved.modulus_rel
        result[f"load_bearing_fraction_{name}"] = load_bearing_fraction(solved.axial_force, config.load_threshold)
        result[f"energy_concentration_{name}"] = energy_gini(solved.edge_energy)
    transverse = result["stiffness_T_rel"]
    result["anisotropy_ratio"] = result["stiffness_L_rel"] / transverse if transverse > 0 else float("nan")
    return result


def network_descriptors(image: np.ndarray, pixel_size_nm: float, info_bar: str | int | None = "auto",
                        config: NetworkConfig = NetworkConfig()) -> dict[str, float]:
    """Descriptors (DESCRIPTOR_KEYS) of one grayscale SEM frame whose x axis is the drum direction."""
    start = time.perf_counter()
    network = network_from_frame(image, pixel_size_nm, info_bar, config.merge_per_diameter)
    return _with_seconds(describe_network(network, config), start)


def graph_descriptors(network: FiberNetwork, config: NetworkConfig = NetworkConfig()) -> dict[str, float]:
    """Descriptors (DESCRIPTOR_KEYS) of a frame's unmerged graph (`segmentation_network`, as the features stage
    stores it); ValueError when no edge is left after merging."""
    start = time.perf_counter()
    return _with_seconds(describe_network(bonded_network(network, config.merge_per_diameter), config), start)


def _with_seconds(result: dict[str, float], start: float) -> dict[str, float]:
    result["seconds"] = time.perf_counter() - start
    return {key: result[key] for key in DESCRIPTOR_KEYS}


def film_descriptors(frames: Iterable[np.ndarray], pixel_size_nm: float, info_bar: str | int | None = "auto",
                     config: NetworkConfig = NetworkConfig()) -> dict[str, float]:
    """Mean of the frame descriptors over a film's frames (`seconds`: the total; the anisotropy ratio is the ratio
    of the mean stiffnesses, steadier than a mean of ratios); `n_frames` counts the frames."""
    rows = [network_descriptors(frame, pixel_size_nm, info_bar, config) for frame in frames]
    if not rows:
        raise ValueError("a film needs at least one frame")
    result = {key: float(np.mean([row[key] for row in rows])) for key in DESCRIPTOR_KEYS}
    result["seconds"] = float(np.sum([row["seconds"] for row in rows]))
    transverse = result["stiffness_T_rel"]
    result["anisotropy_ratio"] = result["stiffness_L_rel"] / transverse if transverse > 0 else float("nan")
    result["n_frames"] = len(rows)
    return result
