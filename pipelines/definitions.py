"""The Dagster code location: the data and model assets, the data checks, resources, jobs, the weekly schedule and the
raw-data sensor. Run `dagster dev` in the repository root; MATMCL_WORKSPACE picks another root."""

from __future__ import annotations

import os

import dagster as dg

from assets.checks import DATA_CHECKS
from assets.data import DATA_ASSETS
from assets.models import MODEL_ASSETS
from assets.workspace import WorkspaceResource
from pipelines.jobs import data_pipeline, main_job, process_raw_data, weekly_rebuild
from pipelines.resources import MLflowResource
from pipelines.sensors import raw_data_sensor

workspace = WorkspaceResource(root=os.environ.get("MATMCL_WORKSPACE", "."))

defs = dg.Definitions(
    assets=[*DATA_ASSETS, *MODEL_ASSETS],
    asset_checks=DATA_CHECKS,
    jobs=[data_pipeline, main_job, process_raw_data],
    schedules=[weekly_rebuild],
    sensors=[raw_data_sensor],
    resources={"workspace": workspace, "mlflow": MLflowResource.from_params(workspace.context().params)},
    # Steps run one after another in the run's process: each stage already uses every core (params `workers`),
    # and a process per step would re-import the scientific stack.
    executor=dg.in_process_executor,
)
