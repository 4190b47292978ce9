"""SEM patching, histogram matching and the preprocessing step (tiny frames, a few seconds in all)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.exposure import match_histograms

from matmcl.config import PreprocessConfig
from matmcl.rawdata import RawDataError
from matmcl.sem import preprocess
from matmcl.sem.histmatch import N_LEVELS, grey_histogram, load_reference, match_histogram, save_reference
from matmcl.sem.patching import grid_shape, tile_frame
from matmcl.sem.preprocess import MANIFEST_COLUMNS, preprocess_frames

# Small frames for the pipeline tests: 200 x 160 px, 32-row info bar, 64-px tiles -> 2 rows x 3 columns.
WIDTH, HEIGHT, INFO_BAR, TILE = 200, 160, 32, 64
PATCHES_PER_FRAME = 6
INFO_BAR_GREY = 255
# (gain, offset) of the brightness/contrast drift of each film's SEM session.
DRIFTS = {"A": (0.35, 20.0), "B": (0.9, 10.0), "C": (0.5, 120.0)}
FRAMES_PER_FILM = 2


def fiber_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random texture in [0, 1], the same process for every frame."""
    field = gaussian_filter(rng.standard_normal((height, width)), sigma=2.0)
    return (field - field.min()) / (field.max() - field.min())


def drifted_frame(rng: np.random.Generator, gain: float, offset: float) -> np.ndarray:
    """A frame with the session's brightness/contrast drift and a saturated info bar at the bottom."""
    usable = np.clip(offset + gain * 254 * fiber_texture(rng, HEIGHT - INFO_BAR, WIDTH), 0, INFO_BAR_GREY - 1)
    bar = np.full((INFO_BAR, WIDTH), INFO_BAR_GREY)
    return np.vstack([usable, bar]).astype(np.uint8)


def write_raw(raw: Path, drifts: dict[str, tuple[float, float]] = DRIFTS) -> pd.DataFrame:
    """Write frames of films with different drifts under `raw/sem/` and return the frames table."""
    rng = np.random.default_rng(0)
    rows = []
    for film_id, (gain, offset) in drifts.items():
        (raw / "sem" / film_id).mkdir(parents=True)
        for k in range(FRAMES_PER_FILM):
            rel = f"sem/{film_id}/{film_id}_f{k}.png"
            Image.fromarray(drifted_frame(rng, gain, offset)).save(raw / rel)
            rows.append({"film_id": film_id, "frame": k, "path": rel, "pixel_size_nm": 20.0, "info_bar_px": INFO_BAR})
    return pd.DataFrame(rows)


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    return tmp_path / "raw", write_raw(tmp_path / "raw")


def config(workers: int = 1) -> PreprocessConfig:
    return PreprocessConfig(tile_px=TILE, reference="pooled", workers=workers)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- grid geometry -------------------------------------------------------------------------------------------


