"""Linear 2-D finite-element solve of a fiber network under uniaxial strain (scipy.sparse assembly + direct solve).

Every edge is a straight element between its nodes, fiber modulus E = 1 (all moduli are relative to E):

- `truss`: axial stiffness E·A/L only, A = π d²/4; 2 DOF (u_x, u_y) per node, pin joints.
- `frame` (default): Euler–Bernoulli beam, axial E·A/L plus bending E·I/L³, I = π d⁴/64; 3 DOF (u_x, u_y, θ) per
  node, rigid (bonded) joints.

Loading along x (`axis=0`, the drum direction) or y (`axis=1`): nodes within the grip depth of the two box edges
normal to the axis are clamped to the affine field u_axis = ε·x_axis, u_other = 0 (θ = 0), the other two edges are
free (`lateral="free"`, a tensile test) or, for validation, also held to that field (`lateral="affine"`, uniaxial
strain, whose affine energy is Cox's C11 = E·φ·⟨cos⁴θ⟩ for straight fibers spanning the box). The effective
modulus is the reaction force of the far grip over ε × box width across the load × reference thickness t, with
t = Σ A·l / Σ d·l: the thickness of a slab holding the fiber volume over the projected fiber area, so that straight
fibers aligned with the load give exactly E_eff = E·φ (φ = Σ d·l / box area, the Voigt bound).

Floppy parts (pin-jointed trusses below isostatic coordination, pieces touching one grip or none) are regularised
by a spring to ground on every DOF of `regularisation` × the mean diagonal stiffness of that DOF type (1e-9 by
default): the system is then positive definite, the solve finite and deterministic, and a mechanism carries a
force of that order only — a floppy network reads E_eff ≈ 0, as it should. The springs are left out of the reaction
and of the edge energies. Without a path of fibers from grip to grip the modulus is 0 (and nothing is solved).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse.linalg import spsolve

from matmcl.multiscale.network import FiberNetwork

MODELS = ("frame", "truss")


@dataclass(frozen=True)
class UniaxialResult:
    """Effective modulus (relative to the fiber modulus), per-edge axial force (tension > 0, units E·µm²) and strain
    energy (E·µm³ at the applied strain), and the node displacements (n, DOF per node)."""

    modulus_rel: float
    axial_force: np.ndarray
    edge_energy: np.ndarray
    displacement: np.ndarray


def reference_thickness_um(network: FiberNetwork) -> float:
    """t = Σ A·l / Σ d·l = (π/4)·⟨d²⟩/⟨d⟩ (length-weighted): fiber volume per projected fiber area."""
    d, l = network.diameter_um, network.length_um
    return float(np.pi / 4 * np.sum(d * d * l) / np.sum(d * l))


def _element_matrices(network: FiberNetwork, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global element stiffness matrices (m, k, k), the local→global rotation (m, k, k) and local matrices (m, k, k)."""
    delta = network.xy_um[network.edges[:, 1]] - network.xy_um[network.edges[:, 0]]
    length = np.linalg.norm(delta, axis=1)
    c, s = delta[:, 0] / length, delta[:, 1] / length
    d = network.diameter_um
    axial = np.pi / 4 * d**2 / length
    m = len(length)
    if model == "truss":
        local = np.zeros((m, 4, 4))
        local[:, 0, 0] = local[:, 2, 2] = axial
        local[:, 0, 2] = local[:, 2, 0] = -axial
        rot = np.zeros((m, 4, 4))
        for k in (0, 2):
            rot[:, k, k] = rot[:, k + 1, k + 1] = c
            rot[:, k, k + 1], rot[:, k + 1, k] = s, -s
    else:
        bend = np.pi / 64 * d**4 / length**3
        L = length
        local = np.zeros((m, 6, 6))
        for a, b, value in [(0, 0, axial), (3, 3, axial), (0, 3, -axial),
                            (1, 1, 12 * bend), (4, 4, 12 * bend), (1, 4, -12 * bend),
                            (1, 2, 6 * bend * L), (1, 5, 6 * bend * L), (2, 4, -6 * bend * L), (4, 5, -6 * bend * L),
                            (2, 2, 4 * bend * L**2), (5, 5, 4 * bend * L**2), (2, 5, 2 * bend * L**2)]:
            local[:, a, b] = local[:, b, a] = value
        rot = np.zeros((m, 6, 6))
        for k in (0, 3):
            rot[:, k, k] = rot[:, k + 1, k + 1] = c
            rot[:, k, k + 1], rot[:, k + 1, k] = s, -s
            rot[:, k + 2, k + 2] = 1.0
    return np.einsum("eji,ejk,ekl->eil", rot, local, rot), rot, local


