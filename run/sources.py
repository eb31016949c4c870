"""Observation sources: where a run's observations come from, behind one interface.

The driver's time loop asks its source, after every model step, for the observations due at the end
of that step; it does not know whether they are synthetic or read from product files. A source may own
model integrations of its own (the truth of a twin experiment: stepped by :meth:`Source.step`,
checkpointed and written with the ensembles) and may add per-cell products to the outputs.

- :class:`SyntheticSource` (twin experiments): the truth run with the full-resolution weather, SMAP-like
  overpasses, synthetic coarse TB or SM from the truth through the same RTM and footprint aggregation
  as the model equivalents, the coarse SM "satellite" product and MODIS-like LST and NDVI predictors;
- :class:`ProductSource`: a real product read once for the domain (plus halo) and period by
  :func:`smda.assimilation.observations.readers.read`, grouped by model step.

A new source subclasses :class:`Source` and registers in :data:`SOURCES`.
"""

from __future__ import annotations

import logging

import numpy as np

from smda.assimilation.observations.readers import read as read_product
from smda.assimilation.observations.synthetic import (
    LSTConfig,
    NDVIConfig,
    SyntheticObsConfig,
    overpasses,
    synthetic_coarse_obs,
    synthetic_lst,
    synthetic_ndvi,
)
from smda.assimilation.observations.table import ObsTable
from smda.model.grid import GRIDS
from smda.registry import Registry
from smda.run.aggregate import PixelAggregator
from smda.run.experiment import expand_paths
from smda.run.runs import ModelRun

log = logging.getLogger(__name__)

LST_LOCAL_HOUR = 10.5  # MODIS Terra overpass, local solar time


class Source:
    """No observations (an open-loop run); the base of every source."""

    runs: tuple[ModelRun, ...] = ()  # integrations the source owns (written and checkpointed with the ensembles)

    def step(self, k: int, t, veg):
        """Advance the source's own runs over step ``k`` (starting at time ``t``)."""

    def due(self, k1: int, t1, veg, rec):
        """Observations due at the end of a step (step index ``k1``, time ``t1``): ``(table, products)`` with
        ``products`` name -> (n_local,) per-cell values to write with the cycle, or None. ``rec`` takes
        whatever else the source writes (collective: every rank calls it)."""
        return None


