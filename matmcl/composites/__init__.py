"""Nanofiber-reinforced composites: multi-stage learning (S → FP → CP), its ablations and virtual-lab screening
(docs/composites.md)."""
