"""Accuracy and speed of the structural feature extractor on rendered virtual-lab frames with known ground truth.

Films from `sample_conditions(films, seed)` + `draw_film_structure`, `frames` frames each, rendered as in the default
pipeline (640 x 480, 64-row info bar, 20 nm/px) and cut into 128-px patches (5 x 3 per frame). Features are
extracted from the raw patches and from patches histogram-matched to the pooled histogram of all frames (as the
pipeline does), averaged per film and compared with the film means of the per-frame truth. Writes
reports/bench_features.json.

    python benchmarks/bench_features.py [--films 40] [--frames 2] [--seed 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from matmcl.atomic import write_json
from matmcl.features.extractor import extract_patch_features, feature_errors, film_features
from matmcl.lab.conditions import sample_conditions
from matmcl.lab.physics import draw_film_structure
from matmcl.lab.render import render_frame
from matmcl.sem.histmatch import grey_histogram, match_histogram
from matmcl.sem.patching import tile_frame

WIDTH, HEIGHT, INFO_BAR, PIXEL_SIZE_NM, TILE = 640, 480, 64, 20.0, 128
TARGETS = {"diameter_mape": 0.10, "orientation_order_mae": 0.05, "pore_size_mape": 0.15}
ERROR_COLUMNS = ("diameter_rel_error", "orientation_order_error", "pore_size_rel_error", "porosity_error",
                 "mean_angle_error_deg")


def render_film(job: tuple[int, str, dict, int, int]) -> list[tuple[str, int, np.ndarray, dict]]:
    """All frames of one film: (film_id, frame, image, truth)."""
    index, film_id, film, n_frames, seed = job
    frames = []
    for frame in range(n_frames):
        rng = np.random.default_rng([seed, index, frame])
        image, truth = render_frame(film, WIDTH, HEIGHT, INFO_BAR, PIXEL_SIZE_NM, rng, label=film_id)
        frames.append((film_id, frame, image, truth))
    return frames


def render_frames(n_films: int, n_frames: int, seed: int, workers: int) -> list[tuple[str, int, np.ndarray, dict]]:
    conditions = sample_conditions(n_films, seed)
    films = draw_film_structure(conditions, np.random.default_rng(seed))
    jobs = [(i, film_id, film, n_frames, seed)
            for i, (film_id, film) in enumerate(zip(conditions["film_id"], films.to_dict("records")))]
    with ProcessPoolExecutor(workers) as pool:
        return [frame for film in pool.map(render_film, jobs) for frame in film]


def write_patches(frames: list, root: Path, reference: np.ndarray | None) -> pd.DataFrame:
    """Write every frame's patches as PNGs (matched to `reference` when given); return the patch manifest."""
    rows = []
    for film_id, frame, image, _ in frames:
        for patch, tile in enumerate(tile_frame(image, INFO_BAR, TILE)):
            pixels = tile.array if reference is None else match_histogram(tile.array, reference)
            path = f"patches/{film_id}/{film_id}_f{frame}_p{patch}.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / path, compress_level=1)
            rows.append({"film_id": film_id, "frame": frame, "patch": patch, "path": path,
                         "pixel_size_nm": PIXEL_SIZE_NM})
    return pd.DataFrame(rows)


def evaluate(frames: list, truth: pd.DataFrame, reference: np.ndarray | None, workers: int) -> dict:
    """Extract, average per film and score one variant (raw or histogram-matched patches)."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        manifest = write_patches(frames, root, reference)
        start = time.perf_counter()
        patches = extract_patch_features(manifest, root, workers=workers, progress=False)
        seconds = time.perf_counter() - start
    errors = feature_errors(film_features(patches), truth)
    per_film = errors.pop("per_film")
    return {
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in errors.items()},
        "meets_targets": {k: bool(errors[k] <= limit) for k, limit in TARGETS.items()},
        "n_patches": len(patches),
        "seconds_per_patch_wall": round(seconds / len(patches), 5),
        "seconds_per_patch_per_worker": round(seconds * workers / len(patches), 5),
        "error_quantiles": per_film[list(ERROR_COLUMNS)].quantile([0.05, 0.5, 0.95]).round(4).to_dict(),
        "per_film": per_film.round(4).to_dict(orient="records"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=40)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="reports/bench_features.json")
    args = parser.parse_args()

    frames = render_frames(args.films, args.frames, args.seed, args.workers)
    truth = pd.DataFrame([{"film_id": film_id, "frame": frame, **t} for film_id, frame, _, t in frames])
    reference = sum(grey_histogram(image[:-INFO_BAR]) for _, _, image, _ in frames)
    report = {
        "setup": {**vars(args), "frame_px": [WIDTH, HEIGHT], "info_bar_px": INFO_BAR, "tile_px": TILE,
                  "pixel_size_nm": PIXEL_SIZE_NM, "targets": TARGETS},
        "raw": evaluate(frames, truth, None, args.workers),
        "histogram_matched": evaluate(frames, truth, reference, args.workers),
    }
    write_json(report, args.out)
    for variant in ("raw", "histogram_matched"):
        summary = {k: v for k, v in report[variant].items() if k not in ("per_film", "error_quantiles")}
        print(variant, summary)


if __name__ == "__main__":
    main()
