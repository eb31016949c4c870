"""Validation of gridded soil moisture products against in situ stations.

Products are CF netCDF files with dims (time, y, x), 1-D ``x``/``y`` (EASE-Grid 2.0, EPSG:6933, m;
y decreasing north to south), 2-D ``lat``/``lon`` and ``sm_surface`` (m3/m3, NaN where no estimate),
with a global attribute ``product``. A coarse product (satellite) is given on the same 1 km grid,
every cell carrying its coarse pixel's value, so the station's 1 km cell also selects its coarse
pixel.

Collocation: a station goes to the 1 km cell that contains it (``smda.model.grid.latlon_to_xy``);
times are matched either to the nearest in situ value within ``window_h`` of each product time
(``time_match="nearest"``) or as daily UTC means of both (``"daily"``). A station-product pair
needs ``min_samples`` matched pairs (also each season row).

Metrics (:mod:`smda.run.metrics`, SCIENCE.md section 7): n, bias, RMSD, ubRMSD, Pearson R and Spearman
rho with confidence intervals, and R of anomalies from a 35-day moving mean, per station and
season (all, DJF, MAM, JJA, SON). Network and overall rows are medians of the station values
(ISMN/QA4SM practice: each station counts once), with ``n`` the summed pairs and ``n_stations``.
Optional triple collocation (in situ and two products, McColl et al. 2014) per station.

Stations with no good-quality value, outside every product's domain, with no product estimate at
their cell, with no overlap in time, or with too few pairs are logged, listed in the report and
skipped; they are not errors.

Outputs in ``out_dir``: ``validation_metrics.csv``, ``validation_report.md``,
``skipped_stations.csv``, ``triple_collocation.csv`` (when asked) and PNG figures in
``figures/`` (time series per station, scatter per product, bars of ubRMSD and R per product).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smda.model.grid import latlon_to_xy
from smda.run import metrics as mt
from smda.run.insitu import Station, load_stations

log = logging.getLogger(__name__)

SEASONS = {"DJF": (12, 1, 2), "MAM": (3, 4, 5), "JJA": (6, 7, 8), "SON": (9, 10, 11)}
ID_COLUMNS = ["level", "network", "station", "product", "season", "n", "n_stations"]
METRIC_COLUMNS = [c for c in mt.METRIC_NAMES if c != "n"]


@dataclass(frozen=True, kw_only=True)
class ValidationSettings:
    """Settings of the validation (units in the names).

    depth_m: sensor layer (m) matched to the product layer; good_flags: ISMN flags kept;
    time_match: "nearest" (within window_h of each product time) or "daily" (daily UTC means);
    min_samples: least matched pairs per station, product and season; alpha: 1 - confidence level;
    anomaly_window_days: moving-mean window for R_anom; triple: two product names for triple
    collocation with the in situ data, or None; figures: write PNG figures; variable: netCDF
    variable to validate.
    """

    depth_m: tuple = (0.0, 0.05)
    good_flags: tuple = ("G",)
    time_match: str = "nearest"
    window_h: float = 1.0
    min_samples: int = 20
    alpha: float = 0.05
    anomaly_window_days: float = 35.0
    triple: tuple | None = None
    figures: bool = True
    variable: str = "sm_surface"

    def __post_init__(self):
        errs = []
        if self.time_match not in ("nearest", "daily"):
            errs.append(f"time_match must be 'nearest' or 'daily', got {self.time_match!r}")
        if not self.window_h >= 0:
            errs.append(f"window_h must be >= 0 h, got {self.window_h}")
        if int(self.min_samples) != self.min_samples or self.min_samples < 3:
            errs.append(f"min_samples must be an integer >= 3, got {self.min_samples}")
        if not 0 < self.alpha < 1:
            errs.append(f"alpha must be in (0, 1), got {self.alpha}")
        if not self.anomaly_window_days > 0:
            errs.append(f"anomaly_window_days must be > 0, got {self.anomaly_window_days}")
        if len(tuple(self.depth_m)) != 2 or not 0 <= self.depth_m[0] <= self.depth_m[1]:
            errs.append(f"depth_m must be (from, to) with 0 <= from <= to (m), got {self.depth_m}")
        if self.triple is not None and len(tuple(self.triple)) != 2:
            errs.append(f"triple must name two products, got {self.triple!r}")
        if errs:
            raise ValueError("validation settings: " + "; ".join(errs))

    @classmethod
    def coerce(cls, settings) -> ValidationSettings:
        """From None, a ValidationSettings, a mapping, or an object with matching attributes
        (e.g. the namelist's ``validation`` section; keys this class does not know are ignored
        there, but are errors in a mapping)."""
        if settings is None:
            return cls()
        if isinstance(settings, cls):
            return settings
        names = {f.name for f in dataclasses.fields(cls)}
        if isinstance(settings, dict):
            unknown = sorted(set(settings) - names)
            if unknown:
                raise ValueError(f"unknown validation setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
            kw = dict(settings)
        else:
            kw = {k: getattr(settings, k) for k in names if hasattr(settings, k)}
        for k in ("depth_m", "good_flags", "triple"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw)


# --- products ----------------------------------------------------------------------------------
@dataclass
class Product:
    """An open product file: name, path, data array (time, y, x), UTC times, x, y (m)."""

    name: str
    path: Path
    data: xr.DataArray
    time: pd.DatetimeIndex
    x: np.ndarray
    y: np.ndarray

    def cell(self, lat, lon):
        """(iy, ix) of the 1 km cell containing (lat, lon), or None outside the grid."""
        px, py = latlon_to_xy(lat, lon)
        ix = _index(self.x, float(px))
        iy = _index(self.y, float(py))
        return None if ix is None or iy is None else (iy, ix)

    def series(self, iy, ix) -> pd.Series:
        v = np.asarray(self.data[:, iy, ix].values, float)
        return pd.Series(v, index=self.time, name=self.name).dropna()


def _index(coord, v):
    if coord.size == 1:
        return 0 if abs(v - coord[0]) <= 500.0 else None
    step = float(np.median(np.diff(coord)))
    i = int(np.rint((v - coord[0]) / step))
    if 0 <= i < coord.size and abs(v - coord[i]) <= 0.5 * abs(step) * (1 + 1e-9):
        return i
    return None


def open_product(path, name=None, variable="sm_surface") -> Product:
    """Open one product file and check its structure (raises ValueError naming the file)."""
    path = Path(path)
    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot open product file {path}: {exc}") from None
    if variable not in ds:
        raise ValueError(f"{path}: no variable {variable!r} (has {', '.join(map(str, ds.data_vars))})")
    da = ds[variable]
    if tuple(da.dims) != ("time", "y", "x"):
        raise ValueError(f"{path}: {variable} must have dims (time, y, x), has {da.dims}")
    for c in ("x", "y", "time"):
        if c not in ds.coords or ds[c].ndim != 1:
            raise ValueError(f"{path}: needs a 1-D coordinate {c!r}")
    units = da.attrs.get("units")
    if units not in (None, "m3/m3", "m3 m-3", "m^3/m^3", "m3.m-3", "1"):
        raise ValueError(f"{path}: {variable} units must be m3/m3, got {units!r}")
    time = pd.DatetimeIndex(pd.to_datetime(ds["time"].values))
    time = time.tz_localize("UTC") if time.tz is None else time.tz_convert("UTC")
    name = name or str(ds.attrs.get("product", path.stem))
    return Product(name, path, da, time, np.asarray(ds["x"].values, float), np.asarray(ds["y"].values, float))


# --- collocation -------------------------------------------------------------------------------
def match_times(product: pd.Series, insitu: pd.Series, *, time_match="nearest", window_h=1.0) -> pd.DataFrame:
    """Pairs (columns ``product``, ``insitu``) on a UTC DatetimeIndex.

    "nearest": for each product time, the in situ value nearest in time within ``window_h`` hours;
    "daily": daily means (UTC days) of both, on the days both have data.
    """
    p = product.dropna().sort_index()
    s = insitu.dropna().sort_index()
    s = s[~s.index.duplicated()]
    if p.empty or s.empty:
        return pd.DataFrame({"product": [], "insitu": []}, index=pd.DatetimeIndex([], tz="UTC"))
    if time_match == "daily":
        pd_ = p.resample("1D").mean()
        sd = s.resample("1D").mean()
        df = pd.concat({"product": pd_, "insitu": sd}, axis=1, join="inner").dropna()
        return df
    left = pd.DataFrame({"time": p.index, "product": p.to_numpy()})
    right = pd.DataFrame({"time": s.index, "insitu": s.to_numpy()})
    left["time"] = left["time"].astype(right["time"].dtype)
    m = pd.merge_asof(left, right, on="time", direction="nearest", tolerance=pd.Timedelta(hours=window_h))
    return m.dropna().set_index("time")


def _season_rows(pairs: pd.DataFrame, settings: ValidationSettings):
    """Metric dicts for the whole period and each season with enough pairs."""
    w = settings.anomaly_window_days
    pa = mt.moving_average_anomaly(pairs["product"], w)
    sa = mt.moving_average_anomaly(pairs["insitu"], w)
    months = pairs.index.month
    subsets = [("all", np.ones(len(pairs), bool))]
    subsets += [(name, np.isin(months, ms)) for name, ms in SEASONS.items()]
    out = []
    for season, sel in subsets:
        if sel.sum() < settings.min_samples:
            continue
        res = mt.all_metrics(pairs["product"].to_numpy()[sel], pairs["insitu"].to_numpy()[sel], settings.alpha,
                             x_anom=pa.to_numpy()[sel], y_anom=sa.to_numpy()[sel])
        out.append((season, res))
    return out


# --- the whole validation ------------------------------------------------------------------------
def validate(product_paths: dict, stations, *, out_dir, settings=None) -> pd.DataFrame:
    """Validate products against stations; write tables, report and figures into ``out_dir``.

    Parameters
    ----------
    product_paths : dict product name -> netCDF path (see module docstring).
    stations : list of :class:`smda.run.insitu.Station`, or a path given to :func:`smda.run.insitu.load_stations`.
    out_dir : output folder (created).
    settings : ValidationSettings, a mapping of its fields, or the namelist's validation section.

    Returns
    -------
    DataFrame with columns ``level`` (station, network, overall), network, station, product,
    season (all, DJF, MAM, JJA, SON), n, n_stations and the metrics of
    :data:`smda.run.metrics.METRIC_NAMES` (m3/m3 for bias/RMSD/ubRMSD). ``df.attrs["skipped"]`` holds
    the skipped stations (network, station, product, reason).
    """
    settings = ValidationSettings.coerce(settings)
    if not product_paths:
        raise ValueError("validate needs at least one product file")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not isinstance(stations, list | tuple):
        stations = load_stations(stations, depth_m=settings.depth_m, good_flags=settings.good_flags)
    products = {name: open_product(p, name, settings.variable) for name, p in product_paths.items()}
    if settings.triple is not None:
        missing = [t for t in settings.triple if t not in products]
        if missing:
            raise ValueError(f"triple collocation product(s) {missing} not among {list(products)}")
    try:
        rows, skipped, pairs_all, series_all, tc_rows = _collocate_all(products, stations, settings)
    finally:
        for p in products.values():
            p.data.close()
    table = _aggregate(rows)
    skipped_df = pd.DataFrame(skipped, columns=["network", "station", "product", "reason"])
    table.attrs["skipped"] = skipped_df
    table.to_csv(out_dir / "validation_metrics.csv", index=False, float_format="%.6g")
    skipped_df.to_csv(out_dir / "skipped_stations.csv", index=False)
    tc = pd.DataFrame(tc_rows)
    if settings.triple is not None:
        tc.to_csv(out_dir / "triple_collocation.csv", index=False, float_format="%.6g")
    figures = []
    if settings.figures:
        figures = write_figures(out_dir / "figures", table, pairs_all, series_all, stations)
    _write_report(out_dir / "validation_report.md", table, skipped_df, tc, settings, products, figures, out_dir)
    log.info("validation: %d station-product pairs, %d skipped; tables in %s",
             len(rows), len(skipped_df), out_dir)
    return table


def _collocate_all(products, stations, settings):
    rows, skipped, tc_rows = [], [], []
    pairs_all: dict = {}     # (station key, product) -> pairs DataFrame
    series_all: dict = {}    # station key -> {product: Series}
    for st in stations:
        def skip(product, reason, st=st):
            log.warning("station %s, product %s: skipped, %s", st.key, product, reason)
            skipped.append((st.network, st.name, product, reason))

        if st.sm.empty:
            skip("*", "no good-quality in situ values")
            continue
        cells = {name: p.cell(st.lat, st.lon) for name, p in products.items()}
        if all(c is None for c in cells.values()):
            skip("*", f"outside the domain ({st.lat:.4f} N, {st.lon:.4f} E)")
            continue
        per_product = {}
        for name, p in products.items():
            if cells[name] is None:
                skip(name, "outside this product's domain")
                continue
            ps = p.series(*cells[name])
            if ps.empty:
                skip(name, "no product estimate at the station's cell")
                continue
            series_all.setdefault(st.key, {})[name] = ps
            if ps.index[-1] < st.sm.index[0] or ps.index[0] > st.sm.index[-1]:
                skip(name, f"no overlap in time (product {ps.index[0]:%Y-%m-%d}..{ps.index[-1]:%Y-%m-%d}, "
                           f"in situ {st.sm.index[0]:%Y-%m-%d}..{st.sm.index[-1]:%Y-%m-%d})")
                continue
            pairs = match_times(ps, st.sm, time_match=settings.time_match, window_h=settings.window_h)
            if len(pairs) < settings.min_samples:
                skip(name, f"too few collocated samples ({len(pairs)} < {settings.min_samples})")
                continue
            pairs_all[(st.key, name)] = pairs
            per_product[name] = pairs
            for season, res in _season_rows(pairs, settings):
                rows.append({"level": "station", "network": st.network, "station": st.name, "product": name,
                             "season": season, "n_stations": 1, **res})
        if settings.triple is not None and all(t in per_product for t in settings.triple):
            a, b = settings.triple
            j = pd.concat({"insitu": per_product[a]["insitu"], a: per_product[a]["product"],
                           b: per_product[b]["product"]}, axis=1, join="inner").dropna()
            res = mt.triple_collocation(j["insitu"], j[a], j[b])
            tc_rows.append({"network": st.network, "station": st.name, "n": res["n"],
                            "err_std_insitu": res["err_std"][0], f"err_std_{a}": res["err_std"][1],
                            f"err_std_{b}": res["err_std"][2], "r_truth_insitu": res["r_truth"][0],
                            f"r_truth_{a}": res["r_truth"][1], f"r_truth_{b}": res["r_truth"][2]})
    return rows, skipped, pairs_all, series_all, tc_rows


def _aggregate(rows) -> pd.DataFrame:
    """Station rows plus network and overall rows (medians of station metrics)."""
    cols = ID_COLUMNS + METRIC_COLUMNS
    st = pd.DataFrame(rows)
    if st.empty:
        return pd.DataFrame(columns=cols)
    st = st[cols]
    agg = {c: "median" for c in METRIC_COLUMNS}
    agg.update(n="sum", n_stations="sum")
    net = st.groupby(["network", "product", "season"], sort=False).agg(agg).reset_index()
    net["level"], net["station"] = "network", ""
    allr = st.groupby(["product", "season"], sort=False).agg(agg).reset_index()
    allr["level"], allr["network"], allr["station"] = "overall", "", ""
    # confidence intervals are per station only
    ci = [c for c in METRIC_COLUMNS if c.endswith(("_lo", "_hi")) or c == "r_p"]
    net[ci] = np.nan
    allr[ci] = np.nan
    order = {"all": 0, "DJF": 1, "MAM": 2, "JJA": 3, "SON": 4}
    out = pd.concat([st, net[cols], allr[cols]], ignore_index=True)
    out["_lv"] = out["level"].map({"station": 0, "network": 1, "overall": 2})
    out["_se"] = out["season"].map(order)
    out = out.sort_values(["_lv", "network", "station", "product", "_se"], kind="stable")
    return out.drop(columns=["_lv", "_se"]).reset_index(drop=True)


# --- figures (matplotlib object API, Agg canvas: no display, no global pyplot state) ----------------
def _figure(w, h):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _safe(s):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(s))


def write_figures(fig_dir, table, pairs_all, series_all, stations) -> list:
    """Time series per station, scatter per product, bars of ubRMSD and R; returns PNG paths."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    written = []
    by_key = {s.key: s for s in stations}
    validated = {key for key, _ in pairs_all}
    for key, prods in series_all.items():
        if key not in validated:
            continue
        st = by_key[key]
        fig = _figure(10, 3.5)
        ax = fig.add_subplot()
        t0 = min(p.index[0] for p in prods.values())
        t1 = max(p.index[-1] for p in prods.values())
        ins = st.sm[(st.sm.index >= t0 - pd.Timedelta(days=1)) & (st.sm.index <= t1 + pd.Timedelta(days=1))]
        ax.plot(ins.index, ins.to_numpy(), color="k", lw=0.8, label=f"in situ {st.depth_from:g}-{st.depth_to:g} m")
        for name, p in prods.items():
            ax.plot(p.index, p.to_numpy(), lw=1.0, marker="." if len(p) < 200 else None, ms=3, label=name)
        ax.set_ylabel("soil moisture (m3/m3)")
        ax.set_title(f"{st.network} {st.name} ({st.lat:.3f} N, {st.lon:.3f} E)")
        ax.legend(fontsize=7, ncols=min(4, len(prods) + 1))
        fig.autofmt_xdate()
        f = fig_dir / f"timeseries_{_safe(st.network)}_{_safe(st.name)}.png"
        fig.savefig(f, bbox_inches="tight")
        written.append(f)
    names = sorted({name for _, name in pairs_all})
    overall = table[(table["level"] == "overall") & (table["season"] == "all")].set_index("product")
    if names:
        fig = _figure(3.6 * len(names), 3.6)
        for i, name in enumerate(names):
            ax = fig.add_subplot(1, len(names), i + 1)
            for (key, pname), pr in pairs_all.items():
                if pname == name:
                    ax.scatter(pr["insitu"], pr["product"], s=4, alpha=0.6, label=key)
            lim = [0, max(0.05, max(float(pr[["insitu", "product"]].max().max())
                                    for (_, pn), pr in pairs_all.items() if pn == name) * 1.05)]
            ax.plot(lim, lim, color="grey", lw=0.8)
            ax.set_xlim(lim)
            ax.set_ylim(lim)
            ax.set_xlabel("in situ (m3/m3)")
            ax.set_ylabel(f"{name} (m3/m3)")
            if name in overall.index:
                o = overall.loc[name]
                ax.set_title(f"{name}: ubRMSD {o['ubrmsd']:.3f}, R {o['r']:.2f}", fontsize=9)
            ax.legend(fontsize=6, markerscale=2)
        f = fig_dir / "scatter.png"
        fig.savefig(f, bbox_inches="tight")
        written.append(f)
    if len(overall):
        fig = _figure(max(5.0, 1.2 * len(overall) + 2), 3.5)
        x = np.arange(len(overall))
        for i, (col, label) in enumerate((("ubrmsd", "ubRMSD (m3/m3)"), ("r", "Pearson R"))):
            ax = fig.add_subplot(1, 2, i + 1)
            ax.bar(x, overall[col].to_numpy(dtype=float), color="C0" if i == 0 else "C1")
            ax.set_xticks(x, overall.index, rotation=30, fontsize=8)
            ax.set_ylabel(label)
            if col == "ubrmsd":
                ax.axhline(0.04, color="r", lw=0.8, ls="--", label="SMAP target 0.04")
                ax.legend(fontsize=7)
        fig.suptitle("Median over stations")
        f = fig_dir / "bars_ubrmsd_r.png"
        fig.savefig(f, bbox_inches="tight")
        written.append(f)
    return written


