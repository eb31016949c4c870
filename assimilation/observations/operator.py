"""Footprint observation operator: aggregation of any 1 km ensemble field to coarse observations.

The model equivalent of observation ``o`` is a weighted mean over the 1 km model cells ``i``

    HX_o = sum_i w_oi x_i / sum_i w_oi,

where the weights are normalised over the WHOLE footprint (all 1 km cells of the global grid, land
or not, inside the domain or not): ``sum_{all i} w_oi = 1``. The operator only holds weights of model
cells (the land cells of this rank), so the partial sum ``sum_w = sum_i w_oi`` over the model cells
of all ranks is the *inside fraction*: the share of the footprint's weight that lies on model
(land, in-domain, unmasked) cells. :func:`finish` divides by it (renormalisation over the cells
that exist) and returns NaN where it is below a threshold; the driver then sets QC
``"too_few_cells"`` (:func:`flag_too_few_cells`).

Footprints (all EASE-Grid 2.0 cells have the same area, so "times cell area" is a constant):

* ``box`` on a nested grid (M03, M09, M36): ``w = 1 / n^2`` for the n x n cells of the pixel (exact); on M01
  (fine observations, e.g. 1 km soil moisture) the identity: the one cell, ``w = 1``.
* ``box`` on the SMOS 25 km grid (M25, not nested): ``w = f A_1 / A_25`` with ``f`` the fractional
  geometric overlap of the 1 km cell with the pixel (:meth:`smda.model.grid.Domain.overlap`), A the
  cell areas; the fractions of a pixel's cells sum to ``A_25 / A_1`` (25.0029^2 cells).
* ``gauss``: ``w ~ exp(-0.5 (dx^2 + dy^2) / FOV^2) A_1`` for cell centres within ``search_fov * FOV``
  of the footprint centre (SCIENCE.md section 4: FOV 20 km for 36 km TB, searched to 2 FOV),
  normalised by the sum over every 1 km cell of the global grid in that disc, so the weights of a
  footprint integrate to one exactly on the discrete grid.

Aggregate TB (not SM) for TB observations: the driver computes TB per 1 km cell at the
observation's angle and polarization and passes it here; for SM observations it passes the surface
layer soil moisture. The operator does not care what the field is.

Parallel use: each rank builds one operator per coarse decomposition pixel it holds and calls
:meth:`FootprintOperator.partial_sums`; :class:`smda.run.aggregate.PixelAggregator` adds the partial
sums of all pixels in pixel order and calls :func:`finish`, so the result does not depend on the number
of ranks. Within an operator the terms of each observation are accumulated in global 1 km cell order.

The weight structure is compressed sparse rows (CSR): observation -> (local cell position,
weight), built once per observation set (vectorised numpy for boxes, a numba kernel for Gaussian
footprints) and applied by a numba kernel into caller-provided arrays.
References: Reichle et al. (2017) SMAP L4 assimilation, doi:10.1175/JHM-D-16-0102.1 (footprint
aggregation of TB from fine cells); Brodzik et al. (2012) EASE-Grid 2.0, doi:10.3390/ijgi1010032.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from smda.jit import kernel
from smda.model.grid import GRIDS, M01, NEST, Domain

log = logging.getLogger(__name__)

KINDS = ("box", "gauss", "auto")
_SNAP = 1e-9  # |inside fraction - 1| below this is round-off


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
@kernel
def _apply_csr(indptr, cell, weight, field, mask, out_w, out_wx):
    """sum_w[o] = sum w, sum_wx[o, m] = sum w x[cell, m] over the unmasked entries of row o."""
    n_obs = indptr.shape[0] - 1
    n_mem = field.shape[1]
    for o in range(n_obs):
        sw = 0.0
        for m in range(n_mem):
            out_wx[o, m] = 0.0
        for k in range(indptr[o], indptr[o + 1]):
            i = cell[k]
            if mask[i]:
                w = weight[k]
                sw += w
                for m in range(n_mem):
                    out_wx[o, m] += w * field[i, m]
        out_w[o] = sw


@kernel
def _gauss_rows(ox, oy, fov, search, x0, y0, s, row0, col0, nrows, ncols, pos, count_only,
                indptr, cell, weight):
    """Gaussian footprint rows. Pass 1 (count_only) fills indptr[o + 1] with row lengths; pass 2
    fills cell/weight. Cells are visited in global row-major order."""
    for o in range(ox.shape[0]):
        r_m = search * fov[o]
        r2 = r_m * r_m
        inv = 0.5 / (fov[o] * fov[o])
        c_lo = int(np.floor((ox[o] - r_m - x0) / s))
        c_hi = int(np.floor((ox[o] + r_m - x0) / s))
        r_lo = int(np.floor((y0 - oy[o] - r_m) / s))
        r_hi = int(np.floor((y0 - oy[o] + r_m) / s))
        total = 0.0
        n = 0
        k = indptr[o]
        for r in range(r_lo, r_hi + 1):
            dy = y0 - (r + 0.5) * s - oy[o]
            for c in range(c_lo, c_hi + 1):
                dx = x0 + (c + 0.5) * s - ox[o]
                d2 = dx * dx + dy * dy
                if d2 > r2:
                    continue
                w = np.exp(-d2 * inv)
                total += w
                lr = r - row0
                lc = c - col0
                if lr < 0 or lr >= nrows or lc < 0 or lc >= ncols:
                    continue
                p = pos[lr * ncols + lc]
                if p < 0:
                    continue
                if count_only:
                    n += 1
                else:
                    cell[k] = p
                    weight[k] = w
                    k += 1
        if count_only:
            indptr[o + 1] = n
        else:
            for j in range(indptr[o], indptr[o + 1]):
                weight[j] /= total


# --------------------------------------------------------------------------------------------
# the operator
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FootprintOperator:
    """Sparse footprint weights of ``n_obs`` observations on the ``n_local`` cells of one rank.

    indptr: int64 (n_obs + 1,); cell: int64 (nnz,) positions into the rank's ensemble arrays;
    weight: float64 (nnz,), normalised so that each whole footprint sums to 1.
    """

    indptr: np.ndarray
    cell: np.ndarray
    weight: np.ndarray
    n_local: int

    @property
    def n_obs(self) -> int:
        return self.indptr.shape[0] - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    @classmethod
    def build(cls, table_or_geometry, domain: Domain, local_cells, *, kind: str = "box",
              fov_km=20.0, search_fov: float = 2.0) -> FootprintOperator:
        """Build the weights once per observation set.

        Parameters
        ----------
        table_or_geometry : ObsTable or any object with columns ``x``, ``y`` (EPSG:6933 m),
            ``footprint`` (grid name "M01"/"M03"/"M09"/"M25"/"M36" or "gauss"), ``row``, ``col`` (pixel
            indices on that grid), each (n_obs,).
        domain : the model Domain (1 km cells, row-major local indices).
        local_cells : int (n_local,) local domain indices of the cells this rank holds, in the order
            of its ensemble arrays (typically its land cells).
        kind : "box" (pixel box of each row's footprint grid), "gauss" (Gaussian antenna pattern
            centred on x, y for every row) or "auto" (box for grid names, gauss for "gauss" rows).
        fov_km : Gaussian FOV (km), scalar or (n_obs,); search_fov : search radius in FOVs.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown footprint kind {kind!r}; valid: {', '.join(KINDS)}")
        geo = geometry_columns(table_or_geometry)
        n_obs = len(geo["x"])
        local_cells = np.asarray(local_cells)
        if local_cells.ndim != 1 or not np.issubdtype(local_cells.dtype, np.integer):
            raise ValueError("local_cells must be a 1-D integer array of local domain indices")
        local_cells = local_cells.astype(np.int64)
        if local_cells.size and (local_cells.min() < 0 or local_cells.max() >= domain.n_cells):
            raise ValueError(f"local_cells must lie in [0, {domain.n_cells}) (domain cells)")
        # from here on the window of whole 36 km pixels around the cells stands for the domain: every array
        # is the size of the footprints and cells at hand, not of the domain (one operator per pixel)
        domain, local_cells = _window(domain, local_cells)
        pos = np.full(domain.n_cells, -1, np.int64)
        pos[local_cells] = np.arange(local_cells.size)
        if np.count_nonzero(pos >= 0) != local_cells.size:
            raise ValueError("local_cells contains duplicates")
        if not np.isfinite(search_fov) or search_fov <= 0:
            raise ValueError(f"search_fov must be > 0 (FOV units), got {search_fov}")
        fov = np.broadcast_to(np.asarray(fov_km, float), (n_obs,)) * 1000.0

        is_gauss = np.full(n_obs, kind == "gauss")
        if kind == "auto":
            is_gauss = geo["footprint"] == "gauss"
        if kind == "box" and np.any(geo["footprint"] == "gauss"):
            raise ValueError("footprint 'gauss' rows need kind='gauss' or kind='auto'")
        if np.any(is_gauss) and not np.all((fov[is_gauss] > 0) & np.isfinite(fov[is_gauss])):
            raise ValueError("fov_km must be finite and > 0 for Gaussian footprints")

        parts = []
        ib = np.flatnonzero(~is_gauss)
        if ib.size:
            parts.append((ib, *_box_rows(geo, ib, domain, local_cells, pos)))
        ig = np.flatnonzero(is_gauss)
        if ig.size:
            parts.append((ig, *_gauss_csr(geo["x"][ig], geo["y"][ig], fov[ig], search_fov, domain, pos)))
        indptr, cell, weight = _merge_rows(n_obs, parts)
        log.debug("footprint operator: %d obs, %d local cells, %d weights", n_obs, local_cells.size,
                  indptr[-1])
        return cls(indptr, cell, weight, int(local_cells.size))

    def partial_sums(self, field, out_w=None, out_wx=None, mask=None):
        """This rank's partial sums for every observation.

        field : float64 (n_local, n_members), any per-cell quantity (TB in K, SM in m3/m3, ...).
        out_w, out_wx : optional output arrays (n_obs,) and (n_obs, n_members), overwritten.
        mask : optional bool (n_local,), False excludes a cell (e.g. frozen or snow covered);
            excluded cells lower the inside fraction like cells outside the domain.
        Returns (sum_w (n_obs,), sum_wx (n_obs, n_members)).
        """
        field = np.asarray(field)
        if field.ndim != 2 or field.shape[0] != self.n_local:
            raise ValueError(f"field must have shape (n_local={self.n_local}, n_members), got {field.shape}")
        if field.dtype != np.float64 or not field.flags.c_contiguous:
            field = np.ascontiguousarray(field, dtype=np.float64)
        n_mem = field.shape[1]
        if out_w is None:
            out_w = np.empty(self.n_obs)
        if out_wx is None:
            out_wx = np.empty((self.n_obs, n_mem))
        if out_w.shape != (self.n_obs,) or out_wx.shape != (self.n_obs, n_mem):
            raise ValueError(f"out_w/out_wx must have shapes ({self.n_obs},) and ({self.n_obs}, {n_mem})")
        if mask is None:
            mask = np.ones(self.n_local, np.bool_)
        else:
            mask = np.asarray(mask, np.bool_)
            if mask.shape != (self.n_local,):
                raise ValueError(f"mask must have shape ({self.n_local},), got {mask.shape}")
        _apply_csr(self.indptr, self.cell, self.weight, field, mask, out_w, out_wx)
        return out_w, out_wx


