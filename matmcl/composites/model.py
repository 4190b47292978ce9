"""The multi-stage model: the SGPT table encoder + projector and a multi-task head, trained end to end.

- `build_regressor(sgpt_config, head_config)`: a `PropertyRegressor` (embedder not frozen) from configs only.
- `load_sgpt_stage(regressor, sgpt)`: stage S, the table encoder and projector weights of a pre-trained SGPT model;
  `load_stage(regressor, state)`: a whole earlier stage (FP). Both check every key and shape first and raise
  `StageMismatchError` naming what differs, so a stage is never silently half-loaded.
- `layer_groups(regressor)`: the layers from input to output (each Linear of the table MLP, or the FT-Transformer's
  tokenizer, blocks and read-out; the projector; each Linear of the head); `layerwise_optimizer` gives layer i of L
  the learning rate `lr · decay^(L−1−i)` (deeper layers, nearer the input, change less), as its own parameter
  group, so a torch LambdaLR scheduler scales every group's own base rate.
- Model folders (`save_model`/`load_model`): config.json (`MSLModelConfig`) + model.pt + targets.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from matmcl.atomic import write_json
from matmcl.models.ft_transformer import FTTransformer
from matmcl.models.heads import PropertyHead, PropertyHeadConfig, PropertyRegressor
from matmcl.models.mlp import TableMLP, TableMLPConfig
from matmcl.models.serialization import load_pretrained, save_pretrained
from matmcl.models.sgpt import TABLE, Embedder, Projector, SGPTConfig, SGPTModel
from matmcl.target_scaling import TargetScaler

TARGETS_FILE = "targets.json"


class StageMismatchError(ValueError):
    """Weights of an earlier stage that do not fit the model (other architecture, missing or extra tensors)."""


@dataclass(frozen=True)
class MSLModelConfig:
    """The architecture of a multi-stage model: the SGPT config (its table encoder is used) and the head."""

    sgpt: SGPTConfig = field(default_factory=SGPTConfig)
    head: PropertyHeadConfig = field(default_factory=PropertyHeadConfig)


def table_embedder(config: SGPTConfig) -> Embedder:
    """The table encoder of `config`'s style followed by a projector (random weights)."""
    encoder_config = config.encoder_configs()[TABLE]
    encoder = TableMLP(encoder_config) if isinstance(encoder_config, TableMLPConfig) else FTTransformer(encoder_config)
    return Embedder(encoder, Projector(config.embed_dim))


def build_regressor(config: MSLModelConfig) -> PropertyRegressor:
    """Table embedder + head, trainable end to end."""
    return PropertyRegressor(table_embedder(config.sgpt), PropertyHead(config.head), freeze=False)


def _check_and_load(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    own = module.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise StageMismatchError(f"{what}: missing tensors {missing[:5]}, unexpected tensors {extra[:5]}")
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in own if state[k].shape != own[k].shape]
    if wrong:
        raise StageMismatchError(f"{what}: shapes differ: {wrong[:5]}")
    module.load_state_dict(state)


def load_sgpt_stage(regressor: PropertyRegressor, sgpt: SGPTModel) -> PropertyRegressor:
    """Stage S: copy the pre-trained table encoder and projector into the regressor's embedder (head untouched)."""
    state = {f"encoder.{k}": v for k, v in sgpt.encoders[TABLE].state_dict().items()}
    state.update({f"projector.{k}": v for k, v in sgpt.projector.state_dict().items()})
    _check_and_load(regressor.embedder, state, "SGPT table encoder")
    return regressor


def load_stage(regressor: PropertyRegressor, state: Mapping[str, torch.Tensor], what: str = "earlier stage"
               ) -> PropertyRegressor:
    """Load a whole earlier stage's weights (embedder and head); every tensor must fit."""
    _check_and_load(regressor, state, what)
    return regressor


def _linears(module: nn.Module) -> list[list[nn.Parameter]]:
    return [list(m.parameters()) for m in module.modules() if isinstance(m, nn.Linear)]


def layer_groups(regressor: PropertyRegressor) -> list[list[nn.Parameter]]:
    """Parameters per layer, from the input to the output."""
    encoder = regressor.embedder.encoder
    if isinstance(encoder, TableMLP):
        layers = _linears(encoder)
    elif isinstance(encoder, FTTransformer):
        layers = [[*encoder.tokenizer.parameters(), encoder.cls], *[list(b.parameters()) for b in encoder.blocks],
                  list(encoder.head.parameters())]
    else:
        raise TypeError(f"no layer order known for a {type(encoder).__name__} table encoder")
    layers += [list(regressor.embedder.projector.parameters()), *_linears(regressor.head)]
    counted = sum(p.numel() for layer in layers for p in layer)
    if counted != sum(p.numel() for p in regressor.parameters()):
        raise AssertionError("layer_groups missed parameters")
    return layers


def layer_rates(n_layers: int, lr: float, decay: float) -> list[float]:
    """Learning rate of each layer (input → output): lr · decay^(L−1−i)."""
    return [lr * decay ** (n_layers - 1 - i) for i in range(n_layers)]


def layerwise_optimizer(regressor: PropertyRegressor, lr: float, decay: float, weight_decay: float
                        ) -> torch.optim.Adam:
    """Adam with one parameter group per layer at its layer-wise decayed rate (decay 1: one rate for all)."""
    layers = layer_groups(regressor)
    groups = [{"params": params, "lr": rate, "layer": i}
              for i, (params, rate) in enumerate(zip(layers, layer_rates(len(layers), lr, decay)))]
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, foreach=True)


def save_model(directory: str | Path, regressor: PropertyRegressor, config: MSLModelConfig, targets: TargetScaler,
               **metadata: Any) -> Path:
    """config.json + model.pt (save_pretrained) and targets.json (target scaling and metadata)."""
    directory = save_pretrained(regressor, config, directory)
    write_json({**targets.to_dict(), **metadata}, Path(directory) / TARGETS_FILE)
    return Path(directory)


def load_model(directory: str | Path) -> tuple[PropertyRegressor, TargetScaler, dict[str, Any]]:
    """A folder written by `save_model`: the regressor (eval mode), its target scaling and metadata."""
    config, state = load_pretrained(directory, MSLModelConfig, PropertyRegressor.__name__)
    regressor = load_stage(build_regressor(config), state, str(directory))
    doc = json.loads((Path(directory) / TARGETS_FILE).read_text())
    return regressor.eval(), TargetScaler.from_dict(doc), doc
