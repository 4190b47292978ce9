"""Multimodal NT-Xent loss of SGPT: every unimodal embedding is pulled towards the fused embedding of its sample."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

DEFAULT_TEMPERATURE = 0.1  # the paper's τ


def nt_xent(u: torch.Tensor, f: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """NT-Xent (SimCLR) over the 2B embeddings [u; f], both (B, D) and already L2-normalised.

    Row i of u and row i of f are positives; each of the 2B embeddings is contrasted with the other 2B − 2 as
    negatives (itself excluded). Returns the mean over the 2B cross-entropy terms.
    """
    if u.shape != f.shape:
        raise ValueError(f"embedding shapes differ: {tuple(u.shape)} vs {tuple(f.shape)}")
    batch = len(u)
    z = torch.cat([u, f])
    logits = (z @ z.T) / temperature
    self_mask = torch.eye(2 * batch, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    index = torch.arange(batch, device=z.device)
    positives = torch.cat([index + batch, index])
    return F.cross_entropy(logits, positives)


def multimodal_nt_xent(
    embeddings: Mapping[str, torch.Tensor], anchor: str = "fused", temperature: float = DEFAULT_TEMPERATURE
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum over unimodal modalities of NT-Xent(modality, anchor); returns (total, per-modality losses).

    `embeddings` maps modality name → (B, D) L2-normalised embeddings and must contain `anchor` and at least one
    other modality. There is no direct term between two unimodal modalities.
    """
    if anchor not in embeddings:
        raise KeyError(f"anchor {anchor!r} missing from embeddings {sorted(embeddings)}")
    per_modality = {
        name: nt_xent(z, embeddings[anchor], temperature) for name, z in embeddings.items() if name != anchor
    }
    if not per_modality:
        raise ValueError(f"no unimodal embeddings next to the anchor {anchor!r}")
    return torch.stack(list(per_modality.values())).sum(), per_modality
