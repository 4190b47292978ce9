"""MLflow tracking: the only module that imports mlflow (lazily, so that importing matmcl stays fast).

`tracking_run(...)` opens a run tagged with the data version, the git commit and the Dagster run id, and yields an
object with `log_params`, `log_metrics`, `log_artifact`, `log_dataset` and `log_model` (which can register the
model under an alias). With `enabled=False` it yields a `NullRun` whose methods do nothing, so training code logs
unconditionally and tests run without a tracking store.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from torch import nn

from matmcl.config import TrackingConfig
from matmcl.schema import SCALER_FILE, TABLE_FILE

DATA_FILES = (TABLE_FILE, "splits.parquet", SCALER_FILE, "patches.parquet", "features.parquet")
DVC_LOCK = Path("dvc.lock")
UNKNOWN = "unknown"
CODE_DIR = Path(__file__).resolve().parent
HASH_CHUNK = 1 << 20
MODEL_FORMAT = "pickle"  # mlflow's default "pt2" traces forward() and needs an input example; ours takes a dict


def git_commit(cwd: str | Path = CODE_DIR) -> str:
    """The commit checked out in `cwd` (default: matmcl's own source tree), or "unknown" outside a repository."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN
    return done.stdout.strip()


def content_hash(processed_dir: str | Path, files: tuple[str, ...] = DATA_FILES) -> str:
    """md5 over the names and bytes of the processed folder's tables (those present), in a fixed order."""
    digest = hashlib.md5()
    for name in files:
        path = Path(processed_dir) / name
        if not path.is_file():
            continue
        digest.update(name.encode())
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def dvc_hash(path: str | Path, lock_file: str | Path = DVC_LOCK) -> str | None:
    """The md5 DVC recorded in `lock_file` for the output `path` (as written in dvc.yaml), or None."""
    lock_file = Path(lock_file)
    if not lock_file.is_file():
        return None
    stages = (yaml.safe_load(lock_file.read_text()) or {}).get("stages", {})
    for stage in stages.values():
        for out in stage.get("outs", []):
            if Path(out.get("path", "")) == Path(path):
                return out.get("md5")
    return None


def data_version(processed_dir: str | Path, lock_file: str | Path = DVC_LOCK) -> str:
    """DVC's md5 of the processed table when dvc.lock records it, else the table hash the `tables` stage stored in
    scaler.json, else `content_hash` of the processed folder's tables."""
    processed_dir = Path(processed_dir)
    scaler = processed_dir / SCALER_FILE
    stored = json.loads(scaler.read_text()).get("data_version") if scaler.is_file() else None
    return dvc_hash(processed_dir / TABLE_FILE, lock_file) or stored or content_hash(processed_dir)


def flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metrics → {"a.b.c": value}, keeping finite numbers only (None, NaN and text are dropped)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            flat[name] = float(value)
    return flat


class NullRun:
    """Tracking switched off: every logging call is accepted and ignored."""

    run_id: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log (nested) parameters, flattened to dotted names."""

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log (nested) numeric metrics, flattened to dotted names, at `step`."""

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Attach a file (e.g. a PNG plot or a JSON report)."""

    def log_dataset(self, df: pd.DataFrame, name: str, source: str | Path, context: str = "training") -> None:
        """Record a table the run consumed (dataset lineage)."""

    def log_model(self, model: nn.Module, name: str, registered_name: str | None = None,
                  alias: str | None = None) -> None:
        """Log a torch model; with `registered_name`, register it and point `alias` at the new version."""


class MlflowRun(NullRun):
    """An active MLflow run."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.log_params(_flat_params(params))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics(flatten(metrics), step=step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_dataset(self, df: pd.DataFrame, name: str, source: str | Path, context: str = "training") -> None:
        import mlflow

        with warnings.catch_warnings():  # mlflow's hints on ambiguous local sources and integer schema columns
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(df, source=str(source), name=name)
        mlflow.log_input(dataset, context=context)

    def log_model(self, model: nn.Module, name: str, registered_name: str | None = None,
                  alias: str | None = None) -> None:
        import mlflow
        import mlflow.pytorch
        import torch

        info = mlflow.pytorch.log_model(model, name=name, registered_model_name=registered_name,
                                        serialization_format=MODEL_FORMAT,
                                        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
        if registered_name and alias:
            mlflow.MlflowClient().set_registered_model_alias(registered_name, alias, info.registered_model_version)


def _flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


@contextmanager
def tracking_run(
    config: TrackingConfig,
    run_name: str,
    enabled: bool = True,
    data_version: str = UNKNOWN,
    dagster_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[NullRun]:
    """Open an MLflow run in `config.experiment` at `config.mlflow_uri` (or a NullRun when not `enabled`).

    Tags: `data_version` (see `data_version()`), `git_commit`, `dagster_run_id` when given, plus `tags`.
    """
    if not enabled:
        yield NullRun()
        return
    import mlflow

    mlflow.set_tracking_uri(config.mlflow_uri)
    mlflow.set_experiment(config.experiment)
    all_tags = {"data_version": data_version, "git_commit": git_commit(), **(tags or {})}
    if dagster_run_id:
        all_tags["dagster_run_id"] = dagster_run_id
    with mlflow.start_run(run_name=run_name, tags=all_tags) as run:
        yield MlflowRun(run.info.run_id)
