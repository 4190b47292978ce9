"""Running stages of the stage table: one stage under the workspace lock, or the main job (every stage that applies
to the workspace, in table order, in-process) with per-stage wall times in reports/timing.json."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from matmcl.artifacts import TIMING_REPORT
from matmcl.atomic import write_json
from matmcl.hashing import hash_files
from matmcl.stages.context import StageContext, StageResult
from matmcl.stages.table import METRIC, PLOT, Stage, active_stages, main_job_stages

log = logging.getLogger(__name__)


class UndeclaredParamsError(ValueError):
    """A stage read a params section its stage-table row does not declare (DVC would not rerun it on a change)."""


class StageParams(dict):
    """The resolved params as one stage sees them: reading a section the stage does not declare is an error, so
    the `params` of each stage-table row (what DVC tracks) cannot drift from what the code reads."""

    ALWAYS = ("workspace", "profile")

    def __init__(self, params: dict, stage: str, declared: tuple[str, ...]) -> None:
        super().__init__(params)
        self.stage, self.declared = stage, declared

    def _check(self, key: str) -> None:
        if key not in self.declared and key not in self.ALWAYS:
            raise UndeclaredParamsError(f"stage {self.stage} read params section {key!r}, which its row in "
                                        f"matmcl/stages/table.py does not declare (declared: {list(self.declared)})")

    def __getitem__(self, key: str):
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: str, default=None):
        self._check(key)
        return super().get(key, default)

    def __reduce__(self):
        return StageParams, (dict(self), self.stage, self.declared)


def run_stage(ctx: StageContext, stage: Stage, function: Callable[[StageContext], StageResult] | None = None
              ) -> StageResult:
    """Run one stage under the workspace lock, with only the params sections its row declares readable.
    `function` is the row's stage function when the caller imported it already (see matmcl.stages.polymer_study)."""
    if function is not None and f"{function.__module__}:{function.__name__}" != stage.function:
        raise ValueError(f"{function.__module__}:{function.__name__} is not stage {stage.name}'s {stage.function}")
    with ctx.locked():
        return (function or stage.load())(replace(ctx, params=StageParams(ctx.params, stage.name, stage.params)))


def output_version(ctx: StageContext, stage: Stage) -> str:
    """Content hash of what the stage wrote: its data outputs, or, for a stage that writes only reports, those (the
    Dagster data version of the stage's asset)."""
    root = ctx.workspace.root
    outputs = [o.path(ctx.workspace) for o in stage.outputs if o.kind not in (METRIC, PLOT)] or [
        o.path(ctx.workspace) for o in stage.outputs]
    files = [f for path in outputs for f in (sorted(path.rglob("*")) if path.is_dir() else [path]) if f.is_file()]
    return hash_files((f.relative_to(root).as_posix(), f) for f in files)


def run_pipeline(ctx: StageContext, groups: Sequence[str] | None = None, skip: Sequence[str] = (),
                 benchmarks: bool = False) -> dict[str, float]:
    """The main job: every stage that applies to the workspace (in `groups`, all by default; not in `skip`; the
    benchmark stages only with `benchmarks`), in table order, as one pipeline run (one MLflow parent run). Returns
    and writes the per-stage wall times."""
    ctx = replace(ctx, run_id=ctx.run_id or uuid.uuid4().hex)
    rows = active_stages(ctx.workspace) if benchmarks else main_job_stages(ctx.workspace)
    stages = [s for s in rows if (groups is None or s.group in groups) and s.name not in skip]
    if not ctx.workspace.uses_virtual_lab:
        log.info("reading the lab's raw folder %s: the virtual lab is not run", ctx.workspace.raw)
    timing: dict[str, float] = {}
    with ctx.locked():
        start = time.perf_counter()
        for stage in stages:
            log.info("stage %s ...", stage.name)
            t0 = time.perf_counter()
            run_stage(ctx, stage)
            timing[stage.name] = round(time.perf_counter() - t0, 2)
            log.info("stage %s done in %.1f s", stage.name, timing[stage.name])
        timing["total"] = round(time.perf_counter() - start, 2)
        write_json({"profile": ctx.params["profile"], "run_id": ctx.run_id, "seconds": timing},
                   ctx.workspace.reports / TIMING_REPORT)
    return timing
