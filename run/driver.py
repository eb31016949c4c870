"""The experiment driver: ``smda run``, one time loop for every case.

Each step the ensembles (open loop and, with a filter, the analysis ensemble) step with the
perturbed ensemble weather and the observation source (:mod:`smda.run.sources`) steps its own runs
(the truth of a twin experiment). When the source has observations due, a cycle screens them, maps the
analysis ensemble to them through the observation operator (:mod:`smda.run.operator`), and the filter
updates the state in place. The recorder (:mod:`smda.run.recorder`) writes every output as it is
produced; checkpoints hold only the state (:mod:`smda.run.restart`).

Cycle at analysis time t (end of a model step)::

    source      --> y (synthetic from the truth through the same RTM and footprints, or a product)
    ensemble    --RTM--> TB(1 km) --footprint--> HX ; screening ; filter(X, HX, y) -> X_a ; HX_a

The open loop uses the same forcing and perturbations as the analysis ensemble, so the difference
between the two is the assimilation alone.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from smda.assimilation.filters import FILTERS, make_filter
from smda.assimilation.filters.increments import PixelIncrements, finer_than
from smda.assimilation.observations.operator import flag_too_few_cells
from smda.assimilation.observations.qc import model_screening
from smda.assimilation.observations.table import ObsTable
from smda.model import lsm
from smda.model.grid import GRIDS
from smda.run import restart
from smda.run.experiment import build
from smda.run.guard import StopRequest, acquire_lock, check_output_dir, default_restart_every_days
from smda.run.namelist import Namelist
from smda.run.operator import ObservationOperator
from smda.run.products import finish, gather_fill_record, obs_frame, run_attrs
from smda.run.progress import Progress
from smda.run.recorder import Recorder
from smda.run.runs import DAILY_STATE, FLUX_OUT, ModelRun
from smda.run.sources import SourceBook, make_source
from smda.variables import bounds

log = logging.getLogger(__name__)

STATE_OUT = ("sm_surface", "sm_rootzone", "t_skin", "t_deep")


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
        self.ens_weather = exp.ensemble_weather()
        # soil and skin start at the first air temperature (start the run a few weeks early as spin-up)
        t0 = self.ens_weather.fields(0, nl.start, exp.x, exp.y, exp.lat, exp.lon, exp.static["elevation_m"])["t_air"]
        self.operator = ObservationOperator(exp, nl)
        self.source = make_source(exp, nl, self.operator, self.dt, t0)
        self.openloop = ModelRun("openloop", exp, N, perturb_init=True, t_init=t0)
        self.analysis = (ModelRun("analysis", exp, N, perturb_init=True, t_init=t0)
                         if nl.assimilation.filter != "none" else None)
        self.perturb = exp.perturbations()
        self.forcing = {k: np.zeros(n) for k in lsm.FORCING}  # the step's base fields (every member)
        self.rain_ring = np.zeros((self.steps_per_day, n))  # ensemble-mean rain per step of the last day (mm)
        self.filter = None
        if nl.assimilation.filter != "none":
            a = nl.assimilation
            settings = {"inflation": a.inflation, "adaptive_inflation": a.adaptive_inflation, "rtps": a.rtps,
                        "rtpp": a.rtpp, "seed": nl.seed, "loc_radius_km": a.loc_radius_km, "taper_cutoff": a.taper_cutoff,
                        "random_rotation": a.random_rotation, "weight_interpolation": a.weight_interpolation,
                        "analysis_spacing_km": a.analysis_spacing_km}
            takes = {f.name for f in dataclasses.fields(FILTERS[a.filter])}  # e.g. the ETKF is not localized
            self.filter = make_filter(a.filter, **{k: v for k, v in settings.items() if k in takes})
        self.increments = None  # pixel-uniform increments (assimilation.increment_grid): buffers for this rank's cells
        if self.filter is not None and nl.assimilation.increment_grid != "none":
            pixel = exp.domain.pixel_index(nl.assimilation.increment_grid)[exp.cells]
            self.increments = PixelIncrements(pixel, len(nl.assimilation.update), N)
        self.book = SourceBook(nl)  # per-source rescaling, background check, adaptive errors, QC counts
        self.rec = Recorder(nl.output.dir, exp.domain, [exp.dec.cells(r) for r in range(exp.size)], exp.comm,
                            attrs=run_attrs(nl, getattr(self.ens_weather, "fill_record", {})))
        self.step0 = 0
        self.cycle = 0
        self.n_obs = self.n_used = 0  # observations seen and used so far (all cycles)
        self.signalled = False  # stopped by SIGTERM / SIGUSR1 (exit code guard.EXIT_STOPPED)
        self.timers = dict.fromkeys(("model", "sources", "observations", "analysis", "output"), 0.0)  # s on this rank

    # ------------------------------------------------------------------ geometry and schedule
    def time_of(self, k: int):
        return self.nl.start + np.timedelta64(int(round(k * self.dt)), "s")

    # ------------------------------------------------------------------ the loop
    def run(self, stop_after_days=None, stop: StopRequest | None = None):
        """Advance from ``step0`` (0, a restart's step, or where the previous call stopped) to the end of
        the period, or by ``stop_after_days``, or until ``stop`` reports a signal (checked on every rank
        at every step); returns the step reached."""
        exp, nl = self.exp, self.nl
        last = self.n_steps if stop_after_days is None else min(
            self.n_steps, self.step0 + int(round(stop_after_days * self.steps_per_day)))
        members = sum(r.state.n_members for r in self.runs())
        if self.root:
            log.info("time loop: steps %d to %d of %d (%s to %s), %d land cells x %d members", self.step0, last,
                     self.n_steps, str(self.time_of(self.step0))[:16], str(self.time_of(last))[:16],
                     exp.domain.n_land, members)
        prog = Progress(last - self.step0, exp.domain.n_land * members, enabled=self.root)
        veg_day, veg = None, None
        every = default_restart_every_days(self.n_steps / self.steps_per_day, nl.output.restart_every_days)
        reached = last
        for k in range(self.step0, last):
            t = self.time_of(k)
            day = t.astype("datetime64[D]")
            if day != veg_day:
                doy = float((day - day.astype("datetime64[Y]")) / np.timedelta64(1, "D")) + 1
                veg, veg_day = exp.vegetation_on(doy), day
            with self._timed("model"):
                self._step(k, t, veg)
            t1 = self.time_of(k + 1)
            with self._timed("sources"):  # the observations due (product lookup, synthetic observing)
                due = self.source.due(k + 1, t1, veg, self.rec)
            if due is not None:
                self._cycle(k + 1, t1, veg, *due)
            if (k + 1) % self.steps_per_day == 0:
                with self._timed("output"):
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
        self.source.step(k, t, veg)
        w = self.ens_weather.fields(k, t, exp.x, exp.y, exp.lat, exp.lon, exp.static["elevation_m"])
        for name, arr in self.forcing.items():  # the base fields; members differ by the perturbation factors
            arr[...] = w[name]
        pert = self.perturb.perturbation(k) if self.perturb is not None else None
        rain = self.forcing["precip"] if pert is None else pert.ensemble_mean("precip", self.forcing["precip"])
        self.rain_ring[k % self.steps_per_day] = rain * self.dt
        self.openloop.step(self.forcing, exp, veg, self.dt, pert)
        if self.analysis is not None:
            self.analysis.step(self.forcing, exp, veg, self.dt, pert)

    # ------------------------------------------------------------------ observations and analysis
    def _cycle(self, k, t, veg, table: ObsTable, products: dict):
        """One analysis at step ``k`` (time ``t``) with the observations ``table``; ``products`` are the
        source's per-cell values written with it (the coarse satellite SM of a twin experiment)."""
        exp, book = self.exp, self.book
        if len(table) == 0:
            return
        sidx = book.index(table)  # every source's observations enter one analysis, each with its own settings
        table = book.prepare(table, sidx)
        ens = self.analysis if self.analysis is not None else self.openloop
        rain = self.rain_ring.sum(axis=0)
        inside_min = book.param("min_inside_fraction", sidx)
        with self._timed("observations"):
            agg = self.operator.aggregator(table)
            hx, scr, inside, tb_b = self.operator.equivalents(ens, veg, table, agg, rain, inside_min,
                                                              tb_out=self.analysis is not None)
        table = flag_too_few_cells(table, inside, inside_min)
        table = model_screening(table, t_soil_K=scr[:, 0], frozen_fraction=scr[:, 1], snow_fraction=scr[:, 2],
                                water_fraction=0.0, rain_24h_mm=scr[:, 3],
                                heavy_rain_mm=book.param("heavy_rain_mm", sidx))
        if self.analysis is not None:  # (an open loop's observations fit the rescaling: their whole distribution)
            table = book.background_check(table, sidx, hx)
        ok = table.accepted & np.all(np.isfinite(hx), axis=1)
        # background statistics now: the state arrays are updated in place by the analysis (the TB is the
        # operator's, at the output angle; an open loop records none of them)
        record = {}
        if self.analysis is not None:
            record = {f"{v}_background": (ens.state[v].mean(axis=1), ens.state[v].std(axis=1, ddof=1)) for v in STATE_OUT}
            record.update(tb_h_background=tb_b[0], tb_v_background=tb_b[1])
        hx_a, tb_a = hx, tb_b
        n_used = 0
        if self.analysis is not None and ok.any():  # (no accepted obs: the analysis equals the background)
            X, lower, upper, scatter = self._filter_view()
            idx = np.flatnonzero(ok)
            ids = self._obs_ids(table)
            if self.increments is not None:
                self._check_increment_grid(table, idx)
                self.increments.keep(X)
            with self._timed("analysis"):
                diag = self.filter.analyse(X, np.stack([exp.x, exp.y], axis=1), hx[idx], table.value[idx],
                                           table.error_std[idx] ** 2, np.stack([table.x[idx], table.y[idx]], axis=1),
                                           obs_ids=ids[idx], cycle=k, lower=lower, upper=upper,
                                           obs_loc_radius_km=self._loc_radius(sidx[idx]),
                                           **self._error_corr(sidx[idx], table.time[idx]))
                if self.increments is not None:
                    n_clipped = self.increments.apply(X, lower, upper)
                    if n_clipped:
                        log.debug("pixel-uniform increments: %d values clipped to their bounds", n_clipped)
                scatter(X)
            del X  # the gathered copy of the updated variables
            with self._timed("observations"):
                hx_a, _, _, tb_a = self.operator.equivalents(self.analysis, veg, table, agg, rain, inside_min,
                                                             tb_out=True)
            n_used = diag.n_used
            book.learn(table, sidx, ok, hx, hx_a)
            if self.root:
                log.info("analysis %s: %d obs used, %d rejected, O-F mean %.2f rms %.2f, chi2 %.2f; accepted/total by "
                         "source: %s", str(t)[:16], diag.n_used, len(table) - diag.n_used, diag.omf["mean"],
                         diag.omf["rms"], diag.omf["chi2"], book.cycle_summary(table, sidx))
        elif self.root and self.analysis is None:
            log.info("open loop %s: %d observations recorded with their model equivalents (accepted/total by source: "
                     "%s)", str(t)[:16], len(table), book.cycle_summary(table, sidx))
        elif self.root:
            log.info("analysis %s: no accepted observation (%d rejected: %s); the analysis is the background",
                     str(t)[:16], len(table), table.qc_counts())
        book.count(table, sidx)
        if self.analysis is not None:  # (without an analysis its TB is the background's)
            record.update(tb_h_analysis=tb_a[0], tb_v_analysis=tb_a[1])
        with self._timed("output"):
            self._record(t, record, products, table, hx, hx_a)
        self.cycle += 1
        self.n_obs += len(table)
        self.n_used += n_used

    def _check_increment_grid(self, table: ObsTable, idx):
        """Refuse the accepted observations ``idx`` if finer than the increment grid's pixels (a product's footprints are known
        only once read; the namelist refuses finer synthetic sources). Every rank holds the table: all fail together."""
        grid = self.nl.assimilation.increment_grid
        fine = idx[finer_than(table.footprint[idx], table.fov_km[idx], grid)]
        if fine.size:
            raise ValueError(f"assimilation.increment_grid {grid}: source(s) {', '.join(sorted(set(table.source[fine])))} "
                             f"observe footprints ({', '.join(sorted(set(table.footprint[fine])))}) finer than its pixels; "
                             "averaging the increments there would erase their information: use a coarser grid or none")

    def _loc_radius(self, sidx) -> np.ndarray:
        """Localization half-width (km) of each observation: its source's loc_radius_km, null ones
        assimilation.loc_radius_km."""
        c = self.book.param("loc_radius_km", sidx)  # null -> nan
        return np.where(np.isnan(c), self.nl.assimilation.loc_radius_km, c)

    def _error_corr(self, sidx, time) -> dict:
        """The filter's error-correlation arguments: each observation's error correlation length (km; its source's
        error_corr_km where correlated_errors is set, else 0) and group (its source and time: the errors of two
        overpasses are independent); none if no source sets correlated_errors (a diagonal R)."""
        on = self.book.param("correlated_errors", sidx) > 0
        if not on.any():
            return {}
        _, group = np.unique(np.stack([sidx, time.astype("datetime64[s]").astype(np.int64)], axis=1), axis=0,
                             return_inverse=True)
        return {"obs_error_corr_km": np.where(on, self.book.param("error_corr_km", sidx), 0.0),
                "obs_group": group.ravel()}

    def _obs_ids(self, table: ObsTable) -> np.ndarray:
        """Global observation ids for the random streams: position on the global 1 km grid, polarization, angle
        and source; rows still equal (one source observing a place twice in a step) are numbered in time order."""
        r, c = GRIDS["M01"].rowcol(table.x, table.y)
        pos = r * GRIDS["M01"].n_cols + c
        angle = np.nan_to_num(np.round(table.angle_deg * 10), nan=0).astype(np.int64)
        ids = ((pos * 2 + (table.pol == "V")) * 1000 + angle) * len(self.book.labels) + self.book.index(table)
        order = np.lexsort((table.time, ids))
        repeat = np.r_[False, ids[order][1:] == ids[order][:-1]]
        if repeat.any():  # the n-th repeat of an id in the sorted order
            run_start = np.maximum.accumulate(np.where(~repeat, np.arange(ids.size), 0))
            nth = np.empty(ids.size, np.int64)
            nth[order] = np.arange(ids.size) - run_start
            ids = ids * (int(nth.max()) + 1) + nth
        return ids

    def _filter_view(self):
        """(n, k, N) array of the updated variables, per-cell bounds, and the write-back function."""
        st, names = self.analysis.state, self.nl.assimilation.update
        X = st.gather(names)
        per_var = [bounds(v, self.exp.soil) for v in names]
        lo = np.stack([lo for lo, _ in per_var], axis=1)
        hi = np.stack([hi for _, hi in per_var], axis=1)
        return X, lo, hi, lambda Xa: st.scatter(names, Xa)

    @contextmanager
    def _timed(self, part: str):
        """Add the wall time of the block to ``self.timers[part]`` (model, sources, observations: the operator,
        analysis, output)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timers[part] += time.perf_counter() - t0

    # ------------------------------------------------------------------ outputs (streamed, see smda.run.recorder)
    def _record(self, t, background, source_products, table, hx, hx_a):
        fields = {}
        for v, (mean, spread) in background.items():
            fields[v + "_mean"], fields[v + "_spread"] = mean, spread
        for run in self.runs():
            for v in STATE_OUT:
                a = run.state[v]
                fields[run.output_name(v)] = a.mean(axis=1)
                if run is self.analysis:
                    fields[f"{v}_analysis_spread"] = a.std(axis=1, ddof=1)
        name = self.nl.name
        self.rec.record(f"{name}_analysis.nc", t, fields, title=f"smda {name}: ensemble states at the analysis times")
        products = {r.name: fields[r.output_name("sm_surface")] for r in self.runs()} | source_products
        for product, values in products.items():
            self.rec.record(f"products/{product}.nc", t, {"sm_surface": values}, product=product,
                            title=f"smda {name}: 1 km surface soil moisture, {product}")
        self.rec.rows(f"{name}_obs_diagnostics.csv",
                      obs_frame([(table, hx.mean(axis=1), hx.std(axis=1, ddof=1), hx_a.mean(axis=1))]))

    def _end_of_day(self, t):
        """The daily means of the UTC day ending at ``t`` of every run (truth, open loop, analysis): fluxes
        and soil moisture (the mean of the end-of-step states), stamped at noon with the day as time bounds."""
        fields = {}
        for run in self.runs():
            for i, name in enumerate((*FLUX_OUT, *DAILY_STATE)):
                fields[run.output_name(name)] = run.daily[i] / self.steps_per_day
            run.daily[...] = 0.0
        if self.nl.output.daily_means:
            day = t - np.timedelta64(1, "D")
            self.rec.record(f"{self.nl.name}_daily.nc", day + np.timedelta64(12, "h"), fields, bounds=(day, t),
                            title=f"smda {self.nl.name}: daily means of fluxes and soil moisture")

    # ------------------------------------------------------------------ restarts
    def first_outputs_bytes(self) -> int:
        """Upper bound (uncompressed) of what the first day writes: a checkpoint and a day of records."""
        exp = self.exp
        cells = exp.domain.n_land
        members = sum(r.state.data.shape[1] * r.state.data.shape[2] for r in self.runs())
        state = 8 * cells * (members + len(FLUX_OUT) * len(self.runs()) + self.steps_per_day)
        per_record = 4 * exp.domain.n_cells * (6 * len(STATE_OUT) + 8)  # analysis file and products
        return int(state + per_record * (2 + len(FLUX_OUT)))

    def runs(self) -> list[ModelRun]:
        """Every integration: the source's (the truth), the open loop, the analysis ensemble."""
        return [*self.source.runs, *(r for r in (self.openloop, self.analysis) if r is not None)]

    def checkpoint(self, k: int, final: bool = False) -> Path | None:
        """Write the state-only checkpoint of step ``k`` (collective); its path on rank 0."""
        local = {}
        for r in self.runs():
            local[f"state_{r.name}"] = (("cell", "var", f"member_{r.name}"), r.state.data)
            local[f"daily_{r.name}"] = (("cell", "flux"), r.daily.T)
        local["rain_ring"] = (("cell", "ring"), self.rain_ring.T)
        shared = {}
        if self.perturb is not None:  # the perturbation lattice (small): union of the ranks' lattice points
            st = self.perturb.get_state()
            comm = self.exp.comm
            parts = [st] if comm is None or comm.size == 1 else comm.gather(st, root=0)
            if self.root:
                idx = np.concatenate([p["lattice_index"] for p in parts])
                val = np.concatenate([p["values"] for p in parts])
                idx, first = np.unique(idx, return_index=True)
                shared["pert_lattice_index"] = (("lattice",), idx)
                shared["pert_values"] = (("lattice", "member", "pert_var"), val[first])
                shared["pert_step"] = ((), np.int64(st["step"]))
        tk = self.time_of(k)
        obs_counters, obs_arrays = self.book.state()
        if self.book.labels.size:
            shared.update(obs_arrays)
        self.rec.sync()  # every record the checkpoint counts is on disk before the checkpoint exists
        path = restart.write(self.nl.output.dir / "restart" / f"{self.nl.name}_{str(tk)[:13]}.nc", nl=self.nl,
                             domain=self.exp.domain, step=k, time=tk, local=local, shared=shared,
                             counters={"cycle": self.cycle, "n_obs": self.n_obs, "n_used": self.n_used, **obs_counters},
                             positions=self.rec.positions(), final=final, comm=self.exp.comm)
        if self.root:
            log.info("checkpoint %s", path)
        return path

    def load(self, path):
        """Continue from a checkpoint (collective): states, counters and the output files' positions."""
        exp = self.exp
        sizes = [exp.dec.cells(r).size for r in range(exp.size)]
        a, b = sum(sizes[:exp.rank]), sum(sizes[:exp.rank + 1])
        ck = restart.Checkpoint(Path(path), nl=self.nl, domain=exp.domain, cells=(a, b), comm=exp.comm)
        arrays = ck.arrays
        for r in self.runs():
            # an open-loop spin-up continued with a filter: the analysis ensemble starts from the open loop
            name = r.name if f"state_{r.name}" in arrays or r is not self.analysis else "openloop"
            if f"state_{name}" not in arrays:
                raise ValueError(f"{path}: has no {r.name} state (a twin experiment's truth is needed to continue it)")
            stored = arrays[f"state_{name}"]
            r.state.data[...] = stored[:, :, ck.members(r.state.n_members) if r.ensemble else slice(None)]
            r.daily[...] = arrays[f"daily_{name}"].T
            if name != r.name and self.root:
                log.info("the analysis ensemble starts from the open-loop ensemble of %s", path)
        self.rain_ring[...] = arrays["rain_ring"].T
        if self.perturb is not None:
            if "pert_step" not in arrays:
                raise ValueError(f"{path}: has no forcing-perturbation state (written with perturbations off)")
            self.perturb.set_state({"step": int(arrays["pert_step"]), "variables": self.perturb.active,
                                    "lattice_index": arrays["pert_lattice_index"],
                                    "values": arrays["pert_values"][:, ck.members(exp.n_members)]})
        if ck.n_members != exp.n_members and self.root:
            log.info("ensemble resized from %d to %d members (member m continues member m mod %d)",
                     ck.n_members, exp.n_members, ck.n_members)
        self.cycle, self.n_obs, self.n_used = (int(ck.counters[k]) for k in ("cycle", "n_obs", "n_used"))
        self.book.set_state(ck.counters, arrays)
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
        drv.fill_record = gather_fill_record(drv.ens_weather, comm)  # collective: gridded fills known only now
        finish(drv)
        if drv.root:
            log.info("run finished: %.1f s wall, %.3g cell-member-steps/s; %d observations, %d used; outputs in %s",
                     drv.wall, drv.rate, drv.n_obs, drv.n_used, nl.output.dir)
            if drv.book.labels.size:
                log.info("observations by source: %s", drv.book.summary())
            log.info("time by part on rank 0: %s", ", ".join(f"{k} {v:.1f} s" for k, v in drv.timers.items()))
    drv.book.check_used()  # every rank holds the same counts: all fail together
    return drv


def downscale(nl: Namelist, methods=None):
    """``smda downscale``: rerun the comparison operators on a finished run's stored inputs."""
    from smda.run.products import downscale_from_files

    downscale_from_files(nl, methods or list(nl.comparison.methods))


