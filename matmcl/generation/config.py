"""Typed parameters of the generation stages (params.yaml section `generation`)."""

from __future__ import annotations

from dataclasses import dataclass

SCHEDULERS = ("dpm", "ddim")
PREDICTIONS = ("epsilon", "v_prediction")
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class GenerationConfig:
    """Diffusion prior, decoder and their evaluation; see params.yaml for what each key means."""

    seed: int = 0
    device: str = "auto"
    patches_per_film: int = 20
    embed_batch_size: int = 256
    # diffusion prior (joint space)
    prior_dim: int = 128
    prior_depth: int = 2
    prior_heads: int = 4
    prior_timesteps: int = 1000
    prior_cond_drop: float = 0.2
    prior_guidance: float = 1.0
    prior_sample_steps: int = 10
    prior_candidates: int = 2
    prior_steps: int = 800
    prior_batch_size: int = 128
    prior_lr: float = 3.0e-4
    prior_weight_decay: float = 1.0e-2
    prior_ema_decay: float = 0.99
    grad_clip: float = 0.5
    # decoder (pixel space, diffusers UNet2DModel)
    image_px: int = 64
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    attention_head_dim: int = 16
    unshuffle: int = 2
    fold_channels: int = 0
    decoder_timesteps: int = 1000
    decoder_cond_drop: float = 0.1
    decoder_steps: int = 1500
    decoder_batch_size: int = 16
    decoder_lr: float = 1.0e-3
    decoder_weight_decay: float = 1.0e-2
    decoder_ema_decay: float = 0.995
    decoder_prediction: str = "v_prediction"
    decoder_lr_schedule: str = "cosine"
    decoder_warmup_fraction: float = 0.067
    scheduler: str = "ddim"
    sample_steps: int = 15
    guidance: float = 2.0
    # evaluation
    eval_seen_films: int = 17
    eval_unseen_films: int = 17
    images_per_film: int = 10
    mosaic_columns: int = 5
    grid_films: int = 6

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"generation.scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.decoder_prediction not in PREDICTIONS:
            raise ValueError(f"generation.decoder_prediction must be one of {PREDICTIONS}, "
                             f"got {self.decoder_prediction!r}")
        if self.decoder_lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"generation.decoder_lr_schedule must be one of {LR_SCHEDULES}, "
                             f"got {self.decoder_lr_schedule!r}")
        if not 0.0 <= self.decoder_warmup_fraction < 1.0:
            raise ValueError(f"generation.decoder_warmup_fraction must be in [0, 1), "
                             f"got {self.decoder_warmup_fraction}")
        for name in ("prior_cond_drop", "decoder_cond_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"generation.{name} must be in [0, 1), got {getattr(self, name)}")
        factor = self.unshuffle * 2 ** (len(self.block_out_channels) - 1)
        if self.unshuffle < 1 or self.image_px % factor:
            raise ValueError(f"generation.image_px {self.image_px} must be divisible by unshuffle × "
                             f"2^{len(self.block_out_channels) - 1} = {factor} (the UNet's downsamplings)")
        if self.fold_channels < 0:
            raise ValueError("generation.fold_channels must be >= 0")
        if self.images_per_film < 2:
            raise ValueError("generation.images_per_film must be >= 2 (FID needs a covariance)")
