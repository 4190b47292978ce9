"""Multiscale fusion networks (torch): one token per scale, fused by concatenation, gating (GFM) or attention (MAFM).

Every scale group gets its own small MLP encoder → a token (layer-normalised without a learned gain, so a scale
cannot be silenced inside its encoder: the fusion has to weigh it). Designs:
- `concat`: the tokens side by side → a multi-task MLP head.
- `gfm` (global fusion module, squeeze-and-excitation over scales; Hu et al. 2018): squeeze = the mean of the scale
  tokens (global context), excitation = FC-ReLU-FC-sigmoid → one weight per scale *per property*, normalised over
  the scales (shares that sum to 1, so raising one scale lowers the others); each property's own head reads its
  gated sum of the tokens. The shares are the learned scale weights of reports/multiscale.json `gates`.
- `mafm` (multiscale attention fusion; non-local / self-attention, Wang et al. 2018): a learned scale embedding is
  added to each token, one multi-head self-attention block across the scale tokens (every scale attends to every
  other) with residual, layer norm and feed-forward, then mean pooling → a multi-task head.
Cross-scale regularisation (`xreg`): each token also predicts the targets through its own linear head; the loss adds
the per-scale errors and a consistency term that pulls the per-scale predictions toward the (detached) fused one.

No library ships GFM/MAFM for tabular scale groups, hence this module; it uses torch's own layers
(nn.MultiheadAttention, nn.LayerNorm) throughout. `fit_fusion` trains one network (Adam, minibatches, early stopping
on the inner-validation loss, best epoch kept); `FusionEnsemble` averages networks of several seeds.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from matmcl.multiscale.config import XREG_SUFFIX, MultiscaleConfig

Inputs = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class FusionSpec:
    """Architecture of one fusion network: input width per scale (in order), targets, design and sizes."""

    scale_sizes: tuple[tuple[str, int], ...]
    n_targets: int
    design: str
    xreg: bool = False
    token_dim: int = 16
    hidden: int = 32
    heads: int = 2
    dropout: float = 0.1

    @classmethod
    def of(cls, variant: str, scale_sizes: Mapping[str, int], n_targets: int, config: MultiscaleConfig) -> FusionSpec:
        """The spec of variant `<design>` or `<design>_xreg`."""
        design = variant.removesuffix(XREG_SUFFIX)
        return cls(tuple(scale_sizes.items()), n_targets, design, variant.endswith(XREG_SUFFIX), config.token_dim,
                   config.hidden, config.heads, config.dropout)

    @property
    def scales(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.scale_sizes)

    def as_dict(self) -> dict:
        return {**asdict(self), "scale_sizes": [list(pair) for pair in self.scale_sizes]}

    @classmethod
    def from_dict(cls, doc: Mapping) -> FusionSpec:
        return cls(**{**doc, "scale_sizes": tuple((str(n), int(k)) for n, k in doc["scale_sizes"])})


def _mlp(n_in: int, hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_out))


class PropertyHeads(nn.Module):
    """One small MLP per property, each reading its own vector: (B, P, D) → (B, P) (batched as einsums)."""

    def __init__(self, n_targets: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(n_targets, dim, hidden) / dim ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(n_targets, hidden))
        self.w2 = nn.Parameter(torch.randn(n_targets, hidden) / hidden ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(n_targets))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.gelu(torch.einsum("bpd,pdh->bph", x, self.w1) + self.b1)
        return torch.einsum("bph,ph->bp", h, self.w2) + self.b2


class GatedFusion(nn.Module):
    """GFM: SE gating over scale tokens, one weight share per scale and property; each property's head reads its
    gated sum."""

    def __init__(self, n_scales: int, n_targets: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.n_scales, self.n_targets = n_scales, n_targets
        self.excite = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_targets * n_scales),
                                    nn.Sigmoid())
        self.heads = PropertyHeads(n_targets, dim, hidden)

    def gates(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, P, S) weight shares (sum 1 over the scales)."""
        weights = self.excite(tokens.mean(dim=1)).view(-1, self.n_targets, self.n_scales)
        return weights / weights.sum(dim=-1, keepdim=True)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self.gates(tokens)
        return self.heads(torch.einsum("bps,bsd->bpd", gates, tokens)), gates


class AttentionFusion(nn.Module):
    """MAFM: one self-attention block across the scale tokens (+ scale embeddings), mean pooling, multi-task head."""

    def __init__(self, n_scales: int, n_targets: int, dim: int, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.scale_embedding = nn.Parameter(torch.zeros(n_scales, dim))
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.feed_forward = _mlp(dim, hidden, dim, dropout)
        self.head = _mlp(dim, hidden, n_targets, dropout)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions (B, P) and the attention weights (B, S, S), averaged over heads."""
        x = tokens + self.scale_embedding
        attended, weights = self.attention(x, x, x, need_weights=True)
        x = self.norm1(x + attended)
        x = self.norm2(x + self.feed_forward(x))
        return self.head(x.mean(dim=1)), weights


class ConcatFusion(nn.Module):
    """The tokens side by side → a multi-task head."""

    def __init__(self, n_scales: int, n_targets: int, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.head = _mlp(n_scales * dim, hidden, n_targets, dropout)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.head(tokens.flatten(1)), None


class MultiscaleNet(nn.Module):
    """Per-scale encoders → tokens → fusion (`spec.design`); with `spec.xreg` also one linear head per scale."""

    def __init__(self, spec: FusionSpec) -> None:
        super().__init__()
        self.spec = spec
        n, p, d, h = len(spec.scale_sizes), spec.n_targets, spec.token_dim, spec.hidden
        self.encoders = nn.ModuleDict({name: nn.Sequential(_mlp(size, h, d, spec.dropout),
                                                           nn.LayerNorm(d, elementwise_affine=False))
                                       for name, size in spec.scale_sizes})
        self.fusion = {"concat": lambda: ConcatFusion(n, p, d, h, spec.dropout),
                       "gfm": lambda: GatedFusion(n, p, d, h),
                       "mafm": lambda: AttentionFusion(n, p, d, h, spec.heads, spec.dropout)}[spec.design]()
        self.scale_heads = nn.ModuleDict({name: nn.Linear(d, p) for name in spec.scales}) if spec.xreg else None

    def tokens(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, S, D) scale tokens."""
        return torch.stack([self.encoders[name](inputs[name]) for name in self.spec.scales], dim=1)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor | None]:
        """`prediction` (B, P); `weights`: GFM gates (B, P, S) or MAFM attention (B, S, S), else None; `per_scale`
        (B, S, P) with xreg, else None."""
        tokens = self.tokens(inputs)
        prediction, weights = self.fusion(tokens)
        per_scale = (torch.stack([self.scale_heads[name](tokens[:, i]) for i, name in enumerate(self.spec.scales)],
                                 dim=1) if self.scale_heads is not None else None)
        return {"prediction": prediction, "weights": weights, "per_scale": per_scale}


