"""End of a run (rank 0): the comparison products, diagnostics, skill table and figures, from the streamed files.

During the run :class:`smda.run.recorder.Recorder` writes, record by record (``.part`` until the end):

* ``<name>_analysis.nc``: ensemble mean and spread of background and analysis (sm_surface,
  sm_rootzone, t_skin, t_deep, TB), the open loop and the truth at every analysis time;
* ``<name>_daily.nc``: daily means (UTC days; time at noon, ``time_bnds`` the day, ``cell_methods: "time:
  mean"``) of the fluxes (evapotranspiration, runoff, drainage, heat fluxes) and of the soil moisture
  (sm_surface, sm_rootzone) of the truth, the open loop and the analysis ensemble mean;
* ``<name>_obs_diagnostics.csv``: one row per observation and cycle (value, HX forecast mean and
  spread, HX analysis mean, error std, QC reason);
* ``products/<product>.nc``: ``sm_surface`` (time, y, x) of truth, openloop, analysis, satellite (the coarse SM of
  the first source with one, synthetic or a real product's retrievals on the 1 km cells of their footprints;
  ``satellite_<source>`` for the others);
* ``predictors.nc``: the 1 km LST and NDVI the comparison operators use (``smda downscale``): MODIS-like from the
  truth in a twin, real MODIS tiles or netCDF grids otherwise (:mod:`smda.run.predictors`).

At the end, :func:`finish` adds, one time at a time (memory independent of the run length):
``products/<method>.nc`` of the comparison methods, ``<name>_obs_summary.md`` (normalized innovation
variance, Desroziers estimates), rescaling statistics, and for twin experiments
``synthetic_stations.csv``, ``<name>_skill.csv`` / ``.md`` and ``figures/*.png``; then it gives the
``.part`` files their final names and chunks (:meth:`Recorder.finish`). Every netCDF file is CF-1.8.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from smda.assimilation import downscaling
from smda.assimilation.downscaling.regression import CoarseHistory
from smda.assimilation.filters.diagnostics import desroziers
from smda.assimilation.observations import bias
from smda.assimilation.observations.table import QC_REASONS, ObsTable
from smda.model.grid import M01, NEST
from smda.run.insitu import Station, write_csv
from smda.run.metrics import ORACLE, SkillAccumulator, pixel_mean_oracle, skill_frame
from smda.run.namelist import Namelist, dump
from smda.run.output import global_attrs
from smda.run.recorder import Recorder
from smda.run.setup import make_domain
from smda.run.sources import rescaling_file

log = logging.getLogger(__name__)


def run_attrs(nl: Namelist, fill_record=None, **extra) -> dict:
    """Global attributes of a run's files: provenance (the history line names the case, ``smda_namelist`` holds
    the resolved namelist) and any generator-filled forcing."""
    if fill_record:
        extra["forcing_fill"] = fill_text(fill_record)
    return {"history": f"smda run of case {nl.name!r}", "smda_namelist": dump(nl), "case": nl.name, **extra}


def fill_text(fill_record: dict) -> str:
    """The ``forcing_fill`` attribute: what was filled in the forcing, variable by variable."""
    return "; ".join(f"{k}: {v}" for k, v in fill_record.items())


def gather_fill_record(weather, comm) -> dict:
    """The forcing fills of the whole run (collective): each rank's record of the gaps it filled in the forcing it
    read (gridded forcing knows them only once read), merged on rank 0 ({} elsewhere); a variable not filled
    alike on every rank lists each filling rank's account."""
    mine = dict(getattr(weather, "fill_record", {}))
    parts = [mine] if comm is None or comm.size == 1 else comm.gather(mine, root=0)
    if parts is None:
        return {}
    merged = {}
    for name in dict.fromkeys(k for p in parts for k in p):
        texts = {r: p[name] for r, p in enumerate(parts) if name in p}
        distinct = set(texts.values())
        same = len(distinct) == 1 and len(texts) == len(parts)  # (e.g. station forcing: every rank reads it all)
        merged[name] = distinct.pop() if same else "; ".join(f"rank {r}: {t}" for r, t in texts.items())
    return merged


