"""Inverse design: a structure proxy (conditions → orientation order, diameter, pore size), gradient optimisation
of the conditions for structure or property targets, and verification of designs in the virtual lab
(docs/design.md)."""
