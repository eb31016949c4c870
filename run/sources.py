"""Observation sources: where a run's observations come from, behind one interface.

The driver's time loop asks its source, after every model step, for the observations due at the end
of that step; it does not know whether they are synthetic or read from product files. A source may own
model integrations of its own (the truth of a twin experiment: stepped by :meth:`Source.step`,
checkpointed and written with the ensembles) and may add per-cell products to the outputs.

- :class:`SyntheticSource` (twin experiments): synthetic coarse (or fine) TB or SM of the truth run through
  the same RTM and footprint aggregation as the model equivalents, at SMAP-like (or any) revisits; the first
  synthetic source also gives the coarse SM "satellite" product and the MODIS-like LST and NDVI predictors
  (no LST where the truth rains in the step ending at the overpass: under cloud);
- :class:`ProductSource`: a real product read once for the domain (plus halo) and period by
  :func:`smda.assimilation.observations.readers.read`, file by file (a file listed twice is read once,
  observations repeated by another file are dropped with a warning naming both files), grouped by model step;
  its soil-moisture retrievals on the 1 km cells are the satellite product (real runs' predictors:
  :mod:`smda.run.predictors`).

The namelist's ``observations`` is a list of sources; :class:`Sources` steps them together (one truth run
for every synthetic source) and hands the driver, at each step, the concatenation of every source's
observations due (one analysis), each row's ``source`` column holding its source's name, as
:func:`as_assimilated` makes them (super-observations, error inflation).

A new source subclasses :class:`Source` and registers in :data:`SOURCES`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from smda.assimilation.filters.diagnostics import gross_error_mask
from smda.assimilation.observations import bias
from smda.assimilation.observations.readers import read as read_product
from smda.assimilation.observations.superobs import superobs
from smda.assimilation.observations.synthetic import (
    LSTConfig,
    NDVIConfig,
    RevisitPattern,
    SyntheticObsConfig,
    overpasses,
    synthetic_coarse_obs,
    synthetic_lst,
    synthetic_ndvi,
)
from smda.assimilation.observations.table import QC_REASONS, ObsTable
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


class Truth:
    """The truth run of a twin experiment (full-resolution weather), shared by its synthetic sources."""

    def __init__(self, exp, dt_s: float, t_init):
        self.exp, self.dt = exp, dt_s
        self.run = ModelRun("truth", exp, 1, perturb_init=False, t_init=t_init)
        self.weather = exp.truth_weather()
        self.precip = None  # the last step's precipitation (kg m-2 s-1): where it rains, no LST (clouds)

    def step(self, k, t, veg):
        exp = self.exp
        w = self.weather.fields(k, t, exp.x, exp.y, exp.lat, exp.lon, exp.static["elevation_m"])
        self.run.step(w, exp, veg, self.dt)
        self.precip = w["precip"]


class SyntheticSource(Source):
    """Twin experiment: observations of a truth run by source ``index`` of the namelist (module docstring)."""

    def __init__(self, exp, nl, obs, index: int, operator, dt_s: float, truth: Truth, first: bool):
        self.exp, self.nl, self.obs, self.operator, self.dt = exp, nl, obs, operator, dt_s
        self.index, self.truth, self.truth_forcing = index, truth.run, truth
        self.first = first and nl.comparison.predictors == "synthetic"  # records the synthetic predictors
        self.n_local = exp.n
        o = obs
        self.label = o.label
        self.pixels = self._pixel_geometry()
        self.agg = PixelAggregator(self.pixels, exp, kind=o.footprint, fov_km=o.fov_km)
        self.cell_pixel = self._pixel_of_cells()
        self.revisit = RevisitPattern(cycle_days=o.revisit_cycle_days, am_days=o.revisit_am_days,
                                      pm_days=o.revisit_pm_days)
        self.product = "satellite" if first else f"satellite_{o.label}"
        self.products = (self.product,)
        lat, lon = exp.domain.latlon()
        self.lst_hour = (LST_LOCAL_HOUR - np.mean(lon[exp.domain.land]) / 15.0) % 24

    def due(self, k1, t1, veg, rec):
        hour1 = float((t1 - t1.astype("datetime64[D]")) / np.timedelta64(1, "s")) / 3600
        if self.first and abs(hour1 - self.lst_hour) <= self.dt / 7200:
            self._predictors(k1, t1, veg, rec)
        seen = self._overpass(t1)
        if seen is None:
            return None
        table, sm_coarse = self._observe(k1, t1, seen, veg)
        return as_assimilated(table, self.obs), {self.product: sm_coarse[self.cell_pixel]}

    def _pixel_geometry(self) -> ObsTable:
        """The coarse pixels of the observation grid that overlap the domain, sorted by (row, col)."""
        o = self.obs
        g = GRIDS[o.grid]
        _, rows, cols, _ = self.exp.domain.overlap(g.name)
        rc = np.unique(np.stack([rows, cols], axis=1), axis=0)
        x, y = g.xy(rc[:, 0], rc[:, 1])
        lat, lon = g.latlon(rc[:, 0], rc[:, 1])
        n = rc.shape[0]
        return ObsTable(time=np.zeros(n, "datetime64[s]"), x=x, y=y, lat=lat, lon=lon, kind=o.kind, pol="",
                        angle_deg=o.angle_deg, value=np.zeros(n), error_std=0.0, flags=0, footprint=g.name,
                        row=rc[:, 0], col=rc[:, 1], fov_km=o.fov_km, source=o.label, qc=0)

    def _pixel_rows(self, rows, cols):
        """Row of ``self.pixels`` of each (row, col) pixel."""
        return np.searchsorted(self.pixels.row * 100000 + self.pixels.col, rows * 100000 + cols)

    def _pixel_of_cells(self):
        """For each local cell, the row of ``self.pixels`` holding its (largest-overlap) pixel."""
        exp = self.exp
        cell, rows, cols, frac = exp.domain.overlap(self.obs.grid)
        order = np.lexsort((-frac, cell))
        first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
        return self._pixel_rows(rows[first], cols[first])[exp.cells]

    def _overpass(self, t1):
        """Mask of observation pixels whose overpass falls in the step ending at ``t1`` (None: no overpass)."""
        hit = np.zeros(len(self.pixels), bool)
        half = np.timedelta64(int(self.dt), "s")
        day = t1.astype("datetime64[D]")
        for orbit in self.obs.orbits:
            for d in (day - 1, day):  # the local solar date may differ from the UTC date
                covered, when = overpasses(self.pixels.lon, d, orbit, self.revisit)
                hit |= covered & (when > t1 - half) & (when <= t1)
        return hit if hit.any() else None

    def _observe(self, k, t, seen, veg):
        """Synthetic coarse observations of the truth at step ``k`` for the pixels ``seen``, and the
        coarse SM product (per pixel of ``self.pixels``, NaN where not observed)."""
        o, px = self.obs, self.pixels
        tbh, tbv = self.operator.tb(self.truth.state, veg, angle_deg=o.angle_deg)
        field = np.concatenate([tbh, tbv, np.ascontiguousarray(self.truth.state.sm_surface)], axis=1)
        mean, _ = self.agg.mean(field, o.min_inside_fraction)
        idx = np.flatnonzero(seen)
        cfg = SyntheticObsConfig(seed=self.nl.seed, tb_error_std=o.error_std if o.kind == "tb" else o.error_tb_K,
                                 sm_error_std=o.error_std if o.kind == "sm" else o.error_sm, gap_fraction=o.gap_fraction,
                                 footprint=o.grid if o.footprint == "box" else "gauss", fov_km=o.fov_km,
                                 source=o.label, stream=self.index, error_corr_km=o.error_corr_km)
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
                            LSTConfig(seed=self.nl.seed, cloud_fraction=c.cloud_fraction), precip=self.truth_forcing.precip)
        ndvi = synthetic_ndvi(veg["ndvi"], exp.gidx, t, NDVIConfig(seed=self.nl.seed))
        rec.record("predictors.nc", t.astype("datetime64[D]"), {"lst": lst, "ndvi": ndvi},
                   static={"elevation": exp.static["elevation_m"]})


class ProductSource(Source):
    """A satellite product's observations, read once and handed out by model step.

    Its soil moisture (kind sm; for kind tb with ``comparison.satellite_from_tb``, the product files' own retrieval)
    is also the run's satellite product, ``product`` (``satellite``, or ``satellite_<name>`` after the first
    source): per model step, the accepted retrievals (product flags) of the step mapped to the 1 km cells they
    cover (box footprints: the grid pixel holding the cell centre; Gaussian ones: the nearest footprint centre
    within 2 ``fov_km`` (two sigma); several retrievals of a cell in one step: their mean), recorded with the cycle.
    """

    def __init__(self, exp, nl, obs, index: int, dt_s: float, product: str | None = None):
        o, key = obs, source_key(nl, index)
        self.label, self.exp, self.dt = o.label, exp, dt_s
        self.n_local = exp.n
        paths = _unique_files(expand_paths(o.paths, f"{key}.paths"), o.label, exp.rank == 0)
        lat, lon = exp.domain.latlon()

        def read(kind):
            return [read_product(o.source, [p], bbox=(lat.min(), lat.max(), lon.min(), lon.max()), halo_km=o.halo_km,
                                 start=nl.start, end=nl.end + np.timedelta64(int(dt_s), "s"), kind=kind,
                                 error_std=o.error_given, **(o.options or {})) for p in paths]

        tables = read(o.kind)
        table = _drop_duplicates(tables, paths, o.label, exp.rank == 0)
        self.products, self.satellite = (), {}  # model step -> the step's accepted retrievals
        if product is not None:
            sm = table if o.kind == "sm" else _drop_duplicates(read("sm"), paths, o.label, False)
            sm = sm.select(sm.accepted)
            steps = np.ceil((sm.time - nl.start) / np.timedelta64(int(dt_s), "s")).astype(np.int64)
            self.products, self.satellite = (product,), {int(k): sm.select(steps == k) for k in np.unique(steps)}
            if exp.rank == 0:
                log.info("%s: satellite product %s at %d model steps", o.label, product, len(self.satellite))
        if o.kind == "tb":
            table = table.select(np.isin(table.pol, o.polarizations))
        if o.footprint == "gauss":  # the namelist's antenna pattern instead of the product's grid box
            table = dataclasses.replace(table, footprint=np.full(len(table), "gauss"),
                                        fov_km=np.where(table.fov_km > 0, table.fov_km, o.fov_km))
        table = dataclasses.replace(table, source=np.full(len(table), o.label))
        if exp.rank == 0:
            log.info("%s (%s): %d observations (%s) in %d files", o.label, o.source, len(table), table.qc_counts(),
                     len(paths))
        if not table.accepted.any():
            raise ValueError(f"{key} ({o.label!r}, {o.source}): no accepted observation in the domain and period "
                             f"in {len(paths)} file(s); QC counts: {table.qc_counts() or 'no observation read'}")
        steps = np.ceil((table.time - nl.start) / np.timedelta64(int(dt_s), "s")).astype(np.int64)
        self.by_step = {int(k): as_assimilated(table.select(steps == k), o) for k in np.unique(steps)}
        if o.superob_grid != "none" and exp.rank == 0:
            n = sum(len(t) for t in self.by_step.values())
            log.log(logging.INFO if n < len(table) else logging.WARNING, "%s: %d observations, %d after super-observations "
                    "in %s pixels (accepted box footprints of a finer nested grid are averaged)", o.label, len(table), n,
                    o.superob_grid)

    def due(self, k1, t1, veg, rec):
        table = self.by_step.get(k1)
        if table is None:
            return None
        sm = self.satellite.get(k1)
        return table, {name: np.full(self.n_local, np.nan) if sm is None else self._on_cells(sm) for name in self.products}

    def _on_cells(self, sm: ObsTable) -> np.ndarray:
        """(n_local,) soil moisture of one step's retrievals on the 1 km cells (class docstring), NaN elsewhere."""
        exp = self.exp
        total, count = np.zeros(exp.n), np.zeros(exp.n)
        for fp in np.unique(sm.footprint):
            rows = np.flatnonzero(sm.footprint == fp)
            if fp in GRIDS:  # the pixel box: the pixel of each cell centre among the retrievals' pixels
                g = GRIDS[fp]
                r, c = g.rowcol(sm.x[rows], sm.y[rows])
                keys, inverse = np.unique(r * g.n_cols + c, return_inverse=True)
                mean = np.bincount(inverse.ravel(), sm.value[rows]) / np.bincount(inverse.ravel())
                rc, cc = g.rowcol(exp.x, exp.y)
                pos = np.minimum(np.searchsorted(keys, rc * g.n_cols + cc), keys.size - 1)
                hit = keys[pos] == rc * g.n_cols + cc
                total[hit] += mean[pos[hit]]
                count[hit] += 1
            else:  # a Gaussian footprint: the nearest centre within two sigma
                from scipy.spatial import cKDTree

                dist, j = cKDTree(np.stack([sm.x[rows], sm.y[rows]], axis=1)).query(np.stack([exp.x, exp.y], axis=1))
                hit = dist <= 2000.0 * sm.fov_km[rows][j]
                total[hit] += sm.value[rows][j[hit]]
                count[hit] += 1
        with np.errstate(invalid="ignore"):
            return np.clip(total / count, 0.0, None)  # NaN where no retrieval; a retrieval is never negative


