"""Filters, observation operators and readers, bias correction, and the comparison operators."""
