"""``smda parameters``: the static 1 km fields of a domain (the ``domain.parameters`` file) from rasters.

Inputs are GeoTIFF or netCDF files in any CRS GDAL knows (``FILE:VARIABLE`` picks a netCDF variable; a
netCDF without a grid mapping on lat/lon axes is taken as EPSG:4326). Only the window around the domain
is read, so global files and VRTs serve (GDAL virtual paths too: ``/vsicurl/https://files.isric.org/soilgrids/
latest/data/sand/sand_0-5cm_mean.vrt``). The model has one texture for both soil layers: give one depth
interval (e.g. SoilGrids 5-15 cm) or a depth-weighted mean. Each goes onto the EASE-Grid 2.0 1 km cells (EPSG:6933, the
cells of :class:`smda.model.grid.Domain`) by GDAL's warper (rasterio, exact transforms): continuous
fields by the overlap-weighted average of the source pixels, classes (land cover, soil class) by the
most frequent class (mode); no-data pixels are left out.

=================  ================================ ==========================  =========================
input              field(s) written                 default units               e.g.
=================  ================================ ==========================  =========================
--sand, --clay     sand, clay (mass fractions)      g/kg                        SoilGrids sand/clay, HWSD
--landcover        igbp, land_mask                  IGBP class 1-17             MODIS MCD12Q1 LC_Type1
--elevation        elevation_m                      m                           SRTM, GMTED2010
--ndvi             ndvi_min, ndvi_max, green_up_doy 1 (MODIS integers: 1e-4)    MODIS NDVI climatology
--organic-carbon   organic_fraction                 dg/kg                       SoilGrids soc, HWSD T_OC
--bulk-density     (organic_fraction)               cg/cm3                      SoilGrids bdod
--soil-class       (per-class overrides)            class codes                 SoilGrids WRB classes
=================  ================================ ==========================  =========================

Units: ``--units NAME=UNIT``, else the file's ``units`` attribute, else the default above. Fractions:
1, %, g/100g (x 0.01), g/kg (x 1e-3), dg/kg (x 1e-4); densities to kg m-3: kg/m3, g/cm3 and kg/dm3
(x 1000), cg/cm3 (x 10); a number is a scale factor (MODIS NDVI integers: 1e-4).

Land: IGBP classes 1-16 (17 water, no data and the MCD12Q1 fill 255 are not land). Land cells a continuous
input leaves without data take the value of the nearest cell with data (counted in the ``gap_filled`` attribute).

NDVI climatology: the layers (bands, or netCDF time steps) of the ``--ndvi`` files in order; per cell
ndvi_min and ndvi_max are the smallest and largest layer, green_up_doy the day of year of the largest
(the peak of :func:`smda.model.parameters.ndvi_on`). A layer's day is its netCDF time, else ``--ndvi-doy``,
else the middle of its period for layers evenly spaced over the year (12 monthly layers: 16.2, 46.7, ...).

Organic matter (Lawrence & Slater 2008, doi:10.1007/s00382-007-0278-1): organic_fraction =
1.724 SOC rho_b / 130 kg m-3, clipped to 1 (1.724: organic matter per organic carbon, van Bemmelen;
130 kg m-3: peat, :data:`smda.model.soil.ORGANIC_MAX_KG_M3`). Without a bulk-density raster, rho_b is the
Adams (1973, J. Soil Sci. 24, 10-17) mixture 100 / (OM%/0.244 + (100 - OM%)/1.64) g cm-3 (organic matter at
0.244 g cm-3, mineral soil taken at 1.64 g cm-3).

Overrides (``--overrides overrides.yaml``): per-class hydraulic values that replace the pedotransfer
ones (porosity in m3 m-3, b, psi_sat_m in m, k_sat_ms in m s-1), applied IGBP class first, then soil
class (with ``--soil-class``)::

    igbp: {11: {porosity: 0.80}}                         # permanent wetlands
    soil_class: {10: {porosity: 0.74, k_sat_ms: 2.0e-5}}  # e.g. Andosols (volcanic) in a WRB raster

The file is CF-1.8 netCDF on the domain grid (x/y, lat/lon and the ``crs`` grid mapping of the outputs),
written to a temporary name and renamed; its attributes record every source file, unit conversion and
resampling.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import yaml

from smda.extras import require
from smda.model.grid import EPSG, M01
from smda.model.parameters import HYDRAULIC
from smda.run.output import domain_coords, global_attrs, grid_mapping, variable_attrs
from smda.run.schema import NamelistError
from smda.variables import VARIABLES

log = logging.getLogger(__name__)

FRACTION = {"1": 1.0, "%": 0.01, "g/100g": 0.01, "g/kg": 1e-3, "dg/kg": 1e-4}
DENSITY = {"kg/m3": 1.0, "g/cm3": 1000.0, "kg/dm3": 1000.0, "cg/cm3": 10.0}
# input -> (units table, default unit, resampling)
INPUTS = {
    "sand": (FRACTION, "g/kg", "average"), "clay": (FRACTION, "g/kg", "average"),
    "organic_carbon": (FRACTION, "dg/kg", "average"), "bulk_density": (DENSITY, "cg/cm3", "average"),
    "elevation": ({"m": 1.0}, "m", "average"), "ndvi": ({"1": 1.0}, "1", "average"),
    "landcover": (None, None, "mode"), "soil_class": (None, None, "mode"),
}
SOM_PER_SOC = 1.724  # organic matter / organic carbon (van Bemmelen factor)
ADAMS_OM_DENSITY, ADAMS_MINERAL_DENSITY = 0.244, 1.64  # g cm-3, Adams (1973)
WATER = 17  # IGBP water bodies
MCD12Q1_FILL = 255  # MODIS land cover: unclassified / fill, read as no data even where the file does not say so
# per-class hydraulic overrides (fields of the parameter file, see smda.model.parameters.HYDRAULIC): their bounds
OVERRIDE_RANGES = {f: (VARIABLES[f].lower, VARIABLES[f].upper) for f in HYDRAULIC}
IGBP_NAMES = ("evergreen_needleleaf_forest evergreen_broadleaf_forest deciduous_needleleaf_forest "
              "deciduous_broadleaf_forest mixed_forest closed_shrublands open_shrublands woody_savannas savannas "
              "grasslands permanent_wetlands croplands urban_and_built_up cropland_natural_vegetation_mosaic "
              "snow_and_ice barren_or_sparsely_vegetated water")


def _usage(message: str):
    return NamelistError([message], "(command line)")


def _split_spec(spec) -> tuple[Path, str | None]:
    """``FILE`` or ``FILE:VARIABLE`` -> (path, variable or None); GDAL virtual paths (/vsicurl/...) as given."""
    text = str(spec)
    path = Path(text)
    if not path.exists() and ":" in text and not text.startswith("/vsi"):
        head, var = text.rsplit(":", 1)
        return Path(head), var
    return path, None


def parse_units(items) -> dict[str, str]:
    """``NAME=UNIT`` strings -> {input: unit}; an unknown input or unit is a command-line error."""
    out = {}
    for item in items or ():
        name, sep, unit = str(item).partition("=")
        name, unit = name.strip().replace("-", "_"), unit.strip()
        if not sep or name not in INPUTS or INPUTS[name][0] is None:
            valid = [n for n, v in INPUTS.items() if v[0] is not None]
            raise _usage(f"--units {item!r}: expected NAME=UNIT with NAME one of {valid}")
        _factor(name, unit)
        out[name] = unit
    return out


def _normal(unit: str) -> str:
    """Units spelled the CF way (g kg-1, kg m-3) or in words (percent, metres) -> the keys of the unit tables."""
    u = unit.strip().lower().replace(" ", "")
    for cf, slash in (("kg-1", "/kg"), ("dm-3", "/dm3"), ("cm-3", "/cm3"), ("m-3", "/m3")):
        u = u.replace(cf, slash)
    return {"percent": "%", "fraction": "1", "": "1", "meters": "m", "metres": "m", "meter": "m", "metre": "m"}.get(u, u)


def _factor(name: str, unit: str) -> float:
    """Factor from ``unit`` to the field's unit (fraction, kg m-3, m, 1); a number is a factor itself."""
    table = INPUTS[name][0]
    if _normal(unit) in table:
        return table[_normal(unit)]
    try:
        value = float(unit)
    except ValueError:
        raise _usage(f"{name}: unknown units {unit!r}; valid: {', '.join(table)} or a scale factor") from None
    if not np.isfinite(value) or value <= 0:
        raise _usage(f"{name}: scale factor {unit!r} must be a positive number")
    return value