def as_assimilated(table: ObsTable, obs) -> ObsTable:
    """One step's observations of source ``obs`` (its namelist section) as they enter the analysis: with
    ``superob_grid``, the accepted finer box observations averaged in its pixels
    (:func:`smda.assimilation.observations.superobs.superobs`, errors correlated over ``error_corr_km``); the
    error variance times ``error_inflation``. The table is the one every rank holds, and so is the result."""
    if obs.superob_grid != "none":
        table = superobs(table, obs.superob_grid, obs.error_corr_km)
    if obs.error_inflation != 1.0:
        table = dataclasses.replace(table, error_std=table.error_std * np.sqrt(obs.error_inflation))
    return table


def _unique_files(paths, label: str, loud: bool) -> list[Path]:
    """The files in order, each once (the same file given twice, by two patterns or a link, is read once)."""
    first, out = {}, []
    for p in paths:
        r = Path(p).resolve()
        if r in first:
            if loud:
                log.warning("%s: %s is listed twice (also as %s): read once", label, p, first[r])
            continue
        first[r] = p
        out.append(p)
    return out


def _drop_duplicates(tables, paths, label: str, loud: bool) -> ObsTable:
    """The tables concatenated without repeated observations (same time, position, kind, polarization and angle:
    a granule delivered twice under two names); the first file's rows are kept, a warning names both files."""
    table = ObsTable.concat(tables)
    if len(table) == 0:
        return table
    file = np.repeat(np.arange(len(tables)), [len(t) for t in tables])
    angle = np.nan_to_num(np.round(table.angle_deg, 3), nan=-1.0)
    keys = np.rec.fromarrays([table.time.astype(np.int64), np.round(table.x, 1), np.round(table.y, 1), table.kind,
                              table.pol, angle])
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    dup = first[inverse.ravel()] != np.arange(len(table))
    if dup.any() and loud:
        pairs, counts = np.unique(np.stack([file[dup], file[first[inverse.ravel()]][dup]], axis=1), axis=0,
                                  return_counts=True)
        for (f, g), n in zip(pairs, counts, strict=True):
            log.warning("%s: %d observations of %s repeat those of %s (same time, place, polarization and angle): "
                        "dropped", label, n, paths[f], paths[g])
    return table.select(~dup)


