"""CF-1.8 netCDF conventions on the EASE-Grid 2.0 domain: variable attributes from ``smda.variables``, the
coordinates and grid mapping every file carries, and the atomic writer of whole datasets.

Every gridded file (written record by record by :mod:`smda.run.recorder`) has x/y projection
coordinates (m), 2-D lat/lon, the ``crs`` grid mapping (lambert_cylindrical_equal_area, EPSG:6933),
standard names and units on every data variable, zlib compression and chunks of one time step.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from smda.model.grid import EPSG, STANDARD_PARALLEL, WGS84_A, WGS84_F, Domain
from smda.variables import VARIABLES

log = logging.getLogger(__name__)

STATS = {"mean": "ensemble mean of ", "spread": "ensemble standard deviation of "}
STAGES = ("background", "analysis", "truth", "openloop")


def split_name(name: str) -> tuple[str, str, str]:
    """``<var>[_<stage>][_<stat>]`` -> (var, stage, stat), "" where absent (sm_surface_analysis_mean)."""
    base, stage, stat = name, "", ""
    for s in STATS:
        if base.endswith("_" + s):
            base, stat = base[: -len(s) - 1], s
            break
    for s in STAGES:
        if base.endswith("_" + s):
            base, stage = base[: -len(s) - 1], s
            break
    return base, stage, stat


def variable_attrs(name: str) -> dict:
    """CF attributes of ``name`` or ``<var>_<stage>_<stat>`` from ``smda.variables``.

    Raises ValueError for a variable the registry does not hold (its units are unknown).
    """
    base, stage, stat = split_name(name)
    if base not in VARIABLES:
        raise ValueError(f"cannot write {name!r}: {base!r} is not in the variable registry smda.variables, "
                         "so it has no units; register it there")
    v = VARIABLES[base]
    attrs = {"units": v.units, "long_name": STATS.get(stat, "") + (f"{stage} " if stage else "") + v.long_name}
    if v.standard_name and stat != "spread":
        attrs["standard_name"] = v.standard_name
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
