"""Readers for SMAP radiometer products (HDF5): L1C_TB, L2_SM_P, L3_SM_P and L3_SM_P_E.

Formats follow PRODUCTS.md sections 0-3 (SMAP product specifications as seen in the real L2 sample,
in GEOSldas and in TUW-GEO smap_io):

- ``SPL1CTB``: group ``Global_Projection``, 1-D swath cells on EASE-Grid 2.0 M36 (``cell_row``,
  ``cell_column``), per look ``fore``/``aft``: ``cell_tb_{h,v}_{look}``, ``cell_tb_qual_flag_{h,v}_{look}``,
  ``cell_tb_time_seconds_{look}``, ``cell_boresight_incidence_{look}``. By default fore and aft looks that
  pass QC are averaged (TB, time, angle), as GEOSldas does; a half-orbit whose std(fore - aft) exceeds
  20 K is rejected entirely (``product_quality_flag``).
- ``SPL2SMP``: group ``Soil_Moisture_Retrieval_Data``, 1-D swath cells with ``EASE_row_index`` /
  ``EASE_column_index`` on M36.
- ``SPL3SMP`` (M36, 406 x 964) and ``SPL3SMP_E`` (M09, 1624 x 3856): 2-D grids, row 0 north, groups
  ``Soil_Moisture_Retrieval_Data_AM`` and ``..._PM`` where every PM dataset name ends in ``_pm``.

Values: TB ``tb_{h,v}_corrected`` (K; or ``_uncorrected`` with ``tb_variant``), SM ``soil_moisture``
(m3/m3; or another algorithm's dataset with ``sm_dataset``). Fill -9999 (float), 65534 (uint16).
Times: J2000 seconds, epoch 2000-01-01T12:00:00 UTC without leap seconds (PRODUCTS.md section 0).

Table columns: footprint ``"M36"`` (``"M09"`` for L3_SM_P_E) with the global EASE row/col of the cell;
x/y are the exact cell centres (EPSG:6933), lat/lon follow from them; ``flags`` packs the TB quality
flag (TB rows) or the retrieval quality flag (SM rows) in bits 0-15 and ``surface_flag`` in bits 16-31;
TB rows carry the boresight incidence angle (nominal 40 deg where it is fill), SM rows angle NaN and
polarization "". Observations without an acquisition time are not observations and are dropped, as are
those outside the domain or period; everything else stays, with its QC code.
"""

from __future__ import annotations

import logging

import numpy as np

from smda.assimilation.observations.qc import merge_masks, smap_retrieval_masks, smap_surface_masks, smap_tb_qual_masks
from smda.assimilation.observations.readers.common import (
    DEFAULT_FOV_KM,
    Region,
    error_std_for,
    hdf5_files,
    make_table,
    read_array,
    require,
    smap_time,
    unpack,
)
from smda.assimilation.observations.table import ObsTable
from smda.model.grid import GRIDS

log = logging.getLogger(__name__)

FLOAT_FILL = -9999.0
UINT16_FILL = 65534
NOMINAL_ANGLE_DEG = 40.0
MAX_FORE_AFT_STD_K = 20.0


def _check_kind(kind, allowed, product):
    if kind not in allowed:
        raise ValueError(f"{product}: kind must be one of {allowed}, got {kind!r}")


def _check_pols(pols):
    pols = tuple(p.upper() for p in pols)
    if not pols or any(p not in ("H", "V") for p in pols):
        raise ValueError(f"pols must be a non-empty subset of ('H', 'V'), got {pols!r}")
    return pols


def _rows_from_cells(path, cells, *, kind, pols, grid, source, error_std, tb_variant, sm_dataset):
    """Observation rows from a dict of per-cell arrays of an L2/L3 retrieval group (names without suffix)."""
    time = smap_time(cells["tb_time_seconds"])
    surface = cells["surface_flag"].astype(np.uint32)
    water = cells.get("static_water_body_fraction")
    if water is not None:
        water = unpack(water, FLOAT_FILL)[0]
    tables = []
    if kind == "tb":
        angle, _ = unpack(cells["boresight_incidence"], FLOAT_FILL)
        angle = np.where(np.isfinite(angle), angle, NOMINAL_ANGLE_DEG)
        for p in pols:
            value, fill = unpack(cells[f"tb_{p.lower()}_{tb_variant}"], FLOAT_FILL)
            qual = cells[f"tb_qual_flag_{p.lower()}"]
            masks = merge_masks({"fill_value": fill}, smap_tb_qual_masks(qual),
                                smap_surface_masks(surface, water, "tb"))
            tables.append(make_table(
                time=time, row=cells["row"], col=cells["col"], grid=grid, kind="tb", pol=p, angle_deg=angle,
                value=value, error_std=error_std, flags=qual.astype(np.uint32) | (surface << 16),
                footprint=grid.name, source=source, masks=masks))
    else:
        value, fill = unpack(cells[sm_dataset], FLOAT_FILL)
        qual = cells["retrieval_qual_flag"]
        masks = merge_masks({"fill_value": fill}, smap_retrieval_masks(qual),
                            smap_surface_masks(surface, water, "sm"))
        tables.append(make_table(
            time=time, row=cells["row"], col=cells["col"], grid=grid, kind="sm", pol="", angle_deg=np.nan,
            value=value, error_std=error_std, flags=qual.astype(np.uint32) | (surface << 16),
            footprint=grid.name, source=source, masks=masks))
    return ObsTable.concat(tables)


