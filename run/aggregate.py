"""Footprint aggregation across MPI ranks with results independent of the domain split.

Each rank builds one :class:`smda.assimilation.observations.operator.FootprintOperator` per coarse decomposition
pixel it owns (its cells are pixel-major, so a pixel is a contiguous slice), from the observations whose
footprint can reach the pixel (:func:`~smda.assimilation.observations.operator.footprint_extent`), so the
construction costs in proportion to the footprints, not to (pixels x observations) or the domain. Partial
sums are formed per (pixel, observation), gathered on every rank and added in increasing pixel order starting
from zero. Any number of ranks thus adds the same terms in the same order: bit-identical model equivalents for
1 or N ranks, for box, Gaussian and non-nested (25 km) footprints alike.

The field to aggregate may be given block by block (:meth:`PixelAggregator.block_sums`): a function evaluates it
on consecutive runs of whole pixels of about :data:`BLOCK_BYTES`, so the (n_local, k) field of an ensemble (the
1 km TB of every member) is never held whole; the terms, and so the bits, are those of the whole field.
"""

from __future__ import annotations

import weakref

import numpy as np

from smda.assimilation.observations.operator import FootprintOperator, finish, footprint_extent, geometry_columns
from smda.model.grid import NEST

_SLICES: dict = {}  # (id(decomposition), rank) -> (weak reference, pixel slices): fixed for a run
# float64 field rows evaluated at a time by block_sums (whole pixels, at least one): 2 MiB keeps a block in cache;
# the operator's equivalents of 8e4 cells x 32 members take 0.13 s in 2 MiB blocks, 0.19 s as one block
BLOCK_BYTES = 2 * 2**20


def pixel_slices(exp):
    """``exp.dec.pixel_slices(exp.rank)``, computed once per decomposition (a sort of the domain's cells)."""
    key = (id(exp.dec), exp.rank)
    hit = _SLICES.get(key)
    if hit is None or hit[0]() is not exp.dec:
        hit = _SLICES[key] = (weakref.ref(exp.dec), exp.dec.pixel_slices(exp.rank))
    return hit[1]


class _Rows:
    """Columns x, y, footprint, row, col of a subset of an observation geometry (what build reads)."""

    def __init__(self, geo, idx):
        for k in ("x", "y", "footprint", "row", "col"):
            setattr(self, k, geo[k][idx])


