"""Synthetic SEM-like fiber images with exact truth, for testing and calibrating `measure_frame`.

Independent of the virtual lab (matmcl.lab): its own geometry, shading, noise and info bars. A mat is defined in
physical units (nm) so that one mat can be rendered at several pixel sizes. Fibers are straight or sinusoidally
curved lines through a circular field around the frame centre (every direction gets the same expected length in
the frame), in depth layers; each layer is drawn with exact anti-aliased coverage (pixel covered where the distance
to the centre line is below half the width), edge brightening, its own brightness and depth blur, then layers are
composited bottom-up and the microscope adds focus blur, gain, shot noise and an optional info bar.

Truth (`SyntheticFrame.truth`): the length-weighted mean, median and sd of the fiber widths inside the frame (what
centre-line sampling measures), the orientation order |⟨exp 2iθ⟩| and mean angle of the centre-line tangents, the
von Mises value I1(k)/I0(k), pore size and open-area fraction of the exact coverage (matmcl.features.pores, coverage
below 0.5 = pore) and the bead count. Angles: counter-clockwise from the image x axis as displayed (y up).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage, special, stats

from matmcl.features.pores import open_area_fraction, pore_size_um

INFO_BAR_STYLES = ("fei", "zeiss", "hitachi", "jeol", "tescan")
LENGTH_STRATA_ITERATIONS = 3


@dataclass(frozen=True)
class MatSpec:
    """A fiber mat in physical units; `coverage` is the projected fiber area per frame area (L_A·d)."""

    field_nm: tuple[float, float] = (12_800.0, 12_800.0)  # height, width
    width_mean_nm: float = 200.0
    width_cv: float = 0.0  # lognormal spread of the fiber widths
    kappa: float = 0.0  # von Mises concentration of the doubled fiber angle
    mean_angle_deg: float = 0.0
    coverage: float = 1.0
    n_layers: int = 1
    waviness: float = 0.0  # amplitude·wavenumber of the sinusoidal curl (max slope)
    wavelength_nm: float = 3000.0
    n_beads: int = 0
    balanced: bool = False  # every fiber has a twin turned 90° about the centre: zero order in a square field
    seed: int = 0


@dataclass(frozen=True)
class Look:
    """Appearance: levels on a 0..1 scale, blur in nm (so it scales with the mat), noise in electrons per unit."""

    background: float = 0.08
    fiber_level: float = 0.6
    edge_gain: float = 0.35  # rim brightening: brightness × (1 + edge_gain·t⁴), t = distance from the axis / radius
    rim_nm: float = 0.0  # if > 0: brightening × exp(−depth below the surface / rim_nm) instead (escape depth)
    layer_dimming: float = 0.5  # the deepest layer is this much darker than the top one
    depth_blur_nm: float = 0.0  # extra Gaussian blur σ of the deepest layer (linear in depth)
    psf_nm: float = 0.0  # focus blur σ of the whole image
    psf_px: float = 0.5  # plus a blur σ in pixels (the beam spot / detector)
    gain: float = 1.0
    offset: float = 0.0
    electrons: float = 0.0  # shot noise: electrons per unit brightness (0: none)
    line_noise: float = 0.0  # sd of a per-row brightness offset (scan-line noise)
    info_bar: str | None = None  # one of INFO_BAR_STYLES
    info_bar_light: bool = False
    info_bar_fraction: float = 0.08


@dataclass
class SyntheticFrame:
    """A rendered frame (uint8), its pixel size, the info bar rows and the truth of the image area."""

    image: np.ndarray
    pixel_size_nm: float
    info_bar_rows: int
    truth: dict = field(default_factory=dict)


@dataclass
class _Fibers:
    angle: np.ndarray  # rad, counter-clockwise, y up
    offset_nm: np.ndarray  # signed distance of the line from the field centre
    width_nm: np.ndarray
    layer: np.ndarray
    phase: np.ndarray


def vonmises_order(kappa: float) -> float:
    """⟨cos 2(θ − θ0)⟩ = I1(k)/I0(k) for p(θ) ∝ exp(k cos 2(θ − θ0))."""
    return float(special.ive(1, kappa) / special.ive(0, kappa)) if kappa > 0 else 0.0


def _chord_nm(angle: np.ndarray, offset: np.ndarray, field_nm: tuple[float, float]) -> np.ndarray:
    """Length of each straight line (angle, signed offset from the centre) inside the field."""
    ux, uy = np.cos(angle), -np.sin(angle)
    low, high = np.full(angle.shape, -np.inf), np.full(angle.shape, np.inf)
    for start, step, half in ((-offset * uy, ux, field_nm[1] / 2), (offset * ux, uy, field_nm[0] / 2)):
        safe = np.where(np.abs(step) > 1e-12, step, 1e-12)
        a, b = (-half - start) / safe, (half - start) / safe
        low, high = np.maximum(low, np.minimum(a, b)), np.minimum(high, np.maximum(a, b))
    return np.clip(high - low, 0, None)


def _draw_fibers(spec: MatSpec, rng: np.random.Generator) -> _Fibers:
    """Lines with uniform offsets and von Mises angles stratified by their length in the frame: fiber i (in a random
    order) gets the quantile at the middle of its share of the cumulative in-frame length, so the length-weighted
    realised order of straight fibers is close to I1(k)/I0(k) whatever the number of fibers."""
    height, width = spec.field_nm
    radius = 0.5 * np.hypot(height, width) + 2 * spec.width_mean_nm
    n = max(8, int(round(spec.coverage * 2 * radius / spec.width_mean_nm)))  # a line's mean length in frame: A/(2R)
    offset = rng.uniform(-radius, radius, n)
    order = rng.permutation(n)
    quantiles = (np.arange(n) + rng.uniform(0, 1, n)) / n
    for _ in range(LENGTH_STRATA_ITERATIONS + 1):  # chord lengths depend on the angles: a few fixed-point rounds
        doubled = stats.vonmises.ppf(quantiles, spec.kappa) if spec.kappa > 0 else np.pi * (2 * quantiles - 1)
        angle = np.deg2rad(spec.mean_angle_deg) + 0.5 * doubled[order]
        length = _chord_nm(angle, offset, spec.field_nm)[np.argsort(order)] + 1e-9  # in stratum order
        quantiles = np.clip((np.cumsum(length) - 0.5 * length) / length.sum(), 1e-6, 1 - 1e-6)
    sigma = np.sqrt(np.log1p(spec.width_cv**2))
    widths = spec.width_mean_nm * (rng.lognormal(-sigma**2 / 2, sigma, n) if spec.width_cv > 0 else np.ones(n))
    fibers = _Fibers(angle, offset, widths, rng.integers(spec.n_layers, size=n), rng.uniform(0, 2 * np.pi, n))
    if spec.balanced:
        half = slice(0, (n + 1) // 2)
        fibers = _Fibers(*(np.r_[v[half], v[half] + (np.pi / 2 if name == "angle" else 0)]
                           for name, v in vars(fibers).items()))
    return fibers


def _fiber_geometry(spec: MatSpec, fibers: _Fibers, i: int, xs: np.ndarray, ys: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Distance (nm) from points to fiber i's centre line and the tangent angle there (first order in the slope)."""
    theta = fibers.angle[i]
    ux, uy = np.cos(theta), -np.sin(theta)  # along the fiber, array coordinates (y down)
    along = xs * ux + ys * uy
    across = -xs * uy + ys * ux - fibers.offset_nm[i]
    k = 2 * np.pi / spec.wavelength_nm
    amplitude = spec.waviness / k
    lateral = amplitude * np.sin(k * along + fibers.phase[i])
    slope = spec.waviness * np.cos(k * along + fibers.phase[i])
    return np.abs(across - lateral) / np.sqrt(1 + slope**2), theta - np.arctan(slope)


