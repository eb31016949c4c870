"""Figures (PNG, matplotlib Agg): the twin experiment's maps, series and skill bars, and a validation study's
Taylor diagram, station skill maps, station time series, scatter and bars, and O-F series and histograms.

Every axis carries its quantity and unit; maps are in km on the EASE-Grid 2.0 (twins) or in degrees of
latitude and longitude (stations). Lines are broken across gaps in a series (no line drawn over missing data).
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from smda.model.grid import GRIDS  # noqa: E402

log = logging.getLogger(__name__)

ORDER = ("truth", "satellite", "openloop", "analysis", "dispatch", "empirical", "random_forest")
SM_UNIT = "m$^3$ m$^{-3}$"
MAX_STATION_PLOTS = 60  # station time series figures written at most (the first stations by network and name)
DPI = 110


def _save(fig, path, dpi=DPI):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def _safe(s):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(s))


def gapped(series: pd.Series, factor=2.0, min_gap_h=36.0) -> pd.Series:
    """The series with a NaN inserted in every gap longer than ``factor`` x its median spacing (and than
    ``min_gap_h`` hours), so that a line plot does not join values across missing data."""
    s = series.dropna().sort_index()
    if len(s) < 3:
        return s
    dt = s.index.to_series().diff()
    limit = max(factor * dt.median(), pd.Timedelta(hours=min_gap_h))
    starts = s.index[1:][(dt.iloc[1:] > limit).to_numpy()]
    if not len(starts):
        return s
    holes = pd.Series(np.nan, index=starts - pd.Timedelta(seconds=1))
    return pd.concat([s, holes]).sort_index()


# --- twin experiments ---------------------------------------------------------------------------------
def _km_axes(ax, title=None):
    ax.set_xlabel("x (km, EASE-Grid 2.0)")
    ax.set_ylabel("y (km)")
    if title:
        ax.set_title(title)


def skill_figures(fig_dir, grids: dict, times, table, domain, *, mean_error=None, spread=None, coarse_grid="M36") -> list:
    """Write maps.png, errors.png (analysis minus truth on one date and over the run, analysis spread),
    timeseries.png and skill.png; returns their paths.

    mean_error : optional (nrows, ncols) time mean of analysis minus truth (m3/m3);
    spread : optional callable i -> (nrows, ncols) analysis ensemble spread at time i (m3/m3).
    """
    names = [n for n in ORDER if n in grids] + [n for n in grids if n not in ORDER]
    paths = []
    # maps on the analysis time with the most comparison estimates
    valid = np.array([np.isfinite(grids.get("dispatch", grids["analysis"])[i]).sum() for i in range(len(times))])
    i = int(np.argmax(valid))
    truth = grids["truth"][i]
    vmin, vmax = np.nanpercentile(truth, 2), np.nanpercentile(truth, 98)
    ext = np.array([domain.x[0], domain.x[-1], domain.y[-1], domain.y[0]]) / 1000.0
    n_rows, n_cols = domain.coarse_shape(coarse_grid)
    pixel_km = GRIDS[coarse_grid].km

    def edges(ax):
        for k in range(1, n_cols):
            ax.axvline(ext[0] + k * pixel_km, color="k", lw=0.5)
        for k in range(1, n_rows):
            ax.axhline(ext[3] - k * pixel_km, color="k", lw=0.5)

    fig, axes = plt.subplots(1, len(names), figsize=(3.1 * len(names), 3.4), constrained_layout=True)
    for ax, n in zip(np.atleast_1d(axes), names, strict=True):
        im = ax.imshow(grids[n][i], vmin=vmin, vmax=vmax, cmap="YlGnBu", extent=ext)
        _km_axes(ax, n)
        edges(ax)
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"surface soil moisture ({SM_UNIT})")
    fig.suptitle(f"0-5 cm soil moisture on {str(times[i])[:16]} UTC ({coarse_grid} pixel edges)")
    paths.append(_save(fig, fig_dir / "maps.png"))
    # errors: analysis - truth on that date, over the run, and the analysis spread on that date
    panels = [(f"analysis - truth, {str(times[i])[:10]}", grids["analysis"][i] - truth, "RdBu_r", True)]
    if mean_error is not None:
        panels.append(("analysis - truth, time mean", mean_error, "RdBu_r", True))
    if spread is not None:
        panels.append((f"analysis spread, {str(times[i])[:10]}", spread(i), "viridis", False))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.6), constrained_layout=True)
    for ax, (title, field, cmap, centred) in zip(np.atleast_1d(axes), panels, strict=True):
        lim = np.nanpercentile(np.abs(field), 98) if np.isfinite(field).any() else 1.0
        kw = dict(vmin=-lim, vmax=lim) if centred else dict(vmin=0.0, vmax=lim)
        im = ax.imshow(field, cmap=cmap, extent=ext, **kw)
        _km_axes(ax, title)
        edges(ax)
        fig.colorbar(im, ax=ax, shrink=0.8, label=SM_UNIT)
    paths.append(_save(fig, fig_dir / "errors.png"))
    # time series at three cells
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True, constrained_layout=True)
    r_max, c_max = domain.nrows - 1, domain.ncols - 1
    cells = [(min(5, r_max), min(5, c_max)), (min(18, r_max), min(30, c_max)), (min(30, r_max), min(12, c_max))]
    for ax, (r, c) in zip(axes, cells, strict=True):
        for n in names:
            style = {"truth": dict(color="k", lw=2, marker="."),
                     "satellite": dict(color="0.5", ls="none", marker="s", ms=3)}.get(n, dict(marker="."))
            ax.plot(times, grids[n][:, r, c], label=n, **style)
        ax.set_ylabel(f"cell ({r},{c})\n{SM_UNIT}")
    axes[-1].set_xlabel("time (UTC)")
    axes[0].legend(ncol=4, fontsize=8)
    paths.append(_save(fig, fig_dir / "timeseries.png"))
    # skill bar chart
    cols = [("ubRMSE", f"ubRMSE ({SM_UNIT})"), ("R", "R (1)"), ("R_within_dyn", "dynamic within-pixel R (1)")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), constrained_layout=True)
    for ax, (col, label) in zip(axes, cols, strict=True):
        vals = table[col].reindex([n for n in table.index])
        ax.bar(vals.index, vals.to_numpy(), color="tab:blue")
        ax.set_ylabel(label)
        ax.tick_params(axis="x", rotation=45)
        if col == "ubRMSE":
            ax.axhline(0.04, color="r", lw=1, ls="--", label="SMAP target 0.04")
            ax.legend(fontsize=8)
    paths.append(_save(fig, fig_dir / "skill.png"))
    return paths


# --- validation against stations --------------------------------------------------------------------------
def validation_figures(fig_dir, table, pairs_all, series_all, stations, diagnostics=None) -> list:
    """Taylor diagram, station skill maps, time series per station, scatter and bars of a validation, and O-F
    figures per observation source from ``diagnostics`` (a ``<name>_obs_diagnostics.csv``); returns PNG paths."""
    fig_dir = Path(fig_dir)
    written = []
    if pairs_all:
        written.append(taylor_diagram(fig_dir / "taylor.png", pairs_all))
        written.append(_scatter(fig_dir / "scatter.png", table, pairs_all))
    stn = table[(table["level"] == "station") & (table["season"] == "all")]
    if len(stn):
        written.append(station_map(fig_dir / "station_skill_map.png", stn, stations))
    overall = table[(table["level"] == "overall") & (table["season"] == "all")].set_index("product")
    if len(overall):
        written.append(_bars(fig_dir / "bars_ubrmsd_r.png", overall))
    by_key = {s.key: s for s in stations}
    validated = sorted({key for key, _ in pairs_all})
    if len(validated) > MAX_STATION_PLOTS:
        log.info("time series figures of the first %d of %d validated stations", MAX_STATION_PLOTS, len(validated))
    for key in validated[:MAX_STATION_PLOTS]:
        written.append(station_series(fig_dir, by_key[key], series_all.get(key, {})))
    if diagnostics is not None and Path(diagnostics).exists():
        written += obs_minus_forecast(fig_dir, pd.read_csv(diagnostics))
    return written


def taylor_diagram(path, pairs_all) -> object:
    """Taylor (2001) diagram: each product's standard deviation normalized by the in situ one (radius) and
    its correlation R (angle arccos R); small dots per station, large markers the median over stations;
    grey arcs: centred RMS difference normalized by the in situ standard deviation."""
    rows = []
    for (_key, name), pr in pairs_all.items():
        sd_ref = pr["insitu"].std()
        if sd_ref > 0 and pr["product"].std() > 0:
            rows.append((name, pr["product"].std() / sd_ref, np.corrcoef(pr["product"], pr["insitu"])[0, 1]))
    df = pd.DataFrame(rows, columns=["product", "sd", "r"])
    fig = plt.figure(figsize=(5.6, 5.2))
    ax = fig.add_subplot(projection="polar")
    ax.set_thetamin(0)
    ax.set_thetamax(90)
    smax = max(1.6, float(df["sd"].quantile(0.95)) * 1.1) if len(df) else 1.6
    ax.set_rlim(0, smax)
    ticks = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 1.0])
    ax.set_thetagrids(np.degrees(np.arccos(ticks)), [f"{t:g}" for t in ticks])
    th = np.linspace(0, np.pi / 2, 100)
    for rms in (0.25, 0.5, 0.75, 1.0, 1.25):
        # points at centred RMS distance rms from the reference (1, 0)
        x, y = 1 + rms * np.cos(np.linspace(0, np.pi, 200)), rms * np.sin(np.linspace(0, np.pi, 200))
        keep = (x >= 0) & (np.hypot(x, y) <= smax)
        ax.plot(np.arctan2(y[keep], x[keep]), np.hypot(x[keep], y[keep]), color="0.75", lw=0.6)
    ax.plot(th, np.ones_like(th), color="k", lw=0.6, ls=":")
    ax.plot([0], [1], marker="*", ms=12, color="k", ls="none", label="in situ")
    for k, (name, g) in enumerate(df.groupby("product", sort=True)):
        theta = np.arccos(np.clip(g["r"].to_numpy(), -1, 1))
        ax.plot(theta, g["sd"], ".", color=f"C{k}", alpha=0.35, ms=4)
        ax.plot(np.arccos(np.clip(g["r"].median(), -1, 1)), g["sd"].median(), "o", color=f"C{k}", ms=8, label=name)
    ax.set_xlabel("normalized standard deviation (1)")
    ax.text(np.radians(45), smax * 1.12, "Pearson R (1)", ha="center", rotation=-45)
    ax.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.25, 1.05))
    return _save(fig, path)


def station_map(path, stn: pd.DataFrame, stations) -> object:
    """Maps of ubRMSD and R per station (whole period), one row per product, in degrees of lat/lon; the same
    colour scales and extent for every product."""
    loc = {(s.network, s.name, s.sensor): (s.lat, s.lon) for s in stations}
    names = sorted(stn["product"].unique())
    top = float(np.nanpercentile(stn["ubrmsd"].to_numpy(float), 95)) if stn["ubrmsd"].notna().any() else 0.1
    lats = [loc[k][0] for k in zip(stn["network"], stn["station"], stn["sensor"], strict=True) if k in loc]
    lons = [loc[k][1] for k in zip(stn["network"], stn["station"], stn["sensor"], strict=True) if k in loc]
    pad = max(0.05, 0.1 * max(np.ptp(lats) if lats else 0.0, np.ptp(lons) if lons else 0.0))
    fig, axes = plt.subplots(len(names), 2, figsize=(9, 3.2 * len(names)), squeeze=False, constrained_layout=True)
    for row, name in zip(axes, names, strict=True):
        g = stn[stn["product"] == name]
        ll = np.array([loc.get((n, s, se), (np.nan, np.nan)) for n, s, se in zip(g["network"], g["station"], g["sensor"],
                                                                                    strict=True)])
        for ax, (col, label, cmap, lim) in zip(row, (("ubrmsd", f"ubRMSD ({SM_UNIT})", "viridis", (0, max(top, 1e-6))),
                                                     ("r", "Pearson R (1)", "RdYlBu", (-1, 1))), strict=True):
            sc = ax.scatter(ll[:, 1], ll[:, 0], c=g[col].to_numpy(float), cmap=cmap, vmin=lim[0], vmax=lim[1], s=40,
                            edgecolors="k", linewidths=0.4)
            fig.colorbar(sc, ax=ax, label=label)
            ax.set_xlabel("longitude (degrees east)")
            ax.set_ylabel("latitude (degrees north)")
            ax.set_title(f"{name}: {label.split(' (')[0]}", fontsize=9)
            if lats:
                ax.set_xlim(min(lons) - pad, max(lons) + pad)
                ax.set_ylim(min(lats) - pad, max(lats) + pad)
    return _save(fig, path)


def station_series(fig_dir, st, prods: dict) -> object:
    """In situ and product series at one station, the analysis ensemble spread as a band; lines broken at gaps."""
    fig, ax = plt.subplots(figsize=(10, 3.5), constrained_layout=True)
    t0 = min(p.index[0] for p, _ in prods.values())
    t1 = max(p.index[-1] for p, _ in prods.values())
    ins = st.sm[(st.sm.index >= t0 - pd.Timedelta(days=1)) & (st.sm.index <= t1 + pd.Timedelta(days=1))]
    g = gapped(ins)
    ax.plot(g.index, g.to_numpy(), color="k", lw=0.8, zorder=5, label=f"in situ {st.depth_from:g}-{st.depth_to:g} m")
    for k, (name, (p, spread)) in enumerate(prods.items()):
        gp = gapped(p)
        ax.plot(gp.index, gp.to_numpy(), lw=1.0, marker="." if len(p) < 200 else None, ms=3, color=f"C{k}", label=name)
        if spread is not None and len(spread):
            sp = gapped(spread).reindex(gp.index)
            ax.fill_between(gp.index, gp - sp, gp + sp, color=f"C{k}", alpha=0.2, lw=0,
                            label=f"{name} ensemble spread (1 std)")
    ax.set_ylabel(f"soil moisture ({SM_UNIT})")
    ax.set_xlabel("time (UTC)")
    ax.set_title(f"{st.network} {st.name}{' ' + st.sensor if st.sensor else ''} ({st.lat:.3f} N, {st.lon:.3f} E)")
    ax.legend(fontsize=7, ncols=min(4, len(prods) + 1))
    sensor = f"_{_safe(st.sensor)}" if st.sensor else ""
    return _save(fig, fig_dir / f"timeseries_{_safe(st.network)}_{_safe(st.name)}{sensor}.png")


def _scatter(path, table, pairs_all):
    names = sorted({name for _, name in pairs_all})
    overall = table[(table["level"] == "overall") & (table["season"] == "all")].set_index("product")
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes[0], names, strict=True):
        top = 0.05
        for (key, pname), pr in pairs_all.items():
            if pname == name:
                ax.scatter(pr["insitu"], pr["product"], s=4, alpha=0.6, label=key)
                top = max(top, float(pr[["insitu", "product"]].max().max()) * 1.05)
        ax.plot([0, top], [0, top], color="grey", lw=0.8)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel(f"in situ ({SM_UNIT})")
        ax.set_ylabel(f"{name} ({SM_UNIT})")
        if name in overall.index:
            o = overall.loc[name]
            ax.set_title(f"{name}: ubRMSD {o['ubrmsd']:.3f}, R {o['r']:.2f}", fontsize=9)
        ax.legend(fontsize=6, markerscale=2)
    return _save(fig, path)


def _bars(path, overall):
    fig, axes = plt.subplots(1, 2, figsize=(max(5.0, 1.2 * len(overall) + 2), 3.5), constrained_layout=True)
    x = np.arange(len(overall))
    for i, (ax, col, label) in enumerate(zip(axes, ("ubrmsd", "r"), (f"ubRMSD ({SM_UNIT})", "Pearson R (1)"), strict=True)):
        ax.bar(x, overall[col].to_numpy(dtype=float), color="C0" if i == 0 else "C1")
        ax.set_xticks(x, overall.index, rotation=30, fontsize=8)
        ax.set_ylabel(label)
        ax.set_xlabel("product")
        if col == "ubrmsd":
            ax.axhline(0.04, color="r", lw=0.8, ls="--", label="SMAP target 0.04")
            ax.legend(fontsize=7)
    fig.suptitle("Median over stations")
    return _save(fig, path)


def obs_minus_forecast(fig_dir, diag: pd.DataFrame) -> list:
    """Per observation source and kind: O-F of the accepted observations in time (each observation and the
    cycle mean) and its histogram with the expected N(0, HPH' + R) spread."""
    fig_dir = Path(fig_dir)
    used = diag[(diag["qc"] == 0) & np.isfinite(diag["hx_forecast_mean"])].copy()
    if used.empty:
        return []
    used["time"] = pd.to_datetime(used["time"])
    used["omf"] = used["value"] - used["hx_forecast_mean"]
    out = []
    for (source, kind), g in used.groupby(["source", "kind"], sort=True):
        unit = "K" if kind == "tb" else SM_UNIT
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.4), constrained_layout=True, width_ratios=(2, 1))
        a1.plot(g["time"], g["omf"], ".", ms=2, color="0.6", label="each observation")
        cyc = g.groupby("time")["omf"].agg(["mean", "std"])
        gm = gapped(cyc["mean"], min_gap_h=96.0)
        a1.plot(gm.index, gm.to_numpy(), "-o", ms=3, color="C3", label="cycle mean")
        a1.axhline(0, color="k", lw=0.6)
        a1.tick_params(axis="x", labelrotation=30)
        a1.set_xlabel("time (UTC)")
        a1.set_ylabel(f"O-F ({unit})")
        a1.legend(fontsize=7)
        expected = float(np.sqrt(np.mean(g["hx_forecast_spread"] ** 2 + g["error_std"] ** 2)))
        a2.hist(g["omf"], bins=40, density=True, color="C0", alpha=0.7)
        x = np.linspace(g["omf"].min(), g["omf"].max(), 200)
        a2.plot(x, np.exp(-0.5 * (x / expected) ** 2) / (expected * np.sqrt(2 * np.pi)), color="k", lw=1,
                label=f"N(0, {expected:.3g}): HPH'+R")
        a2.set_xlabel(f"O-F ({unit})")
        a2.set_ylabel(f"probability density (1/{'K' if kind == 'tb' else 'm3 m-3'})")
        a2.legend(fontsize=7)
        fig.suptitle(f"source {source}, {kind}: mean O-F {g['omf'].mean():.3g}, std {g['omf'].std():.3g} {unit}, "
                     f"{len(g)} observations")
        out.append(_save(fig, fig_dir / f"omf_{_safe(source)}_{_safe(kind)}.png"))
    return out