def open_raster(spec, name: str, bounds):
    """The raster ``spec`` (FILE or FILE:VARIABLE) as a DataArray with a CRS, (layer, y, x) or (y, x), no data NaN,
    cut to ``bounds`` (EPSG:6933 m, xmin ymin xmax ymax) plus a margin; returns (array, units attribute)."""
    rioxarray = require("rioxarray", "rasters", "smda parameters (raster reprojection)")
    from rioxarray.exceptions import NoDataInBounds, OneDimensionalRaster

    option = f"--{name.replace('_', '-')}"
    virtual = str(spec).startswith("/vsi")  # a GDAL virtual file system path, e.g. /vsicurl/https://...
    path, var = _split_spec(spec)
    if not virtual and not path.exists():
        raise _usage(f"{option}: file not found: {path}")
    netcdf = path.suffix.lower() in (".nc", ".nc4", ".cdf", ".netcdf")
    if netcdf:
        import xarray as xr

        src = xr.open_dataset(path, decode_coords="all")
    else:
        src = rioxarray.open_rasterio(str(spec) if virtual else path, mask_and_scale=True)
    try:
        da = _netcdf_variable(src, path, var, option) if netcdf else src
        if da.rio.crs is None:
            raise ValueError(f"{path}: {da.name or 'the raster'} has no CRS (grid mapping)")
        x0, y0, x1, y1 = bounds
        margin = 3 * M01.cell_m
        try:
            da = da.rio.clip_box(x0 - margin, y0 - margin, x1 + margin, y1 + margin, crs=f"EPSG:{EPSG}")
        except (NoDataInBounds, OneDimensionalRaster) as exc:
            raise ValueError(f"{path}: does not cover the domain ({exc})") from None
        return da.astype(np.float64).load(), da.attrs.get("units")
    finally:
        src.close()


