"""Jobs and the schedule. `data_pipeline` builds everything from the virtual lab; `process_raw_data` runs every
asset downstream of the raw folder (training assets join it when they are added) and never rewrites raw data."""

from __future__ import annotations

import dagster as dg

from assets.data import GROUP, raw_lab_data

data_pipeline = dg.define_asset_job(
    "data_pipeline",
    selection=dg.AssetSelection.groups(GROUP),
    description="Virtual lab → patches, tensile properties, structural features, validated tables, data report.",
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
    description="Rebuild (and, once training assets exist, retrain) from the current raw folder every week.",
)
