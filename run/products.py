"""End of a run (rank 0): the comparison products, diagnostics, skill table and figures, from the streamed files.

During the run :class:`smda.run.recorder.Recorder` writes, record by record (``.part`` until the end):

* ``<name>_analysis.nc``: ensemble mean and spread of background and analysis (sm_surface,
  sm_rootzone, t_skin, t_deep, TB), the open loop and the truth at every analysis time;
* ``<name>_daily.nc``: daily-mean fluxes (evapotranspiration, runoff, drainage, heat fluxes);
* ``<name>_obs_diagnostics.csv``: one row per observation and cycle (value, HX forecast mean and
  spread, HX analysis mean, error std, QC reason);
* ``products/<product>.nc``: ``sm_surface`` (time, y, x) of truth, openloop, analysis, satellite;
* ``predictors.nc``: the 1 km LST and NDVI the comparison operators use (``smda downscale``).

At the end, :func:`finish` adds, one time at a time (memory independent of the run length):
``products/<method>.nc`` of the comparison methods, ``<name>_obs_summary.md`` (normalized innovation
variance, Desroziers estimates), rescaling statistics, and for twin experiments
``synthetic_stations.csv``, ``<name>_skill.csv`` / ``.md`` and ``figures/*.png``; then it renames the
``.part`` files.
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
from smda.model.grid import NEST
from smda.run.insitu import Station, write_csv
from smda.run.metrics import SkillAccumulator, skill_frame
from smda.run.namelist import Namelist, dump
from smda.run.recorder import Recorder
from smda.run.setup import make_domain

log = logging.getLogger(__name__)


def run_attrs(nl: Namelist, fill_record=None, **extra) -> dict:
    """Global attributes of a run's files: the resolved namelist and any generator-filled forcing."""
    if fill_record:
        extra["forcing_fill"] = "; ".join(f"{k}: {v}" for k, v in fill_record.items())
    return {"smda_namelist": dump(nl), "case": nl.name, **extra}


def finish(drv):
    """Complete the outputs of a finished run (rank 0) and print the skill table (twin experiments)."""
    nl, rec = drv.nl, drv.rec
    out = nl.output.dir
    diag = rec.part(f"{nl.name}_obs_diagnostics.csv")
    if diag.exists():
        _write_obs_summary(nl, pd.read_csv(diag))
    sat, pred = rec.part("products/satellite.nc"), rec.part("predictors.nc")
    if sat.exists() and pred.exists():
        run_comparison(nl, drv.exp.domain, sat, pred, rec)
    written = rec.finish()
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
        # within-pixel anomalies over the observation grid's pixels (36 km blocks for the non-nested M25)
        accs = {n: SkillAccumulator(domain.shape, NEST.get(nl.observations.grid, 36)) for n in names if n != "truth"}
        for i in range(times.size):
            truth = grids["truth"][i].astype(float)
            for name, acc in accs.items():
                acc.add(grids[name][i].astype(float), truth)
        table = skill_frame(accs)
        table.to_csv(out / f"{nl.name}_skill.csv")
        (out / f"{nl.name}_skill.md").write_text(_markdown(table))
        print(f"\nSkill against the 1 km truth ({nl.name}, {times.size} analysis times, m3/m3):\n")
        print(_markdown(table))
        if nl.output.figures:
            from smda.run.figures import skill_figures

            skill_figures(out / "figures", grids, times, table, domain)
    finally:
        for ds in files.values():
            ds.close()


