"""Generic observation readers: a user's own table, gridded CF netCDF, TU Wien time-series cell files.

All three return the canonical :class:`~smda.assimilation.observations.table.ObsTable` with the same
domain/period subsetting as the product readers (:mod:`.common`). Soil moisture units (option
``units``, else the file's ``units`` attribute) are those of :data:`.common.SM_UNITS`: volumetric units
are converted to m3/m3; degree of saturation (``percent_saturation``, ``saturation``) is converted with
the option ``porosity`` (m3/m3: a number, e.g. the model's mean porosity, or the name of a column or
variable of the file holding it per observation); without ``porosity`` the values stay in degree of
saturation (0-1, range check 0-1) and the source must be rescaled onto the model's climatology (CDF
matching or anomalies), which :func:`smda.assimilation.observations.readers.in_saturation_units` tells
the run. TB is in K.

Footprints. A pixel of side s (a box) has the same second moment as a Gaussian of sigma
``s / sqrt(12)``, the default ``fov_km`` of gridded pixels on a grid that is not EASE-Grid 2.0; on
EASE-Grid 2.0 M03/M09/M25/M36 (EPSG:6933 with those cell centres) the footprint is the exact pixel box,
and a 1 km pixel (M01, or a point observation of a table without ``fov_km``) is the one 1 km cell (a
Gaussian of sigma 1/sqrt(12) km has only that cell within its 2-sigma search radius).

* ``table`` (:func:`read_table`): CSV (``.csv``, ``.txt``) or netCDF (1-D variables along one dimension) of
  point or footprint observations, one row each: ``time`` (ISO 8601 UTC, or a CF time variable), ``lat``,
  ``lon`` (deg), ``value``, optional ``error`` (same unit as value), ``kind`` ("tb"/"sm"), ``pol``
  ("H"/"V", TB), ``angle_deg`` (TB; default 40), ``fov_km`` (Gaussian sigma), ``flag`` (non-zero:
  rejected as ``product_quality_flag``); other names through ``columns={standard: name in file}``.
* ``gridded`` (:func:`read_gridded`): a CF netCDF variable on a regular lat/lon or projected grid
  (dimensions ``([time,] y, x)``; the CRS from the ``grid_mapping`` variable's ``crs_wkt``/``spatial_ref``
  or CF attributes, or 1-D ``lat``/``lon`` coordinates in degrees), optional per-pixel uncertainty
  (``error_variable``) and flag variables (``flag_variables={name: [bits]}`` or
  ``{name: {"bits": [...], "reason": qc reason}}``); CF packing and fill values applied.
* ``tuw_cells`` (:func:`read_tuw_cells`): time series "cell" files of the TU Wien tools (pynetcf
  ``GriddedNcOrthoMultiTs`` or ``GriddedNcContiguousRaggedTs`` with a pygeogrids ``grid.nc``), as written
  by e.g. smap_io/ascat reshuffles and used by pytesmo/QA4SM. Needs the optional packages pynetcf and
  pygeogrids (``pip install 'smda[tuw]'``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from smda.assimilation.observations.qc import QC_CODES, bit_masks, merge_masks
from smda.assimilation.observations.readers.common import (
    DEFAULT_FOV_KM,
    TB_UNITS,
    Region,
    check_paths,
    error_std_for,
    make_table,
    netcdf_files,
    to_volumetric,
)
from smda.assimilation.observations.table import ObsTable
from smda.model.grid import GRIDS, latlon_to_xy

log = logging.getLogger(__name__)

#: Gaussian sigma (km) of a box pixel of side s km: s / sqrt(12) (equal second moments).
BOX_TO_SIGMA = 1.0 / np.sqrt(12.0)
POINT_FOV_KM = GRIDS["M01"].km * BOX_TO_SIGMA
NOMINAL_TB_ANGLE_DEG = 40.0
EARTH_RADIUS_KM = 6371.0088
TABLE_COLUMNS = ("time", "lat", "lon", "value", "error", "kind", "pol", "angle_deg", "fov_km", "flag")
BOX_GRIDS = ("M03", "M09", "M25", "M36")


def _kinds(kind, where):
    if kind not in ("tb", "sm"):
        raise ValueError(f"{where}: kind must be 'tb' or 'sm', got {kind!r}")


def _convert(kind, value, error, units, porosity, where):
    """Value and error in the table's units (K or m3/m3) and the range override for make_table."""
    if kind == "tb":
        if units is not None and str(units) not in TB_UNITS:
            raise ValueError(f"{where}: brightness temperature must be in K, got units {units!r}")
        return np.asarray(value, float), error, None
    return to_volumetric(value, error, "m3/m3" if units is None else units, porosity, where)


