"""The fiber network of one SEM frame as a graph: nodes (µm) joined by fiber segments with a length and a diameter.

`network_from_frame` reuses the structural measurement's segmentation (matmcl.features.measure.segment_fibers: info
bar → rough fiber width (wide fibers: the frame is binned) → `fiber_mask` → distance transform → `pruned_skeleton`);
the pipeline's features stage builds the graph from the segmentation it measures on and stores it
(`network_record`, processed/fiber_networks.parquet), so the descriptors stage does not segment the frames again.
The skeleton becomes a graph
with scipy.ndimage labelling (skan is not installed): skeleton pixels with ≥ 3 skeleton neighbours are junction
pixels and each 8-connected cluster of them is one node (at its centroid); pixels with one neighbour are fiber ends
and nodes too. The skeleton without the junction pixels splits into branches; a branch joins the two nodes it
touches (more than two: consecutive ones along the branch's main axis) and becomes one edge with

- `length_um`: its path length, estimated as pixel steps × chord / max(|Δrow|, |Δcol|) (exact for digital
  straight lines, whose step count is their larger extent), at least the chord;
- `diameter_um`: the median of 2·r − 1 px along it (r: distance transform of the mask at the centre line; a
  w-pixel-wide odd digital line has r = (w + 1)/2 on its axis).

A crossing of two fibers skeletonises into two 3-way junctions joined by a bridge about one fiber width long, and
fibers bonded at a crossing act as one rigid joint of that size, so nodes closer than `merge_per_diameter` fiber
diameters are merged (`FiberNetwork.merged`). Coordinates: x = image column (the drum / longitudinal direction,
as in the virtual lab), y = up the image; the box is the measured image area.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from matmcl.features.measure import FiberSegmentation, segment_fibers, usable_area

_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]])
_EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class FiberNetwork:
    """Nodes `xy_um` (n, 2); edges `edges` (m, 2) node indices with `length_um` (path) and `diameter_um`; `box_um`
    (width along x, height along y) of the imaged area, whose lower-left corner is the origin."""

    xy_um: np.ndarray
    edges: np.ndarray
    length_um: np.ndarray
    diameter_um: np.ndarray
    box_um: tuple[float, float]

    def __post_init__(self) -> None:
        if self.edges.size and (self.edges.min() < 0 or self.edges.max() >= len(self.xy_um)):
            raise ValueError("edge refers to a node that does not exist")
        if np.any(self.edges[:, 0] == self.edges[:, 1]):
            raise ValueError("an edge joins a node to itself")
        if np.any(self.diameter_um <= 0) or np.any(self.length_um <= 0):
            raise ValueError("edge lengths and diameters must be positive")

    @property
    def chord_um(self) -> np.ndarray:
        """Straight distance between the two nodes of each edge."""
        return np.linalg.norm(self.xy_um[self.edges[:, 1]] - self.xy_um[self.edges[:, 0]], axis=1)

    def coordination_number(self) -> float:
        """Mean number of edges per node, over nodes with at least one edge (0 without edges)."""
        degree = np.bincount(self.edges.ravel(), minlength=len(self.xy_um))
        return float(degree[degree > 0].mean()) if self.edges.size else 0.0

    def coverage(self) -> float:
        """Projected fiber area per box area, Σ d·l / (W·H) (overlaps at crossings counted twice)."""
        return float(np.sum(self.diameter_um * self.length_um) / (self.box_um[0] * self.box_um[1]))

    def merged(self, merge_per_diameter: float) -> FiberNetwork:
        """Nodes joined by an edge shorter than `merge_per_diameter` × its diameter become one node (mean position);
        self-loops left by the merge are dropped, nodes without edges removed."""
        n = len(self.xy_um)
        if n == 0:
            return self
        short = self.chord_um < merge_per_diameter * self.diameter_um
        pairs = self.edges[short]
        graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, group = csgraph.connected_components(graph, directed=False)
        edges = group[self.edges]
        keep = edges[:, 0] != edges[:, 1]
        used, edges = np.unique(edges[keep], return_inverse=True)
        counts = np.bincount(group, minlength=group.max() + 1)
        xy = np.stack([np.bincount(group, self.xy_um[:, k]) / counts for k in (0, 1)], axis=1)[used]
        return FiberNetwork(xy, edges.reshape(-1, 2), self.length_um[keep], self.diameter_um[keep], self.box_um)


def network_from_segments(segments_um: np.ndarray, diameters_um: np.ndarray, box_um: tuple[float, float]
                          ) -> FiberNetwork:
    """Network of straight fibers `segments_um` (k, 2, 2: end points (x, y)) bonded wherever two of them cross: every
    crossing and every fiber end is a node, every piece of fiber between consecutive nodes an edge."""
    segments_um = np.asarray(segments_um, dtype=float)
    diameters_um = np.asarray(diameters_um, dtype=float)
    start, direction = segments_um[:, 0], segments_um[:, 1] - segments_um[:, 0]
    # fiber i meets fiber j at start_i + s·dir_i = start_j + u·dir_j, 0 ≤ s, u ≤ 1
    cross = direction[:, None, 0] * direction[None, :, 1] - direction[:, None, 1] * direction[None, :, 0]
    gap = start[None, :, :] - start[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (gap[..., 0] * direction[None, :, 1] - gap[..., 1] * direction[None, :, 0]) / cross
        u = (gap[..., 0] * direction[:, None, 1] - gap[..., 1] * direction[:, None, 0]) / cross
    hit = (np.abs(cross) > 1e-12) & (s > 0) & (s < 1) & (u > 0) & (u < 1)
    i_idx, j_idx = np.nonzero(np.triu(hit, 1))
    points = start[i_idx] + s[i_idx, j_idx, None] * direction[i_idx]
    k = len(segments_um)
    n_cross = len(points)
    xy = np.concatenate([points, segments_um[:, 0], segments_um[:, 1]])
    # (fiber, position along it, node) for every node on every fiber
    fiber = np.concatenate([i_idx, j_idx, np.arange(k), np.arange(k)])
    position = np.concatenate([s[i_idx, j_idx], u[i_idx, j_idx], np.zeros(k), np.ones(k)])
    node = np.concatenate([np.arange(n_cross), np.arange(n_cross), n_cross + np.arange(k), n_cross + k + np.arange(k)])
    order = np.lexsort((position, fiber))
    fiber, node = fiber[order], node[order]
    same = fiber[1:] == fiber[:-1]
    edges = np.stack([node[:-1][same], node[1:][same]], axis=1)
    length = np.linalg.norm(xy[edges[:, 1]] - xy[edges[:, 0]], axis=1)
    keep = length > 0
    return FiberNetwork(xy, edges[keep], length[keep], diameters_um[fiber[:-1][same]][keep], tuple(box_um))


def skeleton_network(skeleton: np.ndarray, radius: np.ndarray, pixel_size_um: float) -> FiberNetwork:
    """Graph of a one-pixel-wide skeleton (`radius`: distance transform of its fiber mask), before merging."""
    skeleton = skeleton.astype(bool)
    neighbours = ndimage.convolve(skeleton.astype(np.int8), _NEIGHBOURS, mode="constant")
    junction_labels, n_junctions = ndimage.label(skeleton & (neighbours >= 3), _EIGHT)
    ends = skeleton & (neighbours == 1)
    end_rows, end_cols = np.nonzero(ends)
    branch_labels, n_branches = ndimage.label(skeleton & (junction_labels == 0), _EIGHT)
    jr, jc = np.nonzero(junction_labels)
    cluster = junction_labels[jr, jc] - 1
    count = np.bincount(cluster, minlength=n_junctions)
    centroid = np.c_[np.bincount(cluster, jr, n_junctions), np.bincount(cluster, jc, n_junctions)] / count[:, None]
    node_rc = np.concatenate([centroid, np.c_[end_rows, end_cols].astype(float)])
    # junction clusters touching each branch pixel (a 3 × 3 neighbourhood holds at most a few distinct clusters)
    touch_pairs = []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            shifted = np.roll(np.roll(junction_labels, dr, axis=0), dc, axis=1)
            if dr:
                shifted[0 if dr > 0 else -1, :] = 0
            if dc:
                shifted[:, 0 if dc > 0 else -1] = 0
            rows, cols = np.nonzero((branch_labels > 0) & (shifted > 0))
            touch_pairs.append(np.c_[branch_labels[rows, cols], shifted[rows, cols] - 1, rows, cols])
    touches = np.unique(np.concatenate(touch_pairs), axis=0)
    end_branch = branch_labels[end_rows, end_cols]
    attach = np.concatenate([touches, np.c_[end_branch, n_junctions + np.arange(end_rows.size), end_rows, end_cols]])
    attach = attach[attach[:, 0] > 0]
    pairs = np.unique(attach[:, :2], axis=0)  # distinct (branch, node), sorted by branch
    per_branch = np.bincount(pairs[:, 0], minlength=n_branches + 1)
    pixels = np.bincount(branch_labels.ravel(), minlength=n_branches + 1)
    index = np.arange(1, n_branches + 1)
    br, bc = np.nonzero(branch_labels)
    median = ndimage.median(2.0 * radius[br, bc] - 1.0, branch_labels[br, bc], index) if n_branches else []
    diameter_px = np.maximum(np.r_[0.0, median], 1.0)
    two = pairs[per_branch[pairs[:, 0]] == 2]  # the usual branch: between two nodes
    branch, edges = two[0::2, 0], np.c_[two[0::2, 1], two[1::2, 1]]
    many = []  # branches touching 3+ nodes (junction clusters side by side): consecutive nodes along the main axis
    for b in np.flatnonzero(per_branch > 2):
        mine = attach[attach[:, 0] == b]
        nodes = np.unique(mine[:, 1])
        rows, cols = np.nonzero(branch_labels == b)
        axis = np.linalg.svd(np.c_[rows - rows.mean(), cols - cols.mean()], full_matrices=False)[2][0]
        along = [mine[mine[:, 1] == v, 2:].mean(axis=0) @ axis for v in nodes]
        nodes = nodes[np.argsort(along)]
        many.append(np.c_[np.full(nodes.size - 1, b), nodes[:-1], nodes[1:]])
    many = np.concatenate(many) if many else np.empty((0, 3), int)
    n_two = branch.size
    branch, edges = np.r_[branch, many[:, 0]].astype(int), np.r_[edges, many[:, 1:]].astype(int)
    delta = node_rc[edges[:, 1]] - node_rc[edges[:, 0]]
    chord = np.hypot(delta[:, 0], delta[:, 1])
    steps = pixels[branch] + 1 - (edges >= n_junctions).sum(axis=1)  # an end node is a pixel of its branch
    straight = steps * chord / np.maximum(np.abs(delta).max(axis=1), 1.0)  # digital line: steps = larger extent
    path = np.where(np.arange(branch.size) < n_two, np.maximum(chord, straight), chord)
    keep = chord > 0
    height, width = skeleton.shape
    xy = np.c_[node_rc[:, 1] + 0.5, height - 0.5 - node_rc[:, 0]] * pixel_size_um
    return FiberNetwork(xy, edges[keep], path[keep] * pixel_size_um, diameter_px[branch][keep] * pixel_size_um,
                        (width * pixel_size_um, height * pixel_size_um))


def segmentation_network(segmentation: FiberSegmentation) -> FiberNetwork:
    """Graph of a segmented frame's pruned skeleton, before merging (x: image columns = drum direction)."""
    return skeleton_network(segmentation.skeleton, segmentation.radius, segmentation.pixel_size_nm / 1000.0)


