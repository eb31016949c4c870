"""CF-1.8 netCDF conventions on the EASE-Grid 2.0 domain: variable attributes from ``smda.variables``, the
coordinates, the grid mapping and the chunk layout every gridded file carries.

Every gridded file (written record by record by :mod:`smda.run.recorder`) has x/y projection
coordinates (m, cell centres of the EASE-Grid 2.0 1 km grid), 2-D lat/lon, the ``crs`` grid mapping
(lambert_cylindrical_equal_area with the ``crs_wkt`` of EPSG:6933, so GDAL and rioxarray identify the
projection), standard names and units on every data variable, no ``_FillValue`` on coordinates, zlib
compression, and chunks of a block of times by a spatial tile (:func:`chunk_sizes`), so a station's time
series and a map both read a small part of a file. Files of interval means (the daily means) carry
``time_bnds`` and ``cell_methods: "time: mean"``.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from pyproj import CRS

from smda import __version__
from smda.model.grid import EPSG, STANDARD_PARALLEL, WGS84_A, WGS84_F, Domain
from smda.variables import VARIABLES

log = logging.getLogger(__name__)

STATS = {"mean": "ensemble mean of ", "spread": "ensemble standard deviation of "}
STAGES = ("background", "analysis", "truth", "openloop")
CONVENTIONS = "CF-1.8"
# chunks of a finished file: 8 records by 64 x 64 cells (128 kB of float32). A station's series reads
# n_time x 64 x 64 values, a map 8 maps; measured on 360 x 360 cells x 365 days against one whole map per
# chunk: series 30x faster, one map 10 ms instead of 1.3 ms (larger tiles or time blocks only slow one of them)
TIME_CHUNK = 8
TILE = 64
TIME_ATTRS = {"standard_name": "time", "long_name": "time", "axis": "T", "calendar": "standard"}


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


@functools.cache
def grid_mapping() -> dict:
    """Attributes of the ``crs`` variable: EASE-Grid 2.0 global (EPSG:6933) as a CF grid mapping (CF-1.8
    Appendix F) with the OGC WKT2 text of the EPSG definition (``crs_wkt``, from pyproj), so that GDAL,
    rioxarray and QGIS identify EPSG:6933; the parameters are the grid constants of ``smda.model.grid``."""
    return {**CRS.from_epsg(EPSG).to_cf(), "grid_mapping_name": "lambert_cylindrical_equal_area",
            "longitude_of_central_meridian": 0.0, "standard_parallel": STANDARD_PARALLEL, "false_easting": 0.0,
            "false_northing": 0.0, "semi_major_axis": WGS84_A, "inverse_flattening": 1.0 / WGS84_F,
            "epsg_code": f"EPSG:{EPSG}", "long_name": "EASE-Grid 2.0 global (EPSG:6933)"}


def domain_coords(domain: Domain) -> dict:
    """name -> (dims, values, attributes) of the x/y projection coordinates and the 2-D lat/lon."""
    lat, lon = domain.latlon()
    return {
        "x": ("x", domain.x, {"standard_name": "projection_x_coordinate", "long_name": "x coordinate of the cell centre",
                              "units": "m", "axis": "X"}),
        "y": ("y", domain.y, {"standard_name": "projection_y_coordinate", "long_name": "y coordinate of the cell centre",
                              "units": "m", "axis": "Y"}),
        "lat": (("y", "x"), lat, {"standard_name": "latitude", "long_name": "latitude of the cell centre",
                                  "units": "degrees_north"}),
        "lon": (("y", "x"), lon, {"standard_name": "longitude", "long_name": "longitude of the cell centre",
                                  "units": "degrees_east"}),
    }


def chunk_sizes(n_time: int, ny: int, nx: int) -> tuple[int, int, int]:
    """Chunks of a finished (time, y, x) variable: up to ``TIME_CHUNK`` records by ``TILE`` x ``TILE`` cells.

    A station's full series reads ceil(n_time / TIME_CHUNK) chunks and a map reads one layer of tiles,
    instead of every record's whole map (series) with chunks of one time step.
    """
    return max(1, min(n_time, TIME_CHUNK)), min(ny, TILE), min(nx, TILE)


def global_attrs(title: str, history: str = "created", **extra) -> dict:
    """CF global attributes of an smda file: Conventions, title, source and the history line of its creation
    (``<UTC time>Z <history> (smda <version>)``); ``extra`` attributes are added as given."""
    now = np.datetime64("now", "s")
    return {"Conventions": CONVENTIONS, "title": title, "source": f"smda {__version__}",
            "history": f"{now}Z {history} (smda {__version__})", **extra}