class Sources(Source):
    """Every observation source of the namelist, stepped together: one truth run for the synthetic ones, and
    at each step the concatenation of every source's observations due (one analysis). Each source with a
    satellite product writes it at every cycle (NaN when it has no overpass), so the product files share one
    time axis. ``predictors`` (:class:`smda.run.predictors.Predictors`, real LST/NDVI) records its days."""

    def __init__(self, children, truth: Truth | None = None, predictors=None, dt_s: float = 0.0):
        self.children, self.truth = list(children), truth
        self.runs = () if truth is None else (truth.run,)
        self.labels = [c.label for c in self.children]
        self.predictors, self.dt = predictors, dt_s

    def step(self, k, t, veg):
        if self.truth is not None:
            self.truth.step(k, t, veg)

    def due(self, k1, t1, veg, rec):
        if self.predictors is not None:
            self.predictors.due(k1, t1, self.dt, rec)
        found = [c.due(k1, t1, veg, rec) for c in self.children]
        if all(f is None for f in found):
            return None
        tables, products = [f[0] for f in found if f is not None], {}
        for c, f in zip(self.children, found, strict=True):
            for name in getattr(c, "products", ()):
                products[name] = f[1][name] if f is not None else np.full(c.n_local, np.nan)
        return ObsTable.concat(tables), products


