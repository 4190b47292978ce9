"""The trained generator as a Python API: conditions → structure embeddings (prior) → SEM crops (decoder).

    gen = StructureGenerator.load("models", "data/processed")
    images = gen.generate(conditions_df, n=8)          # uint8 (n_conditions, 8, S, S), longitudinal orientation

The model folder (models/generator) holds `prior/`, `decoder/` (diffusers UNet + conditioning), the
`generation_config.json` it was trained with (sampling defaults), `training.json` (training metrics) and
`lineage.json`; `load` refuses a folder made
from other data or another SGPT model than the workspace holds.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from matmcl.artifacts import GENERATOR_DIR, SGPT_DIR
from matmcl.generation.config import GenerationConfig
from matmcl.generation.data import to_uint8
from matmcl.generation.decoder import EmbeddingDecoder
from matmcl.generation.diffusion import guided_sample, sampling_scheduler, training_scheduler
from matmcl.generation.prior import DiffusionPrior
from matmcl.lineage import check_lineage
from matmcl.models.serialization import config_from_dict
from matmcl.models.sgpt import SGPTModel
from matmcl.predict import check_conditions
from matmcl.schema import DIRECTION, LONGITUDINAL
from matmcl.training.config import resolve_device
from matmcl.training.data import ConditionScaler
from matmcl.training.pretrain import check_sgpt, load_sgpt

PRIOR_DIR, DECODER_DIR = "prior", "decoder"
GENERATION_CONFIG_FILE = "generation_config.json"
TRAINING_FILE = "training.json"  # training metrics (steps, losses, seconds) written beside the weights
SGPT_IMAGE_SIZE_KEY = "sgpt_image_size"
IMAGE_RANGE = 1.0  # decoder images live in [-1, 1]
RENDER_BATCH = 64  # images denoised together (fixed, so that a seed gives the same images at any n)


@dataclass
class StructureGenerator:
    """SGPT (condition embeddings), scaler, prior and decoder, with the sampling settings of `config`."""

    sgpt: SGPTModel
    sgpt_image_size: int
    scaler: ConditionScaler
    prior: DiffusionPrior
    decoder: EmbeddingDecoder
    config: GenerationConfig
    device: torch.device

    @classmethod
    def load(cls, models_dir: str | Path, processed_dir: str | Path, device: str = "auto") -> StructureGenerator:
        """The generator of `models_dir/generator` with the SGPT of `models_dir/sgpt` (lineage-checked)."""
        models_dir, processed_dir = Path(models_dir), Path(processed_dir)
        folder = models_dir / GENERATOR_DIR
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: run `matmcl generator` first")
        check_lineage(folder, check_sgpt(models_dir / SGPT_DIR, processed_dir), "generator")
        sgpt, pretrain = load_sgpt(models_dir / SGPT_DIR)
        doc = json.loads((folder / GENERATION_CONFIG_FILE).read_text())
        image_size = doc.pop(SGPT_IMAGE_SIZE_KEY)
        return cls(sgpt, image_size, ConditionScaler.load(processed_dir / "scaler.json"),
                   DiffusionPrior.from_pretrained(folder / PRIOR_DIR),
                   EmbeddingDecoder.from_pretrained(folder / DECODER_DIR), config_from_dict(GenerationConfig, doc),
                   resolve_device(device))

    def save(self, directory: str | Path) -> Path:
        """Write prior/, decoder/ and generation_config.json into `directory` (lineage is the caller's)."""
        directory = Path(directory)
        self.prior.save_pretrained(directory / PRIOR_DIR)
        self.decoder.save_pretrained(directory / DECODER_DIR)
        doc = {**dataclasses.asdict(self.config), SGPT_IMAGE_SIZE_KEY: self.sgpt_image_size}
        (directory / GENERATION_CONFIG_FILE).write_text(json.dumps(doc, indent=2) + "\n")
        return directory

    @property
    def image_px(self) -> int:
        return self.decoder.config.image_px

    @torch.no_grad()
    def condition_embeddings(self, conditions: pd.DataFrame) -> torch.Tensor:
        """Joint-space embeddings (n, d) of the longitudinal rows of physical conditions (checked: one clear error
        for a missing column, text, NaN or an impossible value)."""
        rows = check_conditions(conditions).assign(**{DIRECTION: LONGITUDINAL})
        inputs = torch.from_numpy(self.scaler.inputs(rows))
        return self.sgpt.eval().to(self.device).embed_table(inputs.to(self.device)).cpu()

    def structure_embeddings(self, cond: torch.Tensor, per_condition: int, guidance: float | None = None,
                             seed: int = 0) -> torch.Tensor:
        """`per_condition` sampled structure embeddings (n, per_condition, d) per condition embedding; each is the
        best of `prior_candidates` samples by cosine similarity to its condition."""
        if per_condition < 1:
            raise ValueError(f"need at least one image per condition, got {per_condition}")
        cfg = self.config
        guidance = cfg.prior_guidance if guidance is None else guidance
        n, k = len(cond), cfg.prior_candidates
        repeated = cond.repeat_interleave(per_condition * k, dim=0)
        scheduler = sampling_scheduler(training_scheduler(self.prior.config.timesteps, "sample"), "ddim")
        sampled = guided_sample(self.prior, scheduler, repeated, (cond.shape[1],), guidance, cfg.prior_sample_steps,
                                torch.Generator().manual_seed(seed), self.device)
        sampled = self.prior.to_embedding(sampled).view(n, per_condition, k, -1)
        score = (sampled * F.normalize(cond, dim=-1)[:, None, None]).sum(-1)
        best = score.argmax(-1)
        return torch.gather(sampled, 2, best[..., None, None].expand(-1, -1, 1, sampled.shape[-1]))[:, :, 0]

    def render(self, embeddings: torch.Tensor, guidance: float | None = None, steps: int | None = None,
               seed: int = 0) -> np.ndarray:
        """Decode structure embeddings (m, d) into uint8 crops (m, S, S)."""
        cfg = self.config
        guidance = cfg.guidance if guidance is None else guidance
        steps = cfg.sample_steps if steps is None else steps
        decoder = self.decoder.config
        scheduler = sampling_scheduler(training_scheduler(decoder.timesteps, decoder.prediction_type), cfg.scheduler,
                                       clip=IMAGE_RANGE)
        generator = torch.Generator().manual_seed(seed)
        shape = (1, self.image_px, self.image_px)
        chunks = [guided_sample(self.decoder, scheduler, chunk, shape, guidance, steps, generator, self.device)
                  for chunk in embeddings.split(RENDER_BATCH)]
        return to_uint8(torch.cat(chunks))

    def generate(self, conditions: pd.DataFrame, n: int = 8, guidance: float | None = None,
                 steps: int | None = None, prior_guidance: float | None = None, seed: int = 0) -> np.ndarray:
        """`n` generated crops per condition row, uint8 (rows, n, S, S); `guidance`/`steps` for the decoder,
        `prior_guidance` for the prior (defaults: the trained config's)."""
        cond = self.condition_embeddings(conditions)
        structures = self.structure_embeddings(cond, n, prior_guidance, seed)
        images = self.render(structures.reshape(-1, structures.shape[-1]), guidance, steps, seed + 1)
        return images.reshape(len(cond), n, self.image_px, self.image_px)