def test_paper_frame_gives_5_by_3_patches_above_the_info_bar() -> None:
    height, width, info_bar, tile = 1920, 2560, 128, 512
    rows, cols = np.mgrid[0:height, 0:width]
    frame = ((rows // tile) * (width // tile) + cols // tile).astype(np.uint8)  # each tile's pixels = its index
    frame[height - info_bar :] = INFO_BAR_GREY
    tiles = tile_frame(frame, info_bar, tile)
    assert grid_shape(height, width, info_bar, tile) == (3, 5)
    assert len(tiles) == 15
    assert [(t.grid_row, t.grid_col) for t in tiles] == [(r, c) for r in range(3) for c in range(5)]
    for index, t in enumerate(tiles):
        assert t.array.shape == (tile, tile)
        assert (t.array == index).all()  # right place, row-major numbering, no info-bar pixel


def test_small_frame_grid_and_too_small_frame() -> None:
    frame = np.zeros((HEIGHT, WIDTH), np.uint8)
    tiles = tile_frame(frame, INFO_BAR, TILE)
    assert len(tiles) == PATCHES_PER_FRAME
    assert max(t.grid_row for t in tiles) == 1 and max(t.grid_col for t in tiles) == 2
    assert tile_frame(frame, 0, 80)[-1].grid_row == 1  # without a bar, 160 rows hold two 80-px rows
    with pytest.raises(ValueError, match="no 200px tile fits"):
        tile_frame(frame, INFO_BAR, 200)


# --- histogram matching --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_match_histogram_equals_skimage_within_one_level(seed: int) -> None:
    rng = np.random.default_rng(seed)
    patch = (rng.beta(2, 5, (64, 64)) * 200 + 20).astype(np.uint8)
    reference = np.concatenate([rng.normal(60, 10, 3000), rng.normal(180, 25, 5000)])  # bimodal, with gaps
    reference = np.clip(reference, 0, 255).astype(np.uint8).reshape(80, 100)
    ours = match_histogram(patch, grey_histogram(reference))
    expected = match_histograms(patch, reference)
    assert ours.dtype == np.uint8
    assert np.abs(ours.astype(float) - expected).max() <= 1.0


def test_reference_json_round_trip(tmp_path: Path) -> None:
    counts = np.arange(N_LEVELS)
    save_reference(counts, tmp_path / "ref.json", method="pooled", n_frames=3)
    assert np.array_equal(load_reference(tmp_path / "ref.json"), counts)
    assert json.loads((tmp_path / "ref.json").read_text())["n_frames"] == 3


def test_matching_removes_session_drift(raw: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    manifest, _ = preprocess_frames(raw[1], raw[0], tmp_path / "out", config(), progress=False)
    raw_means = manifest.groupby("film_id")["raw_mean"].mean()
    assert raw_means.max() - raw_means.min() > 50  # clearly different before
    assert manifest["raw_std"].max() / manifest["raw_std"].min() > 2
    reference = load_reference(tmp_path / "out" / "reference_histogram.json")
    levels = np.arange(N_LEVELS)
    ref_mean = (levels * reference).sum() / reference.sum()
    ref_std = np.sqrt(((levels - ref_mean) ** 2 * reference).sum() / reference.sum())
    for column in ("matched_mean", "matched_std"):
        assert np.ptp(manifest[column]) < 2.0  # near-identical after, across films and patches
    # CDF matching maps a grey level to the reference level at its upper quantile: a slight upward bias.
    assert np.abs(manifest["matched_mean"] - ref_mean).max() < 3.0
    assert np.abs(manifest["matched_std"] - ref_std).max() < 3.0


# --- preprocessing step --------------------------------------------------------------------------------------


def test_empty_info_bar_cell_means_detect_and_a_given_count_wins(raw: tuple[Path, pd.DataFrame], tmp_path: Path
                                                                 ) -> None:
    given, _ = preprocess_frames(raw[1], raw[0], tmp_path / "given", config(), progress=False)
    detected, _ = preprocess_frames(raw[1].assign(info_bar_px=pd.NA), raw[0], tmp_path / "auto", config(),
                                    progress=False)
    assert detected.equals(given)
    assert tree_bytes(tmp_path / "auto") == tree_bytes(tmp_path / "given")
    taller, _ = preprocess_frames(raw[1].assign(info_bar_px=HEIGHT - TILE), raw[0], tmp_path / "tall", config(),
                                  progress=False)
    assert len(taller) == len(DRIFTS) * FRAMES_PER_FILM * (WIDTH // TILE) < len(given)


def test_manifest_columns_paths_and_outputs(raw: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    out = tmp_path / "out"
    frames = raw[1].sample(frac=1.0, random_state=1)  # input order must not matter
    manifest, stats = preprocess_frames(frames, raw[0], out, config(), progress=False)
    n_frames = len(DRIFTS) * FRAMES_PER_FILM
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert stats["n_frames"] == n_frames and stats["n_patches"] == n_frames * PATCHES_PER_FRAME
    assert stats["patches_per_s"] > 0
    assert list(manifest["film_id"]) == sorted(manifest["film_id"])
    assert manifest.iloc[7][["film_id", "frame", "patch", "grid_row", "grid_col"]].tolist() == ["A", 1, 1, 0, 1]
    assert manifest["path"].iloc[7] == "patches/A/A_f1_p1.png"
    assert sorted(tree_bytes(out / "patches")) == sorted(p.removeprefix("patches/") for p in manifest["path"])
    first = np.asarray(Image.open(out / manifest["path"].iloc[0]))
    assert first.shape == (TILE, TILE) and first.mean() == pytest.approx(manifest["matched_mean"].iloc[0])
    assert pd.read_parquet(out / "patches.parquet").equals(manifest)
    reference = load_reference(out / "reference_histogram.json")
    assert reference.sum() == n_frames * (HEIGHT - INFO_BAR) * WIDTH
    assert reference[INFO_BAR_GREY] == 0  # the info bar is not pooled


def test_same_input_gives_identical_bytes_for_any_worker_count(raw: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    one, _ = preprocess_frames(raw[1], raw[0], tmp_path / "w1", config(1), progress=False)
    two, _ = preprocess_frames(raw[1], raw[0], tmp_path / "w2", config(2), progress=False)
    assert one.equals(two)
    assert tree_bytes(tmp_path / "w1" / "patches") == tree_bytes(tmp_path / "w2" / "patches")


def fail_on_film(film_id: str):
    real = preprocess.write_png

    def write_png(array: np.ndarray, path: Path) -> None:
        if path.parent.name == film_id:
            raise RuntimeError("simulated crash")
        real(array, path)

    return write_png


def test_interrupted_run_leaves_nothing(
    raw: tuple[Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(preprocess, "write_png", fail_on_film("B"))  # forked workers inherit the patch
    with pytest.raises(RuntimeError, match="simulated crash"):
        preprocess_frames(raw[1], raw[0], out, config(2), progress=False)
    assert not out.exists() or list(out.iterdir()) == []


def test_interrupted_rerun_keeps_previous_patches(
    raw: tuple[Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    preprocess_frames(raw[1], raw[0], out, config(), progress=False)
    before = tree_bytes(out)
    monkeypatch.setattr(preprocess, "write_png", fail_on_film("C"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        preprocess_frames(raw[1], raw[0], out, config(), progress=False)
    assert tree_bytes(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["patches", "patches.parquet", "reference_histogram.json"]


def test_corrupt_frame_raises_loader_error_naming_it(raw: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    (raw[0] / "sem" / "B" / "B_f1.png").write_bytes(b"not a png")
    with pytest.raises(RawDataError, match="B_f1.png"):
        preprocess_frames(raw[1], raw[0], tmp_path / "out", config(2), progress=False)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_frame_smaller_than_a_tile_raises_loader_error(raw: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    too_big = PreprocessConfig(tile_px=HEIGHT, reference="pooled", workers=1)
    with pytest.raises(RawDataError, match="A_f0.png.*smaller than one"):
        preprocess_frames(raw[1], raw[0], tmp_path / "out", too_big, progress=False)