class SyntheticSource(Source):
    """Twin experiment: observations of a truth run (see the module docstring)."""

    def __init__(self, exp, nl, operator, dt_s: float, t_init):
        self.exp, self.nl, self.operator, self.dt = exp, nl, operator, dt_s
        self.truth = ModelRun("truth", exp, 1, perturb_init=False, t_init=t_init)
        self.runs = (self.truth,)
        self.weather = exp.truth_weather()
        o = nl.observations
        self.pixels = self._pixel_geometry()
        self.agg = PixelAggregator(self.pixels, exp, kind=o.footprint, fov_km=o.fov_km)
        self.cell_pixel = self._pixel_of_cells()
        lat, lon = exp.domain.latlon()
        self.lst_hour = (LST_LOCAL_HOUR - np.mean(lon[exp.domain.land]) / 15.0) % 24

    def step(self, k, t, veg):
        exp = self.exp
        w = self.weather.fields(k, t, exp.x, exp.y, exp.lat, exp.lon, exp.static["elevation_m"])
        self.truth.step(w, exp, veg, self.dt)

    def due(self, k1, t1, veg, rec):
        hour1 = float((t1 - t1.astype("datetime64[D]")) / np.timedelta64(1, "s")) / 3600
        if abs(hour1 - self.lst_hour) <= self.dt / 7200:
            self._predictors(k1, t1, veg, rec)
        seen = self._overpass(t1)
        if seen is None:
            return None
        table, sm_coarse = self._observe(k1, t1, seen, veg)
        return table, {"satellite": sm_coarse[self.cell_pixel]}

    def _pixel_geometry(self) -> ObsTable:
        """The coarse pixels of the observation grid that overlap the domain, sorted by (row, col)."""
        o = self.nl.observations
        g = GRIDS[o.grid]
        _, rows, cols, _ = self.exp.domain.overlap(g.name)
        rc = np.unique(np.stack([rows, cols], axis=1), axis=0)
        x, y = g.xy(rc[:, 0], rc[:, 1])
        lat, lon = g.latlon(rc[:, 0], rc[:, 1])
        n = rc.shape[0]
        return ObsTable(time=np.zeros(n, "datetime64[s]"), x=x, y=y, lat=lat, lon=lon, kind=o.kind, pol="",
                        angle_deg=o.angle_deg, value=np.zeros(n), error_std=0.0, flags=0, footprint=g.name,
                        row=rc[:, 0], col=rc[:, 1], fov_km=o.fov_km, source="synthetic", qc=0)

    def _pixel_rows(self, rows, cols):
        """Row of ``self.pixels`` of each (row, col) pixel."""
        return np.searchsorted(self.pixels.row * 100000 + self.pixels.col, rows * 100000 + cols)

    def _pixel_of_cells(self):
        """For each local cell, the row of ``self.pixels`` holding its (largest-overlap) pixel."""
        exp = self.exp
        cell, rows, cols, frac = exp.domain.overlap(self.nl.observations.grid)
        order = np.lexsort((-frac, cell))
        first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
        return self._pixel_rows(rows[first], cols[first])[exp.cells]

    def _overpass(self, t1):
        """Mask of observation pixels whose overpass falls in the step ending at ``t1`` (None: no overpass)."""
        hit = np.zeros(len(self.pixels), bool)
        half = np.timedelta64(int(self.dt), "s")
        day = t1.astype("datetime64[D]")
        for orbit in self.nl.observations.orbits:
            for d in (day - 1, day):  # the local solar date may differ from the UTC date
                covered, when = overpasses(self.pixels.lon, d, orbit)
                hit |= covered & (when > t1 - half) & (when <= t1)
        return hit if hit.any() else None

    def _observe(self, k, t, seen, veg):
        """Synthetic coarse observations of the truth at step ``k`` for the pixels ``seen``, and the
        coarse SM product (per pixel of ``self.pixels``, NaN where not observed)."""
        o, px = self.nl.observations, self.pixels
        tbh, tbv = self.operator.tb(self.truth.state, veg)
        field = np.concatenate([tbh, tbv, np.ascontiguousarray(self.truth.state.sm_surface)], axis=1)
        mean, _ = self.agg.mean(field, o.min_inside_fraction)
        idx = np.flatnonzero(seen)
        cfg = SyntheticObsConfig(seed=self.nl.seed, tb_error_std=o.error_tb_K, sm_error_std=o.error_sm,
                                 gap_fraction=o.gap_fraction, footprint=o.grid if o.footprint == "box" else "gauss",
                                 fov_km=o.fov_km)
        truth = {("sm", "", 0.0): mean[idx, 2]}
        if o.kind == "tb":
            truth = {("tb", pol, o.angle_deg): mean[idx, p] + o.tb_bias_K
                     for p, pol in enumerate(("H", "V")) if pol in o.polarizations}
        table = synthetic_coarse_obs(truth, px.row[idx], px.col[idx], t, k, cfg, grid_name=o.grid)
        sm = synthetic_coarse_obs({("sm", "", 0.0): mean[idx, 2]}, px.row[idx], px.col[idx], t, k, cfg, grid_name=o.grid)
        sm_coarse = np.full(len(px), np.nan)
        sm_coarse[self._pixel_rows(sm.row, sm.col)] = np.clip(sm.value, 0.0, None)  # a retrieval is never negative
        return table, sm_coarse

    def _predictors(self, k, t, veg, rec):
        """MODIS-like clear-sky LST and NDVI of the day (the comparison operators' 1 km predictors)."""
        exp, c = self.exp, self.nl.comparison
        lst = synthetic_lst(self.truth.state.t_skin[:, 0], exp.x, exp.y, exp.gidx, k,
                            LSTConfig(seed=self.nl.seed, cloud_fraction=c.cloud_fraction))
        ndvi = synthetic_ndvi(veg["ndvi"], exp.gidx, t, NDVIConfig(seed=self.nl.seed))
        rec.record("predictors.nc", t.astype("datetime64[D]"), {"lst": lst, "ndvi": ndvi},
                   static={"elevation": exp.static["elevation_m"]})


class ProductSource(Source):
    """A satellite product's observations, read once and handed out by model step."""

    def __init__(self, exp, nl, dt_s: float):
        o = nl.observations
        paths = expand_paths(o.paths, "observations.paths")
        lat, lon = exp.domain.latlon()
        table = read_product(o.source, paths, bbox=(lat.min(), lat.max(), lon.min(), lon.max()), halo_km=o.halo_km,
                             start=nl.start, end=nl.end + np.timedelta64(int(dt_s), "s"), kind=o.kind,
                             error_std=o.error_tb_K if o.kind == "tb" else o.error_sm)
        if o.kind == "tb":
            table = table.select(np.isin(table.pol, o.polarizations))
        steps = np.ceil((table.time - nl.start) / np.timedelta64(int(dt_s), "s")).astype(np.int64)
        if exp.rank == 0:
            log.info("%s: %d observations (%s) in %d files", o.source, len(table), table.qc_counts(), len(paths))
        self.by_step = {int(k): table.select(steps == k) for k in np.unique(steps)}

    def due(self, k1, t1, veg, rec):
        table = self.by_step.get(k1)
        return None if table is None else (table, {})


SOURCES = Registry("observation source", {"none": Source, "synthetic": SyntheticSource, "product": ProductSource})


def make_source(exp, nl, operator, dt_s: float, t_init) -> Source:
    """The source of ``observations.source``: none, synthetic, or a product name (a reader)."""
    name = nl.observations.source
    if name == "synthetic":
        return SOURCES["synthetic"](exp, nl, operator, dt_s, t_init)
    if name == "none":
        return SOURCES["none"]()
    return SOURCES["product"](exp, nl, dt_s)
