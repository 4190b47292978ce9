"""Resources beside the workspace (assets.workspace): where the training assets log to MLflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from matmcl.config import TrackingConfig, section


class MLflowResource(dg.ConfigurableResource):
    """MLflow store and experiment (params `tracking`; default a local sqlite file); `enabled=False` logs nothing."""

    tracking_uri: str = TrackingConfig.mlflow_uri
    experiment: str = TrackingConfig.experiment
    enabled: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "MLflowResource":
        """The resource configured from the `tracking` section of loaded params."""
        tracking = section(params, "tracking", TrackingConfig)
        return cls(tracking_uri=tracking.mlflow_uri, experiment=tracking.experiment, enabled=tracking.enabled)

    def params(self) -> dict[str, Any]:
        """The `tracking` params section this resource stands for (overrides params.yaml in the assets)."""
        return {"mlflow_uri": self.tracking_uri, "experiment": self.experiment, "enabled": self.enabled}
