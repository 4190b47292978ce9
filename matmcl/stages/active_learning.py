"""Stage `active_learning` (benchmark, outside the main job): closed-loop active learning with the virtual lab
against random and Latin-hypercube choice (docs/active_learning.md). Writes reports/active_learning.json,
reports/active_learning/learning_curves.png and reports/active_learning_stage.json (headline numbers)."""

from __future__ import annotations

import dataclasses
from typing import Any

from matmcl.stages.context import StageContext, StageResult, timed


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    """Films to reach the full-data share (mean over seeds, R² averaged over properties) and the area-between-
    curves difference of each model strategy against each baseline."""
    return {"films_to_reach_mean": {s: v["mean"].get("mean") for s, v in report["films_to_reach"].items()},
            "full_data_r2_mean": report["full_data_r2"]["mean"]["r2_mean"],
            "delta_r2_over_budgets": {name: c["mean"]["mean_over_budgets"]["delta_mean"]
                                      for name, c in report["paired"].items()}}


def active_learning(ctx: StageContext) -> StageResult:
    """Run the benchmark; write reports/active_learning.json and its plots."""
    from matmcl.active.benchmark import run_benchmark
    from matmcl.active.config import ActiveLearningConfig
    from matmcl.active.loop import Lab
    from matmcl.artifacts import ACTIVE_LEARNING_PLOTS_DIR, ACTIVE_LEARNING_REPORT
    from matmcl.atomic import write_json
    from matmcl.config import SynthConfig

    from matmcl.tracking import resolve_tracking, tracking_run

    config = ctx.config("active_learning", ActiveLearningConfig)
    synth = ctx.config("synth", SynthConfig)
    reports = ctx.workspace.reports
    metrics: dict[str, Any] = {}
    with timed(metrics):
        report, plots = run_benchmark(config, Lab(synth.n_replicates, synth.strain_step_pct),
                                      reports / ACTIVE_LEARNING_PLOTS_DIR, ctx.progress)
        metrics.update(_headline(report))
    report["seconds"] = metrics["seconds"]
    with tracking_run(resolve_tracking(ctx.params, ctx.workspace.root), "active_learning", ctx.run_id,
                      {"profile": ctx.params["profile"]}) as run:
        run.log_params({"active_learning": dataclasses.asdict(config), "synth": dataclasses.asdict(synth)})
        run.log_metrics({k: report[k] for k in ("full_data_r2", "films_to_reach", "paired")})
        for path in plots.values():
            run.log_artifact(path)
    report["mlflow_run_id"] = run.run_id
    write_json(report, reports / ACTIVE_LEARNING_REPORT)
    ctx.write_metrics("active_learning_stage", metrics)
    return StageResult(metrics, plots)
