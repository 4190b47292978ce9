"""Fiber widths from intensity profiles across the centre lines of a fiber mask, one width per fiber segment.

1. Skeleton: `skeletonize` of the mask. Pixels with three or more skeleton neighbours are junctions, pixels with one
   are ends. Removing the junctions splits the skeleton into branches; a branch that ends freely and is shorter than
   `SPUR_PER_WIDTH` local widths is a spur (a bump of the mask edge), an isolated branch shorter than
   `FRAGMENT_PER_WIDTH` widths a fragment (a speck or a sliver of a back layer): both are pruned.
2. Segments: the pruned skeleton without the pixels within one local radius (+1 px) of a junction or of the image
   border, where crossing fibers merge or the frame cuts a fiber. Each connected piece is one fiber segment.
3. Profiles: at up to `MAX_PROFILES` evenly spread segment pixels, the linear grey levels are sampled along the
   normal of the centre line (direction from the segment pixels around it), averaged over `ALONG_SAMPLES` lines
   spread over ±half a width along the fiber (noise). On each side the edge is where the profile, coming in from
   its lowest point (the local background), first reaches half-way between that background and the fiber's peak:
   the half-maximum edge, sub-pixel by linear interpolation. It needs no threshold and no fixed offset, ignores a
   darker core between bright edges (secondary-electron edge effect) and is unbiased under symmetric blur as long
   as the blur is small against the width. Profiles whose peak does not stand `MIN_CONTRAST` of the image's
   contrast above both backgrounds are dropped.
4. A segment's width is the median of its profile widths; its weight is its number of profiles (its length).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

SPUR_PER_WIDTH = 1.0
FRAGMENT_PER_WIDTH = 2.0
MAX_PROFILES = 1000  # profile positions per frame (evenly spread over the segment pixels)
MAX_DIRECTIONS = 100_000  # centre-line directions per frame (every segment pixel up to this many): orientation
PROFILE_SAMPLES = 49  # samples across the fiber
PROFILE_SPAN = 1.2  # half length of a profile in local mask widths (+ PROFILE_MARGIN_PX)
PROFILE_MARGIN_PX = 2.0
ALONG_SAMPLES = 5
DIRECTION_WINDOW = 0.75  # the centre-line direction uses segment pixels within this many widths (at least 3 px)
MIN_LENGTH_PER_WIDTH = 2.0  # shorter segments (bridges inside crossings, stubs) are not measured
MIN_CONTRAST = 0.15  # of the image contrast (95th − 5th percentile)
RIM_EDGE_SHARE = 0.6  # share of a blurred bright rim's excess still present at the fiber's edge (generator)
MAX_RIM = 1.0  # rim excess (peak − middle) / (middle − background) is capped here
_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]])


class FiberWidths(NamedTuple):
    """Per segment: width (px) and weight; per valid profile: position (row, col), half-maximum level and width; per
    segment pixel: the fiber direction (radians, counter-clockwise from x, y up) and the centre-line length it
    stands for."""

    segment_width_px: np.ndarray
    segment_weight: np.ndarray
    points: np.ndarray  # (n, 2) row, col of the profiles kept
    levels: np.ndarray  # half-maximum level of each kept profile
    widths_px: np.ndarray
    angles_rad: np.ndarray
    arc_px: np.ndarray


def pruned_skeleton(mask: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Skeleton of `mask` without spurs and short isolated fragments (`radius`: the mask's distance transform)."""
    skeleton = skeletonize(mask)
    neighbours = ndimage.convolve(skeleton.astype(np.int8), _NEIGHBOURS, mode="constant")
    junctions = skeleton & (neighbours >= 3)
    ends = skeleton & (neighbours == 1)
    labels, n = ndimage.label(skeleton & ~ndimage.binary_dilation(junctions, np.ones((3, 3), bool)),
                              np.ones((3, 3), bool))
    if n == 0:
        return skeleton
    where = np.nonzero(labels)
    label = labels[where]
    length = np.bincount(label, minlength=n + 1)[1:]
    width = np.zeros(n + 1)
    np.maximum.at(width, label, 2.0 * radius[where])
    free_end = np.bincount(label, ends[where], minlength=n + 1)[1:] > 0
    near = ndimage.binary_dilation(junctions, np.ones((5, 5), bool))
    attached = np.bincount(label, near[where], minlength=n + 1)[1:] > 0
    width = width[1:]
    spur = free_end & attached & (length < SPUR_PER_WIDTH * width + 1)
    fragment = ~attached & (length < FRAGMENT_PER_WIDTH * width + 1)
    drop = np.concatenate([[False], spur | fragment])[labels]
    return skeleton & ~drop


