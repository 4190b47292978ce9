"""MLflow tracking: the only module that imports mlflow (lazily, so that importing matmcl stays fast), besides the
pyfunc model class in matmcl.serving.

`resolve_tracking(params, root)` is the `tracking` section as used: $MLFLOW_TRACKING_URI, when set, replaces
`mlflow_uri`, and a relative sqlite path is taken relative to the workspace root. `tracking_run(...)` opens one
stage's MLflow run, nested under the run of its pipeline run: the parent is found by its tag
`matmcl.pipeline_run=<id>` (created by the first stage of that pipeline run). The id is the StageContext's `run_id`
(`matmcl run`'s or Dagster's), else $MATMCL_PIPELINE_RUN (export it to group the stages of a `dvc repro`), else a
fresh one (the stage is its own pipeline run). Every run is tagged with `git_commit`, the pipeline run id,
`dagster_run_id` when the id is Dagster's (a dashed UUID), plus the caller's tags (data_version, code_version,
profile). The yielded object has `log_params`, `log_metrics`, `log_artifact`, `log_dataset`, `log_model` and
`log_pyfunc` (both can register the model under an alias). With `enabled=False` it is a `NullRun` whose methods do
nothing, so training code logs unconditionally.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import subprocess
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from matmcl.config import TrackingConfig, section

UNKNOWN = "unknown"
CODE_DIR = Path(__file__).resolve().parent
MODEL_FORMAT = "pickle"  # mlflow's default "pt2" traces forward() and needs an input example; ours takes a dict
SQLITE_PREFIX = "sqlite:///"
URI_ENV = "MLFLOW_TRACKING_URI"
PIPELINE_ENV = "MATMCL_PIPELINE_RUN"
PIPELINE_TAG = "matmcl.pipeline_run"
STAGE_TAG = "matmcl.stage"
PIPELINE_STAGE = "pipeline"  # STAGE_TAG of a pipeline run's parent run
PARENT_TAG = "mlflow.parentRunId"  # what MLflow nests runs by
ARTIFACTS_DIR = "mlartifacts"  # beside a sqlite store: the artifacts of the experiments it creates
DAGSTER_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Distributions of the third-party modules the pyfunc's code imports (matmcl.serving's import closure).
PYFUNC_REQUIREMENTS = ("torch", "numpy", "pandas", "scikit-learn", "pillow", "tqdm", "pyyaml")


def resolve_tracking(params: Mapping[str, Any], root: str | Path) -> TrackingConfig:
    """The `tracking` section of `params` with $MLFLOW_TRACKING_URI (when set) as the store and a relative sqlite
    path resolved against the workspace `root`."""
    config = section(params, "tracking", TrackingConfig)
    uri = os.environ.get(URI_ENV) or config.mlflow_uri
    path = uri.removeprefix(SQLITE_PREFIX)
    if uri.startswith(SQLITE_PREFIX) and not Path(path).is_absolute():
        uri = SQLITE_PREFIX + str((Path(root) / path).resolve())
    return dataclasses.replace(config, mlflow_uri=uri)


def _pinned(distribution: str) -> str:
    return f"{distribution}=={version(distribution).split('+')[0]}"


def git_commit(cwd: str | Path = CODE_DIR) -> str:
    """The commit checked out in `cwd` (default: matmcl's own source tree), or "unknown" outside a repository."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN
    return done.stdout.strip()


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
        """Attach a file (e.g. a PNG plot or a JSON report) or a folder's files."""

    def log_dataset(self, df: pd.DataFrame, name: str, source: str | Path, context: str = "training") -> None:
        """Record a table the run consumed (dataset lineage)."""

    def log_model(self, model: nn.Module, name: str, registered_name: str | None = None,
                  alias: str | None = None) -> None:
        """Log a torch model; with `registered_name`, register it and point `alias` at the new version."""

    def log_pyfunc(self, name: str, model: Any, artifacts: Mapping[str, str | Path], input_example: pd.DataFrame,
                   output_example: pd.DataFrame, registered_name: str | None = None, alias: str | None = None) -> None:
        """Log an mlflow.pyfunc.PythonModel with its `artifacts` (local paths), matmcl's source as code, the
        signature of (input_example → output_example) and the input example; register it like `log_model`."""


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

        if Path(path).is_dir():
            mlflow.log_artifacts(str(path), artifact_path=artifact_path)
        else:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_dataset(self, df: pd.DataFrame, name: str, source: str | Path, context: str = "training") -> None:
        import mlflow

        with warnings.catch_warnings():  # mlflow's hints on ambiguous local sources and integer schema columns
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(df, source=str(source), name=name)
        mlflow.log_input(dataset, context=context)

    def log_model(self, model: nn.Module, name: str, registered_name: str | None = None,
                  alias: str | None = None) -> None:
        import mlflow.pytorch

        info = mlflow.pytorch.log_model(model, name=name, registered_model_name=registered_name,
                                        serialization_format=MODEL_FORMAT, pip_requirements=[_pinned("torch")])
        _set_alias(info, registered_name, alias)

    def log_pyfunc(self, name: str, model: Any, artifacts: Mapping[str, str | Path], input_example: pd.DataFrame,
                   output_example: pd.DataFrame, registered_name: str | None = None, alias: str | None = None) -> None:
        import mlflow.pyfunc
        from mlflow.models import infer_signature

        with warnings.catch_warnings():  # mlflow's hint on integer columns (direction is a 0/1 flag, never missing)
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.pyfunc.log_model(
                name=name, python_model=model, artifacts={key: str(path) for key, path in artifacts.items()},
                code_paths=[str(CODE_DIR)], signature=infer_signature(input_example, output_example),
                input_example=input_example, pip_requirements=[_pinned(d) for d in PYFUNC_REQUIREMENTS],
                registered_model_name=registered_name)
        _set_alias(info, registered_name, alias)


def _set_alias(info: Any, registered_name: str | None, alias: str | None) -> None:
    """Point `alias` of the registered model at the version just logged."""
    import mlflow

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


def _experiment_id(client: Any, config: TrackingConfig) -> str:
    """The experiment's id, creating it (a sqlite store keeps its artifacts in `mlartifacts/` beside it)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(config.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if config.mlflow_uri.startswith(SQLITE_PREFIX):
        location = (Path(config.mlflow_uri.removeprefix(SQLITE_PREFIX)).parent / ARTIFACTS_DIR).as_uri()
    try:
        return client.create_experiment(config.experiment, artifact_location=location)
    except MlflowException:  # created meanwhile by a concurrent stage
        return client.get_experiment_by_name(config.experiment).experiment_id


def _parent_run(client: Any, experiment_id: str, pipeline_run: str, tags: Mapping[str, str]) -> str:
    """The id of the pipeline run's parent MLflow run (found by its tags, else created)."""
    query = f"tags.`{PIPELINE_TAG}` = '{pipeline_run}' and tags.`{STAGE_TAG}` = '{PIPELINE_STAGE}'"
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    if found:
        return found[0].info.run_id
    parent = client.create_run(experiment_id, tags={**tags, STAGE_TAG: PIPELINE_STAGE},
                               run_name=f"{PIPELINE_STAGE} {pipeline_run}")
    return parent.info.run_id


@contextmanager
def tracking_run(config: TrackingConfig, stage: str, pipeline_run: str | None = None,
                 tags: Mapping[str, str] | None = None) -> Iterator[NullRun]:
    """Open stage `stage`'s MLflow run (see the module docstring), nested under its pipeline run's parent run; a
    NullRun when `config.enabled` is false. The parent ends with the status of its latest stage."""
    if not config.enabled:
        yield NullRun()
        return
    import mlflow

    mlflow.set_tracking_uri(config.mlflow_uri)
    client = mlflow.MlflowClient()
    experiment_id = _experiment_id(client, config)
    pipeline_run = pipeline_run or os.environ.get(PIPELINE_ENV) or uuid.uuid4().hex
    all_tags = {"git_commit": git_commit(), PIPELINE_TAG: pipeline_run, **(tags or {})}
    if DAGSTER_RUN_ID.fullmatch(pipeline_run):
        all_tags["dagster_run_id"] = pipeline_run
    parent = _parent_run(client, experiment_id, pipeline_run, all_tags)
    status = "FAILED"
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=stage,
                              tags={**all_tags, STAGE_TAG: stage, PARENT_TAG: parent}) as run:
            yield MlflowRun(run.info.run_id)
        status = "FINISHED"
    finally:
        client.set_terminated(parent, status)