def finish(drv):
    """Complete the outputs of a finished run (collective: the comparison methods on rank 0, the final files
    by their owners) and print the skill table (twin experiments, rank 0)."""
    nl, rec = drv.nl, drv.rec
    out = nl.output.dir
    rec.sync()
    if rec.root:
        diag = rec.part(f"{nl.name}_obs_diagnostics.csv")
        if diag.exists():
            _write_obs_summary(nl, pd.read_csv(diag))
        sat, pred = rec.part("products/satellite.nc"), rec.part("predictors.nc")
        if sat.exists() and pred.exists():
            run_comparison(nl, drv.exp.domain, sat, pred, rec)
        elif nl.comparison.methods:
            log.warning("comparison methods %s not run: no %s (%s)", ", ".join(nl.comparison.methods),
                        "coarse soil-moisture satellite product" if not sat.exists() else "predictors.nc",
                        "a source of kind sm, or comparison.satellite_from_tb for a TB product with a retrieval"
                        if not sat.exists() else "no analysis time in the period")
    written = rec.finish({"forcing_fill": fill_text(drv.fill_record)} if drv.fill_record else None)
    if not rec.root:
        return
    if not any(p.parent.name == "products" for p in written):
        log.warning("no analysis times in the period: no products written")
        return
    names = [p.stem for p in written if p.parent.name == "products"]
    stale = sorted(p.name for p in (out / "products").glob("*.nc") if p.stem not in names)
    if stale:
        log.warning("products/ also holds files this run did not write (an earlier run or smda downscale): %s; "
                    "smda validate will include them", ", ".join(stale))
    if "truth" in names:
        _twin_skill(nl, drv.exp.domain, out, names)


def _twin_skill(nl, domain, out: Path, names):
    """Twin experiments: synthetic stations, the skill table against the 1 km truth (one time at a time),
    figures (maps of one time, series at a few cells: read from the files as needed)."""
    files = {name: netCDF4.Dataset(out / "products" / f"{name}.nc") for name in names}
    try:
        for ds in files.values():
            ds.set_auto_mask(False)
        grids = {name: ds["sm_surface"] for name, ds in files.items()}
        seconds = files["truth"]["time"][:].astype("timedelta64[s]")
        times = np.datetime64("2000-01-01T00:00:00", "s") + seconds
        _write_synthetic_stations(out / "synthetic_stations.csv", grids["truth"], times, domain)
        # within-pixel parts over the first synthetic source's pixels (36 km blocks for the non-nested M25);
        # the pixel-mean oracle: truth pixel means + open-loop within-pixel anomalies
        sources = nl.observations if isinstance(nl.observations, tuple) else (nl.observations,)
        grid = next((o.grid for o in sources if o.source == "synthetic"), "M36")
        coarse = NEST.get(grid, 36)
        accs = {n: SkillAccumulator(domain.shape, coarse) for n in names if n != "truth"}
        if "openloop" in accs:
            accs[ORACLE] = SkillAccumulator(domain.shape, coarse)
        err_sum, err_n = np.zeros(domain.shape), np.zeros(domain.shape)
        for i in range(times.size):
            truth = grids["truth"][i].astype(float)
            fields = {name: grids[name][i].astype(float) for name in accs if name != ORACLE}
            if ORACLE in accs:
                fields[ORACLE] = pixel_mean_oracle(truth, fields["openloop"], coarse)
            for name, acc in accs.items():
                acc.add(fields[name], truth)
            if "analysis" in fields:
                e = fields["analysis"] - truth
                err_sum += np.where(np.isfinite(e), e, 0.0)
                err_n += np.isfinite(e)
        table = skill_frame(accs)
        table.to_csv(out / f"{nl.name}_skill.csv")
        legend = (f"\nubRMSE_pixel / ubRMSE_within: the error of the {grid} pixel means / within the pixels; within_share: "
                  "the within-pixel share of the mean squared error (coarse observations cannot see it); R_within_dyn: "
                  f"within-pixel R with each cell's time mean removed; {ORACLE}: truth pixel means + open-loop within-pixel "
                  "anomalies (a perfect pixel-mean correction); gain_fraction: (openloop - product) / (openloop - oracle) "
                  "of ubRMSE.\n")
        (out / f"{nl.name}_skill.md").write_text(_markdown(table) + legend)
        print(f"\nSkill against the 1 km truth ({nl.name}, {times.size} analysis times, m3/m3):\n")
        print(_markdown(table) + legend)
        if nl.output.figures:
            from smda.run.figures import skill_figures

            spread_path = out / f"{nl.name}_analysis.nc"
            with netCDF4.Dataset(spread_path) as sds:
                has = "sm_surface_analysis_spread" in sds.variables and sds["time"].size == times.size
                spread = (lambda i: np.asarray(sds["sm_surface_analysis_spread"][i], float)) if has else None
                with np.errstate(invalid="ignore", divide="ignore"):
                    skill_figures(out / "figures", grids, times, table, domain, coarse_grid=grid if grid in NEST else "M36",
                                  mean_error=np.where(err_n > 0, err_sum / np.maximum(err_n, 1), np.nan), spread=spread)
    finally:
        for ds in files.values():
            ds.close()