# --- report ------------------------------------------------------------------------------------
def _md_table(df: pd.DataFrame, floatfmt="{:.4f}") -> str:
    def fmt(v):
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else floatfmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _write_report(path, table, skipped, tc, settings, products, figures, out_dir):
    show = ["network", "station", "product", "season", "n", "bias", "rmsd", "ubrmsd", "ubrmsd_lo", "ubrmsd_hi",
            "r", "r_lo", "r_hi", "rho", "r_anom"]
    parts = ["# Validation against in situ stations", "",
             "Products: " + ", ".join(f"`{n}` ({p.path.name})" for n, p in products.items()), "",
             f"Sensor layer {settings.depth_m[0]:g}-{settings.depth_m[1]:g} m, flags {','.join(settings.good_flags)}; "
             f"time matching `{settings.time_match}`"
             + (f" within {settings.window_h:g} h" if settings.time_match == "nearest" else "")
             + f"; at least {settings.min_samples} pairs; {100 * (1 - settings.alpha):g} % confidence intervals; "
             f"anomalies from a {settings.anomaly_window_days:g}-day moving mean. Units m3/m3. "
             "Network and overall rows are medians over stations.", ""]
    for level, title in (("overall", "Overall"), ("network", "Per network"), ("station", "Per station")):
        sub = table[table["level"] == level]
        parts += [f"## {title}", "", _md_table(sub[show]) if len(sub) else "(no station validated)", ""]
    parts += ["## Skipped stations", ""]
    parts += [_md_table(skipped) if len(skipped) else "None.", ""]
    if len(tc):
        parts += ["## Triple collocation (error standard deviations, m3/m3)", "", _md_table(tc), ""]
    if figures:
        parts += ["## Figures", ""] + [f"![{f.stem}]({f.relative_to(out_dir).as_posix()})" for f in figures] + [""]
    Path(path).write_text("\n".join(parts))


