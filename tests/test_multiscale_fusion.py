"""Multiscale fusion: GFM gates, MAFM attention, unit-wise z-scoring on training rows, ablation of a noise scale."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from matmcl.evaluation.protocol import r2_score_np
from matmcl.multiscale.config import MultiscaleConfig
from matmcl.multiscale.dataset import FeatureScaler, MultiscaleData
from matmcl.target_scaling import LogTargetScaler
from matmcl.multiscale.fusion import FusionEnsemble, FusionSpec, MultiscaleNet, training_loss

CONFIG = MultiscaleConfig(max_epochs=150, patience=20, lr=1e-2, dropout=0.0, batch_size=64, seeds=(0,))


def synthetic(n: int = 400, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three scale groups of 4 descriptors: target 0 depends only on group `a`, target 1 only on group `b`; group
    `noise` is pure noise."""
    rng = np.random.default_rng(seed)
    inputs = {name: rng.normal(size=(n, 4)).astype(np.float32) for name in ("a", "b", "noise")}
    y = np.column_stack([np.sin(inputs["a"][:, 0]) + inputs["a"][:, 1] * inputs["a"][:, 2],
                         inputs["b"][:, 0] ** 2 - inputs["b"][:, 3]]).astype(np.float32)
    return inputs, (y - y.mean(axis=0)) / y.std(axis=0)


def split(inputs, y, n_train=300):
    def rows(index):
        return {k: v[index] for k, v in inputs.items()}, y[index]
    return rows(slice(0, n_train)), rows(slice(n_train, None))


def spec(design: str, scales=("a", "b", "noise"), xreg: bool = False) -> FusionSpec:
    return FusionSpec.of(design + ("_xreg" if xreg else ""), {s: 4 for s in scales}, 2, CONFIG)


def test_gfm_gates_are_shares_per_property_and_scale():
    net = MultiscaleNet(spec("gfm"))
    inputs, _ = synthetic(8)
    out = net({k: torch.as_tensor(v) for k, v in inputs.items()})
    assert out["prediction"].shape == (8, 2)
    assert out["weights"].shape == (8, 2, 3)
    assert torch.allclose(out["weights"].sum(dim=-1), torch.ones(8, 2))
    assert bool((out["weights"] > 0).all())


def test_mafm_attention_is_across_scale_tokens():
    net = MultiscaleNet(spec("mafm")).eval()
    inputs, _ = synthetic(5)
    out = net({k: torch.as_tensor(v) for k, v in inputs.items()})
    assert out["prediction"].shape == (5, 2)
    assert out["weights"].shape == (5, 3, 3)  # every scale token attends to every scale token
    assert torch.allclose(out["weights"].sum(dim=-1), torch.ones(5, 3), atol=1e-6)
    assert out["per_scale"] is None


def test_gfm_up_weights_the_scale_each_property_depends_on(one_thread):
    inputs, y = synthetic()
    train, val = split(inputs, y)
    model, _ = FusionEnsemble.fit(spec("gfm"), train, val, CONFIG)
    prediction, gates = model.predict(val[0])
    mean = gates.mean(axis=0)  # (property, scale)
    assert mean[0].argmax() == 0 and mean[1].argmax() == 1  # target 0 ← a, target 1 ← b
    assert mean[0, 0] > 0.5 and mean[1, 1] > 0.5
    assert r2_score_np(val[1][:, 0], prediction[:, 0]) > 0.8


def test_cross_scale_term_adds_per_scale_predictions_and_consistency():
    net = MultiscaleNet(spec("gfm", xreg=True))
    inputs, y = synthetic(16)
    with torch.no_grad():
        out = net({k: torch.as_tensor(v) for k, v in inputs.items()})
    assert out["per_scale"].shape == (16, 3, 2)
    target = torch.as_tensor(y)
    plain = training_loss({**out, "per_scale": None}, target, 0.5)
    regularised = training_loss(out, target, 0.5)
    per_scale = ((out["per_scale"] - target[:, None]) ** 2).mean()
    consistency = ((out["per_scale"] - out["prediction"][:, None]) ** 2).mean()
    assert float(regularised) == pytest.approx(float(plain + 0.5 * (per_scale + consistency)), rel=1e-5)
    target[0, 1] = float("nan")  # a missing property is left out, not propagated
    assert torch.isfinite(training_loss(out, target, 0.5))


def test_removing_a_pure_noise_scale_does_not_hurt(one_thread):
    inputs, y = synthetic(seed=1)
    train, val = split(inputs, y)
    scores = {}
    for scales in (("a", "b", "noise"), ("a", "b")):
        keep = lambda rows: ({s: rows[0][s] for s in scales}, rows[1])  # noqa: E731
        model, _ = FusionEnsemble.fit(spec("concat", scales), keep(train), keep(val), CONFIG)
        prediction, _ = model.predict(keep(val)[0])
        scores[len(scales)] = np.mean([r2_score_np(val[1][:, j], prediction[:, j]) for j in range(2)])
    assert scores[2] >= scores[3] - 0.03
    assert scores[3] > 0.7


def tiny_data(n_films: int = 20) -> MultiscaleData:
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"film_id": np.repeat([f"F{i:02d}" for i in range(n_films)], 2),
                         "direction": np.tile([1, 0], n_films)})
    groups = {"process": pd.DataFrame({"a_kv": rng.normal(10, 2, 2 * n_films), "b": np.ones(2 * n_films)}),
              "molecular": pd.DataFrame({"c": np.r_[rng.normal(size=2 * n_films - 1), np.nan]})}
    return MultiscaleData(rows, groups, np.exp(rng.normal(size=(2 * n_films, 5))))


def test_unit_wise_z_scores_are_fitted_on_training_rows_only():
    data = tiny_data()
    train = np.arange(20)
    scaler = FeatureScaler.fit(data, train)
    z = scaler.transform(data, train)
    assert np.allclose(z["process"][:, 0].mean(), 0, atol=1e-6) and np.allclose(z["process"][:, 0].std(), 1, atol=1e-5)
    assert np.all(z["process"][:, 1] == 0)  # a constant descriptor becomes 0, not NaN
    shifted = dataclasses.replace(data, groups={**data.groups, "process": data.groups["process"].assign(
        a_kv=np.r_[data.groups["process"]["a_kv"][:20], np.full(20, 1e6)])})
    assert np.allclose(FeatureScaler.fit(shifted, train).mean["process"], scaler.mean["process"])  # test rows unseen
    assert z["molecular"].shape == (20, 1)
    assert scaler.transform(data, np.array([39]))["molecular"][0, 0] == 0  # missing → training mean
    targets = LogTargetScaler.fit(data.y[train])
    assert np.allclose(targets.inverse(targets.transform(data.y[20:])), data.y[20:], rtol=1e-5)
    assert np.allclose(targets.transform(data.y[train]).mean(axis=0), 0, atol=1e-5)