def run_comparison(nl, domain, satellite: Path, predictors: Path, rec: Recorder):
    """The comparison methods at every time of the satellite product, with that day's 1 km LST (every daytime
    acquisition recorded: ``lst``, and ``lst_aqua`` from real MODIS Terra and Aqua) and NDVI, one time at a time,
    appended to ``products/<method>.nc`` by ``rec`` (rank 0). The coarse SM of an M36 pixel is the mean of the
    satellite product over its 1 km cells (the retrieval itself for a product on the M36 grid)."""
    methods = list(nl.comparison.methods)
    if not methods:
        return
    pixel_of_cell = downscaling.pixel_of_cell_for(domain, "M36")
    n_pix = int(pixel_of_cell.max()) + 1
    histories = {m: CoarseHistory(window_days=nl.comparison.window_days) for m in methods if m != "dispatch"}
    attrs = run_attrs(nl)
    with xr.open_dataset(satellite) as s, xr.open_dataset(predictors) as p:
        days = p["time"].values.astype("datetime64[D]")
        elevation = p["elevation"].values.astype(float)
        acquisitions = [v for v in ("lst", "lst_aqua") if v in p]
        for i, t in enumerate(s["time"].values.astype("datetime64[s]")):
            k = np.flatnonzero(days == np.datetime64(t, "D"))
            sm_coarse = _pixel_values(s["sm_surface"][i].values.astype(float), pixel_of_cell, n_pix)
            est = {m: np.full(domain.shape, np.nan) for m in methods}
            if k.size and np.isfinite(sm_coarse).any():
                args = dict(sm_coarse=sm_coarse, pixel_of_cell=pixel_of_cell,
                            lst=np.stack([p[v][k[0]].values.astype(float) for v in acquisitions]),
                            ndvi=p["ndvi"][k[0]].values.astype(float),
                            elevation_m=elevation)
                t_days = float((t - np.datetime64("2000-01-01", "s")) / np.timedelta64(86400, "s"))
                for m in methods:
                    settings = {"see_model": nl.comparison.sm_model} if m == "dispatch" else {"use_tb": False}
                    hist = histories.get(m)
                    est[m] = downscaling.downscale(m, history=hist, **args, **settings)
                    if hist is not None:
                        hist.add(t_days, **args)
            for m in methods:
                rec.append(f"products/{m}.nc", t, {"sm_surface": est[m].astype(np.float32)}, **attrs, product=m,
                           title=f"smda {nl.name}: 1 km surface soil moisture, {m} (comparison method)")


def _write_synthetic_stations(path, truth, times, domain, n_side=3):
    """Twin experiments: the truth at a few 1 km cells as in situ stations (plain CSV), for ``smda validate``."""
    lat, lon = domain.latlon()
    rows = np.linspace(5, domain.nrows - 6, n_side).astype(int)
    cols = np.linspace(5, domain.ncols - 6, n_side).astype(int)
    index = pd.DatetimeIndex(times, tz="UTC")
    stations = [Station(f"cell_{r}_{c}", "synthetic", float(lat[r, c]), float(lon[r, c]), 0.0, 0.05,
                        pd.Series(np.asarray(truth[:, r, c], float), index=index).dropna())
                for r in rows for c in cols if np.isfinite(truth[:, r, c]).any()]
    write_csv(stations, path)


