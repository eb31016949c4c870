"""Pixel-uniform analysis increments (namelist ``assimilation.increment_grid``).

Coarse observations (36 km TB) constrain only the pixel means of the 1 km state; the within-pixel part of
an ensemble filter's increment follows the ensemble's within-pixel spread, which may or may not match the error
(default twin, M36: gain fraction 0.842 -> 0.867 with seed 42, 0.858 -> 0.859 with 43, 0.872 -> 0.851 with 44:
no robust gain, the within-pixel increments help at two seeds of three). With an increment grid, each member's
increment of each analysed variable, x_a - x_b, is replaced after the analysis by its mean over the land cells
of the member's pixel of that nested EASE-Grid 2.0 grid (equal-area cells: the plain mean is the area mean),
then clipped to the variable's bounds, so only the pixel means change (except where the bounds clip).

The decomposition (:mod:`smda.run.decomp`) deals out whole 36 km pixels, and every M09/M03 pixel lies in
one of them: each pixel's cells sit on one rank, in the same (pixel-major, row-major) order for any rank
count, so the sums below are bit-identical for any number of ranks without communication.
"""

from __future__ import annotations

import numpy as np

from smda.jit import kernel
from smda.model.grid import GRIDS


@kernel
def uniform_increments(X, Xb, group, count, sums, lo, hi):
    """X <- clip(Xb + pixel mean of (X - Xb)) in place; returns the number of clipped values.

    X, Xb : (n, k, N) analysis and background (cells, variables, members); group : (n,) int64 pixel
    (0..G-1) of each cell; count : (G,) its cells; sums : (G, k, N) scratch; lo, hi : (n, k) bounds.
    Each pixel's sum runs over its cells in the order of X.
    """
    n, k, m = X.shape
    sums[...] = 0.0
    for i in range(n):
        g = group[i]
        for v in range(k):
            for j in range(m):
                sums[g, v, j] += X[i, v, j] - Xb[i, v, j]
    clipped = 0
    for i in range(n):
        g = group[i]
        for v in range(k):
            for j in range(m):
                x = Xb[i, v, j] + sums[g, v, j] / count[g]
                if x < lo[i, v]:
                    x = lo[i, v]
                    clipped += 1
                elif x > hi[i, v]:
                    x = hi[i, v]
                    clipped += 1
                X[i, v, j] = x
    return clipped


class PixelIncrements:
    """The buffers of :func:`uniform_increments` for one rank's cells, allocated once.

    pixel : (n,) the pixel of each local cell (any integer labels, e.g. ``Domain.pixel_index(grid)``);
    n_vars, n_members : the shape of the analysed block.
    """

    def __init__(self, pixel, n_vars: int, n_members: int):
        _, group = np.unique(np.asarray(pixel), return_inverse=True)
        self.group = group.ravel().astype(np.int64)
        self.count = np.bincount(self.group).astype(np.float64)
        self.sums = np.zeros((self.count.size, n_vars, n_members))
        self.background = np.zeros((self.group.size, n_vars, n_members))

    def keep(self, X):
        """Copy the background X (n, k, N) before the analysis."""
        np.copyto(self.background, X)

    def apply(self, X, lo, hi) -> int:
        """Make the increment of the analysis X (n, k, N; in place) uniform in each pixel, within bounds
        lo, hi (n, k); the number of clipped values."""
        return int(uniform_increments(X, self.background, self.group, self.count, self.sums, lo, hi))


def footprint_km(footprint, fov_km) -> np.ndarray:
    """Size (km) of observation footprints: the pixel side of a grid footprint (M01..M36), twice the field-of-view
    radius of a Gaussian one."""
    footprint = np.asarray(footprint)
    size = 2.0 * np.asarray(fov_km, np.float64)
    for name, g in GRIDS.items():
        size = np.where(footprint == name, g.cell_m / 1000.0, size)
    return size


def finer_than(footprint, fov_km, grid: str) -> np.ndarray:
    """Which footprints are finer than the pixels of ``grid`` (their information would be averaged away)."""
    return footprint_km(footprint, fov_km) < GRIDS[grid].cell_m / 1000.0 * (1.0 - 1e-9)
