"""`matmcl generate`: SEM structures generated from processing conditions (the model code is imported only when it
runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from matmcl.predict_cli import add_condition_arguments


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `matmcl generate`: conditions (CSV or one flag each), images per condition, guidance, steps, seed,
    output grid."""
    add_condition_arguments(parser)
    parser.add_argument("-n", "--n-images", type=int, default=8, help="images per condition row (default 8)")
    parser.add_argument("--guidance", type=float,
                        help="decoder classifier-free guidance scale (1: conditional only; default: params)")
    parser.add_argument("--prior-guidance", type=float, help="prior guidance scale (default: params, paper 1)")
    parser.add_argument("--steps", type=int, help="decoder sampling steps (default: params generation.sample_steps)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same images)")
    parser.add_argument("--models", help="models folder (default: workspace models_dir)")
    parser.add_argument("--out", default="generated.png",
                        help="grid PNG: one row per condition, conditions and measured features beside it")
    parser.add_argument("--save-images", metavar="DIR", help="also write every generated crop as a PNG into DIR")


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate SEM crops (longitudinal orientation, native pixel size) for each condition row; write a grid PNG."""
    import pandas as pd
    from PIL import Image

    from matmcl.config import Workspace, WorkspaceConfig, load_params, section
    from matmcl.generation.evaluate import label, measure_crops
    from matmcl.generation.generator import StructureGenerator
    from matmcl.generation.plots import plot_strips
    from matmcl.predict_cli import read_conditions
    from matmcl.schema import FILM_ID, PATCHES_FILE

    if args.n_images < 1:
        raise ValueError(f"-n must be >= 1, got {args.n_images}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    params = load_params(args.params, args.profile)
    workspace = Workspace(Path(args.workspace), section(params, "workspace", WorkspaceConfig))
    conditions = read_conditions(args)
    generator = StructureGenerator.load(Path(args.models) if args.models else workspace.models, workspace.processed)
    images = generator.generate(conditions, args.n_images, args.guidance, args.steps, args.prior_guidance, args.seed)
    pixel_size = float(pd.read_parquet(workspace.processed / PATCHES_FILE, columns=[FILM_ID, "pixel_size_nm"])
                       ["pixel_size_nm"].median())
    columns = generator.config.mosaic_columns
    rows = conditions.reset_index(drop=True)
    labels = [label(f"condition {i}", rows.iloc[i], {"generated": measure_crops(crops, pixel_size, columns)})
              for i, crops in enumerate(images)]
    out = plot_strips([[crops] for crops in images], labels, [f"generated ({generator.image_px} px crops)"],
                      Path(args.out))
    print(f"wrote {out} ({len(images)} conditions × {args.n_images} images)")
    if args.save_images:
        folder = Path(args.save_images)
        folder.mkdir(parents=True, exist_ok=True)
        for i, crops in enumerate(images):
            for k, crop in enumerate(crops):
                Image.fromarray(crop).save(folder / f"condition{i}_image{k}.png")
        print(f"wrote {len(images) * args.n_images} images to {folder}")
    return 0
