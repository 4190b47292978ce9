"""Screening composites for anisotropy (paper Fig. 5e–i), verified in the virtual lab.

`screen`: predict nanofiber (S+FP model) and composite (served S+FP+CP model) properties for random valid conditions
(the virtual lab's Latin hypercube over `schema.CONDITION_RANGES`, rounded to set-point resolution), rank them by the
predicted longitudinal / transverse composite fracture-strength ratio, pick the top ones and a few random others.
`fabricate`: make each candidate in the virtual lab like `matmcl synth` does (a film with film-level random effects,
its composite, `n_replicates` specimen curves per direction written as CSV to a temporary folder) and measure the
properties from those curves with matmcl.tensile (the tensile stage's extraction), independently `n` times; the
simulated value is the mean over fabrications of the replicate means.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from matmcl.lab.conditions import sample_conditions
from matmcl.lab.mechanics import composite_expected_properties, expected_properties, write_specimen_curves
from matmcl.lab.physics import draw_film_structure
from matmcl.schema import (
    COMPOSITE_ID,
    CONDITION_COLUMNS,
    DIRECTION,
    DIRECTION_NAMES,
    FILM_ID,
    LONGITUDINAL,
    PROPERTY_COLUMNS,
    TRANSVERSE,
)
from matmcl.tensile import extract_properties, read_curve, summarize_replicates

STRENGTH = "fracture_strength_mpa"
STREAM_SCREEN = 7  # random stream of the screening fabrications (independent of the dataset's streams)
Predict = Callable[[pd.DataFrame], pd.DataFrame]  # conditions → per row × direction: row, direction, 5 properties


def _wide(prediction: pd.DataFrame) -> pd.DataFrame:
    """row × direction properties → one row per input row with `<property>_<direction name>` columns."""
    wide = prediction.pivot(index="row", columns=DIRECTION, values=list(PROPERTY_COLUMNS))
    wide.columns = [f"{prop}_{DIRECTION_NAMES[flag]}" for prop, flag in wide.columns]
    return wide.sort_index()


def anisotropy(wide: pd.DataFrame, prefix: str = "") -> pd.Series:
    return wide[f"{prefix}{STRENGTH}_longitudinal"] / wide[f"{prefix}{STRENGTH}_transverse"]


def screen(predict_nanofiber: Predict, predict_composite: Predict, n_candidates: int, n_top: int, n_random: int,
           seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(all candidates with predictions and anisotropy, the chosen ones with `pick` = "top k" or "random k")."""
    conditions = sample_conditions(n_candidates, seed)[list(CONDITION_COLUMNS)]
    nano, comp = _wide(predict_nanofiber(conditions)), _wide(predict_composite(conditions))
    table = pd.concat([conditions, nano.add_prefix("nanofiber_"), comp.add_prefix("composite_")], axis=1)
    table["predicted_anisotropy"] = anisotropy(table, "composite_")
    order = table["predicted_anisotropy"].sort_values(ascending=False, kind="stable").index
    top = list(order[:n_top])
    rest = np.setdiff1d(table.index, top)
    random = list(np.random.default_rng([seed, 1]).choice(rest, n_random, replace=False)) if n_random else []
    picks = table.loc[top + random].copy()
    picks.insert(0, "pick", [f"top {k + 1}" for k in range(len(top))] + [f"random {k + 1}" for k in range(len(random))])
    return table, picks.reset_index(names="candidate")


def _measure(expected: pd.DataFrame, id_column: str, folder: Path, rng: np.random.Generator, n_replicates: int,
             strain_step_pct: float) -> pd.DataFrame:
    """Write `n_replicates` specimen curves per id × direction, then read them back like the tensile stage."""
    rows = []
    for item in expected.itertuples(index=False):
        name = DIRECTION_NAMES[int(item.direction)]
        paths = [folder / str(getattr(item, id_column)) / f"{name}_r{k}.csv" for k in range(n_replicates)]
        write_specimen_curves(item._asdict(), paths, rng, strain_step_pct)
        for k, path in enumerate(paths):
            curve = read_curve(path)
            rows.append({id_column: getattr(item, id_column), DIRECTION: int(item.direction), "replicate": k,
                         **extract_properties(curve["strain_pct"], curve["stress_mpa"])})
    return summarize_replicates(pd.DataFrame(rows), id_column)


