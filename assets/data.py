"""The data pipeline as software-defined assets. Each asset runs one matmcl stage, which writes its files at the
documented workspace paths (docs/processed-format.md) and returns the metadata shown in the UI; deps mirror dvc.yaml.
"""

import dagster as dg

from assets.metadata import stage_result
from assets.workspace import FINGERPRINT_KEY, WorkspaceResource
from matmcl.stages.features import features
from matmcl.stages.preprocess import preprocess
from matmcl.stages.raw import lab_report as write_lab_report
from matmcl.stages.raw import synthesize
from matmcl.stages.report import data_report as write_data_report
from matmcl.stages.tables import tables
from matmcl.stages.tensile import tensile

GROUP = "data"
# Every data step uses the machine's cores; cap concurrent steps across runs with
# `dagster instance concurrency set matmcl_cpu 1` (docs/pipeline.md).
POOL = "matmcl_cpu"


class SynthesizeConfig(dg.Config):
    """Materialization-time overrides of params.yaml `synth` (unset: keep the file's value)."""

    n_films: int | None = None
    seed: int | None = None


@dg.asset(group_name=GROUP, kinds={"python", "csv"}, pool=POOL)
def raw_lab_data(config: SynthesizeConfig, workspace: WorkspaceResource) -> dg.MaterializeResult:
    """Virtual-lab raw dataset (conditions, SEM frames, tensile curves, ground truth), replacing the raw folder."""
    overrides = {key: value for key, value in config.model_dump().items() if value is not None}
    manifest = synthesize(workspace.context(synth=overrides))
    return stage_result({**manifest, FINGERPRINT_KEY: workspace.raw_fingerprint()})


@dg.asset(group_name=GROUP, kinds={"python", "png"}, deps=[raw_lab_data], pool=POOL)
def lab_report(workspace: WorkspaceResource) -> dg.MaterializeResult:
    """SEM contact sheet and trend plots of the virtual-lab dataset (empty for a lab's own data)."""
    return stage_result(write_lab_report(workspace.context()))


@dg.asset(group_name=GROUP, kinds={"python", "png", "parquet"}, deps=[raw_lab_data], pool=POOL)
def sem_patches(workspace: WorkspaceResource) -> dg.MaterializeResult:
    """Histogram-matched SEM patches and their manifest (patches/, patches.parquet, reference_histogram.json)."""
    return stage_result(preprocess(workspace.context()))


@dg.asset(group_name=GROUP, kinds={"python", "parquet"}, deps=[raw_lab_data], pool=POOL)
def tensile_properties(workspace: WorkspaceResource) -> dg.MaterializeResult:
    """Five tensile properties per curve and replicate means per film × direction (and composite)."""
    return stage_result(tensile(workspace.context()))


@dg.asset(group_name=GROUP, kinds={"python", "parquet"}, deps=[sem_patches], pool=POOL)
def structural_features(workspace: WorkspaceResource) -> dg.MaterializeResult:
    """Orientation, fiber diameter, pore size and porosity per patch and per film."""
    return stage_result(features(workspace.context()))


@dg.asset(group_name=GROUP, kinds={"python", "parquet"}, deps=[raw_lab_data, sem_patches, tensile_properties],
          pool=POOL)
def model_tables(workspace: WorkspaceResource) -> dg.MaterializeResult:
    """Model-ready film × direction table, film-level splits, condition scaler and the composite table."""
    return stage_result(tables(workspace.context()))


@dg.asset(group_name=GROUP, kinds={"python", "json", "png"},
          deps=[raw_lab_data, sem_patches, tensile_properties, structural_features, model_tables], pool=POOL)
def data_report(workspace: WorkspaceResource) -> dg.MaterializeResult:
    """reports/data.json (what `dvc metrics show` lists) and the matching, feature and property plots."""
    report = write_data_report(workspace.context())
    return stage_result({**report["metrics"], **report["plots"]})


DATA_ASSETS = [raw_lab_data, lab_report, sem_patches, tensile_properties, structural_features, model_tables,
               data_report]
