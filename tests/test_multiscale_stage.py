"""Stages `descriptors` and `multiscale` on a tiny virtual-lab workspace (smoke profile): files, keys, lineage."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matmcl.artifacts import MOLECULAR_DESCRIPTORS_FILE, MULTISCALE_DIR, MULTISCALE_REPORT, NETWORK_DESCRIPTORS_FILE
from matmcl.config import deep_merge
from matmcl.lineage import LineageError
from matmcl.multiscale.dataset import SCALES
from matmcl.multiscale.descriptors import DESCRIPTOR_KEYS
from matmcl.multiscale.evaluate import load_served
from matmcl.multiscale.molecular import MOLECULAR_KEYS
from matmcl.pipeline_run import run_stage
from matmcl.schema import PROPERTY_COLUMNS
from matmcl.stages.context import StageContext
from matmcl.stages.table import stage

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
TINY = {"synth": {"n_films": 10},
        "multiscale": {"max_epochs": 8, "patience": 3, "seeds": [0], "gbm_max_iter": 10,
                       "molecular": {"md_steps": 10, "relax_steps": 10, "strain_steps": 5, "strain_relax_steps": 5}}}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> StageContext:
    root = tmp_path_factory.mktemp("multiscale")
    base = StageContext.load(root, PARAMS, "smoke", progress=False)
    ctx = StageContext(base.workspace, deep_merge(base.params, TINY), False)
    for name in ("synth", "preprocess", "tensile", "features", "tables", "descriptors", "multiscale"):
        run_stage(ctx, stage(name))
    return ctx


def test_descriptors_cover_every_frame_and_film(workspace):
    processed = workspace.workspace.processed
    network = pd.read_parquet(processed / NETWORK_DESCRIPTORS_FILE)
    frames = pd.read_csv(workspace.workspace.raw / "sem" / "frames.csv")
    assert len(network) == len(frames) and list(network.columns[2:-1]) == [k for k in DESCRIPTOR_KEYS if k != "seconds"]
    assert (network["error"] == "").all() and (network["stiffness_L_rel"] > 0).all()
    molecular = pd.read_parquet(processed / MOLECULAR_DESCRIPTORS_FILE)
    assert list(molecular.columns) == ["film_id", "polymer", *MOLECULAR_KEYS]
    assert set(molecular["polymer"]) == {"PA6"} and molecular["film_id"].nunique() == 10
    report = json.loads((workspace.workspace.reports / "descriptors.json").read_text())
    assert report["n_frames"] == len(frames) and report["n_frames_failed"] == 0 and report["polymers"] == ["PA6"]


def test_multiscale_report_has_the_documented_keys(workspace):
    report = json.loads((workspace.workspace.reports / MULTISCALE_REPORT).read_text())
    variants = {"gbm", "chosen", "concat", "concat_xreg", "gfm", "gfm_xreg", "mafm", "mafm_xreg"}
    assert set(report["variants"]) == variants
    for entry in report["variants"].values():
        for prop in PROPERTY_COLUMNS:
            assert {"r2_mean", "r2_ci95", "r2_sd", "r2_longitudinal", "r2_transverse"} <= set(entry[prop])
            assert np.isfinite(entry[prop]["r2_mean"])
    assert set(report["ablation"]) == {f"without_{s}" for s in SCALES}
    ablated = report["ablation"]["without_network"][PROPERTY_COLUMNS[0]]
    assert {"r2_mean", "r2_ci95", "delta_r2_vs_full_mean", "folds_won"} <= set(ablated)
    for prop in PROPERTY_COLUMNS:
        assert set(report["gates"][prop]) == set(SCALES)
        assert sum(report["gates"][prop].values()) == pytest.approx(1.0)
    assert report["chosen_design"] in variants and len(report["choices"]) == 2
    assert set(report["scales"]) == set(SCALES) and report["n_films"] == 10
    assert report["seconds"] > 0 and report["paired"]["gfm__vs__gbm"][PROPERTY_COLUMNS[0]]["n_folds"] == 2
    plots = workspace.workspace.reports / "multiscale"
    assert {p.name for p in plots.glob("*.png")} == {"r2_by_variant.png", "ablation_deltas.png", "gates.png"}


def test_served_model_predicts_and_refuses_other_descriptors(workspace):
    from matmcl.multiscale.dataset import MultiscaleData

    ws = workspace.workspace
    model, prepared, config = load_served(ws.models / MULTISCALE_DIR, ws.processed)
    data = MultiscaleData.load(ws.processed)
    z, _ = model.predict(prepared.rows(data, np.arange(4))[0])
    prediction = prepared.targets.inverse(z)
    assert prediction.shape == (4, 5) and np.all(prediction > 0)
    assert config["scales"] == data.columns
    path = ws.processed / MOLECULAR_DESCRIPTORS_FILE
    original = path.read_bytes()
    try:
        pd.read_parquet(path).assign(md_extra=1.0).to_parquet(path)
        with pytest.raises(LineageError, match="rerun `matmcl multiscale`"):
            load_served(ws.models / MULTISCALE_DIR, ws.processed)
    finally:
        path.write_bytes(original)
