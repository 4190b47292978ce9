"""`matmcl predict`: its flags and the command (the model code in matmcl.predict is imported only when it runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from matmcl.schema import CONDITION_COLUMNS


def _flag(column: str) -> str:
    return "--" + column.replace("_", "-")


def add_condition_arguments(parser: argparse.ArgumentParser) -> None:
    """The condition flags `predict`, `generate` and `retrieve` share: --conditions (NAME=VALUE pairs or a CSV),
    --conditions-csv, or one flag per condition."""
    parser.add_argument("--conditions", metavar="NAME=VALUE,...|CSV",
                        help="one mat's six conditions as NAME=VALUE pairs (e.g. flow_rate_ml_h=0.4,...), or a CSV "
                             "with the six condition columns (one mat per row)")
    parser.add_argument("--conditions-csv", metavar="CSV", help="CSV with the six condition columns (one mat per row)")
    for column in CONDITION_COLUMNS:
        parser.add_argument(_flag(column), dest=column, type=float, help=f"{column} (instead of --conditions)")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `matmcl predict`: conditions (add_condition_arguments), optional SEM frames, output CSV."""
    add_condition_arguments(parser)
    parser.add_argument("--image", action="append", default=[],
                        help="raw SEM frame of the mat (repeatable; one condition row only): use the fusion model")
    parser.add_argument("--info-bar-px", type=int, help="rows of the SEM info bar (default: params synth.info_bar_px)")
    parser.add_argument("--composite", action="store_true",
                        help="predict nanofiber-reinforced composites (and their nanofiber films) with the multi-stage "
                             "model of `matmcl composite` (models/composite)")
    parser.add_argument("--models", help="models folder (default: workspace models_dir)")
    parser.add_argument("--out", help="write the predictions to this CSV (default: print to stdout)")


def parse_pairs(text: str | None, flag: str) -> dict[str, str]:
    """"a=1,b=2" → {"a": "1", "b": "2"}; ValueError naming `flag` for a malformed or repeated entry."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{flag}: expected NAME=VALUE, got {item!r}")
        if name.strip() in pairs:
            raise ValueError(f"{flag}: {name.strip()!r} given twice")
        pairs[name.strip()] = value.strip()
    return pairs


def parse_conditions(text: str) -> pd.DataFrame:
    """'name=value,...' with each of the six conditions exactly once → a one-row DataFrame of floats."""
    values: dict[str, float] = {}
    for name, value in parse_pairs(text, "--conditions").items():
        if name not in CONDITION_COLUMNS:
            raise ValueError(f"--conditions: unknown condition {name!r}; the six are {', '.join(CONDITION_COLUMNS)}")
        try:
            values[name] = float(value)
        except ValueError:
            raise ValueError(f"--conditions: {name}={value!r} is not a number") from None
    missing = [c for c in CONDITION_COLUMNS if c not in values]
    if missing:
        raise ValueError(f"--conditions: got {len(values)} of the 6 conditions; missing {', '.join(missing)}")
    return pd.DataFrame([values])


def read_conditions(args: argparse.Namespace, required: bool = True) -> pd.DataFrame | None:
    """Conditions from --conditions (NAME=VALUE pairs or a CSV path), --conditions-csv, or one row from the
    per-condition flags; None when none is given and not `required`."""
    from matmcl.predict import PredictionInputError

    flags = {c: getattr(args, c) for c in CONDITION_COLUMNS if getattr(args, c) is not None}
    given = [bool(args.conditions), bool(args.conditions_csv), bool(flags)]
    if sum(given) > 1:
        raise PredictionInputError("give one of --conditions, --conditions-csv or the per-condition flags")
    if args.conditions_csv:
        return pd.read_csv(args.conditions_csv)
    if args.conditions:
        return parse_conditions(args.conditions) if "=" in args.conditions else pd.read_csv(args.conditions)
    if flags:
        return pd.DataFrame([flags])
    if not required:
        return None
    names = ", ".join(map(_flag, CONDITION_COLUMNS))
    raise PredictionInputError(f"no conditions: give --conditions NAME=VALUE,... or CSV, --conditions-csv, or {names}")


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
