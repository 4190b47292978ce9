"""The Dagster code location: one asset per stage-table row with the data checks, resources, jobs, the weekly
schedule and the raw-data sensor. Run `dagster dev` in the repository root; MATMCL_WORKSPACE picks another root."""

from __future__ import annotations

import os

import dagster as dg

from assets.checks import DATA_CHECKS
from assets.stages import stage_assets
from assets.workspace import WorkspaceResource
from pipelines.jobs import build_jobs
from pipelines.resources import MLflowResource
from pipelines.sensors import raw_data_sensor

workspace = WorkspaceResource(root=os.environ.get("MATMCL_WORKSPACE", "."))
context = workspace.context()
assets = stage_assets(context.workspace)
jobs, weekly_rebuild = build_jobs([a.key.to_user_string() for a in assets])

defs = dg.Definitions(
    assets=assets,
    asset_checks=list(DATA_CHECKS.values()),
    jobs=jobs,
    schedules=[weekly_rebuild],
    sensors=[raw_data_sensor],
    resources={"workspace": workspace, "mlflow": MLflowResource.from_params(context.params)},
    # Steps run one after another in the run's process: each stage already uses every core (params `workers`),
    # and a process per step would re-import the scientific stack.
    executor=dg.in_process_executor,
)
