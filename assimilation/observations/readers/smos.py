"""Readers for SMOS products (netCDF): CATDS L3 SM, CATDS L3 TB (multi-angle) and L2 SM (v700).

Formats follow PRODUCTS.md sections 4-6 (checked on the real samples where tagged [V]):

- CATDS L3 SM daily (``MIR_CLF31A/D``): netCDF-3, EASE-Grid 2.0 global 25 km (M25, 584 x 1388), dims
  (lat, lon) with ``lat`` ASCENDING (index 0 south), so the global EASE row is ``583 - lat_index`` in a
  full file. Files may be subsets (e.g. CDO ``selindexbox``): the global row/col are computed from the
  ``lat``/``lon`` coordinates with the EASE formulas and must be consecutive. ``Soil_Moisture`` is
  int16 packed (``scale_factor``, ``add_offset``, ``_FillValue`` read from the file);
  time = 2000-01-01 + ``Mean_Acq_Time_Days`` + ``Mean_Acq_Time_Seconds``. Optional flag variables
  (``Science_Flags``, ``Rfi_Prob``) are used when present (absent in the CDO-subset samples).
- CATDS L3 TB (``MIR_CDF3TA/D``): same grid, 3-D (angle_class = 14, lat, lon) ``BT_H``/``BT_V`` (int16,
  packed), ``Days``/``UTC_Seconds``/``UTC_Microseconds``, optional ``Incidence_Angle`` (else the class
  centre), ``Nviews`` and ``Nb_RFI_Flags`` (RFI ratio). TBs are top-of-atmosphere values rotated to the
  ground frame (H/V), averaged per angle class.
- SMOS L2 SM (``MIR_SMUDP2`` v700 as netCDF): 1-D ISEA 4H9 DGG points (~15 km spacing). Decoded with
  masking OFF: ``Days == 0`` means no retrieval (the point is dropped), ``Seconds == 0`` is midnight, raw 0
  of ``RFI_Prob`` is probability 0; scale factors carry a non-CF ``scale_offset`` attribute (value 0).
  SM is ``Soil_Moisture`` (m3/m3, fill -999); TB is ``TB_ASL_Theta_B_{H,V}`` (surface level, 42.5 deg)
  or ``TB_TOA_Theta_B_{H,V}`` with ``tb_level="toa"``.

Table columns: CATDS rows have footprint ``"M25"`` with the global EASE row/col (row 0 north), x/y the
exact M25 cell centres. L2 rows have footprint ``"gauss"``, row/col -1, x/y from the point's lat/lon
(EPSG:6933) and ``fov_km`` 20 (the SMOS synthesized beam is ~35-50 km wide at -3 dB, i.e. a Gaussian of
about 20 km radius, the value SCIENCE.md section 4 uses for coarse TB). ``flags`` holds ``Science_Flags``
(L2; CATDS when present), else 0.
"""

from __future__ import annotations

import logging

import numpy as np

from smda.assimilation.observations.qc import (
    check_reject_bits,
    merge_masks,
    smos_confidence_masks,
    smos_rfi_mask,
    smos_science_masks,
)
from smda.assimilation.observations.readers.common import (
    DEFAULT_FOV_KM,
    Region,
    error_std_for,
    make_table,
    netcdf_files,
    read_array,
    require,
    smos_time,
    unpack,
)
from smda.assimilation.observations.table import ObsTable
from smda.model.grid import GRIDS

log = logging.getLogger(__name__)

CATDS_TB_ANGLES = (2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 32.5, 37.5, 40.0, 42.5, 47.5, 52.5, 57.5, 62.5)
INT32_FILL = -2147483647
L2_ANGLE_DEG = 42.5
L2_FLOAT_FILL = -999.0


def _attr(var, *names, default=None):
    for n in names:
        if n in var.ncattrs():
            return var.getncattr(n)
    return default


def _decode(path, ds, name, sel=()):
    """Read a variable with its own packing: (float64 values with NaN at fill, fill mask)."""
    raw = read_array(path, ds.variables, name, sel)
    var = ds.variables[name]
    fill = _attr(var, "_FillValue", "missing_value")
    scale = _attr(var, "scale_factor", default=1.0)
    offset = _attr(var, "add_offset", "scale_offset", default=0.0)
    return unpack(raw, fill, scale, offset)


