"""Multilayer perceptrons: a small builder and the table (processing-condition) encoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def mlp(
    in_dim: int,
    hidden_dims: tuple[int, ...],
    out_dim: int,
    dropout: float = 0.0,
    final_activation: bool = False,
) -> nn.Sequential:
    """Linear layers `in_dim → *hidden_dims → out_dim` with ReLU and dropout after every hidden layer."""
    layers: list[nn.Module] = []
    dims = (in_dim, *hidden_dims)
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
    layers.append(nn.Linear(dims[-1], out_dim))
    if final_activation:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class TableMLPConfig:
    """Table MLP encoder. Paper (`paper()`): 7→512→512→512→512→128, ReLU, dropout 0.1."""

    in_dim: int = 7
    hidden_dims: tuple[int, ...] = (256, 256, 256, 256)
    out_dim: int = 128
    dropout: float = 0.1

    @classmethod
    def paper(cls) -> TableMLPConfig:
        return cls(hidden_dims=(512, 512, 512, 512))


class TableMLP(nn.Module):
    """Encodes a vector of processing conditions (or any descriptor vector) into a feature of size `out_dim`."""

    def __init__(self, config: TableMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.net = mlp(config.in_dim, config.hidden_dims, config.out_dim, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
