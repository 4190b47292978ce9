"""Every stage of the stage table as a software-defined asset, derived from its row: name, group, kinds,
description, upstream assets (from the artifacts it reads) and code version (from the source it runs). Each asset
runs its stage under the workspace lock (matmcl.pipeline_run.run_stage), then reports the stage's metrics and plots
as metadata, the content hash of what it wrote as its Dagster data version, and the data version of the processed
data (matmcl.lineage) that MLflow tags and reports/ carry too. A row's CLI options are its run config."""

from typing import Any

import dagster as dg

from assets.metadata import stage_metadata
from assets.workspace import FINGERPRINT_KEY, WorkspaceResource
from matmcl.artifacts import TABLE_FILE
from matmcl.config import Workspace
from matmcl.lineage import data_version
from matmcl.pipeline_run import output_version, run_stage
from matmcl.stages.table import Stage, active_stages, upstream
from pipelines.resources import MLflowResource

# Every stage uses the machine's cores; cap concurrent steps across runs with
# `dagster instance concurrency set matmcl_cpu 1` (docs/pipeline.md).
POOL = "matmcl_cpu"


def run_config_class(row: Stage) -> type[dg.Config]:
    """A Config whose optional fields are the row's CLI options (unset: keep params.yaml)."""
    fields = {option.key: (option.type | None) for option in row.cli_options}
    return type(f"{row.asset}_config", (dg.Config,), {"__annotations__": fields, **dict.fromkeys(fields)})


def _overrides(row: Stage, config: dg.Config) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for option in row.cli_options:
        value = getattr(config, option.key)
        if value is not None:
            overrides.setdefault(option.section, {})[option.key] = value
    return overrides


def stage_asset(row: Stage, deps: list[str]) -> dg.AssetsDefinition:
    """The asset of one stage-table row."""
    config_class = run_config_class(row)

    @dg.asset(name=row.asset, group_name=row.group, kinds=set(row.kinds), deps=deps, pool=POOL,
              code_version=row.code_version(), description=f"Stage `{row.name}`: {row.help}.")
    def _asset(context: dg.AssetExecutionContext, config: config_class, workspace: WorkspaceResource,
               mlflow: MLflowResource) -> dg.MaterializeResult:
        ctx = workspace.context(run_id=context.run.run_id, tracking=mlflow.params(), **_overrides(row, config))
        result = run_stage(ctx, row)
        metadata = stage_metadata({**result.metrics, **result.plots})
        metadata["code_version"] = dg.MetadataValue.text(row.code_version())
        if (ctx.workspace.processed / TABLE_FILE).is_file():
            metadata["data_version"] = dg.MetadataValue.text(data_version(ctx.workspace.processed))
        if row.name == "synth":
            metadata[FINGERPRINT_KEY] = dg.MetadataValue.text(workspace.raw_fingerprint() or "")
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(output_version(ctx, row)))

    return _asset


def stage_assets(workspace: Workspace) -> list[dg.AssetsDefinition]:
    """The assets of every stage that applies to `workspace` (no virtual-lab stages for a lab's own raw folder)."""
    rows = active_stages(workspace)
    return [stage_asset(row, [u.asset for u in upstream(row, workspace, rows)]) for row in rows]