def rescaling_file(nl, label: str, method: str) -> str:
    """File name of the rescaling statistics a run writes for source ``label`` (in ``output.dir``)."""
    sources = [o for o in nl.observations if o.source != "none"]
    return f"{nl.name}_rescaling_{method}.nc" if len(sources) <= 1 else f"{nl.name}_{label}_rescaling_{method}.nc"


class SourceBook:
    """Per-source settings and statistics of a run's observations, by the ``source`` column of the tables:
    rescaling (:meth:`prepare`), the background check, adaptive observation errors, QC counts over the run
    (checkpointed) and the end-of-run check that every source gave accepted observations.

    Adaptive error (Desroziers et al. 2005, doi:10.1256/qj.05.108): ``E[d_oa d_ob] = R`` for a well-specified
    R, with ``d_ob = y - mean(HX_b)``, ``d_oa = y - mean(HX_a)``. Per source, ``A = m A + sum(d_oa d_ob)`` and
    ``B = m B + sum(R_0)`` over the cycle's used observations (m: ``adaptive_error_memory``, R_0 the namelist's
    error variance); the next cycles use ``R = f^2 R_0`` with ``f^2 = A / B`` bounded by
    ``adaptive_error_bounds``. The sums are over the replicated observation table (model equivalents are
    reduced over all ranks in pixel order), so every rank count gives the same factors.
    """

    def __init__(self, nl):
        self.nl = nl
        self.sources = [(i, o) for i, o in enumerate(nl.observations) if o.source != "none"]
        self.labels = np.array([o.label for _, o in self.sources])
        self.counts = np.zeros((len(self.sources), max(QC_REASONS) + 1), np.int64)
        self.adaptive = np.zeros((len(self.sources), 2))  # smoothed sums of d_oa d_ob and of R_0 per source
        self.rescalers = {}
        for j, (i, o) in enumerate(self.sources):
            if o.rescaling == "none":
                continue
            if not o.rescaling_stats.exists():
                raise FileNotFoundError(
                    f"{source_key(nl, i)}.rescaling_stats: file not found: {o.rescaling_stats}. An open-loop run of "
                    f"this case (--set assimilation.filter=none) writes it as "
                    f"<output.dir>/{rescaling_file(nl, o.label, o.rescaling)}")
            self.rescalers[j] = bias.load(o.rescaling_stats)

    def param(self, name: str, sidx) -> np.ndarray:
        """Namelist key ``name`` of each row's source."""
        return np.array([getattr(o, name) for _, o in self.sources], float)[sidx]

    def index(self, table: ObsTable) -> np.ndarray:
        """Position of each row's source in :attr:`labels`."""
        names, inverse = np.unique(table.source, return_inverse=True)
        pos = {v: j for j, v in enumerate(self.labels)}
        return np.array([pos[v] for v in names], np.int64)[inverse.ravel()]

    def factor(self) -> np.ndarray:
        """Adaptive factor on each source's error std (1 where adaptive_error is off or before statistics)."""
        f = np.ones(len(self.sources))
        for j, (_, o) in enumerate(self.sources):
            a, b = self.adaptive[j]
            if o.adaptive_error and b > 0:
                lo, hi = o.adaptive_error_bounds
                f[j] = np.sqrt(np.clip(a / b, lo ** 2, hi ** 2))
        return f

    def prepare(self, table: ObsTable, sidx) -> ObsTable:
        """Rescaled values (QC ``no_rescaling_statistics`` where a source's statistics lack the pixel) and the
        adaptive error std."""
        value = table.value.copy()
        for j, matcher in self.rescalers.items():
            rows = sidx == j
            value[rows] = matcher.apply(table.value[rows], table.select(rows).rescaling_groups(), table.time[rows])
        lost = np.isnan(value) & np.isfinite(table.value)
        err = table.error_std * self.factor()[sidx]
        return dataclasses.replace(table, value=value, error_std=err).with_qc(lost, "no_rescaling_statistics")

    def background_check(self, table: ObsTable, sidx, hx) -> ObsTable:
        """QC ``background_check`` where |O - mean(HX)| > k sqrt(var(HX) + R) (k = background_k; 0: off)."""
        k = self.param("background_k", sidx)
        with np.errstate(invalid="ignore"):
            ok = gross_error_mask(table.value - hx.mean(axis=1), hx.var(axis=1, ddof=1), table.error_std ** 2, k)
            bad = (k > 0) & ~ok & np.all(np.isfinite(hx), axis=1)
        return table.with_qc(bad, "background_check")

    def learn(self, table: ObsTable, sidx, used, hx_b, hx_a):
        """Add a cycle's innovation statistics to the adaptive error sums of the sources that use them."""
        d_ob, d_oa = table.value - hx_b.mean(axis=1), table.value - hx_a.mean(axis=1)
        r0 = (table.error_std / self.factor()[sidx]) ** 2
        for j, (_, o) in enumerate(self.sources):
            rows = used & (sidx == j)
            if o.adaptive_error and rows.any():
                m = o.adaptive_error_memory
                self.adaptive[j] = m * self.adaptive[j] + (np.sum(d_oa[rows] * d_ob[rows]), np.sum(r0[rows]))

    def count(self, table: ObsTable, sidx):
        np.add.at(self.counts, (sidx, table.qc.astype(np.int64)), 1)

    def cycle_summary(self, table: ObsTable, sidx) -> str:
        """``label accepted/total`` of every source in the cycle."""
        return ", ".join(f"{v} {int((table.accepted & (sidx == j)).sum())}/{int((sidx == j).sum())}"
                         for j, v in enumerate(self.labels) if (sidx == j).any())

    def qc_counts(self, j: int) -> dict:
        return {QC_REASONS[c]: int(n) for c, n in enumerate(self.counts[j]) if n}

    def summary(self) -> str:
        """Per source over the run: observations, accepted, and the rejections by reason."""
        return "; ".join(f"{v}: {int(self.counts[j].sum())} observations, {int(self.counts[j, 0])} accepted "
                         f"{self.qc_counts(j)}" for j, v in enumerate(self.labels))

    def check_used(self):
        """A source that gave no accepted observation in the whole run is an error naming its QC counts (a
        synthetic source without an overpass in a short period only warns: its schedule, not its data)."""
        bad = []
        for j, (i, o) in enumerate(self.sources):
            if self.counts[j, 0]:
                continue
            msg = f"{source_key(self.nl, i)} ({o.label!r}, {o.source}): no accepted observation in the whole run"
            if o.source == "synthetic" and not self.counts[j].any():
                log.warning("%s: no overpass in the period", msg)
                continue
            bad.append(f"{msg}; QC counts: {self.qc_counts(j) or 'no observation in the period'}")
        if bad:
            raise ValueError("\n".join(bad) + "\n(see the obs diagnostics file; every QC setting is a key of the "
                             "source in the namelist)")

    def state(self):
        """(counters: name -> int, arrays: name -> (dims, array)) for a checkpoint."""
        counters = {f"qc.{v}.{c}": int(self.counts[j, c]) for j, v in enumerate(self.labels)
                    for c in np.flatnonzero(self.counts[j])}
        return counters, {"obs_adaptive_sums": (("obs_source", "obs_sum"), self.adaptive.copy())}

    def set_state(self, counters: dict, arrays: dict):
        for j, v in enumerate(self.labels):
            for c in range(self.counts.shape[1]):
                self.counts[j, c] = int(counters.get(f"qc.{v}.{c}", 0))
        stored = arrays.get("obs_adaptive_sums")
        if stored is not None and stored.shape == self.adaptive.shape:
            self.adaptive[...] = stored


SOURCES = Registry("observation source", {"none": Source, "synthetic": SyntheticSource, "product": ProductSource})


def source_key(nl, index: int) -> str:
    """The namelist key of source ``index``: ``observations`` (one source) or ``observations[i]``."""
    return "observations" if len(nl.observations) == 1 else f"observations[{index}]"


def make_source(exp, nl, operator, dt_s: float, t_init) -> Sources:
    """The observation sources of ``nl.observations`` (none, synthetic, or a product name: a reader)."""
    truth = Truth(exp, dt_s, t_init) if nl.twin else None
    children, first = [], True
    for i, o in enumerate(nl.observations):
        if o.source == "synthetic":
            children.append(SOURCES["synthetic"](exp, nl, o, i, operator, dt_s, truth, first))
            first = False
        elif o.source != "none":
            writes = o.kind == "sm" or nl.comparison.satellite_from_tb
            product = None if not writes else "satellite" if first else f"satellite_{o.label}"
            first = first and not writes
            children.append(SOURCES["product"](exp, nl, o, i, dt_s, product))
    predictors = None
    if nl.comparison.predictors != "synthetic":
        from smda.run.predictors import Predictors

        predictors = Predictors(exp, nl)
    return Sources(children, truth, predictors, dt_s)
