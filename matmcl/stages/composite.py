"""Stage `composite`: multi-stage learning on the nanofiber-reinforced composites (docs/composites.md).

From the SGPT table encoder (S), fine-tuned on nanofiber properties (FP), then on the composites (CP) with layer-wise
learning-rate decay; the ablations of the paper's Fig. 5c under repeated grouped K-fold; the served model
(models/composite, `matmcl predict --composite`); anisotropy screening verified in the virtual lab. Writes
reports/composite.json and reports/composite/ (parity and screening plots, candidates CSV); tracked in MLflow as a
nested run of the pipeline run.
"""

from __future__ import annotations

from typing import Any

from matmcl.stages.context import StageContext, StageResult, timed


def composite(ctx: StageContext) -> StageResult:
    """Run the composite stage; write reports/composite.json."""
    from matmcl.artifacts import COMPOSITE_TABLE_FILE
    from matmcl.composites.pipeline import run_composite

    metrics: dict[str, Any] = {}
    plots = {}
    with timed(metrics):
        if (ctx.workspace.processed / COMPOSITE_TABLE_FILE).is_file():
            report, plots = run_composite(ctx.workspace, ctx.params, ctx.run_id, ctx.progress)
            metrics.update(report)
        else:  # a lab's data without composites: nothing to learn
            metrics["skipped"] = f"no {COMPOSITE_TABLE_FILE}: the raw data has no composites"
    ctx.write_metrics("composite", metrics)
    return StageResult(metrics, plots)
