"""The main job: every stage in order, in-process, with per-stage wall times in reports/timing.json."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from matmcl.atomic import write_json
from matmcl.stages.context import StageContext

log = logging.getLogger(__name__)

Stage = Callable[[StageContext], Any]


def data_stages() -> list[tuple[str, Stage]]:
    """The data pipeline's stages in dependency order (imported lazily: some pull heavy libraries)."""
    from matmcl.stages.features import features
    from matmcl.stages.preprocess import preprocess
    from matmcl.stages.raw import lab_report, synthesize
    from matmcl.stages.report import data_report
    from matmcl.stages.tables import tables
    from matmcl.stages.tensile import tensile

    return [("synthesize", synthesize), ("lab_report", lab_report), ("preprocess", preprocess), ("tensile", tensile),
            ("features", features), ("tables", tables), ("data_report", data_report)]


def model_stages() -> list[tuple[str, Stage]]:
    """Pre-training, the served property heads and the evaluation, after the data stages."""
    from matmcl.stages.training import evaluate, heads, pretrain

    return [("pretrain", pretrain), ("heads", heads), ("evaluate", evaluate)]


def run_stages(ctx: StageContext, stages: Sequence[tuple[str, Stage]], skip: Sequence[str] = ()) -> dict[str, float]:
    """Run `stages` in order (except those named in `skip`), logging and recording each one's wall time."""
    timing: dict[str, float] = {}
    start = time.perf_counter()
    for name, stage in stages:
        if name in skip:
            continue
        log.info("stage %s ...", name)
        t0 = time.perf_counter()
        stage(ctx)
        timing[name] = round(time.perf_counter() - t0, 2)
        log.info("stage %s done in %.1f s", name, timing[name])
    timing["total"] = round(time.perf_counter() - start, 2)
    write_json({"profile": ctx.params["profile"], "seconds": timing}, ctx.workspace.reports / "timing.json")
    return timing
