"""`CompositePredictor`: the served multi-stage model (models/composite/msl) and its nanofiber stage
(models/composite/nanofiber_fp): composite and nanofiber properties from processing conditions.

`load` refuses (LineageError) a composite folder made from other data, another composite table, another SGPT model
than the workspace's, or whose `msl` model was fine-tuned from another `nanofiber_fp` than the one beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from matmcl.artifacts import COMPOSITE_DIR, SCALER_FILE, SGPT_DIR
from matmcl.composites.model import load_model
from matmcl.composites.msl import conditions_frame, predict
from matmcl.composites.pipeline import FP_DIR, MSL_DIR, NANOFIBER_FP, expected_sources
from matmcl.config import BoundsConfig
from matmcl.lineage import DATA, check_lineage, fingerprint
from matmcl.models.heads import PropertyRegressor
from matmcl.schema import DIRECTION, DIRECTION_NAMES, PROPERTY_COLUMNS
from matmcl.target_scaling import TargetScaler
from matmcl.training.data import ConditionScaler

MATERIAL = "material"
RERUN = "composite"


@dataclass
class CompositePredictor:
    scaler: ConditionScaler
    models: dict[str, tuple[PropertyRegressor, TargetScaler]]

    @classmethod
    def load(cls, models_dir: str | Path, processed_dir: str | Path) -> CompositePredictor:
        folder = Path(models_dir) / COMPOSITE_DIR
        if not (folder / MSL_DIR).is_dir():
            raise FileNotFoundError(f"{folder / MSL_DIR} is missing; run `matmcl composite` first")
        expected = expected_sources(models_dir, processed_dir)
        check_lineage(folder / FP_DIR, {DATA: expected[DATA], SGPT_DIR: expected[SGPT_DIR]}, RERUN)
        check_lineage(folder / MSL_DIR, {**expected, NANOFIBER_FP: fingerprint(folder / FP_DIR)}, RERUN)
        models = {}
        for material, name in (("composite", MSL_DIR), ("nanofiber", FP_DIR)):
            regressor, targets, _ = load_model(folder / name)
            models[material] = (regressor, targets)
        return cls(ConditionScaler.load(Path(processed_dir) / SCALER_FILE), models)

    def predict(self, conditions: pd.DataFrame, bounds: BoundsConfig | None = None) -> pd.DataFrame:
        """Composite and nanofiber (S+FP) properties for each condition row × both directions: `row`, the six
        conditions, `direction`, `direction_name`, `material` and the five properties."""
        from matmcl.predict import check_conditions

        rows = conditions_frame(check_conditions(conditions, bounds))
        parts = []
        for material, (regressor, targets) in self.models.items():
            out = rows.assign(**{DIRECTION + "_name": rows[DIRECTION].map(DIRECTION_NAMES), MATERIAL: material})
            out[list(PROPERTY_COLUMNS)] = predict(regressor, self.scaler.inputs(rows), targets)
            parts.append(out)
        return pd.concat(parts, ignore_index=True)