def _netcdf_variable(ds, path: Path, var: str | None, option: str):
    """The variable ``var`` (or the only gridded one) of a netCDF dataset, with its spatial dimensions and CRS
    (EPSG:4326 for lon/lat axes without a grid mapping)."""
    names = [v for v in ds.data_vars if ds[v].ndim >= 2]
    if var is None and len(names) != 1:
        raise _usage(f"{option}: {path} holds {names}: pick one as {path}:VARIABLE")
    if (var or names[0]) not in ds:
        raise _usage(f"{option}: {path} has no variable {var!r}; it has {names}")
    da = ds[var or names[0]]
    dims = {d.lower(): d for d in da.dims}
    xd = next((dims[d] for d in ("x", "lon", "longitude") if d in dims), None)
    yd = next((dims[d] for d in ("y", "lat", "latitude") if d in dims), None)
    if xd is None or yd is None:
        raise ValueError(f"{path}: {da.name} has no x/y or lon/lat dimensions (dims {da.dims})")
    da = da.rio.set_spatial_dims(x_dim=xd, y_dim=yd)
    if da.rio.crs is None and xd.lower() in ("lon", "longitude"):
        da = da.rio.write_crs("EPSG:4326")
    return da


def reproject(da, domain, resampling: str) -> np.ndarray:
    """``da`` on the domain's 1 km cells, (layers, nrows, ncols) float64, NaN where no source data."""
    from affine import Affine
    from rasterio.enums import Resampling

    s = M01.cell_m
    transform = Affine(s, 0.0, domain.x[0] - s / 2, 0.0, -s, domain.y[0] + s / 2)
    out = da.rio.reproject(f"EPSG:{EPSG}", shape=domain.shape, transform=transform,
                           resampling=getattr(Resampling, resampling), nodata=np.nan, tolerance=0.0)
    values = np.asarray(out.values, np.float64)
    return values.reshape((-1,) + domain.shape)


def _dated(da) -> np.ndarray | None:
    """Day of year (1 = 1 January 00 UTC) of each layer of ``da`` from its time coordinate, or None if undated."""
    for dim in da.dims[:-2]:
        if np.issubdtype(da[dim].dtype, np.datetime64):
            t = da[dim].values.astype("datetime64[s]")
            return (t - t.astype("datetime64[Y]")) / np.timedelta64(1, "D") + 1.0
    return None


