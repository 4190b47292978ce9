"""Train the generator (stage `generator`): the diffusion prior on (condition, image) embedding pairs and the
decoder on crops of the training films' patches, both from the served SGPT; write models/generator atomically with
lineage.json; log both to MLflow and register them (`matmcl-generator-prior`, `matmcl-generator-decoder`, alias =
profile)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from matmcl.artifacts import GENERATOR_DIR, SGPT_DIR
from matmcl.atomic import atomic_dir, write_json
from matmcl.codebase import code_version
from matmcl.config import Workspace, section
from matmcl.generation.config import GenerationConfig
from matmcl.generation.data import GeneratorData
from matmcl.generation.decoder import DecoderConfig, EmbeddingDecoder
from matmcl.generation.diffusion import TrainSettings, train_denoiser, training_scheduler
from matmcl.generation.generator import TRAINING_FILE, StructureGenerator
from matmcl.generation.prior import DiffusionPrior, PriorConfig
from matmcl.lineage import LINEAGE_FILE, Lineage, data_version, params_hash, write_lineage
from matmcl.models.sgpt import SGPTModel, count_parameters
from matmcl.tracking import resolve_tracking, tracking_run
from matmcl.training.config import resolve_device
from matmcl.training.data import ConditionScaler, ProcessedData
from matmcl.training.pretrain import check_sgpt, load_sgpt

PRIOR_MODEL_NAME, DECODER_MODEL_NAME = "matmcl-generator-prior", "matmcl-generator-decoder"
TRAIN_SPLITS = ("train",)


def prior_config(config: GenerationConfig, embed_dim: int) -> PriorConfig:
    return PriorConfig(embed_dim, config.prior_dim, config.prior_depth, config.prior_heads, config.prior_timesteps)


def decoder_config(config: GenerationConfig, embed_dim: int) -> DecoderConfig:
    return DecoderConfig(config.image_px, config.block_out_channels, config.layers_per_block,
                         config.attention_head_dim, embed_dim, config.decoder_timesteps, config.unshuffle,
                         config.decoder_prediction, config.fold_channels)


def fit_generator(data: GeneratorData, config: GenerationConfig, sgpt: SGPTModel, sgpt_image_size: int,
                  scaler: ConditionScaler, progress: bool = True) -> tuple[StructureGenerator, dict[str, Any]]:
    """Train prior and decoder on `data`; return the generator (EMA weights) and training metrics."""
    device = resolve_device(config.device)
    embed_dim = data.image.shape[1]
    torch.manual_seed(config.seed)
    prior = DiffusionPrior(prior_config(config, embed_dim))
    decoder = EmbeddingDecoder(decoder_config(config, embed_dim))
    start = time.perf_counter()
    prior_ema, prior_losses, prior_step_s = train_denoiser(
        prior, lambda g, b: _scaled(data.prior_batch(g, b), prior.scale),
        training_scheduler(config.prior_timesteps, "sample"),
        TrainSettings(config.prior_steps, config.prior_batch_size, config.prior_lr, config.prior_weight_decay,
                      config.grad_clip, config.prior_ema_decay, config.prior_cond_drop, config.seed),
        device, progress, "prior")
    prior_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoder_ema, decoder_losses, decoder_step_s = train_denoiser(
        decoder, lambda g, b: data.decoder_batch(g, b, config.image_px),
        training_scheduler(config.decoder_timesteps, config.decoder_prediction),
        TrainSettings(config.decoder_steps, config.decoder_batch_size, config.decoder_lr,
                      config.decoder_weight_decay, config.grad_clip, config.decoder_ema_decay,
                      config.decoder_cond_drop, config.seed + 1, config.decoder_lr_schedule,
                      round(config.decoder_warmup_fraction * config.decoder_steps)),
        device, progress, "decoder")
    decoder_seconds = time.perf_counter() - start
    generator = StructureGenerator(sgpt, sgpt_image_size, scaler, prior_ema, decoder_ema, config, device)
    tail = max(1, len(decoder_losses) // 10)
    metrics = {
        "n_films": len(data.rows), "n_pairs": len(data),
        "prior": {"steps": config.prior_steps, "first_loss": prior_losses[0],
                  "final_loss": sum(prior_losses[-tail:]) / tail, "seconds_per_step": prior_step_s,
                  "n_parameters": count_parameters(prior_ema)},
        "decoder": {"steps": config.decoder_steps, "first_loss": decoder_losses[0],
                    "final_loss": sum(decoder_losses[-tail:]) / tail, "seconds_per_step": decoder_step_s,
                    "n_parameters": count_parameters(decoder_ema), "image_px": config.image_px},
        "prior_train_seconds": prior_seconds, "decoder_train_seconds": decoder_seconds,
    }
    return generator, metrics


def _scaled(batch: tuple[torch.Tensor, torch.Tensor], scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior diffuses √d-scaled embeddings; its conditions stay unit-norm (it scales them itself)."""
    image, cond = batch
    return image * scale, cond


def without_timings(metrics: dict[str, Any]) -> dict[str, Any]:
    """Training metrics without wall times (keys naming seconds), for the model folder: the same training writes the
    same bytes, so the folder's fingerprint and DVC hash do not change between runs. The times go to
    reports/generator.json."""
    return {key: without_timings(value) if isinstance(value, dict) else value
            for key, value in metrics.items() if "seconds" not in key}


def train_generator(workspace: Workspace, params: dict[str, Any], run_id: str | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Train prior and decoder from models/sgpt on the training films; write models/generator (with lineage); log
    and register both in MLflow. Returns the metrics of reports/generator.json."""
    config = section(params, "generation", GenerationConfig)
    sources = check_sgpt(workspace.models / SGPT_DIR, workspace.processed)
    lineage = Lineage.of(sources, params_hash({"generation": config}), code_version(__name__))
    sgpt, pretrain = load_sgpt(workspace.models / SGPT_DIR)
    data = ProcessedData.load(workspace.processed)
    start = time.perf_counter()
    pairs = GeneratorData.build(data, TRAIN_SPLITS, sgpt, pretrain.image_size, config.patches_per_film,
                                config.embed_batch_size, resolve_device(config.device))
    embed_seconds = time.perf_counter() - start
    tags = {"data_version": sources["data"], "code_version": lineage.code_version, "profile": params["profile"]}
    with tracking_run(resolve_tracking(params, workspace.root), "generator", run_id, tags) as run:
        run.log_params({"generation": dataclasses.asdict(config)})
        generator, metrics = fit_generator(pairs, config, sgpt, pretrain.image_size, data.scaler, progress)
        folder = workspace.models / GENERATOR_DIR
        with atomic_dir(folder) as tmp:
            generator.save(tmp)
            write_json(without_timings(metrics), tmp / TRAINING_FILE)
            lineage = write_lineage(tmp, lineage)
        metrics.update(embed_seconds=embed_seconds, data_version=data_version(workspace.processed),
                       fingerprint=lineage.fingerprint, mlflow_run_id=run.run_id)
        run.log_metrics(metrics)
        run.log_artifact(Path(folder) / LINEAGE_FILE, GENERATOR_DIR)
        run.log_model(generator.prior, "prior", PRIOR_MODEL_NAME, params["profile"])
        run.log_model(generator.decoder, "decoder", DECODER_MODEL_NAME, params["profile"])
    return metrics
