"""Cosine top-k search over unit embeddings: one matrix product, then `np.argpartition` (no loop over the gallery).

Embeddings are L2-normalised, so the dot product is the cosine similarity. The product runs on one BLAS thread: a
query is memory-bound, and waking BLAS threads on busy shared cores cost more than they saved (100 k gallery, 2
loaded cores: 16 ms with the default threads, 9 ms with one). Ranks of known true items use the optimistic tie rule
(`1 + number of strictly better items`); SGPT's float similarities practically never tie.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(1e-12))


def top_k(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` most similar gallery rows per query: (indices (q, k), cosine similarities (q, k)), best first.

    `queries` (q, d) or (d,) and `gallery` (n, d) must be unit vectors; k is capped at n.
    """
    with _blas().limit(limits=1, user_api="blas"):
        scores = np.atleast_2d(queries) @ gallery.T
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def rank_of(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of item `truth[i]` in row i of `scores` (higher is better)."""
    true_score = scores[np.arange(len(scores)), truth]
    return 1 + (scores > true_score[:, None]).sum(axis=1)
