"""Pre-norm transformer pieces shared by the FT-Transformer, the ViT and the cross-attention fusion.

Attention here never takes a mask: every query attends to every key, so a block is equivariant to permutations
of its tokens, and a read-out token sees the whole input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention: queries from `x`, keys and values from `context` (self-attention when None)."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q = self._heads(self.q(x))
        k, v = (self._heads(t) for t in self.kv(context).chunk(2, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).flatten(2))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) → (B, heads, T, dim / heads)."""
        return t.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)


class FeedForward(nn.Sequential):
    """Position-wise MLP: dim → hidden → dim with GELU."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention to a context sequence, feed-forward."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: float, dropout: float, cross: bool = False) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.attn_self = Attention(dim, n_heads, dropout)
        self.norm_query = nn.LayerNorm(dim) if cross else None
        self.norm_context = nn.LayerNorm(dim) if cross else None
        self.attn_cross = Attention(dim, n_heads, dropout) if cross else None
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn_self(self.norm_self(x)))
        if self.attn_cross is not None:
            if context is None:
                raise ValueError("a cross-attention block needs a context sequence")
            x = x + self.drop(self.attn_cross(self.norm_query(x), self.norm_context(context)))
        return x + self.drop(self.ff(self.norm_ff(x)))
