"""Property prediction on top of (frozen) SGPT embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from matmcl.models.mlp import mlp


@dataclass(frozen=True)
class PropertyHeadConfig:
    """Multi-task head. Paper: 128 → 128 → 128 → n_props, ReLU, dropout 0.2 (the authors' data has 4 labels)."""

    in_dim: int = 128
    hidden_dims: tuple[int, ...] = (128, 128)
    n_props: int = 4
    dropout: float = 0.2


class PropertyHead(nn.Module):
    """MLP from a joint-space embedding (B, in_dim) to standardised properties (B, n_props)."""

    def __init__(self, config: PropertyHeadConfig) -> None:
        super().__init__()
        self.config = config
        self.net = mlp(config.in_dim, config.hidden_dims, config.n_props, config.dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class PropertyRegressor(nn.Module):
    """An embedding function (e.g. `SGPTModel.embedder("table")` or `embedder("fused")`) followed by a head.

    With `freeze=True` the embedder's parameters stop requiring gradients (in place, so modules it shares with
    its SGPT model are frozen too), it stays in eval mode whatever `train()` is called with, and it runs without
    autograd; only the head learns.
    """

    def __init__(self, embedder: nn.Module, head: PropertyHead, freeze: bool = True) -> None:
        super().__init__()
        self.embedder = embedder
        self.head = head
        self.frozen = freeze
        if freeze:
            self.embedder.requires_grad_(False)
            self.embedder.eval()

    def train(self, mode: bool = True) -> PropertyRegressor:
        super().train(mode)
        if self.frozen:
            self.embedder.eval()
        return self

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            z = self.embedder(*inputs)
        return self.head(z)
