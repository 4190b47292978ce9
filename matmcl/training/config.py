"""Typed parameters of pre-training, property prediction and evaluation (params.yaml sections `pretrain`,
`property`, `evaluation`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from matmcl.config import deep_merge
from matmcl.models.sgpt import SGPTConfig

MODEL_PRESETS = ("tiny", "default", "paper")
VARIANTS = ("matmcl_conditions", "matmcl_fusion", "no_sgpt", "gbm_conditions", "ridge_conditions")


def resolve_device(device: str) -> torch.device:
    """"auto" → CUDA when available, else CPU; any other value is passed to torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class PretrainConfig:
    """SGPT pre-training. Paper (`paper` profile): ResNet-50 at 224 px, batch 32, lr 1e-4, 200 epochs.

    The model is the SGPTConfig preset `model` ("tiny", "default" = CPU-sized, "paper") with `model_overrides`
    (any nested SGPTConfig fields) merged on top; `style` and `image_size` are applied last. Pre-training uses
    the films of `splits` (no property labels are read). `pair_directions` keeps both direction rows of a film in
    the same batch (our addition: with rows shuffled independently, as in the reference code, the table encoder
    can learn to ignore the direction flag, since a film's other direction is rarely a negative in its batch).
    """

    style: str = "mlp_cnn"
    model: str = "default"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    image_size: int = 64
    batch_size: int = 32
    lr: float = 1e-3
    epochs: int = 40
    warmup_fraction: float = 0.1
    grad_clip: float = 5.0
    temperature: float = 0.1
    seed: int = 0
    checkpoint_every: int = 5
    device: str = "auto"
    splits: tuple[str, ...] = ("train",)
    pair_directions: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODEL_PRESETS:
            raise ValueError(f"pretrain.model must be one of {MODEL_PRESETS}, got {self.model!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"pretrain.warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.epochs < 1 or self.batch_size < 2 or self.checkpoint_every < 1:
            raise ValueError("pretrain.epochs and checkpoint_every must be >= 1 and batch_size >= 2")

    def sgpt_config(self) -> SGPTConfig:
        """The SGPT architecture: preset, overrides, then this config's style and image size."""
        preset = {
            "tiny": lambda: SGPTConfig.tiny(self.style, self.image_size),
            "default": lambda: SGPTConfig(style=self.style),
            "paper": lambda: SGPTConfig.paper(self.style),
        }[self.model]()
        sized = {"style": self.style, "vit": {"image_size": self.image_size},
                 "cross_fusion": {"image_size": self.image_size}}
        merged = deep_merge(deep_merge(dataclasses.asdict(preset), self.model_overrides), sized)
        return SGPTConfig.from_dict(merged)


@dataclass(frozen=True)
class PropertyConfig:
    """Property prediction on the five properties (paper: Adam 5e-4, wd 1e-4, batch 32, patience 20).

    Neural variants share the multi-task head `hidden_dims`/`dropout` (paper: 128 → 128 → 128 → 5, dropout 0.2)
    and stop early on the mean validation RMSE in original units, keeping the best epoch. `gbm_*` configure the
    gradient-boosting baseline, `ridge_alphas` the RidgeCV grid. `matmcl_fusion` sees `fusion_patches` evenly spaced
    patches per film (0: all of them).
    """

    lr: float = 5e-4
    weight_decay: float = 1e-4
    batch_size: int = 32
    max_epochs: int = 400
    patience: int = 20
    hidden_dims: tuple[int, ...] = (128, 128)
    dropout: float = 0.2
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[str, ...] = VARIANTS
    gbm_max_iter: int = 300
    gbm_learning_rate: float = 0.05
    gbm_max_leaf_nodes: int = 15
    ridge_alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    fusion_patches: int = 8
    embed_batch_size: int = 256
    device: str = "auto"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"property.variants: unknown {unknown}; known: {list(VARIANTS)}")
        if not self.seeds:
            raise ValueError("property.seeds must list at least one seed")


@dataclass(frozen=True)
class EvaluationConfig:
    """Ceilings and alignment analyses on the test films.

    `oracle_draws`: fresh virtual-lab films simulated per test condition for the conditions-only ceiling.
    Structural-feature analyses (Mantel correlation, KNN probe averaged over `knn_repeats` 80/20 splits, t-SNE) use
    one row per test film (longitudinal); similarity and IPR use every test row.
    """

    oracle_draws: int = 1000
    seed: int = 0
    features: tuple[str, ...] = ("orientation_order", "diameter_nm", "pore_size_um")
    knn_neighbors: int = 5
    knn_test_size: float = 0.2
    knn_repeats: int = 5
    ipr_k: int = 3
    tsne_perplexity: float = 30.0
    tsne_max_iter: int = 1000
