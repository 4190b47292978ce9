"""Vision Transformer encoder (Dosovitskiy et al. 2021) for grayscale SEM patches."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from matmcl.models.transformer import Block

INIT_STD = 0.02  # truncated-normal std of the [CLS] token and position embeddings, as in ViT


class PatchEmbedding(nn.Module):
    """(B, C, H, W) → (B, (H/p)·(W/p), dim) non-overlapping patch tokens with learned positions."""

    def __init__(self, in_channels: int, image_size: int, patch_size: int, dim: int) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        self.image_size = image_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.zeros(1, (image_size // patch_size) ** 2, dim))
        nn.init.trunc_normal_(self.pos, std=INIT_STD)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}×{self.image_size} images, got {tuple(img.shape[-2:])}")
        return self.proj(img).flatten(2).transpose(1, 2) + self.pos


@dataclass(frozen=True)
class ViTConfig:
    """ViT sizes. `paper()` is our paper-scale choice (224 px, 16 px patches); the paper lists no sizes."""

    in_channels: int = 1
    image_size: int = 64
    patch_size: int = 8
    dim: int = 128
    depth: int = 4
    n_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    out_dim: int = 128

    @classmethod
    def paper(cls) -> ViTConfig:
        return cls(image_size=224, patch_size=16, dim=384, depth=6, n_heads=6)


class ViT(nn.Module):
    """Vision encoder of the transformer style: image (B, C, H, W) → feature (B, out_dim), read from [CLS]."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.patches = PatchEmbedding(config.in_channels, config.image_size, config.patch_size, config.dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.dim))
        nn.init.trunc_normal_(self.cls, std=INIT_STD)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config.dim, config.n_heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.out_dim)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(img)
        h = self.drop(torch.cat([self.cls.expand(len(img), -1, -1), tokens], dim=1))
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h[:, 0]))