def _errors(error, err, n):
    """Per-row error std: the file's value where finite and > 0, else the default ``err``."""
    if error is None:
        return np.full(n, err)
    e = np.asarray(error, float)
    return np.where(np.isfinite(e) & (e > 0), e, err)


def _datetime64(values, units=None, calendar="standard", where=""):
    """Times to UTC ``datetime64[s]``: CF numbers with ``units`` (netCDF), or strings / datetimes (pandas)."""
    import pandas as pd

    if units is not None:
        import netCDF4

        arr = np.ma.masked_invalid(np.ma.asarray(values, float))
        dts = netCDF4.num2date(arr.filled(0.0), units, calendar or "standard", only_use_cftime_datetimes=False,
                               only_use_python_datetimes=True)
        t = np.array([np.datetime64(d.replace(tzinfo=None), "s") for d in np.ravel(dts)]).reshape(np.shape(arr))
        t[np.ma.getmaskarray(arr)] = np.datetime64("NaT")
        return t.astype("datetime64[s]")
    try:
        t = pd.to_datetime(pd.Series(np.ravel(values)), utc=True, errors="raise")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: times cannot be parsed ({exc})") from None
    return t.dt.tz_localize(None).to_numpy().astype("datetime64[s]").reshape(np.shape(values))


# --------------------------------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------------------------------
def _table_columns(path, columns):
    """{standard name: array} of a CSV or netCDF table (``columns`` maps standard names to the file's)."""
    names = {c: (columns or {}).get(c, c) for c in TABLE_COLUMNS}
    unknown = sorted(set(columns or {}) - set(TABLE_COLUMNS) - {"porosity"})
    if unknown:
        raise ValueError(f"table: unknown column role(s) {unknown} in 'columns'; valid: {', '.join(TABLE_COLUMNS)}")
    if "porosity" in (columns or {}):
        names["porosity"] = columns["porosity"]
    out, attrs = {}, {}
    if path.suffix.lower() in (".nc", ".nc4", ".cdf"):
        for _, ds in netcdf_files([path], "the table reader", masked=True):
            for std, name in names.items():
                if name in ds.variables:
                    v = ds.variables[name]
                    if v.ndim != 1:
                        raise ValueError(f"{path}: table variable {name!r} must be 1-D, has dimensions {v.dimensions}")
                    if std == "time" and "units" in v.ncattrs():
                        out[std] = _datetime64(v[:], v.units, getattr(v, "calendar", "standard"), str(path))
                    else:
                        a = v[:]
                        out[std] = np.ma.filled(a.astype(float), np.nan) if a.dtype.kind in "fiu" else np.asarray(a)
                    attrs[std] = {k: v.getncattr(k) for k in v.ncattrs()}
    else:
        import pandas as pd

        try:
            df = pd.read_csv(path, comment="#", skipinitialspace=True)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise ValueError(f"{path}: cannot be read as a CSV table ({exc})") from exc
        for std, name in names.items():
            if name in df.columns:
                out[std] = df[name].to_numpy()
    missing = [names[c] for c in ("time", "lat", "lon", "value") if c not in out]
    if missing:
        raise ValueError(f"{path}: table lacks column(s) {missing} (map other names with the option 'columns')")
    n = len(out["value"])
    if any(len(a) != n for a in out.values()):
        raise ValueError(f"{path}: table columns have different lengths")
    if not np.issubdtype(np.asarray(out["time"]).dtype, np.datetime64):
        out["time"] = _datetime64(out["time"], where=str(path))
    return out, attrs


