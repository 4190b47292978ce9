"""What every stage receives: the workspace, the resolved parameters and whether to show progress."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from matmcl.atomic import write_json
from matmcl.artifacts import LAB_MANIFEST, stage_report
from matmcl.config import DEFAULT_PARAMS, Workspace, WorkspaceConfig, deep_merge, load_params, section
from matmcl.workspace_lock import workspace_lock

T = TypeVar("T")


@dataclass(frozen=True)
class StageContext:
    """A workspace, its parameters (profile applied), the progress-bar switch and the pipeline run it belongs to.

    `run_id` identifies one pipeline run (`matmcl run`'s id, or the Dagster run id); a stage launched alone (a DVC
    stage, one CLI stage command) has None and is its own pipeline run.
    """

    workspace: Workspace
    params: dict[str, Any]
    progress: bool = True
    run_id: str | None = None

    @classmethod
    def load(cls, root: str | Path = ".", params_file: str | Path | None = None, profile: str | None = None,
             progress: bool = True, overrides: dict[str, dict[str, Any]] | None = None,
             run_id: str | None = None) -> "StageContext":
        """Read params.yaml (default: `<root>/params.yaml`) and build the context for workspace `root`;
        `overrides` replace keys of params sections (e.g. {"synth": {"n_films": 12}})."""
        root = Path(root)
        params = deep_merge(load_params(params_file or root / DEFAULT_PARAMS, profile), overrides or {})
        return cls(Workspace(root, section(params, "workspace", WorkspaceConfig)), params, progress, run_id)

    def locked(self) -> AbstractContextManager[None]:
        """Hold the workspace lock (matmcl.workspace_lock); the first holder clears leftovers of killed runs from
        the folders matmcl writes (never from a lab's raw folder)."""
        ws = self.workspace
        managed = [ws.processed, ws.models, ws.reports]
        if (ws.virtual_lab / LAB_MANIFEST).is_file():
            managed.append(ws.virtual_lab)
        return workspace_lock(ws.root, managed)

    def config(self, name: str, cls: type[T]) -> T:
        """The typed config of params section `name`."""
        return section(self.params, name, cls)

    def write_metrics(self, name: str, metrics: dict[str, Any]) -> Path:
        """Write `reports/<name>.json` (what `dvc metrics show` and the Dagster UI read)."""
        return write_json(metrics, self.workspace.reports / stage_report(name))


@dataclass
class StageResult:
    """What every stage returns: the metrics it wrote to reports/<stage>.json and the plots (PNG files) it made.

    The CLI prints `metrics`; Dagster shows both as materialization metadata; `matmcl run` collects them.
    """

    metrics: dict[str, Any]
    plots: dict[str, Path] = field(default_factory=dict)


@contextmanager
def timed(metrics: dict[str, Any]) -> Iterator[None]:
    """Record the wall time of the block in `metrics["seconds"]`."""
    start = time.perf_counter()
    yield
    metrics["seconds"] = round(time.perf_counter() - start, 3)
