"""What every stage receives: the workspace, the resolved parameters and whether to show progress."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from matmcl.atomic import write_json
from matmcl.config import Workspace, WorkspaceConfig, load_params, section

T = TypeVar("T")


@dataclass(frozen=True)
class StageContext:
    """A workspace, its parameters (profile applied) and the progress-bar switch."""

    workspace: Workspace
    params: dict[str, Any]
    progress: bool = True

    @classmethod
    def load(cls, root: str | Path = ".", params_file: str | Path | None = None, profile: str | None = None,
             progress: bool = True) -> "StageContext":
        """Read params.yaml (default: `<root>/params.yaml`) and build the context for workspace `root`."""
        root = Path(root)
        params = load_params(params_file or root / "params.yaml", profile)
        return cls(Workspace(root, section(params, "workspace", WorkspaceConfig)), params, progress)

    def config(self, name: str, cls: type[T]) -> T:
        """The typed config of params section `name`."""
        return section(self.params, name, cls)

    def write_metrics(self, name: str, metrics: dict[str, Any]) -> Path:
        """Write `reports/<name>.json` (what `dvc metrics show` and the Dagster UI read)."""
        return write_json(metrics, self.workspace.reports / f"{name}.json")


@contextmanager
def timed(metrics: dict[str, Any]) -> Iterator[None]:
    """Record the wall time of the block in `metrics["seconds"]`."""
    start = time.perf_counter()
    yield
    metrics["seconds"] = round(time.perf_counter() - start, 3)
