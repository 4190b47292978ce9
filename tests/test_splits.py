"""Film-level splits, gallery/generation sets and the train-only condition scaler."""

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from matmcl.schema import CONDITION_COLUMNS
from matmcl.splits import film_splits, fit_scaler, split_ids
from matmcl.training.data import ConditionScaler

FILMS = [f"F{i:04d}" for i in range(235)]


def test_split_proportions_are_seeded_and_by_film():
    splits = film_splits(FILMS, (0.7, 0.15, 0.15), seed=0, gallery_fraction=0.5)
    counts = splits["split"].value_counts()
    assert counts["val"] == 35 and counts["test"] == 35 and counts["train"] == 165
    assert splits["film_id"].is_unique
    assert splits.equals(film_splits(FILMS, (0.7, 0.15, 0.15), seed=0, gallery_fraction=0.5))
    assert not splits["split"].equals(film_splits(FILMS, (0.7, 0.15, 0.15), seed=1, gallery_fraction=0.5)["split"])


def test_gallery_and_generation_partition_the_test_films():
    splits = film_splits(FILMS, (0.7, 0.15, 0.15), seed=0, gallery_fraction=0.5)
    test = splits["split"] == "test"
    assert not (splits["gallery"] & ~test).any() and not (splits["generation"] & ~test).any()
    assert (splits["gallery"] ^ splits["generation"])[test].all()
    assert splits["gallery"].sum() == 18


def test_bad_fractions_are_rejected():
    with pytest.raises(ValueError, match="sum"):
        split_ids(FILMS, (0.7, 0.2, 0.2), seed=0)


def test_scaler_matches_sklearn_and_the_model_inputs_use_it():
    rng = np.random.default_rng(0)
    conditions = pd.DataFrame(rng.normal(size=(50, 6)) * [1, 2, 3, 400, 5, 6] + 10, columns=list(CONDITION_COLUMNS))
    train = conditions.iloc[:30]
    scaler = fit_scaler(train)
    reference = StandardScaler().fit(train.to_numpy())
    np.testing.assert_allclose(scaler["mean"], reference.mean_)
    np.testing.assert_allclose(scaler["scale"], reference.scale_)
    inputs = ConditionScaler(np.asarray(scaler["mean"]), np.asarray(scaler["scale"])).inputs(conditions.assign(direction=1))
    np.testing.assert_allclose(inputs[:, :6], reference.transform(conditions.to_numpy()), rtol=1e-5, atol=1e-5)