def fill_nearest(values: np.ndarray, land: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Land cells without a value take the nearest cell's with one (Euclidean, in cells); (filled, count)."""
    from scipy import ndimage

    missing = land & ~np.isfinite(values)
    if not missing.any():
        return values, 0
    valid = np.isfinite(values)
    if not valid.any():
        raise ValueError(f"{name}: no value on any cell of the domain (no overlap, or only no-data pixels)")
    idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    out = values.copy()
    out[missing] = values[idx[0][missing], idx[1][missing]]
    return out, int(missing.sum())


def read_overrides(path) -> dict[str, dict[int, dict[str, float]]]:
    """The per-class override file: {"igbp"|"soil_class": {class: {field: value}}}; errors name the entry."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise _usage(f"--overrides: file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise _usage(f"--overrides: {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) - {"igbp", "soil_class"}:
        raise _usage(f"--overrides: {path}: the top level maps igbp and/or soil_class to class -> values")
    out = {}
    for kind, classes in data.items():
        if not isinstance(classes, dict):
            raise _usage(f"--overrides: {path}: {kind} must map class codes to values")
        out[kind] = {}
        for code, values in classes.items():
            if isinstance(code, bool) or not isinstance(code, int) or not isinstance(values, dict):
                raise _usage(f"--overrides: {path}: {kind}.{code}: an integer class code mapping to values")
            for field, v in values.items():
                if field not in OVERRIDE_RANGES:
                    raise _usage(f"--overrides: {path}: {kind}.{code}.{field}: unknown; valid: {list(OVERRIDE_RANGES)}")
                lo, hi = OVERRIDE_RANGES[field]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                    raise _usage(f"--overrides: {path}: {kind}.{code}.{field}: {v!r} outside [{lo:g}, {hi:g}]")
            out[kind][code] = {f: float(v) for f, v in values.items()}
    return out


def _organic_fraction(soc: np.ndarray, bulk_kg_m3: np.ndarray | None) -> np.ndarray:
    """Lawrence & Slater (2008) organic fraction from the organic carbon mass fraction and bulk density (kg m-3)."""
    from smda.model.soil import ORGANIC_MAX_KG_M3

    om = np.clip(SOM_PER_SOC * soc, 0.0, 1.0)
    if bulk_kg_m3 is None:  # Adams (1973) mixture of organic matter and mineral soil
        bulk_kg_m3 = 1000.0 / (om / ADAMS_OM_DENSITY + (1.0 - om) / ADAMS_MINERAL_DENSITY)
    return np.clip(om * bulk_kg_m3 / ORGANIC_MAX_KG_M3, 0.0, 1.0)


def build_parameters(nl, *, sand, clay, landcover, elevation, ndvi, output, ndvi_doy=None, organic_carbon=None,
                     bulk_density=None, soil_class=None, overrides=None, units=None, history="") -> Path:
    """Write the parameter file of namelist ``nl``'s domain at ``output`` from the given rasters; returns the path.

    Every input is a FILE or FILE:VARIABLE (``ndvi`` a list of them); ``units`` maps inputs to their units.
    """
    from smda.run.setup import make_domain

    domain = make_domain(dataclasses.replace(nl, domain=dataclasses.replace(nl.domain, parameters=None)))
    s = M01.cell_m
    bounds = (domain.x[0] - s / 2, domain.y[-1] - s / 2, domain.x[-1] + s / 2, domain.y[0] + s / 2)
    units = dict(units or {})
    provenance = []

    def field(name, spec):
        """Layers of input ``name`` on the domain, converted to the field's unit."""
        da, file_units = open_raster(spec, name, bounds)
        table, default, resampling = INPUTS[name]
        values = reproject(da, domain, resampling)
        note = f"{name}: {spec} ({resampling} onto EASE-Grid 2.0 1 km"
        if table is not None:
            unit = units.get(name) or file_units or default
            if name not in units and file_units and _normal(file_units) not in table:
                raise _usage(f"--{name.replace('_', '-')} {spec}: units {file_units!r} of the file are not known: give "
                             f"them with --units {name}=UNIT ({', '.join(table)} or a scale factor)")
            factor = _factor(name, unit)
            values = values * factor
            note += f"; {unit} x {factor:g}"
        provenance.append(note + ")")
        log.info("%s", provenance[-1])
        return da, values

    # land cover: classes by mode; water (17) and no data are not land
    _, lc = field("landcover", landcover)
    igbp = np.where(np.isfinite(lc[0]) & (lc[0] != MCD12Q1_FILL), np.rint(lc[0]), 0).astype(np.int16)
    bad = ~np.isin(igbp, np.arange(0, WATER + 1))
    if bad.any():
        raise ValueError(f"--landcover {landcover}: values {np.unique(igbp[bad])[:10].tolist()} are not IGBP classes "
                         "1-17 (MODIS MCD12Q1 LC_Type1)")
    land = (igbp >= 1) & (igbp < WATER)
    if not land.any():
        raise ValueError(f"--landcover {landcover}: no land cell (IGBP 1-16) in the domain")
    out, filled = {}, {}

    def finish(name, values):
        out[name], n = fill_nearest(values, land, name)
        if n:
            filled[name] = n
            log.warning("%s: %d of %d land cells had no data and took the nearest cell's value", name, n, land.sum())

    for name, spec in (("sand", sand), ("clay", clay)):
        _, v = field(name, spec)
        finish(name, _one_layer(v, name, spec))
    total = out["sand"] + out["clay"]
    if np.any(total[land] > 1.02) or np.nanmax(np.where(land, total, 0.0)) < 0.05:
        raise ValueError(f"sand + clay spans {np.nanmin(total[land]):.3g}-{np.nanmax(total[land]):.3g} on land: the units "
                         "are probably wrong (give them with --units sand=UNIT --units clay=UNIT)")
    scale = np.maximum(total, 1.0)  # averages of different rasters can sum to slightly more than 1
    out["sand"], out["clay"] = out["sand"] / scale, out["clay"] / scale
    _, v = field("elevation", elevation)
    finish("elevation_m", _one_layer(v, "elevation", elevation))

    layers, dates = [], []
    for spec in ndvi:
        da, v = field("ndvi", spec)
        layers.append(v)
        dates.append(_dated(da))
    stack = np.concatenate(layers)
    if ndvi_doy is not None:
        if len(ndvi_doy) != stack.shape[0]:
            raise _usage(f"--ndvi-doy: {len(ndvi_doy)} days for {stack.shape[0]} NDVI layers")
        doy = np.asarray(ndvi_doy, float)
    elif all(d is not None for d in dates):
        doy = np.concatenate(dates)
    elif any(d is not None for d in dates):
        raise _usage("--ndvi: some files are dated (time coordinate) and some not: give --ndvi-doy for every layer")
    else:  # undated layers: equal periods through the year, each at its middle
        doy = (np.arange(stack.shape[0]) + 0.5) * 365.25 / stack.shape[0] + 1.0
    if np.nanmax(np.abs(stack)) > 1.0 + 1e-6:
        raise ValueError(f"--ndvi: values up to {np.nanmax(np.abs(stack)):.4g} are not NDVI: give the scale factor, e.g. "
                         "--units ndvi=1e-4 for MODIS integers")
    finite = np.isfinite(stack)
    valid = finite.any(axis=0)  # cells with at least one NDVI layer
    finish("ndvi_min", np.where(valid, np.where(finite, stack, np.inf).min(axis=0), np.nan))
    finish("ndvi_max", np.where(valid, np.where(finite, stack, -np.inf).max(axis=0), np.nan))
    finish("green_up_doy", np.where(valid, doy[np.where(finite, stack, -np.inf).argmax(axis=0)], np.nan))
    provenance.append(f"ndvi layers: days of year {np.round(doy, 1).tolist()}; ndvi_min/ndvi_max the extremes, "
                      "green_up_doy the day of the largest")

    if organic_carbon is not None:
        _, soc = field("organic_carbon", organic_carbon)
        soc = _one_layer(soc, "organic_carbon", organic_carbon)
        _plausible("organic carbon", organic_carbon, soc[land], 0.0, 0.6, "mass fraction")
        rho = None
        if bulk_density is not None:
            _, rho = field("bulk_density", bulk_density)
            rho, _ = fill_nearest(_one_layer(rho, "bulk_density", bulk_density), land, "bulk_density")
            _plausible("bulk density", bulk_density, rho[land], 30.0, 2650.0, "kg m-3")
        finish("organic_fraction", _organic_fraction(soc, rho))
        provenance.append("organic_fraction = 1.724 SOC rho_b / 130 kg m-3 (Lawrence & Slater 2008); rho_b "
                          + ("from --bulk-density" if rho is not None else "by Adams (1973)"))
    elif bulk_density is not None:
        raise _usage("--bulk-density is used with --organic-carbon only")

    if overrides is not None:
        table = read_overrides(overrides)
        classes = {"igbp": igbp}
        if "soil_class" in table:
            if soil_class is None:
                raise _usage(f"--overrides {overrides}: soil_class entries need --soil-class FILE")
            _, sc = field("soil_class", soil_class)
            classes["soil_class"] = np.where(np.isfinite(sc[0]), np.rint(sc[0]), -1).astype(np.int64)
        hyd = {f: np.full(domain.shape, np.nan) for f in HYDRAULIC}
        for kind in ("igbp", "soil_class"):
            for code, values in table.get(kind, {}).items():
                hit = land & (classes[kind] == code)
                for f, v in values.items():
                    hyd[f][hit] = v
                provenance.append(f"overrides {overrides}: {kind} {code}: {values} on {int(hit.sum())} land cells")
        out.update({f: v for f, v in hyd.items() if np.isfinite(v).any()})

    for name in out:
        out[name] = np.where(land, out[name], np.nan)
    out["igbp"], out["land_mask"] = igbp, land.astype(np.int8)
    _write(domain, out, Path(output), provenance, filled, history)
    log.info("wrote %s: %d x %d cells, %d land", output, *domain.shape, int(land.sum()))
    return Path(output)


def _plausible(what: str, spec, values: np.ndarray, lo: float, hi: float, unit: str):
    """Refuse values outside [lo, hi] (in ``unit`` after conversion): most likely wrong input units."""
    v = values[np.isfinite(values)]
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"{what} {spec}: {v.min():.4g}-{v.max():.4g} {unit} after unit conversion, outside "
                         f"[{lo:g}, {hi:g}]: the units are probably wrong (give them with --units)")


