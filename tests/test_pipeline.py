"""The pipeline's drivers on the smoke profile, each in a temporary workspace: a Dagster materialization (with its
blocking checks) and `dvc repro` write the same files as `matmcl run` (the stage functions in order); a failing
check stops the assets downstream; the raw-data sensor; the Definitions load."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.checks import DATA_CHECKS
from assets.stages import stage_assets
from assets.workspace import WorkspaceResource
from matmcl import cli
from matmcl.stages.table import STAGES
from pipelines.resources import MLflowResource
from pipelines.sensors import raw_data_sensor

PROJECT = Path(__file__).resolve().parents[1]
PARAMS = PROJECT / "params.yaml"
PROFILE = "smoke"
ARTIFACT_DIRS = ("data", "models", "reports")
ONLY_IN_MAIN_JOB = {"reports/timing.json"}
TIMINGS = ("seconds", "patch_throughput_per_s")  # wall-clock entries, different on every run


def workspace(root: Path) -> WorkspaceResource:
    return WorkspaceResource(root=str(root), params_file=str(PARAMS), profile=PROFILE)


ASSETS = {a.key.to_user_string(): a for a in stage_assets(workspace(PROJECT).context().workspace)}
BENCHMARKS = {row.asset for row in STAGES if row.benchmark}  # outside the main job, like `matmcl run`
MAIN_JOB = {name: a for name, a in ASSETS.items() if name not in BENCHMARKS}


BENCHMARK_OUTPUTS = tuple(f"{o.group}/{o.name}" for row in STAGES if row.benchmark for o in row.outputs)


def artifacts(root: Path) -> set[str]:
    """Workspace files (relative paths) the main job writes, without git's and DVC's bookkeeping and without the
    benchmark stages' reports (`dvc repro` runs those too)."""
    files = {p.relative_to(root).as_posix() for d in ARTIFACT_DIRS for p in (root / d).rglob("*") if p.is_file()}
    return {f for f in files if not f.endswith(".gitignore") and not f.startswith(BENCHMARK_OUTPUTS)} - ONLY_IN_MAIN_JOB


def without_timings(obj):
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if k not in TIMINGS}
    return obj


