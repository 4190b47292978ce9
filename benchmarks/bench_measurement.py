"""Accuracy of `matmcl.features.measure_frame` on synthetic SEM images with exact truth (matmcl.features.synthetic,
independent of the virtual lab). Writes reports/measurement.json: per case the truth, the measurement and the error,
and per target whether it is met.

Cases: width sweep of sharp fibers 3–80 px (crossings, shot noise); multi-layer mats with depth blur; SEM-look mats
(edge brightening, width spread, beads); von Mises orientation across k; noise, rings and isotropic mats; info bars
of five vendor styles, dark and light; one mat at five pixel sizes; a concentration-like series of widths.

    python benchmarks/bench_measurement.py [--workers 2] [--out reports/measurement.json]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

from matmcl.atomic import write_json
from matmcl.features.measure import measure_frame
from matmcl.features.synthetic import INFO_BAR_STYLES, Look, MatSpec, render

SHARP = Look(edge_gain=0.0, electrons=40.0, psf_px=0.5)
LAYERED = replace(SHARP, layer_dimming=0.5)
SEM = Look(edge_gain=0.35, electrons=30.0, psf_px=0.6, layer_dimming=0.5, gain=0.9, offset=0.02)
# A realistic SEM look: thin bright rim of fixed depth (20 nm), defocus comparable to thin fibers, strong shot noise,
# dense mats of three layers, the deeper ones dimmer and blurred.
REALISTIC = Look(edge_gain=0.4, rim_nm=20.0, electrons=25.0, psf_nm=20.0, psf_px=0.5, layer_dimming=0.6,
                 depth_blur_nm=30.0, gain=0.9, offset=0.03)
TARGETS = {
    "width_sweep_max_abs_rel_error": 0.05,
    "depth_blur_max_abs_rel_error": 0.05,
    "orientation_max_abs_error_vs_vonmises": 0.03,
    "mean_angle_max_abs_error_deg_when_order_ge_0.1": 2.0,
    "null_orientation_max_order": 0.05,
    "scale_series_max_spread": 0.05,
}


def _field(width_px: float, pixel_nm: float, minimum_px: int = 400, fibers_across: int = 16, maximum_px: int = 1280
           ) -> tuple[float, float]:
    side = int(np.clip(fibers_across * width_px, minimum_px, maximum_px)) * pixel_nm
    return side, side


def cases() -> list[tuple[str, str, MatSpec, float, Look, dict]]:
    """(group, name, mat, pixel size nm, look, extra info)."""
    out = []
    for w in (3, 4, 5, 6, 8, 12, 20, 40, 80):
        spec = MatSpec(field_nm=_field(w, 10.0), width_mean_nm=10.0 * w, coverage=0.5, seed=w)
        out.append(("width_sweep", f"w{w}px", spec, 10.0, SHARP, {}))
    for w in (4, 8, 16, 32):
        spec = MatSpec(field_nm=_field(w, 10.0), width_mean_nm=10.0 * w, coverage=0.8, n_layers=3, seed=100 + w)
        out.append(("depth_blur", f"w{w}px", spec, 10.0, replace(LAYERED, depth_blur_nm=1.5 * w), {}))
    for w in (5, 10, 20):
        spec = MatSpec(field_nm=_field(w, 10.0, 600), width_mean_nm=10.0 * w, width_cv=0.25, coverage=1.0, kappa=1.0,
                       n_layers=3, waviness=0.15, wavelength_nm=60.0 * w * 10, n_beads=4, seed=200 + w)
        out.append(("sem_look", f"w{w}px", spec, 10.0, replace(SEM, depth_blur_nm=1.5 * w), {}))
    for w in (3, 4, 5, 6, 8, 12, 20):
        spec = MatSpec(field_nm=_field(w, 20.0, 480), width_mean_nm=20.0 * w, width_cv=0.3, coverage=1.0, kappa=0.7,
                       n_layers=3, waviness=0.1, wavelength_nm=80.0 * w * 20, seed=250 + w)
        out.append(("realistic", f"w{w}px", spec, 20.0, REALISTIC, {}))
    for i, k in enumerate((0.5, 1.0, 2.0, 4.0, 8.0, 16.0)):  # ~230 fibers: realised order close to I1/I0
        spec = MatSpec(field_nm=(12_800.0, 12_800.0), width_mean_nm=40.0, coverage=0.5, kappa=k, n_layers=2,
                       mean_angle_deg=-70.0 + 29.0 * i, seed=300 + i)
        out.append(("orientation", f"k{k:g}", spec, 10.0, LAYERED, {}))
    for seed in range(3):  # fibers in 90°-turned pairs: the realised order of the isotropic draw is 0
        spec = MatSpec(field_nm=(12_000.0, 12_000.0), width_mean_nm=50.0, coverage=0.6, n_layers=2, balanced=True,
                       seed=400 + seed)
        out.append(("null_orientation", f"isotropic{seed}", spec, 10.0, LAYERED, {}))
    out.append(("null_orientation", "noise", None, 10.0, LAYERED, {"kind": "noise"}))
    out.append(("null_orientation", "rings", None, 10.0, LAYERED, {"kind": "rings"}))
    for style in INFO_BAR_STYLES:
        for light in (False, True):
            spec = MatSpec(field_nm=(4800.0, 6400.0), width_mean_nm=120.0, coverage=0.7, kappa=2.0, n_layers=2,
                           mean_angle_deg=20.0, seed=500)
            look = replace(SEM, info_bar=style, info_bar_light=light, info_bar_fraction=0.1)
            out.append(("info_bar", f"{style}_{'light' if light else 'dark'}", spec, 10.0, look, {}))
    scale_mat = MatSpec(field_nm=(9600.0, 9600.0), width_mean_nm=300.0, width_cv=0.2, coverage=0.8, kappa=1.0,
                        n_layers=2, seed=600)
    for pixel in (12.0, 16.0, 24.0, 32.0, 40.0):
        out.append(("scale_series", f"{pixel:g}nm", scale_mat, pixel, replace(SEM, depth_blur_nm=0.0), {}))
    for concentration, width in ((10, 150.0), (15, 300.0), (20, 600.0)):
        spec = MatSpec(field_nm=(15_500.0, 15_500.0), width_mean_nm=width, width_cv=0.3, coverage=1.2, n_layers=4,
                       seed=700 + concentration)
        look = replace(SEM, depth_blur_nm=0.3 * width)
        out.append(("concentration_series", f"c{concentration}", spec, 31.0, look, {"concentration": concentration}))
    return out


def _null_image(kind: str) -> np.ndarray:
    """Shot noise without structure, or concentric rings (every direction equally)."""
    if kind == "noise":
        return np.random.default_rng(0).poisson(30.0, (512, 512)).astype(np.uint8)
    rows, cols = np.indices((512, 512)) - 256
    return np.rint(127 + 100 * np.sin(np.hypot(rows, cols) / 4.0)).astype(np.uint8)


def run_case(case: tuple[str, str, MatSpec | None, float, Look, dict]) -> dict:
    group, name, spec, pixel, look, extra = case
    if spec is None:
        measured = measure_frame(_null_image(extra["kind"]), pixel)
        return {"group": group, "name": name, "measured": measured, "errors": {}}
    frame = render(spec, pixel, look)
    start = time.perf_counter()
    measured = measure_frame(frame.image, pixel)
    seconds = time.perf_counter() - start
    truth = frame.truth
    row = {"group": group, "name": name, "pixel_size_nm": pixel, "shape": list(frame.image.shape), **extra,
           "truth": {k: round(float(v), 5) for k, v in truth.items()},
           "measured": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in measured.items()},
           "seconds": round(seconds, 3)}
    if group == "info_bar":
        row["true_info_bar_rows"] = frame.info_bar_rows
        clean = measure_frame(frame.image[: frame.image.shape[0] - frame.info_bar_rows], pixel, info_bar="none")
        row["bar_free"] = {k: clean[k] for k in ("diameter_nm", "orientation_order", "mean_angle_deg")}
    errors = {}
    if measured["diameter_nm"] is not None:
        errors["diameter_rel"] = measured["diameter_nm"] / truth["diameter_nm"] - 1
        errors["diameter_median_rel"] = measured["diameter_median_nm"] / truth["diameter_median_nm"] - 1
    if measured["pore_size_um"] is not None:
        errors["pore_size_rel"] = measured["pore_size_um"] / truth["pore_size_um"] - 1
    errors["porosity"] = (measured["porosity"] - truth["porosity"]) if measured["porosity"] is not None else None
    errors["order_vs_realised"] = measured["orientation_order"] - truth["orientation_order"]
    errors["order_vs_vonmises"] = measured["orientation_order"] - truth["vonmises_order"]
    if measured["mean_angle_deg"] is not None:
        errors["mean_angle_deg"] = (measured["mean_angle_deg"] - truth["mean_angle_deg"] + 90) % 180 - 90
    row["errors"] = {k: (round(float(v), 5) if v is not None else None) for k, v in errors.items()}
    return row


def _max_abs(rows: list[dict], group: str, key: str) -> float:
    values = [abs(r["errors"][key]) for r in rows if r["group"] == group and r["errors"].get(key) is not None]
    return round(max(values), 4) if values else float("nan")


def summarize(rows: list[dict]) -> dict:
    orientation = [r for r in rows if r["group"] == "orientation"]
    angles = [abs(r["errors"]["mean_angle_deg"]) for r in orientation
              if r["truth"]["orientation_order"] >= 0.1 and r["errors"].get("mean_angle_deg") is not None]
    missing_angles = [r["name"] for r in orientation
                      if r["truth"]["orientation_order"] >= 0.1 and r["errors"].get("mean_angle_deg") is None]
    null = [r["measured"]["orientation_order"] for r in rows if r["group"] == "null_orientation"]
    scale = [r["measured"]["diameter_nm"] for r in rows if r["group"] == "scale_series"]
    bars = [r for r in rows if r["group"] == "info_bar"]
    series = sorted((r for r in rows if r["group"] == "concentration_series"), key=lambda r: r["concentration"])
    diameters = [r["measured"]["diameter_nm"] for r in series]
    summary = {
        "width_sweep_max_abs_rel_error": _max_abs(rows, "width_sweep", "diameter_rel"),
        "depth_blur_max_abs_rel_error": _max_abs(rows, "depth_blur", "diameter_rel"),
        "sem_look_max_abs_rel_error": _max_abs(rows, "sem_look", "diameter_rel"),
        "realistic_max_abs_rel_error": _max_abs(rows, "realistic", "diameter_rel"),
        "orientation_max_abs_error_vs_vonmises": _max_abs(rows, "orientation", "order_vs_vonmises"),
        "orientation_max_abs_error_vs_realised": _max_abs(rows, "orientation", "order_vs_realised"),
        "mean_angle_max_abs_error_deg_when_order_ge_0.1": round(max(angles), 3) if angles else float("nan"),
        "mean_angle_missing_when_order_ge_0.1": missing_angles,
        "null_orientation_max_order": round(max(null), 4),
        "null_orientation_any_nan": bool(np.any(~np.isfinite(null))),
        "scale_series_max_spread": round(max(scale) / min(scale) - 1, 4),
        "scale_series_max_abs_rel_error": _max_abs(rows, "scale_series", "diameter_rel"),
        "info_bar_rows_exact": sum(r["measured"]["info_bar_rows"] == r["true_info_bar_rows"] for r in bars),
        "info_bar_cases": len(bars),
        "info_bar_max_diameter_change_vs_bar_free": round(max(abs(r["measured"]["diameter_nm"]
                                                                  / r["bar_free"]["diameter_nm"] - 1) for r in bars), 4),
        "concentration_series_diameters_nm": [round(d, 1) for d in diameters],
        "concentration_series_ordered": bool(np.all(np.diff(diameters) > 0)),
        "pore_size_max_abs_rel_error": round(max(abs(r["errors"]["pore_size_rel"]) for r in rows
                                                 if r["errors"].get("pore_size_rel") is not None), 4),
        "porosity_max_abs_error": round(max(abs(r["errors"]["porosity"]) for r in rows
                                            if r["errors"].get("porosity") is not None), 4),
    }
    summary["meets_targets"] = {k: bool(summary[k] <= limit) for k, limit in TARGETS.items()}
    summary["meets_targets"]["info_bar_all_exact"] = summary["info_bar_rows_exact"] == summary["info_bar_cases"]
    summary["meets_targets"]["concentration_series_ordered"] = summary["concentration_series_ordered"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="reports/measurement.json")
    args = parser.parse_args()
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(run_case, cases()))
    summary = summarize(rows)
    write_json({"targets": TARGETS, "summary": summary, "cases": rows,
                "seconds": round(time.perf_counter() - start, 1)}, args.out)
    for key, value in summary.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
