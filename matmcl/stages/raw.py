"""Stage `synthesize`: the virtual lab writes the raw dataset (skipped when a user brings their own folder)."""

from __future__ import annotations

from typing import Any

from matmcl.config import SynthConfig
from matmcl.lab.generate import generate_dataset
from matmcl.stages.context import StageContext


def synthesize(ctx: StageContext) -> dict[str, Any]:
    """Generate the virtual-lab raw dataset into the workspace raw folder; return its manifest."""
    return generate_dataset(ctx.workspace.raw, ctx.config("synth", SynthConfig), ctx.params["profile"], ctx.progress)


def lab_report(ctx: StageContext) -> dict[str, Any]:
    """Contact sheet and trend plots of the virtual-lab dataset (nothing for a user's own data)."""
    from matmcl.lab.report import write_lab_report

    if not (ctx.workspace.raw / "ground_truth").exists():
        return {}
    return write_lab_report(ctx.workspace.raw, ctx.workspace.reports)
