"""`matmcl design`: processing conditions for a target structure or target properties (the design code is imported
only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from matmcl.predict_cli import parse_pairs

DIRECTION_ALIASES = {"l": "longitudinal", "t": "transverse", "longitudinal": "longitudinal",
                     "transverse": "transverse"}
UM_TO_NM = 1000.0


def add_design_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `matmcl design`: a structure target (all three features) or property targets, fixed conditions."""
    structure = parser.add_argument_group("structure target (all three)")
    structure.add_argument("--orientation", type=float, help="orientation order in (0, 1)")
    structure.add_argument("--diameter-um", type=float, help="mean fiber diameter (µm)")
    structure.add_argument("--pore-size-um", type=float, help="mean pore size (µm)")
    parser.add_argument("--property", metavar="NAME=VALUE,...,direction=L|T",
                        help="property targets instead, e.g. fracture_strength_mpa=40,direction=L "
                             "(direction defaults to L, longitudinal)")
    parser.add_argument("--fix", metavar="CONDITION=VALUE,...",
                        help="conditions kept at these values, e.g. temperature=25,humidity=45 (column names or "
                             "their stems)")
    parser.add_argument("--models", help="models folder (default: workspace models_dir)")
    parser.add_argument("--out", help="write the optimisation trajectory plot (PNG) here")


def _number(value: str, name: str, flag: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{flag}: {name} needs a number, got {value!r}") from None


def parse_fixed(text: str | None) -> dict[str, float]:
    """--fix → {condition column: value}."""
    from matmcl.design.optimize import condition_name

    fixed = {}
    for name, value in parse_pairs(text, "--fix").items():
        column = condition_name(name)
        if column in fixed:
            raise ValueError(f"--fix: {column} given twice")
        fixed[column] = _number(value, column, "--fix")
    return fixed


def parse_property(text: str) -> tuple[dict[str, float], str]:
    """--property → ({property column: target}, direction name)."""
    pairs = parse_pairs(text, "--property")
    direction = pairs.pop("direction", "L")
    if direction.lower() not in DIRECTION_ALIASES:
        raise ValueError(f"--property: direction must be L or T, got {direction!r}")
    return {name: _number(value, name, "--property") for name, value in pairs.items()}, \
        DIRECTION_ALIASES[direction.lower()]


def _structure_target(args: argparse.Namespace) -> dict[str, float] | None:
    given = {"orientation_order": args.orientation, "diameter_nm": args.diameter_um,
             "pore_size_um": args.pore_size_um}
    if all(v is None for v in given.values()):
        return None
    missing = [flag for flag, v in zip(("--orientation", "--diameter-um", "--pore-size-um"), given.values())
               if v is None]
    if missing:
        raise ValueError(f"a structure target needs all three features; missing {', '.join(missing)}")
    given["diameter_nm"] *= UM_TO_NM
    return given


def cmd_design(args: argparse.Namespace) -> int:
    """Design processing conditions for a target structure (proxy of `matmcl inverse-design`) or target properties
    (the served conditions model); print the conditions and predictions, optionally plot the trajectory."""
    from matmcl.config import Workspace, WorkspaceConfig, load_params, section
    from matmcl.design.config import DesignConfig
    from matmcl.design.pipeline import design_properties, design_structures, load_designer
    from matmcl.design.plots import plot_trajectory
    from matmcl.design.property_model import load_property_model
    from matmcl.design.proxy import STRUCTURE_COLUMNS
    from matmcl.training.data import ProcessedData

    params = load_params(args.params, args.profile)
    workspace = Workspace(Path(args.workspace), section(params, "workspace", WorkspaceConfig))
    models = Path(args.models) if args.models else workspace.models
    structure = _structure_target(args)
    if (structure is None) == (args.property is None):
        raise ValueError("give either a structure target (--orientation, --diameter-um, --pore-size-um) or "
                         "--property targets")
    fixed = parse_fixed(args.fix)
    if structure is not None:
        proxy, config, scaler = load_designer(models, workspace.processed)
        [(design, spread)] = design_structures(proxy, scaler, [structure], config, fixed)
        names, goal, rows = list(STRUCTURE_COLUMNS), list(structure.values()), list(STRUCTURE_COLUMNS)
        predicted = [f"{v:.4g} ± {s:.2g}" for v, s in zip(design.prediction, spread)]
    else:
        targets, direction = parse_property(args.property)
        config = section(params, "design", DesignConfig)
        predict = load_property_model(models, workspace.processed, direction)
        [design] = design_properties(predict, ProcessedData.load(workspace.processed).scaler, [targets], config,
                                     fixed)
        names, goal, rows = list(targets), list(targets.values()), [f"{name} ({direction})" for name in targets]
        predicted = [f"{v:.4g}" for v in design.prediction]
    print("condition\tdesigned")
    for name, value in design.conditions.items():
        print(f"{name}\t{value:.4g}" + ("\t(fixed)" if name in fixed else ""))
    print("\nquantity\ttarget\tpredicted")
    for name, target, value in zip(rows, goal, predicted):
        print(f"{name}\t{target:.4g}\t{value}")
    if args.out:
        print(f"\ntrajectory: {plot_trajectory(design.trajectory, design.predicted_trajectory, goal, names, args.out)}")
    return 0