def assert_same_artifacts(root: Path, reference: Path) -> None:
    """Same file list as the reference; same data files (tables as frames, JSON without wall times)."""
    assert artifacts(root) == artifacts(reference)
    for name in sorted(artifacts(reference)):
        if not name.startswith("data/"):
            continue
        ours, theirs = root / name, reference / name
        if ours.suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(ours), pd.read_parquet(theirs), obj=name)
        elif ours.suffix == ".json":
            ours_json, theirs_json = (without_timings(json.loads(p.read_text())) for p in (ours, theirs))
            assert ours_json == theirs_json, name
        else:
            assert ours.read_bytes() == theirs.read_bytes(), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A workspace built by `matmcl run`."""
    root = tmp_path_factory.mktemp("matmcl_run")
    argv = ["--workspace", str(root), "--params", str(PARAMS), "--profile", PROFILE, "--quiet", "run"]
    assert cli.main(argv) == 0
    return root


@pytest.fixture(scope="module")
def materialized(tmp_path_factory) -> tuple[Path, dg.ExecuteInProcessResult, dg.DagsterInstance]:
    """A workspace built by materializing every asset (data and training) and check in-process."""
    root = tmp_path_factory.mktemp("dagster")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"workspace": workspace(root), "mlflow": MLflowResource()}
    result = dg.materialize([*MAIN_JOB.values(), *DATA_CHECKS.values()], resources=resources, instance=instance)
    return root, result, instance


def test_materialization_writes_what_matmcl_run_writes(materialized, reference):
    root, result, _ = materialized
    assert result.success
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {a.key for a in MAIN_JOB.values()}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"conditions_suite": True, "patches_suite": True, "properties_suite": True, "table_suite": True}
    assert_same_artifacts(root, reference)
    table = pd.read_parquet(root / "data/processed/table.parquet")
    assert len(table) == 2 * 12  # smoke profile: 12 films × 2 directions


def test_materialization_metadata_is_readable(materialized):
    _, result, _ = materialized
    metadata = {node: result.asset_materializations_for_node(node)[0].metadata
                for node in ("data_report", "sem_patches", "tensile_properties")}
    report = metadata["data_report"]
    assert report["n_films"].value == 12
    assert report["n_patches"].value == metadata["sem_patches"]["n_patches"].value
    assert report["properties"].value.startswith("![data_properties.png](data:image/png;base64,")
    assert Path(report["properties_path"].value).is_file()
    assert metadata["tensile_properties"]["tensile_rel_error.fracture_strength_mpa"].value < 0.02


def test_failing_blocking_check_stops_downstream_assets(materialized, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(materialized[0], root)
    (root / "reports/data.json").unlink()

    @dg.asset(name="model_tables", deps=["raw_lab_data", "sem_patches", "tensile_properties"])
    def corrupted_tables(workspace: WorkspaceResource) -> None:
        path = workspace.context().workspace.processed / "table.parquet"
        table = pd.read_parquet(path)
        table.loc[0, "direction"] = 2
        table.to_parquet(path, index=False)

    resources = {"workspace": workspace(root), "mlflow": MLflowResource()}
    result = dg.materialize([corrupted_tables, DATA_CHECKS["table"], ASSETS["data_report"]], resources=resources,
                            raise_on_error=False)
    assert not result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "direction" in evaluation.metadata["failures"].value and "[2]" in evaluation.metadata["failures"].value
    assert not result.asset_materializations_for_node("data_report")
    assert not (root / "reports/data.json").exists()


def test_synthesis_config_overrides_params_at_materialization(tmp_path):
    config = {"ops": {"raw_lab_data": {"config": {"n_films": 3, "seed": 5}}}}
    resources = {"workspace": workspace(tmp_path), "mlflow": MLflowResource()}
    result = dg.materialize([ASSETS["raw_lab_data"]], resources=resources, run_config=config)
    metadata = result.asset_materializations_for_node("raw_lab_data")[0].metadata
    assert metadata["films"].value == 3
    conditions = pd.read_csv(tmp_path / "data/virtual_lab/conditions.csv")
    assert len(conditions) == 3
    again = dg.materialize([ASSETS["raw_lab_data"]], resources=resources,
                           run_config={"ops": {"raw_lab_data": {"config": {"n_films": 3, "seed": 6}}}})
    assert again.success and not pd.read_csv(tmp_path / "data/virtual_lab/conditions.csv").equals(conditions)


def test_raw_data_sensor_requests_a_run_for_new_raw_data_only(materialized, reference, tmp_path):
    root, _, instance = materialized
    fresh = dg.DagsterInstance.ephemeral()

    def evaluate(ws_root: Path, on: dg.DagsterInstance) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=on, resources={"workspace": workspace(ws_root)})
        return raw_data_sensor(context)

    (request,) = evaluate(reference, fresh).run_requests  # raw data nobody processed yet (as a lab's drop)
    assert request.run_key == workspace(reference).raw_fingerprint()
    assert "virtual lab" in evaluate(root, instance).skip_reason.skip_message  # written by the virtual lab
    assert not evaluate(tmp_path, fresh).run_requests  # no raw folder yet


def test_definitions_load():
    from pipelines.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert {job.name for job in defs.resolve_all_job_defs()} >= {"data_pipeline", "process_raw_data"}
    process_raw = defs.resolve_job_def("process_raw_data").asset_layer.executable_asset_keys
    assert ASSETS["raw_lab_data"].key not in process_raw and ASSETS["data_report"].key in process_raw
    assert defs.resolve_schedule_def("weekly_rebuild").job_name == "process_raw_data"


DVC = str(Path(sys.executable).parent / "dvc")  # `make setup`'s wrapper around DVC's own environment


def dvc_project(root: Path) -> dict[str, str]:
    """Copy the pipeline (dvc.yaml, smoke-profile params, the code DVC hashes) into `root`; git and DVC init."""
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(PROJECT / name, root)
    (root / "params.yaml").write_text(re.sub(r"(?m)^profile: .*$", f"profile: {PROFILE}", PARAMS.read_text()))
    shutil.copytree(PROJECT / "matmcl", root / "matmcl", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "MATMCL_PROFILE"}
    env.update(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=root, env=env, check=True)
    return env


def dvc(root: Path, env: dict[str, str], *args: str, ok: bool = True) -> str:
    done = subprocess.run([DVC, *args], cwd=root, env=env, capture_output=True, text=True)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout + done.stderr


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '([a-z_]+)'", output)


def test_dvc_repro_matches_reruns_only_what_an_edit_touches_and_keeps_foreign_files(reference, tmp_path):
    env = dvc_project(tmp_path)
    dvc(tmp_path, env, "repro")
    assert "Data and pipelines are up to date." in dvc(tmp_path, env, "repro")
    assert_same_artifacts(tmp_path, reference)
    metrics = json.loads(dvc(tmp_path, env, "metrics", "show", "--json"))
    data = metrics[""]["data"]["reports/data.json"]["data"]
    assert data["n_films"] == 12 and "fracture_strength_mpa" in data["tensile_rel_error"]

    subprocess.run(["git", "add", "-A"], cwd=tmp_path, env=env, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "pipeline"], cwd=tmp_path, env=env, check=True)
    edited = dvc(tmp_path, env, "exp", "run", "-S", f"profiles.{PROFILE}.evaluation.oracle_draws=11")
    ran = ran_stages(edited)  # only the stages whose resolved `evaluation` section changed
    assert ran[0] == "resolve_params" and sorted(ran[1:]) == sorted(r.name for r in STAGES if "evaluation" in r.params)
    assert "evaluation.oracle_draws" in dvc(tmp_path, env, "params", "diff")

    notes = tmp_path / "data/virtual_lab/sem/notes.txt"  # a file the virtual lab did not write
    notes.write_text("a user's file")
    assert "did not write" in dvc(tmp_path, env, "repro", "--force", "synth", ok=False)
    assert notes.read_text() == "a user's file"


def test_dagster_cli_materializes_a_selection(reference, tmp_path):
    """`dagster asset materialize --select` (Dagster's selection grammar needs antlr 4.13, which DVC's own
    environment keeps away from this one) writes the data files `matmcl run` writes."""
    (tmp_path / "params.yaml").write_text(re.sub(r"(?m)^profile: .*$", f"profile: {PROFILE}", PARAMS.read_text()))
    env = {**os.environ, "MATMCL_WORKSPACE": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir()
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m",
                           "pipelines.definitions", "--select", "group:data"], cwd=PROJECT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    table = "data/processed/table.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / table), pd.read_parquet(reference / table))
    assert not (tmp_path / "models").exists()