def fabricate(conditions: pd.DataFrame, n_fabrications: int, n_replicates: int, strain_step_pct: float, seed: int,
              composites: bool = True) -> pd.DataFrame:
    """Virtual-lab measurements of nanofiber films and (with `composites`) their composites at each condition row,
    `n_fabrications` independent times: one row per input row × fabrication × direction with `material` (nanofiber /
    composite) and the five properties measured from written curves. The films' values do not depend on
    `composites` (they are drawn first)."""
    conditions = conditions[list(CONDITION_COLUMNS)].reset_index(drop=True)
    parts = []
    with tempfile.TemporaryDirectory(prefix="matmcl_screen_") as tmp:
        for k in range(n_fabrications):
            ids = pd.Series([f"S{i:03d}_{k}" for i in range(len(conditions))])
            films = draw_film_structure(conditions, np.random.default_rng([seed, STREAM_SCREEN, k]))
            films.insert(0, FILM_ID, ids.to_numpy())
            rng = np.random.default_rng([seed, STREAM_SCREEN, k, 1])
            nano = _measure(expected_properties(films), FILM_ID, Path(tmp) / "films", rng, n_replicates,
                            strain_step_pct)
            made = [("nanofiber", nano, FILM_ID)]
            if composites:
                expected = composite_expected_properties(films, ids.str.replace("S", "C"), rng)
                made.append(("composite", _measure(expected, COMPOSITE_ID, Path(tmp) / "composites", rng,
                                                   n_replicates, strain_step_pct), COMPOSITE_ID))
            for material, frame, key in made:
                frame = frame.assign(row=frame[key].str[1:4].astype(int), fabrication=k, material=material)
                parts.append(frame[["row", "fabrication", "material", DIRECTION, *PROPERTY_COLUMNS]])
    return pd.concat(parts, ignore_index=True)


def verify(picks: pd.DataFrame, measured: pd.DataFrame) -> tuple[list[dict], dict[str, float]]:
    """Per candidate: conditions, predicted and simulated (mean over fabrications) fracture strength of nanofiber and
    composite in both directions and the composite anisotropy, with relative errors; and the median relative errors
    (fracture strength over candidates × material × direction, as in the paper's Fig. 5i; and per property)."""
    means = measured.groupby(["row", "material", DIRECTION])[list(PROPERTY_COLUMNS)].mean()
    candidates, strength_errors = [], []
    per_property: dict[str, list[float]] = {p: [] for p in PROPERTY_COLUMNS}
    for position, pick in enumerate(picks.itertuples(index=False)):
        predicted, simulated, errors = {}, {}, {}
        for material in ("nanofiber", "composite"):
            for flag in (LONGITUDINAL, TRANSVERSE):
                for prop in PROPERTY_COLUMNS:
                    key = f"{material}_{prop}_{DIRECTION_NAMES[flag]}"
                    pred, sim = float(getattr(pick, key)), float(means.loc[(position, material, flag), prop])
                    error = abs(pred - sim) / abs(sim)
                    per_property[prop].append(error)
                    if prop == STRENGTH:
                        predicted[key], simulated[key], errors[key] = pred, sim, error
                        strength_errors.append(error)
        sim_ratio = simulated[f"composite_{STRENGTH}_longitudinal"] / simulated[f"composite_{STRENGTH}_transverse"]
        predicted["composite_anisotropy"], simulated["composite_anisotropy"] = float(pick.predicted_anisotropy), sim_ratio
        errors["composite_anisotropy"] = abs(pick.predicted_anisotropy - sim_ratio) / sim_ratio
        candidates.append({"pick": pick.pick, "conditions": {c: float(getattr(pick, c)) for c in CONDITION_COLUMNS},
                           "predicted": predicted, "simulated": simulated, "rel_error": errors})
    summary = {"fracture_strength": float(np.median(strength_errors)),
               **{f"all_{p}": float(np.median(v)) for p, v in per_property.items()}}
    return candidates, summary