def read_table(paths, *, region: Region, kind=None, error_std=None, columns=None, units=None, porosity=None,
               fov_km=None) -> ObsTable:
    """Read CSV or netCDF tables of point or footprint observations (see the module docstring).

    kind: keep rows of this kind ("tb"/"sm"); None takes every row of the ``kind`` column. units: soil
    moisture units of the ``value``/``error`` columns (default: the netCDF ``units`` attribute, else m3/m3).
    porosity: m3/m3 number or the name of a porosity column, for units of saturation. fov_km: Gaussian sigma
    of rows without a ``fov_km`` column (default: the one 1 km cell).
    """
    where = "table"
    if kind is not None:
        _kinds(kind, where)
    out = []
    for path in check_paths(paths):
        cols, attrs = _table_columns(path, {**(columns or {}), **({"porosity": porosity} if isinstance(porosity, str)
                                                                   else {})})
        n = len(cols["value"])
        if "kind" in cols:
            k = np.char.lower(np.asarray(cols["kind"]).astype(str))
        elif kind is not None:
            k = np.full(n, kind)
        else:
            raise ValueError(f"{path}: table has no 'kind' column: give the source's kind ('tb' or 'sm')")
        bad = sorted(set(k) - {"tb", "sm"})
        if bad:
            raise ValueError(f"{path}: 'kind' values must be 'tb' or 'sm', got {bad}")
        keep = np.ones(n, bool) if kind is None else (k == kind)
        if kind is not None and (~keep).any():
            log.info("%s: %d rows of another kind than %r skipped", path, int((~keep).sum()), kind)
        lat = np.asarray(cols["lat"], float)
        lon = np.asarray(cols["lon"], float)
        geo = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        x, y = np.full(n, np.nan), np.full(n, np.nan)
        x[geo], y[geo] = latlon_to_xy(lat[geo], lon[geo])
        keep &= geo & region.contains_xy(x, y) & region.contains_time(cols["time"])
        file_units = units if units is not None else attrs.get("value", {}).get("units")
        for kd in ("tb", "sm"):
            sel = keep & (k == kd)
            if not sel.any():
                continue
            err = error_std_for(kd, error_std)
            phi = porosity
            if isinstance(porosity, str):
                phi = np.asarray(cols["porosity"], float)[sel] if "porosity" in cols else None
                if phi is None:
                    raise ValueError(f"{path}: porosity column {porosity!r} not found")
            error = np.asarray(cols["error"], float)[sel] if "error" in cols else None
            value, error, ranges = _convert(kd, np.asarray(cols["value"], float)[sel], error, file_units, phi,
                                            str(path))
            if kd == "tb":
                pol = np.char.upper(np.asarray(cols.get("pol", np.full(n, "")), str)[sel])
                if not np.all(np.isin(pol, ("H", "V"))):
                    raise ValueError(f"{path}: TB rows need a 'pol' column of 'H' or 'V'")
                angle = np.asarray(cols.get("angle_deg", np.full(n, np.nan)), float)[sel]
                angle = np.where(np.isfinite(angle), angle, NOMINAL_TB_ANGLE_DEG)
            else:
                pol, angle = "", np.nan
            # an empty fov_km is a point: the default (option fov_km, else the one 1 km cell)
            fov = np.asarray(cols.get("fov_km", np.full(n, np.nan)), float)[sel]
            fov = np.where(np.isfinite(fov), fov, fov_km or POINT_FOV_KM)
            if not np.all(fov > 0):
                raise ValueError(f"{path}: fov_km must be > 0 km on every row")
            masks = {"fill_value": ~np.isfinite(value)}
            if "flag" in cols:
                masks["product_quality_flag"] = np.nan_to_num(np.asarray(cols["flag"], float)[sel]) != 0
            out.append(make_table(
                time=cols["time"][sel], row=-1, col=-1, grid=None, lat=lat[sel], lon=lon[sel], kind=kd, pol=pol,
                angle_deg=angle, value=value, error_std=_errors(error, err, sel.sum()), flags=0, footprint="gauss",
                source="table", masks=masks, fov_km=fov, ranges=ranges))
    return ObsTable.concat(out)


