"""The served conditions-only property model (SGPT table encoder → `matmcl_conditions` head) as a differentiable
function of standardized conditions, for property-driven design."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from matmcl.artifacts import HEADS_DIR, SGPT_DIR
from matmcl.lineage import fingerprint
from matmcl.predict import CONDITIONS_MODEL
from matmcl.schema import DIRECTION_FLAGS
from matmcl.training.properties import load_head
from matmcl.training.pretrain import check_sgpt, load_sgpt

HEAD = f"{HEADS_DIR}/{CONDITIONS_MODEL}"  # lineage key of the head's fingerprint


def property_sources(models_dir: str | Path, processed_dir: str | Path) -> dict[str, str]:
    """Data version, SGPT and conditions-head fingerprints (LineageError when SGPT was trained on other data)."""
    sources = check_sgpt(Path(models_dir) / SGPT_DIR, processed_dir)
    return {**sources, HEAD: fingerprint(Path(models_dir) / HEADS_DIR / CONDITIONS_MODEL)}


def load_property_model(models_dir: str | Path, processed_dir: str | Path, direction: str
                        ) -> Callable[[torch.Tensor], torch.Tensor]:
    """u (..., 6) standardized conditions → (..., 5) properties in physical units for tensile `direction`
    ("longitudinal" or "transverse"); refuses (LineageError) a head made from other data or another SGPT model."""
    if direction not in DIRECTION_FLAGS:
        raise ValueError(f"direction must be one of {list(DIRECTION_FLAGS)}, got {direction!r}")
    models_dir = Path(models_dir)
    sources = check_sgpt(models_dir / SGPT_DIR, processed_dir)
    sgpt, _ = load_sgpt(models_dir / SGPT_DIR)
    head, targets = load_head(models_dir / HEADS_DIR / CONDITIONS_MODEL, sources)
    for module in (sgpt, head):
        module.eval().requires_grad_(False)
    mean, scale = (torch.as_tensor(v, dtype=torch.float32) for v in (targets.mean, targets.scale))
    flag = float(DIRECTION_FLAGS[direction])

    def predict(u: torch.Tensor) -> torch.Tensor:
        x = torch.cat([u, u.new_full((*u.shape[:-1], 1), flag)], dim=-1)
        return head(sgpt.embed_table(x)) * scale + mean

    return predict
