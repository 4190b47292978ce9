"""The pipeline's structural features: per-frame measurement of a frames table, film aggregation, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from matmcl.features.extractor import FRAME_COLUMNS, extract_frame_features, feature_errors, film_features
from matmcl.features.synthetic import Look, MatSpec, render
from matmcl.schema import FEATURE_COLUMNS

LOOK = Look(edge_gain=0.3, electrons=30.0, psf_px=0.6, layer_dimming=0.5)


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory):
    """Two films of two frames each (one with an info bar and an empty info_bar_px cell: detected), and truth."""
    root = tmp_path_factory.mktemp("raw")
    rows, truth = [], []
    for film, width in (("A", 100.0), ("B", 200.0)):
        for frame in range(2):
            spec = MatSpec(field_nm=(3000.0, 3600.0), width_mean_nm=width, coverage=0.7, kappa=2.0, n_layers=2,
                           mean_angle_deg=15.0, seed=10 * frame + int(width))
            rendered = render(spec, 10.0, replace(LOOK, info_bar="zeiss" if frame else None))
            path = f"sem/{film}/{film}_{frame}.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rendered.image).save(root / path)
            rows.append({"film_id": film, "frame": frame, "path": path, "pixel_size_nm": 10.0,
                         "info_bar_px": pd.NA if frame else 0})
            truth.append({"film_id": film, "frame": frame, "info_bar_rows": rendered.info_bar_rows, **rendered.truth})
    frames = pd.DataFrame(rows).astype({"info_bar_px": "Int64"})
    return root, frames, pd.DataFrame(truth)


def test_frame_features_are_deterministic_in_table_order(frames_folder):
    root, frames, truth = frames_folder
    shuffled = frames.iloc[[2, 0, 3, 1]].reset_index(drop=True)
    serial = extract_frame_features(shuffled, root, workers=1, progress=False)
    parallel = extract_frame_features(shuffled, root, workers=2, progress=False)
    pd.testing.assert_frame_equal(serial, parallel)
    assert list(serial.columns) == list(FRAME_COLUMNS)
    assert serial[["film_id", "frame"]].equals(shuffled[["film_id", "frame"]])
    merged = serial.merge(truth, on=["film_id", "frame"], suffixes=("", "_true"))
    assert (merged["info_bar_rows"] == merged["info_bar_rows_true"]).all()  # detected where the cell is empty


@pytest.mark.xfail(strict=True, reason="known limitation (docs/measurement.md): touching parallel fibers of a dense "
                   "aligned mat merge, so 100-200 nm fibers read 6-17 % wide")
def test_frame_diameters_of_a_dense_aligned_mat_are_within_10_percent(frames_folder):
    root, frames, truth = frames_folder
    measured = extract_frame_features(frames, root, workers=1, progress=False)
    merged = measured.merge(truth, on=["film_id", "frame"], suffixes=("", "_true"))
    assert np.allclose(merged["diameter_nm"], merged["diameter_nm_true"], rtol=0.1)


def test_frame_table_needs_its_columns(frames_folder):
    root, frames, _ = frames_folder
    with pytest.raises(ValueError, match="pixel_size_nm"):
        extract_frame_features(frames.drop(columns="pixel_size_nm"), root, workers=1, progress=False)


def test_film_features_average_frames_and_orientation_moments():
    frames = pd.DataFrame({
        "film_id": ["A", "A", "B", "B"], "frame": [0, 1, 0, 1],
        "orientation_order": [0.8, 0.8, 0.6, 0.02], "mean_angle_deg": [10.0, 30.0, -89.0, np.nan],
        "diameter_nm": [100.0, 200.0, 100.0, np.nan], "pore_size_um": [0.1, 0.3, 0.2, 0.2],
        "porosity": [0.3, 0.5, 0.4, 0.4],
    })
    films = film_features(frames).set_index("film_id")
    assert films.loc["A", "mean_angle_deg"] == pytest.approx(20.0)
    assert films.loc["A", "orientation_order"] == pytest.approx(0.8)
    assert films.loc["B", "mean_angle_deg"] == pytest.approx(-89.0)  # the weak frame defines no angle
    assert films.loc["B", "orientation_order"] == pytest.approx(0.31)
    assert films.loc["A", "diameter_nm"] == pytest.approx(150.0)
    assert films.loc["B", "diameter_nm"] == pytest.approx(100.0)
    assert films["n_frames"].tolist() == [2, 2]
    assert list(films.columns) == [*FEATURE_COLUMNS, "n_frames"]


def test_feature_errors_against_frame_means():
    films = pd.DataFrame({"film_id": ["A"], "orientation_order": [0.5], "mean_angle_deg": [89.0],
                          "diameter_nm": [110.0], "pore_size_um": [0.18], "porosity": [0.4], "n_frames": [2]})
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