def finish(sum_w, sum_wx, inside_threshold: float):
    """Model equivalents from the partial sums added over all ranks.

    Returns (HX (n_obs, n_members), inside_fraction (n_obs,)): HX = sum_wx / sum_w where the inside
    fraction sum_w (share of the footprint weight on model cells) is >= inside_threshold and > 0,
    NaN elsewhere (the driver rejects those observations as "too_few_cells", :func:`flag_too_few_cells`).
    """
    if not (0.0 < inside_threshold <= 1.0):
        raise ValueError(f"inside_threshold must be in (0, 1], got {inside_threshold}")
    sum_w = np.asarray(sum_w, float)
    sum_wx = np.asarray(sum_wx, float)
    if sum_wx.ndim != 2 or sum_wx.shape[0] != sum_w.shape[0]:
        raise ValueError(f"sum_wx shape {sum_wx.shape} does not match sum_w {sum_w.shape}")
    # a whole footprint sums to 1 up to round-off (~1e-13 for 1296 terms): snap it
    inside = np.where(np.abs(sum_w - 1.0) < _SNAP, 1.0, np.minimum(sum_w, 1.0))
    ok = (inside >= inside_threshold) & (sum_w > 0)
    hx = np.full(sum_wx.shape, np.nan)
    hx[ok] = sum_wx[ok] / sum_w[ok, None]
    return hx, inside