def bonded_network(network: FiberNetwork, merge_per_diameter: float = 1.0) -> FiberNetwork:
    """`network` with nodes closer than `merge_per_diameter` fiber diameters merged; ValueError without edges."""
    network = network.merged(merge_per_diameter)
    if len(network.edges) == 0:
        raise ValueError("no fiber segments found in the image")
    return network


def network_from_frame(image: np.ndarray, pixel_size_nm: float, info_bar: str | int | None = "auto",
                       merge_per_diameter: float = 1.0) -> FiberNetwork:
    """Fiber network of one grayscale SEM frame (x: image columns = drum direction); ValueError without fibers."""
    area, _ = usable_area(image, pixel_size_nm, info_bar)
    return bonded_network(segmentation_network(segment_fibers(area, pixel_size_nm)), merge_per_diameter)


NETWORK_RECORD_KEYS: tuple[str, ...] = ("x_um", "y_um", "edge_a", "edge_b", "length_um", "diameter_um", "box_x_um",
                                        "box_y_um")


def network_record(network: FiberNetwork) -> dict[str, np.ndarray | float]:
    """A network as one table row (NETWORK_RECORD_KEYS; arrays become list cells of a parquet file)."""
    return {"x_um": network.xy_um[:, 0], "y_um": network.xy_um[:, 1], "edge_a": network.edges[:, 0],
            "edge_b": network.edges[:, 1], "length_um": network.length_um, "diameter_um": network.diameter_um,
            "box_x_um": float(network.box_um[0]), "box_y_um": float(network.box_um[1])}


def network_from_record(record: Mapping[str, object]) -> FiberNetwork:
    """The network of a `network_record` row (read back from parquet)."""
    xy = np.c_[np.asarray(record["x_um"], float), np.asarray(record["y_um"], float)].reshape(-1, 2)
    edges = np.c_[np.asarray(record["edge_a"], np.int64), np.asarray(record["edge_b"], np.int64)].reshape(-1, 2)
    return FiberNetwork(xy, edges, np.asarray(record["length_um"], float), np.asarray(record["diameter_um"], float),
                        (float(record["box_x_um"]), float(record["box_y_um"])))
