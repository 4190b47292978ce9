"""Physical trends of the virtual lab: process -> structure -> properties, and the rendered images."""

import numpy as np
import pandas as pd
import pytest

from matmcl.lab.physics import draw_film_structure, expected_structure, mat_mechanics, orientation_moments
from matmcl.lab.render import render_frame
from matmcl.schema import CONDITION_COLUMNS

BASE = {"flow_rate_ml_h": 0.4, "concentration_wt_pct": 22.0, "voltage_kv": 18.0, "drum_speed_rpm": 1000.0,
        "temperature_c": 25.0, "humidity_pct": 45.0}


def sweep(column: str, values) -> pd.DataFrame:
    return pd.DataFrame([{**BASE, column: v} for v in values])[list(CONDITION_COLUMNS)]


def test_diameter_rises_with_concentration_and_falls_with_voltage():
    conc = expected_structure(sweep("concentration_wt_pct", [18, 21, 24, 27]))["diameter_mean_nm"].to_numpy()
    volt = expected_structure(sweep("voltage_kv", [12, 16, 20, 24]))["diameter_mean_nm"].to_numpy()
    assert np.all(np.diff(conc) > 0) and conc[-1] / conc[0] > 1.5
    assert np.all(np.diff(volt) < 0)


def test_drum_speed_aligns_and_thins_fibers_and_waviness_starts_above_critical_speed():
    s = expected_structure(sweep("drum_speed_rpm", [0, 500, 1000, 2000, 3000]))
    assert np.all(np.diff(s["base_order"]) > 0)
    assert s["base_order"].iloc[0] < 0.1 and s["base_order"].iloc[-1] > 0.7
    assert np.all(np.diff(s["diameter_mean_nm"]) < 0)
    assert s["waviness"].iloc[:4].eq(0).all() and s["waviness"].iloc[-1] > 0


def test_beads_vanish_at_high_concentration():
    beads = expected_structure(sweep("concentration_wt_pct", [12, 16, 20, 26]))["bead_density_per_um2"].to_numpy()
    assert beads[0] > 0.2 and beads[-1] < 1e-3 and np.all(np.diff(beads) < 0)


def test_waviness_lowers_the_effective_order():
    s2, s4 = orientation_moments(np.array([0.8, 0.8]), np.array([0.0, 0.5]))
    assert s2[1] < s2[0] and s4[1] < s4[0]
    assert s2[0] == pytest.approx(0.8, abs=1e-3)


def test_anisotropy_rises_with_alignment():
    films = draw_film_structure(sweep("drum_speed_rpm", np.linspace(0, 2000, 30)), np.random.default_rng(0))
    ratio = (mat_mechanics(films, 0.0)["elastic_modulus_mpa"] / mat_mechanics(films, 90.0)["elastic_modulus_mpa"]).to_numpy()
    order = films["orientation_order"].to_numpy()
    assert np.corrcoef(order, ratio)[0, 1] > 0.9
    assert ratio[order < 0.15].max() < 1.5 and ratio[order > 0.7].min() > 4


def test_longitudinal_strength_beats_transverse_for_aligned_mats():
    films = draw_film_structure(sweep("drum_speed_rpm", [2000] * 10), np.random.default_rng(1))
    along, across = mat_mechanics(films, 0.0), mat_mechanics(films, 90.0)
    assert (along["fracture_strength_mpa"] > 2 * across["fracture_strength_mpa"]).all()
    assert (along["yield_strength_mpa"] < along["fracture_strength_mpa"]).all()


def test_film_level_variation_shows_in_images():
    """Two films made at the same conditions differ, and the difference is visible in the rendered truth."""
    films = draw_film_structure(sweep("drum_speed_rpm", [1000] * 40), np.random.default_rng(2))
    thin, thick = films["diameter_mean_nm"].idxmin(), films["diameter_mean_nm"].idxmax()
    truth = [render_frame(films.loc[i].to_dict(), 256, 224, 32, 20.0, np.random.default_rng(3))[1] for i in (thin, thick)]
    assert truth[1]["diameter_mean_nm"] > 1.3 * truth[0]["diameter_mean_nm"]


def test_rendered_alignment_and_beads_follow_conditions():
    films = draw_film_structure(sweep("drum_speed_rpm", [0, 2000]), np.random.default_rng(4))
    beaded = draw_film_structure(sweep("concentration_wt_pct", [13, 27]), np.random.default_rng(5))
    render = lambda f, seed: render_frame(f.to_dict(), 384, 320, 32, 20.0, np.random.default_rng(seed))
    random_mat, aligned_mat = (render(films.iloc[i], i)[1] for i in range(2))
    assert aligned_mat["orientation_order"] > random_mat["orientation_order"] + 0.4
    low, high = (render(beaded.iloc[i], 10 + i)[1] for i in range(2))
    assert low["n_beads"] > 5 and high["n_beads"] == 0


def test_frame_has_info_bar_and_uint8_pixels():
    film = draw_film_structure(sweep("drum_speed_rpm", [500]), np.random.default_rng(6)).iloc[0].to_dict()
    image, _ = render_frame(film, 256, 224, 32, 20.0, np.random.default_rng(0), label="X")
    assert image.shape == (224, 256) and image.dtype == np.uint8
    assert image[-32:].mean() < image[:-32].mean()  # dark bar with light text
    assert 20 < image[:-32].mean() < 200
