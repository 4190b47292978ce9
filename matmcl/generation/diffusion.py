"""What the prior and the decoder share: diffusers schedulers, the training loop (EMA weights, condition dropout for
classifier-free guidance) and the guided sampling loop.

A denoiser is any module called as `model(sample, timestep, cond, drop)` where `drop` (bool, per item) replaces the
condition by the model's learned null condition. Training targets follow the training scheduler's
`prediction_type`: "sample" (the prior predicts the clean embedding), "epsilon" (the noise) or
"v_prediction" (v = √ᾱ ε − √(1−ᾱ) x0, Salimans & Ho 2022: well-scaled at every noise level, which helps few-step
sampling).
The learning rate follows a diffusers schedule (`get_scheduler`: e.g. "cosine" after a linear warm-up, which decays
to 0 and so lets a short training settle, or "constant").
Guidance follows diffusers: out = uncond + w · (cond − uncond), so w = 1 is the plain conditional model (one pass,
the paper's setting), w = 0 the unconditional one and w > 1 strengthens the condition (two passes in one batch).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.optimization import get_scheduler
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

# (generator, batch size) -> (clean samples, conditions) on the training device
BatchDraw = Callable[[torch.Generator, int], tuple[torch.Tensor, torch.Tensor]]


def training_scheduler(timesteps: int, prediction_type: str) -> DDPMScheduler:
    """The cosine ("squaredcos_cap_v2") DDPM noise schedule the denoisers are trained with."""
    return DDPMScheduler(num_train_timesteps=timesteps, beta_schedule="squaredcos_cap_v2",
                         prediction_type=prediction_type, clip_sample=False)


def sampling_scheduler(train: DDPMScheduler, kind: str, clip: float | None = None
                       ) -> DDIMScheduler | DPMSolverMultistepScheduler:
    """A few-step sampler on the training schedule: "ddim" (deterministic, trailing spacing) or "dpm"
    (DPM-Solver++ of order 2). With `clip` the predicted clean sample is clamped to ±clip at every step (images in
    [-1, 1]): near the end of the cosine schedule ᾱ ≈ 0, and a noise prediction's x0 = (x − √(1−ᾱ) ε) / √ᾱ would
    otherwise blow up in the first steps."""
    if kind == "ddim":
        extra = {"clip_sample": True, "clip_sample_range": clip} if clip else {}
        return DDIMScheduler.from_config(train.config, timestep_spacing="trailing", **extra)
    extra = {"thresholding": True, "sample_max_value": clip} if clip else {}
    return DPMSolverMultistepScheduler.from_config(train.config, algorithm_type="dpmsolver++", solver_order=2,
                                                   timestep_spacing="trailing", **extra)


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation of one denoiser: AdamW steps, batch size, grad clipping, EMA decay, condition dropout, seed,
    learning-rate schedule (diffusers `get_scheduler` name) and its linear warm-up steps."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    grad_clip: float
    ema_decay: float
    cond_drop: float
    seed: int
    lr_schedule: str = "constant"
    warmup_steps: int = 0


def train_denoiser(model: nn.Module, draw: BatchDraw, scheduler: DDPMScheduler, settings: TrainSettings,
                   device: torch.device, progress: bool = True, desc: str = "denoiser"
                   ) -> tuple[nn.Module, list[float], float]:
    """Train `model` in place; return a copy holding its EMA weights (eval mode, CPU), the loss per step and the
    seconds per step. Noise, timesteps, dropout and the batches all come from one generator seeded by
    `settings.seed`, so the same seed gives the same weights."""
    generator = torch.Generator().manual_seed(settings.seed)
    model.to(device).train()
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(settings.ema_decay), use_buffers=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    lr_schedule = get_scheduler(settings.lr_schedule, optimizer, num_warmup_steps=settings.warmup_steps,
                                num_training_steps=settings.steps)
    n_steps = scheduler.config.num_train_timesteps
    losses = []
    start = time.perf_counter()
    for _ in tqdm(range(settings.steps), desc=desc, disable=not progress, leave=False):
        clean, cond = draw(generator, settings.batch_size)
        noise = torch.randn(clean.shape, generator=generator)
        t = torch.randint(0, n_steps, (len(clean),), generator=generator)
        drop = torch.rand(len(clean), generator=generator) < settings.cond_drop
        noisy = scheduler.add_noise(clean, noise, t)
        target = _target(scheduler, clean, noise, t)
        out = model(noisy.to(device), t.to(device), cond.to(device), drop.to(device))
        loss = F.mse_loss(out, target.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        lr_schedule.step()
        ema.update_parameters(model)
        losses.append(loss.item())
    seconds_per_step = (time.perf_counter() - start) / max(1, settings.steps)
    averaged = copy.deepcopy(ema.module).cpu().eval()
    model.cpu().eval()
    return averaged, losses, seconds_per_step


def _target(scheduler: DDPMScheduler, clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the denoiser learns to predict under the scheduler's `prediction_type`."""
    kind = scheduler.config.prediction_type
    if kind == "sample":
        return clean
    if kind == "epsilon":
        return noise
    return scheduler.get_velocity(clean, noise, t)


@torch.no_grad()
def guided_sample(model: nn.Module, scheduler: DDIMScheduler | DPMSolverMultistepScheduler, cond: torch.Tensor,
                  shape: tuple[int, ...], guidance: float, steps: int, generator: torch.Generator,
                  device: torch.device) -> torch.Tensor:
    """Clean samples (len(cond), *shape) from Gaussian noise in `steps` sampler steps with classifier-free
    guidance `guidance` (see the module docstring); `generator` (CPU) makes the starting noise."""
    if steps < 1:
        raise ValueError(f"sampling steps must be >= 1, got {steps}")
    if not guidance >= 0:
        raise ValueError(f"guidance scale must be >= 0, got {guidance}")
    model.eval().to(device)
    n = len(cond)
    scheduler = copy.deepcopy(scheduler)
    scheduler.set_timesteps(steps)
    sample = torch.randn((n, *shape), generator=generator).to(device)
    cond = cond.to(device)
    keep, null = torch.zeros(n, dtype=torch.bool, device=device), torch.ones(n, dtype=torch.bool, device=device)
    for t in scheduler.timesteps:
        timestep = t.expand(n).to(device)
        if guidance == 1.0:
            out = model(sample, timestep, cond, keep)
        elif guidance == 0.0:
            out = model(sample, timestep, cond, null)
        else:
            both = model(torch.cat([sample, sample]), torch.cat([timestep, timestep]), torch.cat([cond, cond]),
                         torch.cat([keep, null]))
            conditional, unconditional = both.chunk(2)
            out = unconditional + guidance * (conditional - unconditional)
        sample = scheduler.step(out, t, sample).prev_sample
    return sample.cpu()
