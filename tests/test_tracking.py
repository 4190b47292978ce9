"""Tests of matmcl.tracking with the session's temporary MLflow store: the resolved config, pipeline-run grouping
(one parent run, a nested run per stage), tags, logging and model registration."""

from __future__ import annotations

import uuid
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from matmcl.models.sgpt import build_sgpt
from matmcl.tracking import (
    PARENT_TAG,
    PIPELINE_ENV,
    PIPELINE_TAG,
    STAGE_TAG,
    URI_ENV,
    NullRun,
    resolve_tracking,
    tracking_run,
)
from matmcl.training.config import PretrainConfig

PARAMS = {"tracking": {"mlflow_uri": "sqlite:///store/mlflow.db", "experiment": "tracking-tests"}}


def test_resolve_tracking_takes_the_environment_then_the_workspace_root(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(URI_ENV)
    assert resolve_tracking(PARAMS, tmp_path).mlflow_uri == f"sqlite:///{tmp_path.resolve() / 'store/mlflow.db'}"
    absolute = {"tracking": {"mlflow_uri": "sqlite:////srv/mlflow.db"}}
    assert resolve_tracking(absolute, tmp_path).mlflow_uri == "sqlite:////srv/mlflow.db"
    monkeypatch.setenv(URI_ENV, "http://mlflow.example:5000")
    config = resolve_tracking(PARAMS, tmp_path)
    assert config.mlflow_uri == "http://mlflow.example:5000" and config.experiment == "tracking-tests"


def test_tracking_disabled_is_a_no_op(tmp_path: Path):
    config = resolve_tracking({"tracking": {**PARAMS["tracking"], "enabled": False}}, tmp_path)
    with tracking_run(config, "stage") as run:
        assert isinstance(run, NullRun) and run.run_id is None
        run.log_metrics({"loss": 1.0})


def runs_of(client: mlflow.MlflowClient, pipeline_run: str) -> dict[str, list]:
    experiment = client.get_experiment_by_name(PARAMS["tracking"]["experiment"]).experiment_id
    found = client.search_runs([experiment], filter_string=f"tags.`{PIPELINE_TAG}` = '{pipeline_run}'")
    by_stage: dict[str, list] = {}
    for run in found:
        by_stage.setdefault(run.data.tags[STAGE_TAG], []).append(run)
    return by_stage


def test_stages_of_one_pipeline_run_nest_under_one_parent(tmp_path: Path, mlflow_store: str, monkeypatch):
    config = resolve_tracking(PARAMS, tmp_path)
    client = mlflow.MlflowClient(mlflow_store)
    dagster_id = str(uuid.uuid4())
    for stage in ("pretrain", "heads"):
        with tracking_run(config, stage, dagster_id, {"data_version": "v1", "profile": "smoke"}):
            pass
    by_stage = runs_of(client, dagster_id)
    (parent,) = by_stage["pipeline"]
    assert parent.info.status == "FINISHED"
    for stage in ("pretrain", "heads"):
        (run,) = by_stage[stage]
        assert run.data.tags[PARENT_TAG] == parent.info.run_id
        assert run.data.tags["dagster_run_id"] == dagster_id and run.data.tags["data_version"] == "v1"
        assert run.data.tags["git_commit"] and run.data.tags["profile"] == "smoke"
    # A stage alone (e.g. under DVC) is its own pipeline run, unless $MATMCL_PIPELINE_RUN groups them.
    with tracking_run(config, "evaluate") as alone:
        pass
    lonely = client.get_run(alone.run_id).data.tags
    assert lonely[PIPELINE_TAG] != dagster_id and "dagster_run_id" not in lonely
    monkeypatch.setenv(PIPELINE_ENV, "dvc-repro-7")
    for stage in ("pretrain", "heads"):
        with tracking_run(config, stage):
            pass
    grouped = runs_of(client, "dvc-repro-7")
    assert sorted(grouped) == ["heads", "pipeline", "pretrain"] and len(grouped["pipeline"]) == 1
    # A failing stage fails its pipeline run's parent.
    with pytest.raises(RuntimeError), tracking_run(config, "evaluate"):
        raise RuntimeError("boom")
    assert client.get_run(grouped["pipeline"][0].info.run_id).info.status == "FAILED"


@pytest.mark.slow
def test_tracking_logs_params_metrics_lineage_and_a_registered_model(tmp_path: Path, mlflow_store: str):
    config = resolve_tracking(PARAMS, tmp_path)
    table = pd.DataFrame({"film_id": ["F1", "F2"], "voltage_kv": [15.0, 16.0]})
    with tracking_run(config, "pretrain", "logging-test") as run:
        run.log_params({"pretrain": {"lr": 0.1}})
        run.log_metrics({"loss": 2.0, "per": {"table": 1.0, "skipped": float("nan")}}, step=1)
        run.log_dataset(table, "processed_table", tmp_path / "table.parquet")
        run.log_model(build_sgpt(PretrainConfig(model="tiny").sgpt_config()), "sgpt", "tracking-test-sgpt", "smoke")
    client = mlflow.MlflowClient(mlflow_store)
    logged = client.get_run(run.run_id)
    assert logged.data.params == {"pretrain.lr": "0.1"}
    assert logged.data.metrics == {"loss": 2.0, "per.table": 1.0}
    assert [d.dataset.name for d in logged.inputs.dataset_inputs] == ["processed_table"]
    assert client.get_model_version_by_alias("tracking-test-sgpt", "smoke").run_id == run.run_id
    assert Path(mlflow_store.removeprefix("sqlite:///")).parent.joinpath("mlartifacts").is_dir()
