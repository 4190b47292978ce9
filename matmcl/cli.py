"""The `matmcl` command: one subcommand per pipeline stage (from the stage table, as DVC runs them), the main job,
prediction, measurement, the authors'-bundle import and the dvc.yaml generator.

Global options may stand before or after the subcommand. A failure the user can act on (bad input, a missing or
unwritable file, a full disk, a busy workspace) is one line on stderr and exit status 2; `--debug` shows the
traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from matmcl import __version__
from matmcl.config import DEFAULT_PARAMS
from matmcl.stages.table import STAGES, Stage

EXIT_USER_ERROR = 2


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The options every command takes; under a subcommand their defaults are suppressed so that a value given
    before the subcommand is kept unless repeated after it."""

    def default(value):
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--params", default=default(None),
                        help=f"parameter file (default: <workspace>/{DEFAULT_PARAMS})")
    parser.add_argument("--profile", default=default(None),
                        help="named profile: smoke, default or paper (default: params `profile`)")
    parser.add_argument("--workspace", default=default("."),
                        help="workspace root holding data/, models/, reports/ (default: .)")
    parser.add_argument("--quiet", action="store_true", default=default(False), help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", default=default(False), help="log debug messages")
    parser.add_argument("--debug", action="store_true", default=default(False),
                        help="show the traceback of a failure")


def _context(args: argparse.Namespace, overrides: dict | None = None):
    from matmcl.stages.context import StageContext

    return StageContext.load(args.workspace, args.params, args.profile, progress=not args.quiet, overrides=overrides)


def _print(result) -> None:
    print(json.dumps(result, indent=2, default=str))


def _stage_command(row: Stage) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from matmcl.pipeline_run import run_stage

        overrides: dict[str, dict] = {}
        for option in row.cli_options:
            value = getattr(args, option.key)
            if value is not None:
                overrides.setdefault(option.section, {})[option.key] = value
        _print(run_stage(_context(args, overrides), row).metrics)
        return 0

    return command


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: every stage of the stage table in order, as one pipeline run; per-stage times go to
    reports/timing.json. The virtual lab runs only when the pipeline reads its folder (params workspace.raw_dir)."""
    from matmcl.pipeline_run import run_pipeline
    from matmcl.stages.table import DATA

    skip = ["synth"] if args.skip_synth else []
    _print(run_pipeline(_context(args), [DATA] if args.data_only else None, skip, args.benchmarks))
    return 0


def cmd_import_bundle(args: argparse.Namespace) -> int:
    """Import the MatMCL authors' data bundle (its datasets/ folder) as the workspace's processed data."""
    from matmcl.stages.bundle import import_bundle

    ctx = _context(args)
    scaled = {"auto": None, "yes": True, "no": False}[args.conditions_scaled]
    with ctx.locked():
        _print(import_bundle(ctx, args.bundle, args.pixel_size_nm, scaled).metrics)
    return 0


def cmd_dvc_yaml(args: argparse.Namespace) -> int:
    """Write dvc.yaml from the stage table for this workspace's parameters (or, with --check, compare)."""
    from matmcl.dvcgen import write_dvc_yaml

    ctx = _context(args)
    path = Path(args.workspace) / "dvc.yaml"
    changed = write_dvc_yaml(ctx.workspace, path, check=args.check)
    if args.check and changed:
        print(f"{path} differs from the stage table: run `matmcl dvc-yaml`", file=sys.stderr)
        return 1
    print(f"{path}: {'written' if changed else 'up to date'}")
    return 0


def cmd_resolve_params(args: argparse.Namespace) -> int:
    """Write params.resolved.yaml beside the parameter file: its sections with its `profile` applied (the values
    every DVC stage reads, so that DVC reruns exactly the stages whose resolved values changed)."""
    from matmcl.config import resolve_params
    from matmcl.dvcgen import RESOLVED_PARAMS

    out = Path(args.params).with_name(RESOLVED_PARAMS)
    params = resolve_params(args.params, out)
    print(f"{out}: profile {params['profile']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: global options, then one subcommand per stage and the other commands."""
    parser = argparse.ArgumentParser(prog="matmcl", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"matmcl {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, func: Callable[[argparse.Namespace], int], description: str | None = None):
        p = sub.add_parser(name, help=help, description=description or help, allow_abbrev=False)
        _global_options(p, suppress=True)
        p.set_defaults(func=func)
        return p

    for row in STAGES:
        p = add(row.command, row.help, _stage_command(row), f"Stage `{row.name}`: {row.help}.")
        for option in row.cli_options:
            p.add_argument(option.flag, dest=option.key, type=option.type,
                           help=f"{option.help} (default: params {option.section}.{option.key})")

    p = add("run", "main job: run every stage in order", cmd_run, cmd_run.__doc__)
    p.add_argument("--skip-synth", action="store_true", help="use the existing raw folder instead of generating one")
    p.add_argument("--data-only", action="store_true", help="stop after the data stages (no training)")
    p.add_argument("--benchmarks", action="store_true",
                   help="also run the benchmark stages (polymer study, active learning: minutes more)")

    from matmcl.predict_cli import add_predict_arguments, cmd_predict

    add_predict_arguments(add("predict", "predict the five properties from conditions (SEM frames optional)",
                              cmd_predict, cmd_predict.__doc__))

    from matmcl.measure_cli import add_measure_arguments, cmd_measure

    add_measure_arguments(add("measure", "structural features of SEM frames (orientation, diameter, pores)",
                              cmd_measure, cmd_measure.__doc__))

    from matmcl.design_cli import add_design_arguments, cmd_design

    add_design_arguments(add("design", "design processing conditions for a target structure or target properties",
                             cmd_design, cmd_design.__doc__))

    from matmcl.generate_cli import add_generate_arguments, cmd_generate

    add_generate_arguments(add("generate", "SEM structures generated from processing conditions (grid PNG)",
                               cmd_generate, cmd_generate.__doc__))

    from matmcl.retrieve_cli import add_retrieve_arguments, cmd_retrieve

    add_retrieve_arguments(add("retrieve", "cross-modal retrieval: gallery films for conditions or an SEM frame",
                               cmd_retrieve, cmd_retrieve.__doc__))

    from matmcl.suggest_cli import add_suggest_arguments, cmd_suggest

    add_suggest_arguments(add("suggest", "the next conditions to spin, chosen by the active-learning surrogate's "
                                         "uncertainty", cmd_suggest, cmd_suggest.__doc__))

    from matmcl.tune_cli import add_tune_arguments, cmd_tune

    add_tune_arguments(add("tune", "Optuna over head (and pre-training) settings on inner validation (not in the "
                                   "main job)", cmd_tune, cmd_tune.__doc__))

    p = add("import-bundle", "import the MatMCL authors' data bundle as processed data", cmd_import_bundle,
            cmd_import_bundle.__doc__)
    p.add_argument("bundle", help="the bundle's datasets/ folder (docs/authors-bundle.md)")
    p.add_argument("--pixel-size-nm", type=float, default=float("nan"), help="pixel size of their patches (unknown: NaN)")
    p.add_argument("--conditions-scaled", choices=["auto", "yes", "no"], default="auto",
                   help="whether their CSVs hold standardized conditions (auto: infer from the values)")

    add("resolve-params", "write params.resolved.yaml (the active profile applied) for DVC", cmd_resolve_params,
        cmd_resolve_params.__doc__)

    p = add("dvc-yaml", "write dvc.yaml from the stage table", cmd_dvc_yaml, cmd_dvc_yaml.__doc__)
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if dvc.yaml is out of date")
    return parser


def error_message(err: BaseException) -> str:
    """One line a user can act on: the problem and the path it concerns."""
    if isinstance(err, OSError) and err.filename and not isinstance(err, FileNotFoundError):
        return f"{err.strerror or err}: {err.filename}"
    if isinstance(err, FileNotFoundError):
        name = err.filename or str(err)
        return f"missing input {name} (run the earlier stages first?)"
    return str(err).replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `matmcl` console command."""
    from matmcl.workspace_lock import WorkspaceBusyError

    args = build_parser().parse_args(argv)
    args.params = args.params or str(Path(args.workspace) / DEFAULT_PARAMS)
    configure_logging(args.verbose)
    try:
        return args.func(args)
    except (ValueError, OSError, WorkspaceBusyError) as err:
        if args.debug:
            traceback.print_exc()
        print(f"matmcl {args.command}: error: {error_message(err)}", file=sys.stderr)
        return EXIT_USER_ERROR


def configure_logging(verbose: bool = False) -> None:
    """matmcl's messages at INFO (DEBUG with --verbose); other libraries only from WARNING on."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("matmcl").setLevel(logging.DEBUG if verbose else logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
