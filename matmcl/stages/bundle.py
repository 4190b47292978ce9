"""Stage `import-bundle`: the MatMCL authors' published data bundle as this pipeline's processed data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matmcl.artifacts import SCALER_FILE
from matmcl.atomic import write_json
from matmcl.importers.authors_bundle import import_authors_bundle
from matmcl.lineage import data_version
from matmcl.schema import FILM_ID
from matmcl.splits import fit_scaler
from matmcl.stages.context import StageContext, StageResult, timed


def import_bundle(ctx: StageContext, bundle_dir: str | Path, pixel_size_nm: float = math.nan,
                  conditions_scaled: bool | None = None) -> StageResult:
    """Import the bundle into the workspace's processed folder and fit the condition scaler on its training films."""
    metrics: dict[str, Any] = {}
    with timed(metrics):
        imported = import_authors_bundle(bundle_dir, ctx.workspace.processed, pixel_size_nm=pixel_size_nm,
                                         conditions_scaled=conditions_scaled)
        train = imported.table[imported.table["split"] == "train"].drop_duplicates(FILM_ID)
        write_json(fit_scaler(train), ctx.workspace.processed / SCALER_FILE)
        metrics.update(imported.metadata, data_version=data_version(ctx.workspace.processed))
    ctx.write_metrics("import_bundle", metrics)
    return StageResult(metrics)
