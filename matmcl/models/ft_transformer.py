"""FT-Transformer table encoder (Gorishniy et al. 2021, "Revisiting deep learning models for tabular data").

Every numerical feature x_j becomes a token x_j · w_j + b_j; a learned [CLS] token is prepended; pre-norm
transformer blocks mix the tokens; the output is read from [CLS] through LayerNorm → ReLU → Linear. The direction
flag (0/1) is tokenised like the continuous conditions. Differences from rtdl: GELU feed-forward instead of ReGLU,
and the first block is pre-normalised too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from matmcl.models.transformer import Block


class FeatureTokenizer(nn.Module):
    """(B, n_features) → (B, n_features, dim): one learned linear map per feature."""

    def __init__(self, n_features: int, dim: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(dim)
        self.weight = nn.Parameter(torch.empty(n_features, dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_features, dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias


@dataclass(frozen=True)
class FTTransformerConfig:
    """FT-Transformer sizes. `paper()` gives rtdl's default (192-d tokens, 3 blocks, 8 heads); the paper lists none."""

    n_features: int = 7
    dim: int = 64
    depth: int = 2
    n_heads: int = 4
    mlp_ratio: float = 4 / 3
    dropout: float = 0.1
    out_dim: int = 128

    @classmethod
    def paper(cls) -> FTTransformerConfig:
        return cls(dim=192, depth=3, n_heads=8)


class FTTransformer(nn.Module):
    """Table encoder of the transformer style: conditions (B, n_features) → feature (B, out_dim)."""

    def __init__(self, config: FTTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = FeatureTokenizer(config.n_features, config.dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.blocks = nn.ModuleList(
            Block(config.dim, config.n_heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        self.head = nn.Sequential(nn.LayerNorm(config.dim), nn.ReLU(), nn.Linear(config.dim, config.out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokenizer(x)
        h = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)
        for block in self.blocks:
            h = block(h)
        return self.head(h[:, 0])
