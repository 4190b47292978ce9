"""The `matmcl` command: the virtual lab, every pipeline stage (as DVC runs them) and the main job."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from matmcl import __version__
from matmcl.config import DEFAULT_PARAMS

# Stage commands: name → (module:function, help). Each runs one pipeline stage on the workspace.
STAGE_COMMANDS: dict[str, tuple[str, str]] = {
    "lab-report": ("matmcl.stages.raw:lab_report", "contact sheet and trend plots of the virtual-lab dataset"),
    "preprocess": ("matmcl.stages.preprocess:preprocess", "validate raw data; SEM frames -> histogram-matched patches"),
    "tensile": ("matmcl.stages.tensile:tensile", "five tensile properties per curve, replicate means per film"),
    "features": ("matmcl.stages.features:features", "structural features per patch and per film"),
    "tables": ("matmcl.stages.tables:tables", "model-ready tables, film-level splits and the condition scaler"),
    "data-report": ("matmcl.stages.report:data_report", "reports/data.json and the data plots"),
    "pretrain": ("matmcl.stages.training:pretrain", "structure-guided pre-training (SGPT) into models/sgpt"),
    "heads": ("matmcl.stages.training:heads", "property heads served by `matmcl predict` into models/property"),
    "evaluate": ("matmcl.stages.training:evaluate", "all variants over seeds vs baselines and ceilings; alignment"),
}


def _context(args: argparse.Namespace):
    from matmcl.stages.context import StageContext

    return StageContext.load(args.workspace, args.params, args.profile, progress=not args.quiet)


def _print(result) -> None:
    print(json.dumps(result, indent=2, default=str))


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate the virtual electrospinning lab's raw dataset (default: into the workspace raw folder)."""
    from matmcl.stages.raw import synthesize

    ctx = _context(args)
    out = Path(args.out) if args.out else ctx.workspace.raw
    manifest = synthesize(ctx, out, n_films=args.n_films, seed=args.seed, workers=args.workers)
    _print({"raw_dir": str(out), **manifest["counts"], "seconds": manifest["seconds"]})
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    """Run one pipeline stage."""
    module, function = STAGE_COMMANDS[args.command][0].split(":")
    _print(getattr(importlib.import_module(module), function)(_context(args)))
    return 0


def cmd_import_bundle(args: argparse.Namespace) -> int:
    """Import the MatMCL authors' data bundle (its datasets/ folder) as the workspace's processed data."""
    from matmcl.stages.bundle import import_bundle

    scaled = {"auto": None, "yes": True, "no": False}[args.conditions_scaled]
    _print(import_bundle(_context(args), args.bundle, args.pixel_size_nm, scaled))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: every stage in order on the workspace; per-stage times go to reports/timing.json."""
    from matmcl.pipeline_run import data_stages, model_stages, run_stages

    skip = ["synthesize"] if args.skip_synth else []
    stages = data_stages() if args.data_only else data_stages() + model_stages()
    _print(run_stages(_context(args), stages, skip))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: global options, then one subcommand per stage."""
    parser = argparse.ArgumentParser(prog="matmcl", description=__doc__)
    parser.add_argument("--version", action="version", version=f"matmcl {__version__}")
    parser.add_argument("--params", default=None, help=f"parameter file (default: <workspace>/{DEFAULT_PARAMS})")
    parser.add_argument("--profile", default=None, help="named profile: smoke, default or paper (default: params `profile`)")
    parser.add_argument("--workspace", default=".", help="workspace root holding data/, models/, reports/ (default: .)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the virtual lab's raw dataset", description=cmd_synth.__doc__)
    p.add_argument("--out", help="output folder (default: workspace raw_dir)")
    p.add_argument("--n-films", type=int, help="number of films (default: params synth.n_films)")
    p.add_argument("--seed", type=int, help="random seed (default: params synth.seed)")
    p.add_argument("--workers", type=int, help="worker processes (default: params synth.workers)")
    p.set_defaults(func=cmd_synth)

    for name, (_, text) in STAGE_COMMANDS.items():
        sub.add_parser(name, help=text, description=f"Stage `{name}`: {text}.").set_defaults(func=cmd_stage)

    p = sub.add_parser("import-bundle", help="import the MatMCL authors' data bundle as processed data",
                       description=cmd_import_bundle.__doc__)
    p.add_argument("bundle", help="the bundle's datasets/ folder (docs/authors-bundle.md)")
    p.add_argument("--pixel-size-nm", type=float, default=float("nan"), help="pixel size of their patches (unknown: NaN)")
    p.add_argument("--conditions-scaled", choices=["auto", "yes", "no"], default="auto",
                   help="whether their CSVs hold standardized conditions (auto: infer from the values)")
    p.set_defaults(func=cmd_import_bundle)

    p = sub.add_parser("run", help="main job: run every stage in order", description=cmd_run.__doc__)
    p.add_argument("--skip-synth", action="store_true", help="use the existing raw folder instead of generating one")
    p.add_argument("--data-only", action="store_true", help="stop after the data stages (no training)")
    p.set_defaults(func=cmd_run)

    from matmcl.predict_cli import add_predict_arguments, cmd_predict

    p = sub.add_parser("predict", help="predict the five properties from conditions (SEM frames optional)",
                       description=cmd_predict.__doc__)
    add_predict_arguments(p)
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `matmcl` console command."""
    args = build_parser().parse_args(argv)
    args.params = args.params or str(Path(args.workspace) / DEFAULT_PARAMS)
    configure_logging(args.verbose)
    try:
        return args.func(args)
    except FileNotFoundError as err:
        print(f"matmcl {args.command}: error: missing input {err.filename or err} (run the earlier stages first?)",
              file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"matmcl {args.command}: error: {err}", file=sys.stderr)
        return 2


def configure_logging(verbose: bool = False) -> None:
    """matmcl's messages at INFO (DEBUG with --verbose); other libraries only from WARNING on."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("matmcl").setLevel(logging.DEBUG if verbose else logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
