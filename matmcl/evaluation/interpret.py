"""Interpretability (paper Supp. S7–S12): SHAP values of the six conditions for the conditions model, and Grad-CAM
on the vision encoder.

- SHAP (`shap` library, exact permutation over the 6 conditions with an independent masker on training rows):
  per property and direction, of the served `matmcl_conditions` model in physical units; plus the modulus
  anisotropy log(E_L / E_T) as a function of the conditions, which the virtual lab's physics ties to drum speed
  (fiber alignment) — `physics_checks` reports whether drum speed dominates it.
- Grad-CAM (torch hooks, no extra library) on the last residual stage of the image encoder: the gradient of the
  cosine similarity between a patch's image embedding and its film's condition embedding (the SGPT objective),
  i.e. which regions the encoder uses to recognise its conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from matmcl.evaluation.plots import DPI, PANEL_INCHES, panel_grid, save_figure, split_unit
from matmcl.schema import CONDITION_COLUMNS, PROPERTY_COLUMNS

DRUM_SPEED = "drum_speed_rpm"
ELASTIC = "elastic_modulus_mpa"
DIRECTIONS = {"L": 1, "T": 0}

Predict = Callable[[np.ndarray], np.ndarray]  # standardized conditions (n, 6) + direction flag → (n, 5) physical


def shap_values(predict: Predict, background: np.ndarray, explain: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """SHAP values (exact, 6 features) of every property per direction and of the elastic-modulus anisotropy.

    `predict(x7)` maps model inputs (six standardized conditions + direction) to (n, 5) properties. Returns
    {"<prop>/<L|T>": (n_explain, 6) array, ..., "anisotropy": (n_explain, 6)}."""
    import shap

    def with_direction(flag: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x6: predict(np.column_stack([x6, np.full(len(x6), flag)]).astype(np.float32))

    masker = shap.maskers.Independent(background, max_samples=len(background))
    out: dict[str, Any] = {}
    for name, flag in DIRECTIONS.items():
        f = with_direction(flag)
        values = shap.Explainer(f, masker, algorithm="exact", seed=seed)(explain).values  # (n, 6, 5)
        for j, prop in enumerate(PROPERTY_COLUMNS):
            out[f"{prop}/{name}"] = values[:, :, j]
    j = PROPERTY_COLUMNS.index(ELASTIC)
    lon, tra = with_direction(1), with_direction(0)

    def anisotropy(x6: np.ndarray) -> np.ndarray:
        return np.log(np.clip(lon(x6)[:, j], 1e-6, None)) - np.log(np.clip(tra(x6)[:, j], 1e-6, None))

    out["anisotropy"] = shap.Explainer(anisotropy, masker, algorithm="exact", seed=seed)(explain).values
    return out


def mean_abs(values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean |SHAP| per condition for every explained target."""
    return {key: dict(zip(CONDITION_COLUMNS, np.abs(v).mean(axis=0).tolist())) for key, v in values.items()}


def physics_checks(importance: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Checks against the virtual lab's physics: drum speed (fiber alignment) must dominate the modulus
    anisotropy."""
    ranking = sorted(importance["anisotropy"], key=importance["anisotropy"].get, reverse=True)
    return {"modulus_anisotropy_ranking": ranking, "drum_speed_dominates_modulus_anisotropy": ranking[0] == DRUM_SPEED}


def plot_shap_summary(values: dict[str, np.ndarray], explain: np.ndarray, path: str | Path) -> Path:
    """Beeswarm-style summary per property and direction: SHAP value per condition (rows), coloured by the
    condition's standardized value; conditions ordered by mean |SHAP| in each panel."""
    keys = [k for k in values if k != "anisotropy"] + ["anisotropy"]
    fig, axes = panel_grid(len(keys), len(PROPERTY_COLUMNS))
    rng = np.random.default_rng(0)
    for ax, key in zip(axes, keys, strict=True):
        v = values[key]
        order = np.argsort(np.abs(v).mean(axis=0))
        for row, c in enumerate(order):
            jitter = rng.uniform(-0.25, 0.25, len(v))
            ax.scatter(v[:, c], row + jitter, c=explain[:, c], cmap="coolwarm", s=6, vmin=-2, vmax=2)
        ax.set_yticks(range(len(order)), [split_unit(CONDITION_COLUMNS[c])[0] for c in order], fontsize="x-small")
        ax.axvline(0, color="k", linewidth=0.6)
        title = "log(E_L / E_T)" if key == "anisotropy" else f"{split_unit(key.split('/')[0])[0]} ({key[-1]})"
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("SHAP value", fontsize="x-small")
    return save_figure(fig, path)


class GradCAM:
    """Grad-CAM on a module's output feature maps (forward and backward hooks)."""

    def __init__(self, layer: torch.nn.Module) -> None:
        self.activations: torch.Tensor | None = None
        self.gradients: torch.Tensor | None = None
        self._handles = [layer.register_forward_hook(self._keep), layer.register_full_backward_hook(self._grad)]

    def _keep(self, module, inputs, output) -> None:
        self.activations = output

    def _grad(self, module, grad_in, grad_out) -> None:
        self.gradients = grad_out[0]

    def __call__(self, score: Callable[[], torch.Tensor], size: int) -> np.ndarray:
        """Heat maps (n, size, size) in [0, 1] of `score()` (one scalar per sample, summed for backward)."""
        value = score()
        value.sum().backward()
        weights = self.gradients.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * self.activations).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
        cam = cam - cam.flatten(1).min(1).values[:, None, None]
        cam = cam / cam.flatten(1).max(1).values.clamp(min=1e-12)[:, None, None]
        return cam.detach().numpy()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def grad_cam_alignment(model, table: torch.Tensor, images: torch.Tensor) -> np.ndarray:
    """Grad-CAM of cos(image embedding, condition embedding) w.r.t. the image encoder's last residual stage."""
    encoder = model.encoders["image"]
    layer = encoder.backbone.stages[-1]
    cam = GradCAM(layer)
    model.eval()
    images = images.clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            maps = cam(lambda: (model.embed_image(images) * model.embed_table(table).detach()).sum(-1),
                       images.shape[-1])
    finally:
        cam.close()
        model.zero_grad(set_to_none=True)
    return maps


def plot_grad_cam(images: np.ndarray, maps: np.ndarray, labels: Sequence[str], path: str | Path) -> Path:
    """A grid of patches with their Grad-CAM maps overlaid."""
    n = len(images)
    fig = Figure(figsize=(PANEL_INCHES * min(n, 4) * 0.7, PANEL_INCHES * 0.75 * int(np.ceil(n / 4))),
                 layout="constrained")
    axes = fig.subplots(int(np.ceil(n / 4)), min(n, 4), squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax, image, cam, label in zip(axes, images, maps, labels, strict=False):
        ax.imshow(image, cmap="gray")
        ax.imshow(cam, cmap="jet", alpha=0.4)
        ax.set_title(label, fontsize="x-small")
        ax.axis("off")
    return save_figure(fig, path)


__all__ = ["DPI", "GradCAM", "grad_cam_alignment", "mean_abs", "physics_checks", "plot_grad_cam",
           "plot_shap_summary", "shap_values"]
