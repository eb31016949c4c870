"""CF-1.8 netCDF output on the EASE-Grid 2.0 domain: the variable registry and the safe writer.

Every file has x/y projection coordinates (m), 2-D lat/lon, the ``crs`` grid mapping
(lambert_cylindrical_equal_area, EPSG:6933), standard names and units on every data variable,
zlib compression and chunks of one time step. Files are written under ``<name>.tmp`` and renamed
when complete, so an interrupted or failed write never leaves a file that looks finished.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr

from smda import __version__
from smda.model.grid import EPSG, STANDARD_PARALLEL, WGS84_A, WGS84_F, Domain

log = logging.getLogger(__name__)

# name: (standard_name or "", units, long_name)
VARIABLES = {
    "sm_surface": ("volume_fraction_of_condensed_water_in_soil", "m3 m-3", "soil moisture of the 0-5 cm layer"),
    "sm_rootzone": ("volume_fraction_of_condensed_water_in_soil", "m3 m-3", "soil moisture of the 0-1 m root zone"),
    "t_skin": ("surface_temperature", "K", "skin temperature (land surface temperature)"),
    "t_deep": ("soil_temperature", "K", "deep soil temperature"),
    "swe": ("surface_snow_amount", "kg m-2", "snow water equivalent"),
    "canopy_water": ("canopy_water_amount", "kg m-2", "water intercepted by the canopy"),
    "tb_h": ("", "K", "L-band brightness temperature, horizontal polarization"),
    "tb_v": ("", "K", "L-band brightness temperature, vertical polarization"),
    "evaporation": ("water_evapotranspiration_flux", "kg m-2 s-1", "evapotranspiration"),
    "runoff": ("surface_runoff_flux", "kg m-2 s-1", "surface runoff"),
    "drainage": ("subsurface_runoff_flux", "kg m-2 s-1", "drainage at the bottom of the root zone"),
    "sensible_heat": ("surface_upward_sensible_heat_flux", "W m-2", "sensible heat flux"),
    "latent_heat": ("surface_upward_latent_heat_flux", "W m-2", "latent heat flux"),
    "precip": ("precipitation_flux", "kg m-2 s-1", "precipitation"),
    "lst": ("surface_temperature", "K", "clear-sky land surface temperature (MODIS-like)"),
    "ndvi": ("normalized_difference_vegetation_index", "1", "normalized difference vegetation index"),
    "sand": ("", "1", "sand mass fraction"),
    "clay": ("", "1", "clay mass fraction"),
    "elevation": ("height_above_mean_sea_level", "m", "surface elevation"),
}
STATS = {"mean": "ensemble mean of ", "spread": "ensemble standard deviation of ", "": ""}


def variable_attrs(name: str) -> dict:
    """CF attributes of ``name`` or ``<var>_<stage>_<stat>`` (e.g. sm_surface_analysis_mean)."""
    base, prefix = name, ""
    for stat, text in STATS.items():
        if stat and name.endswith("_" + stat):
            base, prefix = name[: -len(stat) - 1], text
            break
    for stage in ("_background", "_analysis", "_truth", "_openloop"):
        if base.endswith(stage):
            base = base[: -len(stage)]
            prefix += f"{stage[1:]} "
            break
    if base not in VARIABLES:
        raise KeyError(f"variable {name!r} has no entry in the registry (units unknown); known: {', '.join(VARIABLES)}")
    std, units, long = VARIABLES[base]
    attrs = {"units": units, "long_name": prefix + long}
    if std and "spread" not in name:
        attrs["standard_name"] = std
    return attrs


def grid_mapping() -> xr.DataArray:
    """The ``crs`` variable: EASE-Grid 2.0 global (EPSG:6933) as a CF grid mapping."""
    return xr.DataArray(np.int32(0), attrs={
        "grid_mapping_name": "lambert_cylindrical_equal_area",
        "longitude_of_central_meridian": 0.0,
        "standard_parallel": STANDARD_PARALLEL,
        "false_easting": 0.0,
        "false_northing": 0.0,
        "semi_major_axis": WGS84_A,
        "inverse_flattening": 1.0 / WGS84_F,
        "epsg_code": f"EPSG:{EPSG}",
        "long_name": "EASE-Grid 2.0 global",
    })


def domain_coords(domain: Domain) -> dict:
    lat, lon = domain.latlon()
    return {
        "x": ("x", domain.x, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
        "y": ("y", domain.y, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
        "lat": (("y", "x"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": (("y", "x"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
    }


def write(path: Path, data: dict, *, domain: Domain, times=None, attrs=None, extra=None) -> Path:
    """Write gridded fields to a CF netCDF file atomically.

    data: name -> array (time, y, x) when ``times`` is given, else (y, x); units from the registry.
    extra: name -> xarray.DataArray of other dimensions (written as given; must carry ``units``).
    """
    path = Path(path)
    coords = domain_coords(domain)
    if times is not None:
        coords["time"] = ("time", np.asarray(times, "datetime64[s]"), {"standard_name": "time", "axis": "T"})
    dims = ("time", "y", "x") if times is not None else ("y", "x")
    ds = xr.Dataset(coords=coords)
    ds["crs"] = grid_mapping()
    for name, arr in data.items():
        ds[name] = (dims, np.asarray(arr, np.float32), {**variable_attrs(name), "grid_mapping": "crs",
                                                          "coordinates": "lat lon"})
    for name, da in (extra or {}).items():
        if "units" not in da.attrs:
            raise KeyError(f"variable {name!r} has no units")
        ds[name] = da
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": "smda 1 km soil moisture",
        "institution": "smda",
        "source": f"smda {__version__}",
        "history": f"{np.datetime64('now', 's')} created by smda {__version__}",
        **(attrs or {}),
    }
    enc = {}
    for name in data:
        enc[name] = {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}
        if times is not None:
            enc[name]["chunksizes"] = (1, domain.nrows, domain.ncols)
    if times is not None:
        enc["time"] = {"units": "seconds since 2000-01-01 00:00:00", "calendar": "standard", "dtype": "float64"}
    return atomic_to_netcdf(ds, path, encoding=enc)


def atomic_to_netcdf(ds: xr.Dataset, path: Path, encoding=None) -> Path:
    """ds.to_netcdf under a temporary name, then rename; nothing is left behind on failure."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create output folder {path.parent}: {exc.strerror or exc}") from None
    tmp = path.with_name(path.name + ".tmp")
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    log.info("wrote %s", path)
    return path