def _needed(kind, pols, tb_variant, sm_dataset):
    names = ["tb_time_seconds", "surface_flag"]
    if kind == "tb":
        names += ["boresight_incidence"]
        for p in pols:
            names += [f"tb_{p.lower()}_{tb_variant}", f"tb_qual_flag_{p.lower()}"]
    else:
        names += [sm_dataset, "retrieval_qual_flag"]
    return names


def _in_region(region, grid, row, col, time):
    x, y = grid.xy(row, col)
    return region.contains_xy(x, y) & region.contains_time(time)


# --------------------------------------------------------------------------------------------------
# L2_SM_P (swath, 1-D)
# --------------------------------------------------------------------------------------------------
def _swath_cells(path, g, group_name, row_name, col_name, names, grid, region):
    """Read 1-D swath datasets ``names`` for the cells inside ``region`` (one contiguous hyperslab).

    Returns (dict name -> (n,) values, row (n,), col (n,)) of those cells, or None if there are none.
    """
    row = read_array(path, g, row_name, group_label=group_name).astype(np.int64)
    col = read_array(path, g, col_name, group_label=group_name).astype(np.int64)
    if row.ndim != 1 or row.shape != col.shape:
        raise ValueError(f"{path}: {group_name}/{row_name} must be 1-D like {col_name}")
    valid = (row != UINT16_FILL) & (col != UINT16_FILL) & (row < grid.n_rows) & (col < grid.n_cols)
    x, y = grid.xy(np.where(valid, row, 0), np.where(valid, col, 0))
    idx = np.flatnonzero(valid & region.contains_xy(x, y))
    if idx.size == 0:
        return None
    sl = slice(int(idx[0]), int(idx[-1]) + 1)
    cells = {}
    for n in names:
        a = read_array(path, g, n, sl, group_name)
        if a.ndim != 1 or a.shape[0] != sl.stop - sl.start:
            raise ValueError(f"{path}: dataset {group_name}/{n} has shape {a.shape}, expected 1-D like "
                             f"{row_name} ({row.shape[0]},)")
        cells[n] = a[idx - sl.start]
    return cells, row[idx], col[idx]


def read_l2_sm_p(paths, *, region: Region, kind="tb", error_std=None, pols=("H", "V"),
                 tb_variant="corrected", sm_dataset="soil_moisture") -> ObsTable:
    """Read SMAP L2_SM_P half-orbit files (SPL2SMP) into an :class:`ObsTable` (see the module docstring)."""
    product = "smap_l2_sm_p"
    _check_kind(kind, ("tb", "sm"), product)
    pols = _check_pols(pols)
    err = error_std_for(kind, error_std)
    grid = GRIDS["M36"]
    group_name = "Soil_Moisture_Retrieval_Data"
    out = []
    for path, f in hdf5_files(paths, product):
        if group_name not in f:
            raise ValueError(f"{path}: not a SMAP L2_SM_P file: group {group_name!r} is missing")
        g = f[group_name]
        names = _needed(kind, pols, tb_variant, sm_dataset) + ["static_water_body_fraction"]
        require(path, g, names + ["EASE_row_index", "EASE_column_index"], group_name, product)
        found = _swath_cells(path, g, group_name, "EASE_row_index", "EASE_column_index", names, grid, region)
        if found is None:
            continue
        cells, row, col = found
        cells["row"], cells["col"] = row, col
        keep = region.contains_time(smap_time(cells["tb_time_seconds"]))
        cells = {k: v[keep] for k, v in cells.items()}
        out.append(_rows_from_cells(path, cells, kind=kind, pols=pols, grid=grid, source=product,
                                    error_std=err, tb_variant=tb_variant, sm_dataset=sm_dataset))
    return ObsTable.concat(out)


