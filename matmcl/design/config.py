"""Typed parameters of the design stage (params.yaml section `design`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DesignConfig:
    """Structure proxy, optimiser, and the size of the virtual-lab verification (docs/design.md)."""

    # Structure proxy: an ensemble of small MLPs on standardized conditions.
    ensemble: int = 5
    hidden_dims: tuple[int, ...] = (64, 64)
    epochs: int = 600
    lr: float = 0.01
    weight_decay: float = 1e-4
    # Optimiser (paper: Adam, lr 0.1, 120 steps) with multi-start.
    steps: int = 120
    opt_lr: float = 0.1
    starts: int = 16
    spread_penalty: float = 0.5
    # Paper example (structure target) and the property variant's targets.
    paper_target: tuple[float, float, float] = (0.75, 150.0, 0.48)
    property_columns: tuple[str, ...] = ("fracture_strength_mpa",)
    property_direction: str = "longitudinal"
    property_fixed: tuple[str, ...] = ("temperature_c", "humidity_pct")
    # Verification in the virtual lab.
    n_targets: int = 50
    n_property_targets: int = 20
    frames_per_design: int = 1
    frame_width_px: int = 0  # 0: synth.frame_width_px
    frame_height_px: int = 0  # 0: synth.frame_height_px
    film_effects: bool = False
    n_fabrications: int = 2
    tolerance: float = 0.10
    seed: int = 1
