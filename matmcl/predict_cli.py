"""`matmcl predict`: its flags and the command (the model code in matmcl.predict is imported only when it runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from matmcl.schema import CONDITION_COLUMNS


def _flag(column: str) -> str:
    return "--" + column.replace("_", "-")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `matmcl predict`: a conditions CSV or one flag per condition, optional SEM frames, output CSV."""
    parser.add_argument("--conditions", help="CSV with the six condition columns (one mat per row)")
    for column in CONDITION_COLUMNS:
        parser.add_argument(_flag(column), dest=column, type=float, help=f"{column} (instead of --conditions)")
    parser.add_argument("--image", action="append", default=[],
                        help="raw SEM frame of the mat (repeatable; one condition row only): use the fusion model")
    parser.add_argument("--info-bar-px", type=int, help="rows of the SEM info bar (default: params synth.info_bar_px)")
    parser.add_argument("--composite", action="store_true",
                        help="predict nanofiber-reinforced composites (and their nanofiber films) with the multi-stage "
                             "model of `matmcl composite` (models/composite)")
    parser.add_argument("--models", help="models folder (default: workspace models_dir)")
    parser.add_argument("--out", help="write the predictions to this CSV (default: print to stdout)")


def read_conditions(args: argparse.Namespace) -> pd.DataFrame:
    """Conditions from --conditions CSV, or one row from the per-condition flags."""
    from matmcl.predict import PredictionInputError

    flags = {c: getattr(args, c) for c in CONDITION_COLUMNS if getattr(args, c) is not None}
    if args.conditions and flags:
        raise PredictionInputError("give either --conditions CSV or per-condition flags, not both")
    if args.conditions:
        return pd.read_csv(args.conditions)
    if not flags:
        names = ", ".join(map(_flag, CONDITION_COLUMNS))
        raise PredictionInputError(f"no conditions: give --conditions CSV or {names}")
    return pd.DataFrame([flags])


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the five properties, both directions, from processing conditions (and optionally SEM frames)."""
    from matmcl.atomic import write_csv
    from matmcl.config import BoundsConfig, SynthConfig, Workspace, WorkspaceConfig, load_params, section
    from matmcl.predict import PredictionInputError, Predictor
    from matmcl.rawdata import load_sem_image

    params = load_params(args.params, args.profile)
    workspace = Workspace(Path(args.workspace), section(params, "workspace", WorkspaceConfig))
    models = Path(args.models) if args.models else workspace.models
    conditions = read_conditions(args)
    if args.composite:
        if args.image:
            raise PredictionInputError("--composite predicts from conditions only; drop --image")
        from matmcl.composites.serving import CompositePredictor

        result = CompositePredictor.load(models, workspace.processed).predict(
            conditions, section(params, "bounds", BoundsConfig))
        if args.out:
            write_csv(result, args.out)
        else:
            result.to_csv(sys.stdout, index=False)
        return 0
    predictor = Predictor.load(models, workspace.processed)
    images = None
    if args.image:
        if len(conditions) != 1:
            raise PredictionInputError("--image applies to exactly one condition row")
        info_bar = args.info_bar_px
        if info_bar is None:
            info_bar = section(params, "synth", SynthConfig).info_bar_px
        images = [[p for path in args.image for p in predictor.patches_from_frame(load_sem_image(path), info_bar)]]
    result = predictor.predict(conditions, images, section(params, "bounds", BoundsConfig))
    if args.out:
        write_csv(result, args.out)
    else:
        result.to_csv(sys.stdout, index=False)
    return 0
