"""Multi-stage composite learning: layer-wise decay, stage loading, deterministic ablations, screening in the lab."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from matmcl.composites.config import CompositeConfig
from matmcl.composites.model import (
    MSLModelConfig,
    StageMismatchError,
    build_regressor,
    layer_groups,
    layerwise_optimizer,
    load_sgpt_stage,
    load_stage,
)
from matmcl.composites.msl import CompositeData, Rows, Starts, model_config, run_ablation, train_fp
from matmcl.composites.screening import fabricate
from matmcl.models.heads import PropertyHeadConfig
from matmcl.models.mlp import TableMLPConfig
from matmcl.models.sgpt import SGPTConfig, SGPTModel
from matmcl.schema import COMPOSITE_ID, CONDITION_COLUMNS, DIRECTION, FILM_ID, PROPERTY_COLUMNS
from matmcl.training.data import ConditionScaler
from matmcl.training.pretrain import warmup_linear_decay

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = SGPTConfig.tiny()


def _config(hidden=(16,)) -> MSLModelConfig:
    return MSLModelConfig(TINY, PropertyHeadConfig(TINY.embed_dim, hidden, 5, 0.1))


def test_layerwise_decay_gives_each_layer_its_rate_after_a_scheduler_step():
    regressor = build_regressor(_config())
    layers = layer_groups(regressor)
    # tiny table MLP 7→32→32→32 (3 Linear), projector, head 32→16→5 (2 Linear)
    assert len(layers) == 3 + 1 + 2
    optimizer = layerwise_optimizer(regressor, lr=1e-2, decay=0.5, weight_decay=0.0)
    scheduler = warmup_linear_decay(optimizer, total_steps=10, warmup_fraction=0.2)  # factor(1) = 1.0
    regressor(torch.randn(4, 7)).sum().backward()
    optimizer.step()
    scheduler.step()
    rates = [group["lr"] for group in optimizer.param_groups]
    expected = [1e-2 * 0.5 ** (len(layers) - 1 - i) for i in range(len(layers))]
    assert rates == pytest.approx(expected)
    assert rates[-1] == pytest.approx(1e-2) and rates[0] == pytest.approx(1e-2 / 32)
    for _ in range(5):
        scheduler.step()  # linear decay: factor (10 - 6) / 8 = 0.5 for every layer alike
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([r * 0.5 for r in expected])
    owned = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(owned) == sorted(id(p) for p in regressor.parameters())  # every parameter once


def test_sgpt_stage_loads_the_table_encoder_and_projector_and_refuses_others():
    torch.manual_seed(0)
    sgpt = SGPTModel(TINY)
    regressor = build_regressor(_config())
    head_before = {k: v.clone() for k, v in regressor.head.state_dict().items()}
    load_sgpt_stage(regressor, sgpt)
    for key, value in sgpt.encoders["table"].state_dict().items():
        assert torch.equal(regressor.embedder.encoder.state_dict()[key], value)
    assert torch.equal(regressor.embedder.projector.linear.weight, sgpt.projector.linear.weight)
    assert all(torch.equal(regressor.head.state_dict()[k], v) for k, v in head_before.items())
    x = torch.randn(5, 7)
    assert torch.allclose(regressor.eval().embedder(x), sgpt.eval().embed_table(x))

    wider = SGPTModel(SGPTConfig.tiny(embed_dim=32).__class__(
        **{**TINY.__dict__, "table_mlp": TableMLPConfig(hidden_dims=(64, 64), out_dim=32)}))
    with pytest.raises(StageMismatchError, match="shapes differ"):
        load_sgpt_stage(build_regressor(_config()), wider)


def test_fp_stage_loading_takes_every_weight_and_refuses_a_mismatched_head():
    torch.manual_seed(1)
    source = build_regressor(_config())
    target = load_stage(build_regressor(_config()), source.state_dict(), "FP")
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())
    with pytest.raises(StageMismatchError, match="shapes differ"):
        load_stage(build_regressor(_config(hidden=(8,))), source.state_dict(), "FP")
    deeper = build_regressor(_config(hidden=(16, 16)))
    with pytest.raises(StageMismatchError, match="unexpected tensors|missing tensors"):
        load_stage(build_regressor(_config()), deeper.state_dict(), "FP")


def _rows(n_groups: int, rng: np.random.Generator, group: str) -> Rows:
    conditions = pd.DataFrame({c: rng.normal(size=n_groups) for c in CONDITION_COLUMNS})
    frame = pd.concat([conditions.assign(**{DIRECTION: d, group: [f"G{i}" for i in range(n_groups)]}) for d in (1, 0)],
                      ignore_index=True)
    signal = frame[list(CONDITION_COLUMNS)].to_numpy()[:, :5] + frame[[DIRECTION]].to_numpy()
    for j, prop in enumerate(PROPERTY_COLUMNS):
        frame[prop] = 10 + 3 * signal[:, j] + rng.normal(0, 0.3, len(frame))
    scaler = ConditionScaler(np.zeros(6), np.ones(6))
    return Rows.of(frame.assign(**{COMPOSITE_ID: frame[group]}), scaler, group)


def _tiny_data() -> CompositeData:
    rng = np.random.default_rng(0)
    return CompositeData(_rows(10, rng, FILM_ID), _rows(20, rng, FILM_ID), _rows(6, rng, FILM_ID),
                         ConditionScaler(np.zeros(6), np.ones(6)))


def _ablation(data: CompositeData, config: CompositeConfig):
    torch.manual_seed(123)  # the SGPT weights (stage S) are the same for both runs
    sgpt = SGPTModel(TINY)
    starts = Starts(model_config(sgpt, config), sgpt)
    fp = train_fp(starts.s, data, config, config.seed)
    starts.fp_sgpt = fp.regressor.state_dict()
    starts.fp_random = train_fp(starts.random, data, config, config.seed).regressor.state_dict()
    features = fp.regressor(torch.from_numpy(data.composites.x)).detach().numpy()
    return run_ablation(data, starts, features, config)


def test_ablation_runner_is_deterministic_for_a_seed_whatever_the_workers():
    config = CompositeConfig(hidden_dims=(16,), folds=2, repeats=2, fp_max_epochs=3, cp_max_epochs=6, cp_patience=3,
                             layer_decay_grid=(0.5, 0.8), gbm_max_iter=5, gbm_min_samples_leaf=2, workers=1)
    data = _tiny_data()
    first, second = _ablation(data, config), _ablation(data, dataclasses.replace(config, workers=2))
    assert [(r.variant, r.repeat, r.fold) for r in first] == [(r.variant, r.repeat, r.fold) for r in second]
    assert len(first) == 2 * 2 * len(config.variants)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.test, b.test)
        np.testing.assert_array_equal(a.prediction, b.prediction)
        assert (a.decay, a.best_epoch) == (b.decay, b.best_epoch)
    # grouped: a film's rows are all in the test fold or none
    groups = data.composites.groups
    for result in first:
        tested = set(groups[result.test])
        assert all((g in tested) == (i in set(result.test)) for i, g in enumerate(groups))
    other = _ablation(data, CompositeConfig(**{**config.__dict__, "seed": 1}))
    assert any(not np.array_equal(a.prediction, b.prediction) for a, b in zip(first, other))


def test_fabricate_measures_films_and_composites_from_their_curves():
    conditions = pd.DataFrame([{"flow_rate_ml_h": 0.5, "concentration_wt_pct": 20.0, "voltage_kv": 18.0,
                                "drum_speed_rpm": 2500.0, "temperature_c": 25.0, "humidity_pct": 45.0}])
    measured = fabricate(conditions, n_fabrications=2, n_replicates=2, strain_step_pct=0.1, seed=0)
    assert len(measured) == 2 * 2 * 2  # fabrications × materials × directions
    strength = measured.groupby(["material", DIRECTION])["fracture_strength_mpa"].mean()
    # the matrix adds strength; a drum at 2500 rpm aligns fibers: longitudinal beats transverse
    assert strength["composite", 1] > strength["nanofiber", 1]
    assert strength["nanofiber", 1] > strength["nanofiber", 0]
    again = fabricate(conditions, n_fabrications=2, n_replicates=2, strain_step_pct=0.1, seed=0)
    pd.testing.assert_frame_equal(measured, again)
