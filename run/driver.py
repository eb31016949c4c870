"""The experiment driver: ``smda run``.

One time loop for every case. Each step the weather is evaluated for this rank's cells; the truth
(twin experiments) steps with the full-resolution weather, the ensembles (open loop and, with a
filter, the analysis ensemble) with the degraded, perturbed weather. At each overpass the truth gives
synthetic coarse observations, the analysis ensemble's 1 km brightness temperatures are aggregated
to the footprints (model equivalents), observations are screened, and the filter updates the state
in place. Outputs are gathered to rank 0; checkpoints make the run restartable bit for bit.

Cycle at analysis time t (end of a model step)::

    truth state --RTM--> TB(1 km) --footprint--> TB(coarse) + noise = y        (twin experiments)
    ensemble    --RTM--> TB(1 km) --footprint--> HX ; screening ; filter(X, HX, y) -> X_a ; HX_a

The open loop uses the same forcing and perturbations as the analysis ensemble, so the difference
between the two is the assimilation alone.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from smda.assimilation.filters import FILTERS, make_filter
from smda.assimilation.observations import bias
from smda.assimilation.observations.operator import flag_too_few_cells
from smda.assimilation.observations.qc import model_screening
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
from smda.constants import T_FREEZE
from smda.model import emission, lsm
from smda.model.grid import GRIDS
from smda.model.state import State
from smda.model.streams import normal_field
from smda.run import restart
from smda.run.aggregate import PixelAggregator
from smda.run.experiment import Experiment, build, expand_paths
from smda.run.guard import StopRequest, acquire_lock, check_output_dir, default_restart_every_days
from smda.run.namelist import Namelist
from smda.run.products import finish, obs_frame, run_attrs
from smda.run.progress import Progress
from smda.run.recorder import Recorder
from smda.variables import bounds

log = logging.getLogger(__name__)

STATE_OUT = ("sm_surface", "sm_rootzone", "t_skin", "t_deep")
# daily outputs (smda.variables names) as sums of model fluxes (smda.model.lsm.FLUXES)
FLUX_OUT = {"evapotranspiration": ("soil_evaporation", "transpiration", "interception_loss"),
            "runoff": ("surface_runoff",), "drainage": ("drainage",), "latent_heat": ("latent_heat",),
            "sensible_heat": ("sensible_heat",)}
LST_LOCAL_HOUR = 10.5  # MODIS Terra overpass, local solar time


class ModelRun:
    """One integration (truth, open loop or analysis): the state and its preallocated work arrays."""

    def __init__(self, name: str, exp: Experiment, n_members: int, *, perturb_init: bool, t_init):
        self.name = name
        soil = exp.soil
        nl = exp.nl
        sm0 = soil["wwilt"] + nl.model.initial_sm_fraction * (soil["wfc"] - soil["wwilt"])
        sm = np.repeat(sm0[:, None], n_members, axis=1)
        if perturb_init:
            sm = sm + nl.model.sm_perturbation_std * normal_field(nl.seed, "init.sm", exp.gidx, n_members, 0)
        self.state = State.initial(exp.n, n_members, soil, sm=sm, t=t_init)
        self.fluxes = lsm.Fluxes(exp.n, n_members)
        self.daily = np.zeros((len(FLUX_OUT), exp.n))
        self._buf = np.zeros(exp.n)

    def step(self, forcing, exp, veg, dt_s):
        lsm.step(self.state, forcing, exp.soil, veg, dt_s, self.fluxes)
        for i, parts in enumerate(FLUX_OUT.values()):
            for p in parts:
                self.daily[i] += np.mean(self.fluxes[p], axis=1, out=self._buf)


class Driver:
    """The time loop of one case on one rank."""

    def __init__(self, nl: Namelist, comm=None):
        self.nl = nl
        self.exp = exp = build(nl, comm)
        self.dt = nl.time.dt_s
        self.n_steps = int((nl.end - nl.start) / np.timedelta64(int(self.dt), "s"))
        self.steps_per_day = int(round(86400 / self.dt))
        self.root = exp.rank == 0
        n, N = exp.n, exp.n_members
        self.weather = exp.truth_weather() if exp.twin else None
        self.ens_weather = exp.ensemble_weather()
        # soil and skin start at the first air temperature (start the run a few weeks early as spin-up)
        t0 = self.ens_weather.fields(0, nl.start, exp.x, exp.y, exp.lat, exp.lon, exp.static["elevation_m"])["t_air"]
        self.truth = ModelRun("truth", exp, 1, perturb_init=False, t_init=t0) if exp.twin else None
        self.openloop = ModelRun("openloop", exp, N, perturb_init=True, t_init=t0)
        self.analysis = (ModelRun("analysis", exp, N, perturb_init=True, t_init=t0)
                         if nl.assimilation.filter != "none" else None)
        self.perturb = exp.perturbations()
        self.forcing = {k: np.zeros((n, N)) for k in lsm.FORCING}
        self.rain_ring = np.zeros((self.steps_per_day, n))  # ensemble-mean rain per step of the last day (mm)
        self.filter = None
        if nl.assimilation.filter != "none":
            a = nl.assimilation
            settings = {"inflation": a.inflation, "adaptive_inflation": a.adaptive_inflation, "rtps": a.rtps,
                        "rtpp": a.rtpp, "seed": nl.seed, "loc_radius_km": a.loc_radius_km,
                        "weight_interpolation": a.weight_interpolation, "analysis_spacing_km": a.analysis_spacing_km}
            takes = {f.name for f in dataclasses.fields(FILTERS[a.filter])}  # e.g. the ETKF is not localized
            self.filter = make_filter(a.filter, **{k: v for k, v in settings.items() if k in takes})
        if exp.twin:  # the observed pixels of the synthetic truth, aggregated every overpass
            self.pixels = self._pixel_geometry()
            self.agg = PixelAggregator(self.pixels, exp, kind=nl.observations.footprint, fov_km=nl.observations.fov_km)
        self.product_obs = self._read_products() if nl.observations.source not in ("synthetic", "none") else {}
        self.rescaler = None
        if nl.observations.rescaling != "none":
            if not nl.observations.rescaling_stats.exists():
                raise FileNotFoundError(f"observations.rescaling_stats: file not found: {nl.observations.rescaling_stats}")
            self.rescaler = bias.load(nl.observations.rescaling_stats)
        self.rec = Recorder(nl.output.dir, exp.domain, [exp.dec.cells(r) for r in range(exp.size)], exp.comm,
                            attrs=run_attrs(nl, getattr(self.ens_weather, "fill_record", {})))
        self.step0 = 0
        self.cycle = 0
        self.n_obs = self.n_used = 0  # observations seen and used so far (all cycles)
        self.signalled = False  # stopped by SIGTERM / SIGUSR1 (exit code guard.EXIT_STOPPED)

    # ------------------------------------------------------------------ geometry and schedule
    def _pixel_geometry(self):
        """The coarse pixels of the observation grid that overlap the domain (rows of an ObsTable-like table)."""
        g = GRIDS[self.nl.observations.grid]
        _, rows, cols, _ = self.exp.domain.overlap(g.name)
        rc = np.unique(np.stack([rows, cols], axis=1), axis=0)
        x, y = g.xy(rc[:, 0], rc[:, 1])
        lat, lon = g.latlon(rc[:, 0], rc[:, 1])
        n = rc.shape[0]
        return ObsTable(time=np.zeros(n, "datetime64[s]"), x=x, y=y, lat=lat, lon=lon, kind=self.nl.observations.kind,
                        pol="", angle_deg=self.nl.observations.angle_deg, value=np.zeros(n), error_std=0.0, flags=0,
                        footprint=g.name, row=rc[:, 0], col=rc[:, 1], fov_km=self.nl.observations.fov_km,
                        source="synthetic", qc=0)

    def time_of(self, k: int):
        return self.nl.start + np.timedelta64(int(round(k * self.dt)), "s")

    def _read_products(self) -> dict:
        """Observations of a real product in the domain (plus halo) and period, grouped by model step."""
        o, nl = self.nl.observations, self.nl
        paths = expand_paths(o.paths, "observations.paths")
        lat, lon = self.exp.domain.latlon()
        table = read_product(o.source, paths, bbox=(lat.min(), lat.max(), lon.min(), lon.max()), halo_km=o.halo_km,
                             start=nl.start, end=nl.end + np.timedelta64(int(self.dt), "s"), kind=o.kind,
                             error_std=o.error_tb_K if o.kind == "tb" else o.error_sm)
        if o.kind == "tb":
            table = table.select(np.isin(table.pol, o.polarizations))
        steps = np.ceil((table.time - nl.start) / np.timedelta64(int(self.dt), "s")).astype(np.int64)
        if self.root:
            log.info("%s: %d observations (%s) in %d files", o.source, len(table), table.qc_counts(), len(paths))
        return {int(k): table.select(steps == k) for k in np.unique(steps)}

    def overpass_pixels(self, t1):
        """Mask of observation pixels whose overpass falls in the step ending at ``t1`` (None: no overpass)."""
        o = self.nl.observations
        if o.source == "none":
            return None
        hit = np.zeros(len(self.pixels), bool)
        half = np.timedelta64(int(self.dt), "s")
        day = t1.astype("datetime64[D]")
        for orbit in o.orbits:
            for d in (day - 1, day):  # the local solar date may differ from the UTC date
                covered, when = overpasses(self.pixels.lon, d, orbit)
                hit |= covered & (when > t1 - half) & (when <= t1)
        return hit if hit.any() else None

    # ------------------------------------------------------------------ the loop
    def run(self, stop_after_days=None, stop: StopRequest | None = None):
        """Advance from ``step0`` (0, a restart's step, or where the previous call stopped) to the end of
        the period, or by ``stop_after_days``, or until ``stop`` reports a signal (checked on every rank
        at every step); returns the step reached."""
        exp, nl = self.exp, self.nl
        last = self.n_steps if stop_after_days is None else min(
            self.n_steps, self.step0 + int(round(stop_after_days * self.steps_per_day)))
        n_runs = (self.truth is not None) * 1 / exp.n_members + 1 + (self.analysis is not None)
        prog = Progress(last - self.step0, exp.n * exp.n_members * n_runs * self.exp.size, enabled=self.root)
        veg_day, veg = None, None
        lst_hour = (LST_LOCAL_HOUR - np.mean(exp.lon) / 15.0) % 24
        every = default_restart_every_days(self.n_steps / self.steps_per_day, nl.output.restart_every_days)
        reached = last
        for k in range(self.step0, last):
            t = self.time_of(k)
            day = t.astype("datetime64[D]")
            if day != veg_day:
                doy = float((day - day.astype("datetime64[Y]")) / np.timedelta64(1, "D")) + 1
                veg, veg_day = exp.vegetation_on(doy), day
            self._step(k, t, veg)
            t1 = self.time_of(k + 1)
            hour1 = float((t1 - t1.astype("datetime64[D]")) / np.timedelta64(1, "s")) / 3600
            if self.truth is not None and abs(hour1 - lst_hour) <= self.dt / 7200:
                self._record_lst(k + 1, t1, veg)
            if self.truth is not None:
                seen = self.overpass_pixels(t1)
                if seen is not None:
                    self._cycle(k + 1, t1, veg, *self._synthetic_obs(k + 1, t1, seen, veg))
            elif k + 1 in self.product_obs:
                self._cycle(k + 1, t1, veg, self.product_obs[k + 1], None)
            if (k + 1) % self.steps_per_day == 0:
                self._end_of_day(t1)
                if every > 0 and (k + 1) % int(round(every * self.steps_per_day)) == 0 and k + 1 < last:
                    self.checkpoint(k + 1)
            prog.update(k + 1 - self.step0, t1)
            if stop is not None and stop.requested(exp.comm):
                self.signalled, reached = True, k + 1
                break
        self.rate = prog.rate()
        self.wall = prog.elapsed
        self.step0 = reached
        return reached

    def _step(self, k, t, veg):
        exp = self.exp
        if self.truth is not None:
            w = self.weather.fields(k, t, exp.x, exp.y, exp.lat, exp.lon, exp.static["elevation_m"])
            self.truth.step(w, exp, veg, self.dt)
        w = self.ens_weather.fields(k, t, exp.x, exp.y, exp.lat, exp.lon, exp.static["elevation_m"])
        for name, arr in self.forcing.items():
            arr[...] = w[name][:, None]
        if self.perturb is not None:
            self.perturb.apply(k, self.forcing)
        self.rain_ring[k % self.steps_per_day] = self.forcing["precip"].mean(axis=1) * self.dt
        self.openloop.step(self.forcing, exp, veg, self.dt)
        if self.analysis is not None:
            self.analysis.step(self.forcing, exp, veg, self.dt)

    # ------------------------------------------------------------------ observations and analysis
    def _tb(self, state: State, veg, angles_deg=None):
        """1 km TB (H, V) of every member, K: (n, N) at observations.angle_deg, or (n, N, n_angles) at
        each of ``angles_deg`` (one RTM call for all the angles of an observation set)."""
        exp, o = self.exp, self.nl.observations
        args = (state.sm_surface, state.t_skin, state.t_deep, state.t_skin, veg["vwc"], exp.static["clay"],
                exp.static["sand"], exp.bulk_density)
        kw = dict(dielectric=o.dielectric, teff=o.teff, porosity=exp.soil["wsat"], **exp.tau_omega)
        if angles_deg is None:
            return emission.brightness_temperature(*args, o.angle_deg, **kw)
        return emission.brightness_temperature_multiangle(*args, angles_deg, **kw)

    def _synthetic_obs(self, k, t, seen, veg):
        """Synthetic coarse observations of the truth at step ``k`` for the pixels ``seen``, and the
        coarse SM product (per pixel of ``self.pixels``, NaN where not observed)."""
        o, px = self.nl.observations, self.pixels
        tbh, tbv = self._tb(self.truth.state, veg)
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
        sm_coarse[self._pixel_rows(sm)] = np.clip(sm.value, 0.0, None)  # a retrieval is never negative
        return table, sm_coarse

    def _pixel_rows(self, table):
        """Row of ``self.pixels`` of every observation (pixels are sorted by (row, col))."""
        key = self.pixels.row * 100000 + self.pixels.col
        return np.searchsorted(key, table.row * 100000 + table.col)

    def _equivalents(self, run: ModelRun, veg, table: ObsTable, agg: PixelAggregator):
        """Model equivalents HX (n_obs, N) of ``table`` from a model run (TB at each row's angle and
        polarization, or surface SM), the footprint means used for screening, and the inside fractions."""
        N = run.state.n_members
        if self.nl.observations.kind == "tb":
            angles, which = np.unique(np.round(table.angle_deg, 1), return_inverse=True)
            tbh, tbv = self._tb(run.state, veg, angles)  # (n, N, n_angles)
            # field columns: angle by angle, H then V, members inner; an observation's block is 2 angle + V
            fields = [np.stack([tbh, tbv], axis=1).transpose(0, 3, 1, 2).reshape(tbh.shape[0], -1)]
            col = 2 * which + (table.pol == "V")
        else:
            fields, col = [np.ascontiguousarray(run.state.sm_surface)], np.zeros(len(table), np.int64)
        # frozen soil: the deep (daily-mean) soil temperature below 0 C, not a frosty dawn skin
        fields.append(np.stack([run.state.t_deep.mean(axis=1), (run.state.t_deep < T_FREEZE).mean(axis=1),
                                run.fluxes.snow.mean(axis=1), self.rain_ring.sum(axis=0)], axis=1))
        mean, inside = agg.mean(np.concatenate(fields, axis=1), self.nl.observations.min_inside_fraction)
        hx = np.take_along_axis(mean, col[:, None] * N + np.arange(N)[None, :], axis=1)
        return hx, mean[:, -4:], inside

    def _cycle(self, k, t, veg, table: ObsTable, sm_coarse):
        """One analysis at step ``k`` (time ``t``) with the observations ``table``."""
        nl, exp = self.nl, self.exp
        if len(table) == 0:
            return
        o = nl.observations
        if self.rescaler is not None:
            value = self.rescaler.apply(table.value, table.rescaling_groups(), table.time)
            lost = np.isnan(value) & np.isfinite(table.value)
            table = dataclasses.replace(table, value=value).with_qc(lost, "no_rescaling_statistics")
        kind = "gauss" if o.footprint == "gauss" else "auto"
        agg = PixelAggregator(table, exp, kind=kind, fov_km=np.where(table.fov_km > 0, table.fov_km, o.fov_km))
        ens = self.analysis if self.analysis is not None else self.openloop
        hx, scr, inside = self._equivalents(ens, veg, table, agg)
        table = flag_too_few_cells(table, inside, o.min_inside_fraction)
        table = model_screening(table, t_soil_K=scr[:, 0], frozen_fraction=scr[:, 1], snow_fraction=scr[:, 2],
                                water_fraction=0.0, rain_24h_mm=scr[:, 3], heavy_rain_mm=o.heavy_rain_mm)
        ok = table.accepted & np.all(np.isfinite(hx), axis=1)
        # background statistics now: the state arrays are updated in place by the analysis
        background = {f"{v}_background": ens.state[v] for v in STATE_OUT}
        background.update(zip(("tb_h_background", "tb_v_background"), self._tb(ens.state, veg), strict=True))
        record = {k: (a.mean(axis=1), a.std(axis=1, ddof=1)) for k, a in background.items()}
        if self.analysis is None:
            record = {}
        hx_a = hx
        n_used = 0
        if self.analysis is not None and ok.any():  # (no accepted obs: the analysis equals the background)
            X, lower, upper, scatter = self._filter_view()
            idx = np.flatnonzero(ok)
            ids = self._obs_ids(table)
            diag = self.filter.analyse(X, np.stack([exp.x, exp.y], axis=1), hx[idx], table.value[idx],
                                       table.error_std[idx] ** 2, np.stack([table.x[idx], table.y[idx]], axis=1),
                                       obs_ids=ids[idx], cycle=k, lower=lower, upper=upper)
            scatter(X)
            hx_a, _, _ = self._equivalents(self.analysis, veg, table, agg)
            n_used = diag.n_used
            if self.root:
                log.info("analysis %s: %d obs used, %d rejected, O-F mean %.2f rms %.2f, chi2 %.2f",
                         str(t)[:16], diag.n_used, len(table) - diag.n_used, diag.omf["mean"], diag.omf["rms"],
                         diag.omf["chi2"])
        elif self.root:
            log.info("analysis %s: no accepted observation (%d rejected: %s); the analysis is the background",
                     str(t)[:16], len(table), table.qc_counts())
        if self.analysis is not None:
            tb = self._tb(self.analysis.state, veg)
            record.update({f"tb_{p}_analysis": (a.mean(axis=1), a.std(axis=1, ddof=1)) for p, a in zip("hv", tb, strict=True)})
        self._record(t, record, sm_coarse, table, hx, hx_a)
        self.cycle += 1
        self.n_obs += len(table)
        self.n_used += n_used

    def _obs_ids(self, table: ObsTable) -> np.ndarray:
        """Global observation ids for the random streams: position on the global 1 km grid, polarization, angle."""
        r, c = GRIDS["M01"].rowcol(table.x, table.y)
        pos = r * GRIDS["M01"].n_cols + c
        angle = np.nan_to_num(np.round(table.angle_deg * 10), nan=0).astype(np.int64)
        return (pos * 2 + (table.pol == "V")) * 1000 + angle

    def _filter_view(self):
        """(n, k, N) array of the updated variables, per-cell bounds, and the write-back function."""
        st, names = self.analysis.state, self.nl.assimilation.update
        X = st.gather(names)
        per_var = [bounds(v, self.exp.soil) for v in names]
        lo = np.stack([lo for lo, _ in per_var], axis=1)
        hi = np.stack([hi for _, hi in per_var], axis=1)
        return X, lo, hi, lambda Xa: st.scatter(names, Xa)

    # ------------------------------------------------------------------ outputs (streamed, see smda.run.recorder)
    def _record(self, t, background, sm_coarse, table, hx, hx_a):
        fields = {}
        for v, (mean, spread) in background.items():
            fields[v + "_mean"], fields[v + "_spread"] = mean, spread
        for run in self.runs():
            for v in STATE_OUT:
                a = run.state[v]
                fields[f"{v}_{run.name}" + ("" if run is self.truth else "_mean")] = a.mean(axis=1)
                if run is self.analysis:
                    fields[f"{v}_analysis_spread"] = a.std(axis=1, ddof=1)
        name = self.nl.name
        self.rec.record(f"{name}_analysis.nc", t, fields)
        products = {r.name: fields[f"sm_surface_{r.name}" + ("" if r is self.truth else "_mean")] for r in self.runs()}
        if sm_coarse is not None:
            products["satellite"] = sm_coarse[self._pixel_index_of_cells()]
        for product, values in products.items():
            self.rec.record(f"products/{product}.nc", t, {"sm_surface": values}, product=product)
        self.rec.rows(f"{name}_obs_diagnostics.csv",
                      obs_frame([(table, hx.mean(axis=1), hx.std(axis=1, ddof=1), hx_a.mean(axis=1))]))

    def _pixel_index_of_cells(self):
        """For each local cell, the row of ``self.pixels`` holding its (largest-overlap) pixel."""
        if not hasattr(self, "_pix_cache"):
            exp = self.exp
            cell, rows, cols, frac = exp.domain.overlap(self.nl.observations.grid)
            order = np.lexsort((-frac, cell))
            first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
            key = rows[first] * 100000 + cols[first]
            pkey = self.pixels.row * 100000 + self.pixels.col
            of_cell = np.searchsorted(pkey, key)  # pixels are sorted by (row, col)
            self._pix_cache = of_cell[exp.cells]
        return self._pix_cache

    def _record_lst(self, k, t, veg):
        """MODIS-like clear-sky LST and NDVI of the day (the comparison operators' 1 km predictors)."""
        exp, c = self.exp, self.nl.comparison
        lst = synthetic_lst(self.truth.state.t_skin[:, 0], exp.x, exp.y, exp.gidx, k,
                            LSTConfig(seed=self.nl.seed, cloud_fraction=c.cloud_fraction))
        ndvi = synthetic_ndvi(veg["ndvi"], exp.gidx, t, NDVIConfig(seed=self.nl.seed))
        self.rec.record("predictors.nc", t.astype("datetime64[D]"), {"lst": lst, "ndvi": ndvi},
                        static={"elevation": exp.static["elevation_m"]})

    def _end_of_day(self, t):
        fields = {}
        for run in (self.analysis, self.openloop):
            if run is not None:
                for i, name in enumerate(FLUX_OUT):
                    fields[f"{name}_{run.name}_mean"] = run.daily[i] / self.steps_per_day
                run.daily[...] = 0.0
        if self.nl.output.daily_means:
            self.rec.record(f"{self.nl.name}_daily.nc", t - np.timedelta64(1, "D"), fields)

    # ------------------------------------------------------------------ restarts
    def first_outputs_bytes(self) -> int:
        """Upper bound (uncompressed) of what the first day writes: a checkpoint and a day of records."""
        exp = self.exp
        cells = exp.domain.n_land
        members = sum(r.state.data.shape[1] * r.state.data.shape[2] for r in self.runs())
        state = 8 * cells * (members + len(FLUX_OUT) * len(self.runs()) + self.steps_per_day)
        per_record = 4 * exp.domain.n_cells * (6 * len(STATE_OUT) + 8)  # analysis file and products
        return int(state + per_record * (2 + len(FLUX_OUT)))

    def runs(self):
        return [r for r in (self.truth, self.openloop, self.analysis) if r is not None]

    def gather(self, a: np.ndarray):
        """Per-rank (n_local, ...) arrays concatenated in canonical cell order on rank 0 (None elsewhere)."""
        return self.rec.gather(a)

    def checkpoint(self, k: int, final: bool = False) -> Path | None:
        """Write the state-only checkpoint of step ``k`` (collective); its path on rank 0."""
        arrays = {}
        for r in self.runs():
            arrays[f"state_{r.name}"] = (("cell", "var", f"member_{r.name}"), self.gather(r.state.data))
            arrays[f"daily_{r.name}"] = (("cell", "flux"), self.gather(r.daily.T))
        arrays["rain_ring"] = (("cell", "ring"), self.gather(self.rain_ring.T))
        if self.perturb is not None:
            st = self.perturb.get_state()
            comm = self.exp.comm
            parts = [st] if comm is None or comm.size == 1 else comm.gather(st, root=0)
            if self.root:
                idx = np.concatenate([p["lattice_index"] for p in parts])
                val = np.concatenate([p["values"] for p in parts])
                idx, first = np.unique(idx, return_index=True)
                arrays["pert_lattice_index"] = (("lattice",), idx)
                arrays["pert_values"] = (("lattice", "member", "pert_var"), val[first])
                arrays["pert_step"] = ((), np.int64(st["step"]))
        if not self.root:
            return None
        tk = self.time_of(k)
        path = self.nl.output.dir / "restart" / f"{self.nl.name}_{str(tk)[:13]}.nc"
        restart.write(path, nl=self.nl, domain=self.exp.domain, step=k, time=tk, arrays=arrays,
                      counters={"cycle": self.cycle, "n_obs": self.n_obs, "n_used": self.n_used},
                      positions=self.rec.positions(), final=final)
        log.info("checkpoint %s", path)
        return path

    def load(self, path):
        """Continue from a checkpoint (collective): states, counters and the output files' positions."""
        exp = self.exp
        ck = restart.Checkpoint(Path(path), nl=self.nl, domain=exp.domain)
        arrays = ck.arrays
        sizes = [exp.dec.cells(r).size for r in range(exp.size)]
        a, b = sum(sizes[:exp.rank]), sum(sizes[:exp.rank + 1])
        for r in self.runs():
            # an open-loop spin-up continued with a filter: the analysis ensemble starts from the open loop
            name = r.name if f"state_{r.name}" in arrays or r is not self.analysis else "openloop"
            if f"state_{name}" not in arrays:
                raise ValueError(f"{path}: has no {r.name} state (a twin experiment's truth is needed to continue it)")
            r.state.data[...] = arrays[f"state_{name}"][a:b]
            r.daily[...] = arrays[f"daily_{name}"][a:b].T
            if name != r.name and self.root:
                log.info("the analysis ensemble starts from the open-loop ensemble of %s", path)
        self.rain_ring[...] = arrays["rain_ring"][a:b].T
        if self.perturb is not None:
            if "pert_step" not in arrays:
                raise ValueError(f"{path}: has no forcing-perturbation state (written with perturbations off)")
            self.perturb.set_state({"step": int(arrays["pert_step"]), "variables": self.perturb.active,
                                    "lattice_index": arrays["pert_lattice_index"], "values": arrays["pert_values"]})
        self.cycle, self.n_obs, self.n_used = (int(ck.counters[k]) for k in ("cycle", "n_obs", "n_used"))
        self.step0 = ck.step
        if not ck.final:  # a stopped run: append to its outputs (a finished one's outputs are complete)
            self.rec.resume(ck.positions)
        log.info("restarted from %s at step %d (%s)", path, ck.step, str(self.time_of(ck.step))[:16])


def run(nl: Namelist, comm=None, restart=None, stop_after_days=None) -> Driver:
    """Run a case (``smda run``). Before the time loop: the output folder is checked (writable, space for
    the first outputs) and locked against a second run. A run stopped early (``stop_after_days``, or a
    SIGTERM / SIGUSR1 at a step boundary: ``Driver.signalled``) leaves a checkpoint and ``.part`` outputs."""
    drv = Driver(nl, comm)
    check_output_dir(nl.output.dir, drv.first_outputs_bytes(), comm)
    with acquire_lock(nl.output.dir, nl.name, comm), StopRequest() as stop:
        if restart is not None:
            drv.load(restart)
        last = drv.run(stop_after_days, stop)
        if last < drv.n_steps:
            drv.checkpoint(last)
            if drv.root:
                log.info("stopped after step %d of %d; continue with --restart", last, drv.n_steps)
            return drv
        drv.checkpoint(last, final=True)
        if drv.root:
            finish(drv)
            log.info("run finished: %.1f s wall, %.3g cell-member-steps/s; %d observations, %d used; outputs in %s",
                     drv.wall, drv.rate, drv.n_obs, drv.n_used, nl.output.dir)
    return drv


def downscale(nl: Namelist, methods=None):
    """``smda downscale``: rerun the comparison operators on a finished run's stored inputs."""
    from smda.run.products import downscale_from_files

    downscale_from_files(nl, methods or list(nl.comparison.methods))