def fiber_segments(skeleton: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the skeleton pixels farther than one local radius (+1 px) from junctions and the image border."""
    neighbours = ndimage.convolve(skeleton.astype(np.int8), _NEIGHBOURS, mode="constant")
    junctions = skeleton & (neighbours >= 3)
    keep = skeleton.copy()
    rows, cols = np.nonzero(skeleton)
    local = radius[rows, cols]
    border = np.minimum.reduce([rows, cols, skeleton.shape[0] - 1 - rows, skeleton.shape[1] - 1 - cols])
    far = border > local + 1.0
    if junctions.any():
        jr, jc = np.nonzero(junctions)
        distance, nearest = cKDTree(np.c_[jr, jc]).query(np.c_[rows, cols])
        far &= distance > radius[jr[nearest], jc[nearest]] + 1.0
    keep[rows[~far], cols[~far]] = False
    return ndimage.label(keep, np.ones((3, 3), bool))


def _centre_line_axes(segments: np.ndarray, rows: np.ndarray, cols: np.ndarray, window_px: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (drow, dcol) of the centre line at the given pixels — the minor axis of the pixels of the same
    segment among the nearest 2·window_px skeleton pixels within window_px — and the length of centre line each
    pixel stands for: the span of those pixels along the main axis over their count − 1 (1 px on a straight line
    along an axis, √2 px on a clean diagonal, less where a rough line takes detours)."""
    seg_rows, seg_cols = np.nonzero(segments)
    count = min(int(2 * window_px) + 1, seg_rows.size)
    distance, index = cKDTree(np.c_[seg_rows, seg_cols]).query(np.c_[rows, cols], k=count,
                                                                distance_upper_bound=window_px)
    found = np.isfinite(distance)
    index = np.where(found, index, 0)
    same = found & (segments[seg_rows[index], seg_cols[index]] == segments[rows, cols][:, None])
    n_same = same.sum(axis=1)
    weight = same / np.maximum(n_same, 1)[:, None]
    dy, dx = seg_rows[index] - rows[:, None], seg_cols[index] - cols[:, None]
    my, mx = (weight * dy).sum(1), (weight * dx).sum(1)
    cyy, cxx = (weight * dy * dy).sum(1) - my**2, (weight * dx * dx).sum(1) - mx**2
    cxy = (weight * dx * dy).sum(1) - mx * my
    along = 0.5 * np.arctan2(2 * cxy, cxx - cyy)  # angle of the main axis in (col, row) coordinates
    projection = dx * np.cos(along)[:, None] + dy * np.sin(along)[:, None]
    span = np.where(same, projection, -np.inf).max(axis=1) - np.where(same, projection, np.inf).min(axis=1)
    straight = 1.0 / np.maximum(np.abs(np.cos(along)), np.abs(np.sin(along)))  # a clean 8-connected line
    arc = np.where(n_same > 1, span / np.maximum(n_same - 1, 1), straight)
    return np.stack([np.cos(along), -np.sin(along)], axis=1), arc  # normal (drow, dcol) ⟂ (sin, cos)


def _half_max_widths(profiles: np.ndarray, step: np.ndarray, core: np.ndarray, contrast: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Edge-to-edge width (px) and edge level of each profile; NaN where a side has no clear edge.

    Without a rim the edge is at half maximum. A bright rim (peak above the fiber's middle by ρ·(middle −
    background)) that the blur spreads over the edge lifts the profile there by about RIM_EDGE_SHARE·ρ, so the
    edge level is background + (½ + RIM_EDGE_SHARE·ρ)/(1 + ρ)·(peak − background)."""
    n, m = profiles.shape
    centre = m // 2
    idx = np.arange(m)
    offset = np.abs(idx - centre)[None, :]
    peak = np.where(offset <= core[:, None], profiles, -np.inf).max(axis=1)
    inner_core = offset <= np.maximum(core // 3, 1)[:, None]
    middle = np.nanmedian(np.where(inner_core, profiles, np.nan), axis=1)
    widths = np.zeros(n)
    levels = np.zeros(n)
    valid = np.ones(n, bool)
    for side in (slice(centre, None), slice(centre, None, -1)):
        prof = profiles[:, side]
        pos = np.arange(prof.shape[1])[None, :]
        outer = np.where(pos >= core[:, None] * 0.5, prof, np.inf)
        lowest = outer.argmin(axis=1)
        background = prof[np.arange(n), lowest]
        rim = np.clip((peak - middle) / np.maximum(middle - background, 1e-12), 0, MAX_RIM)
        level = background + (0.5 + RIM_EDGE_SHARE * rim) / (1 + rim) * (peak - background)
        above = (prof >= level[:, None]) & (pos < lowest[:, None])
        k = np.where(above, pos, -1).max(axis=1)
        ok = (k >= 0) & (peak - background >= MIN_CONTRAST * contrast)
        k = np.clip(k, 0, prof.shape[1] - 2)
        inner, outer_value = prof[np.arange(n), k], prof[np.arange(n), k + 1]
        fraction = np.clip((inner - level) / np.maximum(inner - outer_value, 1e-12), 0, 1)
        widths += (k + fraction) * step
        levels += 0.5 * level
        valid &= ok
    widths[~valid] = np.nan
    return widths, levels


def profile_widths(image: np.ndarray, skeleton: np.ndarray, radius: np.ndarray, width_px: float, contrast: float
                   ) -> FiberWidths:
    """Per-segment fiber widths (px) of `image` (linear grey levels) along the centre lines of a fiber mask
    (`skeleton`: its `pruned_skeleton`; `radius`: its distance transform; `width_px`: the rough fiber width), and the
    centre-line directions of the segments."""
    segments, n_segments = fiber_segments(skeleton, radius)
    all_rows, all_cols = np.nonzero(segments)
    empty = FiberWidths(np.empty(0), np.empty(0), np.empty((0, 2)), np.empty(0), np.empty(0), np.empty(0), np.empty(0))
    if all_rows.size == 0:
        return empty
    every = max(1, int(np.ceil(all_rows.size / MAX_DIRECTIONS)))
    all_rows, all_cols = all_rows[::every], all_cols[::every]
    all_normals, arc = _centre_line_axes(segments, all_rows, all_cols, max(3.0, DIRECTION_WINDOW * width_px))
    all_tangents = np.stack([-all_normals[:, 1], all_normals[:, 0]], axis=1)  # (drow, dcol)
    angles = -np.arctan2(all_tangents[:, 0], all_tangents[:, 1])  # y up flips the row sign
    every = max(1, int(np.ceil(all_rows.size / MAX_PROFILES)))  # the profiles: a subset of the direction points
    rows, cols, normal, tangent = (a[::every] for a in (all_rows, all_cols, all_normals, all_tangents))
    local_width = np.maximum(2.0 * radius[rows, cols], 1.0)
    half_span = PROFILE_SPAN * local_width + PROFILE_MARGIN_PX
    step = 2 * half_span / (PROFILE_SAMPLES - 1)
    across = np.linspace(-1, 1, PROFILE_SAMPLES)[None, :] * half_span[:, None]
    along = np.linspace(-0.5, 0.5, ALONG_SAMPLES)[:, None, None] * local_width[None, :, None]
    r = rows[None, :, None] + across[None] * normal[None, :, 0:1] + along * tangent[None, :, 0:1]
    c = cols[None, :, None] + across[None] * normal[None, :, 1:2] + along * tangent[None, :, 1:2]
    samples = ndimage.map_coordinates(image, [r.ravel(), c.ravel()], order=1, mode="nearest")
    profiles = samples.reshape(ALONG_SAMPLES, rows.size, PROFILE_SAMPLES).mean(axis=0)
    core = np.ceil(0.6 * local_width / step).astype(int)
    widths, levels = _half_max_widths(profiles, step, core, contrast)
    good = np.isfinite(widths)
    if not good.any():
        return empty
    label, inverse = np.unique(segments[rows[good], cols[good]], return_inverse=True)
    medians = _group_medians(widths[good], inverse)
    length = np.bincount(segments.ravel())[label].astype(float)
    long_enough = length >= MIN_LENGTH_PER_WIDTH * medians
    points = np.stack([rows[good], cols[good]], axis=1).astype(float)
    return FiberWidths(medians[long_enough], length[long_enough], points, levels[good], widths[good], angles, arc)


def _group_medians(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Median of `values` per group index 0..max(groups)."""
    order = np.lexsort((values, groups))
    groups, values = groups[order], values[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    counts = np.diff(np.r_[starts, groups.size])
    return 0.5 * (values[starts + (counts - 1) // 2] + values[starts + counts // 2])
