"""EASE-Grid 2.0 global grids (EPSG:6933) and the 1 km model domain.

Grid definitions follow the NSIDC mapx ``EASE2_M{01,03,09,25,36}km.gpd`` files (Brodzik et al.
2012, doi:10.3390/ijgi1010032): Lambert cylindrical equal-area on WGS84, standard parallel 30 deg.
(x0, y0) is the outer upper-left corner of cell (row 0, col 0); rows count down from the north.

The 1, 3, 9 and 36 km grids nest exactly (36 km = 36 x 1 km). The 25 km grid of SMOS CATDS does
not (25025.26 m is 25.0029 cells of 1000.895 m, and its origin differs): its pixels are mapped
to 1 km cells by fractional geometric overlap, never by integer division.

A :class:`Domain` is a rectangle of whole 36 km pixels on the 1 km grid, with a land mask. Its
cells are numbered row-major (local index ``r * ncols + c``); the global 1 km index
``row * 34704 + col`` keys the random streams, so fields do not depend on the domain split.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pyproj

EPSG = 6933
WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
STANDARD_PARALLEL = 30.0
_X0 = -17367530.4451615
_Y0 = 7314540.8306386


@dataclass(frozen=True)
class EaseGrid:
    """One global EASE-Grid 2.0 grid: cell size (m), shape and outer UL corner (m)."""

    name: str
    cell_m: float
    n_cols: int
    n_rows: int
    x0: float
    y0: float

    def xy(self, row, col):
        """Cell-centre projected coordinates (m) of 0-based (row, col)."""
        return (self.x0 + (np.asarray(col) + 0.5) * self.cell_m,
                self.y0 - (np.asarray(row) + 0.5) * self.cell_m)

    def rowcol(self, x, y):
        """0-based (row, col) of the cells containing projected points (m)."""
        col = np.floor((np.asarray(x) - self.x0) / self.cell_m).astype(np.int64)
        row = np.floor((self.y0 - np.asarray(y)) / self.cell_m).astype(np.int64)
        return row, col

    def latlon(self, row, col):
        """Cell-centre (lat, lon) in degrees."""
        return xy_to_latlon(*self.xy(row, col))

    def rowcol_of_latlon(self, lat, lon):
        """0-based (row, col) of the cells containing (lat, lon) in degrees."""
        return self.rowcol(*latlon_to_xy(lat, lon))

    @property
    def km(self) -> float:
        return self.cell_m / 1000.0


GRIDS = {
    "M01": EaseGrid("M01", 1000.89502334956, 34704, 14616, _X0, _Y0),
    "M03": EaseGrid("M03", 3002.6850700487, 11568, 4872, _X0, _Y0),
    "M09": EaseGrid("M09", 9008.055210146, 3856, 1624, _X0, _Y0),
    "M25": EaseGrid("M25", 25025.26, 1388, 584, -17367530.44, 7307375.92),
    "M36": EaseGrid("M36", 36032.220840584, 964, 406, _X0, _Y0),
}
M01 = GRIDS["M01"]
NEST = {"M01": 1, "M03": 3, "M09": 9, "M36": 36}


def grid(name: str) -> EaseGrid:
    """Grid by name (M01, M03, M09, M25, M36); the error lists the valid names."""
    try:
        return GRIDS[name]
    except KeyError:
        raise KeyError(f"unknown EASE-Grid 2.0 grid {name!r}; valid: {', '.join(GRIDS)}") from None


@functools.cache
def _transformer(inverse: bool) -> pyproj.Transformer:
    src, dst = ("EPSG:4326", f"EPSG:{EPSG}")
    if inverse:
        src, dst = dst, src
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def latlon_to_xy(lat, lon):
    """(lat, lon) in degrees to EPSG:6933 (x, y) in m."""
    return _transformer(False).transform(np.asarray(lon, float), np.asarray(lat, float))


def xy_to_latlon(x, y):
    """EPSG:6933 (x, y) in m to (lat, lon) in degrees."""
    lon, lat = _transformer(True).transform(np.asarray(x, float), np.asarray(y, float))
    return lat, lon


def overlap_1d(fine_edges, coarse_edges):
    """Fractional overlap of fine intervals with coarse intervals along one axis.

    Both edge arrays are increasing. Returns (fine_index, coarse_index, fraction) where fraction is
    the share of the fine interval covered by the coarse one; fine intervals outside the coarse
    edges get no rows.
    """
    fi, ci, fr = [], [], []
    lo = np.searchsorted(coarse_edges, fine_edges[:-1], side="right") - 1
    hi = np.searchsorted(coarse_edges, fine_edges[1:], side="left") - 1
    width = np.diff(fine_edges)
    for i in range(len(fine_edges) - 1):
        for k in range(max(lo[i], 0), min(hi[i], len(coarse_edges) - 2) + 1):
            ov = min(fine_edges[i + 1], coarse_edges[k + 1]) - max(fine_edges[i], coarse_edges[k])
            if ov > 1e-9 * width[i]:  # ignore round-off slivers
                fi.append(i)
                ci.append(k)
                fr.append(ov / width[i])
    return np.array(fi, np.int64), np.array(ci, np.int64), np.array(fr)


@dataclass(frozen=True, eq=False)
class Domain:
    """A rectangle of 1 km EASE-Grid 2.0 cells made of whole 36 km pixels.

    row0, col0: global M01 indices of the upper-left cell; nrows, ncols: size in 1 km cells;
    land: bool (nrows, ncols), True where the model runs.
    """

    row0: int
    col0: int
    nrows: int
    ncols: int
    land: np.ndarray = field(repr=False)

    def __post_init__(self):
        if self.row0 % 36 or self.col0 % 36 or self.nrows % 36 or self.ncols % 36:
            raise ValueError("a domain must consist of whole 36 km pixels")
        if self.land.shape != (self.nrows, self.ncols):
            raise ValueError(f"land mask shape {self.land.shape} != domain {(self.nrows, self.ncols)}")

    @classmethod
    def from_bbox(cls, lat_min, lat_max, lon_min, lon_max, land=None) -> Domain:
        """Smallest domain of whole 36 km pixels that covers the lat/lon box."""
        m36 = GRIDS["M36"]
        r, c = m36.rowcol_of_latlon([lat_max, lat_min], [lon_min, lon_max])
        return cls._from_coarse(int(r[0]), int(c[0]), int(r[1] - r[0] + 1), int(c[1] - c[0] + 1), land)

    @classmethod
    def from_centre(cls, lat, lon, width_km, height_km, land=None) -> Domain:
        """Domain of whole 36 km pixels centred near (lat, lon), at least width x height km."""
        m36 = GRIDS["M36"]
        x, y = latlon_to_xy(lat, lon)
        nc = max(1, int(np.ceil(width_km * 1000 / m36.cell_m - 1e-9)))
        nr = max(1, int(np.ceil(height_km * 1000 / m36.cell_m - 1e-9)))
        r, c = m36.rowcol(y=y + 0.5 * (nr - 1) * m36.cell_m, x=x - 0.5 * (nc - 1) * m36.cell_m)
        return cls._from_coarse(int(r), int(c), nr, nc, land)

    @classmethod
    def _from_coarse(cls, r36, c36, nr36, nc36, land) -> Domain:
        m36 = GRIDS["M36"]
        if r36 < 0 or c36 < 0 or r36 + nr36 > m36.n_rows or c36 + nc36 > m36.n_cols or nr36 < 1 or nc36 < 1:
            raise ValueError("domain lies outside the EASE-Grid 2.0 global grid")
        shape = (36 * nr36, 36 * nc36)
        land = np.ones(shape, bool) if land is None else np.asarray(land, bool)
        return cls(36 * r36, 36 * c36, shape[0], shape[1], land)

    # --- sizes and coordinates -------------------------------------------------------------
    @property
    def shape(self):
        return (self.nrows, self.ncols)

    @property
    def n_cells(self) -> int:
        return self.nrows * self.ncols

    @property
    def n_land(self) -> int:
        return int(self.land.sum())

    @property
    def x(self) -> np.ndarray:
        """1-D cell-centre x (m), west to east."""
        return M01.xy(0, np.arange(self.col0, self.col0 + self.ncols))[0]

    @property
    def y(self) -> np.ndarray:
        """1-D cell-centre y (m), north to south."""
        return M01.xy(np.arange(self.row0, self.row0 + self.nrows), 0)[1]

    def latlon(self):
        """2-D (lat, lon) of the cell centres, degrees."""
        xx, yy = np.meshgrid(self.x, self.y)
        return xy_to_latlon(xx, yy)

    def global_index(self) -> np.ndarray:
        """Global M01 index row * 34704 + col of every cell, row-major (int64, n_cells)."""
        rows = np.arange(self.row0, self.row0 + self.nrows, dtype=np.int64)
        cols = np.arange(self.col0, self.col0 + self.ncols, dtype=np.int64)
        return (rows[:, None] * M01.n_cols + cols[None, :]).ravel()

    def parent(self, name: str, cells=None):
        """Global (row, col) of the parent pixel on a nested grid (M03, M09, M36) of every cell (n_cells,),
        or of the local cells ``cells`` (row-major local indices).

        The one rule that maps a 1 km cell to its coarse pixel: (row // n, col // n) in global indices,
        n the nesting factor (:data:`NEST`). Non-nested grids (M25) have no parent: see :meth:`overlap`.
        """
        if name not in NEST:
            raise KeyError(f"{name!r} does not nest in M01; valid: {', '.join(NEST)} (use overlap() for M25)")
        n = NEST[name]
        local = np.arange(self.n_cells) if cells is None else np.asarray(cells, np.int64)
        r, c = np.divmod(local, self.ncols)
        return (r + self.row0) // n, (c + self.col0) // n

    def pixel_index(self, name: str = "M36") -> np.ndarray:
        """Row-major index of every cell's parent pixel among the domain's pixels of a nested grid (n_cells,).

        The domain's pixels are numbered row by row (``coarse_shape(name)`` of them); a domain starts on
        a pixel corner, so pixel 0 holds cell 0.
        """
        r, c = self.parent(name)
        n = NEST[name]
        return (r - self.row0 // n) * (self.ncols // n) + (c - self.col0 // n)

    def coarse_shape(self, name: str = "M36"):
        """(rows, cols) of the domain's pixels of a nested grid."""
        n = NEST[name]
        return self.nrows // n, self.ncols // n

    def overlap(self, name: str):
        """Fractional overlap of every 1 km cell with the pixels of any grid.

        Returns (cell, row, col, fraction): local cell index, global pixel row and column, and the
        share of the 1 km cell's area inside that pixel. For nested grids each fraction is 1.
        """
        if name in NEST:
            row, col = self.parent(name)
            return np.arange(self.n_cells), row, col, np.ones(self.n_cells)
        g = grid(name)
        xe = M01.x0 + np.arange(self.col0, self.col0 + self.ncols + 1) * M01.cell_m
        ye = M01.y0 - np.arange(self.row0, self.row0 + self.nrows + 1) * M01.cell_m
        c_lo = int(np.floor((xe[0] - g.x0) / g.cell_m)) - 1
        c_hi = int(np.floor((xe[-1] - g.x0) / g.cell_m)) + 2
        r_lo = int(np.floor((g.y0 - ye[0]) / g.cell_m)) - 1
        r_hi = int(np.floor((g.y0 - ye[-1]) / g.cell_m)) + 2
        gx = g.x0 + np.arange(c_lo, c_hi + 1) * g.cell_m
        gy = g.y0 - np.arange(r_lo, r_hi + 1) * g.cell_m
        fc, cc, frc = overlap_1d(xe, gx)
        # rows: y decreases with row; flip to increasing coordinates
        fr, rr, frr = overlap_1d(-ye, -gy)
        cell = (fr[:, None] * self.ncols + fc[None, :]).ravel()
        row = np.broadcast_to((rr + r_lo)[:, None], (len(fr), len(fc))).ravel()
        col = np.broadcast_to((cc + c_lo)[None, :], (len(fr), len(fc))).ravel()
        frac = (frr[:, None] * frc[None, :]).ravel()
        order = np.lexsort((col, row, cell))
        return cell[order], row[order], col[order], frac[order]

    def summary(self) -> dict:
        lat, lon = xy_to_latlon(np.array([self.x[0], self.x[-1]]), np.array([self.y[0], self.y[-1]]))
        nr36, nc36 = self.coarse_shape("M36")
        return {
            "ul_row_col_1km": (self.row0, self.col0),
            "size_1km": (self.nrows, self.ncols),
            "cells": self.n_cells,
            "land_cells": self.n_land,
            "pixels_36km": (nr36, nc36),
            "lat_range": (float(lat.min()), float(lat.max())),
            "lon_range": (float(lon.min()), float(lon.max())),
        }