# --------------------------------------------------------------------------------------------------
# L3_SM_P / L3_SM_P_E (daily global grids, AM/PM)
# --------------------------------------------------------------------------------------------------
def _read_l3(paths, *, product, grid_name, region, kind, error_std, pols, passes, tb_variant, sm_dataset):
    _check_kind(kind, ("tb", "sm"), product)
    pols = _check_pols(pols)
    passes = tuple(p.upper() for p in passes)
    if not passes or any(p not in ("AM", "PM") for p in passes):
        raise ValueError(f"{product}: passes must be a non-empty subset of ('AM', 'PM'), got {passes!r}")
    err = error_std_for(kind, error_std)
    grid = GRIDS[grid_name]
    rs, cs = region.grid_slices(grid)
    out = []
    for path, f in hdf5_files(paths, product):
        groups = [f"Soil_Moisture_Retrieval_Data_{p}" for p in passes]
        missing = [g for g in groups if g not in f]
        if missing:
            raise ValueError(f"{path}: not a SMAP {product.upper()} file: group(s) "
                             f"{', '.join(map(repr, missing))} missing")
        for p, group_name in zip(passes, groups, strict=True):
            g = f[group_name]
            suffix = "_pm" if p == "PM" else ""
            names = _needed(kind, pols, tb_variant, sm_dataset)
            optional = ["static_water_body_fraction"]
            require(path, g, [n + suffix for n in names], group_name, product)
            shape = g[names[0] + suffix].shape
            if shape != (grid.n_rows, grid.n_cols):
                raise ValueError(f"{path}: dataset {group_name}/{names[0] + suffix} has shape {shape}, "
                                 f"expected {(grid.n_rows, grid.n_cols)} for the {grid_name} grid")
            if rs.stop <= rs.start or cs.stop <= cs.start:
                continue
            cells = {}
            for n in names + [o for o in optional if o + suffix in g]:
                a = read_array(path, g, n + suffix, (rs, cs), group_name)
                if a.shape != (rs.stop - rs.start, cs.stop - cs.start):
                    raise ValueError(f"{path}: dataset {group_name}/{n + suffix} has an unexpected shape")
                cells[n] = a.ravel()
            rr, cc = np.meshgrid(np.arange(rs.start, rs.stop), np.arange(cs.start, cs.stop), indexing="ij")
            cells["row"], cells["col"] = rr.ravel(), cc.ravel()
            keep = _in_region(region, grid, cells["row"], cells["col"], smap_time(cells["tb_time_seconds"]))
            cells = {k: v[keep] for k, v in cells.items()}
            out.append(_rows_from_cells(path, cells, kind=kind, pols=pols, grid=grid, source=product,
                                        error_std=err, tb_variant=tb_variant, sm_dataset=sm_dataset))
    return ObsTable.concat(out)


def read_l3_sm_p(paths, *, region: Region, kind="sm", error_std=None, pols=("H", "V"), passes=("AM", "PM"),
                 tb_variant="corrected", sm_dataset="soil_moisture") -> ObsTable:
    """Read SMAP L3_SM_P daily 36 km files (SPL3SMP), AM and/or PM passes."""
    return _read_l3(paths, product="smap_l3_sm_p", grid_name="M36", region=region, kind=kind,
                    error_std=error_std, pols=pols, passes=passes, tb_variant=tb_variant, sm_dataset=sm_dataset)


def read_l3_sm_p_e(paths, *, region: Region, kind="sm", error_std=None, pols=("H", "V"), passes=("AM", "PM"),
                   tb_variant="corrected", sm_dataset="soil_moisture") -> ObsTable:
    """Read SMAP L3_SM_P_E daily 9 km files (SPL3SMP_E; footprint "M09", Backus-Gilbert interpolated TB)."""
    return _read_l3(paths, product="smap_l3_sm_p_e", grid_name="M09", region=region, kind=kind,
                    error_std=error_std, pols=pols, passes=passes, tb_variant=tb_variant, sm_dataset=sm_dataset)