# --------------------------------------------------------------------------------------------------
# gridded CF netCDF
# --------------------------------------------------------------------------------------------------
def _grid_crs(path, ds, var):
    """pyproj CRS of a CF variable: its grid mapping's WKT or CF attributes, else geographic when its last two
    dimensions are latitude/longitude coordinates."""
    import pyproj

    gm = getattr(var, "grid_mapping", None)
    if gm:
        gm = gm.split(":")[0].strip()
        if gm not in ds.variables:
            raise ValueError(f"{path}: grid_mapping variable {gm!r} of {var.name!r} is missing")
        attrs = {k: ds.variables[gm].getncattr(k) for k in ds.variables[gm].ncattrs()}
        for key in ("crs_wkt", "spatial_ref"):
            if key in attrs:
                return pyproj.CRS.from_wkt(str(attrs[key]))
        try:
            return pyproj.CRS.from_cf(attrs)
        except pyproj.exceptions.CRSError as exc:
            raise ValueError(f"{path}: grid mapping {gm!r} is not understood ({exc})") from None
    ydim, xdim = var.dimensions[-2:]
    units = [str(getattr(ds.variables[d], "units", "")) if d in ds.variables else "" for d in (ydim, xdim)]
    if units[0].startswith("degree") and units[1].startswith("degree"):
        return pyproj.CRS.from_epsg(4326)
    raise ValueError(f"{path}: {var.name!r} has no grid_mapping and its dimensions {ydim!r}, {xdim!r} are not "
                     f"latitude/longitude in degrees: the grid's CRS is unknown")


def _ease_box(crs, xc, yc):
    """(grid name, rows, cols) when the coordinates are the cell centres of an EASE-Grid 2.0 box grid, else None."""
    try:
        if crs.to_epsg() != 6933:
            return None
    except Exception:  # noqa: BLE001 - pyproj raises several types for CRSs without an EPSG code
        return None
    step = np.median(np.abs(np.diff(xc))) if xc.size > 1 else np.median(np.abs(np.diff(yc))) if yc.size > 1 else None
    for name in ("M01", *BOX_GRIDS):
        g = GRIDS[name]
        if step is not None and not np.isclose(step, g.cell_m, rtol=1e-6):
            continue
        cols = (xc - g.x0) / g.cell_m - 0.5
        rows = (g.y0 - yc) / g.cell_m - 0.5
        if np.allclose(cols, np.rint(cols), atol=1e-3) and np.allclose(rows, np.rint(rows), atol=1e-3):
            return name, np.rint(rows).astype(np.int64), np.rint(cols).astype(np.int64)
    return None


def _flag_masks(path, ds, spec, get):
    """Masks of the ``flag_variables`` option: {name: [bits]} or {name: {"bits": [...], "reason": reason}}."""
    masks = {}
    for name, rule in (spec or {}).items():
        if name not in ds.variables:
            raise ValueError(f"{path}: flag variable {name!r} not found")
        bits, reason = (rule.get("bits", ()), rule.get("reason", "product_quality_flag")) if isinstance(rule, dict) \
            else (rule, "product_quality_flag")
        if reason not in QC_CODES or reason == "accepted":
            raise ValueError(f"flag_variables[{name!r}]: reason {reason!r} is not a QC reason; valid: "
                             f"{', '.join(r for r in QC_CODES if r != 'accepted')}")
        raw = np.ma.filled(get(name, scaled=False), 0).astype(np.int64)
        m = bit_masks(raw, [int(b) for b in np.atleast_1d(bits)], "", None)
        masks = merge_masks(masks, {reason: np.any(list(m.values()), axis=0) if m else np.zeros(raw.shape, bool)})
    return masks