class PixelAggregator:
    """Aggregates (n_local, k) fields to ``n_obs`` footprints; see the module docstring."""

    def __init__(self, geometry, exp, *, kind="box", fov_km=20.0):
        self.comm = exp.comm
        self.parts = []
        geo = geometry_columns(geometry)
        self.n_obs = len(geo["x"])
        fov = np.broadcast_to(np.asarray(fov_km, float), (self.n_obs,))
        slices = pixel_slices(exp)
        self.n_local = exp.cells.size
        self.pixel_stops = [b for _, _, b in slices]  # the end of each pixel's rows
        cand = self._candidates(geometry, exp.domain, kind, fov, [pix for pix, _, _ in slices])
        for (pix, a, b), obs in zip(slices, cand, strict=True):
            if obs.size == 0:
                continue
            op = FootprintOperator.build(_Rows(geo, obs), exp.domain, exp.cells[a:b], kind=kind, fov_km=fov[obs])
            rows = np.flatnonzero(np.diff(op.indptr))
            if rows.size:
                self.parts.append((pix, a, b, op, rows, obs[rows]))

    @staticmethod
    def _candidates(geometry, domain, kind, fov_km, pixels):
        """For each decomposition pixel in ``pixels``, the ascending indices of the observations whose footprint
        extent overlaps it."""
        n = NEST["M36"]
        r_lo, r_hi, c_lo, c_hi = footprint_extent(geometry, kind=kind, fov_km=fov_km)
        npr, npc = domain.nrows // n, domain.ncols // n
        pr0 = np.clip((r_lo - domain.row0) // n, 0, npr)  # pixel ranges, clipped to the domain
        pr1 = np.clip((r_hi - domain.row0) // n, -1, npr - 1)
        pc0 = np.clip((c_lo - domain.col0) // n, 0, npc)
        pc1 = np.clip((c_hi - domain.col0) // n, -1, npc - 1)
        nr, nc = np.maximum(pr1 - pr0 + 1, 0), np.maximum(pc1 - pc0 + 1, 0)
        count = nr * nc
        obs = np.repeat(np.arange(count.size), count)
        k = np.arange(obs.size) - np.repeat(np.cumsum(count) - count, count)  # position in the obs' rectangle
        pix = (pr0[obs] + k // nc[obs]) * npc + pc0[obs] + k % nc[obs]
        order = np.argsort(pix, kind="stable")  # stable: ascending observations within a pixel
        pix, obs = pix[order], obs[order]
        want = np.asarray(pixels, np.int64)
        lo, hi = np.searchsorted(pix, want, "left"), np.searchsorted(pix, want, "right")
        return [obs[a:b] for a, b in zip(lo, hi, strict=True)]

    def blocks(self, k: int) -> list[tuple[int, int]]:
        """Consecutive row ranges (a, b) covering the rank's cells, each of whole pixels: the fewest that make at
        least :data:`BLOCK_BYTES` of a k-column float64 field (the last block what remains)."""
        rows = max(1, BLOCK_BYTES // (8 * max(k, 1)))
        out, a = [], 0
        for b in self.pixel_stops:  # (a loop over pixels, not cells)
            if b - a >= rows or b == self.n_local:
                out.append((a, b))
                a = b
        return out

    def sums(self, field: np.ndarray):
        """(sum_w (n_obs,), sum_wx (n_obs, k)) of the (n_local, k) ``field`` over all ranks, added in pixel order."""
        field = np.ascontiguousarray(field, dtype=np.float64)
        return self.block_sums(lambda a, b: field[a:b], field.shape[1], [(0, self.n_local)])

    def block_sums(self, rows, k: int, blocks=None):
        """:meth:`sums` of a field given by ``rows(a, b)`` -> its rows a:b ((b - a, k) float64), called once for
        each of ``blocks`` (default :meth:`blocks`: every local cell, in order, whole pixels at a time)."""
        mine = []
        parts = iter(self.parts)
        part = next(parts, None)
        for a, b in self.blocks(k) if blocks is None else blocks:
            field = np.ascontiguousarray(rows(a, b), dtype=np.float64)
            if field.shape != (b - a, k):
                raise ValueError(f"the field's rows {a}:{b} have shape {field.shape}, expected {(b - a, k)}")
            while part is not None and part[2] <= b:  # (the parts are in row order, each inside one block)
                pix, pa, pb, op, keep, obs = part
                w, wx = op.partial_sums(field[pa - a:pb - a])
                mine.append((pix, obs, w[keep], wx[keep]))
                part = next(parts, None)
        allparts = [mine] if self.comm is None or self.comm.size == 1 else self.comm.allgather(mine)
        flat = sorted((p for parts in allparts for p in parts), key=lambda t: t[0])
        sum_w = np.zeros(self.n_obs)
        sum_wx = np.zeros((self.n_obs, k))
        for _, obs, w, wx in flat:
            sum_w[obs] += w
            sum_wx[obs] += wx
        return sum_w, sum_wx

    def mean(self, field: np.ndarray, inside_threshold: float):
        """Footprint means (n_obs, k) (NaN where too little of the footprint is on model cells) and
        the inside fraction (n_obs,)."""
        return finish(*self.sums(field), inside_threshold)

    def block_mean(self, rows, k: int, inside_threshold: float):
        """:meth:`mean` of a field given block by block as in :meth:`block_sums`."""
        return finish(*self.block_sums(rows, k), inside_threshold)
