"""Decoder: a diffusers `UNet2DModel` that renders a grayscale SEM crop from a structure (SGPT image) embedding.

The embedding is projected to the UNet's time-embedding size and added to the time embedding
(`class_embed_type="identity"`, unCLIP style); a learned null embedding replaces it when dropped (classifier-free
guidance). With `unshuffle` f > 1 the UNet works on f² channels at 1/f of the resolution (space-to-depth,
`pixel_unshuffle`, as in Simple Diffusion): native-resolution crops at about the cost of a UNet on crops f times
smaller, which is what makes a 64-px decoder trainable on 2 CPU cores. Each UNet output channel then paints one
pixel of every 2 × 2 (f × f) cell, which shows as a checkerboard; with `fold_channels` k > 0 a learned 3 × 3 conv at
full resolution maps the crop to k channels before the fold and another maps the k unfolded channels back, so
neighbouring pixels are mixed (`PixelFold`). The UNet predicts the noise (or v) and is saved with diffusers'
`save_pretrained` (folder `unet/`); the projection and null embedding (`conditioning/`) and the fold convs (`fold/`)
with matmcl's config.json + model.pt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from torch import nn

from matmcl.models.serialization import load_pretrained, save_pretrained

UNET_DIR, CONDITIONING_DIR, FOLD_DIR = "unet", "conditioning", "fold"
NORM_GROUPS = 8


@dataclass(frozen=True)
class DecoderConfig:
    """Crop size (px), UNet widths per resolution, ResNet layers per block, attention head size (attention only at
    the lowest resolution), joint-space size, diffusion timesteps, the space-to-depth factor, what the UNet
    predicts (diffusers `prediction_type`: "epsilon" or "v_prediction") and the full-resolution channels of the
    learned fold (0: plain pixel_unshuffle)."""

    image_px: int = 64
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    attention_head_dim: int = 16
    embed_dim: int = 128
    timesteps: int = 1000
    unshuffle: int = 2
    prediction_type: str = "epsilon"
    fold_channels: int = 0

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.block_out_channels[0]


def build_unet(config: DecoderConfig) -> UNet2DModel:
    """The UNet of `config`: the grayscale crop (space-to-depth folded) in and out, embedding added to the time
    embedding."""
    levels = len(config.block_out_channels)
    channels = max(1, config.fold_channels) * config.unshuffle**2
    return UNet2DModel(sample_size=config.image_px // config.unshuffle, in_channels=channels, out_channels=channels,
                       block_out_channels=config.block_out_channels, layers_per_block=config.layers_per_block,
                       down_block_types=("DownBlock2D",) * (levels - 1) + ("AttnDownBlock2D",),
                       up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (levels - 1),
                       class_embed_type="identity", norm_num_groups=NORM_GROUPS,
                       attention_head_dim=config.attention_head_dim)


class EmbeddingConditioning(nn.Module):
    """Structure embedding (or the learned null embedding) → vector added to the UNet's time embedding."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.null = nn.Parameter(torch.zeros(config.embed_dim))
        self.project = nn.Sequential(nn.Linear(config.embed_dim, config.time_embed_dim), nn.SiLU(),
                                     nn.Linear(config.time_embed_dim, config.time_embed_dim))

    def forward(self, cond: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        return self.project(torch.where(drop[:, None], self.null.expand_as(cond), cond))


class PixelFold(nn.Module):
    """Learned space-to-depth: 3 × 3 conv (1 → k channels) then pixel_unshuffle in; pixel_shuffle then 3 × 3 conv
    (k → 1) out."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.conv_in = nn.Conv2d(1, config.fold_channels, 3, padding=1)
        self.conv_out = nn.Conv2d(config.fold_channels, 1, 3, padding=1)

    def fold(self, sample: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(self.conv_in(sample), self.config.unshuffle)

    def unfold(self, out: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.pixel_shuffle(out, self.config.unshuffle))


class EmbeddingDecoder(nn.Module):
    """Noise- (or v-) predicting UNet conditioned on a unit-norm structure embedding; images in [-1, 1]."""

    def __init__(self, config: DecoderConfig, unet: UNet2DModel | None = None) -> None:
        super().__init__()
        self.config = config
        self.unet = unet if unet is not None else build_unet(config)
        self.conditioning = EmbeddingConditioning(config)
        self.fold = PixelFold(config) if config.fold_channels else None

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor, drop: torch.Tensor
                ) -> torch.Tensor:
        f = self.config.unshuffle
        folded = self.fold.fold(sample) if self.fold else F.pixel_unshuffle(sample, f)
        out = self.unet(folded, timestep, class_labels=self.conditioning(cond, drop)).sample
        return self.fold.unfold(out) if self.fold else F.pixel_shuffle(out, f)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `unet/` (diffusers), `conditioning/` and, with a learned fold, `fold/` (config.json + model.pt) into
        `directory`."""
        directory = Path(directory)
        self.unet.save_pretrained(directory / UNET_DIR)
        save_pretrained(self.conditioning, self.config, directory / CONDITIONING_DIR)
        if self.fold:
            save_pretrained(self.fold, self.config, directory / FOLD_DIR)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> EmbeddingDecoder:
        directory = Path(directory)
        config, state = load_pretrained(directory / CONDITIONING_DIR, DecoderConfig, EmbeddingConditioning.__name__)
        model = cls(config, UNet2DModel.from_pretrained(directory / UNET_DIR, low_cpu_mem_usage=False))
        model.conditioning.load_state_dict(state)
        if model.fold:
            model.fold.load_state_dict(load_pretrained(directory / FOLD_DIR, DecoderConfig, PixelFold.__name__)[1])
        return model.eval()
