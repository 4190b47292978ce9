"""Stage `lab_report`: contact sheet and trend plots of the virtual-lab dataset (it needs the lab's ground truth)."""

from __future__ import annotations

from matmcl.lab.report import write_lab_report
from matmcl.stages.context import StageContext, StageResult


def lab_report(ctx: StageContext) -> StageResult:
    """Contact sheet and trend plots of the virtual-lab dataset."""
    return StageResult({}, write_lab_report(ctx.workspace.raw, ctx.workspace.reports))
