"""Training as software-defined assets: SGPT pre-training, the served property heads and the evaluation. Each runs
one matmcl stage (tracked in MLflow with the Dagster run id) and attaches its metrics and plots."""

import dagster as dg

from assets.data import POOL, model_tables, structural_features
from assets.metadata import stage_result
from assets.workspace import WorkspaceResource
from matmcl.stages.training import evaluate, heads, pretrain
from pipelines.resources import MLflowResource

GROUP = "models"


def _context(workspace: WorkspaceResource, mlflow: MLflowResource):
    """The stage context with the MLflow resource's store, experiment and switch as `tracking` parameters."""
    return workspace.context(tracking={"mlflow_uri": mlflow.tracking_uri, "experiment": mlflow.experiment,
                                       "enabled": mlflow.enabled})


@dg.asset(group_name=GROUP, kinds={"pytorch", "mlflow"}, deps=[model_tables], pool=POOL)
def sgpt_model(context: dg.AssetExecutionContext, workspace: WorkspaceResource, mlflow: MLflowResource
               ) -> dg.MaterializeResult:
    """Structure-guided pre-trained encoders (models/sgpt), resumed from its checkpoint after an interruption."""
    return stage_result(pretrain(_context(workspace, mlflow), dagster_run_id=context.run_id))


@dg.asset(group_name=GROUP, kinds={"pytorch", "mlflow"}, deps=[sgpt_model], pool=POOL)
def property_heads(context: dg.AssetExecutionContext, workspace: WorkspaceResource, mlflow: MLflowResource
                   ) -> dg.MaterializeResult:
    """The property heads `matmcl predict` serves (models/property), registered in MLflow."""
    return stage_result(heads(_context(workspace, mlflow), dagster_run_id=context.run_id))


@dg.asset(group_name=GROUP, kinds={"python", "json", "png"}, deps=[sgpt_model, structural_features], pool=POOL)
def model_evaluation(context: dg.AssetExecutionContext, workspace: WorkspaceResource, mlflow: MLflowResource
                     ) -> dg.MaterializeResult:
    """Every variant over the seeds against baselines and ceilings (reports/property.json), alignment analyses."""
    return stage_result(evaluate(_context(workspace, mlflow), dagster_run_id=context.run_id))


MODEL_ASSETS = [sgpt_model, property_heads, model_evaluation]
