"""Structure-guided pre-training (SGPT): align condition and image embeddings to the fused embedding.

Adam, linear warm-up over the first `warmup_fraction` of the steps then linear decay to zero, grad-norm clipping.
A checkpoint (model, optimizer, scheduler, torch RNG states, finished epochs, history) is written atomically every
`checkpoint_every` epochs and at the end, into a folder beside the model's (models/.sgpt_checkpoint); a later call
with the same config and data resumes from it and ends with the same weights as an uninterrupted run. The model
folder (weights, configs, lineage.json) is written to a temporary sibling and swapped in whole at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from matmcl.artifacts import SGPT_DIR
from matmcl.atomic import atomic_dir, atomic_path, write_json
from matmcl.codebase import code_version
from matmcl.lineage import DATA, Lineage, check_lineage, data_version, fingerprint, params_hash, write_lineage
from matmcl.models.contrastive import multimodal_nt_xent
from matmcl.models.serialization import config_from_dict
from matmcl.models.sgpt import IMAGE, TABLE, SGPTModel, build_sgpt
from matmcl.schema import FILM_ID
from matmcl.training.config import CLIP_OBJECTIVE, PretrainConfig, resolve_device
from matmcl.training.data import PatchBank, PretrainBatches, ProcessedData, RowPatches

log = logging.getLogger(__name__)
VALIDATION_DRAW = 2**31 - 1  # the "epoch" whose patch draw and order the validation loss always uses

CHECKPOINT_FILE = "last.pt"
CHECKPOINT_SUFFIX = "_checkpoint"  # default checkpoint folder: `.<model folder name>_checkpoint` beside it
PRETRAIN_CONFIG_FILE = "pretrain_config.json"  # beside config.json/model.pt: image size and training settings

EpochCallback = Callable[[dict[str, float]], None]


@dataclass
class PretrainResult:
    """The pre-trained model (eval mode, on CPU), one history entry per epoch (losses, lr, seconds) and the
    lineage written into its folder."""

    model: SGPTModel
    history: list[dict[str, float]]
    lineage: Lineage


def warmup_linear_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float) -> LambdaLR:
    """Learning-rate factor rising linearly to 1 over the warm-up steps, then falling linearly to 0 at the end."""
    warmup = max(1, round(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return LambdaLR(optimizer, factor)


def _fingerprint(config: PretrainConfig, pairs: RowPatches) -> str:
    """Hash of the config and the training data: a checkpoint is resumed only when both are unchanged."""
    digest = hashlib.sha256(repr(dataclasses.asdict(config)).encode())
    for tensor in (pairs.inputs, pairs.row, pairs.patch, pairs.pixels):
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())  # RNG states are CPU byte tensors, whatever map_location did
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _save_checkpoint(path: Path, **state: Any) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, fingerprint: str, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint at `path` if it was written for this config and data, else None (with a warning)."""
    if not path.exists():
        return None
    state = torch.load(path, map_location=device, weights_only=True)
    if state.get("fingerprint") != fingerprint:
        log.warning("%s was written for other settings or data; pre-training starts afresh", path)
        return None
    log.info("resuming pre-training from %s after epoch %d", path, state["epoch"])
    return state


def train_epoch(model: SGPTModel, batches: PretrainBatches, optimizer: torch.optim.Optimizer, scheduler: LambdaLR,
                config: PretrainConfig, epoch: int, device: torch.device) -> dict[str, float]:
    """One pass over the rows; returns the sample-weighted mean total and per-modality losses."""
    model.train()
    sums: dict[str, float] = {}
    n_seen = 0
    for batch in batches.epoch(config.seed, epoch):
        batch = {k: v.to(device) for k, v in batch.items()}
        embeddings = model(batch)
        if config.objective == CLIP_OBJECTIVE:  # ablation: table <-> image directly, no fusion encoder in the loss
            embeddings = {TABLE: embeddings[TABLE], IMAGE: embeddings[IMAGE]}
            total, per_modality = multimodal_nt_xent(embeddings, anchor=IMAGE, temperature=config.temperature)
        else:
            total, per_modality = multimodal_nt_xent(embeddings, temperature=config.temperature)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        n = len(batch["table"])
        n_seen += n
        for name, value in {"loss": total, **{f"loss_{k}": v for k, v in per_modality.items()}}.items():
            sums[name] = sums.get(name, 0.0) + value.item() * n
    return {name: value / n_seen for name, value in sums.items()}


def _objective_loss(model: SGPTModel, batch: dict[str, torch.Tensor], config: PretrainConfig) -> torch.Tensor:
    embeddings = model(batch)
    if config.objective == CLIP_OBJECTIVE:
        return multimodal_nt_xent({TABLE: embeddings[TABLE], IMAGE: embeddings[IMAGE]}, anchor=IMAGE,
                                  temperature=config.temperature)[0]
    return multimodal_nt_xent(embeddings, temperature=config.temperature)[0]


@torch.no_grad()
def validation_loss(model: SGPTModel, batches: PretrainBatches, config: PretrainConfig, device: torch.device
                    ) -> float:
    """Sample-weighted contrastive loss (eval mode) on held-out rows, with a fixed patch draw and batch order (so
    epochs are comparable). The protocol uses it on each fold's inner-validation films to size the schedule."""
    model.eval()
    total, n_seen = 0.0, 0
    for batch in batches.epoch(config.seed, VALIDATION_DRAW):
        batch = {k: v.to(device) for k, v in batch.items()}
        n = len(batch["table"])
        if n < 2:
            continue
        total += _objective_loss(model, batch, config).item() * n
        n_seen += n
    return total / max(n_seen, 1)