# --------------------------------------------------------------------------------------------------
# L1C_TB (half-orbit, 1-D cells, fore and aft looks)
# --------------------------------------------------------------------------------------------------
def read_l1c_tb(paths, *, region: Region, kind="tb", error_std=None, pols=("H", "V"), looks="mean",
                max_fore_aft_std_K=MAX_FORE_AFT_STD_K) -> ObsTable:
    """Read SMAP L1C_TB half-orbit files (SPL1CTB, group ``Global_Projection``).

    looks: "mean" (average the looks that pass QC; GEOSldas), "fore", "aft" or "both" (one row per look).
    """
    product = "smap_l1c_tb"
    _check_kind(kind, ("tb",), product)
    pols = _check_pols(pols)
    if looks not in ("mean", "fore", "aft", "both"):
        raise ValueError(f"{product}: looks must be 'mean', 'fore', 'aft' or 'both', got {looks!r}")
    err = error_std_for(kind, error_std)
    grid = GRIDS["M36"]
    group_name = "Global_Projection"
    look_list = ("fore", "aft") if looks in ("mean", "both") else (looks,)
    out = []
    for path, f in hdf5_files(paths, product):
        if group_name not in f:
            raise ValueError(f"{path}: not a SMAP L1C_TB file: group {group_name!r} is missing")
        g = f[group_name]
        per_look = []
        for lk in ("fore", "aft"):
            per_look += [f"cell_tb_time_seconds_{lk}", f"cell_boresight_incidence_{lk}"]
            for p in pols:
                per_look += [f"cell_tb_{p.lower()}_{lk}", f"cell_tb_qual_flag_{p.lower()}_{lk}"]
        require(path, g, ["cell_row", "cell_column"] + per_look, group_name, product)
        found = _swath_cells(path, g, group_name, "cell_row", "cell_column", per_look, grid, region)
        if found is None:
            continue
        d, row, col = found
        # whole-orbit fore/aft consistency (GEOSldas): std of fore - aft over cells where both pass
        orbit_bad = False
        diffs = []
        for p in pols:
            vals = {}
            for lk in ("fore", "aft"):
                v, fill = unpack(d[f"cell_tb_{p.lower()}_{lk}"], FLOAT_FILL)
                ok = ~fill & ((d[f"cell_tb_qual_flag_{p.lower()}_{lk}"] & 1) == 0) & (v > 100) & (v < 320)
                vals[lk] = np.where(ok, v, np.nan)
            diffs.append(vals["fore"] - vals["aft"])
        dd = np.concatenate(diffs)
        dd = dd[np.isfinite(dd)]
        if dd.size >= 2 and np.std(dd) > max_fore_aft_std_K:
            orbit_bad = True
            log.warning("%s: std(fore - aft) = %.1f K > %.1f K: half-orbit rejected", path, np.std(dd),
                        max_fore_aft_std_K)
        for p in pols:
            look_rows = {}
            for lk in look_list:
                v, fill = unpack(d[f"cell_tb_{p.lower()}_{lk}"], FLOAT_FILL)
                q = d[f"cell_tb_qual_flag_{p.lower()}_{lk}"]
                secs = unpack(d[f"cell_tb_time_seconds_{lk}"], FLOAT_FILL)[0]
                ang = unpack(d[f"cell_boresight_incidence_{lk}"], FLOAT_FILL)[0]
                look_rows[lk] = (v, fill, q, secs, ang)
            if looks == "mean":
                (vf, ff, qf, sf, af), (va, fa, qa, sa, aa) = look_rows["fore"], look_rows["aft"]
                okf = ~ff & ((qf & 1) == 0) & np.isfinite(sf)
                oka = ~fa & ((qa & 1) == 0) & np.isfinite(sa)
                both = okf & oka
                v = np.where(both, 0.5 * (vf + va), np.where(okf, vf, np.where(oka, va, np.nan)))
                secs = np.where(both, 0.5 * (sf + sa),
                                np.where(okf, sf, np.where(oka, sa, np.fmax(sf, sa))))
                ang = np.where(both, 0.5 * (af + aa), np.where(okf, af, np.where(oka, aa, np.nan)))
                # flags: the better look's flag when one passes, else fore's
                q = np.where(okf | ~oka, qf, qa)
                fill = ~(okf | oka) & ff & fa
                combos = [(v, fill, q, secs, ang)]
            else:
                combos = [look_rows[lk] for lk in look_list]
            for v, fill, q, secs, ang in combos:
                time = smap_time(np.where(np.isfinite(secs), secs, FLOAT_FILL))
                keep = region.contains_time(time)
                ang = np.where(np.isfinite(ang), ang, NOMINAL_ANGLE_DEG)
                masks = merge_masks({"fill_value": fill[keep]}, smap_tb_qual_masks(q[keep]),
                                    {"product_quality_flag": np.full(int(keep.sum()), orbit_bad)})
                out.append(make_table(
                    time=time[keep], row=row[keep], col=col[keep], grid=grid, kind="tb", pol=p,
                    angle_deg=ang[keep], value=v[keep], error_std=err, flags=q[keep].astype(np.uint32),
                    footprint="M36", source=product, masks=masks, fov_km=DEFAULT_FOV_KM))
    return ObsTable.concat(out)
