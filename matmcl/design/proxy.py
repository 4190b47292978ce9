"""The structure proxy: an ensemble of small MLPs from standardized conditions to the three structural features.

Targets are learned in an unbounded space (logit of the orientation order, log of diameter and pore size),
standardized; each member sees a bootstrap resample of the films and its own initial weights, so the spread of the
members flags conditions where the films say little (extrapolation). SiLU rather than ReLU (matmcl.models.mlp):
the optimiser differentiates the proxy, and smooth gradients converge better than piecewise-constant ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from matmcl.models.serialization import load_pretrained, save_pretrained
from matmcl.schema import CONDITION_COLUMNS

STRUCTURE_COLUMNS: tuple[str, ...] = ("orientation_order", "diameter_nm", "pore_size_um")
ORDER_CLIP = 1e-3  # orders are clipped to [ORDER_CLIP, 1 - ORDER_CLIP] before the logit


@dataclass(frozen=True)
class ProxyConfig:
    """Architecture and target standardization of a saved proxy."""

    in_dim: int = len(CONDITION_COLUMNS)
    hidden_dims: tuple[int, ...] = (64, 64)
    n_members: int = 5
    target_mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    target_scale: tuple[float, ...] = (1.0, 1.0, 1.0)


def to_latent(features: np.ndarray) -> np.ndarray:
    """(n, 3) features in physical units → logit(order), log(diameter), log(pore size)."""
    order = np.clip(features[:, 0], ORDER_CLIP, 1 - ORDER_CLIP)
    return np.column_stack([np.log(order / (1 - order)), np.log(features[:, 1]), np.log(features[:, 2])])


def _member(config: ProxyConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    dims = (config.in_dim, *config.hidden_dims)
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out), nn.SiLU()]
    layers.append(nn.Linear(dims[-1], len(STRUCTURE_COLUMNS)))
    return nn.Sequential(*layers)


class StructureProxy(nn.Module):
    """Ensemble proxy: `forward(u)` maps standardized conditions (B, 6) to features (members, B, 3) in physical
    units (orientation order, diameter nm, pore size µm)."""

    def __init__(self, config: ProxyConfig) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(_member(config) for _ in range(config.n_members))
        self.register_buffer("mean", torch.tensor(config.target_mean, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(config.target_scale, dtype=torch.float32))

    def latent(self, u: torch.Tensor) -> torch.Tensor:
        """Standardized latent targets (members, B, 3)."""
        return torch.stack([member(u) for member in self.members])

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = self.latent(u) * self.scale + self.mean
        return torch.stack([torch.sigmoid(z[..., 0]), torch.exp(z[..., 1]), torch.exp(z[..., 2])], dim=-1)

    @torch.no_grad()
    def predict(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation (n, 3) of the features at standardized conditions `u` (n, 6)."""
        u = np.atleast_2d(u)
        if u.shape[1] != self.config.in_dim:
            raise ValueError(f"expected {self.config.in_dim} conditions per row ({list(CONDITION_COLUMNS)}), "
                             f"got {u.shape[1]}")
        out = self.eval()(torch.as_tensor(u, dtype=torch.float32)).double().numpy()
        return out.mean(axis=0), out.std(axis=0)


def fit_proxy(u: np.ndarray, features: np.ndarray, hidden_dims: tuple[int, ...], n_members: int, epochs: int,
              lr: float, weight_decay: float, seed: int) -> StructureProxy:
    """Fit the ensemble on standardized conditions `u` (n, 6) and measured features (n, 3); full-batch Adam, member k
    on a bootstrap resample drawn with seed (seed, k)."""
    latent = to_latent(np.asarray(features, dtype=float))
    mean, scale = latent.mean(axis=0), latent.std(axis=0)
    config = ProxyConfig(u.shape[1], tuple(hidden_dims), n_members, tuple(mean.tolist()), tuple(scale.tolist()))
    torch.manual_seed(seed)
    proxy = StructureProxy(config)
    x_all = torch.as_tensor(u, dtype=torch.float32)
    y_all = torch.as_tensor((latent - mean) / scale, dtype=torch.float32)
    for k, member in enumerate(proxy.members):
        rows = np.random.default_rng([seed, k]).integers(0, len(u), len(u))
        x, y = x_all[rows], y_all[rows]
        optimizer = torch.optim.Adam(member.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(epochs):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(member(x), y)
            loss.backward()
            optimizer.step()
    return proxy.eval()


def save_proxy(proxy: StructureProxy, directory: str | Path) -> Path:
    """config.json + model.pt (matmcl.models.serialization)."""
    return save_pretrained(proxy, proxy.config, directory)


def load_proxy(directory: str | Path) -> StructureProxy:
    """A proxy folder written by `save_proxy` (eval mode)."""
    config, state = load_pretrained(directory, ProxyConfig, StructureProxy.__name__)
    proxy = StructureProxy(config)
    proxy.load_state_dict(state)
    return proxy.eval()