def _catds_rowcol(path, ds):
    """Global M25 rows (per lat index) and cols (per lon index) of a CATDS file or subset."""
    g = GRIDS["M25"]
    lat = read_array(path, ds.variables, "lat").astype(float)
    lon = read_array(path, ds.variables, "lon").astype(float)
    if lat.ndim != 1 or lon.ndim != 1 or lat.size == 0 or lon.size == 0:
        raise ValueError(f"{path}: coordinates 'lat' and 'lon' must be non-empty 1-D arrays")
    rows = g.rowcol_of_latlon(lat, np.zeros_like(lat))[0]
    cols = g.rowcol_of_latlon(np.zeros_like(lon), lon)[1]
    if lat.size > 1 and not np.all(np.diff(rows) == -1):
        raise ValueError(f"{path}: 'lat' is not the ascending EASE-Grid 2.0 25 km latitude axis")
    if lon.size > 1 and not np.all(np.diff(cols) == 1):
        raise ValueError(f"{path}: 'lon' is not the EASE-Grid 2.0 25 km longitude axis")
    # the cell centres must be the coordinates themselves (not another grid of similar spacing)
    clat, clon = g.latlon(rows, np.full(rows.shape, cols[0]))[0], g.latlon(np.full(cols.shape, rows[0]), cols)[1]
    if np.max(np.abs(clat - lat)) > 1e-3 or np.max(np.abs(clon - lon)) > 1e-3:
        raise ValueError(f"{path}: 'lat'/'lon' are not EASE-Grid 2.0 25 km cell centres")
    return rows, cols


def _catds_window(region, rows, cols):
    """Index slices (lat_index, lon_index) of the file covering the region, or None."""
    g = GRIDS["M25"]
    rs, cs = region.grid_slices(g)
    li = np.flatnonzero((rows >= rs.start) & (rows < rs.stop))
    lj = np.flatnonzero((cols >= cs.start) & (cols < cs.stop))
    if li.size == 0 or lj.size == 0:
        return None
    return slice(int(li[0]), int(li[-1]) + 1), slice(int(lj[0]), int(lj[-1]) + 1)


def _squeeze_time(path, name, a, ndim):
    if a.ndim == ndim + 1 and a.shape[0] == 1:
        return a[0]
    if a.ndim != ndim:
        raise ValueError(f"{path}: variable {name!r} has {a.ndim} dimensions, expected {ndim}")
    return a


def _catds_getter(path, ds, lat_sl, lon_sl, lead=()):
    """``get(name, decode=True) -> (values, fill mask or None)`` of a CATDS variable on the (lat, lon) window,
    after the ``lead`` indices (e.g. the angle class); ``get.shape`` is the window's shape."""
    shape = (lat_sl.stop - lat_sl.start, lon_sl.stop - lon_sl.start)

    def get(name, decode=True):
        sel = _cell_sel(ds, name, lat_sl, lon_sl, lead=lead)
        v, f = _decode(path, ds, name, sel) if decode else (read_array(path, ds.variables, name, sel), None)
        if v.shape != shape:
            raise ValueError(f"{path}: variable {name!r} is not on the (lat, lon) grid of the file: shape {v.shape} "
                             f"where {shape} was expected")
        return v, f

    get.shape = shape
    return get


def _cell_sel(ds, name, lat_sl, lon_sl, lead=()):
    """Selection tuple for a (…, lat, lon) variable, allowing a leading length-1 time dimension."""
    var = ds.variables[name]
    extra = var.ndim - 2 - len(lead)
    return (0,) * max(extra, 0) + tuple(lead) + (lat_sl, lon_sl)


