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
VARIANTS = ("matmcl_conditions", "matmcl_fusion", "matmcl_fusion_frozen", "no_sgpt", "gbm_conditions",
            "ridge_conditions", "gbm_conditions_features")
FUSION_OBJECTIVE, CLIP_OBJECTIVE = "fusion", "clip"
FUSION_DESIGNS = ("fused", "table_image", "table_image_pre")


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
    `objective`: "fusion" (the paper: every unimodal embedding against the fused one) or "clip" (ablation: table
    against image directly, the fusion encoder unused).
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
    objective: str = FUSION_OBJECTIVE

    def __post_init__(self) -> None:
        if self.objective not in (FUSION_OBJECTIVE, CLIP_OBJECTIVE):
            raise ValueError(f"pretrain.objective must be {FUSION_OBJECTIVE!r} or {CLIP_OBJECTIVE!r}")
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
    gradient-boosting baseline, `ridge_alphas` the RidgeCV grid. Image-using variants see `fusion_patches` evenly
    spaced patches per film (0: all of them). `matmcl_fusion` picks one of `fusion_designs` by validation RMSE
    (never the test films): "fused" (head on the projected fused embedding, the old `matmcl_fusion`, kept as
    `matmcl_fusion_frozen`), "table_image" (head on the condition embedding ⊕ the film's mean image embedding) and
    "table_image_pre" (the same with the image encoder's pre-projection features). `gbm_conditions_features`:
    gradient boosting on the conditions plus the film's measured structural features (features.parquet).
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
    fusion_designs: tuple[str, ...] = FUSION_DESIGNS
    structure_features: tuple[str, ...] = ("orientation_order", "mean_angle_deg", "diameter_nm", "pore_size_um",
                                           "porosity")
    embed_batch_size: int = 256
    device: str = "auto"

    def __post_init__(self) -> None:
        bad = sorted(set(self.fusion_designs) - set(FUSION_DESIGNS))
        if bad or not self.fusion_designs:
            raise ValueError(f"property.fusion_designs: unknown {bad}; known: {list(FUSION_DESIGNS)}")
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"property.variants: unknown {unknown}; known: {list(VARIANTS)}")
        if not self.seeds:
            raise ValueError("property.seeds must list at least one seed")


@dataclass(frozen=True)
class EvaluationConfig:
    """The evaluation protocol (film-level K-fold cross-validation), ceilings and alignment analyses.

    Protocol (matmcl.training.cv): `folds` × `repeats` grouped folds over the films (a film's rows and patches on
    one side); the films of the histogram-matching reference (`reference_fraction`, see
    matmcl.evaluation.protocol.reference_films) are always training films. Inside each fold's training films an
    inner validation set (`inner_val_fraction` of them) serves early stopping and every choice; the fold's own SGPT
    is pre-trained on the inner-training films only, for `fold_pretrain_epochs` (0: pretrain.epochs), and its
    contrastive loss on the inner-validation films is recorded per epoch. `paired`: comparisons "a__vs__b" reported
    over folds; `ablations`: also pre-train the CLIP-style SGPT per fold; `learning_curve`: label fractions of the
    inner-training films for `learning_curve_variants` (empty: off; heads only, the fold's SGPT is reused). The
    ablations are off in the default profile (a second SGPT per fold does not fit the main job's time budget) and on
    in the paper profile. `workers`: folds run in parallel in
    that many processes, one torch thread each (results do not depend on it).

    `oracle_draws`: fresh virtual-lab films simulated per test condition for the conditions-only ceiling. Both
    ceilings are multiplied by the mean extraction bias of `ceiling_bias_specimens` simulated specimens per row and
    also scored as their expected value over `ceiling_resimulations` re-simulated measurements of the test films
    (matmcl.evaluation.ceilings).
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
    folds: int = 5
    repeats: int = 1
    inner_val_fraction: float = 0.15
    fold_pretrain_epochs: int = 0
    bootstrap: int = 1000
    paired: tuple[str, ...] = (
        "matmcl_conditions__vs__gbm_conditions", "matmcl_conditions__vs__no_sgpt",
        "matmcl_conditions__vs__ridge_conditions", "matmcl_fusion__vs__gbm_conditions_features",
        "matmcl_fusion__vs__matmcl_conditions", "matmcl_fusion__vs__matmcl_fusion_frozen",
        "gbm_conditions_features__vs__gbm_conditions", "matmcl_conditions__vs__matmcl_conditions_clip",
        "matmcl_fusion__vs__gbm_conditions", "matmcl_fusion__vs__ridge_conditions",
        "matmcl_conditions__vs__gbm_conditions_features", "matmcl_fusion_frozen__vs__gbm_conditions_features")
    ablations: bool = False
    learning_curve: tuple[float, ...] = (0.25, 0.5, 1.0)
    learning_curve_variants: tuple[str, ...] = ("matmcl_conditions", "no_sgpt", "gbm_conditions")
    reference_fraction: float = 0.1
    workers: int = 2
    ceiling_bias_specimens: int = 10
    ceiling_resimulations: int = 5

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("evaluation.workers must be >= 1")
        if self.folds < 2 or self.repeats < 1:
            raise ValueError("evaluation.folds must be >= 2 and repeats >= 1")
        if not 0 < self.inner_val_fraction < 0.5:
            raise ValueError("evaluation.inner_val_fraction must be in (0, 0.5)")
        if any(not 0 < f <= 1 for f in self.learning_curve):
            raise ValueError("evaluation.learning_curve fractions must lie in (0, 1]")
