"""The raw-data sensor: a changed raw folder (a lab dropped new data) triggers `process_raw_data`."""

import dagster as dg

from assets.workspace import FINGERPRINT_KEY, WorkspaceResource
from matmcl.artifacts import RAW_INDEX_FILES
from matmcl.stages.table import stage
from pipelines.jobs import PROCESS_RAW_DATA

SYNTH_ASSET = dg.AssetKey(stage("synth").asset)


def synthesized_fingerprint(instance: dg.DagsterInstance) -> str | None:
    """The raw fingerprint recorded by the latest virtual-lab materialization (None if never materialized)."""
    event = instance.get_latest_materialization_event(SYNTH_ASSET)
    value = event.asset_materialization.metadata.get(FINGERPRINT_KEY) if event else None
    return value.value if value else None


@dg.sensor(job_name=PROCESS_RAW_DATA, minimum_interval_seconds=60,
           description=f"Hashes {', '.join(RAW_INDEX_FILES)} in the raw folder; one run per new content.")
def raw_data_sensor(context: dg.SensorEvaluationContext, workspace: WorkspaceResource) -> dg.SensorResult:
    """Request `process_raw_data` (run key = content hash) when the raw index tables change."""
    fingerprint = workspace.raw_fingerprint()
    if fingerprint is None:
        return dg.SensorResult(skip_reason=f"raw folder lacks one of {', '.join(RAW_INDEX_FILES)}")
    if fingerprint == synthesized_fingerprint(context.instance):
        return dg.SensorResult(skip_reason="raw data written by the virtual lab: its own run processes it")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=fingerprint)])
