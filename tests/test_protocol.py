"""Tests of the evaluation protocol: reference films, folds with inner validation, per-direction metrics and the
fold view of a processed folder."""

from __future__ import annotations

import numpy as np
import pytest

from matmcl.evaluation.protocol import cv_folds, direction_metrics, direction_r2, r2_score_np, reference_films

FILMS = [f"F{i:04d}" for i in range(1, 61)]


def test_reference_films_are_stable_and_need_only_ids():
    chosen = reference_films(FILMS, 0.1)
    assert len(chosen) == 6 and chosen == reference_films(list(reversed(FILMS)), 0.1)
    assert reference_films(FILMS, 0) == [] and len(reference_films(FILMS, 0.001)) == 1


def test_folds_partition_films_and_keep_reference_films_in_training():
    always = reference_films(FILMS, 0.1)
    folds = list(cv_folds(FILMS, 5, 2, 0.15, seed=0, always_train=always))
    assert len(folds) == 10
    for repeat in (0, 1):
        tests = [set(f.test) for f in folds if f.repeat == repeat]
        assert set().union(*tests) == set(FILMS) - set(always)  # every other film tested exactly once
        assert sum(map(len, tests)) == len(FILMS) - len(always)
    for fold in folds:
        train, val, test = set(fold.train), set(fold.val), set(fold.test)
        assert not (train & val) and not (train & test) and not (val & test)
        assert train | val | test == set(FILMS)
        assert set(always) <= train and val
        assert len(val) == round(0.15 * (len(train) + len(val)))
    assert [f.test for f in folds[:5]] != [f.test for f in folds[5:]]  # repeats reshuffle
    again = list(cv_folds(FILMS, 5, 2, 0.15, seed=0, always_train=always))
    assert again == folds


def test_direction_metrics_separate_the_direction_effect():
    rng = np.random.default_rng(0)
    n = 200
    direction = np.tile([0, 1], n // 2)
    truth = np.where(direction == 1, 100.0, 30.0) + rng.normal(0, 5, n)
    # A model that knows only the direction: high pooled R², zero within each direction.
    only_direction = np.where(direction == 1, 100.0, 30.0)
    m = direction_metrics(truth[:, None], only_direction[:, None], direction, ["p"])["p"]
    assert m["r2"] > 0.9
    assert m["r2_L"] == pytest.approx(r2_score_np(truth[direction == 1], only_direction[direction == 1]))
    assert abs(m["r2_L"]) < 0.05 and abs(m["r2_T"]) < 0.05 and m["r2_dir"] == pytest.approx((m["r2_L"] + m["r2_T"]) / 2)
    assert direction_r2(truth, truth, direction) == 1.0
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((truth - only_direction) ** 2)))


def test_r2_ignores_unmeasured_values_and_degenerate_sets():
    assert r2_score_np(np.array([1.0, np.nan, 3.0]), np.array([1.0, 5.0, 3.0])) == 1.0
    assert np.isnan(r2_score_np(np.array([1.0]), np.array([1.0])))
    assert np.isnan(r2_score_np(np.array([2.0, 2.0]), np.array([1.0, 3.0])))
