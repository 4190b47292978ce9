"""ResNet vision encoder (He et al. 2016) for grayscale SEM patches, written in plain torch.

`ResNet` is the backbone (stem, four stages, global pooling, fc → `feature_dim`); `CNNEncoder` adds the MLP head
that maps the backbone feature to the encoder output. The paper uses ResNet-50: bottleneck blocks, (3, 4, 6, 3),
width 64, fc → 512, head 512 → 512 → 128, at 224 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from matmcl.models.mlp import mlp

STEM_KERNEL = 7  # the standard ResNet stem: 7×7 conv, stride 2, then 3×3 max-pool, stride 2
STEM_STRIDE = 2


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Convolution (same padding, no bias) followed by batch norm."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_ch)
    )


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(in_ch, ch, 3, stride), nn.ReLU(inplace=True), conv_bn(ch, ch, 3))
        self.shortcut = nn.Identity() if stride == 1 and in_ch == ch else conv_bn(in_ch, ch, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand (×4) with a residual connection (ResNet-50/101)."""

    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int) -> None:
        super().__init__()
        out_ch = ch * self.expansion
        self.body = nn.Sequential(
            conv_bn(in_ch, ch, 1), nn.ReLU(inplace=True),
            conv_bn(ch, ch, 3, stride), nn.ReLU(inplace=True),
            conv_bn(ch, out_ch, 1),
        )
        self.shortcut = nn.Identity() if stride == 1 and in_ch == out_ch else conv_bn(in_ch, out_ch, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


@dataclass(frozen=True)
class ResNetConfig:
    """ResNet backbone. Stage i has `layers[i]` blocks of width `width * 2**i`; paper: `paper()` (ResNet-50)."""

    in_channels: int = 1
    block: str = "basic"
    layers: tuple[int, ...] = (1, 1, 1, 1)
    width: int = 32
    feature_dim: int = 256

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise ValueError(f"ResNetConfig.block must be one of {sorted(BLOCKS)}, got {self.block!r}")

    @classmethod
    def paper(cls) -> ResNetConfig:
        return cls(block="bottleneck", layers=(3, 4, 6, 3), width=64, feature_dim=512)


class ResNet(nn.Module):
    """ResNet backbone: image (B, C, H, W) → ReLU(fc(global average pool)) of size `feature_dim`."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        block = BLOCKS[config.block]
        self.stem = nn.Sequential(
            conv_bn(config.in_channels, config.width, STEM_KERNEL, STEM_STRIDE),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages, in_ch = [], config.width
        for i, n_blocks in enumerate(config.layers):
            ch = config.width * 2**i
            blocks = []
            for j in range(n_blocks):
                blocks.append(block(in_ch, ch, stride=2 if i > 0 and j == 0 else 1))
                in_ch = ch * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(in_ch, config.feature_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(img))
        return torch.relu(self.fc(h.mean(dim=(2, 3))))


@dataclass(frozen=True)
class CNNEncoderConfig:
    """ResNet + MLP head. Paper: ResNet-50 with fc → 512, head 512 → 512 → 128, dropout 0.1."""

    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    hidden_dims: tuple[int, ...] = (256,)
    out_dim: int = 128
    dropout: float = 0.1

    @classmethod
    def paper(cls) -> CNNEncoderConfig:
        return cls(resnet=ResNetConfig.paper(), hidden_dims=(512,))


class CNNEncoder(nn.Module):
    """Vision encoder of the MLP/CNN style: image (B, C, H, W) → feature (B, out_dim)."""

    def __init__(self, config: CNNEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ResNet(config.resnet)
        self.head = mlp(config.resnet.feature_dim, config.hidden_dims, config.out_dim, config.dropout)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(img))