def _one_layer(values: np.ndarray, name: str, spec) -> np.ndarray:
    if values.shape[0] != 1:
        raise _usage(f"--{name.replace('_', '-')} {spec}: {values.shape[0]} layers; give a one-layer file or FILE:VARIABLE")
    return values[0]


def _write(domain, fields: dict, path: Path, provenance: list[str], filled: dict, history: str):
    """CF-1.8 netCDF on the domain grid, written to a temporary name then renamed."""
    import xarray as xr

    coords = {k: (dims, v, a) for k, (dims, v, a) in domain_coords(domain).items()}
    data = {}
    for name, values in fields.items():
        attrs = {**variable_attrs(name), "grid_mapping": "crs", "coordinates": "lat lon"}
        if name == "igbp":
            attrs.update(flag_values=np.arange(1, WATER + 1, dtype=np.int16), flag_meanings=IGBP_NAMES)
            attrs.pop("units")
        elif name == "land_mask":
            attrs.update(flag_values=np.array([0, 1], np.int8), flag_meanings="not_land land")
            attrs.pop("units")
        data[name] = (("y", "x"), values, attrs)
    data["crs"] = ((), np.int32(0), grid_mapping())
    ds = xr.Dataset(data, coords=coords, attrs=global_attrs(
        "smda static 1 km parameters", history or "smda parameters",
        sources="\n".join(provenance), gap_filled=", ".join(f"{k}: {n} cells" for k, n in filled.items()) or "none",
        resampling="GDAL warp (rasterio), exact transforms: average for continuous fields, mode for classes"))
    encoding = {name: {"zlib": True, "complevel": 4, "_FillValue": None if name in ("igbp", "land_mask") else np.nan}
                for name in fields}
    encoding.update({c: {"_FillValue": None} for c in ("x", "y", "lat", "lon")})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        ds.to_netcdf(tmp, encoding=encoding)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def command(args) -> Path:
    """``smda parameters``: load the namelist (domain.parameters set to ``-o``), build and write the file."""
    from smda.run.namelist import load

    sets = list(args.set)
    if args.output is not None:
        sets.append(f"domain.parameters={Path(args.output).resolve()}")
    nl = load(args.namelist, sets)
    output = nl.domain.parameters
    if output is None:
        raise _usage("give the output file with -o FILE (or set domain.parameters in the namelist)")
    if output.exists() and not args.force:
        raise _usage(f"{output} exists: remove it or give --force to replace it")
    return build_parameters(
        nl, sand=args.sand, clay=args.clay, landcover=args.landcover, elevation=args.elevation, ndvi=args.ndvi,
        ndvi_doy=args.ndvi_doy, organic_carbon=args.organic_carbon, bulk_density=args.bulk_density,
        soil_class=args.soil_class, overrides=args.overrides, units=parse_units(args.units), output=output,
        history="smda " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
