"""Evaluation library: regression metrics, alignment analyses and plots, on small synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from matmcl.evaluation.alignment import (
    adapted_perplexity,
    cosine_similarity_matrix,
    diagonal_gap,
    feature_correlation,
    improved_precision_recall,
    knn_probe,
    top1_accuracy,
    tsne_embedding,
)
from matmcl.evaluation.plots import (
    column_label,
    plot_image_grid,
    plot_metric_bars,
    plot_parity,
    plot_similarity_matrix,
    plot_tsne,
)
from matmcl.evaluation.regression import regression_metrics

N_SAMPLES = 120
DIM = 8


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def feature_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two features, an informative representation (features mixed into 8 dims) and noise of the same shape."""
    features = rng.normal(size=(N_SAMPLES, 2)) * [10.0, 0.1] + [500.0, 1.0]
    mixing = rng.normal(size=(2, DIM))
    informative = ((features - features.mean(0)) / features.std(0)) @ mixing
    return informative, features, ["diameter_nm", "orientation_order"]


# --- regression ------------------------------------------------------------------------------------------------


def test_regression_metrics_hand_values():
    y_true = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    y_pred = np.array([[1.0, 12.0], [2.0, 18.0], [3.0, 32.0], [5.0, 38.0]])
    metrics = regression_metrics(y_true, y_pred, ["a_mpa", "b_pct"])
    # a: residuals 0,0,0,-1 → SSE 1, SST 5, RMSE sqrt(1/4); b: residuals ±2 → SSE 16, SST 500, RMSE 2
    assert metrics["a_mpa"]["r2"] == pytest.approx(1 - 1 / 5)
    assert metrics["a_mpa"]["rmse"] == pytest.approx(0.5)
    assert metrics["b_pct"]["r2"] == pytest.approx(1 - 16 / 500)
    assert metrics["b_pct"]["rmse"] == pytest.approx(2.0)


def test_regression_metrics_skip_unmeasured_values():
    y_true = np.array([[1.0], [2.0], [np.nan], [3.0]])
    y_pred = np.array([[1.0], [2.0], [99.0], [3.0]])
    assert regression_metrics(y_true, y_pred, ["a"])["a"] == {"r2": 1.0, "rmse": 0.0}


def test_regression_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        regression_metrics(np.zeros((3, 2)), np.zeros((3, 1)), ["a", "b"])
    with pytest.raises(ValueError, match="property names"):
        regression_metrics(np.zeros((3, 2)), np.zeros((3, 2)), ["a"])


# --- similarity ------------------------------------------------------------------------------------------------


def test_similarity_of_identical_sets(rng):
    a = rng.normal(size=(20, DIM))
    sim = cosine_similarity_matrix(a, a)
    assert sim.shape == (20, 20)
    np.testing.assert_allclose(np.diag(sim), 1.0)
    assert top1_accuracy(sim) == 1.0
    assert diagonal_gap(sim) > 0.5


def test_similarity_hand_values():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[0.0, 2.0], [3.0, 0.0]])  # pairs swapped
    sim = cosine_similarity_matrix(a, b)
    np.testing.assert_allclose(sim, [[0.0, 1.0], [1.0, 0.0]], atol=1e-12)
    assert top1_accuracy(sim) == 0.0
    assert diagonal_gap(sim) == pytest.approx(-1.0)


# --- improved precision and recall ------------------------------------------------------------------------------


def test_ipr_identical_sets(rng):
    a = rng.normal(size=(100, DIM))
    assert improved_precision_recall(a, a) == {"precision": 1.0, "recall": 1.0}


def test_ipr_far_apart_sets(rng):
    reference = rng.normal(size=(100, DIM))
    evaluation = rng.normal(size=(100, DIM)) + 100.0
    assert improved_precision_recall(reference, evaluation) == {"precision": 0.0, "recall": 0.0}


def test_ipr_shifted_cloud_is_intermediate(rng):
    reference = rng.normal(size=(200, DIM))
    evaluation = rng.normal(size=(200, DIM))
    evaluation[:, 0] += 2.0  # two standard deviations along one axis: the clouds partly overlap
    ipr = improved_precision_recall(reference, evaluation)
    assert 0.3 < ipr["precision"] < 0.9
    assert 0.3 < ipr["recall"] < 0.9


def test_ipr_precision_and_recall_are_asymmetric(rng):
    """A collapsed evaluation set inside the reference: high precision, low recall."""
    reference = rng.normal(size=(200, 2))
    evaluation = rng.normal(size=(200, 2)) * 0.1
    ipr = improved_precision_recall(reference, evaluation)
    assert ipr["precision"] > 0.95
    assert ipr["recall"] < 0.3


# --- representation vs features ---------------------------------------------------------------------------------


def test_knn_probe_informative_vs_noise(feature_data, rng):
    informative, features, names = feature_data
    good = knn_probe(informative, features, names, seed=0)
    noise = knn_probe(rng.normal(size=informative.shape), features, names, seed=0)
    assert set(good) == set(names)
    assert all(good[name] > 0.7 for name in names)
    assert all(noise[name] < 0.2 for name in names)