def _pixel_values(field, pixel_of_cell, n_pix):
    """The mean of a 1 km field over the finite cells of each coarse pixel (NaN where none)."""
    ok = (pixel_of_cell >= 0) & np.isfinite(field)
    total = np.bincount(pixel_of_cell[ok], field[ok], minlength=n_pix)
    count = np.bincount(pixel_of_cell[ok], minlength=n_pix)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def obs_frame(obs_rows) -> pd.DataFrame:
    """One row per observation and cycle: value, HX forecast mean and spread, HX analysis mean, QC."""
    frames = []
    for table, hx_f, spread, hx_a in obs_rows:
        df = table.to_dataframe()[["time", "x", "y", "lat", "lon", "row", "col", "kind", "pol", "angle_deg", "value",
                                   "error_std", "footprint", "source", "qc"]]
        df["hx_forecast_mean"], df["hx_forecast_spread"], df["hx_analysis_mean"] = hx_f, spread, hx_a
        df["qc_reason"] = [QC_REASONS[int(q)] for q in df["qc"]]
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _write_obs_summary(nl, df: pd.DataFrame):
    """``<name>_obs_summary.md`` (per source when there are several: their units differ) and (for sources without
    rescaling) the rescaling statistics, from the diagnostics rows."""
    _write_rescaling(nl, df)
    lines = [f"# Observation-space summary: {nl.name}", ""]
    sources = list(dict.fromkeys(df["source"])) if "source" in df else []
    for label in sources if len(sources) > 1 else [None]:
        if label is not None:
            lines += [f"## {label}", ""]
        lines += _source_summary(df if label is None else df[df["source"] == label])
    (nl.output.dir / f"{nl.name}_obs_summary.md").write_text("\n".join(lines))


def _source_summary(df: pd.DataFrame) -> list[str]:
    """Counts, O-F, normalized innovation variance and Desroziers estimates of one source's diagnostics rows."""
    used = (df["qc"] == 0).to_numpy() & np.isfinite(df["hx_forecast_mean"].to_numpy())
    d = (df["value"] - df["hx_forecast_mean"]).to_numpy()[used]
    tot = df["hx_forecast_spread"].to_numpy()[used] ** 2 + df["error_std"].to_numpy()[used] ** 2
    y = df["value"].to_numpy()[used]
    est = desroziers(y, df["hx_forecast_mean"].to_numpy()[used, None] + np.zeros((1, 2)),
                     df["hx_analysis_mean"].to_numpy()[used, None] + np.zeros((1, 2)))
    counts = df["qc_reason"].value_counts().to_dict()
    return [f"- observations: {len(df)}; used: {int(used.sum())}; rejected by reason: {counts}",
            f"- mean O-F: {d.mean():.3f}; rms O-F: {np.sqrt(np.mean(d ** 2)):.3f}" if d.size else "- no used obs",
            f"- normalized innovation variance mean((O-F)^2 / (HPH' + R)): {np.mean(d ** 2 / tot):.3f} (1 is consistent)"
            if d.size else "",
            f"- Desroziers: R estimate {est['r_var']:.3f} (prescribed mean {np.mean(df['error_std'][used] ** 2):.3f}), "
            f"HBH' estimate {est['hbh_var']:.3f} (ensemble {np.mean(df['hx_forecast_spread'][used] ** 2):.3f})"
            if d.size else "", ""]


def _write_rescaling(nl, df):
    """Rescaling statistics (observations -> model climatology) fitted from a run's accepted observations and
    their forecast equivalents, for each source without rescaling: ``<name>_rescaling_<method>.nc`` (several
    sources: ``<name>_<source>_rescaling_<method>.nc``) for ``observations.rescaling_stats``."""
    for o in nl.observations:
        ok = (df["qc"] == 0).to_numpy() & np.isfinite(df["hx_forecast_mean"].to_numpy()) & (df["source"] == o.label)
        if o.rescaling == "none" and o.source != "none" and ok.any():
            _write_source_rescaling(nl, o, df[ok])


