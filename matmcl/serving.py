"""The MLflow pyfunc model `matmcl-matmcl_conditions`: physical conditions in, the five properties out.

Input: a DataFrame with the six condition columns of `matmcl.schema.CONDITION_COLUMNS` (units in the names) and
`direction`, an integer flag: 1 longitudinal (along the drum winding), 0 transverse. Output: the five
`PROPERTY_COLUMNS` in physical units, one row per input row, the numbers `Predictor.predict` gives. Inputs are
checked like the Predictor's (`check_conditions`, `check_direction`: PredictionInputError naming column and rows).

Everything the model needs is logged with it (`ARTIFACTS`): the SGPT folder (its table encoder and projector),
the matmcl_conditions head folder (with the target scaling and its lineage) and the condition scaler; matmcl's own
source goes in as `code_paths`, so loading it needs neither a workspace nor an installed matmcl. Besides
matmcl.tracking, this is the one module that imports MLflow (the model must subclass its PythonModel); it is
imported only where a model is logged or served.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from matmcl.artifacts import SGPT_DIR
from matmcl.lineage import fingerprint
from matmcl.predict import check_conditions, check_direction, predict_conditions
from matmcl.schema import DIRECTION, PROPERTY_COLUMNS
from matmcl.training.data import ConditionScaler
from matmcl.training.properties import load_head
from matmcl.training.pretrain import load_sgpt

SGPT, HEAD, SCALER = "sgpt", "head", "scaler"
ARTIFACTS = (SGPT, HEAD, SCALER)  # keys of `artifacts`: SGPT folder, head folder, scaler.json


class ConditionsModel(mlflow.pyfunc.PythonModel):
    """The conditions-only property model (frozen SGPT condition embedder + head) with both scalers."""

    def load(self, artifacts: Mapping[str, str | Path]) -> ConditionsModel:
        """Load the state from local artifact paths (what `load_context` does with the logged copies)."""
        self.sgpt, _ = load_sgpt(artifacts[SGPT])
        self.head, self.targets = load_head(artifacts[HEAD], {SGPT_DIR: fingerprint(artifacts[SGPT])})
        self.scaler = ConditionScaler.load(artifacts[SCALER])
        return self

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.load(context.artifacts)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
                ) -> pd.DataFrame:
        """The five properties (physical units) of each row of conditions and direction."""
        rows = check_conditions(model_input).assign(**{DIRECTION: check_direction(model_input)})
        prediction = predict_conditions(self.sgpt, self.head, self.targets, self.scaler, rows)
        return pd.DataFrame(prediction, columns=list(PROPERTY_COLUMNS))
