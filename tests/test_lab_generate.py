"""The virtual lab's dataset: layout, formats, determinism and the CLI."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from matmcl.cli import build_parser, main
from matmcl.config import SynthConfig
from matmcl.lab.generate import generate_dataset
from matmcl.lab.mechanics import resimulate_properties
from matmcl.rawdata import load_raw_dataset
from matmcl.schema import CONDITION_COLUMNS, PROPERTY_COLUMNS
from matmcl.stages.table import STAGES
from matmcl.tensile import extract_properties, read_curve

TINY = SynthConfig(n_films=4, n_frames=2, frame_width_px=256, frame_height_px=224, info_bar_px=32, n_composites=2, workers=1)


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lab") / "raw"
    generate_dataset(out, TINY, progress=False)
    return out


def test_same_seed_gives_identical_files_whatever_the_workers(tiny_lab, tmp_path):
    generate_dataset(tmp_path / "again", SynthConfig(**{**TINY.__dict__, "workers": 2}), progress=False)
    assert digest(tiny_lab) == digest(tmp_path / "again")
    generate_dataset(tmp_path / "other", SynthConfig(**{**TINY.__dict__, "seed": 1}), progress=False)
    assert digest(tiny_lab)["conditions.csv"] != digest(tmp_path / "other")["conditions.csv"]


def test_layout_reads_back_through_the_validated_loader(tiny_lab):
    data = load_raw_dataset(tiny_lab)
    assert len(data.conditions) == 4 and list(data.conditions.columns[1:]) == list(CONDITION_COLUMNS)
    assert len(data.frames) == 8 and (data.frames["pixel_size_nm"] == 20.0).all()
    assert len(data.curves) == 4 * 2 * 3 and set(data.curves["direction"]) == {0, 1}
    assert len(data.composites) == 2 and len(data.composite_curves) == 2 * 2 * 3
    image = Image.open(tiny_lab / data.frames["path"].iloc[0])
    assert image.mode == "L" and image.size == (256, 224)
    manifest = json.loads((tiny_lab / "manifest.json").read_text())
    assert manifest["counts"]["frames"] == 8


def test_ground_truth_tables_match_the_curves(tiny_lab):
    truth = tiny_lab / "ground_truth"
    films = pd.read_parquet(truth / "films.parquet")
    assert {"diameter_mean_nm", "orientation_order", "porosity", "bonding", "pore_size_um"} <= set(films.columns)
    specimens = pd.read_parquet(truth / "specimens.parquet")
    first = specimens.iloc[0]
    curve = read_curve(tiny_lab / "tensile" / first["film_id"] / f"{'longitudinal' if first['direction'] else 'transverse'}_r0.csv")
    measured = extract_properties(curve["strain_pct"], curve["stress_mpa"])
    for prop in PROPERTY_COLUMNS:
        assert measured[prop] == pytest.approx(first[prop], rel=0.05)
    props = pd.read_parquet(truth / "properties.parquet")
    assert len(props) == 8 and (props["yield_strength_mpa"] < props["fracture_strength_mpa"]).all()


def test_resimulation_averages_the_film_variation():
    conditions = pd.DataFrame([{c: v for c, v in zip(CONDITION_COLUMNS, (0.4, 22, 18, 1500, 25, 45))}])
    few, many = (resimulate_properties(conditions, n, seed=s) for n, s in ((1, 0), (400, 0)))
    again = resimulate_properties(conditions, 400, seed=1)
    spread_few = abs(few["elastic_modulus_mpa"].iloc[0] / many["elastic_modulus_mpa"].iloc[0] - 1)
    spread_many = abs(again["elastic_modulus_mpa"].iloc[0] / many["elastic_modulus_mpa"].iloc[0] - 1)
    assert len(many) == 2 and spread_many < 0.05 and spread_many < spread_few + 0.05


def test_every_subcommand_has_help():
    commands = ["run", "predict", "measure", "import-bundle", "dvc-yaml", "resolve-params",
                *(row.command for row in STAGES)]
    for command in commands:
        result = subprocess.run([sys.executable, "-m", "matmcl.cli", command, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: matmcl" in result.stdout, command
    assert set(build_parser()._subparsers._group_actions[0].choices) >= set(commands)


def test_cli_synth_tiny_run(tmp_path, capsys):
    params = Path(__file__).parents[1] / "params.yaml"
    code = main(["--params", str(params), "--profile", "smoke", "--quiet", "--workspace", str(tmp_path),
                 "synth", "--n-films", "3", "--workers", "1"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["films"] == 3
    assert len(pd.read_csv(tmp_path / "data/virtual_lab/conditions.csv")) == 3


def test_cli_reports_a_clear_error_for_a_missing_input(tmp_path, capsys):
    code = main(["--quiet", "--workspace", str(tmp_path), "tables"])
    assert code == 2 and "error" in capsys.readouterr().err


def test_paper_profile_renders_full_size_frames_that_tile_into_15_patches(tmp_path):
    from dataclasses import replace

    from matmcl.config import PreprocessConfig, load_params, section
    from matmcl.rawdata import load_sem_image
    from matmcl.sem.patching import tile_frame

    params = load_params(Path(__file__).parents[1] / "params.yaml", "paper")
    cfg = replace(section(params, "synth", SynthConfig), n_films=1, n_frames=1, n_composites=1, workers=1)
    generate_dataset(tmp_path / "raw", cfg, "paper", progress=False)
    frame = load_sem_image(tmp_path / "raw/sem/F0001/F0001_f0.png")
    assert frame.shape == (1920, 2560)
    tiles = tile_frame(frame, cfg.info_bar_px, section(params, "preprocess", PreprocessConfig).tile_px)
    assert len(tiles) == 15 and {t.array.shape for t in tiles} == {(512, 512)}