def _write_source_rescaling(nl, o, d):
    """The rescaling statistics of source ``o`` from its accepted diagnostics rows ``d``."""
    table = ObsTable(**{c: d[c].to_numpy() if c in d else 0 for c in ("time", "x", "y", "lat", "lon", "kind", "pol",
                                                                        "angle_deg", "value", "error_std", "flags",
                                                                        "footprint", "row", "col", "fov_km", "source",
                                                                        "qc")})
    groups, doy = table.rescaling_groups(), table.time
    kinds = set(d["kind"])
    units = {"tb": "K", "sm": "m3 m-3"}.get(kinds.pop()) if len(kinds) == 1 else None  # mixed: per group
    for name, cls in bias.MATCHERS.items():
        matcher = cls(window=o.rescaling_window)
        matcher.fit(d["hx_forecast_mean"].to_numpy(), d["value"].to_numpy(), groups, doy)
        path = nl.output.dir / rescaling_file(nl, o.label, name)
        tmp = path.with_name(path.name + ".tmp")
        attrs = global_attrs(f"smda {nl.name}: observation rescaling statistics ({name})",
                             f"fitted by the smda run of case {nl.name!r} from its accepted observations", case=nl.name)
        matcher.to_netcdf(tmp, attrs=attrs, units=units, **_group_documentation(matcher.groups))
        tmp.replace(path)


def _group_documentation(groups) -> dict:
    """The encoding of ``ObsTable.rescaling_groups`` keys, as attributes and decoded auxiliary coordinates."""
    g = np.asarray(groups, np.int64)
    cell, rest = np.divmod(g, 6 * 200)
    row, col = np.divmod(cell, M01.n_cols)
    comment = (f"group = ((row * {M01.n_cols} + col) * 6 + observable) * 200 + angle_bin: row, col of the footprint "
               "centre on the EASE-Grid 2.0 1 km grid (M01), observable as in group_observable, angle_bin the "
               "incidence angle in half degrees (rounded)")
    flag = {"flag_values": np.arange(6, dtype=np.int8),
            "flag_meanings": "soil_moisture soil_moisture_h soil_moisture_v brightness_temperature "
                             "brightness_temperature_h brightness_temperature_v"}
    return {"group_attrs": {"comment": comment}, "group_coords": {
        "group_row": (row.astype(np.int32), {"long_name": "row of the footprint centre on the EASE-Grid 2.0 1 km grid",
                                              "units": "1"}),
        "group_col": (col.astype(np.int32), {"long_name": "column of the footprint centre on the EASE-Grid 2.0 1 km "
                                                          "grid", "units": "1"}),
        "group_observable": ((rest // 200).astype(np.int8), {"long_name": "observed quantity and polarization", **flag}),
        "group_incidence_angle": ((rest % 200) / 2.0, {"long_name": "incidence angle (0.5 degree bins)",
                                                       "units": "degree"}),
    }}


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    rows = ["| product | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in df.iterrows():
        cells = [f"{r[c]:.0f}" if c == "n" else f"{r[c]:.4f}" for c in cols]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def downscale_from_files(nl: Namelist, methods):
    """``smda downscale``: the comparison operators from a finished run's satellite product and predictors."""
    out = nl.output.dir
    sat_path, pred_path = out / "products" / "satellite.nc", out / "predictors.nc"
    for p in (sat_path, pred_path):
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: run `smda run` on this namelist first")
    for m in methods:
        downscaling.METHODS[m]  # unknown names: an error listing the valid ones
    domain = make_domain(nl)
    nl2 = dataclasses.replace(nl, comparison=dataclasses.replace(nl.comparison, methods=tuple(methods)))
    rec = Recorder(out, domain, [np.flatnonzero(domain.land.ravel())])
    run_comparison(nl2, domain, sat_path, pred_path, rec)
    for path in rec.finish():
        with xr.open_dataset(path) as ds:
            g = ds["sm_surface"].values
        log.info("%s: %d of %d cell-times estimated", path.stem, int(np.isfinite(g).sum()), g.size)
