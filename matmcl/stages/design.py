"""Stage `design`: the structure proxy and inverse design of processing conditions for structure and property
targets, verified in the virtual lab (docs/design.md); tracked in MLflow as a nested run of the pipeline run."""

from __future__ import annotations

from typing import Any

from matmcl.stages.context import StageContext, StageResult, timed


def design(ctx: StageContext) -> StageResult:
    """Fit models/design (proxy ensemble with lineage), design and verify; write reports/design.json (and the
    stage's timing in reports/design_stage.json) and the plots in reports/design/."""
    from matmcl.artifacts import DESIGN_REPORT
    from matmcl.atomic import write_json
    from matmcl.design.pipeline import run_design

    metrics: dict[str, Any] = {}
    with timed(metrics):
        report, plots = run_design(ctx.workspace, ctx.params, ctx.run_id, ctx.progress)
        write_json(report, ctx.workspace.reports / DESIGN_REPORT)
        metrics.update({f"{key}_{name}": report[key][name] for key in ("structure", "property") if key in report
                        for name in ("success_rate", "median_rel_error")})
    ctx.write_metrics("design_stage", metrics)
    return StageResult(metrics, plots)