def run_comparison(nl, domain, satellite: Path, predictors: Path, rec: Recorder):
    """The comparison methods at every time of the satellite product, with that day's 1 km LST and NDVI,
    one time at a time, appended to ``products/<method>.nc`` by ``rec`` (rank 0)."""
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
        for i, t in enumerate(s["time"].values.astype("datetime64[s]")):
            k = np.flatnonzero(days == np.datetime64(t, "D"))
            sm_coarse = _pixel_values(s["sm_surface"][i].values.astype(float), pixel_of_cell, n_pix)
            est = {m: np.full(domain.shape, np.nan) for m in methods}
            if k.size and np.isfinite(sm_coarse).any():
                args = dict(sm_coarse=sm_coarse, pixel_of_cell=pixel_of_cell,
                            lst=p["lst"][k[:1]].values.astype(float), ndvi=p["ndvi"][k[0]].values.astype(float),
                            elevation_m=elevation)
                t_days = float((t - np.datetime64("2000-01-01", "s")) / np.timedelta64(86400, "s"))
                for m in methods:
                    settings = {"see_model": nl.comparison.sm_model} if m == "dispatch" else {"use_tb": False}
                    hist = histories.get(m)
                    est[m] = downscaling.downscale(m, history=hist, **args, **settings)
                    if hist is not None:
                        hist.add(t_days, **args)
            for m in methods:
                rec.append(f"products/{m}.nc", t, {"sm_surface": est[m].astype(np.float32)}, **attrs, product=m)


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
    """The (constant) value of each coarse pixel of a field given on the 1 km grid."""
    vals = np.full(n_pix, np.nan)
    ok = (pixel_of_cell >= 0) & np.isfinite(field)
    vals[pixel_of_cell[ok]] = field[ok]
    return vals


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
    """``<name>_obs_summary.md`` and (without rescaling) the rescaling statistics, from the diagnostics rows."""
    if nl.observations.rescaling == "none":
        _write_rescaling(nl, df)
    used = (df["qc"] == 0).to_numpy() & np.isfinite(df["hx_forecast_mean"].to_numpy())
    d = (df["value"] - df["hx_forecast_mean"]).to_numpy()[used]
    tot = df["hx_forecast_spread"].to_numpy()[used] ** 2 + df["error_std"].to_numpy()[used] ** 2
    y = df["value"].to_numpy()[used]
    est = desroziers(y, df["hx_forecast_mean"].to_numpy()[used, None] + np.zeros((1, 2)),
                     df["hx_analysis_mean"].to_numpy()[used, None] + np.zeros((1, 2)))
    counts = df["qc_reason"].value_counts().to_dict()
    lines = [f"# Observation-space summary: {nl.name}", "",
             f"- observations: {len(df)}; used: {int(used.sum())}; rejected by reason: {counts}",
             f"- mean O-F: {d.mean():.3f}; rms O-F: {np.sqrt(np.mean(d ** 2)):.3f}" if d.size else "- no used obs",
             f"- normalized innovation variance mean((O-F)^2 / (HPH' + R)): {np.mean(d ** 2 / tot):.3f} (1 is consistent)"
             if d.size else "",
             f"- Desroziers: R estimate {est['r_var']:.3f} (prescribed mean {np.mean(df['error_std'][used] ** 2):.3f}), "
             f"HBH' estimate {est['hbh_var']:.3f} (ensemble {np.mean(df['hx_forecast_spread'][used] ** 2):.3f})"
             if d.size else "", ""]
    (nl.output.dir / f"{nl.name}_obs_summary.md").write_text("\n".join(lines))


def _write_rescaling(nl, df):
    """Rescaling statistics (observations -> model climatology) fitted from a run's accepted observations and
    their forecast equivalents: ``<name>_rescaling_{meanstd,cdf}.nc`` for ``observations.rescaling_stats``."""
    ok = (df["qc"] == 0).to_numpy() & np.isfinite(df["hx_forecast_mean"].to_numpy())
    if not ok.any():
        return
    d = df[ok]
    table = ObsTable(**{c: d[c].to_numpy() if c in d else 0 for c in ("time", "x", "y", "lat", "lon", "kind", "pol",
                                                                        "angle_deg", "value", "error_std", "flags",
                                                                        "footprint", "row", "col", "fov_km", "source",
                                                                        "qc")})
    groups, doy = table.rescaling_groups(), table.time
    window = nl.observations.rescaling_window
    for name, cls in bias.MATCHERS.items():
        matcher = cls(window=window)
        matcher.fit(d["hx_forecast_mean"].to_numpy(), d["value"].to_numpy(), groups, doy)
        path = nl.output.dir / f"{nl.name}_rescaling_{name}.nc"
        tmp = path.with_name(path.name + ".tmp")
        matcher.to_netcdf(tmp)
        tmp.replace(path)


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