def solve_uniaxial(network: FiberNetwork, axis: int, model: str = "frame", strain: float = 1e-3,
                   grip_fraction: float = 0.02, lateral: str = "free", regularisation: float = 1e-9
                   ) -> UniaxialResult:
    """Uniaxial strain `strain` along `axis` (0: x, 1: y); the grips hold the nodes within `grip_fraction` of the
    box length along the axis plus the largest fiber diameter of either edge. Elements shorter than their diameter
    are outside beam theory: merge such nodes first (`FiberNetwork.merged`)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if lateral not in ("free", "affine"):
        raise ValueError(f"lateral must be 'free' or 'affine', got {lateral!r}")
    n, m = len(network.xy_um), len(network.edges)
    if m == 0:
        raise ValueError("the network has no edges")
    per_node = 2 if model == "truss" else 3
    box = np.asarray(network.box_um, dtype=float)
    grip_um = grip_fraction * box[axis] + float(network.diameter_um.max())
    k_global, rot, local = _element_matrices(network, model)
    dofs = (per_node * network.edges[:, :, None] + np.arange(per_node)[None, None, :]).reshape(m, -1)
    rows = np.repeat(dofs, dofs.shape[1], axis=1).ravel()
    cols = np.tile(dofs, (1, dofs.shape[1])).ravel()
    size = per_node * n
    stiffness = sparse.coo_matrix((k_global.ravel(), (rows, cols)), shape=(size, size)).tocsr()
    diagonal = stiffness.diagonal().reshape(n, per_node)
    ground = regularisation * np.maximum(diagonal.mean(axis=0), np.finfo(float).tiny)
    regularised = (stiffness + sparse.diags(np.tile(ground, n))).tocsc()

    coord = network.xy_um[:, axis]
    low, high = coord <= grip_um, coord >= box[axis] - grip_um
    adjacency = sparse.coo_matrix((np.ones(m), (network.edges[:, 0], network.edges[:, 1])), shape=(n, n))
    component = csgraph.connected_components(adjacency, directed=False)[1]
    if not np.intersect1d(component[low], component[high]).size:  # no path of fibers from grip to grip
        zero = np.zeros(m)
        return UniaxialResult(0.0, zero, zero, np.zeros((n, per_node)))
    held = low | high
    if lateral == "affine":
        other = network.xy_um[:, 1 - axis]
        held |= (other <= grip_um) | (other >= box[1 - axis] - grip_um)
    prescribed = np.zeros((n, per_node), bool)
    prescribed[held] = True
    u = np.zeros((n, per_node))
    u[held, axis] = strain * coord[held]
    fixed = prescribed.ravel()
    free = ~fixed
    u_flat = u.ravel()
    if free.any():
        rhs = -regularised[free][:, fixed] @ u_flat[fixed]
        u_flat[free] = spsolve(regularised[free][:, free], rhs)
    force = stiffness @ u_flat
    reaction = float(force.reshape(n, per_node)[high, axis].sum())
    width = box[1 - axis]
    modulus = float(reaction / (strain * width * reference_thickness_um(network)))
    u_edge = u_flat[dofs]
    local_force = np.einsum("eij,ejk,ek->ei", local, rot, u_edge)
    axial = local_force[:, per_node]  # the axial force at the second node, tension positive
    energy = 0.5 * np.einsum("ei,eij,ej->e", u_edge, k_global, u_edge)
    return UniaxialResult(modulus, axial, energy, u_flat.reshape(n, per_node))


def load_bearing_fraction(axial_force: np.ndarray, threshold: float = 0.01) -> float:
    """Share of edges whose |axial force| is at least `threshold` × the mean |axial force| of all edges."""
    magnitude = np.abs(axial_force)
    mean = magnitude.mean() if magnitude.size else 0.0
    return float(np.mean(magnitude >= threshold * mean)) if mean > 0 else 0.0


def energy_gini(energy: np.ndarray) -> float:
    """Gini coefficient of the per-edge strain energy: 0 when all edges store the same, → 1 when one stores all."""
    values = np.sort(np.clip(energy, 0, None))
    total = values.sum()
    if values.size == 0 or total <= 0:
        return 0.0
    rank = np.arange(1, values.size + 1)
    return float(np.sum((2 * rank - values.size - 1) * values) / (values.size * total))