# --- entry point for the CLI -------------------------------------------------------------------
def find_products(outputs_dir, variable="sm_surface") -> dict:
    """Product name -> path of every netCDF file under ``outputs_dir`` with ``variable`` and a
    ``product`` attribute (other files, e.g. restarts and diagnostics, are ignored)."""
    found = {}
    for f in sorted(Path(outputs_dir).rglob("*.nc")):
        try:
            with xr.open_dataset(f) as ds:
                if variable not in ds or "product" not in ds.attrs:
                    continue
                name = str(ds.attrs["product"])
        except (OSError, ValueError) as exc:
            log.debug("not a product file: %s (%s)", f, exc)
            continue
        if name in found:
            name = f"{name}_{f.stem}"
        found[name] = f
    return found


def main(namelist_outputs_dir, insitu_path=None, out_dir=None, settings=None, *, insitu=None) -> pd.DataFrame:
    """Validate every product of a run against in situ data: the whole ``smda validate`` job.

    namelist_outputs_dir : a run's output folder, or a loaded namelist (its ``output.dir`` is
        used, and its ``validation`` section gives settings and the default in situ path).
    insitu_path (or insitu=) : ISMN folder/zip or CSV station file(s).
    out_dir : default ``<outputs>/validation``.
    settings : see :class:`ValidationSettings` (default: the namelist's validation section).
    """
    insitu_path = insitu_path if insitu_path is not None else insitu
    nl = namelist_outputs_dir
    if hasattr(nl, "output") and hasattr(nl, "validation"):
        outputs = Path(nl.output.dir)
        settings = settings if settings is not None else nl.validation
        if insitu_path is None:
            insitu_path = getattr(nl.validation, "insitu", None)
    else:
        outputs = Path(nl)
    if insitu_path is None:
        raise ValueError("no in situ data: give --insitu PATH or validation.insitu in the namelist")
    if not outputs.is_dir():
        raise ValueError(f"output folder {outputs} does not exist (run the case first)")
    settings = ValidationSettings.coerce(settings)
    products = find_products(outputs, settings.variable)
    if not products:
        raise ValueError(f"no product files (netCDF with {settings.variable!r} and a 'product' attribute) in {outputs}")
    stations = load_stations(insitu_path, depth_m=settings.depth_m, good_flags=settings.good_flags)
    out_dir = Path(out_dir) if out_dir is not None else outputs / "validation"
    return validate(products, stations, out_dir=out_dir, settings=settings)


__all__ = ["ValidationSettings", "validate", "main", "open_product", "match_times", "find_products", "Station"]
