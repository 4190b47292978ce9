"""Structure-guided pre-training (SGPT) model: unimodal encoders, a fusion encoder and one shared projector.

Batches are dicts of tensors keyed by modality: "table" (B, 7) conditions, "image" (B, 1, H, W) SEM patches, and
one key per extra unimodal vector modality. `SGPTModel.forward` returns one projected, L2-normalised embedding per
modality present plus "fused", the anchor of the contrastive loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from matmcl.models.ft_transformer import FTTransformer, FTTransformerConfig
from matmcl.models.fusion import ConcatFusion, ConcatFusionConfig, CrossAttentionFusion, CrossAttentionFusionConfig
from matmcl.models.mlp import TableMLP, TableMLPConfig
from matmcl.models.resnet import CNNEncoder, CNNEncoderConfig, ResNetConfig
from matmcl.models.serialization import config_from_dict, load_pretrained, save_pretrained
from matmcl.models.vit import ViT, ViTConfig

TABLE, IMAGE, FUSED = "table", "image", "fused"
STYLES = ("mlp_cnn", "transformer")

EncoderConfig = (
    TableMLPConfig | CNNEncoderConfig | ConcatFusionConfig | FTTransformerConfig | ViTConfig
    | CrossAttentionFusionConfig
)


@dataclass(frozen=True)
class SGPTConfig:
    """SGPT architecture.

    style: "mlp_cnn" (table MLP, ResNet, concat fusion) or "transformer" (FT-Transformer, ViT, cross-attention
    fusion); only the chosen style's sub-configs are used. Every encoder outputs `embed_dim` features, which the
    shared projector maps to `embed_dim`. `extra_modalities` adds unimodal vector encoders (e.g. a descriptor MLP)
    by name; the batch carries their input under the same name. Defaults are CPU-sized; `paper()` gives the
    paper's sizes (about 51 M parameters for "mlp_cnn").
    """

    style: str = "mlp_cnn"
    embed_dim: int = 128
    table_mlp: TableMLPConfig = field(default_factory=TableMLPConfig)
    cnn: CNNEncoderConfig = field(default_factory=CNNEncoderConfig)
    concat_fusion: ConcatFusionConfig = field(default_factory=ConcatFusionConfig)
    ft_transformer: FTTransformerConfig = field(default_factory=FTTransformerConfig)
    vit: ViTConfig = field(default_factory=ViTConfig)
    cross_fusion: CrossAttentionFusionConfig = field(default_factory=CrossAttentionFusionConfig)
    extra_modalities: dict[str, TableMLPConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"SGPTConfig.style must be one of {STYLES}, got {self.style!r}")
        clashes = sorted(set(self.extra_modalities) & {TABLE, IMAGE, FUSED})
        if clashes:
            raise ValueError(f"extra modality names {clashes} are reserved")
        for name, cfg in self.encoder_configs().items():
            if cfg.out_dim != self.embed_dim:
                raise ValueError(f"encoder {name!r} outputs {cfg.out_dim} features but embed_dim is {self.embed_dim}")

    def encoder_configs(self) -> dict[str, EncoderConfig]:
        """The configs of the encoders this style builds, keyed by modality ("fused" for the fusion encoder)."""
        if self.style == "mlp_cnn":
            active = {TABLE: self.table_mlp, IMAGE: self.cnn, FUSED: self.concat_fusion}
        else:
            active = {TABLE: self.ft_transformer, IMAGE: self.vit, FUSED: self.cross_fusion}
        return {**active, **self.extra_modalities}

    @classmethod
    def from_dict(cls, data: Mapping) -> SGPTConfig:
        """Build from plain data (JSON, a params.yaml section); nested sections may be partial."""
        return config_from_dict(cls, data)

    @classmethod
    def paper(cls, style: str = "mlp_cnn") -> SGPTConfig:
        """The paper's sizes (transformer-style sizes are our choice: the paper lists none)."""
        return cls(
            style=style,
            table_mlp=TableMLPConfig.paper(),
            cnn=CNNEncoderConfig.paper(),
            concat_fusion=ConcatFusionConfig.paper(),
            ft_transformer=FTTransformerConfig.paper(),
            vit=ViTConfig.paper(),
            cross_fusion=CrossAttentionFusionConfig.paper(),
        )

    @classmethod
    def tiny(cls, style: str = "mlp_cnn", image_size: int = 32, embed_dim: int = 32) -> SGPTConfig:
        """A few-thousand-parameter model for smoke runs and tests."""
        resnet = ResNetConfig(layers=(1, 1), width=8, feature_dim=32)
        return cls(
            style=style,
            embed_dim=embed_dim,
            table_mlp=TableMLPConfig(hidden_dims=(32, 32), out_dim=embed_dim),
            cnn=CNNEncoderConfig(resnet=resnet, hidden_dims=(32,), out_dim=embed_dim),
            concat_fusion=ConcatFusionConfig(resnet=resnet, table_dims=(32, 32), hidden_dims=(32,), out_dim=embed_dim),
            ft_transformer=FTTransformerConfig(dim=32, depth=1, n_heads=2, out_dim=embed_dim),
            vit=ViTConfig(image_size=image_size, dim=32, depth=1, n_heads=2, out_dim=embed_dim),
            cross_fusion=CrossAttentionFusionConfig(
                image_size=image_size, dim=32, depth=1, n_heads=2, out_dim=embed_dim
            ),
        )


