"""Real 1 km predictors of the comparison methods: MODIS LST/NDVI tiles or CF netCDF grids -> ``predictors.nc``.

A real run has no truth to simulate LST and NDVI from, so with ``comparison.predictors: modis`` or ``netcdf``
the run records, once per UTC day of its period (at the step starting the day), the day's 1 km fields on the
domain's EASE-Grid 2.0 cells into ``predictors.nc``, the file a twin experiment writes: ``lst`` (K), ``ndvi``
and the static ``elevation``; from MODIS also ``lst_night``, ``lst_view_time`` (local solar hours of the day
view) and, when both Terra and Aqua files are given, ``lst_aqua``. ``smda run`` (end of run) and
``smda downscale`` then downscale the real coarse satellite soil moisture with them. Days without a file are
NaN, as are clouds.

modis
    ``lst_paths``: MOD11A1 / MYD11A1 daily tiles (:func:`smda.assimilation.observations.readers.modis.read_lst`:
    produced pixels with an LST error class <= ``lst_max_error_class``); the day is the granule's (file name
    ``.AYYYYDDD.`` or CoreMetadata). Terra gives ``lst``, ``lst_night`` and ``lst_view_time``; Aqua its own
    ``lst_aqua`` (a second acquisition: DISPATCH downscales each and averages, Merlin et al. 2012), or plays
    Terra's part when no Terra file is given. ``ndvi_paths``: MOD13A2 / MYD13A2 16-day composites (pixel
    reliability <= ``ndvi_max_reliability``); a day takes the latest composite begun at most 16 days before.
    Reprojection (sinusoidal tiles -> EASE cells, :func:`~smda.assimilation.observations.readers.modis.to_domain`):
    ``area_mean`` (default) averages the tile values at 3 x 3 points spread over each 1 km cell. The tile pixel
    (926.6 m) is smaller than the EASE cell (1000.9 m) and sheared off the central meridian, so the nearest
    pixel would drop about one tile pixel in seven and shift features by up to 460 m; the mean approximates the
    area average (the quantity the coarse-pixel aggregation of DISPATCH assumes) and keeps partly clear cells.
netcdf
    ``lst_paths`` / ``ndvi_paths``: CF netCDF grids in any CRS with a grid mapping (or lat/lon axes) and a time
    coordinate, variables ``lst_variable`` (K, or degC converted) and ``ndvi_variable``, read with the raster
    routines of ``smda parameters`` (GDAL average of the overlapping source pixels). A day's LST is the first
    layer of that UTC day; its NDVI the latest layer at most 16 days before (composites).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from smda.assimilation.observations.readers import modis
from smda.model.grid import M01
from smda.run.experiment import expand_paths

log = logging.getLogger(__name__)

COMPOSITE_DAYS = 16  # MODIS VI compositing period; also the reach of a netCDF NDVI layer
CELSIUS = ("degc", "celsius", "degree_celsius", "degrees_celsius", "c")
KELVIN = ("k", "kelvin", "degk")


class Predictors:
    """The 1 km LST/NDVI of every day of a real run, recorded into ``predictors.nc`` (see the module docstring)."""

    def __init__(self, exp, nl):
        c = self.c = nl.comparison
        self.exp, self.kind = exp, c.predictors
        self.lst_files = expand_paths(c.lst_paths, "comparison.lst_paths")
        self.ndvi_files = expand_paths(c.ndvi_paths, "comparison.ndvi_paths")
        self._cache: dict = {}
        if self.kind == "modis":
            self.lst = self._index_modis(self.lst_files)  # (platform, day) -> [paths]
            platforms = {p for p, _ in self.lst}
            self.day_platform = "terra" if "terra" in platforms else "aqua"
            self.variables = ["lst", "lst_night", "lst_view_time", "ndvi"] + (["lst_aqua"] if len(platforms) == 2 else [])
            self.ndvi = self._index_modis(self.ndvi_files)
        else:
            self.lst = self._index_netcdf(self.lst_files, c.lst_variable)  # day -> [(path, layer)]
            self.ndvi = self._index_netcdf(self.ndvi_files, c.ndvi_variable)
            self.variables = ["lst", "ndvi"]
        days = sorted({d for _, d in self.lst} if self.kind == "modis" else set(self.lst))
        start, end = nl.start.astype("datetime64[D]"), nl.end.astype("datetime64[D]")
        if exp.rank == 0 and not any(start <= d <= end for d in days):
            log.warning("comparison.lst_paths: no LST file is dated within the run (%s to %s; files: %s to %s): the "
                        "comparison methods will have no predictors", start, end, days[0] if days else "-",
                        days[-1] if days else "-")

    # ------------------------------------------------------------------ indexes
    @staticmethod
    def _index_modis(files):
        out = {}
        for p in files:
            out.setdefault(modis.granule_info(p), []).append(p)
        return out

    def _index_netcdf(self, files, variable):
        import xarray as xr

        out = {}
        for p in files:
            with xr.open_dataset(p) as ds:
                if variable not in ds:
                    raise ValueError(f"{p}: no variable {variable!r} (comparison.*_variable); it has {list(ds.data_vars)}")
                times = [ds[d] for d in ds[variable].dims if np.issubdtype(ds[d].dtype, np.datetime64)]
                if not times:
                    raise ValueError(f"{p}: {variable} has no time coordinate (CF time axis needed to date its layers)")
                for i, t in enumerate(times[0].values.astype("datetime64[D]")):
                    out.setdefault(t, []).append((p, i))
        return out

    # ------------------------------------------------------------------ the day's fields
    def due(self, k1: int, t1, dt_s: float, rec):
        """Record a day's predictors at the step ending at ``t1`` (step index ``k1``) when it starts that UTC day,
        and the first day at the first step (collective; restart-safe: a day belongs to one step)."""
        t = t1 - np.timedelta64(int(dt_s), "s")
        day = t.astype("datetime64[D]")
        first = day if t == day else day + np.timedelta64(1, "D")  # the first day start at or after t
        if first < t1:
            day = first
        elif k1 != 1:
            return
        grids = self.fields(day)
        exp = self.exp
        rec.record("predictors.nc", day, {v: grids[v].ravel()[exp.cells] for v in self.variables},
                   static={"elevation": exp.static["elevation_m"]}, title="smda: 1 km predictors of the comparison "
                   "methods", predictor_source=self.describe())

    def describe(self) -> str:
        c = self.c
        if self.kind == "modis":
            return (f"MODIS MOD11A1/MYD11A1 LST (produced, LST error class <= {c.lst_max_error_class}) and MOD13A2 NDVI "
                    f"(reliability <= {c.ndvi_max_reliability}), {c.resampling} onto EASE-Grid 2.0 1 km")
        return f"CF netCDF {c.lst_variable} and {c.ndvi_variable}, GDAL average onto EASE-Grid 2.0 1 km"

    def fields(self, day) -> dict[str, np.ndarray]:
        """The (nrows, ncols) fields of ``day``: NaN where no file or no valid value."""
        shape = self.exp.domain.shape
        out = {v: np.full(shape, np.nan) for v in self.variables}
        if self.kind == "modis":
            self._modis_day(day, out)
        else:
            layers = self.lst.get(day)
            if layers:
                out["lst"] = self._netcdf_layer(*layers[0], "lst")
            back = [d for d in self.ndvi if day - np.timedelta64(COMPOSITE_DAYS, "D") < d <= day]
            if back:
                out["ndvi"] = self._netcdf_layer(*self.ndvi[max(back)][0], "ndvi")
        return out

    def _modis_day(self, day, out):
        c, dom = self.c, self.exp.domain
        for platform in ("terra", "aqua"):
            files = self.lst.get((platform, day))
            if not files:
                continue
            day_lst = [modis.read_lst(p, "day", max_lst_error_class=c.lst_max_error_class) for p in files]
            lst = modis.to_domain(day_lst, dom, c.resampling)
            if platform == self.day_platform:
                out["lst"] = lst
                view = [modis.ModisField("view", f.meta["view_time_h"], f.grid) for f in day_lst]
                out["lst_view_time"] = modis.to_domain(view, dom, c.resampling)
                night = [modis.read_lst(p, "night", max_lst_error_class=c.lst_max_error_class) for p in files]
                out["lst_night"] = modis.to_domain(night, dom, c.resampling)
            else:
                out["lst_aqua"] = lst
        begun = [(d, p) for (p, d) in self.ndvi if day - np.timedelta64(COMPOSITE_DAYS, "D") < d <= day]
        if begun:
            key = max(begun)[::-1]
            if key not in self._cache:
                self._cache = {key: modis.to_domain([modis.read_ndvi(p, max_reliability=c.ndvi_max_reliability)
                                                     for p in self.ndvi[key]], dom, c.resampling)}
            out["ndvi"] = self._cache[key]

    def _netcdf_layer(self, path: Path, layer: int, what: str) -> np.ndarray:
        """Layer ``layer`` of the LST or NDVI variable of ``path`` on the domain (the file's layers are reprojected
        once and kept while the next days read the same file)."""
        from smda.run.parameters import open_raster, reproject

        key = (what, path)
        if key not in self._cache:
            dom = self.exp.domain
            s = M01.cell_m
            bounds = (dom.x[0] - s / 2, dom.y[-1] - s / 2, dom.x[-1] + s / 2, dom.y[0] + s / 2)
            var = self.c.lst_variable if what == "lst" else self.c.ndvi_variable
            da, units = open_raster(f"{path}:{var}", f"comparison {what}", bounds)
            values = reproject(da, dom, "average")
            values = _checked(values, what, path, units)
            self._cache = {k: v for k, v in self._cache.items() if k[0] != what} | {key: values}
        return self._cache[key][layer]


def _checked(values: np.ndarray, what: str, path, units) -> np.ndarray:
    """LST in K (degC converted) and NDVI in -1..1; other units are an error naming the file."""
    u = str(units or "").strip().lower().replace(" ", "_")
    if what == "lst":
        if u in CELSIUS:
            values = values + 273.15
        elif u not in KELVIN:
            raise ValueError(f"{path}: LST units {units!r}; expected K or degC (set the variable's units attribute)")
        bad = np.isfinite(values) & ((values < 150.0) | (values > 400.0))
        if bad.any():
            raise ValueError(f"{path}: LST {np.nanmin(values):.1f}..{np.nanmax(values):.1f} K after conversion: not a "
                             "land surface temperature (wrong units attribute?)")
    elif np.nanmax(np.abs(values), initial=0.0) > 1.0 + 1e-6:
        raise ValueError(f"{path}: NDVI values up to {np.nanmax(np.abs(values)):.4g}: scale them to -1..1 (a "
                         "scale_factor attribute, e.g. 1e-4 for MODIS integers)")
    return values