def read_l3_sm(paths, *, region: Region, kind="sm", error_std=None, max_rfi_prob=0.2, reject_bits=None) -> ObsTable:
    """Read CATDS SMOS L3 daily soil moisture files (MIR_CLF31A/D) into an :class:`ObsTable`.

    reject_bits: {``Science_Flags``: [bits]} replacing the default rejecting bits (L2 positions).
    """
    product = "smos_l3_sm"
    if kind != "sm":
        raise ValueError(f"{product}: kind must be 'sm' (use smos_l3_tb for brightness temperature), got {kind!r}")
    check_reject_bits(reject_bits, ("Science_Flags",), product)
    err = error_std_for(kind, error_std)
    g = GRIDS["M25"]
    out = []
    for path, ds in netcdf_files(paths, product):
        require(path, ds.variables, ["Soil_Moisture", "Mean_Acq_Time_Days", "Mean_Acq_Time_Seconds", "lat",
                                     "lon"], "the file", product)
        rows, cols = _catds_rowcol(path, ds)
        win = _catds_window(region, rows, cols)
        if win is None:
            continue
        lat_sl, lon_sl = win
        get = _catds_getter(path, ds, lat_sl, lon_sl)
        shape = get.shape
        sm, sm_fill = get("Soil_Moisture")
        days = get("Mean_Acq_Time_Days", decode=False)[0]
        secs = get("Mean_Acq_Time_Seconds", decode=False)[0]
        valid_t = (days != _attr(ds.variables["Mean_Acq_Time_Days"], "_FillValue", default=INT32_FILL)) & (
            secs != _attr(ds.variables["Mean_Acq_Time_Seconds"], "_FillValue", default=INT32_FILL))
        time = smos_time(np.where(valid_t, days, 0), np.where(valid_t, secs, 0), valid=valid_t)
        flags = np.zeros(shape, np.uint32)
        masks = {"fill_value": sm_fill}
        if "Science_Flags" in ds.variables:
            flags = get("Science_Flags", decode=False)[0].astype(np.uint32)
            masks = merge_masks(masks, smos_science_masks(flags, reject_bits))
        else:
            log.info("%s: no Science_Flags variable; only fill, range and time checks apply", path)
        if "Rfi_Prob" in ds.variables:
            rfi = get("Rfi_Prob")[0]
            masks = merge_masks(masks, {"rfi": smos_rfi_mask(rfi_prob=rfi, max_rfi_prob=max_rfi_prob)})
        rr, cc = np.meshgrid(rows[lat_sl], cols[lon_sl], indexing="ij")
        x, y = g.xy(rr, cc)
        keep = (region.contains_xy(x, y) & region.contains_time(time)).ravel()
        out.append(make_table(
            time=time.ravel()[keep], row=rr.ravel()[keep], col=cc.ravel()[keep], grid=g, kind="sm", pol="",
            angle_deg=np.nan, value=sm.ravel()[keep], error_std=err, flags=flags.ravel()[keep],
            footprint="M25", source=product, masks={k: m.ravel()[keep] for k, m in masks.items()}))
    return ObsTable.concat(out)


