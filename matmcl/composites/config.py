"""Typed parameters of the composite stage (params.yaml section `composite`)."""

from __future__ import annotations

from dataclasses import dataclass

VARIANTS = ("CP", "FP+CP", "S+CP", "S+FP+CP", "S+FP+CP_no_lrd", "gbm_conditions", "physics_linear")
BASELINE = "CP"
MSL = "S+FP+CP"


@dataclass(frozen=True)
class CompositeConfig:
    """Multi-stage learning on the composites, its ablations and the screening.

    Model: the SGPT table encoder + projector (S) with a multi-task head `hidden_dims`/`dropout`.
    FP: the whole model fine-tuned on the nanofiber table (Adam `fp_lr`, batches of `fp_batch_size`, early stopping
    with `fp_patience` on the validation films), on films that no composite was made from (so no test composite's
    film is ever seen). CP: fine-tuned on the composite rows, full batch, Adam `cp_lr`, linear warm-up
    (`cp_warmup_fraction` of `cp_max_epochs`) then linear decay, per epoch; layer-wise learning-rate decay gives layer
    i of L (input → output) `cp_lr · decay^(L−1−i)`. The decay is chosen from `layer_decay_grid` (empty: `layer_decay`)
    and the epoch count by early stopping (`cp_patience`) on an inner validation share (`inner_fraction`) of each
    training fold's composites; the model is then refit on the whole training fold for that many epochs.
    Protocol: `repeats` × `folds` grouped folds (a film's composites stay together), `workers` folds at a time in
    forked processes (the results do not depend on it). Screening: `screen_candidates`
    random valid conditions, the `screen_top` most anisotropic and `screen_random` random ones verified in the
    virtual lab with `screen_fabrications` independent films and composites each.
    """

    hidden_dims: tuple[int, ...] = (128, 128)
    dropout: float = 0.1
    weight_decay: float = 1e-4
    fp_lr: float = 5e-4
    fp_batch_size: int = 32
    fp_max_epochs: int = 150
    fp_patience: int = 15
    cp_lr: float = 1e-3
    cp_max_epochs: int = 200
    cp_patience: int = 30
    cp_warmup_fraction: float = 0.1
    layer_decay: float = 0.8
    layer_decay_grid: tuple[float, ...] = (0.65, 0.8)
    inner_fraction: float = 0.25
    folds: int = 5
    repeats: int = 5
    seed: int = 0
    variants: tuple[str, ...] = VARIANTS
    gbm_max_iter: int = 200
    gbm_learning_rate: float = 0.05
    gbm_max_leaf_nodes: int = 7
    gbm_min_samples_leaf: int = 5
    ridge_alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    screen_candidates: int = 10000
    screen_top: int = 3
    screen_random: int = 2
    screen_fabrications: int = 3
    parity_band_mpa: float = 5.0
    device: str = "cpu"
    workers: int = 2

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"composite.variants: unknown {unknown}; known: {list(VARIANTS)}")
        if BASELINE not in self.variants:
            raise ValueError(f"composite.variants must include {BASELINE!r} (the paired comparisons' reference)")
        for decay in (self.layer_decay, *self.layer_decay_grid):
            if not 0 < decay <= 1:
                raise ValueError(f"composite layer decay must be in (0, 1], got {decay}")
        if self.folds < 2 or self.repeats < 1:
            raise ValueError("composite.folds must be >= 2 and repeats >= 1")
        if self.workers < 1:
            raise ValueError(f"composite.workers must be >= 1, got {self.workers}")
        if not 0 < self.inner_fraction < 1:
            raise ValueError(f"composite.inner_fraction must be in (0, 1), got {self.inner_fraction}")

    @property
    def decays(self) -> tuple[float, ...]:
        """The layer-decay candidates searched on inner validation."""
        return self.layer_decay_grid or (self.layer_decay,)
