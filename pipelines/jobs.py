"""Jobs and the schedule. `data_pipeline` builds the data, `main_job` everything `matmcl run` does;
`process_raw_data` runs every asset downstream of the raw folder (data and training), never the virtual lab;
`benchmarks` runs the studies outside the main job (`matmcl run --benchmarks` adds them)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from matmcl.stages.table import DATA, STAGES

VIRTUAL_LAB_ASSETS = tuple(row.asset for row in STAGES if row.virtual_lab_only)
BENCHMARK_ASSETS = tuple(row.asset for row in STAGES if row.benchmark)
PROCESS_RAW_DATA = "process_raw_data"


def build_jobs(asset_names: Sequence[str]) -> tuple[list[dg.UnresolvedAssetJobDefinition], dg.ScheduleDefinition]:
    """The jobs over the assets named `asset_names`, and the weekly retraining schedule."""
    virtual_lab = [name for name in VIRTUAL_LAB_ASSETS if name in asset_names]
    benchmarks = [name for name in BENCHMARK_ASSETS if name in asset_names]
    data_pipeline = dg.define_asset_job(
        "data_pipeline", selection=dg.AssetSelection.groups(DATA),
        description="Raw data → patches, tensile properties, structural features, validated tables, data report.")
    main_job = dg.define_asset_job(
        "main_job", selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*benchmarks),
        description="Everything, as `matmcl run`: data stages, pre-training, property heads, evaluation.")
    process_raw_data = dg.define_asset_job(
        PROCESS_RAW_DATA, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*virtual_lab),
        description="Every asset downstream of the raw folder as it is (a lab's own data or an earlier synthesis).")
    benchmark_job = dg.define_asset_job(
        "benchmarks", selection=dg.AssetSelection.assets(*benchmarks),
        description="Studies outside the main job: the multi-polymer multiscale study and active learning.")
    weekly_rebuild = dg.ScheduleDefinition(
        name="weekly_rebuild", cron_schedule="0 3 * * 1", job=process_raw_data,  # Mondays 03:00
        description="Rebuild and retrain from the current raw folder every week (scheduled retraining).")
    return [data_pipeline, main_job, process_raw_data, benchmark_job], weekly_rebuild