class Projector(nn.Module):
    """Shared projection head g: Linear(dim, dim), then L2 normalisation onto the unit sphere."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(h), dim=-1)


class Embedder(nn.Module):
    """An encoder followed by the projector: inputs → joint-space embedding (shares the modules it is given)."""

    def __init__(self, encoder: nn.Module, projector: Projector) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(*inputs))


_ENCODERS: dict[type, type[nn.Module]] = {
    TableMLPConfig: TableMLP,
    CNNEncoderConfig: CNNEncoder,
    ConcatFusionConfig: ConcatFusion,
    FTTransformerConfig: FTTransformer,
    ViTConfig: ViT,
    CrossAttentionFusionConfig: CrossAttentionFusion,
}


class SGPTModel(nn.Module):
    """Unimodal encoders (`encoders`, keyed by modality), a fusion encoder and the shared projector."""

    def __init__(self, config: SGPTConfig) -> None:
        super().__init__()
        self.config = config
        built = {name: _ENCODERS[type(cfg)](cfg) for name, cfg in config.encoder_configs().items()}
        self.fusion = built.pop(FUSED)
        self.encoders = nn.ModuleDict(built)
        self.projector = Projector(config.embed_dim)

    @property
    def modalities(self) -> list[str]:
        """Names of the unimodal modalities, e.g. ["table", "image"]."""
        return list(self.encoders)

    def embedder(self, name: str) -> Embedder:
        """Encoder of modality `name` (or "fused") plus the projector, e.g. to feed a property head."""
        if name == FUSED:
            return Embedder(self.fusion, self.projector)
        if name not in self.encoders:
            raise KeyError(f"unknown modality {name!r}; known: {[*self.modalities, FUSED]}")
        return Embedder(self.encoders[name], self.projector)

    def embed(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Projected, normalised embedding (B, embed_dim) of unimodal input `x` of modality `name`."""
        return self.projector(self.encoders[name](x))

    def embed_table(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(TABLE, x)

    def embed_image(self, img: torch.Tensor) -> torch.Tensor:
        return self.embed(IMAGE, img)

    def embed_fused(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        return self.projector(self.fusion(x, img))

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Embeddings of every modality present in `batch`, plus "fused" when both table and image are there."""
        out = {name: self.embed(name, batch[name]) for name in self.encoders if name in batch}
        if TABLE in batch and IMAGE in batch:
            out[FUSED] = self.embed_fused(batch[TABLE], batch[IMAGE])
        return out

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `config.json` and `model.pt` (state dict) into `directory`."""
        return save_pretrained(self, self.config, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> SGPTModel:
        """Rebuild a model written by `save_pretrained` (in eval mode)."""
        config, state = load_pretrained(directory, SGPTConfig, cls.__name__, map_location)
        model = cls(config)
        model.load_state_dict(state)
        return model.eval()


def build_sgpt(config: SGPTConfig | Mapping | None = None) -> SGPTModel:
    """An SGPT model from a config, a plain dict (e.g. a params.yaml section) or the CPU defaults."""
    if isinstance(config, Mapping):
        config = SGPTConfig.from_dict(config)
    return SGPTModel(config or SGPTConfig())


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of `module` (each shared parameter counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
