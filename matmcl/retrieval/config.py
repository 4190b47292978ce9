"""Parameters of the retrieval stage (params.yaml section `retrieval`)."""

from __future__ import annotations

from dataclasses import dataclass

GALLERY_FILMS = ("all", "gallery")


@dataclass(frozen=True)
class RetrievalConfig:
    """Served gallery, evaluation and benchmark settings of `matmcl.stages.retrieval`."""

    gallery_films: str = "all"  # films in models/gallery: "all" processed films, or those flagged `gallery`
    patches_per_film: int = 8  # evenly spaced patches averaged into a film's structure embedding (0: all)
    embed_batch_size: int = 256
    top_k: tuple[int, ...] = (1, 5, 10)  # accuracies reported (the curve runs k = 1 .. max)
    features: tuple[str, ...] = ("orientation_order", "diameter_nm", "pore_size_um")  # structure-aware score
    bootstrap: int = 1000  # film-bootstrap resamples of the pooled queries for the 95 % CIs
    latency_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)  # synthetic gallery sizes of the latency benchmark
    latency_queries: int = 50  # single queries timed per size (median reported)
    example_queries: int = 4  # query films shown per direction in the example grid
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.gallery_films not in GALLERY_FILMS:
            raise ValueError(f"retrieval.gallery_films must be one of {GALLERY_FILMS}, got {self.gallery_films!r}")
        if not self.top_k or min(self.top_k) < 1:
            raise ValueError(f"retrieval.top_k must be positive ranks, got {list(self.top_k)}")
