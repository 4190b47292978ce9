"""SEM rendering of a nanofiber mat: fibers in depth layers, secondary-electron contrast, beads, bonded junctions,
and the imaging defects (brightness/contrast drift, defocus, charging streaks, shot noise) that histogram matching
has to undo. Returns the frame with its info bar and the ground truth measured on the noise-free render.

Coordinates: x to the right, y downwards in the array; angles are counter-clockwise from the x axis as displayed
(the drum direction is x), so a direction vector is (cos θ, -sin θ) in (x, y) array coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from matmcl.features.pores import open_area_fraction, pore_size_um
from matmcl.lab.physics import kappa_for_order


@dataclass(frozen=True)
class SEMLook:
    """Constants of the virtual microscope and of the mat's appearance."""

    n_layers: int = 4
    fiber_length_density: float = 4.0  # λ in L_A·d = λ(1 - porosity): projected fiber length per area
    point_spacing_px: float = 0.5
    undulation_wavelength_um: tuple[float, float] = (1.2, 2.5)
    curl_slope: float = 0.03
    background_level: float = 0.07
    background_variation: float = 0.03
    fiber_center_level: float = 0.55
    edge_gain: float = 0.45
    depth_attenuation: float = 0.55
    depth_blur_px: float = 1.2
    weld_blur_fraction: float = 0.5  # junction fillet blur radius as a share of bonding × mean fiber radius
    weld_ramp: float = 0.15  # blurred coverage above 0.5 turns into fillet over this range
    min_weld_blur_px: float = 0.5
    bead_length_radii: tuple[float, float] = (5.0, 9.0)
    bead_width_radii: tuple[float, float] = (2.5, 4.5)
    gain_range: tuple[float, float] = (0.75, 1.15)
    offset_range: tuple[float, float] = (-0.04, 0.08)
    gamma_range: tuple[float, float] = (0.85, 1.2)
    defocus_px: tuple[float, float] = (0.3, 0.8)
    streak_probability: float = 0.3
    streaks_per_frame: tuple[int, int] = (1, 4)  # integers drawn in [low, high)
    streak_rows: tuple[int, int] = (2, 6)
    streak_gain: tuple[float, float] = (0.05, 0.15)
    streak_decay: tuple[float, float] = (0.2, 0.8)  # e-folding length as a share of the frame width
    electrons_per_unit: float = 40.0
    read_noise: float = 0.01
    coverage_threshold: float = 0.5


LOOK = SEMLook()
HAZE_CELL_PX = 32  # the background's brightness varies over this many pixels


@dataclass
class FiberPoints:
    """Centerline samples of all fibers in a frame (one entry per sample point)."""

    x: np.ndarray
    y: np.ndarray
    tx: np.ndarray  # unit tangent
    ty: np.ndarray
    radius_px: np.ndarray
    layer: np.ndarray
    fiber: np.ndarray


def _lognormal(rng: np.random.Generator, mean: float, cv: float, n: int) -> np.ndarray:
    sigma = np.sqrt(np.log1p(cv**2))
    return rng.lognormal(np.log(mean) - sigma**2 / 2, sigma, n)


def draw_fibers(film: dict, height: int, width: int, pixel_size_nm: float, rng: np.random.Generator,
                look: SEMLook = LOOK) -> FiberPoints:
    """Random long fibers crossing the frame until the projected length density matches the film's porosity."""
    d_px = film["diameter_mean_nm"] / pixel_size_nm
    target_length = look.fiber_length_density * (1 - film["porosity"]) / d_px * height * width
    half = 0.5 * np.hypot(height, width) + 4 * d_px
    kappa = float(kappa_for_order(np.array([film["base_order"]]))[0])
    s = np.arange(-half, half, look.point_spacing_px)
    xs, ys, txs, tys, radii, layers, fibers = [], [], [], [], [], [], []
    inside_length, index = 0.0, 0
    while inside_length < target_length:
        theta = np.deg2rad(film["mean_angle_deg"]) + 0.5 * rng.vonmises(0.0, kappa)
        ux, uy = np.cos(theta), -np.sin(theta)
        nx, ny = -uy, ux
        rho = rng.uniform(-half, half)
        wavelength = rng.uniform(*look.undulation_wavelength_um) * 1000 / pixel_size_nm
        k = 2 * np.pi / wavelength
        amp = film["waviness"] / k
        curl_k = k * rng.uniform(0.2, 0.5)
        curl_amp = look.curl_slope / curl_k
        phase = rng.uniform(0, 2 * np.pi, 2)
        lateral = amp * np.sin(k * s + phase[0]) + curl_amp * np.sin(curl_k * s + phase[1])
        slope = amp * k * np.cos(k * s + phase[0]) + curl_amp * curl_k * np.cos(curl_k * s + phase[1])
        x = width / 2 + rho * nx + s * ux + lateral * nx
        y = height / 2 + rho * ny + s * uy + lateral * ny
        tx, ty = ux + slope * nx, uy + slope * ny
        norm = np.hypot(tx, ty)
        keep = (x > -0.5) & (x < width - 0.5) & (y > -0.5) & (y < height - 0.5)
        if not keep.any():
            continue
        radius = 0.5 * _lognormal(rng, d_px, film["diameter_cv"], 1)[0]
        xs.append(x[keep]); ys.append(y[keep]); txs.append((tx / norm)[keep]); tys.append((ty / norm)[keep])
        radii.append(np.full(keep.sum(), radius))
        layers.append(np.full(keep.sum(), rng.integers(look.n_layers)))
        fibers.append(np.full(keep.sum(), index))
        inside_length += keep.sum() * look.point_spacing_px * float(np.mean(norm[keep]))
        index += 1
    return FiberPoints(*(np.concatenate(a) for a in (xs, ys, txs, tys, radii, layers, fibers)))


