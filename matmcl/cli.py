"""The `matmcl` command: the virtual lab, every pipeline stage (as DVC runs them) and the main job."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from matmcl import __version__
from matmcl.config import DEFAULT_PARAMS, SynthConfig, Workspace, WorkspaceConfig, load_params, section


def _context(args: argparse.Namespace) -> tuple[dict, Workspace]:
    params = load_params(args.params, args.profile)
    workspace = Workspace(Path(args.workspace), section(params, "workspace", WorkspaceConfig))
    return params, workspace


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate the virtual-lab raw dataset."""
    from matmcl.lab.generate import generate_dataset

    params, ws = _context(args)
    overrides = {k: v for k, v in {"n_films": args.n_films, "seed": args.seed, "workers": args.workers}.items() if v is not None}
    cfg = section({"synth": {**params.get("synth", {}), **overrides}}, "synth", SynthConfig)
    out = Path(args.out) if args.out else ws.raw
    manifest = generate_dataset(out, cfg, profile=params["profile"], progress=not args.quiet)
    print(json.dumps({"raw_dir": str(out), **manifest["counts"], "seconds": manifest["seconds"]}, indent=2))
    return 0


def cmd_lab_report(args: argparse.Namespace) -> int:
    """Contact sheet and property-vs-condition plots of a virtual-lab dataset."""
    from matmcl.lab.report import write_lab_report

    _, ws = _context(args)
    raw = Path(args.raw) if args.raw else ws.raw
    paths = write_lab_report(raw, ws.reports)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per stage."""
    parser = argparse.ArgumentParser(prog="matmcl", description=__doc__)
    parser.add_argument("--version", action="version", version=f"matmcl {__version__}")
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help="parameter file (default: params.yaml)")
    parser.add_argument("--profile", default=None, help="named profile: smoke, default or paper (default: from params)")
    parser.add_argument("--workspace", default=".", help="workspace root holding data/, models/, reports/")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the virtual electrospinning lab's raw dataset", description=cmd_synth.__doc__)
    p.add_argument("--out", help="output folder (default: workspace raw_dir)")
    p.add_argument("--n-films", type=int, help="number of films (default: params synth.n_films)")
    p.add_argument("--seed", type=int, help="random seed (default: params synth.seed)")
    p.add_argument("--workers", type=int, help="worker processes (default: params synth.workers)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("lab-report", help="contact sheet and property plots of a virtual-lab dataset", description=cmd_lab_report.__doc__)
    p.add_argument("--raw", help="raw dataset folder (default: workspace raw_dir)")
    p.set_defaults(func=cmd_lab_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `matmcl` console command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"matmcl {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
