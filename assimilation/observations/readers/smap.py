"""Readers for SMAP products (HDF5): L1C_TB, L2_SM_P, L3_SM_P, L3_SM_P_E and SMAP/Sentinel-1 L2_SM_SP.

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

QC options (reader options, e.g. from a namelist source's ``options``): ``passes`` (AM descending / PM
ascending; L2 from the file name), ``tb_variant`` ("corrected" or "uncorrected" TB), ``sm_dataset`` (e.g.
``soil_moisture_dca``), ``reject_bits`` ({``tb_qual_flag`` | ``retrieval_qual_flag`` | ``surface_flag``:
[bits]}, replacing that field's defaults, :mod:`smda.assimilation.observations.qc`), ``max_vod``
(``vegetation_opacity`` above it, Np, is ``dense_vegetation``; default off) and ``max_frozen_fraction``
(the product's ``freeze_thaw_fraction`` above it is ``frozen_ground``; None turns it off). Frozen ground
is not taken from ``surface_flag`` bits 7/8 by default (set where frozen ground is "not determined").

Table columns: footprint ``"M36"`` (L3_SM_P_E: ``"gauss"``, 16 km sigma, :func:`read_l3_sm_p_e`; L2_SM_SP:
``"M03"`` or the 1 km cell, :func:`read_l2_sm_sp`) with the global EASE row/col of the cell; x/y are the
exact cell centres (EPSG:6933), lat/lon follow from them; ``flags`` packs the TB quality flag (TB rows)
or the retrieval quality flag (SM rows) in bits 0-15 and ``surface_flag`` in bits 16-31; TB rows carry
the boresight incidence angle (nominal 40 deg where it is fill), SM rows angle NaN and polarization "".
Observations without an acquisition time are not observations and are dropped, as are those outside
the domain or period; everything else stays, with its QC code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from smda.assimilation.observations.qc import (
    check_reject_bits,
    merge_masks,
    smap_retrieval_masks,
    smap_surface_masks,
    smap_tb_qual_masks,
)
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

OPTIONAL_FIELDS = ("static_water_body_fraction", "freeze_thaw_fraction", "vegetation_opacity")
SMAP_FLAG_FIELDS = ("tb_qual_flag", "retrieval_qual_flag", "surface_flag")
TB_VARIANTS = ("corrected", "uncorrected")
#: Gaussian footprint (sigma, km) of the 9 km enhanced products: see :func:`read_l3_sm_p_e`.
ENHANCED_FOV_KM = 16.0
#: Gaussian sigma (km) of one 1 km cell taken as a box: a box of side s has the standard deviation s / sqrt(12).
M01_POINT_FOV_KM = GRIDS["M01"].km / np.sqrt(12.0)
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


def _check_options(product, tb_variant, reject_bits, max_vod, max_frozen_fraction, fields=SMAP_FLAG_FIELDS):
    if tb_variant not in TB_VARIANTS:
        raise ValueError(f"{product}: tb_variant must be one of {TB_VARIANTS}, got {tb_variant!r}")
    check_reject_bits(reject_bits, fields, product)
    for name, v in (("max_vod", max_vod), ("max_frozen_fraction", max_frozen_fraction)):
        if v is not None and not (np.isfinite(float(v)) and float(v) >= 0):
            raise ValueError(f"{product}: {name} must be a number >= 0 or None, got {v!r}")


def _rows_from_cells(path, cells, *, kind, pols, grid, source, error_std, tb_variant, sm_dataset, qc,
                     footprint=None, fov_km=DEFAULT_FOV_KM):
    """Observation rows from a dict of per-cell arrays of an L2/L3 retrieval group (names without suffix).

    ``qc``: the reader's QC options (reject_bits, max_vod, max_frozen_fraction); see the module docstring.
    """
    time = smap_time(cells["tb_time_seconds"])
    surface = cells["surface_flag"].astype(np.uint32)
    optional = {n: unpack(cells[n], FLOAT_FILL)[0] if n in cells else None for n in OPTIONAL_FIELDS}
    ft = optional["freeze_thaw_fraction"] if qc["max_frozen_fraction"] is not None else None
    common = smap_surface_masks(surface, optional["static_water_body_fraction"], kind, qc["reject_bits"], ft,
                                qc["max_frozen_fraction"] or 0.0)
    vod = optional["vegetation_opacity"]
    if qc["max_vod"] is not None and vod is not None:
        common = merge_masks(common, {"dense_vegetation": np.isfinite(vod) & (vod > qc["max_vod"])})
    footprint = footprint or grid.name
    tables = []
    if kind == "tb":
        angle, _ = unpack(cells["boresight_incidence"], FLOAT_FILL)
        angle = np.where(np.isfinite(angle), angle, NOMINAL_ANGLE_DEG)
        for p in pols:
            value, fill = unpack(cells[f"tb_{p.lower()}_{tb_variant}"], FLOAT_FILL)
            qual = cells[f"tb_qual_flag_{p.lower()}"]
            masks = merge_masks({"fill_value": fill}, smap_tb_qual_masks(qual, qc["reject_bits"]), common)
            tables.append(make_table(
                time=time, row=cells["row"], col=cells["col"], grid=grid, kind="tb", pol=p, angle_deg=angle,
                value=value, error_std=error_std, flags=qual.astype(np.uint32) | (surface << 16),
                footprint=footprint, source=source, masks=masks, fov_km=fov_km))
    else:
        value, fill = unpack(cells[sm_dataset], FLOAT_FILL)
        qual = cells["retrieval_qual_flag"]
        masks = merge_masks({"fill_value": fill}, smap_retrieval_masks(qual, qc["reject_bits"]), common)
        tables.append(make_table(
            time=time, row=cells["row"], col=cells["col"], grid=grid, kind="sm", pol="", angle_deg=np.nan,
            value=value, error_std=error_std, flags=qual.astype(np.uint32) | (surface << 16),
            footprint=footprint, source=source, masks=masks, fov_km=fov_km))
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


def _pass_of(path, f) -> str | None:
    """"AM" (descending, 6 am) or "PM" (ascending, 6 pm) of a half-orbit file: the ``_D_``/``_A_`` of its name,
    else ``Metadata/OrbitMeasuredLocation`` ``orbitDirection`` (the ``abstract`` text describes the descending
    pass even in ascending files, PRODUCTS.md section 3); None when neither says."""
    parts = Path(path).name.split("_")
    if "A" in parts or "D" in parts:
        return "PM" if "A" in parts else "AM"
    loc = f.get("Metadata/OrbitMeasuredLocation")
    direction = loc.attrs.get("orbitDirection") if loc is not None else None
    if isinstance(direction, bytes):
        direction = direction.decode()
    return {"Ascending": "PM", "Descending": "AM"}.get(direction)


def _check_passes(product, passes):
    passes = tuple(str(p).upper() for p in np.atleast_1d(passes))
    if not passes or any(p not in ("AM", "PM") for p in passes):
        raise ValueError(f"{product}: passes must be a non-empty subset of ('AM', 'PM'), got {passes!r}")
    return passes


def read_l2_sm_p(paths, *, region: Region, kind="tb", error_std=None, pols=("H", "V"), passes=("AM", "PM"),
                 tb_variant="corrected", sm_dataset="soil_moisture", reject_bits=None, max_vod=None,
                 max_frozen_fraction=0.0) -> ObsTable:
    """Read SMAP L2_SM_P half-orbit files (SPL2SMP) into an :class:`ObsTable` (see the module docstring).

    passes: half-orbits to keep, "AM" (descending, file name ``_D_``) and/or "PM" (ascending, ``_A_``).
    """
    product = "smap_l2_sm_p"
    _check_kind(kind, ("tb", "sm"), product)
    pols = _check_pols(pols)
    passes = _check_passes(product, passes)
    _check_options(product, tb_variant, reject_bits, max_vod, max_frozen_fraction)
    qc = dict(reject_bits=reject_bits, max_vod=max_vod, max_frozen_fraction=max_frozen_fraction)
    err = error_std_for(kind, error_std)
    grid = GRIDS["M36"]
    group_name = "Soil_Moisture_Retrieval_Data"
    out = []
    for path, f in hdf5_files(paths, product):
        if group_name not in f:
            raise ValueError(f"{path}: not a SMAP L2_SM_P file: group {group_name!r} is missing")
        which = _pass_of(path, f)
        if which is not None and which not in passes:
            log.debug("%s: %s half-orbit skipped (passes %s)", path, which, passes)
            continue
        g = f[group_name]
        names = _needed(kind, pols, tb_variant, sm_dataset)
        require(path, g, names + ["EASE_row_index", "EASE_column_index"], group_name, product)
        names += [o for o in OPTIONAL_FIELDS if o in g]
        found = _swath_cells(path, g, group_name, "EASE_row_index", "EASE_column_index", names, grid, region)
        if found is None:
            continue
        cells, row, col = found
        cells["row"], cells["col"] = row, col
        keep = region.contains_time(smap_time(cells["tb_time_seconds"]))
        cells = {k: v[keep] for k, v in cells.items()}
        out.append(_rows_from_cells(path, cells, kind=kind, pols=pols, grid=grid, source=product,
                                    error_std=err, tb_variant=tb_variant, sm_dataset=sm_dataset, qc=qc))
    return ObsTable.concat(out)


# --------------------------------------------------------------------------------------------------
# L3_SM_P / L3_SM_P_E (daily global grids, AM/PM)
# --------------------------------------------------------------------------------------------------
def _read_l3(paths, *, product, grid_name, region, kind, error_std, pols, passes, tb_variant, sm_dataset, qc,
             footprint=None, fov_km=DEFAULT_FOV_KM):
    _check_kind(kind, ("tb", "sm"), product)
    pols = _check_pols(pols)
    passes = _check_passes(product, passes)
    _check_options(product, tb_variant, qc["reject_bits"], qc["max_vod"], qc["max_frozen_fraction"])
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
            require(path, g, [n + suffix for n in names], group_name, product)
            shape = g[names[0] + suffix].shape
            if shape != (grid.n_rows, grid.n_cols):
                raise ValueError(f"{path}: dataset {group_name}/{names[0] + suffix} has shape {shape}, "
                                 f"expected {(grid.n_rows, grid.n_cols)} for the {grid_name} grid")
            if rs.stop <= rs.start or cs.stop <= cs.start:
                continue
            cells = {}
            for n in names + [o for o in OPTIONAL_FIELDS if o + suffix in g]:
                a = read_array(path, g, n + suffix, (rs, cs), group_name)
                if a.shape != (rs.stop - rs.start, cs.stop - cs.start):
                    raise ValueError(f"{path}: dataset {group_name}/{n + suffix} has an unexpected shape")
                cells[n] = a.ravel()
            rr, cc = np.meshgrid(np.arange(rs.start, rs.stop), np.arange(cs.start, cs.stop), indexing="ij")
            cells["row"], cells["col"] = rr.ravel(), cc.ravel()
            keep = _in_region(region, grid, cells["row"], cells["col"], smap_time(cells["tb_time_seconds"]))
            cells = {k: v[keep] for k, v in cells.items()}
            out.append(_rows_from_cells(path, cells, kind=kind, pols=pols, grid=grid, source=product,
                                        error_std=err, tb_variant=tb_variant, sm_dataset=sm_dataset, qc=qc,
                                        footprint=footprint, fov_km=fov_km))
    return ObsTable.concat(out)


def read_l3_sm_p(paths, *, region: Region, kind="sm", error_std=None, pols=("H", "V"), passes=("AM", "PM"),
                 tb_variant="corrected", sm_dataset="soil_moisture", reject_bits=None, max_vod=None,
                 max_frozen_fraction=0.0) -> ObsTable:
    """Read SMAP L3_SM_P daily 36 km files (SPL3SMP), AM and/or PM passes; footprint the M36 box."""
    qc = dict(reject_bits=reject_bits, max_vod=max_vod, max_frozen_fraction=max_frozen_fraction)
    return _read_l3(paths, product="smap_l3_sm_p", grid_name="M36", region=region, kind=kind, error_std=error_std,
                    pols=pols, passes=passes, tb_variant=tb_variant, sm_dataset=sm_dataset, qc=qc)


def read_l3_sm_p_e(paths, *, region: Region, kind="sm", error_std=None, pols=("H", "V"), passes=("AM", "PM"),
                   tb_variant="corrected", sm_dataset="soil_moisture", reject_bits=None, max_vod=None,
                   max_frozen_fraction=0.0, fov_km=ENHANCED_FOV_KM) -> ObsTable:
    """Read SMAP L3_SM_P_E daily 9 km files (SPL3SMP_E), AM and/or PM passes.

    Footprint: the 9 km posting is an interpolation, not the resolution. The TB are Backus-Gilbert optimal
    interpolations of the radiometer samples onto the M09 grid (Chaubell et al. 2016, SMAP L1B/C enhanced
    ATBD, JPL D-56290; Chan et al. 2018, doi:10.1016/j.rse.2017.08.025), so each value still sees the
    antenna's ~39 x 47 km 3-dB footprint (Entekhabi et al. 2010, doi:10.1109/JPROC.2010.2043918), narrowed
    to an effective ~33 km by the interpolation. Rows therefore have footprint ``"gauss"`` centred on the
    M09 cell with ``fov_km`` = 16 km (Gaussian sigma; FWHM = 2.355 sigma = 38 km, between the two); row/col
    keep the M09 cell. The retrieved soil moisture inherits the footprint of the TB it comes from.
    """
    if not (np.isfinite(float(fov_km)) and float(fov_km) > 0):
        raise ValueError(f"smap_l3_sm_p_e: fov_km must be > 0 km, got {fov_km!r}")
    qc = dict(reject_bits=reject_bits, max_vod=max_vod, max_frozen_fraction=max_frozen_fraction)
    return _read_l3(paths, product="smap_l3_sm_p_e", grid_name="M09", region=region, kind=kind, error_std=error_std,
                    pols=pols, passes=passes, tb_variant=tb_variant, sm_dataset=sm_dataset, qc=qc,
                    footprint="gauss", fov_km=float(fov_km))


# --------------------------------------------------------------------------------------------------
# L2_SM_SP (SMAP/Sentinel-1 active-passive, 3 km and 1 km scenes)
# --------------------------------------------------------------------------------------------------
#: footprint and Gaussian sigma (km; for the M03 box, the sigma of the same box if a Gaussian is asked for)
SP_RESOLUTIONS = {"3km": ("M03", GRIDS["M03"].km / np.sqrt(12.0)), "1km": ("gauss", M01_POINT_FOV_KM)}


def read_l2_sm_sp(paths, *, region: Region, kind="sm", error_std=None, resolution="3km", product_error=False,
                  reject_bits=None, max_frozen_fraction=0.0) -> ObsTable:
    """Read SMAP/Sentinel-1 L2_SM_SP scene files (SPL2SMAP_S) into an :class:`ObsTable` (soil moisture).

    Format (NSIDC SPL2SMAP_S product specification; dataset names [D], see PRODUCTS.md): HDF5 with groups
    ``Soil_Moisture_Retrieval_Data_3km`` and ``Soil_Moisture_Retrieval_Data_1km``, 2-D scene arrays whose
    names end in ``_3km`` / ``_1km``: ``soil_moisture`` (m3/m3, fill -9999), ``soil_moisture_std_dev``,
    ``retrieval_qual_flag`` (bit 0 set: not recommended), ``surface_flag`` (SMAP bits, optional),
    ``EASE_row_index`` / ``EASE_column_index`` (global EASE-Grid 2.0 M03 or M01 indices, fill 65534) and
    ``spacecraft_overpass_time_seconds`` (SMAP J2000 seconds, PRODUCTS.md section 0). Name e.g.
    ``SMAP_L2_SM_SP_1AIWDV_20200209T061215_20200208T183607_005W11N_R16515_001.h5``.

    resolution: "3km" (footprint the M03 box) or "1km" (footprint the one M01 cell: ``"gauss"`` with sigma
    1/sqrt(12) km, the sigma of a 1 km box, whose 2-sigma search radius holds only the cell itself).
    product_error: True takes ``soil_moisture_std_dev`` as the error where it is finite and > 0 (else
    ``error_std``). QC: ``retrieval_qual_flag`` and ``surface_flag`` as for SMAP L2 (``reject_bits``), the
    product's ``freeze_thaw_fraction`` when present.
    """
    product = "smap_l2_sm_sp"
    _check_kind(kind, ("sm",), product)
    if resolution not in SP_RESOLUTIONS:
        raise ValueError(f"{product}: resolution must be one of {tuple(SP_RESOLUTIONS)}, got {resolution!r}")
    check_reject_bits(reject_bits, ("retrieval_qual_flag", "surface_flag"), product)
    err = error_std_for(kind, error_std)
    footprint, fov = SP_RESOLUTIONS[resolution]
    grid = GRIDS["M03" if resolution == "3km" else "M01"]
    group_name = f"Soil_Moisture_Retrieval_Data_{resolution}"
    sfx = f"_{resolution}"
    core = ["soil_moisture", "retrieval_qual_flag", "EASE_row_index", "EASE_column_index",
            "spacecraft_overpass_time_seconds"]
    out = []
    for path, f in hdf5_files(paths, product):
        if group_name not in f:
            raise ValueError(f"{path}: not a SMAP L2_SM_SP file: group {group_name!r} is missing")
        g = f[group_name]
        require(path, g, [n + sfx for n in core], group_name, product)
        names = core + [n for n in ("soil_moisture_std_dev", "surface_flag", "freeze_thaw_fraction") if n + sfx in g]
        d = {n: read_array(path, g, n + sfx, group_label=group_name) for n in names}
        shape = d["soil_moisture"].shape
        bad = [n for n in names if d[n].shape != shape]
        if bad:
            raise ValueError(f"{path}: {group_name} dataset(s) {bad} do not have the shape {shape} of soil_moisture{sfx}")
        d = {n: a.ravel() for n, a in d.items()}
        row, col = d["EASE_row_index"].astype(np.int64), d["EASE_column_index"].astype(np.int64)
        ok = (row != UINT16_FILL) & (col != UINT16_FILL) & (row < grid.n_rows) & (col < grid.n_cols)
        time = smap_time(d["spacecraft_overpass_time_seconds"])
        x, y = grid.xy(np.where(ok, row, 0), np.where(ok, col, 0))
        keep = ok & region.contains_xy(x, y) & region.contains_time(time)
        d = {n: a[keep] for n, a in d.items()}
        value, fill = unpack(d["soil_moisture"], FLOAT_FILL)
        surface = d["surface_flag"].astype(np.uint32) if "surface_flag" in d else np.zeros(value.shape, np.uint32)
        ft = unpack(d["freeze_thaw_fraction"], FLOAT_FILL)[0] if "freeze_thaw_fraction" in d else None
        masks = merge_masks({"fill_value": fill}, smap_retrieval_masks(d["retrieval_qual_flag"], reject_bits),
                            smap_surface_masks(surface, kind="sm", reject_bits=reject_bits, freeze_thaw_fraction=ft,
                                               max_frozen_fraction=max_frozen_fraction))
        e = np.full(value.shape, err)
        if product_error and "soil_moisture_std_dev" in d:
            sd = unpack(d["soil_moisture_std_dev"], FLOAT_FILL)[0]
            e = np.where(np.isfinite(sd) & (sd > 0), sd, err)
        out.append(make_table(
            time=time[keep], row=row[keep], col=col[keep], grid=grid, kind="sm", pol="", angle_deg=np.nan,
            value=value, error_std=e, flags=d["retrieval_qual_flag"].astype(np.uint32) | (surface << 16),
            footprint=footprint, source=product, masks=masks, fov_km=fov))
    return ObsTable.concat(out)


# --------------------------------------------------------------------------------------------------
# L1C_TB (half-orbit, 1-D cells, fore and aft looks)
# --------------------------------------------------------------------------------------------------
def read_l1c_tb(paths, *, region: Region, kind="tb", error_std=None, pols=("H", "V"), looks="mean",
                max_fore_aft_std_K=MAX_FORE_AFT_STD_K, reject_bits=None) -> ObsTable:
    """Read SMAP L1C_TB half-orbit files (SPL1CTB, group ``Global_Projection``).

    looks: "mean" (average the looks that pass QC bit 0; GEOSldas), "fore", "aft" or "both" (one row per
    look). reject_bits: {``tb_qual_flag``: [bits]} rejecting the (averaged) rows (default bit 0).
    """
    product = "smap_l1c_tb"
    _check_kind(kind, ("tb",), product)
    check_reject_bits(reject_bits, ("tb_qual_flag",), product)
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
                masks = merge_masks({"fill_value": fill[keep]}, smap_tb_qual_masks(q[keep], reject_bits),
                                    {"product_quality_flag": np.full(int(keep.sum()), orbit_bad)})
                out.append(make_table(
                    time=time[keep], row=row[keep], col=col[keep], grid=grid, kind="tb", pol=p,
                    angle_deg=ang[keep], value=v[keep], error_std=err, flags=q[keep].astype(np.uint32),
                    footprint="M36", source=product, masks=masks, fov_km=DEFAULT_FOV_KM))
    return ObsTable.concat(out)
