"""`matmcl retrieve`: cross-modal retrieval against the saved gallery (the model code is imported only when it runs).

Conditions → the gallery films whose structure matches best; an SEM frame → the films whose conditions match best.
Prints the ranked films (similarity, conditions, measured features), writes an image grid PNG, and can add a film
(its conditions and frames) to a gallery.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from matmcl.predict_cli import add_condition_arguments, read_conditions
from matmcl.schema import CONDITION_COLUMNS

DEFAULT_GRID = "retrieval_grid.png"


def add_retrieve_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `matmcl retrieve`: one query kind (conditions or frames), top-k, gallery, grid, adding films."""
    add_condition_arguments(parser)
    parser.add_argument("--image", action="append", default=[], metavar="PATH",
                        help="SEM frame (TIFF, PNG, JPEG, ...) of one query structure (repeatable: frames of one film)")
    parser.add_argument("--pixel-size-nm", type=float,
                        help="pixel size of the frames in nm (default: TIFF metadata, else the gallery's)")
    parser.add_argument("--info-bar-px", type=int, help="rows of the SEM info bar (default: params synth.info_bar_px)")
    parser.add_argument("--top-k", type=int, default=5, help="films to return per query (default: 5)")
    parser.add_argument("--gallery", help="gallery folder (default: <models>/gallery)")
    parser.add_argument("--models", help="models folder (default: workspace models_dir)")
    parser.add_argument("--grid", default=DEFAULT_GRID, help=f"image grid PNG to write (default: {DEFAULT_GRID})")
    parser.add_argument("--out", help="write the ranked films to this CSV (default: print to stdout)")
    parser.add_argument("--add", metavar="FILM_ID",
                        help="instead of querying: add a film (--conditions and --image) to the gallery")
    parser.add_argument("--save-gallery", metavar="DIR",
                        help="with --add: write the enlarged gallery here (default: the --gallery folder; never "
                             "the pipeline's models/gallery, which `matmcl retrieval` rebuilds)")


def _frame_patches(args: argparse.Namespace, retriever, info_bar: int) -> list:
    """Patches of every --image frame, each resampled to the gallery's pixel size."""
    from matmcl.features.measure import tiff_pixel_size_nm
    from matmcl.rawdata import load_sem_image

    from PIL import Image

    known = Image.registered_extensions()
    patches = []
    for path in map(Path, args.image):
        if path.suffix.lower() not in known:
            raise ValueError(f"{path}: unknown image format {path.suffix or '(no extension)'!r}; give an SEM frame "
                             "as TIFF, PNG, JPEG or BMP")
        frame = load_sem_image(path)  # RawDataError (a ValueError) names an unreadable or unknown format
        pixel_size = args.pixel_size_nm or tiff_pixel_size_nm(path)
        patches += retriever.patches_from_frame(frame, info_bar, pixel_size)
    return patches


def cmd_retrieve(args: argparse.Namespace) -> int:
    """Rank the gallery films for condition or SEM-frame queries (or add a film to a gallery)."""
    from matmcl.artifacts import GALLERY_DIR
    from matmcl.atomic import write_csv
    from matmcl.config import BoundsConfig, SynthConfig, Workspace, WorkspaceConfig, load_params, section
    from matmcl.retrieval.gallery import QUERY, Retriever
    from matmcl.retrieval.plots import plot_query_grid

    params = load_params(args.params, args.profile)
    workspace = Workspace(Path(args.workspace), section(params, "workspace", WorkspaceConfig))
    conditions = read_conditions(args, required=False)
    if (conditions is None) == (not args.image) and not args.add:
        raise ValueError("give one query: --conditions / --conditions-csv, or --image")
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    models = Path(args.models) if args.models else workspace.models
    retriever = Retriever.load(models, workspace.processed, args.gallery)
    info_bar = args.info_bar_px if args.info_bar_px is not None else section(params, "synth", SynthConfig).info_bar_px
    patches = _frame_patches(args, retriever, info_bar) if args.image else None
    if args.add:
        if conditions is None or len(conditions) != 1 or not patches:
            raise ValueError("--add needs one film's --conditions and at least one --image")
        target = Path(args.save_gallery or args.gallery or models / GALLERY_DIR)
        if target.resolve() == (workspace.models / GALLERY_DIR).resolve():
            raise ValueError(f"--add would write into {target}, which `matmcl retrieval` rebuilds (the added film "
                             "would be lost): give --save-gallery DIR (then query it with --gallery DIR)")
        retriever.add_films([args.add], conditions, [patches])
        retriever.save_gallery(target)
        print(f"{target}: {len(retriever.gallery)} films (added {args.add})", file=sys.stderr)
        return 0
    if patches is not None:
        result = retriever.retrieve_conditions([patches], args.top_k)
    else:
        result = retriever.retrieve_structures(conditions, args.top_k, section(params, "bounds", BoundsConfig))
    grid = [_grid_row(retriever, result[result[QUERY] == q], conditions, patches, q) for q in result[QUERY].unique()]
    plot_query_grid(grid, "matmcl retrieve: top-k gallery films (framed: the query's own film)", args.grid)
    print(f"image grid: {args.grid}", file=sys.stderr)
    if args.out:
        write_csv(result, args.out)
    else:
        result.to_csv(sys.stdout, index=False, float_format="%.4g")
    return 0


def _grid_row(retriever, ranked: pd.DataFrame, conditions: pd.DataFrame | None, patches: list | None, query: int):
    """The grid row of one query: its conditions (text) or its first patch, then the ranked films' patches."""
    from matmcl.retrieval.gallery import SIMILARITY
    from matmcl.retrieval.plots import QueryRow
    from matmcl.schema import FILM_ID

    position = {film: i for i, film in enumerate(retriever.gallery.films[FILM_ID])}
    if patches is not None:
        caption, patch = "query structure", patches[len(patches) // 2]
    else:
        row = conditions.iloc[query]
        caption, patch = "\n".join(f"{c}={row[c]}" for c in CONDITION_COLUMNS), None
    truth = str(conditions.iloc[query].get(FILM_ID, "")) if conditions is not None else ""
    return QueryRow(caption, patch, [retriever.gallery.patches[position[f]] for f in ranked[FILM_ID]],
                    [f"{f}  {s:.2f}" for f, s in zip(ranked[FILM_ID], ranked[SIMILARITY])],
                    [f == truth for f in ranked[FILM_ID]])
