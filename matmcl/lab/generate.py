"""Build a complete raw lab dataset with the virtual lab (layout: docs/data-format.md)."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from matmcl import __version__
from matmcl.artifacts import (
    COMPOSITE_CURVES_CSV,
    COMPOSITES_CSV,
    CONDITIONS_CSV,
    CURVES_CSV,
    FRAMES_CSV,
    GROUND_TRUTH_DIR,
    LAB_MANIFEST,
)
from matmcl.atomic import atomic_dir
from matmcl.config import SynthConfig
from matmcl.lab.conditions import sample_conditions
from matmcl.lab.mechanics import composite_expected_properties, expected_properties, write_specimen_curves
from matmcl.lab.physics import draw_film_structure
from matmcl.lab.render import render_frame
from matmcl.schema import COMPOSITE_ID, DIRECTION_NAMES, FILM_ID

log = logging.getLogger(__name__)

# Independent random streams, so adding frames does not change the tensile curves and vice versa.
STREAM_FILMS, STREAM_FRAMES, STREAM_SPECIMENS, STREAM_COMPOSITES = 1, 2, 3, 4


def _render_film_frames(job: tuple[int, str, dict, SynthConfig, str]) -> list[dict]:
    """Render and write all frames of one film; returns the frames-table rows merged with their ground truth."""
    index, film_id, film, cfg, root = job
    folder = Path(root) / "sem" / film_id
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for frame in range(cfg.n_frames):
        rng = np.random.default_rng([cfg.seed, STREAM_FRAMES, index, frame])
        image, truth = render_frame(
            film, cfg.frame_width_px, cfg.frame_height_px, cfg.info_bar_px, cfg.pixel_size_nm, rng, label=film_id
        )
        path = folder / f"{film_id}_f{frame}.png"
        Image.fromarray(image).save(path, optimize=False, compress_level=1)
        rows.append(
            {
                FILM_ID: film_id,
                "frame": frame,
                "path": path.relative_to(root).as_posix(),
                "pixel_size_nm": cfg.pixel_size_nm,
                "info_bar_px": cfg.info_bar_px,
                **truth,
            }
        )
    return rows


def render_all_frames(films: pd.DataFrame, cfg: SynthConfig, root: Path, progress: bool) -> pd.DataFrame:
    """Render every film's frames on `cfg.workers` processes, in a deterministic order."""
    jobs = [(i, row[FILM_ID], row.to_dict(), cfg, str(root)) for i, (_, row) in enumerate(films.iterrows())]
    bar = tqdm(total=len(jobs), desc="SEM frames (films)", disable=not progress, unit="film")
    rows: list[dict] = []
    if cfg.workers > 1:
        with ProcessPoolExecutor(cfg.workers) as pool:
            for result in pool.map(_render_film_frames, jobs, chunksize=4):
                rows.extend(result)
                bar.update()
    else:
        for job in jobs:
            rows.extend(_render_film_frames(job))
            bar.update()
    bar.close()
    return pd.DataFrame(rows)