def _shade(t: np.ndarray, look: SEMLook) -> np.ndarray:
    """Secondary-electron yield across a cylinder: brighter where the surface tilts (edge effect)."""
    t = np.clip(t, 0.0, 0.995)
    return look.fiber_center_level + look.edge_gain * np.minimum((1 / np.sqrt(1 - t**2) - 1) / 1.5, 1.0)


def _render_layer(points: FiberPoints, mask: np.ndarray, shape: tuple[int, int], look: SEMLook
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and brightness of one layer from the exact distance to the nearest centerline sample."""
    seeds = np.full(shape, -1, dtype=np.int64)
    idx = np.flatnonzero(mask)
    seeds[np.rint(points.y[idx]).astype(int), np.rint(points.x[idx]).astype(int)] = idx
    iy, ix = ndimage.distance_transform_edt(seeds < 0, return_distances=False, return_indices=True)
    nearest = seeds[iy, ix]
    yy, xx = np.indices(shape)
    # Perpendicular distance to the nearest sample's tangent line: exact to sub-pixel for smooth fibers.
    dist = np.abs((xx - points.x[nearest]) * -points.ty[nearest] + (yy - points.y[nearest]) * points.tx[nearest])
    radius = points.radius_px[nearest]
    alpha = np.clip(radius - dist + 0.5, 0.0, 1.0)
    return alpha, _shade(dist / radius, look)


def _add_welds(alpha: np.ndarray, shade: np.ndarray, blur_px: float, look: SEMLook) -> None:
    """Fill the concave corners at fiber crossings (fused junctions); straight edges stay where they are."""
    if blur_px < look.min_weld_blur_px:
        return
    smooth = ndimage.gaussian_filter(alpha, blur_px)
    weld = np.clip((smooth - 0.5) / look.weld_ramp, 0.0, 1.0)
    grow = weld > alpha
    shade[grow] = look.fiber_center_level
    alpha[grow] = weld[grow]


def _add_beads(alpha: np.ndarray, shade: np.ndarray, points: FiberPoints, mask: np.ndarray, n_beads: int,
               rng: np.random.Generator, look: SEMLook) -> None:
    """Spindle-shaped beads sitting on random points of the layer's fibers."""
    candidates = np.flatnonzero(mask)
    if n_beads == 0 or candidates.size == 0:
        return
    height, width = alpha.shape
    for i in rng.choice(candidates, n_beads):
        a = points.radius_px[i] * rng.uniform(*look.bead_length_radii)
        b = points.radius_px[i] * rng.uniform(*look.bead_width_radii)
        x0, y0, tx, ty = points.x[i], points.y[i], points.tx[i], points.ty[i]
        r = int(np.ceil(a + 1))
        ys, xs = slice(max(int(y0) - r, 0), min(int(y0) + r + 1, height)), slice(max(int(x0) - r, 0), min(int(x0) + r + 1, width))
        yy, xx = np.mgrid[ys, xs]
        u = (xx - x0) * tx + (yy - y0) * ty
        v = -(xx - x0) * ty + (yy - y0) * tx
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        bead_alpha = np.clip((1 - rho) * b + 0.5, 0.0, 1.0)
        window_alpha, window_shade = alpha[ys, xs], shade[ys, xs]
        over = bead_alpha > window_alpha
        window_shade[over] = _shade(rho[over], look)
        window_alpha[over] = bead_alpha[over]


def render_mat(film: dict, height: int, width: int, pixel_size_nm: float, rng: np.random.Generator,
               look: SEMLook = LOOK) -> tuple[np.ndarray, dict]:
    """Noise-free brightness image (float, 0..~1) of a mat and its ground truth measured on the render."""
    points = draw_fibers(film, height, width, pixel_size_nm, rng, look)
    area_um2 = height * width * (pixel_size_nm / 1000) ** 2
    n_beads_total = rng.poisson(film["bead_density_per_um2"] * area_um2)
    weld_px = look.weld_blur_fraction * film["bonding"] * 0.5 * film["diameter_mean_nm"] / pixel_size_nm
    coarse = ndimage.gaussian_filter(rng.normal(size=(height // HAZE_CELL_PX + 2, width // HAZE_CELL_PX + 2)), 1.0)
    haze = ndimage.zoom(coarse, HAZE_CELL_PX, order=1)[:height, :width]
    canvas = look.background_level + look.background_variation * haze / (haze.std() + 1e-12)
    coverage = np.zeros((height, width))
    shares = np.bincount(points.layer, minlength=look.n_layers) / len(points.layer)
    for layer in range(look.n_layers):
        mask = points.layer == layer
        if not mask.any():
            continue
        alpha, shade = _render_layer(points, mask, (height, width), look)
        _add_welds(alpha, shade, weld_px, look)
        _add_beads(alpha, shade, points, mask, rng.binomial(n_beads_total, shares[layer]), rng, look)
        coverage = 1 - (1 - coverage) * (1 - alpha)
        depth = 1 - layer / max(look.n_layers - 1, 1)
        blur = 0.2 + look.depth_blur_px * depth
        alpha_b = ndimage.gaussian_filter(alpha, blur)
        light_b = ndimage.gaussian_filter(alpha * shade, blur) * (1 - look.depth_attenuation * depth)
        canvas = canvas * (1 - alpha_b) + light_b
    background = coverage < look.coverage_threshold
    angle = np.arctan2(-points.ty, points.tx)
    moment = np.mean(np.exp(2j * angle))
    truth = {
        "diameter_mean_nm": float(np.mean(2 * points.radius_px) * pixel_size_nm),
        "orientation_order": float(np.abs(moment)),
        "mean_angle_deg": float(np.rad2deg(0.5 * np.angle(moment))),
        "pore_size_um": pore_size_um(background, pixel_size_nm),
        "open_area_fraction": open_area_fraction(background),
        "n_beads": int(n_beads_total),
    }
    return canvas, truth


def apply_microscope(clean: np.ndarray, rng: np.random.Generator, look: SEMLook = LOOK) -> np.ndarray:
    """Imaging defects of one SEM session: defocus, contrast/brightness drift, charging streaks, shot noise."""
    img = ndimage.gaussian_filter(clean, rng.uniform(*look.defocus_px))
    img = rng.uniform(*look.offset_range) + rng.uniform(*look.gain_range) * np.clip(img, 0, None) ** rng.uniform(*look.gamma_range)
    height, width = img.shape
    if rng.random() < look.streak_probability:
        for _ in range(rng.integers(*look.streaks_per_frame)):
            row, thickness = rng.integers(height), rng.integers(*look.streak_rows)
            decay = np.exp(-np.arange(width) / rng.uniform(*look.streak_decay) / width)
            img[row : row + thickness] += rng.uniform(*look.streak_gain) * decay
    img = rng.poisson(np.clip(img, 0, None) * look.electrons_per_unit) / look.electrons_per_unit
    img = img + rng.normal(0, look.read_noise, img.shape)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def draw_info_bar(width: int, height: int, pixel_size_nm: float, label: str) -> np.ndarray:
    """The microscope's information bar: acquisition text and a scale bar of a round length."""
    bar = Image.new("L", (width, height), 12)
    draw = ImageDraw.Draw(bar)
    font = ImageFont.load_default(size=max(10, height // 4))
    field_um = width * pixel_size_nm / 1000
    scale_um = max(v for v in (0.2, 0.5, 1, 2, 5, 10, 20) if v <= field_um / 5)
    scale_px = int(round(scale_um * 1000 / pixel_size_nm))
    y = height // 2
    draw.text((8, y - height // 6), f"SE  5.0kV  WD 8.0mm  {pixel_size_nm:.1f} nm/px  {label}", fill=230, font=font, anchor="lm")
    x1 = width - 12
    draw.rectangle((x1 - scale_px, y + height // 8, x1, y + height // 8 + max(2, height // 16)), fill=240)
    draw.text((x1 - scale_px / 2, y - height // 8), f"{scale_um:g} um", fill=240, font=font, anchor="mm")
    return np.asarray(bar, dtype=np.uint8)


def render_frame(film: dict, width: int, height: int, info_bar_px: int, pixel_size_nm: float,
                 rng: np.random.Generator, label: str = "", look: SEMLook = LOOK) -> tuple[np.ndarray, dict]:
    """A full SEM frame (image area + info bar at the bottom) and the ground truth of its image area."""
    clean, truth = render_mat(film, height - info_bar_px, width, pixel_size_nm, rng, look)
    image = apply_microscope(clean, rng, look)
    if info_bar_px:
        image = np.vstack([image, draw_info_bar(width, info_bar_px, pixel_size_nm, label)])
    return image, truth
