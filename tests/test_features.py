"""Structural features: exact synthetic bars, rendered virtual-lab frames vs. their ground truth, the pipeline API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from matmcl.features.diameter import fiber_diameter_nm
from matmcl.features.extractor import StructureFeatureExtractor, extract_patch_features, feature_errors, film_features
from matmcl.features.orientation import orientation_order
from matmcl.features.pores import pore_size_um
from matmcl.lab.conditions import sample_conditions
from matmcl.lab.physics import draw_film_structure
from matmcl.lab.render import render_frame
from matmcl.schema import FEATURE_COLUMNS
from matmcl.sem.histmatch import grey_histogram, match_histogram
from matmcl.sem.patching import tile_frame

BACKGROUND, FIBER = 20, 200
# Rendered frames as in the default pipeline: 640 x 480 with a 64-row info bar, 20 nm/px, 128-px patches.
WIDTH, HEIGHT, INFO_BAR, PIXEL_NM, TILE = 640, 480, 64, 20.0, 128
N_FILMS, N_FRAMES, SEED = 6, 2, 7
# Looser than the benchmark targets (10 %, 0.05, 15 % on 40 films): six films are a noisy sample.
MAX_DIAMETER_MAPE, MAX_ORDER_MAE, MAX_PORE_MAPE = 0.15, 0.08, 0.20


def bar_coverage(width_px: float, angle_deg: float, spacing_px: float, size: int = 192, shift_px: float = 0.3
                 ) -> np.ndarray:
    """Anti-aliased coverage (0..1) of parallel straight bars at `angle_deg` (counter-clockwise, y up)."""
    rows, cols = np.indices((size, size), dtype=float)
    theta = np.deg2rad(angle_deg)
    across = cols * np.sin(theta) + rows * np.cos(theta) + shift_px  # coordinate along the bars' normal
    distance = np.abs((across + spacing_px / 2) % spacing_px - spacing_px / 2)
    return np.clip(width_px / 2 - distance + 0.5, 0.0, 1.0)


def grey(coverage: np.ndarray) -> np.ndarray:
    return np.rint(BACKGROUND + (FIBER - BACKGROUND) * coverage).astype(np.uint8)


@pytest.mark.parametrize("width_px", [10, 16, 24])
@pytest.mark.parametrize("angle_deg", [0, 35, -50, 80])
def test_skeleton_diameter_of_exact_bar_masks(width_px, angle_deg):
    mask = bar_coverage(width_px, angle_deg, 3 * width_px) > 0.5
    stats = fiber_diameter_nm(mask, pixel_size_nm=10.0)
    assert stats.mean_nm == pytest.approx(10.0 * width_px, rel=0.05)
    assert stats.median_nm == pytest.approx(10.0 * width_px, abs=10.0)  # the median of the pixel grid's distances


@pytest.mark.parametrize("width_px, angle_deg", [(4, 0), (6, 30), (8, -60), (12, 75), (5, 45), (10, -89)])
def test_orientation_of_parallel_bars(width_px, angle_deg):
    order, angle = orientation_order(grey(bar_coverage(width_px, angle_deg, 4 * width_px)))
    assert order == pytest.approx(1.0, abs=0.03)
    assert (angle - angle_deg + 90) % 180 - 90 == pytest.approx(0.0, abs=1.0)


def test_orientation_of_two_crossing_families():
    coverage = np.maximum(bar_coverage(6, 0, 24), bar_coverage(6, 60, 24))
    order, angle = orientation_order(grey(coverage))
    assert order == pytest.approx(np.cos(np.deg2rad(60)), abs=0.03)  # |mean of exp(2iθ)| over θ = 0°, 60°
    assert angle == pytest.approx(30.0, abs=2.0)


def test_orientation_is_not_biased_by_shot_noise():
    clean = grey(bar_coverage(8, 30, 32)).astype(float)
    noisy = np.random.default_rng(0).poisson(clean / 4) * 4  # ~5 electrons at the background
    order, angle = orientation_order(np.clip(noisy, 0, 255).astype(np.uint8))
    assert order == pytest.approx(1.0, abs=0.03)
    assert angle == pytest.approx(30.0, abs=1.0)


def test_extractor_on_ideal_bars():
    coverage = bar_coverage(12, 40, 48)
    row = StructureFeatureExtractor(pixel_size_nm=10.0).fit().transform([grey(coverage)]).iloc[0]
    assert row["orientation_order"] == pytest.approx(1.0, abs=0.03)
    assert row["mean_angle_deg"] == pytest.approx(40.0, abs=1.0)
    # Sharp two-level bars come out up to ~0.2·d wide (see matmcl.features.segmentation); never narrow.
    assert 120.0 <= row["diameter_nm"] <= 1.25 * 120.0
    assert row["porosity"] == pytest.approx(0.75, abs=0.08)
    assert row["pore_size_um"] == pytest.approx(pore_size_um(coverage <= 0.5, 10.0), rel=0.15)


def test_extractor_needs_a_pixel_size_and_2d_images():
    image = grey(bar_coverage(8, 0, 32))
    with pytest.raises(ValueError, match="pixel size"):
        StructureFeatureExtractor().transform([image])
    with pytest.raises(ValueError, match="2-D"):
        StructureFeatureExtractor(pixel_size_nm=10.0).transform([np.stack([image, image], axis=-1)])
    per_image = StructureFeatureExtractor().transform([image, image], pixel_sizes=[10.0, 20.0])
    assert per_image["diameter_nm"].iloc[1] == pytest.approx(2 * per_image["diameter_nm"].iloc[0])


@pytest.fixture(scope="module")
def rendered():
    """Patches of rendered frames (raw and histogram-matched to their pooled histogram) and the per-frame truth."""
    conditions = sample_conditions(N_FILMS, SEED)
    films = draw_film_structure(conditions, np.random.default_rng(SEED))
    frames, truth = [], []
    for i, (film_id, film) in enumerate(zip(conditions["film_id"], films.to_dict("records"))):
        for frame in range(N_FRAMES):
            rng = np.random.default_rng([SEED, i, frame])
            image, frame_truth = render_frame(film, WIDTH, HEIGHT, INFO_BAR, PIXEL_NM, rng)
            frames.append((film_id, frame, image))
            truth.append({"film_id": film_id, "frame": frame, **frame_truth})
    reference = sum(grey_histogram(image[:-INFO_BAR]) for _, _, image in frames)
    rows, raw, matched = [], [], []
    for film_id, frame, image in frames:
        for patch, tile in enumerate(tile_frame(image, INFO_BAR, TILE)):
            rows.append({"film_id": film_id, "frame": frame, "patch": patch})
            raw.append(tile.array)
            matched.append(match_histogram(tile.array, reference))
    return pd.DataFrame(rows), {"raw": raw, "matched": matched}, pd.DataFrame(truth)


@pytest.mark.parametrize("variant", ["raw", "matched"])
def test_rendered_frames_meet_the_targets(rendered, variant):
    keys, patches, truth = rendered
    features = StructureFeatureExtractor(pixel_size_nm=PIXEL_NM).transform(patches[variant])
    errors = feature_errors(film_features(pd.concat([keys, features], axis=1)), truth)
    summary = {k: round(v, 4) for k, v in errors.items() if not isinstance(v, pd.DataFrame)}
    print(f"\n{variant}: {summary}")
    assert errors["n_films"] == N_FILMS
    assert errors["diameter_mape"] <= MAX_DIAMETER_MAPE
    assert errors["orientation_order_mae"] <= MAX_ORDER_MAE
    assert errors["pore_size_mape"] <= MAX_PORE_MAPE


def test_extract_patch_features_is_deterministic_and_keeps_manifest_order(rendered, tmp_path):
    keys, patches, _ = rendered
    manifest = keys.iloc[:24].iloc[::-1].reset_index(drop=True)  # any order
    paths = []
    for i, row in manifest.iterrows():
        path = f"patches/{row.film_id}/{row.film_id}_f{row.frame}_p{row.patch}.png"
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(patches["matched"][23 - i]).save(tmp_path / path)
        paths.append(path)
    manifest = manifest.assign(path=paths, pixel_size_nm=PIXEL_NM)
    serial = extract_patch_features(manifest, tmp_path, workers=1, progress=False)
    parallel = extract_patch_features(manifest, tmp_path, workers=2, progress=False)
    pd.testing.assert_frame_equal(serial, parallel)
    assert list(serial.columns) == ["film_id", "frame", "patch", *FEATURE_COLUMNS]
    assert serial[["film_id", "frame", "patch"]].equals(manifest[["film_id", "frame", "patch"]])
    direct = StructureFeatureExtractor(pixel_size_nm=PIXEL_NM).transform(patches["matched"][23::-1])
    pd.testing.assert_frame_equal(serial[list(FEATURE_COLUMNS)], direct)


def test_film_features_average_orientation_per_frame():
    patches = pd.DataFrame({
        "film_id": ["A", "A", "B", "B"], "frame": [0, 0, 0, 1], "patch": [0, 1, 0, 0],
        "orientation_order": [1.0, 1.0, 1.0, 1.0], "mean_angle_deg": [0.0, 90.0, 0.0, 90.0],
        "diameter_nm": [100.0, 200.0, 100.0, np.nan], "pore_size_um": [0.1, 0.3, 0.2, 0.2],
        "porosity": [0.3, 0.5, 0.4, 0.4],
    })
    films = film_features(patches).set_index("film_id")
    assert films.loc["A", "orientation_order"] == pytest.approx(0.0)  # crossed patches of one field of view
    assert films.loc["B", "orientation_order"] == pytest.approx(1.0)  # each frame is aligned
    assert films.loc["A", "diameter_nm"] == pytest.approx(150.0)
    assert films.loc["B", "diameter_nm"] == pytest.approx(100.0)
    assert films["n_patches"].tolist() == [2, 2]


def test_feature_errors_against_frame_means():
    films = pd.DataFrame({"film_id": ["A"], "orientation_order": [0.5], "mean_angle_deg": [89.0],
                          "diameter_nm": [110.0], "pore_size_um": [0.18], "porosity": [0.4], "n_patches": [15]})
    truth = pd.DataFrame({"film_id": ["A", "A"], "frame": [0, 1], "diameter_mean_nm": [90.0, 110.0],
                          "orientation_order": [0.6, 0.6], "mean_angle_deg": [-89.0, -89.0], "pore_size_um": [0.2, 0.2],
                          "open_area_fraction": [0.35, 0.45], "n_beads": [0, 0]})
    errors = feature_errors(films, truth)
    assert errors["diameter_mape"] == pytest.approx(0.1)
    assert errors["orientation_order_mae"] == pytest.approx(0.1)
    assert errors["pore_size_mape"] == pytest.approx(0.1)
    assert errors["porosity_mae"] == pytest.approx(0.0)
    assert errors["mean_angle_mae_deg"] == pytest.approx(2.0)  # 89° and -89° are 2° apart
    assert errors["per_film"]["film_id"].tolist() == ["A"]
