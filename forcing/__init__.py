"""Meteorological forcing: readers, regridding, time interpolation, synthetic weather, perturbations."""