def _shade(distance: np.ndarray, radius: float, look: Look) -> np.ndarray:
    """Secondary-electron edge effect at `distance` (nm) from the axis of a fiber of `radius` (nm)."""
    if look.rim_nm > 0:
        return 1.0 + look.edge_gain * np.exp(-np.clip(radius - distance, 0, None) / look.rim_nm)
    return 1.0 + look.edge_gain * np.clip(distance / radius, 0, 1) ** 4


def _layer(spec: MatSpec, fibers: _Fibers, layer: int, xs: np.ndarray, ys: np.ndarray, pixel_nm: float, look: Look
           ) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and brightness·coverage of one layer (crossings within a layer: the wider coverage wins)."""
    alpha = np.zeros(xs.shape)
    light = np.zeros(xs.shape)
    for i in np.flatnonzero(fibers.layer == layer):
        distance, _ = _fiber_geometry(spec, fibers, i, xs, ys)
        radius = fibers.width_nm[i] / 2
        a = np.clip((radius - distance) / pixel_nm + 0.5, 0, 1)
        over = a > alpha
        alpha[over] = a[over]
        light[over] = a[over] * _shade(distance[over], radius, look)
    return alpha, light


def _beads(spec: MatSpec, fibers: _Fibers, xs: np.ndarray, ys: np.ndarray, pixel_nm: float, rng: np.random.Generator
           ) -> np.ndarray:
    """Coverage of `spec.n_beads` spindle beads on top-layer fibers, inside the central 80 % of the frame."""
    alpha = np.zeros(xs.shape)
    top = np.flatnonzero(fibers.layer == spec.n_layers - 1)
    if spec.n_beads == 0 or top.size == 0:
        return alpha
    height, width = spec.field_nm
    for i in rng.choice(top, spec.n_beads):
        theta = fibers.angle[i]
        ux, uy = np.cos(theta), -np.sin(theta)
        s = rng.uniform(-0.4, 0.4) * min(height, width)
        cx, cy = s * ux - fibers.offset_nm[i] * uy, s * uy + fibers.offset_nm[i] * ux
        a, b = 3.5 * fibers.width_nm[i], 1.6 * fibers.width_nm[i]
        u = (xs - cx) * ux + (ys - cy) * uy
        v = -(xs - cx) * uy + (ys - cy) * ux
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        alpha = np.maximum(alpha, np.clip((1 - rho) * b / pixel_nm + 0.5, 0, 1))
    return alpha


def render(spec: MatSpec, pixel_size_nm: float, look: Look = Look(), noise_seed: int | None = None) -> SyntheticFrame:
    """Render `spec` at `pixel_size_nm` (the same seed gives the same mat at every pixel size)."""
    rng = np.random.default_rng(spec.seed)
    fibers = _draw_fibers(spec, rng)
    rows, cols = (int(round(f / pixel_size_nm)) for f in spec.field_nm)
    yy, xx = np.indices((rows, cols), dtype=float)
    xs = (xx + 0.5) * pixel_size_nm - spec.field_nm[1] / 2
    ys = (yy + 0.5) * pixel_size_nm - spec.field_nm[0] / 2
    canvas = np.full((rows, cols), look.background)
    union = np.zeros((rows, cols))
    for layer in range(spec.n_layers):
        alpha, light = _layer(spec, fibers, layer, xs, ys, pixel_size_nm, look)
        if layer == spec.n_layers - 1:
            bead_alpha = _beads(spec, fibers, xs, ys, pixel_size_nm, rng)
            more = bead_alpha > alpha
            alpha, light = np.where(more, bead_alpha, alpha), np.where(more, bead_alpha, light)
        union = 1 - (1 - union) * (1 - alpha)
        depth = (spec.n_layers - 1 - layer) / max(spec.n_layers - 1, 1)
        level = look.fiber_level * (1 - look.layer_dimming * depth)
        blur = look.depth_blur_nm * depth / pixel_size_nm
        if blur > 0:
            alpha, light = ndimage.gaussian_filter(alpha, blur), ndimage.gaussian_filter(light, blur)
        canvas = canvas * (1 - alpha) + level * light
    psf = np.hypot(look.psf_nm / pixel_size_nm, look.psf_px)
    image = ndimage.gaussian_filter(canvas, psf) if psf > 0 else canvas
    noise = np.random.default_rng(spec.seed + 7919 if noise_seed is None else noise_seed)
    image = look.offset + look.gain * image
    if look.line_noise > 0:
        image = image + noise.normal(0, look.line_noise, (rows, 1))
    if look.electrons > 0:
        image = noise.poisson(np.clip(image, 0, None) * look.electrons) / look.electrons
    pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    bar_rows = 0
    if look.info_bar:
        bar_rows = max(12, int(round(look.info_bar_fraction * rows)))
        bar = info_bar(look.info_bar, cols, bar_rows, pixel_size_nm, look.info_bar_light, noise)
        pixels = np.vstack([pixels, bar])
    return SyntheticFrame(pixels, pixel_size_nm, bar_rows, _truth(spec, fibers, union, xs, ys, pixel_size_nm))


def _truth(spec: MatSpec, fibers: _Fibers, union: np.ndarray, xs: np.ndarray, ys: np.ndarray, pixel_nm: float
           ) -> dict:
    """Length-weighted width statistics and tangent-angle moment of the centre lines inside the frame."""
    height, width = spec.field_nm
    radius = 0.5 * np.hypot(height, width)
    step = min(pixel_nm, spec.width_mean_nm) / 2
    s = np.arange(-radius, radius, step)
    widths, weights, moments = [], [], []
    k = 2 * np.pi / spec.wavelength_nm
    for i in range(len(fibers.angle)):
        theta = fibers.angle[i]
        ux, uy = np.cos(theta), -np.sin(theta)
        lateral = spec.waviness / k * np.sin(k * s + fibers.phase[i])
        slope = spec.waviness * np.cos(k * s + fibers.phase[i])
        x = s * ux - (fibers.offset_nm[i] + lateral) * uy
        y = s * uy + (fibers.offset_nm[i] + lateral) * ux
        inside = (np.abs(x) < width / 2) & (np.abs(y) < height / 2)
        if inside.any():
            length = step * np.sqrt(1 + slope[inside] ** 2)
            weights.append(length.sum())
            widths.append(fibers.width_nm[i])
            moments.append(np.sum(length * np.exp(2j * (theta - np.arctan(slope[inside])))))
    w, widths = np.asarray(weights), np.asarray(widths)
    mean = float(np.sum(w * widths) / w.sum())
    order = np.argsort(widths)
    median = float(widths[order][np.searchsorted(np.cumsum(w[order]), w.sum() / 2)])
    moment = np.sum(moments) / w.sum()
    pores = union < 0.5
    return {
        "diameter_nm": mean,
        "diameter_median_nm": median,
        "diameter_sd_nm": float(np.sqrt(np.sum(w * (widths - mean) ** 2) / w.sum())),
        "orientation_order": float(abs(moment)),
        "mean_angle_deg": float(np.rad2deg(0.5 * np.angle(moment))),
        "vonmises_order": vonmises_order(spec.kappa),
        "pore_size_um": pore_size_um(pores, pixel_nm),
        "porosity": open_area_fraction(pores),
        "n_beads": spec.n_beads,
        "n_fibers": int(len(widths)),
    }


def with_seed(spec: MatSpec, seed: int) -> MatSpec:
    """The same kind of mat, another random draw."""
    return replace(spec, seed=seed)


def info_bar(style: str, width: int, rows: int, pixel_size_nm: float, light: bool = False,
             rng: np.random.Generator | None = None) -> np.ndarray:
    """An info bar in the layout of one vendor family: uniform band, text fields, a scale bar."""
    if style not in INFO_BAR_STYLES:
        raise ValueError(f"unknown info bar style {style!r}; use one of {INFO_BAR_STYLES}")
    back, ink = (235, 20) if light else (0, 255)
    if style == "fei" and not light:
        back = 30
    bar = Image.new("L", (width, rows), back)
    draw = ImageDraw.Draw(bar)
    font = ImageFont.load_default(size=max(8, rows // 3))
    field_um = width * pixel_size_nm / 1000
    scale_um = max(v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if v <= field_um / 4)
    scale_px = int(round(scale_um * 1000 / pixel_size_nm))
    mid = rows // 2
    label = f"{scale_um:g} um"
    if style == "fei":  # a table of boxed fields, scale bar in the last cell
        cells = np.linspace(0, width - 1, 6).astype(int)
        for a, b, text in zip(cells[:-1], cells[1:], ("HV 5.00 kV", "WD 5.1 mm", "mag 20 000 x", "det TLD", "")):
            draw.rectangle((a + 2, 2, b - 2, rows - 3), outline=ink // 2 + back // 2)
            draw.text((a + 6, mid), text, fill=ink, font=font, anchor="lm")
        draw.rectangle((width - 8 - scale_px, mid + 2, width - 8, mid + 4), fill=ink)
        draw.text((width - 8 - scale_px // 2, mid - 4), label, fill=ink, font=font, anchor="mb")
    elif style == "zeiss":  # scale bar top left, text columns, a separator line on top
        draw.line((0, 0, width, 0), fill=ink)
        draw.rectangle((8, 4, 8 + scale_px, 6), fill=ink)
        draw.text((8, rows - 3), label, fill=ink, font=font, anchor="lb")
        draw.text((width // 3, mid), "EHT = 3.00 kV   WD = 4.5 mm", fill=ink, font=font, anchor="lm")
        draw.text((2 * width // 3, mid), "Signal A = InLens   Mag = 10.00 K X", fill=ink, font=font, anchor="lm")
    elif style == "hitachi":  # one text line, dotted scale bar with ticks
        draw.text((6, mid), "S-4800 5.0kV 8.0mm x10.0k SE(U)", fill=ink, font=font, anchor="lm")
        x0 = width - 10 - scale_px
        for x in range(x0, width - 10, 2):
            draw.point((x, mid + 3), fill=ink)
        for x in np.linspace(x0, width - 10, 11).astype(int):
            draw.line((x, mid + 1, x, mid + 5), fill=ink)
        draw.text((x0, mid - 2), label, fill=ink, font=font, anchor="lb")
    elif style == "jeol":  # bold text, scale bar with end ticks in the middle
        draw.text((6, mid), "SEI   15kV   WD10mm   SS30   x5,000", fill=ink, font=font, anchor="lm")
        x0 = width // 2 + 20
        draw.rectangle((x0, mid - 1, x0 + scale_px, mid + 1), fill=ink)
        draw.text((x0 + scale_px + 6, mid), label, fill=ink, font=font, anchor="lm")
        draw.text((width - 6, mid), "NTU  SEM", fill=ink, font=font, anchor="rm")
    else:  # tescan: light two-row table with grid lines
        for y in (0, mid, rows - 1):
            draw.line((0, y, width, y), fill=ink // 2 + back // 2)
        for x in np.linspace(0, width - 1, 5).astype(int):
            draw.line((x, 0, x, rows), fill=ink // 2 + back // 2)
        draw.text((6, mid // 2), "SEM HV: 10.0 kV", fill=ink, font=font, anchor="lm")
        draw.text((6, mid + mid // 2), "View field: 12.8 um", fill=ink, font=font, anchor="lm")
        draw.rectangle((width - 10 - scale_px, mid + mid // 2, width - 10, mid + mid // 2 + 2), fill=ink)
        draw.text((width - 10 - scale_px, mid // 2), label, fill=ink, font=font, anchor="lm")
    pixels = np.asarray(bar, dtype=float)
    if rng is not None:  # a little noise: bars are sometimes JPEG-compressed or dithered
        pixels = pixels + rng.normal(0, 1.0, pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
