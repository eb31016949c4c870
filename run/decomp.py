"""Domain decomposition: blocks of whole coarse pixels balanced by land-cell count.

The domain's 36 km pixels (:meth:`smda.model.grid.Domain.pixel_index`) are taken in row-major order
and cut into ``n_ranks`` contiguous runs of nearly equal land-cell count (prefix sums). Each rank
holds all members of the land cells of its pixels, ordered pixel-major: pixel by pixel in row-major
pixel order, row-major inside a pixel. That order makes every pixel's cells a contiguous slice, so
per-pixel partial sums can be formed on any rank and added in pixel order, which keeps results
independent of the number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smda.model.grid import Domain

GRID = "M36"  # the decomposition pixels


@dataclass(frozen=True)
class Decomposition:
    """rank_of_pixel: (n_pixels,) owner of each pixel (row-major); pixel: (n_cells,) the pixel of every
    domain cell; land: (n_cells,) bool."""

    rank_of_pixel: np.ndarray
    pixel: np.ndarray
    land: np.ndarray

    @property
    def n_ranks(self) -> int:
        return int(self.rank_of_pixel.max()) + 1

    def cells(self, rank: int) -> np.ndarray:
        """Local (row-major domain) indices of the land cells of ``rank``, pixel-major (int64)."""
        return self._order()[self._owner()[self._order()] == rank]

    def _owner(self) -> np.ndarray:
        return self.rank_of_pixel[self.pixel]

    def _order(self) -> np.ndarray:
        """All land cells, pixel-major."""
        land = np.flatnonzero(self.land)
        return land[np.argsort(self.pixel[land], kind="stable")]

    def pixel_slices(self, rank: int):
        """(pixel index, start, stop) of each pixel's contiguous run in ``cells(rank)``."""
        pix = self.pixel[self.cells(rank)]
        if pix.size == 0:
            return []
        starts = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
        stops = np.r_[starts[1:], pix.size]
        return [(int(pix[s]), int(s), int(e)) for s, e in zip(starts, stops, strict=True)]


def decompose(domain: Domain, n_ranks: int) -> Decomposition:
    """Split the domain's pixels among ``n_ranks`` ranks, balancing land cells."""
    pixel = domain.pixel_index(GRID)
    land = domain.land.ravel()
    nr, nc = domain.coarse_shape(GRID)
    counts = np.bincount(pixel[land], minlength=nr * nc)
    n_land_pixels = int(np.count_nonzero(counts))
    if n_ranks < 1:
        raise ValueError("need at least one rank")
    if n_ranks > n_land_pixels:
        raise ValueError(f"{n_ranks} ranks but only {n_land_pixels} coarse pixels with land: "
                         f"use at most {n_land_pixels} ranks or a larger domain")
    total = counts.sum()
    # the rank of a pixel: which 1/n share of the land its midpoint falls in
    mid = np.cumsum(counts) - 0.5 * counts
    rank = np.minimum((mid * n_ranks // total).astype(np.int64), n_ranks - 1)
    # guarantee every rank at least one land pixel (possible when land is very uneven)
    land_pix = np.flatnonzero(counts)
    if np.unique(rank[land_pix]).size < n_ranks:
        rank[land_pix] = np.arange(land_pix.size) * n_ranks // land_pix.size
    # land-free pixels follow their predecessor so that runs stay contiguous
    for i in range(1, rank.size):
        if counts[i] == 0:
            rank[i] = rank[i - 1]
    return Decomposition(rank, pixel, land)
