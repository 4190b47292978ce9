"""The stage table is the one registry: the CLI, `matmcl run`, the Dagster assets and dvc.yaml agree with it, each
stage's code dependencies are its real import closure and its params the sections it really reads, the resolved
params DVC tracks are params.yaml's, and a new row appears everywhere at once."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from assets.stages import stage_assets
from matmcl import cli
from matmcl.config import Workspace, WorkspaceConfig, load_params, section
from matmcl.dvcgen import RESOLVED_PARAMS, dvc_yaml
from matmcl.stages import table
from matmcl.stages.table import STAGES, active_stages, stage, upstream

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    params = load_params(PROJECT / "params.yaml")
    return Workspace(PROJECT, section(params, "workspace", WorkspaceConfig))


def subcommands() -> set[str]:
    return set(cli.build_parser()._subparsers._group_actions[0].choices)


def test_committed_dvc_yaml_is_the_generated_one(workspace):
    assert (PROJECT / "dvc.yaml").read_text() == dvc_yaml(workspace), "dvc.yaml is stale: run `matmcl dvc-yaml`"


def test_cli_assets_and_dvc_have_every_stage_with_the_same_dependencies(workspace):
    assert {row.command for row in STAGES} <= subcommands()
    assets = {a.key.to_user_string(): a for a in stage_assets(workspace)}
    dvc = yaml.safe_load(dvc_yaml(workspace))["stages"]
    for row in active_stages(workspace):
        deps = {u.asset for u in upstream(row, workspace)}
        assert {k.to_user_string() for k in assets[row.asset].asset_deps[assets[row.asset].key]} == deps, row.name
        assert assets[row.asset].code_versions_by_key[assets[row.asset].key] == row.code_version()
        entry = dvc[row.name]
        assert entry["cmd"] == f"matmcl --quiet --params {RESOLVED_PARAMS} {row.command}"
        code = {d for d in entry["deps"] if d.startswith("matmcl/")}
        assert code == {p.as_posix() for p in row.code_files()}, row.name
        assert {"matmcl/schema.py", "matmcl/atomic.py", "matmcl/config.py"} <= code, row.name


@pytest.mark.parametrize("name", [row.name for row in STAGES])
def test_code_dependencies_cover_every_matmcl_module_the_stage_imports(name):
    """What Python really loads when the stage module is imported is inside the closure computed from the source."""
    row = stage(name)
    probe = (f"import sys, {row.module}; "
             "print('\\n'.join(sorted(m.__file__ for n, m in sys.modules.items() "
             "if n.split('.')[0] == 'matmcl' and getattr(m, '__file__', None))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT, check=True)
    loaded = {Path(line).resolve().relative_to(PROJECT) for line in done.stdout.split()}
    assert loaded <= set(row.code_files())


def test_a_new_row_appears_in_the_cli_the_assets_and_dvc(workspace, monkeypatch):
    extra = replace(stage("data_report"), name="shape_report", asset="shape_report", help="a new report",
                    outputs=(table.metrics("shape_report"),))
    monkeypatch.setattr(table, "STAGES", (*STAGES, extra))
    monkeypatch.setattr(cli, "STAGES", table.STAGES)
    assert "shape-report" in subcommands()
    assert "shape_report" in {a.key.to_user_string() for a in stage_assets(workspace)}
    assert yaml.safe_load(dvc_yaml(workspace))["stages"]["shape_report"]["cmd"].endswith(" shape-report")


def test_a_labs_own_raw_folder_drops_the_virtual_lab_stages_and_composites_it_lacks(workspace, tmp_path):
    own = Workspace(tmp_path, replace(workspace.config, raw_dir="lab_data"))
    names = {row.name for row in active_stages(own)}
    assert "synth" not in names and "lab_report" not in names and "preprocess" in names
    dvc = yaml.safe_load(dvc_yaml(own))["stages"]
    assert "synth" not in dvc and "lab_data" in dvc["preprocess"]["deps"]
    assert "data/processed/composite_properties.parquet" not in dvc["tensile"]["outs"]
    assert "data/processed/composite_table.parquet" not in dvc["tables"]["outs"]
    (tmp_path / "lab_data/composites").mkdir(parents=True)
    (tmp_path / "lab_data/composites/composites.csv").write_text("composite_id,film_id\n")
    dvc = yaml.safe_load(dvc_yaml(own))["stages"]
    assert "data/processed/composite_properties.parquet" in dvc["tensile"]["outs"]
    assert "data/processed/composite_properties.parquet" in dvc["tables"]["deps"]


def test_a_stage_reading_an_undeclared_params_section_fails_before_writing(tmp_path):
    from matmcl.pipeline_run import UndeclaredParamsError, run_stage
    from matmcl.stages.context import StageContext

    undeclared = replace(stage("synth"), params=())
    ctx = StageContext.load(tmp_path, PROJECT / "params.yaml", "smoke", progress=False)
    with pytest.raises(UndeclaredParamsError, match="section 'synth'"):
        run_stage(ctx, undeclared)
    assert not (tmp_path / "data").exists()


def test_committed_resolved_params_are_params_yaml_with_its_profile(tmp_path, monkeypatch):
    from matmcl.config import PROFILE_ENV, resolve_params

    monkeypatch.delenv(PROFILE_ENV, raising=False)
    resolve_params(PROJECT / "params.yaml", tmp_path / "resolved.yaml")
    assert (tmp_path / "resolved.yaml").read_text() == (PROJECT / "params.resolved.yaml").read_text(), \
        "params.resolved.yaml is stale: run `matmcl resolve-params`"
    assert load_params(tmp_path / "resolved.yaml") == load_params(PROJECT / "params.yaml")
    monkeypatch.setenv(PROFILE_ENV, "smoke")
    with pytest.raises(ValueError, match="DVC only sees the file"):
        resolve_params(PROJECT / "params.yaml", tmp_path / "other.yaml")
    with pytest.raises(ValueError, match="holds the resolved 'default' profile, not 'smoke'"):
        load_params(tmp_path / "resolved.yaml")


def test_benchmark_stages_stay_out_of_the_main_job_but_have_their_own(workspace):
    from pipelines.jobs import build_jobs

    from matmcl.stages.table import main_job_stages

    benchmarks = {row.name for row in STAGES if row.benchmark}
    assert {"polymer_study", "active_learning"} <= benchmarks
    assert not benchmarks & {row.name for row in main_job_stages(workspace)}
    assert benchmarks <= set(yaml.safe_load(dvc_yaml(workspace))["stages"])
    jobs, _ = build_jobs([row.asset for row in STAGES])
    assert {job.name for job in jobs} >= {"main_job", "benchmarks"}


def test_run_stage_refuses_a_function_that_is_not_the_rows(tmp_path):
    from matmcl.pipeline_run import run_stage
    from matmcl.stages.context import StageContext
    from matmcl.stages.tables import tables

    ctx = StageContext.load(tmp_path, PROJECT / "params.yaml", "smoke", progress=False)
    with pytest.raises(ValueError, match="is not stage synth"):
        run_stage(ctx, stage("synth"), tables)
