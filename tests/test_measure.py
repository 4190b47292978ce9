"""`measure_frame`, info bars, TIFF pixel sizes and `matmcl measure` on synthetic images with exact truth.

Each test stands for a failure mode of the former patch-based extractor (issue 8): biased widths of thin sharp
fibers, scale dependence, unordered width series, info bars left in the frame, NaN / spurious order on noise.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from matmcl.features.diameter import profile_widths, pruned_skeleton
from matmcl.features.measure import MEASURE_KEYS, measure_frame, tiff_pixel_size_nm
from matmcl.features.synthetic import INFO_BAR_STYLES, Look, MatSpec, render
from matmcl.measure_cli import add_measure_arguments, cmd_measure
from matmcl.sem.infobar import detect_info_bar

SHARP = Look(edge_gain=0.0, electrons=40.0, psf_px=0.5)
SEM = Look(edge_gain=0.35, electrons=30.0, psf_px=0.6, layer_dimming=0.5)


@pytest.mark.parametrize("width_px", [4, 5, 12])
def test_sharp_fiber_widths_within_five_percent(width_px):
    spec = MatSpec(field_nm=(4000.0, 4000.0), width_mean_nm=10.0 * width_px, coverage=0.5, seed=width_px)
    frame = render(spec, 10.0, SHARP)
    measured = measure_frame(frame.image, 10.0)
    assert measured["diameter_nm"] == pytest.approx(frame.truth["diameter_nm"], rel=0.05)
    assert measured["n_fibers_measured"] >= 10
    assert set(measured) == set(MEASURE_KEYS)


def test_same_mat_at_three_pixel_sizes_gives_one_diameter():
    mat = MatSpec(field_nm=(9600.0, 9600.0), width_mean_nm=300.0, width_cv=0.2, coverage=0.8, kappa=1.0, n_layers=2,
                  seed=600)
    diameters = [measure_frame(render(mat, pixel, SEM).image, pixel)["diameter_nm"] for pixel in (12.0, 24.0, 40.0)]
    assert max(diameters) / min(diameters) - 1 <= 0.05


def test_width_series_comes_out_in_order():
    diameters = []
    for width in (150.0, 300.0, 600.0):
        spec = MatSpec(field_nm=(9300.0, 9300.0), width_mean_nm=width, width_cv=0.3, coverage=1.2, n_layers=4, seed=7)
        diameters.append(measure_frame(render(spec, 31.0, replace(SEM, depth_blur_nm=0.3 * width)).image, 31.0)
                         ["diameter_nm"])
    assert diameters[0] < diameters[1] < diameters[2]
    assert diameters[2] / diameters[0] == pytest.approx(4.0, rel=0.2)


@pytest.mark.parametrize("style", INFO_BAR_STYLES)
@pytest.mark.parametrize("light", [False, True])
def test_info_bar_is_found_and_removed(style, light):
    spec = MatSpec(field_nm=(3200.0, 4000.0), width_mean_nm=100.0, coverage=0.7, kappa=2.0, mean_angle_deg=30.0,
                   seed=1)
    frame = render(spec, 10.0, replace(SEM, info_bar=style, info_bar_light=light))
    assert detect_info_bar(frame.image) == frame.info_bar_rows
    with_bar = measure_frame(frame.image, 10.0)
    bar_free = measure_frame(frame.image[: -frame.info_bar_rows], 10.0, info_bar="none")
    assert with_bar["info_bar_rows"] == frame.info_bar_rows
    assert with_bar["diameter_nm"] == pytest.approx(bar_free["diameter_nm"])
    assert with_bar["orientation_order"] == pytest.approx(bar_free["orientation_order"])


def test_frame_without_bar_is_left_whole_and_a_given_row_count_wins():
    frame = render(MatSpec(field_nm=(3000.0, 3000.0), width_mean_nm=80.0, coverage=0.6, seed=2), 10.0, SEM)
    assert detect_info_bar(frame.image) == 0
    assert measure_frame(frame.image, 10.0)["info_bar_rows"] == 0
    assert measure_frame(frame.image, 10.0, info_bar=25)["info_bar_rows"] == 25
    with pytest.raises(ValueError, match="does not fit"):
        measure_frame(frame.image, 10.0, info_bar=300)


def test_dark_saturated_mat_is_not_taken_for_a_bar():
    frame = render(MatSpec(field_nm=(3000.0, 3000.0), width_mean_nm=60.0, coverage=0.3, seed=4), 10.0,
                   Look(background=0.0, electrons=0.0, edge_gain=0.0))
    assert detect_info_bar(frame.image) == 0


@pytest.mark.parametrize("kappa, angle", [(2.0, 35.0), (4.0, -60.0)])
def test_orientation_follows_von_mises(kappa, angle):
    spec = MatSpec(field_nm=(8000.0, 8000.0), width_mean_nm=60.0, coverage=0.5, kappa=kappa, mean_angle_deg=angle,
                   n_layers=2, seed=11)
    frame = render(spec, 10.0, replace(SHARP, layer_dimming=0.5))
    measured = measure_frame(frame.image, 10.0)
    assert measured["orientation_order"] == pytest.approx(frame.truth["orientation_order"], abs=0.03)  # realised
    assert measured["orientation_order"] == pytest.approx(frame.truth["vonmises_order"], abs=0.03)
    assert (measured["mean_angle_deg"] - frame.truth["mean_angle_deg"] + 90) % 180 - 90 == pytest.approx(0, abs=2.0)


def test_diagonal_centre_line_counts_its_full_length():
    """An 8-connected skeleton has √2 fewer pixels per unit length on the diagonal: each pixel's arc length restores
    it, so a horizontal and a 45° fiber of the same length weigh the same (an unweighted count reads 1 : 0.71)."""
    rows, cols = np.indices((240, 240), dtype=float)
    horizontal = (np.abs(rows - 40) <= 2.5) & (cols >= 30) & (cols <= 200)
    t = ((rows - 80) + (cols - 30)) / 2  # along the diagonal from (80, 30), in units of 1/√2 px
    diagonal = (np.abs((rows - 80) - (cols - 30)) / np.sqrt(2) <= 2.5) & (t >= 0) & (t <= 170 / np.sqrt(2))
    mask = horizontal | diagonal
    radius = ndimage.distance_transform_edt(mask)
    widths = profile_widths(mask * 200.0, pruned_skeleton(mask, radius), radius, 5.0, 200.0)
    on_diagonal = np.abs(np.abs(widths.angles_rad) - np.pi / 4) < 0.2
    on_axis = np.abs(widths.angles_rad) < 0.2
    assert (on_diagonal | on_axis).mean() > 0.95  # the rest: the skeleton's forks at the band's square ends
    assert widths.arc_px[on_diagonal].sum() / widths.arc_px[on_axis].sum() == pytest.approx(1.0, abs=0.05)
    assert on_diagonal.sum() / on_axis.sum() < 0.8  # the pixel counts alone would under-weight the diagonal


def test_noise_and_rings_have_no_order_and_no_angle():
    rng = np.random.default_rng(0)
    noise = rng.poisson(30.0, (256, 256)).astype(np.uint8)
    rows, cols = np.indices((300, 300)) - 150
    rings = (127 + 100 * np.sin(np.hypot(rows, cols) / 3.0)).astype(np.uint8)
    for image in (noise, rings):
        measured = measure_frame(image, 10.0)
        assert np.isfinite(measured["orientation_order"]) and measured["orientation_order"] < 0.05
        assert measured["mean_angle_deg"] is None
        assert measured["quality"]  # "too weak to define a mean angle" or "no resolvable fibers"


@pytest.mark.parametrize("kappa", [0.5, 2.0])
def test_generator_realises_the_von_mises_order_with_few_fibers(kappa):
    spec = MatSpec(field_nm=(4000.0, 4000.0), width_mean_nm=100.0, coverage=0.5, kappa=kappa, mean_angle_deg=-41.0,
                   seed=3)
    truth = render(spec, 40.0, SHARP).truth
    assert truth["n_fibers"] < 40
    assert truth["orientation_order"] == pytest.approx(truth["vonmises_order"], abs=0.01)


def test_isotropic_mat_reads_order_below_0_05():
    spec = MatSpec(field_nm=(8000.0, 8000.0), width_mean_nm=50.0, coverage=0.6, n_layers=2, balanced=True, seed=400)
    frame = render(spec, 10.0, SHARP)
    assert frame.truth["orientation_order"] < 0.005  # fibers in 90°-turned pairs: no realised order
    measured = measure_frame(frame.image, 10.0)
    assert measured["orientation_order"] < 0.05 and measured["mean_angle_deg"] is None


def test_pores_of_a_layered_mat_keep_dim_back_fibers_and_smooth_edges():
    spec = MatSpec(field_nm=(4000.0, 4000.0), width_mean_nm=80.0, coverage=0.8, n_layers=3, seed=108)
    frame = render(spec, 10.0, replace(SHARP, layer_dimming=0.5, depth_blur_nm=12.0))
    measured = measure_frame(frame.image, 10.0)
    assert measured["pore_size_um"] == pytest.approx(frame.truth["pore_size_um"], rel=0.15)  # was −14…−28 %
    assert measured["porosity"] == pytest.approx(frame.truth["porosity"], abs=0.1)


def test_thin_bright_rim_does_not_widen_fibers_much():
    spec = MatSpec(field_nm=(6000.0, 6000.0), width_mean_nm=120.0, coverage=0.6, seed=11)
    look = Look(edge_gain=0.4, rim_nm=20.0, electrons=25.0, psf_nm=20.0, psf_px=0.5)
    frame = render(spec, 20.0, look)
    measured = measure_frame(frame.image, 20.0)
    assert measured["diameter_nm"] == pytest.approx(frame.truth["diameter_nm"], rel=0.08)  # half maximum: +15 %


def test_flat_frame_gives_zero_order_and_a_warning():
    measured = measure_frame(np.full((100, 100), 80, np.uint8), 10.0)
    assert measured["orientation_order"] == 0.0 and measured["diameter_nm"] is None
    assert measured["quality"]


@pytest.fixture(scope="module")
def frame():
    return render(MatSpec(field_nm=(3000.0, 4000.0), width_mean_nm=120.0, coverage=0.7, seed=8), 15.0,
                  replace(SEM, info_bar="fei"))


def test_pixel_size_from_tiff_metadata(frame, tmp_path):
    fei, zeiss, imagej, plain = (tmp_path / f"{n}.tif" for n in ("fei", "zeiss", "imagej", "plain"))
    tifffile.imwrite(fei, frame.image, extratags=[(34682, "s", 0, "[Scan]\nPixelWidth=1.5e-08\n", True)])
    tifffile.imwrite(zeiss, frame.image, extratags=[(34118, "s", 0, "\r\nAP_PIXEL_SIZE\r\nPixel Size = 15.0 nm\r\n",
                                                     True)])
    tifffile.imwrite(imagej, frame.image, imagej=True, resolution=(1 / 0.015, 1 / 0.015), metadata={"unit": "um"})
    tifffile.imwrite(plain, frame.image)
    for path in (fei, zeiss, imagej):
        assert tiff_pixel_size_nm(path) == pytest.approx(15.0)
    assert tiff_pixel_size_nm(plain) is None
    assert tiff_pixel_size_nm(tmp_path / "missing.tif") is None


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_measure_arguments(parser)
    return parser.parse_args(list(argv))


def test_measure_command_prints_json_per_frame(frame, tmp_path, capsys):
    path = tmp_path / "frame.tif"
    tifffile.imwrite(path, frame.image, extratags=[(34682, "s", 0, "[Scan]\nPixelWidth=1.5e-08\n", True)])
    assert cmd_measure(_parse(str(path), "--json")) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert set(MEASURE_KEYS) <= set(row) and row["pixel_size_nm"] == pytest.approx(15.0)
    assert row["info_bar_rows"] == frame.info_bar_rows
    assert row["diameter_nm"] == pytest.approx(frame.truth["diameter_nm"], rel=0.1)
    assert cmd_measure(_parse(str(path), "--json", "--pixel-size-nm", "30", "--info-bar", "none")) == 0
    override = json.loads(capsys.readouterr().out)
    assert override["pixel_size_nm"] == 30.0 and override["info_bar_rows"] == 0


def test_measure_command_errors_name_the_file(frame, tmp_path):
    plain = tmp_path / "plain.png"
    tifffile.imwrite(tmp_path / "plain.tif", frame.image)
    with pytest.raises(ValueError, match="plain.tif: no pixel size"):
        cmd_measure(_parse(str(tmp_path / "plain.tif")))
    with pytest.raises(FileNotFoundError, match="plain.png"):
        cmd_measure(_parse(str(plain), "--pixel-size-nm", "10"))
    with pytest.raises(SystemExit):
        _parse("x.tif", "--info-bar", "bottom")
