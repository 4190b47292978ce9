"""Blocking asset checks: matmcl's Great Expectations suites run on the files an asset wrote. A failure stops the
downstream assets of the run and lists the suite's failure messages in the check's metadata."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.data import model_tables, raw_lab_data, sem_patches, tensile_properties
from assets.workspace import WorkspaceResource
from matmcl.config import Workspace
from matmcl.validation import validate

READERS: dict[str, Callable[[Path], pd.DataFrame]] = {".csv": pd.read_csv, ".parquet": pd.read_parquet}


def suite_check(asset: dg.AssetsDefinition, suite: str, table: Callable[[Workspace], Path]) -> dg.AssetChecksDefinition:
    """A blocking check that runs validation suite `suite` on the file `table(workspace)` (CSV or Parquet)."""

    @dg.asset_check(asset=asset, name=f"{suite}_suite", blocking=True,
                    description=f"Great Expectations suite `{suite}` on the table the asset wrote.")
    def check(workspace: WorkspaceResource) -> dg.AssetCheckResult:
        path = table(workspace.context().workspace)
        report = validate(READERS[path.suffix](path), suite)
        return dg.AssetCheckResult(
            passed=report.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "table": dg.MetadataValue.path(str(path.resolve())),
                "n_expectations": report.n_expectations,
                "n_failures": len(report.failures),
                "failures": dg.MetadataValue.md("\n".join(f"- {failure}" for failure in report.failures) or "none"),
            },
        )

    return check


conditions_check = suite_check(raw_lab_data, "conditions", lambda ws: ws.raw / "conditions.csv")
patches_check = suite_check(sem_patches, "patches", lambda ws: ws.processed / "patches.parquet")
properties_check = suite_check(tensile_properties, "properties", lambda ws: ws.processed / "properties.parquet")
table_check = suite_check(model_tables, "table", lambda ws: ws.processed / "table.parquet")

DATA_CHECKS = [conditions_check, patches_check, properties_check, table_check]