def read_gridded(paths, *, region: Region, kind="sm", error_std=None, variable=None, units=None, porosity=None,
                 error_variable=None, flag_variables=None, time_variable="time", pol=None, angle_deg=None,
                 footprint="auto", fov_km=None) -> ObsTable:
    """Read a gridded CF netCDF variable of soil moisture or TB (see the module docstring).

    variable: the data variable (default: the only variable with two or more dimensions that is not a
    coordinate). time_variable: a 1-D time coordinate (a leading dimension) or a per-pixel time variable of the
    data's shape; absent, the file's global ``time_coverage_start`` is used. pol, angle_deg: TB polarization
    ("H"/"V", required) and incidence angle (deg, default 40). footprint: "auto" (EASE-Grid 2.0 box where
    the grid is one, else Gaussian), "box" (EASE box grids only) or "gauss"; fov_km: the Gaussian sigma
    (default: s/sqrt(12) of the pixel side s).
    """

    where = "gridded"
    _kinds(kind, where)
    if footprint not in ("auto", "box", "gauss"):
        raise ValueError(f"{where}: footprint must be 'auto', 'box' or 'gauss', got {footprint!r}")
    if kind == "tb" and (pol is None or str(pol).upper() not in ("H", "V")):
        raise ValueError(f"{where}: TB needs the option pol: 'H' or 'V'")
    err = error_std_for(kind, error_std)
    out = []
    for path, ds in netcdf_files(paths, "the gridded reader", masked=True):
        name = variable
        if name is None:
            cands = [v for v, obj in ds.variables.items() if obj.ndim >= 2 and v not in ds.dimensions
                     and v != time_variable]
            if len(cands) != 1:
                raise ValueError(f"{path}: give the option 'variable' (candidates: {', '.join(cands) or 'none'})")
            name = cands[0]
        if name not in ds.variables:
            raise ValueError(f"{path}: variable {name!r} not found; variables: {', '.join(ds.variables)}")
        var = ds.variables[name]
        if var.ndim < 2:
            raise ValueError(f"{path}: variable {name!r} must have (y, x) as its last dimensions")
        ydim, xdim = var.dimensions[-2:]
        for d in (ydim, xdim):
            if d not in ds.variables or ds.variables[d].ndim != 1:
                raise ValueError(f"{path}: dimension {d!r} of {name!r} has no 1-D coordinate variable")
        crs = _grid_crs(path, ds, var)
        yc = np.asarray(ds.variables[ydim][:], float)
        xc = np.asarray(ds.variables[xdim][:], float)
        xx, yy = np.meshgrid(xc, yc)
        import pyproj

        to_ll = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform(xx, yy)
        ex, ey = latlon_to_xy(lat, lon)
        inside = region.contains_xy(ex, ey) & np.isfinite(ex) & np.isfinite(ey)
        if not inside.any():
            continue
        ri, ci = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        ys, xs = slice(int(ri[0]), int(ri[-1]) + 1), slice(int(ci[0]), int(ci[-1]) + 1)
        lead = var.shape[:-2]
        tvar = ds.variables.get(time_variable)
        tdim = bool(lead) and tvar is not None and tvar.dimensions[:1] == var.dimensions[:1]
        if any(n != 1 for i, n in enumerate(lead) if not (i == 0 and tdim)):
            raise ValueError(f"{path}: variable {name!r} has extra dimensions {var.dimensions[:-2]}; only a leading "
                             f"time dimension ({time_variable!r}) is supported")
        nt = lead[0] if tdim else 1

        def get(vname, t, scaled=True, path=path, ds=ds, var=var, ys=ys, xs=xs):
            v = ds.variables[vname]
            v.set_auto_maskandscale(scaled)
            if v.dimensions[-2:] != var.dimensions[-2:]:
                raise ValueError(f"{path}: variable {vname!r} is not on the grid of {var.name!r}")
            sel = (t,) * (v.ndim - 2) if v.ndim > 2 else ()
            return v[sel + (ys, xs)]

        # pixel size and footprint
        box = _ease_box(crs, xc[xs], yc[ys]) if footprint != "gauss" else None
        if footprint == "box" and (box is None or box[0] == "M01"):
            raise ValueError(f"{path}: footprint 'box' needs an EASE-Grid 2.0 M03/M09/M25/M36 grid (EPSG:6933)")
        sub_lat, sub_lon = lat[ys, xs], lon[ys, xs]
        if crs.is_geographic:
            dlon = np.abs(np.median(np.diff(xc))) if xc.size > 1 else np.nan
            dlat = np.abs(np.median(np.diff(yc))) if yc.size > 1 else np.nan
            side = EARTH_RADIUS_KM * np.radians(np.sqrt(dlat * dlon * np.cos(np.radians(sub_lat))))
        else:
            to_m = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
            dx = np.abs(np.median(np.diff(xc))) if xc.size > 1 else np.nan
            dy = np.abs(np.median(np.diff(yc))) if yc.size > 1 else np.nan
            side = np.full(sub_lat.shape, np.sqrt(dx * dy) * to_m / 1000.0)
        sigma = np.full(sub_lat.shape, float(fov_km)) if fov_km is not None else side * BOX_TO_SIGMA
        if not np.all(np.isfinite(sigma) & (sigma > 0)):
            raise ValueError(f"{path}: the pixel size cannot be found from one-pixel axes: give the option fov_km")
        fp_name, rows, cols = ("gauss", -1, -1)
        if box is not None and box[0] != "M01":
            fp_name, rr, cc = box
            rows, cols = np.meshgrid(rr, cc, indexing="ij")
        u = units if units is not None else getattr(var, "units", None)
        phi = porosity
        if isinstance(porosity, str):
            if porosity not in ds.variables:
                raise ValueError(f"{path}: porosity variable {porosity!r} not found")
            phi = np.ma.filled(get(porosity, 0).astype(float), np.nan)
        for t in range(nt):
            value = np.ma.filled(get(name, t).astype(float), np.nan)
            if tvar is not None and tvar.dimensions[-2:] == var.dimensions[-2:]:
                when = _datetime64(np.ma.filled(get(time_variable, t, scaled=True).astype(float), np.nan),
                                   tvar.units, getattr(tvar, "calendar", "standard"), str(path))
            elif tvar is not None:
                when = np.full(value.shape, _datetime64(np.atleast_1d(tvar[:])[t], tvar.units,
                                                        getattr(tvar, "calendar", "standard"), str(path)))
            elif "time_coverage_start" in ds.ncattrs():
                when = np.full(value.shape, _datetime64([ds.time_coverage_start], where=str(path))[0])
            else:
                raise ValueError(f"{path}: no time: give a time variable ('time_variable') or time_coverage_start")
            error = None
            if error_variable is not None:
                if error_variable not in ds.variables:
                    raise ValueError(f"{path}: error variable {error_variable!r} not found")
                error = np.ma.filled(get(error_variable, t).astype(float), np.nan)
            value, error, ranges = _convert(kind, value, error, u, phi, f"{path}: {name}")
            keep = (inside[ys, xs] & region.contains_time(when)).ravel()
            masks = merge_masks({"fill_value": ~np.isfinite(value)},
                                _flag_masks(path, ds, flag_variables, lambda n, scaled=True, t=t: get(n, t, scaled)))
            rv = np.broadcast_to(rows, value.shape).ravel()[keep] if fp_name != "gauss" else -1
            cv = np.broadcast_to(cols, value.shape).ravel()[keep] if fp_name != "gauss" else -1
            out.append(make_table(
                time=when.ravel()[keep], row=rv, col=cv, grid=GRIDS[fp_name] if fp_name != "gauss" else None,
                lat=sub_lat.ravel()[keep], lon=sub_lon.ravel()[keep], kind=kind,
                pol=str(pol).upper() if kind == "tb" else "",
                angle_deg=(NOMINAL_TB_ANGLE_DEG if angle_deg is None else float(angle_deg)) if kind == "tb" else np.nan,
                value=value.ravel()[keep], error_std=_errors(None if error is None else error.ravel()[keep], err,
                                                             int(keep.sum())),
                flags=0, footprint=fp_name, source="gridded", masks={m: v.ravel()[keep] for m, v in masks.items()},
                fov_km=sigma.ravel()[keep], ranges=ranges))
    return ObsTable.concat(out)