def train_sgpt(data: ProcessedData, rows: pd.DataFrame, config: PretrainConfig, bank: PatchBank | None = None,
               checkpoint: Path | None = None, progress: bool = True, on_epoch_end: EpochCallback | None = None,
               desc: str = "SGPT pre-training", val_rows: pd.DataFrame | None = None
               ) -> tuple[SGPTModel, list[dict[str, float]]]:
    """Pre-train SGPT on the film x direction `rows` (with `data.scaler`) in memory; returns the model (eval, CPU)
    and the history. `bank`: patches already in memory (any superset of the rows' films; default: read them).
    With `checkpoint`, resume from / save to that file (see `pretrain`). Used by `pretrain` and, once per fold,
    by the cross-validation protocol (matmcl.training.cv). `val_rows`: held-out rows (e.g. a fold's inner-validation
    films) whose contrastive loss is added to each history entry as `val_loss` (no gradient, nothing chosen on it)."""
    device = resolve_device(config.device)
    pairs = RowPatches.from_bank(rows, data.scaler, bank if bank is not None else data.patches(rows))
    groups = rows[FILM_ID].factorize()[0] if config.pair_directions else None
    batches = PretrainBatches(pairs, config.image_size, config.batch_size, groups)
    val_batches = None
    if val_rows is not None and len(val_rows) >= 2:
        val_pairs = RowPatches.from_bank(val_rows, data.scaler, bank if bank is not None else data.patches(val_rows))
        val_groups = val_rows[FILM_ID].factorize()[0] if config.pair_directions else None
        val_batches = PretrainBatches(val_pairs, config.image_size, config.batch_size, val_groups)

    torch.manual_seed(config.seed)
    model = build_sgpt(config.sgpt_config()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = warmup_linear_decay(optimizer, config.epochs * len(batches), config.warmup_fraction)
    history: list[dict[str, float]] = []
    start = 0
    fingerprint = _fingerprint(config, pairs) if checkpoint is not None else ""
    state = _load_checkpoint(checkpoint, fingerprint, device) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        history, start = state["history"], state["epoch"]

    bar = tqdm(range(start, config.epochs), desc=desc, unit="epoch", disable=not progress,
               initial=start, total=config.epochs)
    for epoch in bar:
        began = time.perf_counter()
        losses = train_epoch(model, batches, optimizer, scheduler, config, epoch, device)
        entry = {"epoch": epoch + 1, **losses, "lr": scheduler.get_last_lr()[0],
                 "seconds": time.perf_counter() - began}
        if val_batches is not None:
            entry["val_loss"] = validation_loss(model, val_batches, config, device)
        history.append(entry)
        bar.set_postfix(loss=f"{losses['loss']:.3f}")
        if checkpoint is not None and ((epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs):
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            _save_checkpoint(checkpoint, model=model.state_dict(), optimizer=optimizer.state_dict(),
                             scheduler=scheduler.state_dict(), rng=_rng_state(), epoch=epoch + 1, history=history,
                             fingerprint=fingerprint)
        if on_epoch_end is not None:
            on_epoch_end(entry)
    return model.cpu().eval(), history


def pretrain(
    processed_dir: str | Path,
    config: PretrainConfig,
    out_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    on_epoch_end: EpochCallback | None = None,
) -> PretrainResult:
    """Pre-train SGPT on the films of `config.splits` and swap the final model folder in at `out_dir`
    (save_pretrained, the config, lineage.json).

    Checkpoints go to `checkpoint_dir` (default: the sibling `.<out_dir name>_checkpoint`); `on_epoch_end` receives
    each new epoch's history entry (e.g. to log it to MLflow).
    """
    out_dir = Path(out_dir)
    checkpoint = Path(checkpoint_dir or out_dir.with_name(f".{out_dir.name}{CHECKPOINT_SUFFIX}")) / CHECKPOINT_FILE
    lineage = Lineage.of({DATA: data_version(processed_dir)}, params_hash({"pretrain": config}), code_version(__name__))
    data = ProcessedData.load(processed_dir)
    rows = data.rows(config.splits)
    model, history = train_sgpt(data, rows, config, checkpoint=checkpoint, progress=progress,
                                on_epoch_end=on_epoch_end)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        write_json(dataclasses.asdict(config), tmp / PRETRAIN_CONFIG_FILE)
        lineage = write_lineage(tmp, lineage)
    return PretrainResult(model, history, lineage)


def load_sgpt(directory: str | Path) -> tuple[SGPTModel, PretrainConfig]:
    """A model folder written by `pretrain`: the model (eval mode, CPU) and the config it was trained with."""
    directory = Path(directory)
    path = directory / PRETRAIN_CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; expected a folder written by matmcl.training.pretrain")
    return SGPTModel.from_pretrained(directory), config_from_dict(PretrainConfig, json.loads(path.read_text()))


def check_sgpt(sgpt_dir: str | Path, processed_dir: str | Path) -> dict[str, str]:
    """Refuse (LineageError) an SGPT folder trained on other data than `processed_dir` holds; return what its
    dependents were made from: {"data": data version, "sgpt": the SGPT folder's fingerprint}."""
    version = data_version(processed_dir)
    check_lineage(sgpt_dir, {DATA: version}, "pretrain")
    return {DATA: version, SGPT_DIR: fingerprint(sgpt_dir)}