def test_knn_probe_is_deterministic(feature_data):
    informative, features, names = feature_data
    assert knn_probe(informative, features, names, seed=3) == knn_probe(informative, features, names, seed=3)


def test_feature_correlation_identity_and_noise(feature_data, rng):
    _, features, names = feature_data
    assert feature_correlation(features[:, :1], features[:, :1], names[:1])[names[0]] == pytest.approx(1.0)
    noise = feature_correlation(rng.normal(size=(N_SAMPLES, DIM)), features, names)
    assert all(abs(noise[name]) < 0.15 for name in names)


def test_feature_correlation_higher_for_informative(feature_data, rng):
    informative, features, names = feature_data
    good = feature_correlation(informative, features, names)
    assert all(good[name] > 0.3 for name in names)


def test_tsne_shape_and_seed(rng):
    x = rng.normal(size=(30, DIM))
    coords = tsne_embedding(x, seed=1, max_iter=250)
    assert coords.shape == (30, 2)
    np.testing.assert_array_equal(coords, tsne_embedding(x, seed=1, max_iter=250))


def test_adapted_perplexity_small_sets():
    assert adapted_perplexity(1000) == 30.0
    assert adapted_perplexity(31) == pytest.approx(10.0)
    assert adapted_perplexity(3) == 1.0


# --- plots -----------------------------------------------------------------------------------------------------


def _assert_png(path) -> None:
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_column_label_units():
    assert column_label("fracture_strength_mpa", "Measured") == "Measured fracture strength (MPa)"
    assert column_label("concentration_wt_pct") == "Concentration (wt%)"
    assert column_label("porosity") == "Porosity"


def test_every_plot_writes_png(tmp_path, feature_data, rng):
    informative, features, names = feature_data
    props = ["fracture_strength_mpa", "elongation_at_break_pct"]
    y_true = rng.normal(size=(40, 2))
    paths = [
        plot_parity(y_true, y_true + 0.1 * rng.normal(size=y_true.shape), props, tmp_path / "parity.png"),
        plot_similarity_matrix(cosine_similarity_matrix(informative, informative), tmp_path / "sim.png"),
        plot_tsne(rng.normal(size=(N_SAMPLES, 2)), features, names, tmp_path / "tsne.png", {n: 0.5 for n in names}),
        plot_image_grid(
            [rng.integers(0, 256, (32, 32), dtype=np.uint8), rng.random((16, 24))], ["uint8", "float"],
            tmp_path / "grid.png",
        ),
        plot_metric_bars(
            {
                "MatMCL": {p: {"r2_mean": 0.9, "r2_sd": 0.05} for p in props},
                "baseline": {p: {"r2_mean": 0.5, "r2_sd": 0.0} for p in props},
            },
            tmp_path / "bars.png",
        ),
    ]
    for path in paths:
        _assert_png(path)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


# ---------------------------------------------------------------- interpretability


def test_shap_finds_the_condition_that_drives_modulus_anisotropy(rng):
    """A virtual-lab-like model: drum speed (column 3) aligns fibers, raising the longitudinal and lowering the
    transverse modulus; humidity moves both directions alike. SHAP must rank drum speed first for anisotropy."""
    from matmcl.evaluation.interpret import mean_abs, physics_checks, shap_values

    def predict(x7):
        drum, humidity, direction = x7[:, 3], x7[:, 5], x7[:, 6]
        modulus = 500 * np.exp(0.4 * np.where(direction == 1, drum, -drum) + 0.3 * humidity)
        return np.column_stack([modulus] * 5)

    x = rng.normal(size=(40, 6))
    values = shap_values(predict, x[:20], x[20:])
    assert values["elastic_modulus_mpa/L"].shape == (20, 6)
    importance = mean_abs(values)
    checks = physics_checks(importance)
    assert checks["drum_speed_dominates_modulus_anisotropy"]
    assert importance["anisotropy"]["humidity_pct"] < 1e-4 * importance["anisotropy"]["drum_speed_rpm"]  # cancels
    # SHAP values add up to prediction minus the background mean (exact explainer).
    total = values["elastic_modulus_mpa/L"].sum(axis=1)
    x7 = np.column_stack([x[20:], np.ones(20)])
    background = predict(np.column_stack([x[:20], np.ones(20)]))[:, 0].mean()
    np.testing.assert_allclose(total, predict(x7)[:, 0] - background, rtol=1e-5)


def test_grad_cam_highlights_the_region_that_drives_the_score():
    import torch

    from matmcl.evaluation.interpret import GradCAM

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.abs_()
    images = torch.zeros(2, 1, 16, 16)
    images[:, :, 2:6, 2:6] = 1.0  # a bright square top-left
    cam = GradCAM(conv)
    maps = cam(lambda: torch.relu(conv(images)).mean(dim=(1, 2, 3)) + 0 * images.sum(), 16)
    cam.close()
    assert maps.shape == (2, 16, 16) and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    assert maps[:, :8, :8].mean() > maps[:, 8:, 8:].mean()
