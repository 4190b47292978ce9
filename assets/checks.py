"""Blocking asset checks: matmcl's Great Expectations suites run on the files an asset wrote. A failure stops the
downstream assets of the run and lists the suite's failure messages in the check's metadata."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.workspace import WorkspaceResource
from matmcl import artifacts as a
from matmcl.config import BoundsConfig, Workspace
from matmcl.stages.table import stage
from matmcl.validation import validate

READERS: dict[str, Callable[[Path], pd.DataFrame]] = {".csv": pd.read_csv, ".parquet": pd.read_parquet}


def suite_check(asset: str, suite: str, table: Callable[[Workspace], Path]) -> dg.AssetChecksDefinition:
    """A blocking check that runs validation suite `suite` on the file `table(workspace)` (CSV or Parquet)."""

    @dg.asset_check(asset=asset, name=f"{suite}_suite", blocking=True,
                    description=f"Great Expectations suite `{suite}` on the table the asset wrote.")
    def check(workspace: WorkspaceResource) -> dg.AssetCheckResult:
        ctx = workspace.context()
        path = table(ctx.workspace)
        report = validate(READERS[path.suffix](path), suite, bounds=ctx.config("bounds", BoundsConfig))
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


# (stage whose asset is checked, suite, the table it wrote)
SUITES = (
    ("preprocess", "conditions", lambda ws: ws.raw / a.CONDITIONS_CSV),
    ("preprocess", "patches", lambda ws: ws.processed / a.PATCHES_FILE),
    ("tensile", "properties", lambda ws: ws.processed / a.PROPERTIES_FILE),
    ("tables", "table", lambda ws: ws.processed / a.TABLE_FILE),
)
DATA_CHECKS = {suite: suite_check(stage(name).asset, suite, table) for name, suite, table in SUITES}
