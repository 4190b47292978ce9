"""Grouped folds, confidence intervals and paired comparisons of evaluation results."""

import numpy as np
import pytest
from sklearn.metrics import r2_score

from matmcl.evaluation.protocol import r2_score_np
from matmcl.evaluation.stats import (
    bootstrap_ci,
    bootstrap_weights,
    grouped_folds,
    mean_ci,
    paired,
    percentile_ci,
    weighted_r2,
)


def test_grouped_folds_keep_groups_whole_and_cover_every_row_once_per_repeat():
    groups = np.repeat([f"F{i}" for i in range(23)], 2)  # films with two directions
    seen = {}
    for repeat, fold, train, test in grouped_folds(groups, 5, n_repeats=2, seed=3):
        assert not set(groups[train]) & set(groups[test])
        seen.setdefault(repeat, []).extend(test)
    for rows in seen.values():
        assert sorted(rows) == list(range(len(groups)))
    first = [tuple(t) for r, _, _, t in grouped_folds(groups, 5, 2, 3) if r == 0]
    second = [tuple(t) for r, _, _, t in grouped_folds(groups, 5, 2, 3) if r == 1]
    assert first != second  # repeats shuffle differently
    with pytest.raises(ValueError, match="cannot make 5 folds"):
        next(grouped_folds(["a", "b"], 5))


def test_mean_ci_matches_the_t_interval_and_covers_the_truth_at_the_nominal_rate():
    assert mean_ci([1.0, 2.0, 3.0]) == pytest.approx((2 - 4.302653 / np.sqrt(3), 2 + 4.302653 / np.sqrt(3)))
    rng = np.random.default_rng(0)
    covered = [lo <= 0.5 <= hi for lo, hi in (mean_ci(rng.normal(0.5, 1, 8)) for _ in range(2000))]
    assert 0.93 < np.mean(covered) < 0.97
    assert np.isnan(mean_ci([1.0])[0])


def test_bootstrap_ci_resamples_groups_and_narrows_with_more_groups():
    rng = np.random.default_rng(1)

    def width(n_groups):
        groups = np.repeat(np.arange(n_groups), 2)
        y = rng.normal(size=len(groups))
        lo, hi = bootstrap_ci(y, y + rng.normal(0, 0.5, len(y)), groups, r2_score, n_boot=300)
        assert lo < hi
        return hi - lo

    assert width(200) < width(20)


def test_paired_counts_folds_won_in_the_right_direction():
    result = paired([0.8, 0.7, 0.9], [0.6, 0.75, 0.5])
    assert result.delta_mean == pytest.approx((0.2 - 0.05 + 0.4) / 3)
    assert result.folds_won == 2 and result.n_folds == 3
    assert paired([1.0, 2.0], [2.0, 3.0], higher_is_better=False).folds_won == 2
    with pytest.raises(ValueError, match="same folds"):
        paired([1.0], [1.0, 2.0])


def test_vectorised_bootstrap_equals_the_resampling_loop_and_handles_missing_values():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(30), 2)
    y = rng.normal(size=60)
    pred = y + rng.normal(size=60) * 0.5
    y[3] = np.nan  # an unmeasured value is left out, as r2_score_np does
    weights = bootstrap_weights(groups, 400, seed=3)
    assert weights.shape == (400, 60)
    assert np.all(weights.sum(axis=1) == 60)  # 30 groups drawn, 2 rows each
    assert np.all(weights[:, 0::2] == weights[:, 1::2])  # a group's rows move together
    loop = bootstrap_ci(y, pred, groups, r2_score_np, 400, seed=3)
    assert percentile_ci(weighted_r2(y, pred, weights)) == pytest.approx(loop, abs=1e-12)
    # unit weights give the plain R²; a constant target has no R²
    assert weighted_r2(y, pred, np.ones((1, 60)))[0] == pytest.approx(r2_score_np(y, pred))
    assert np.isnan(weighted_r2(np.ones(60), pred, np.ones((1, 60)))[0])