def flag_too_few_cells(table, inside_fraction, inside_threshold: float):
    """The table with QC "too_few_cells" where the inside fraction is below the threshold."""
    return table.with_qc(np.asarray(inside_fraction) < inside_threshold, "too_few_cells")


# --------------------------------------------------------------------------------------------
# construction helpers
# --------------------------------------------------------------------------------------------
def _window(domain: Domain, local_cells):
    """The smallest domain of whole 36 km pixels holding ``local_cells`` (a rank's pixel: 36 x 36 cells) and
    the cells' indices in it. Weights depend on global cell positions only, so they are the same as on the
    whole domain, and global row-major order is kept."""
    if local_cells.size == 0:
        return domain, local_cells
    n = NEST["M36"]
    r, c = np.divmod(local_cells, domain.ncols)
    r0, c0 = int(r.min()) // n * n, int(c.min()) // n * n
    r1, c1 = -(-(int(r.max()) + 1) // n) * n, -(-(int(c.max()) + 1) // n) * n
    if (r0, c0, r1, c1) == (0, 0, domain.nrows, domain.ncols):
        return domain, local_cells
    win = Domain(domain.row0 + r0, domain.col0 + c0, r1 - r0, c1 - c0, domain.land[r0:r1, c0:c1])
    return win, (r - r0) * (c1 - c0) + (c - c0)


def footprint_extent(geometry, *, kind: str = "box", fov_km=20.0, search_fov: float = 2.0):
    """Global M01 (row_lo, row_hi, col_lo, col_hi) (inclusive, int64 (n_obs,) each) bounding every row's
    footprint as :meth:`FootprintOperator.build` defines it, with a one-cell margin: cells outside carry no
    weight of the row. Rows whose footprint is not understood (unknown grid, bad FOV) get the whole grid,
    and build reports them."""
    geo = geometry_columns(geometry)
    n_obs = len(geo["x"])
    fov = np.broadcast_to(np.asarray(fov_km, float), (n_obs,)) * 1000.0
    is_gauss = geo["footprint"] == "gauss" if kind == "auto" else np.full(n_obs, kind == "gauss")
    big = np.iinfo(np.int64).max // 4
    r_lo, c_lo, r_hi, c_hi = (np.full(n_obs, v, np.int64) for v in (-big, -big, big, big))
    # a Gaussian footprint: its search disc; a box on a non-nested grid: its pixel (centre from row, col)
    cx, cy, half = geo["x"].copy(), geo["y"].copy(), np.full(n_obs, np.nan)
    half[is_gauss] = search_fov * fov[is_gauss]
    for g in set(geo["footprint"][~is_gauss]):
        rows = ~is_gauss & (geo["footprint"] == g)
        if g in NEST:  # exactly the n x n cells of the pixel
            n = NEST[g]
            r_lo[rows], r_hi[rows] = geo["row"][rows] * n - 1, geo["row"][rows] * n + n
            c_lo[rows], c_hi[rows] = geo["col"][rows] * n - 1, geo["col"][rows] * n + n
        elif g in GRIDS:
            cx[rows], cy[rows] = GRIDS[g].xy(geo["row"][rows], geo["col"][rows])
            half[rows] = 0.5 * GRIDS[g].cell_m
    fin = np.isfinite(half) & (half > 0)
    r0, c0 = M01.rowcol(cx[fin] - half[fin], cy[fin] + half[fin])
    r1, c1 = M01.rowcol(cx[fin] + half[fin], cy[fin] - half[fin])
    r_lo[fin], c_lo[fin], r_hi[fin], c_hi[fin] = r0 - 1, c0 - 1, r1 + 1, c1 + 1
    return r_lo, r_hi, c_lo, c_hi


def geometry_columns(obj):
    """Columns x, y (float), footprint (str), row, col (int64) of an ObsTable or geometry object, checked."""
    try:
        geo = {k: np.asarray(getattr(obj, k)) for k in ("x", "y", "footprint", "row", "col")}
    except AttributeError as exc:
        raise ValueError(f"observation geometry needs columns x, y, footprint, row, col ({exc})") from None
    n = len(geo["x"])
    for k, v in geo.items():
        if v.shape != (n,):
            raise ValueError(f"geometry column {k!r} has shape {v.shape}, expected ({n},)")
    geo["x"] = geo["x"].astype(float)
    geo["y"] = geo["y"].astype(float)
    geo["row"] = geo["row"].astype(np.int64)
    geo["col"] = geo["col"].astype(np.int64)
    geo["footprint"] = geo["footprint"].astype(str)
    return geo


def _box_rows(geo, ib, domain, local_cells, pos):
    """CSR rows (indptr, cell, weight) of the pixel-box observations ``ib``; ``pos`` maps domain cells to
    positions in ``local_cells`` (-1: not held)."""
    names = geo["footprint"][ib]
    bad = sorted(set(names) - set(GRIDS))
    if bad:
        valid = ", ".join(sorted(GRIDS))
        raise ValueError(f"footprint grid(s) {bad} not valid for box footprints; valid: {valid}")
    grid_names = sorted(set(names))
    gid = {g: i for i, g in enumerate(grid_names)}
    obs_key = np.array([gid[g] for g in names], np.int64) << np.int64(40)
    obs_key += geo["row"][ib] * GRIDS["M01"].n_cols + geo["col"][ib]

    keys, poss, gidxs, ws = [], [], [], []
    gidx = domain.global_index()[local_cells]
    for g in grid_names:
        if g in NEST:
            pr, pc = domain.parent(g, local_cells)
            keys.append((np.int64(gid[g]) << np.int64(40)) + pr * M01.n_cols + pc)
            poss.append(np.arange(local_cells.size))
            gidxs.append(gidx)
            ws.append(np.full(local_cells.size, 1.0 / NEST[g] ** 2))
        else:
            cellv, prow, pcol, frac = domain.overlap(g)
            p = pos[cellv]
            keep = p >= 0
            p = p[keep]
            keys.append((np.int64(gid[g]) << np.int64(40)) + prow[keep] * M01.n_cols + pcol[keep])
            poss.append(p)
            gidxs.append(gidx[p])
            ws.append(frac[keep] * (M01.cell_m / GRIDS[g].cell_m) ** 2)
    return _csr_from_triplets(obs_key, np.concatenate(keys), np.concatenate(poss),
                              np.concatenate(gidxs), np.concatenate(ws))


def _csr_from_triplets(obs_key, t_key, t_pos, t_gidx, t_w):
    """Rows for observations keyed by pixel, from (pixel key, position, global index, weight)."""
    uniq, obs_u = np.unique(obs_key, return_inverse=True)
    tu = np.searchsorted(uniq, t_key)
    tu_c = np.minimum(tu, uniq.size - 1)
    hit = (tu < uniq.size) & (uniq[tu_c] == t_key)
    tu, t_pos, t_gidx, t_w = tu[hit], t_pos[hit], t_gidx[hit], t_w[hit]
    order = np.lexsort((t_gidx, tu))
    t_pos, t_w = t_pos[order], t_w[order]
    counts = np.bincount(tu, minlength=uniq.size)
    start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    row_len = counts[obs_u]
    indptr = np.concatenate(([0], np.cumsum(row_len))).astype(np.int64)
    src = np.repeat(start[obs_u] - indptr[:-1], row_len) + np.arange(indptr[-1])
    return indptr, t_pos[src].astype(np.int64), t_w[src].astype(float)


def _gauss_csr(ox, oy, fov_m, search, domain, pos):
    n = ox.size
    indptr = np.zeros(n + 1, np.int64)
    dummy_i = np.empty(0, np.int64)
    dummy_w = np.empty(0)
    args = (np.ascontiguousarray(ox), np.ascontiguousarray(oy), np.ascontiguousarray(fov_m), float(search),
            M01.x0, M01.y0, M01.cell_m, domain.row0, domain.col0, domain.nrows, domain.ncols, pos)
    _gauss_rows(*args, True, indptr, dummy_i, dummy_w)
    indptr = np.cumsum(indptr)
    cell = np.empty(indptr[-1], np.int64)
    weight = np.empty(indptr[-1])
    _gauss_rows(*args, False, indptr, cell, weight)
    return indptr, cell, weight


def _merge_rows(n_obs, parts):
    """Assemble CSR rows of observation subsets (obs_index, indptr, cell, weight) in obs order."""
    if len(parts) == 1 and parts[0][0].size == n_obs:  # one kind: rows already in obs order
        return parts[0][1:]
    row_len = np.zeros(n_obs, np.int64)
    for idx, ip, _, _ in parts:
        row_len[idx] = np.diff(ip)
    indptr = np.concatenate(([0], np.cumsum(row_len))).astype(np.int64)
    cell = np.empty(indptr[-1], np.int64)
    weight = np.empty(indptr[-1])
    for idx, ip, c, w in parts:
        lens = np.diff(ip)
        dst = np.repeat(indptr[idx] - ip[:-1], lens) + np.arange(ip[-1])
        cell[dst] = c
        weight[dst] = w
    return indptr, cell, weight
