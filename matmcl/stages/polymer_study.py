"""Benchmark stage `polymer_study`: the multiscale model on a multi-polymer virtual lab (docs/multiscale.md).

On the default data every film is the same polymer, so the molecular descriptors are constants and cannot carry
information. This stage makes a second, smaller virtual lab whose films are spun from several polymers (the polymer
is a condition; `synth.polymers`), runs the pipeline's own stages on it in a temporary workspace (synth, preprocess,
tensile, features, tables, descriptors, multiscale: exactly what the main job runs, nothing re-implemented) and
copies the multiscale report and plots into this workspace's reports/. It is not part of the main job.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from matmcl import artifacts as a
from matmcl.atomic import write_json
from matmcl.config import Workspace, WorkspaceConfig
from matmcl.pipeline_run import run_stage
from matmcl.stages.context import StageContext, StageResult, timed
from matmcl.stages.features import features
from matmcl.stages.multiscale import descriptors, multiscale
from matmcl.stages.preprocess import preprocess
from matmcl.stages.raw import synthesize
from matmcl.stages.table import stage
from matmcl.stages.tables import tables
from matmcl.stages.tensile import tensile

# The stages the study runs on its own workspace, in order (imported here, so that their code is this stage's code
# dependency in dvc.yaml and its Dagster code version).
STUDY_STAGES = (("synth", synthesize), ("preprocess", preprocess), ("tensile", tensile), ("features", features),
                ("tables", tables), ("descriptors", descriptors), ("multiscale", multiscale))


@dataclass(frozen=True)
class PolymerStudyConfig:
    """The multi-polymer lab: its polymers, size (the synth section gives everything else) and seed."""

    polymers: tuple[str, ...] = ("PA6", "PAN", "PVDF", "PS")
    n_films: int = 150
    n_frames: int = 2
    seed: int = 1


def study_params(params: dict, config: PolymerStudyConfig) -> dict:
    """The study workspace's parameters: this workspace's, with the multi-polymer lab and the default folders."""
    study = copy.deepcopy(dict(params))
    study["workspace"] = {}
    study["synth"] = {**study.get("synth", {}), "polymers": list(config.polymers), "n_films": config.n_films,
                      "n_frames": config.n_frames, "seed": config.seed}
    study["tracking"] = {**study.get("tracking", {}), "enabled": False}
    return study


def polymer_study(ctx: StageContext) -> StageResult:
    """Run the multiscale stages on a multi-polymer virtual lab; write reports/multiscale_polymers.json and plots."""
    config = ctx.config("polymer_study", PolymerStudyConfig)
    reports = ctx.workspace.reports
    metrics: dict = {}
    with timed(metrics), tempfile.TemporaryDirectory(prefix="matmcl_polymer_study_") as tmp:
        root = Path(tmp)
        study = StageContext(Workspace(root, WorkspaceConfig()), study_params(ctx.params, config), ctx.progress,
                             ctx.run_id)
        stage_seconds = {}
        for name, function in STUDY_STAGES:
            result = run_stage(study, stage(name), function)
            stage_seconds[name] = result.metrics.get("seconds")
        report = json.loads((study.workspace.reports / a.MULTISCALE_REPORT).read_text())
        target_plots = reports / a.POLYMER_STUDY_PLOTS_DIR
        shutil.rmtree(target_plots, ignore_errors=True)
        shutil.copytree(study.workspace.reports / a.MULTISCALE_PLOTS_DIR, target_plots)
    metrics.update({"polymers": list(config.polymers), "n_films": config.n_films, "n_frames": config.n_frames,
                    "seed": config.seed, "stage_seconds": stage_seconds})
    write_json({**report, **metrics}, reports / a.POLYMER_STUDY_REPORT)
    plots = {path.stem: path for path in sorted(target_plots.glob("*.png"))}
    return StageResult(metrics, plots)
