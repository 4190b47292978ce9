"""Alignment analyses of learned embeddings (paper Fig. 2d-g), as functions on arrays.

- cosine-similarity matrix of paired embedding sets, its diagonal gap and top-1 matching accuracy;
- improved precision and recall (IPR, Kynkäänniemi et al. 2019) of an evaluation set against a reference set;
- how well a representation encodes structural features: a KNN-regression probe (80/20) and a Mantel-style
  Pearson correlation;
- t-SNE coordinates for plotting.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import pdist
from sklearn.manifold import TSNE
from sklearn.metrics import pairwise_distances_chunked, r2_score
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

IPR_K = 3  # k of the k-NN radii (Kynkäänniemi et al. 2019 use k=3)
KNN_NEIGHBORS = 5
KNN_TEST_SIZE = 0.2  # paper: 80% train / 20% test
TSNE_PERPLEXITY = 30.0
TSNE_PERPLEXITY_FRACTION = 1 / 3  # small n: perplexity at most (n - 1) / 3
MIN_TSNE_PERPLEXITY = 1.0
MIN_TSNE_SAMPLES = 3
TSNE_MAX_ITER = 1000
MIN_CORRELATION_SAMPLES = 3  # three samples give three pairs, the fewest for a meaningful correlation


def _check_feature_table(
    representation: np.ndarray, features: np.ndarray, feature_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Return (representation, features) as 2-D float arrays, checking their row and column counts."""
    representation = np.asarray(representation, dtype=float)
    features = np.asarray(features, dtype=float)
    features = features[:, None] if features.ndim == 1 else features
    if representation.ndim != 2:
        raise ValueError(f"representation must be 2-D (n_samples, dim), got shape {representation.shape}")
    if len(representation) != len(features):
        raise ValueError(f"{len(representation)} representation rows but {len(features)} feature rows")
    if features.shape[1] != len(feature_names):
        raise ValueError(f"{features.shape[1]} feature columns but {len(feature_names)} feature names")
    return representation, features


# --- paired similarity ---------------------------------------------------------------------------------------


def cosine_similarity_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities of every row of `a` (matrix rows) with every row of `b` (matrix columns)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two 2-D arrays of equal width, got shapes {a.shape} and {b.shape}")
    return cosine_similarity(a, b)


def _check_square(similarity: np.ndarray) -> np.ndarray:
    """Return `similarity` as a float array, checking that it pairs two sets of the same n >= 2 samples."""
    similarity = np.asarray(similarity, dtype=float)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1] or len(similarity) < 2:
        raise ValueError(f"need a square similarity matrix of paired sets (n >= 2), got shape {similarity.shape}")
    return similarity


def diagonal_gap(similarity: np.ndarray) -> float:
    """Mean similarity of matching pairs (diagonal) minus mean similarity of non-matching pairs (off-diagonal)."""
    similarity = _check_square(similarity)
    on_diagonal = np.eye(len(similarity), dtype=bool)
    return float(similarity[on_diagonal].mean() - similarity[~on_diagonal].mean())


def top1_accuracy(similarity: np.ndarray) -> float:
    """Fraction of rows whose most similar column is their own pair (the diagonal)."""
    similarity = _check_square(similarity)
    return float(np.mean(similarity.argmax(axis=1) == np.arange(len(similarity))))


# --- improved precision and recall -----------------------------------------------------------------------------


def manifold_radii(points: np.ndarray, k: int = IPR_K) -> np.ndarray:
    """Distance of each point to its k-th nearest other point: the radii of the balls spanning the manifold."""
    if len(points) <= k:
        raise ValueError(f"need more than k={k} points to estimate a manifold, got {len(points)}")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, k]  # column 0 is the point itself


def manifold_coverage(points: np.ndarray, manifold: np.ndarray, radii: np.ndarray) -> float:
    """Fraction of `points` lying inside at least one ball (centre in `manifold`, radius in `radii`)."""
    inside = pairwise_distances_chunked(
        points, manifold, reduce_func=lambda chunk, _start: (chunk <= radii).any(axis=1)
    )
    return float(np.concatenate(list(inside)).mean())


