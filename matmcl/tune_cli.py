"""`matmcl tune`: Optuna over head (and optionally pre-training) settings on one fold's inner validation, every
trial logged to MLflow (matmcl.training.tune; not part of the main job)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `matmcl tune`."""
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials (default: 20)")
    parser.add_argument("--fold", type=int, default=0, help="which cross-validation fold's inner split (default: 0)")
    parser.add_argument("--pretrain", action="store_true",
                        help="also search pre-training lr, temperature and epochs (one SGPT per trial: slow)")
    parser.add_argument("--out", default=None, help="JSON result (default: <workspace>/reports/tune.json)")


def cmd_tune(args: argparse.Namespace) -> int:
    """Search head (and with --pretrain, pre-training) settings on one fold's inner-validation films; write the
    trials and the best settings as JSON and log each trial to MLflow (run `tune`)."""
    from matmcl.atomic import write_json
    from matmcl.config import section
    from matmcl.stages.context import StageContext
    from matmcl.tracking import resolve_tracking, tracking_run
    from matmcl.training.config import EvaluationConfig, PretrainConfig, PropertyConfig
    from matmcl.training.tune import tune

    ctx = StageContext.load(args.workspace, args.params, args.profile, progress=not args.quiet)
    workspace, params = ctx.workspace, ctx.params
    with tracking_run(resolve_tracking(params, workspace.root), "tune", None, {"profile": params["profile"]}) as run:
        def log(number: int, trial_params: dict, value: float) -> None:
            run.log_metrics({"inner_val_rmse": value, **{f"trial_{k}": float(v) for k, v in trial_params.items()}},
                            step=number)

        result = tune(workspace.processed, section(params, "pretrain", PretrainConfig),
                      section(params, "property", PropertyConfig), section(params, "evaluation", EvaluationConfig),
                      args.trials, args.fold, args.pretrain, on_trial=log)
        run.log_params({f"best_{k}": v for k, v in result["best_params"].items()})
        run.log_metrics({"best_inner_val_rmse": result["best_inner_val_rmse"]})
    out = Path(args.out) if args.out else workspace.reports / "tune.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(result, out)
    print(json.dumps({k: result[k] for k in ("fold", "best_params", "best_inner_val_rmse")}, indent=2))
    return 0
