"""Stage `synth`: the virtual lab writes its raw dataset into its own folder (never a lab's raw folder)."""

from __future__ import annotations

from matmcl.config import SynthConfig
from matmcl.lab.generate import generate_dataset
from matmcl.stages.context import StageContext, StageResult


def synthesize(ctx: StageContext) -> StageResult:
    """Generate the virtual-lab raw dataset into `workspace.virtual_lab_dir` (refused if that folder holds any file
    the virtual lab did not write); the metrics are its manifest's counts and timings."""
    ws = ctx.workspace
    manifest = generate_dataset(ws.virtual_lab, ctx.config("synth", SynthConfig), ctx.params["profile"], ctx.progress)
    return StageResult({"raw_dir": str(ws.virtual_lab), **manifest["counts"], "seconds": manifest["seconds"]})
