"""Accuracy and speed of the pipeline's structural features on rendered virtual-lab frames with known ground truth.

Films from `sample_conditions(films, seed)` + `draw_film_structure`, `frames` frames each, rendered as in the default
pipeline (640 x 480, 64-row info bar, 20 nm/px), written as PNGs with a frames table whose info_bar_px cells are
empty (the bar is detected), measured per frame by `extract_frame_features`, averaged per film and compared with
the film means of the per-frame truth. This validates the measurement on the virtual lab; it is never used to
calibrate it (see docs/measurement.md). Writes reports/bench_features.json.

`--looks` also renders the same films with one element of the virtual microscope's look switched off at a time
(bright edge rim, depth blur of back layers, fused-junction fillets, and the microscope's defocus spread, gamma,
streaks and noise): the per-look errors and the diameter bias per diameter band show which element of the image
the remaining errors come from (a diagnosis, not a calibration).

    python benchmarks/bench_features.py [--films 40] [--frames 2] [--seed 0] [--workers 2] [--looks]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from matmcl.atomic import write_json
from matmcl.features.extractor import extract_frame_features, feature_errors, film_features
from matmcl.lab.conditions import sample_conditions
from matmcl.lab.physics import draw_film_structure
from matmcl.lab.render import LOOK, SEMLook, render_frame

WIDTH, HEIGHT, INFO_BAR, PIXEL_SIZE_NM = 640, 480, 64, 20.0
TARGETS = {"diameter_mape": 0.07, "orientation_order_mae": 0.03, "pore_size_mape": 0.06}
ERROR_COLUMNS = ("diameter_rel_error", "orientation_order_error", "pore_size_rel_error", "porosity_error",
                 "mean_angle_error_deg")
LOOKS = {
    "default": LOOK,
    "no_edge_rim": replace(LOOK, edge_gain=0.0),
    "no_depth_blur": replace(LOOK, depth_blur_px=0.0),
    "no_junction_fillets": replace(LOOK, weld_blur_fraction=0.0),
    "clean_microscope": replace(LOOK, defocus_px=(0.3, 0.3), gamma_range=(1.0, 1.0), streak_probability=0.0,
                                electrons_per_unit=1e6, read_noise=0.0),
}
DIAMETER_BANDS_NM = [0, 100, 200, 300, 1000]


def render_film(job: tuple[int, str, dict, int, int, SEMLook]) -> list[tuple[str, int, np.ndarray, dict]]:
    """All frames of one film: (film_id, frame, image, truth)."""
    index, film_id, film, n_frames, seed, look = job
    frames = []
    for frame in range(n_frames):
        rng = np.random.default_rng([seed, index, frame])
        image, truth = render_frame(film, WIDTH, HEIGHT, INFO_BAR, PIXEL_SIZE_NM, rng, label=film_id, look=look)
        frames.append((film_id, frame, image, truth))
    return frames


def render_frames(n_films: int, n_frames: int, seed: int, workers: int, look: SEMLook = LOOK
                  ) -> list[tuple[str, int, np.ndarray, dict]]:
    conditions = sample_conditions(n_films, seed)
    films = draw_film_structure(conditions, np.random.default_rng(seed))
    jobs = [(i, film_id, film, n_frames, seed, look)
            for i, (film_id, film) in enumerate(zip(conditions["film_id"], films.to_dict("records")))]
    with ProcessPoolExecutor(workers) as pool:
        return [frame for film in pool.map(render_film, jobs) for frame in film]


def measure_frames(frames: list[tuple[str, int, np.ndarray, dict]], workers: int) -> tuple[dict, pd.DataFrame, float]:
    """Errors per film against the truth (feature_errors), the per-frame measurements and the measuring seconds."""
    truth = pd.DataFrame([{"film_id": film_id, "frame": frame, **t} for film_id, frame, _, t in frames])
    with tempfile.TemporaryDirectory() as scratch:
        rows = []
        for film_id, frame, image, _ in frames:
            path = f"sem/{film_id}_{frame}.png"
            (Path(scratch) / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(Path(scratch) / path, compress_level=1)
            rows.append({"film_id": film_id, "frame": frame, "path": path, "pixel_size_nm": PIXEL_SIZE_NM,
                         "info_bar_px": pd.NA})
        start = time.perf_counter()
        per_frame = extract_frame_features(pd.DataFrame(rows), scratch, workers=workers, progress=False)
        seconds = time.perf_counter() - start
    return feature_errors(film_features(per_frame), truth), per_frame, seconds


def look_ablation(args: argparse.Namespace) -> dict:
    """Per look variant: the film-level errors and the mean diameter error per true-diameter band."""
    out = {}
    for name, look in LOOKS.items():
        errors, _, _ = measure_frames(render_frames(args.films, args.frames, args.seed, args.workers, look),
                                      args.workers)
        per_film = errors.pop("per_film")
        band = pd.cut(per_film["true_diameter_mean_nm"], DIAMETER_BANDS_NM)
        bias = per_film.groupby(band, observed=True)["diameter_rel_error"].mean()
        out[name] = {**{k: round(v, 4) for k, v in errors.items()},
                     "diameter_bias_by_band_nm": {f"{b.left}-{b.right}": round(float(v), 4) for b, v in bias.items()},
                     "orientation_order_bias": round(float(per_film["orientation_order_error"].mean()), 4),
                     "pore_size_bias": round(float(per_film["pore_size_rel_error"].mean()), 4)}
        print(name, out[name], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=40)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="reports/bench_features.json")
    parser.add_argument("--looks", action="store_true", help="also run the look ablation (about 5x the time)")
    args = parser.parse_args()

    errors, per_frame, seconds = measure_frames(render_frames(args.films, args.frames, args.seed, args.workers),
                                                args.workers)
    per_film = errors.pop("per_film")
    report = {
        "setup": {**vars(args), "frame_px": [WIDTH, HEIGHT], "info_bar_px": INFO_BAR, "pixel_size_nm": PIXEL_SIZE_NM,
                  "targets": TARGETS},
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in errors.items()},
        "meets_targets": {k: bool(errors[k] <= limit) for k, limit in TARGETS.items()},
        "info_bar_detected_exactly": float((per_frame["info_bar_rows"] == INFO_BAR).mean()),
        "n_frames": len(per_frame),
        "seconds_per_frame_wall": round(seconds / len(per_frame), 4),
        "seconds_per_frame_per_worker": round(seconds * args.workers / len(per_frame), 4),
        "error_quantiles": per_film[list(ERROR_COLUMNS)].quantile([0.05, 0.5, 0.95]).round(4).to_dict(),
        "per_film": per_film.round(4).to_dict(orient="records"),
    }
    if args.looks:
        report["look_ablation"] = look_ablation(args)
    write_json(report, args.out)
    print({k: v for k, v in report.items() if k not in ("per_film", "error_quantiles")})


if __name__ == "__main__":
    main()
