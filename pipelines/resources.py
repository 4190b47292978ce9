"""Resources beside the workspace (assets.workspace): MLflow tracking for the training assets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg

from matmcl.config import TrackingConfig, section

if TYPE_CHECKING:
    from matmcl.tracking import NullRun


class MLflowResource(dg.ConfigurableResource):
    """MLflow store and experiment (params `tracking`; default a local sqlite file); `enabled=False` logs nothing."""

    tracking_uri: str = TrackingConfig.mlflow_uri
    experiment: str = TrackingConfig.experiment
    enabled: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "MLflowResource":
        """The resource configured from the `tracking` section of loaded params."""
        tracking = section(params, "tracking", TrackingConfig)
        return cls(tracking_uri=tracking.mlflow_uri, experiment=tracking.experiment)

    @contextmanager
    def start_run(self, run_name: str, dagster_run_id: str | None = None, **kwargs: Any) -> Iterator["NullRun"]:
        """Open an MLflow run (matmcl.tracking.tracking_run) tagged with the Dagster run id; yields its logger."""
        from matmcl.tracking import tracking_run  # imports torch: only when a training asset runs

        config = TrackingConfig(mlflow_uri=self.tracking_uri, experiment=self.experiment)
        with tracking_run(config, run_name, self.enabled, dagster_run_id=dagster_run_id, **kwargs) as run:
            yield run
