"""Observations: the canonical table, product readers, quality control, bias correction, synthetic
observations and the footprint observation operator."""