def _curve_rows(expected: pd.DataFrame, id_column: str, folder: str, cfg: SynthConfig, stream: int, root: Path
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write replicate curves for every id × direction of `expected`; return the curves table and specimen truth."""
    table, truth = [], []
    for i, row in enumerate(expected.itertuples(index=False)):
        item, direction = getattr(row, id_column), int(row.direction)
        name = DIRECTION_NAMES[direction]
        rng = np.random.default_rng([cfg.seed, stream, i])
        paths = [f"{folder}/{item}/{name}_r{k}.csv" for k in range(cfg.n_replicates)]
        specimens = write_specimen_curves(row._asdict(), [root / p for p in paths], rng, cfg.strain_step_pct)
        for k, (path, props) in enumerate(zip(paths, specimens)):
            table.append({id_column: item, "direction": name, "replicate": k, "path": path})
            truth.append({id_column: item, "direction": direction, "replicate": k, **props})
    return pd.DataFrame(table), pd.DataFrame(truth)


GENERATOR = "matmcl.lab"


def written_files(root: Path) -> list[str]:
    """Every file under `root`, as sorted POSIX paths relative to it."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a folder holding anything the virtual lab did not write: a folder without its manifest (a
    lab's real data, say), or a single file its manifest does not list (a file a user added)."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    manifest_path = out_dir / LAB_MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if not str(manifest.get("generator", "")).startswith(GENERATOR):
        raise ValueError(f"{out_dir} holds data the virtual lab did not write (no {GENERATOR} {LAB_MANIFEST}); "
                         "refusing to replace it: choose another output folder")
    foreign = sorted(set(written_files(out_dir)) - set(manifest.get("files", [])) - {LAB_MANIFEST})
    if foreign:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ValueError(f"{out_dir} holds {len(foreign)} file(s) the virtual lab did not write ({listed}); "
                         "refusing to replace it: move them away or choose another output folder")


def generate_dataset(out_dir: str | Path, cfg: SynthConfig, profile: str = "default", progress: bool = True) -> dict:
    """Write a full virtual-lab raw dataset to `out_dir` (replaced atomically) and return its manifest with the
    wall times added under "seconds" (the manifest file leaves them and the worker count out: the same settings
    write the same bytes, so the data version DVC and the lineage record does not change from run to run).

    An existing `out_dir` is replaced only if the virtual lab wrote it; anything else raises ValueError.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    with atomic_dir(out_dir) as root:
        conditions = sample_conditions(cfg.n_films, cfg.seed, cfg.polymers)
        conditions.to_csv(root / CONDITIONS_CSV, index=False)
        films = draw_film_structure(conditions, np.random.default_rng([cfg.seed, STREAM_FILMS]))
        films.insert(0, FILM_ID, conditions[FILM_ID])

        frames = render_all_frames(films, cfg, root, progress)
        frame_columns = [FILM_ID, "frame", "path", "pixel_size_nm", "info_bar_px"]
        (root / "sem").mkdir(exist_ok=True)
        frames[frame_columns].to_csv(root / FRAMES_CSV, index=False)
        t_frames = time.perf_counter() - start

        properties = expected_properties(films)
        curves, specimens = _curve_rows(properties, FILM_ID, "tensile", cfg, STREAM_SPECIMENS, root)
        curves.to_csv(root / CURVES_CSV, index=False)

        n_composites = min(cfg.n_composites, len(films))
        if n_composites < cfg.n_composites:
            log.warning("only %d films: making %d composites instead of %d", len(films), n_composites, cfg.n_composites)
        composite_films = np.sort(
            np.random.default_rng([cfg.seed, STREAM_COMPOSITES]).choice(len(films), n_composites, replace=False)
        )
        composites = pd.DataFrame(
            {COMPOSITE_ID: [f"C{i + 1:03d}" for i in range(n_composites)],
             FILM_ID: films[FILM_ID].to_numpy()[composite_films]}
        )
        (root / "composites").mkdir()
        composites.to_csv(root / COMPOSITES_CSV, index=False)
        composite_truth = composite_expected_properties(
            films.iloc[composite_films].reset_index(drop=True), composites[COMPOSITE_ID],
            np.random.default_rng([cfg.seed, STREAM_COMPOSITES, 1]),
        )
        composite_curves, composite_specimens = _curve_rows(
            composite_truth, COMPOSITE_ID, "composites/tensile", cfg, STREAM_COMPOSITES, root
        )
        composite_curves.to_csv(root / COMPOSITE_CURVES_CSV, index=False)

        truth = root / GROUND_TRUTH_DIR
        truth.mkdir()
        image_truth = frames.drop(columns=["path", "pixel_size_nm", "info_bar_px"])
        films["pore_size_um"] = image_truth.groupby(FILM_ID, sort=False)["pore_size_um"].mean().to_numpy()
        conditions.merge(films, on=FILM_ID).to_parquet(truth / "films.parquet", index=False)
        image_truth.to_parquet(truth / "images.parquet", index=False)
        properties.to_parquet(truth / "properties.parquet", index=False)
        specimens.to_parquet(truth / "specimens.parquet", index=False)
        composite_truth.to_parquet(truth / "composites.parquet", index=False)
        composite_specimens.to_parquet(truth / "composite_specimens.parquet", index=False)

        manifest = {
            "generator": f"{GENERATOR} {__version__}",
            "files": written_files(root),
            "profile": profile,
            "config": {k: v for k, v in asdict(cfg).items() if k != "workers"},  # workers do not change the data
            "counts": {
                "films": len(films),
                "frames": len(frames),
                "curves": len(curves),
                "composites": len(composites),
                "composite_curves": len(composite_curves),
            },
        }
        (root / LAB_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["seconds"] = {"frames": round(t_frames, 2), "total": round(time.perf_counter() - start, 2)}
    log.info("virtual lab: %s films, %s frames in %.1f s", len(films), len(frames), manifest["seconds"]["total"])
    return manifest
