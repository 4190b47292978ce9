"""Stage `synthesize`: the virtual lab writes the raw dataset (skipped when a user brings their own folder)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from matmcl.config import SynthConfig
from matmcl.lab.generate import generate_dataset
from matmcl.stages.context import StageContext


def synthesize(ctx: StageContext, out: Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Generate the virtual-lab raw dataset (default: into the workspace raw folder); return its manifest.

    `overrides` replace fields of the `synth` parameters (None values are ignored).
    """
    cfg = replace(ctx.config("synth", SynthConfig), **{k: v for k, v in overrides.items() if v is not None})
    return generate_dataset(out or ctx.workspace.raw, cfg, ctx.params["profile"], ctx.progress)


def lab_report(ctx: StageContext) -> dict[str, Any]:
    """Contact sheet and trend plots of the virtual-lab dataset (nothing for a user's own data)."""
    from matmcl.lab.report import write_lab_report

    if not (ctx.workspace.raw / "ground_truth").exists():
        return {}
    return write_lab_report(ctx.workspace.raw, ctx.workspace.reports)