def read_l3_tb(paths, *, region: Region, kind="tb", error_std=None, pols=("H", "V"), angles=None,
               max_rfi_ratio=0.2) -> ObsTable:
    """Read CATDS SMOS L3 multi-angle TB files (MIR_CDF3TA/D).

    angles: incidence-angle class centres to keep (deg, from :data:`CATDS_TB_ANGLES`); None keeps all 14.
    """
    product = "smos_l3_tb"
    if kind != "tb":
        raise ValueError(f"{product}: kind must be 'tb', got {kind!r}")
    pols = tuple(p.upper() for p in pols)
    if not pols or any(p not in ("H", "V") for p in pols):
        raise ValueError(f"{product}: pols must be a non-empty subset of ('H', 'V'), got {pols!r}")
    err = error_std_for(kind, error_std)
    g = GRIDS["M25"]
    out = []
    for path, ds in netcdf_files(paths, product):
        needed = [f"BT_{p}" for p in pols] + ["Days", "UTC_Seconds", "lat", "lon"]
        require(path, ds.variables, needed, "the file", product)
        var = ds.variables[f"BT_{pols[0]}"]
        n_cls = var.shape[-3] if var.ndim >= 3 else 0
        if var.ndim not in (3, 4) or n_cls != len(CATDS_TB_ANGLES):
            raise ValueError(f"{path}: variable 'BT_{pols[0]}' must be (angle_class=14, lat, lon), got shape "
                             f"{var.shape}")
        centres = np.asarray(CATDS_TB_ANGLES)
        if "inc" in ds.variables:
            inc = read_array(path, ds.variables, "inc").astype(float).ravel()
            if inc.shape == centres.shape:
                centres = inc
        if angles is None:
            classes = np.arange(len(centres))
        else:
            classes = []
            for a in np.atleast_1d(angles):
                hit = np.flatnonzero(np.abs(centres - float(a)) < 0.01)
                if hit.size == 0:
                    raise ValueError(f"{product}: angle {a} is not a class centre; valid: "
                                     f"{', '.join(f'{c:g}' for c in centres)}")
                classes.append(int(hit[0]))
        rows, cols = _catds_rowcol(path, ds)
        win = _catds_window(region, rows, cols)
        if win is None:
            continue
        lat_sl, lon_sl = win
        shape = (lat_sl.stop - lat_sl.start, lon_sl.stop - lon_sl.start)
        rr, cc = np.meshgrid(rows[lat_sl], cols[lon_sl], indexing="ij")
        x, y = g.xy(rr, cc)
        in_box = region.contains_xy(x, y).ravel()
        for k in classes:
            get = _catds_getter(path, ds, lat_sl, lon_sl, lead=(k,))
            days = get("Days", decode=False)[0]
            secs = get("UTC_Seconds", decode=False)[0]
            valid_t = (days != INT32_FILL) & (secs != INT32_FILL)
            us = None
            if "UTC_Microseconds" in ds.variables:
                us = get("UTC_Microseconds", decode=False)[0]
                us = np.where(us == INT32_FILL, 0, us)
            time = smos_time(np.where(valid_t, days, 0), np.where(valid_t, secs, 0), us, valid=valid_t)
            angle = np.full(shape, centres[k])
            if "Incidence_Angle" in ds.variables:
                ia = get("Incidence_Angle")[0]
                angle = np.where(np.isfinite(ia), ia, angle)
            common_masks = {}
            if "Nb_RFI_Flags" in ds.variables and "Nviews" in ds.variables:
                n_rfi = np.nan_to_num(get("Nb_RFI_Flags")[0])
                n_views = np.nan_to_num(get("Nviews")[0])
                common_masks["rfi"] = smos_rfi_mask(n_rfi=n_rfi, n_views=n_views, max_rfi_ratio=max_rfi_ratio)
            keep = in_box & region.contains_time(time).ravel()
            for p in pols:
                tb, fill = get(f"BT_{p}")
                masks = merge_masks({"fill_value": fill}, common_masks)
                out.append(make_table(
                    time=time.ravel()[keep], row=rr.ravel()[keep], col=cc.ravel()[keep], grid=g, kind="tb",
                    pol=p, angle_deg=angle.ravel()[keep], value=tb.ravel()[keep], error_std=err, flags=0,
                    footprint="M25", source=product, masks={m: v.ravel()[keep] for m, v in masks.items()}))
    return ObsTable.concat(out)


