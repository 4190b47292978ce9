"""Parameters of the multiscale stages (params.yaml section `multiscale`; docs/multiscale.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DESIGNS: tuple[str, ...] = ("concat", "gfm", "mafm")
XREG_SUFFIX = "_xreg"  # a design trained with the cross-scale consistency term
GBM = "gbm"


@dataclass(frozen=True)
class MultiscaleConfig:
    """The descriptors stage (`workers`, `network`, `molecular`) and the fusion model (the rest).

    network / molecular: keyword overrides of matmcl.multiscale.descriptors.NetworkConfig and
        matmcl.multiscale.molecular.MolecularConfig (empty: their defaults).
    designs: fusion designs compared (concat, gfm, mafm); each is trained without and with the cross-scale
        regularisation (variant `<design>_xreg`, weight `xreg_weight`), plus the `gbm` baseline.
    token_dim / hidden / heads / dropout: per-scale encoder MLP width and token size, MAFM attention heads.
    Training: Adam (`lr`, `weight_decay`), minibatches of `batch_size` rows, at most `max_epochs`, early stopping on
    the inner-validation loss with `patience` epochs; `seeds` networks per variant averaged (a small ensemble).
    gbm_*: the HistGradientBoosting baseline (one model per property on all descriptors concatenated).
    """

    workers: int = 2
    network: dict[str, Any] = field(default_factory=dict)
    molecular: dict[str, Any] = field(default_factory=dict)
    designs: tuple[str, ...] = DESIGNS
    token_dim: int = 16
    hidden: int = 32
    heads: int = 2
    dropout: float = 0.1
    xreg_weight: float = 0.3
    lr: float = 5e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 20
    seeds: tuple[int, ...] = (0, 1)
    gbm_max_iter: int = 300
    gbm_learning_rate: float = 0.05
    gbm_max_leaf_nodes: int = 15

    def __post_init__(self) -> None:
        unknown = sorted(set(self.designs) - set(DESIGNS))
        if unknown or not self.designs:
            raise ValueError(f"multiscale.designs must be a non-empty subset of {DESIGNS}, got {list(self.designs)}")
        if self.token_dim % self.heads:
            raise ValueError(f"multiscale.token_dim ({self.token_dim}) must be a multiple of heads ({self.heads})")
        if self.workers < 1 or not self.seeds or self.xreg_weight < 0:
            raise ValueError("multiscale: workers >= 1, at least one seed and xreg_weight >= 0 are required")

    @property
    def variants(self) -> tuple[str, ...]:
        """The neural variants: every design without and with the cross-scale regularisation."""
        return tuple(v for d in self.designs for v in (d, d + XREG_SUFFIX))