# --------------------------------------------------------------------------------------------------
# TU Wien time-series cell files (pynetcf / pygeogrids)
# --------------------------------------------------------------------------------------------------
def read_tuw_cells(paths, *, region: Region, kind="sm", error_std=None, variable="sm", grid_file=None,
                   layout="ortho", units=None, porosity=None, error_variable=None, flag_variable=None,
                   reject_bits=None, footprint="gauss", fov_km=DEFAULT_FOV_KM, pol=None, angle_deg=None) -> ObsTable:
    """Read TU Wien time-series cell files (``<cell>.nc`` beside a pygeogrids ``grid.nc``).

    paths: the cell files to read (their directory holds ``grid.nc`` unless ``grid_file`` is given).
    layout: "ortho" (pynetcf GriddedNcOrthoMultiTs) or "ragged" (GriddedNcContiguousRaggedTs). variable,
    error_variable, flag_variable: time-series variable names; ``reject_bits`` the flag bits that reject
    (``product_quality_flag``). footprint: "gauss" (sigma ``fov_km``, default 20 km as for 36 km products)
    or an EASE-Grid 2.0 grid name ("M36", "M09", ...) whose cell holds each grid point (e.g. the SMAP
    time series of smap_io). TB needs ``pol``; units/porosity as in the module docstring.
    """
    from smda.extras import require as require_extra

    where = "tuw_cells"
    _kinds(kind, where)
    if layout not in ("ortho", "ragged"):
        raise ValueError(f"{where}: layout must be 'ortho' or 'ragged', got {layout!r}")
    if footprint != "gauss" and footprint not in BOX_GRIDS:
        raise ValueError(f"{where}: footprint must be 'gauss' or one of {BOX_GRIDS}, got {footprint!r}")
    if kind == "tb" and (pol is None or str(pol).upper() not in ("H", "V")):
        raise ValueError(f"{where}: TB needs the option pol: 'H' or 'V'")
    ts_mod = require_extra("pynetcf.time_series", "tuw", "the tuw_cells observation reader")
    grids_nc = require_extra("pygeogrids.netcdf", "tuw", "the tuw_cells observation reader")
    err = error_std_for(kind, error_std)
    by_dir: dict[Path, list[int]] = {}
    for p in check_paths(paths):
        if not p.stem.isdigit():
            raise ValueError(f"{p}: not a cell file (the name must be the cell number, e.g. 0029.nc)")
        by_dir.setdefault(p.parent, []).append(int(p.stem))
    cls = ts_mod.GriddedNcOrthoMultiTs if layout == "ortho" else ts_mod.GriddedNcContiguousRaggedTs
    out = []
    for folder, cells in by_dir.items():
        gfile = Path(grid_file) if grid_file is not None else folder / "grid.nc"
        if not gfile.is_file():
            raise FileNotFoundError(f"{folder}: grid file {gfile} not found (option grid_file)")
        try:
            grid = grids_nc.load_grid(str(gfile))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{gfile}: not a pygeogrids grid file ({exc})") from exc
        gpis, lons, lats = [], [], []
        for c in cells:
            g, lo, la = grid.grid_points_for_cell(c)
            gpis.append(np.atleast_1d(g))
            lons.append(np.atleast_1d(lo))
            lats.append(np.atleast_1d(la))
        gpis, lons, lats = (np.concatenate(a) for a in (gpis, lons, lats))
        gx, gy = latlon_to_xy(lats, lons)
        sel = region.contains_xy(gx, gy)
        reader = cls(str(folder), grid=grid, mode="r")
        try:
            for gpi, la, lo in zip(gpis[sel], lats[sel], lons[sel], strict=True):
                df = reader.read(int(gpi))
                if df is None or len(df) == 0:
                    continue
                if variable not in df.columns:
                    raise ValueError(f"{folder}: variable {variable!r} not in the time series (has {list(df.columns)})")
                time = df.index.to_numpy().astype("datetime64[s]")
                keep = region.contains_time(time)
                if not keep.any():
                    continue
                value = df[variable].to_numpy(float)[keep]
                error = df[error_variable].to_numpy(float)[keep] if error_variable else None
                value, error, ranges = _convert(kind, value, error, units, porosity, f"{folder}: {variable}")
                masks = {"fill_value": ~np.isfinite(value)}
                if flag_variable:
                    fl = np.nan_to_num(df[flag_variable].to_numpy(float)[keep]).astype(np.int64)
                    masks = merge_masks(masks, bit_masks(fl, [int(b) for b in (reject_bits or ())], "", None))
                n = int(keep.sum())
                if footprint == "gauss":
                    grid_e, row, col = None, -1, -1
                else:
                    grid_e = GRIDS[footprint]
                    row, col = (np.full(n, v) for v in grid_e.rowcol_of_latlon(la, lo))
                out.append(make_table(
                    time=time[keep], row=row, col=col, grid=grid_e, lat=np.full(n, la), lon=np.full(n, lo), kind=kind,
                    pol=str(pol).upper() if kind == "tb" else "",
                    angle_deg=(NOMINAL_TB_ANGLE_DEG if angle_deg is None else float(angle_deg)) if kind == "tb" else np.nan,
                    value=value, error_std=_errors(error, err, n), flags=0, footprint=footprint, source="tuw_cells",
                    masks=masks, fov_km=float(fov_km), ranges=ranges))
        finally:
            reader.close()
    return ObsTable.concat(out)