def read_l2_sm(paths, *, region: Region, kind="sm", error_std=None, pols=("H", "V"), tb_level="asl",
               max_rfi_prob=0.2, max_rfi_ratio=0.2, max_vod=0.8, reject_bits=None) -> ObsTable:
    """Read SMOS L2 SM v700 netCDF half-orbits (MIR_SMUDP2) into an :class:`ObsTable`.

    kind "sm": ``Soil_Moisture``; SM rows with nadir optical thickness ``Optical_Thickness_Nad`` above
    ``max_vod`` (Np; None: off) are rejected as dense vegetation.

    kind "tb": ``TB_ASL_Theta_B_{H,V}`` (``tb_level="asl"``) or ``TB_TOA_Theta_B_{H,V}`` (``"toa"``) at
    42.5 deg. These are NOT measurements: they are outputs of the retrieval, the TB that the forward model
    gives at 42.5 deg for the parameters fitted to the multi-angle measurements, finite only where a
    retrieval branch ran (``Processing_Flags`` R2/R3/R4; on the real sample 31976 points, over land and
    ocean, against 192 soil moisture values). They are screened like the retrieval they come from:
    ``Science_Flags`` and RFI as for SM, and the ``Confidence_Flags`` bit that describes the fit, CHI2_P
    (bit 7: the fit's chi-square probability is poor, so the modelled TB does not represent the
    measurements; 7233 of the 31976 on the sample). NO_PROD, RANGE and DQX describe the soil moisture
    value and do not reject TB. ``max_vod`` does not apply to TB (the RTM accounts for vegetation).

    reject_bits: {``Science_Flags`` | ``Confidence_Flags``: [bits]} replacing those fields' defaults
    (:mod:`smda.assimilation.observations.qc`).
    """
    product = "smos_l2_sm"
    if kind not in ("tb", "sm"):
        raise ValueError(f"{product}: kind must be 'tb' or 'sm', got {kind!r}")
    if tb_level not in ("asl", "toa"):
        raise ValueError(f"{product}: tb_level must be 'asl' or 'toa', got {tb_level!r}")
    pols = tuple(p.upper() for p in pols)
    if not pols or any(p not in ("H", "V") for p in pols):
        raise ValueError(f"{product}: pols must be a non-empty subset of ('H', 'V'), got {pols!r}")
    check_reject_bits(reject_bits, ("Science_Flags", "Confidence_Flags"), product)
    err = error_std_for(kind, error_std)
    out = []
    for path, ds in netcdf_files(paths, product):
        values = ([f"TB_{tb_level.upper()}_Theta_B_{p}" for p in pols] if kind == "tb" else ["Soil_Moisture"])
        flags_needed = ["Science_Flags", "Confidence_Flags", "RFI_Prob", "N_RFI_X", "N_RFI_Y", "M_AVA0"]
        if kind == "sm" and max_vod is not None:
            flags_needed.append("Optical_Thickness_Nad")
        needed = ["Latitude", "Longitude", "Days", "Seconds"] + values + flags_needed
        require(path, ds.variables, needed, "the file", product)
        lat = read_array(path, ds.variables, "Latitude").astype(float)
        lon = read_array(path, ds.variables, "Longitude").astype(float)
        days = read_array(path, ds.variables, "Days")
        if lat.ndim != 1 or lat.shape != lon.shape or days.shape != lat.shape:
            raise ValueError(f"{path}: 'Latitude', 'Longitude' and 'Days' must be 1-D of equal length")
        geo_ok = (lat != L2_FLOAT_FILL) & (lon != L2_FLOAT_FILL) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        x, y = np.full(lat.shape, np.nan), np.full(lat.shape, np.nan)
        from smda.model.grid import latlon_to_xy

        x[geo_ok], y[geo_ok] = latlon_to_xy(lat[geo_ok], lon[geo_ok])
        idx = np.flatnonzero(geo_ok & (days > 0) & region.contains_xy(x, y))
        if idx.size == 0:
            continue
        sl = slice(int(idx[0]), int(idx[-1]) + 1)

        def get(name, decode=True, sl=sl, idx=idx, ds=ds, path=path):
            if decode:
                v, f = _decode(path, ds, name, sl)
            else:
                v, f = read_array(path, ds.variables, name, sl), None
            if v.shape != (sl.stop - sl.start,):
                raise ValueError(f"{path}: variable {name!r} is not 1-D over n_grid_points like Latitude")
            return v[idx - sl.start], (None if f is None else f[idx - sl.start])

        secs = get("Seconds", decode=False)[0]
        us = get("Microseconds", decode=False)[0] if "Microseconds" in ds.variables else None
        time = smos_time(days[idx], secs, us)
        keep = region.contains_time(time)
        science = get("Science_Flags", decode=False)[0].astype(np.uint32)
        conf = get("Confidence_Flags", decode=False)[0]
        # RFI_Prob: raw 0 is probability 0 (not missing): scale by hand, no fill
        rfi_var = ds.variables["RFI_Prob"]
        rfi_prob = get("RFI_Prob", decode=False)[0] * float(_attr(rfi_var, "scale_factor", default=1.0))
        n_rfi = (get("N_RFI_X", decode=False)[0].astype(float) + get("N_RFI_Y", decode=False)[0])
        m_ava0 = get("M_AVA0", decode=False)[0].astype(float)
        masks = merge_masks(
            smos_science_masks(science, reject_bits, kind), smos_confidence_masks(conf, reject_bits, kind),
            {"rfi": smos_rfi_mask(rfi_prob, n_rfi, m_ava0, max_rfi_prob, max_rfi_ratio)})
        if kind == "sm" and max_vod is not None:
            vod = get("Optical_Thickness_Nad")[0]
            masks = merge_masks(masks, {"dense_vegetation": np.isfinite(vod) & (vod > max_vod)})
        rows = [(values[0], "", np.nan)] if kind == "sm" else [
            (v, p, L2_ANGLE_DEG) for v, p in zip(values, pols, strict=True)]
        for name, pol, ang in rows:
            val, fill = get(name)
            m = merge_masks(masks, {"fill_value": fill})
            out.append(make_table(
                time=time[keep], row=-1, col=-1, grid=None, lat=lat[idx][keep], lon=lon[idx][keep], kind=kind,
                pol=pol, angle_deg=ang, value=val[keep], error_std=err, flags=science[keep], footprint="gauss",
                source=product, masks={k: v[keep] for k, v in m.items()}, fov_km=DEFAULT_FOV_KM))
    return ObsTable.concat(out)
