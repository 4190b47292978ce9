"""Continuum scale: the fiber network of an SEM frame and its effective mechanics (docs/multiscale.md)."""
