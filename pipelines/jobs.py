"""Jobs and the schedule. `data_pipeline` builds the data from the virtual lab, `main_job` everything `matmcl run`
does; `process_raw_data` runs every asset downstream of the raw folder (data and training) and never rewrites raw
data."""

from __future__ import annotations

import dagster as dg

from assets.data import GROUP, raw_lab_data

data_pipeline = dg.define_asset_job(
    "data_pipeline",
    selection=dg.AssetSelection.groups(GROUP),
    description="Virtual lab → patches, tensile properties, structural features, validated tables, data report.",
)

main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.all(),
    description="Everything, as `matmcl run`: virtual lab, data stages, pre-training, property heads, evaluation.",
)

process_raw_data = dg.define_asset_job(
    "process_raw_data",
    selection=dg.AssetSelection.assets(raw_lab_data).downstream(include_self=False)
    | dg.AssetSelection.checks_for_assets(raw_lab_data),
    description="Every asset downstream of the raw folder as it is (a lab's own data or an earlier synthesis).",
)

weekly_rebuild = dg.ScheduleDefinition(
    name="weekly_rebuild",
    cron_schedule="0 3 * * 1",  # Mondays 03:00
    job=process_raw_data,
    description="Rebuild and retrain from the current raw folder every week (scheduled retraining).",
)
