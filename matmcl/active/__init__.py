"""Uncertainty-driven active learning with the virtual lab (docs/active_learning.md): a Gaussian-process surrogate
from conditions to the five properties in both directions, batch acquisition over valid set-points, the closed-loop
benchmark against random and Latin-hypercube choice, and `matmcl suggest` for a real lab."""