def _masked_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the measured (finite) targets."""
    measured = torch.isfinite(target)
    return ((prediction - torch.nan_to_num(target)) ** 2)[measured].mean()


def training_loss(out: Mapping[str, torch.Tensor | None], target: torch.Tensor, xreg_weight: float) -> torch.Tensor:
    """Fused error; with per-scale predictions plus xreg_weight × (their error + their distance to the detached
    fused prediction)."""
    loss = _masked_mse(out["prediction"], target)
    per_scale = out["per_scale"]
    if per_scale is not None:
        fused = out["prediction"].detach().unsqueeze(1).expand_as(per_scale)
        consistency = ((per_scale - fused) ** 2).mean()
        loss = loss + xreg_weight * (_masked_mse(per_scale, target.unsqueeze(1).expand_as(per_scale)) + consistency)
    return loss


def _tensors(inputs: Inputs, scales: Sequence[str], device: str) -> dict[str, torch.Tensor]:
    return {s: torch.as_tensor(inputs[s], dtype=torch.float32, device=device) for s in scales}


def fit_fusion(spec: FusionSpec, train: tuple[Inputs, np.ndarray], val: tuple[Inputs, np.ndarray],
               config: MultiscaleConfig, seed: int, device: str = "cpu") -> tuple[MultiscaleNet, float, int]:
    """Train one network on z-scored inputs and targets; early stopping on the validation loss of the fused
    prediction (best epoch kept). Returns the network (eval mode), its best validation loss and epoch."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = MultiscaleNet(spec).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x_train, y_train = _tensors(train[0], spec.scales, device), torch.as_tensor(train[1], device=device)
    x_val, y_val = _tensors(val[0], spec.scales, device), torch.as_tensor(val[1], device=device)
    n = len(y_train)
    best, best_epoch, best_state = float("inf"), 0, copy.deepcopy(net.state_dict())
    for epoch in range(config.max_epochs):
        net.train()
        for batch in torch.randperm(n, generator=generator).split(config.batch_size):
            optimizer.zero_grad()
            loss = training_loss(net({s: x[batch] for s, x in x_train.items()}), y_train[batch], config.xreg_weight)
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(_masked_mse(net(x_val)["prediction"], y_val))
        if val_loss < best:
            best, best_epoch, best_state = val_loss, epoch, copy.deepcopy(net.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    net.load_state_dict(best_state)
    return net.eval(), best, best_epoch


class FusionEnsemble:
    """Networks of the same spec trained with different seeds; predictions and GFM gates are their means."""

    def __init__(self, nets: Sequence[MultiscaleNet]) -> None:
        self.nets = list(nets)
        self.spec = self.nets[0].spec

    @classmethod
    def fit(cls, spec: FusionSpec, train: tuple[Inputs, np.ndarray], val: tuple[Inputs, np.ndarray],
            config: MultiscaleConfig, device: str = "cpu") -> tuple[FusionEnsemble, float]:
        """One network per seed of `config.seeds`; returns the ensemble and its validation loss (mean over
        seeds of each network's best)."""
        fitted = [fit_fusion(spec, train, val, config, seed, device) for seed in config.seeds]
        return cls([net for net, _, _ in fitted]), float(np.mean([loss for _, loss, _ in fitted]))

    @torch.no_grad()
    def predict(self, inputs: Inputs) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean z-scored predictions (n, P) and, for GFM, the mean gate shares (n, P, S)."""
        outs = []
        for net in self.nets:
            device = next(net.parameters()).device
            outs.append(net(_tensors(inputs, self.spec.scales, str(device))))
        prediction = np.mean([o["prediction"].cpu().numpy() for o in outs], axis=0)
        gates = (np.mean([o["weights"].cpu().numpy() for o in outs], axis=0) if self.spec.design == "gfm"
                 else None)
        return prediction, gates

    def state(self) -> dict:
        """What torch.save writes: the spec and every network's state dict."""
        return {"spec": self.spec.as_dict(), "states": [net.state_dict() for net in self.nets]}

    @classmethod
    def from_state(cls, state: Mapping) -> FusionEnsemble:
        spec = FusionSpec.from_dict(state["spec"])
        nets = []
        for weights in state["states"]:
            net = MultiscaleNet(spec)
            net.load_state_dict(weights)
            nets.append(net.eval())
        return cls(nets)
