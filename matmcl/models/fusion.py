"""Multimodal (fusion) encoders: conditions (B, n_features) + image (B, C, H, W) → fused feature (B, out_dim).

Each fusion encoder owns its own table and image branches, separate from the unimodal encoders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from matmcl.models.ft_transformer import FeatureTokenizer
from matmcl.models.mlp import mlp
from matmcl.models.resnet import ResNet, ResNetConfig
from matmcl.models.transformer import Block
from matmcl.models.vit import INIT_STD, PatchEmbedding


@dataclass(frozen=True)
class ConcatFusionConfig:
    """Concat fusion. Paper: ResNet-50 (fc → 512) ‖ table MLP 7 → 512 → 512, then 1024 → 512 → 128."""

    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    n_features: int = 7
    table_dims: tuple[int, ...] = (256, 256)  # widths of the table MLP layers, ReLU after each
    hidden_dims: tuple[int, ...] = (256,)
    out_dim: int = 128
    dropout: float = 0.1

    @classmethod
    def paper(cls) -> ConcatFusionConfig:
        return cls(resnet=ResNetConfig.paper(), table_dims=(512, 512), hidden_dims=(512,))


class ConcatFusion(nn.Module):
    """Fusion encoder of the MLP/CNN style: ResNet feature and table-MLP feature, concatenated, then an MLP."""

    def __init__(self, config: ConcatFusionConfig) -> None:
        super().__init__()
        self.config = config
        self.image = ResNet(config.resnet)
        *table_hidden, table_out = config.table_dims
        self.table = mlp(config.n_features, tuple(table_hidden), table_out, config.dropout, final_activation=True)
        in_dim = config.resnet.feature_dim + table_out
        self.head = mlp(in_dim, config.hidden_dims, config.out_dim, config.dropout)

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.table(x), self.image(img)], dim=-1))


@dataclass(frozen=True)
class CrossAttentionFusionConfig:
    """Cross-attention fusion transformer sizes. `paper()` is our paper-scale choice; the paper lists no sizes."""

    n_features: int = 7
    in_channels: int = 1
    image_size: int = 64
    patch_size: int = 8
    dim: int = 64
    depth: int = 2
    n_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    out_dim: int = 128

    @classmethod
    def paper(cls) -> CrossAttentionFusionConfig:
        return cls(image_size=224, patch_size=16, dim=192, depth=3, n_heads=8)


class CrossAttentionFusion(nn.Module):
    """Fusion encoder of the transformer style: two token streams that attend to each other (MulT-like).

    The table stream ([CLS_t] + one token per condition) and the image stream ([CLS_v] + patch tokens with learned
    positions) each run `depth` blocks of self-attention, cross-attention to the other stream's previous state, and
    feed-forward. No attention mask is used anywhere and there is no padding: the fused feature is read from the two
    [CLS] tokens, concatenated and projected to `out_dim`.
    """

    def __init__(self, config: CrossAttentionFusionConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.table_tokenizer = FeatureTokenizer(c.n_features, c.dim)
        self.image_tokenizer = PatchEmbedding(c.in_channels, c.image_size, c.patch_size, c.dim)
        self.cls_table = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.cls_image = nn.Parameter(torch.zeros(1, 1, c.dim))
        nn.init.trunc_normal_(self.cls_table, std=INIT_STD)
        nn.init.trunc_normal_(self.cls_image, std=INIT_STD)
        self.table_blocks = nn.ModuleList(self._block() for _ in range(c.depth))
        self.image_blocks = nn.ModuleList(self._block() for _ in range(c.depth))
        self.norm = nn.LayerNorm(2 * c.dim)
        self.head = nn.Linear(2 * c.dim, c.out_dim)

    def _block(self) -> Block:
        c = self.config
        return Block(c.dim, c.n_heads, c.mlp_ratio, c.dropout, cross=True)

    def tokens(self, x: torch.Tensor, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition tokens (B, n_features, dim) and image patch tokens (B, n_patches, dim), without [CLS]."""
        return self.table_tokenizer(x), self.image_tokenizer(img)

    def fuse(self, table_tokens: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """Run both streams over the tokens and read the fused feature from their [CLS] tokens."""
        batch = len(table_tokens)
        t = torch.cat([self.cls_table.expand(batch, -1, -1), table_tokens], dim=1)
        v = torch.cat([self.cls_image.expand(batch, -1, -1), image_tokens], dim=1)
        for table_block, image_block in zip(self.table_blocks, self.image_blocks):
            t, v = table_block(t, context=v), image_block(v, context=t)
        return self.head(self.norm(torch.cat([t[:, 0], v[:, 0]], dim=-1)))

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        return self.fuse(*self.tokens(x, img))
