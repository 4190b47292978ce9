"""Diffusion prior: a small causal transformer in the joint space that predicts the clean structure (SGPT image)
embedding from the condition embedding (the paper's design, after DALL·E 2 / dalle2-pytorch).

Tokens [condition, time, noisy embedding, query]; the output at the query token is the predicted clean embedding.
Unit-norm embeddings are scaled by √d so that their components have unit variance during diffusion; sampled
embeddings are scaled back and L2-normalised. The condition is replaced by a learned null vector when dropped
(classifier-free guidance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from matmcl.models.serialization import load_pretrained, save_pretrained

N_TOKENS = 4  # condition, time, noisy embedding, query


@dataclass(frozen=True)
class PriorConfig:
    """Joint-space size, transformer width/depth/heads and the number of diffusion timesteps."""

    embed_dim: int = 128
    dim: int = 128
    depth: int = 2
    heads: int = 4
    timesteps: int = 1000


class DiffusionPrior(nn.Module):
    """x0-predicting transformer denoiser over joint-space embeddings (inputs and outputs scaled by √d)."""

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        self.scale = math.sqrt(config.embed_dim)
        self.cond_in = nn.Linear(config.embed_dim, config.dim)
        self.sample_in = nn.Linear(config.embed_dim, config.dim)
        self.time = nn.Sequential(Timesteps(config.dim, True, 0), TimestepEmbedding(config.dim, config.dim))
        self.null = nn.Parameter(torch.zeros(config.embed_dim))
        self.query = nn.Parameter(torch.randn(config.dim) * 0.02)
        self.position = nn.Parameter(torch.randn(N_TOKENS, config.dim) * 0.02)
        layer = nn.TransformerEncoderLayer(config.dim, config.heads, 4 * config.dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(config.dim), nn.Linear(config.dim, config.embed_dim))
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(N_TOKENS), persistent=False)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor, drop: torch.Tensor
                ) -> torch.Tensor:
        """Predicted clean embedding (B, d), √d-scaled like `sample`; `cond` are unit-norm condition embeddings."""
        cond = torch.where(drop[:, None], self.null.expand_as(cond), cond * self.scale)
        tokens = torch.stack([self.cond_in(cond), self.time(timestep).to(sample.dtype), self.sample_in(sample),
                              self.query.expand(len(sample), -1)], dim=1) + self.position
        hidden = self.transformer(tokens, mask=self.causal, is_causal=True)
        return self.out(hidden[:, -1])

    def to_embedding(self, sample: torch.Tensor) -> torch.Tensor:
        """A sampled (√d-scaled) embedding back on the unit sphere."""
        return F.normalize(sample, dim=-1)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `config.json` and `model.pt` into `directory`."""
        return save_pretrained(self, self.config, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> DiffusionPrior:
        config, state = load_pretrained(directory, PriorConfig, cls.__name__)
        model = cls(config)
        model.load_state_dict(state)
        return model.eval()