def improved_precision_recall(reference: np.ndarray, evaluation: np.ndarray, k: int = IPR_K) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of `evaluation` against `reference`.

    precision: fraction of evaluation samples inside the reference manifold (union of k-NN balls);
    recall: fraction of reference samples inside the evaluation manifold. Both are 1 for identical sets.
    """
    reference, evaluation = np.asarray(reference, dtype=float), np.asarray(evaluation, dtype=float)
    if reference.ndim != 2 or evaluation.ndim != 2 or reference.shape[1] != evaluation.shape[1]:
        raise ValueError(f"need two 2-D arrays of equal width, got shapes {reference.shape} and {evaluation.shape}")
    return {
        "precision": manifold_coverage(evaluation, reference, manifold_radii(reference, k)),
        "recall": manifold_coverage(reference, evaluation, manifold_radii(evaluation, k)),
    }


# --- representation vs structural features ---------------------------------------------------------------------


def knn_probe(
    representation: np.ndarray,
    features: np.ndarray,
    feature_names: Sequence[str],
    n_neighbors: int = KNN_NEIGHBORS,
    test_size: float = KNN_TEST_SIZE,
    seed: int = 0,
) -> dict[str, float]:
    """Test R² per structural feature of a KNN regressor that predicts the feature from the representation.

    One seeded train/test split of the samples; the representation is standardized with statistics of the
    training part. Samples whose feature value is NaN are left out of that feature's fit and score.
    """
    representation, features = _check_feature_table(representation, features, feature_names)
    train, test = train_test_split(np.arange(len(representation)), test_size=test_size, random_state=seed)
    scores = {}
    for j, name in enumerate(feature_names):
        fit_rows = train[np.isfinite(features[train, j])]
        score_rows = test[np.isfinite(features[test, j])]
        model = make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=min(n_neighbors, len(fit_rows))))
        model.fit(representation[fit_rows], features[fit_rows, j])
        scores[name] = float(r2_score(features[score_rows, j], model.predict(representation[score_rows])))
    return scores


def _standardized(representation: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per dimension (constant dimensions are only centred)."""
    return StandardScaler().fit_transform(representation)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two vectors; NaN when either is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def feature_correlation(
    representation: np.ndarray,
    features: np.ndarray,
    feature_names: Sequence[str],
    standardize: bool = True,
) -> dict[str, float]:
    """Mantel-style Pearson correlation of a representation with each structural feature.

    For every pair of samples (i, j) take the Euclidean distance ‖z_i − z_j‖ in the representation and the
    absolute feature difference |f_i − f_j|; the measure is Pearson's r between these two vectors of pair
    values. It is 1 when the representation is the feature itself (up to scale), near 0 when the representation
    carries no information about the feature, and works for representations of any dimension. The representation
    is standardized per dimension first (so that raw conditions in mixed units are comparable) unless
    `standardize` is False. Samples whose feature value is NaN are left out; too few samples give NaN.
    """
    representation, features = _check_feature_table(representation, features, feature_names)
    if standardize:
        representation = _standardized(representation)
    correlations = {}
    for j, name in enumerate(feature_names):
        rows = np.isfinite(features[:, j])
        if rows.sum() < MIN_CORRELATION_SAMPLES:
            correlations[name] = float("nan")
            continue
        distances = pdist(representation[rows])
        differences = pdist(features[rows, j : j + 1], metric="cityblock")
        correlations[name] = _pearson(distances, differences)
    return correlations


# --- t-SNE -----------------------------------------------------------------------------------------------------


def adapted_perplexity(n_samples: int, perplexity: float = TSNE_PERPLEXITY) -> float:
    """`perplexity`, lowered to (n - 1) / 3 for small sets (t-SNE needs perplexity < n), but at least 1."""
    return max(MIN_TSNE_PERPLEXITY, min(perplexity, (n_samples - 1) * TSNE_PERPLEXITY_FRACTION))


def tsne_embedding(
    representation: np.ndarray,
    perplexity: float = TSNE_PERPLEXITY,
    seed: int = 0,
    max_iter: int = TSNE_MAX_ITER,
    standardize: bool = True,
) -> np.ndarray:
    """2-D t-SNE coordinates (n_samples, 2) of a representation; same seed, same coordinates.

    The perplexity is adapted to small sets (`adapted_perplexity`); the representation is standardized per
    dimension first unless `standardize` is False.
    """
    representation = np.asarray(representation, dtype=float)
    if representation.ndim != 2 or len(representation) < MIN_TSNE_SAMPLES:
        raise ValueError(f"t-SNE needs a 2-D array of >= {MIN_TSNE_SAMPLES} samples, got {representation.shape}")
    if standardize:
        representation = _standardized(representation)
    tsne = TSNE(
        n_components=2,
        perplexity=adapted_perplexity(len(representation), perplexity),
        init="pca" if representation.shape[1] >= 2 else "random",
        max_iter=max_iter,
        random_state=seed,
    )
    return tsne.fit_transform(representation)
