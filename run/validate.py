"""Validation of gridded soil moisture products against in situ stations (QA4SM / pytesmo practice).

Products are CF netCDF files with dims (time, y, x), 1-D ``x``/``y`` (EASE-Grid 2.0, EPSG:6933, m;
y decreasing north to south), 2-D ``lat``/``lon`` and ``sm_surface`` (m3/m3, NaN where no estimate),
with a global attribute ``product``. A coarse product (satellite) is given on the same 1 km grid,
every cell carrying its coarse pixel's value, so the station's 1 km cell also selects its coarse
pixel.

Stations (:mod:`smda.run.insitu`): sensors in the product layer's depth range (``depth_m`` for
``sm_surface``, ``rootzone_depth_m`` for ``sm_rootzone``), ISMN flags in ``good_flags``, FRM classes in
``frm_classes``; the sensor is chosen on the validation period (the products' time span unless
``period`` is given), or every sensor or their mean (``sensors``).

Collocation: a station goes to the 1 km cell that contains it (``smda.model.grid.latlon_to_xy``);
with ``nearest_valid_km`` > 0, a station whose cell has no estimate of a product (e.g. a coarse
pixel masked as water) takes the nearest cell within that distance that has one. Times are matched
either to the nearest in situ value within ``window_h`` of each product time (``time_match="nearest"``)
or as daily UTC means of both (``"daily"``). A station-product pair needs ``min_samples`` matched
pairs (also each season or stratum row).

Metrics (:mod:`smda.run.metrics`, SCIENCE.md section 7): n, bias, RMSD, ubRMSD, Pearson R and Spearman
rho with confidence intervals; R_anom of anomalies computed on each full series before matching
(QA4SM: 35-day moving average or day-of-year climatology, ``anomaly``) and R_anom_paired of
anomalies from the matched pairs only (the earlier smda definition), per station and season
(all, DJF, MAM, JJA, SON). Network, land cover (stations' CCI class) and overall rows are medians of
the station values (ISMN/QA4SM practice: each station counts once), with ``n`` the summed pairs and
``n_stations``. Optional triple collocation (in situ and two products) per station: SNR (dB), error
standard deviation scaled into the in situ units, scaling factors beta and R against the truth, with
percentile bootstrap confidence intervals (pytesmo ``tcol_metrics_with_bootstrapped_ci``).

Stations with no good-quality value, outside every product's domain, with no product estimate at
their cell, with no overlap in time, or with too few pairs are logged, listed in the report and
skipped. A validation with no station-product pair at all is an error (:class:`NothingValidated`).

Outputs in ``out_dir``: ``validation_metrics.csv``, ``validation_report.md``,
``skipped_stations.csv``, ``triple_collocation.csv`` (when asked) and PNG figures in ``figures/``
(:mod:`smda.run.figures`: Taylor diagram, station skill maps, time series per station with the
ensemble spread where the run wrote it, scatter, bars; O-F series and histograms per observation
source from the run's ``<name>_obs_diagnostics.csv``).
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smda.model.grid import latlon_to_xy
from smda.run import metrics as mt
from smda.run.insitu import SENSOR_MODES, Station, load_stations

log = logging.getLogger(__name__)

SEASONS = {"DJF": (12, 1, 2), "MAM": (3, 4, 5), "JJA": (6, 7, 8), "SON": (9, 10, 11)}
ID_COLUMNS = ["level", "network", "station", "sensor", "landcover", "product", "season", "n", "n_stations"]
METRIC_COLUMNS = [c for c in mt.METRIC_NAMES if c != "n"]
LAYERS = ("sm_surface", "sm_rootzone")


class NothingValidated(ValueError):
    """No station-product pair could be validated (the message says why, station by station)."""


@dataclass(frozen=True, kw_only=True)
class ValidationSettings:
    """Settings of the validation (units in the names; see the module docstring and namelists/README.md).

    depth_m / rootzone_depth_m: sensor layer (m) matched to sm_surface / sm_rootzone; good_flags: ISMN
    flags kept; frm_classes: FRM classes kept (None: all); sensors: "best", "each" or "mean";
    period: (start, end) of the validation (None: the products' span); time_match: "nearest" (within
    window_h of each product time) or "daily" (daily UTC means); nearest_valid_km: search radius for a
    cell with estimates (0: the station's cell only); min_samples: least matched pairs per station,
    product and season; alpha: 1 - confidence level; anomaly: "moving_average" or "climatology";
    anomaly_window_days: their window; triple: two product names for triple collocation with the in
    situ data, or None; tc_bootstrap: bootstrap resamples (0: no intervals), tc_min_bootstrap: least
    triplets for them; figures: write PNG figures; common_pairs: every product of a station on the times
    all of them have (a ranking on the same pairs); variable: netCDF variable to validate;
    cache_dir: ISMN metadata cache (None: :func:`smda.run.insitu.default_cache_dir`).
    """

    depth_m: tuple = (0.0, 0.05)
    rootzone_depth_m: tuple = (0.0, 1.0)
    good_flags: tuple = ("G",)
    frm_classes: tuple | None = None
    sensors: str = "best"
    period: tuple | None = None
    time_match: str = "nearest"
    window_h: float = 1.0
    nearest_valid_km: float = 0.0
    min_samples: int = 20
    alpha: float = 0.05
    anomaly: str = "moving_average"
    anomaly_window_days: float = 35.0
    triple: tuple | None = None
    tc_bootstrap: int = 1000
    tc_min_bootstrap: int = 100
    figures: bool = True
    common_pairs: bool = False
    variable: str = "sm_surface"
    cache_dir: Path | None = None

    def __post_init__(self):
        errs = []
        if self.time_match not in ("nearest", "daily"):
            errs.append(f"time_match must be 'nearest' or 'daily', got {self.time_match!r}")
        if self.sensors not in SENSOR_MODES:
            errs.append(f"sensors must be one of {', '.join(SENSOR_MODES)}, got {self.sensors!r}")
        if self.anomaly not in mt.ANOMALIES:
            errs.append(f"anomaly must be one of {', '.join(mt.ANOMALIES)}, got {self.anomaly!r}")
        if self.variable not in LAYERS:
            errs.append(f"variable must be one of {', '.join(LAYERS)}, got {self.variable!r}")
        if not self.window_h >= 0:
            errs.append(f"window_h must be >= 0 h, got {self.window_h}")
        if not self.nearest_valid_km >= 0:
            errs.append(f"nearest_valid_km must be >= 0 km, got {self.nearest_valid_km}")
        if int(self.min_samples) != self.min_samples or self.min_samples < 3:
            errs.append(f"min_samples must be an integer >= 3, got {self.min_samples}")
        if int(self.tc_bootstrap) != self.tc_bootstrap or self.tc_bootstrap < 0:
            errs.append(f"tc_bootstrap must be an integer >= 0, got {self.tc_bootstrap}")
        if not 0 < self.alpha < 1:
            errs.append(f"alpha must be in (0, 1), got {self.alpha}")
        if not self.anomaly_window_days > 0:
            errs.append(f"anomaly_window_days must be > 0, got {self.anomaly_window_days}")
        for name in ("depth_m", "rootzone_depth_m"):
            d = tuple(getattr(self, name))
            if len(d) != 2 or not 0 <= d[0] <= d[1]:
                errs.append(f"{name} must be (from, to) with 0 <= from <= to (m), got {d}")
        if self.triple is not None and len(tuple(self.triple)) != 2:
            errs.append(f"triple must name two products, got {self.triple!r}")
        if self.period is not None:
            try:
                t0, t1 = (pd.Timestamp(t) for t in self.period)
                if t1 < t0:
                    errs.append(f"period must be (start, end) with start <= end, got {self.period!r}")
            except (TypeError, ValueError):
                errs.append(f"period must be two ISO 8601 times (start, end), got {self.period!r}")
        if errs:
            raise ValueError("validation settings: " + "; ".join(errs))

    @property
    def layer_m(self) -> tuple:
        """The sensor depth range (m) of the validated variable."""
        return tuple(self.depth_m if self.variable == "sm_surface" else self.rootzone_depth_m)

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
        for k in ("depth_m", "rootzone_depth_m", "good_flags", "triple", "frm_classes", "period"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    def load(self, insitu, period=None) -> list[Station]:
        """The stations of ``insitu`` (a path) for these settings; ``period`` is used when ``self.period`` is None."""
        return load_stations(insitu, depth_m=self.layer_m, good_flags=self.good_flags, cache_dir=self.cache_dir,
                             period=self.period or period, sensors=self.sensors, frm_classes=self.frm_classes)


# --- products ----------------------------------------------------------------------------------
@dataclass
class Product:
    """An open product file: name, path, data array (time, y, x), UTC times, x, y (m); ``spread``: the
    ensemble spread (time, y, x) at the same times where the run wrote it, else None."""

    name: str
    path: Path
    data: xr.DataArray
    time: pd.DatetimeIndex
    x: np.ndarray
    y: np.ndarray
    spread: xr.DataArray | None = None

    def cell(self, lat, lon):
        """(iy, ix) of the 1 km cell containing (lat, lon), or None outside the grid."""
        px, py = latlon_to_xy(lat, lon)
        ix = _index(self.x, float(px))
        iy = _index(self.y, float(py))
        return None if ix is None or iy is None else (iy, ix)

    def series(self, iy, ix) -> pd.Series:
        v = np.asarray(self.data[:, iy, ix].values, float)
        return pd.Series(v, index=self.time, name=self.name).dropna()

    def spread_series(self, iy, ix) -> pd.Series | None:
        if self.spread is None:
            return None
        v = np.asarray(self.spread[:, iy, ix].values, float)
        return pd.Series(v, index=self.time, name=self.name).dropna()

    def nearest_valid(self, iy, ix, radius_km):
        """(iy, ix) of the cell nearest to (iy, ix) within ``radius_km`` that has an estimate at some time
        (the cell itself first), or None."""
        step_km = abs(float(self.x[1] - self.x[0])) / 1000.0 if self.x.size > 1 else 1.0
        r = int(radius_km // step_km)
        y0, y1, x0, x1 = max(iy - r, 0), min(iy + r + 1, self.y.size), max(ix - r, 0), min(ix + r + 1, self.x.size)
        has = np.isfinite(np.asarray(self.data[:, y0:y1, x0:x1].values, float)).any(axis=0)
        yy, xx = np.nonzero(has)
        if not yy.size:
            return None
        d2 = (yy + y0 - iy) ** 2 + (xx + x0 - ix) ** 2
        k = int(np.argmin(d2))
        if d2[k] * step_km**2 > radius_km**2:
            return None
        return int(yy[k] + y0), int(xx[k] + x0)

    def close(self):
        self.data.close()
        if self.spread is not None:
            self.spread.close()


def _index(coord, v):
    if coord.size == 1:
        return 0 if abs(v - coord[0]) <= 500.0 else None
    step = float(np.median(np.diff(coord)))
    i = int(np.rint((v - coord[0]) / step))
    if 0 <= i < coord.size and abs(v - coord[i]) <= 0.5 * abs(step) * (1 + 1e-9):
        return i
    return None


def _file_var(p, variable):
    """(path, variable) of a product given as a path (its ``variable``) or as (path, variable)."""
    return (Path(p[0]), p[1]) if isinstance(p, tuple) else (Path(p), variable)


def open_product(path, variable="sm_surface", name=None, spread=None) -> Product:
    """Open one product file and check its structure (raises ValueError naming the file).

    spread : optional (path, variable) of the product's ensemble spread on the same grid (times matched).
    """
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
    sp = None
    if spread is not None:
        sds = xr.open_dataset(spread[0])
        sp = sds[spread[1]]
        if sp.shape != da.shape or not np.array_equal(sds["time"].values, ds["time"].values):
            log.info("%s: spread %s of %s not on the product's grid and times: not shown", name, spread[1], spread[0])
            sds.close()
            sp = None
    return Product(name, path, da, time, np.asarray(ds["x"].values, float), np.asarray(ds["y"].values, float), sp)


def product_span(paths) -> tuple:
    """(first, last) UTC time over the product files."""
    t0, t1 = [], []
    for p in paths:
        with xr.open_dataset(_file_var(p, None)[0]) as ds:
            t = pd.to_datetime(ds["time"].values)
        if len(t):
            t0.append(t.min())
            t1.append(t.max())
    if not t0:
        return None
    return pd.Timestamp(min(t0)).tz_localize("UTC"), pd.Timestamp(max(t1)).tz_localize("UTC")


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


def collocate(product: pd.Series, insitu: pd.Series, settings: ValidationSettings) -> pd.DataFrame:
    """Matched pairs with their anomalies: columns ``product``, ``insitu`` (m3/m3), ``product_anom``,
    ``insitu_anom`` (anomalies of each full series, matched like the values: QA4SM) and
    ``product_anom_paired``, ``insitu_anom_paired`` (anomalies of the matched pairs alone)."""
    opts = dict(time_match=settings.time_match, window_h=settings.window_h)
    pairs = match_times(product, insitu, **opts)
    anomaly = mt.ANOMALIES[settings.anomaly]
    w = settings.anomaly_window_days
    full = match_times(anomaly(product, w), anomaly(insitu, w), **opts)
    return _paired_anomalies(pairs.join(full.add_suffix("_anom"), how="left"), settings)


def _paired_anomalies(pairs: pd.DataFrame, settings: ValidationSettings) -> pd.DataFrame:
    """``pairs`` with ``product_anom_paired`` and ``insitu_anom_paired``: the anomalies of the matched pairs alone."""
    if pairs.empty:
        return pairs.assign(product_anom_paired=[], insitu_anom_paired=[])
    anomaly, w = mt.ANOMALIES[settings.anomaly], settings.anomaly_window_days
    return pairs.assign(product_anom_paired=anomaly(pairs["product"], w), insitu_anom_paired=anomaly(pairs["insitu"], w))


def _season_rows(pairs: pd.DataFrame, settings: ValidationSettings):
    """Metric dicts for the whole period and each season with enough pairs."""
    months = pairs.index.month
    subsets = [("all", np.ones(len(pairs), bool))]
    subsets += [(name, np.isin(months, ms)) for name, ms in SEASONS.items()]
    col = {c: pairs[c].to_numpy() for c in pairs.columns}
    out = []
    for season, sel in subsets:
        if sel.sum() < settings.min_samples:
            continue
        res = mt.all_metrics(col["product"][sel], col["insitu"][sel], settings.alpha,
                             x_anom=col["product_anom"][sel], y_anom=col["insitu_anom"][sel],
                             x_anom_paired=col["product_anom_paired"][sel], y_anom_paired=col["insitu_anom_paired"][sel])
        out.append((season, res))
    return out


# --- the whole validation ------------------------------------------------------------------------
def validate(product_paths: dict, stations, *, out_dir, settings=None, spreads=None, diagnostics=None) -> pd.DataFrame:
    """Validate products against stations; write tables, report and figures into ``out_dir``.

    Parameters
    ----------
    product_paths : dict product name -> netCDF path (see module docstring) or (path, variable).
    stations : list of :class:`smda.run.insitu.Station`, or a path given to :func:`smda.run.insitu.load_stations`
        (the sensors chosen on the products' time span unless ``settings.period`` is set).
    out_dir : output folder (created).
    settings : ValidationSettings, a mapping of its fields, or the namelist's validation section.
    spreads : optional dict product name -> (path, variable) of its ensemble spread (figures).
    diagnostics : optional path of a run's ``<name>_obs_diagnostics.csv`` (O-F figures).

    Returns
    -------
    DataFrame with columns ``level`` (station, network, landcover, overall), network, station, sensor,
    landcover, product, season (all, DJF, MAM, JJA, SON), n, n_stations and the metrics of
    :data:`smda.run.metrics.METRIC_NAMES` (m3/m3 for bias/RMSD/ubRMSD). ``df.attrs["skipped"]`` holds
    the skipped stations (network, station, product, reason), ``df.attrs["triple"]`` the triple collocation.
    """
    settings = ValidationSettings.coerce(settings)
    if not product_paths:
        raise ValueError("validate needs at least one product file")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not isinstance(stations, list | tuple):
        stations = settings.load(stations, product_span(product_paths.values()))
    spreads = spreads or {}
    products = {name: open_product(*_file_var(p, settings.variable), name=name, spread=spreads.get(name))
                for name, p in product_paths.items()}
    if settings.triple is not None:
        missing = [t for t in settings.triple if t not in products]
        if missing:
            raise ValueError(f"triple collocation product(s) {missing} not among {list(products)}")
    try:
        rows, skipped, pairs_all, series_all, tc_rows = _collocate_all(products, stations, settings)
    finally:
        for p in products.values():
            p.close()
    table = _aggregate(rows)
    skipped_df = pd.DataFrame(skipped, columns=["network", "station", "product", "reason"])
    table.attrs["skipped"] = skipped_df
    tc = pd.DataFrame(tc_rows)
    table.attrs["triple"] = tc
    table.to_csv(out_dir / "validation_metrics.csv", index=False, float_format="%.6g")
    skipped_df.to_csv(out_dir / "skipped_stations.csv", index=False)
    if settings.triple is not None:
        tc.to_csv(out_dir / "triple_collocation.csv", index=False, float_format="%.6g")
    figures = []
    if settings.figures:
        from smda.run.figures import validation_figures

        figures = validation_figures(out_dir / "figures", table, pairs_all, series_all, stations, diagnostics)
    _write_report(out_dir / "validation_report.md", table, skipped_df, tc, settings, products, figures, out_dir)
    log.info("validation: %d station-product pairs, %d skipped; tables in %s",
             len(pairs_all), len(skipped_df), out_dir)
    return table


def _collocate_all(products, stations, settings):
    rows, skipped, tc_rows = [], [], []
    pairs_all: dict = {}     # (station key, product) -> pairs DataFrame
    series_all: dict = {}    # station key -> {product: (Series, spread Series or None)}
    for st in stations:
        def skip(product, reason, st=st):
            log.warning("station %s, product %s: skipped, %s", st.key, product, reason)
            skipped.append((st.network, st.name + (f" [{st.sensor}]" if st.sensor else ""), product, reason))

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
            cell = cells[name]
            ps = p.series(*cell)
            if ps.empty and settings.nearest_valid_km > 0:
                near = p.nearest_valid(*cell, settings.nearest_valid_km)
                if near is not None:
                    log.info("station %s, product %s: nearest cell with estimates %s (station cell %s)", st.key,
                             name, near, cell)
                    cell, ps = near, p.series(*near)
            if ps.empty:
                skip(name, "no product estimate at the station's cell"
                     + (f" nor within {settings.nearest_valid_km:g} km" if settings.nearest_valid_km > 0 else ""))
                continue
            series_all.setdefault(st.key, {})[name] = (ps, p.spread_series(*cell))
            if ps.index[-1] < st.sm.index[0] or ps.index[0] > st.sm.index[-1]:
                skip(name, f"no overlap in time (product {ps.index[0]:%Y-%m-%d}..{ps.index[-1]:%Y-%m-%d}, "
                           f"in situ {st.sm.index[0]:%Y-%m-%d}..{st.sm.index[-1]:%Y-%m-%d})")
                continue
            per_product[name] = collocate(ps, st.sm, settings)
        if settings.common_pairs:
            per_product = _common_pairs(per_product, settings)
        for name, pairs in list(per_product.items()):
            if len(pairs) < settings.min_samples:
                skip(name, f"too few collocated samples ({len(pairs)} < {settings.min_samples})"
                     + (" common to every product" if settings.common_pairs else ""))
                del per_product[name]
                continue
            pairs_all[(st.key, name)] = pairs
            for season, res in _season_rows(pairs, settings):
                rows.append({"level": "station", "network": st.network, "station": st.name, "sensor": st.sensor,
                             "landcover": st.landcover, "product": name, "season": season, "n_stations": 1, **res})
        if settings.triple is not None and all(t in per_product for t in settings.triple):
            tc_rows.append(_triple(st, per_product, settings))
    return rows, skipped, pairs_all, series_all, tc_rows


def _common_pairs(per_product: dict, settings: ValidationSettings) -> dict:
    """Each product's pairs at the times every product has (a fair ranking); paired anomalies recomputed."""
    if len(per_product) < 2:
        return per_product
    times = None
    for pairs in per_product.values():
        times = pairs.index if times is None else times.intersection(pairs.index)
    return {name: _paired_anomalies(pairs.loc[times], settings) for name, pairs in per_product.items()}


def _triple(st: Station, per_product: dict, settings: ValidationSettings) -> dict:
    """Triple collocation of the in situ data (the reference) and two products at one station."""
    a, b = settings.triple
    j = pd.concat({"insitu": per_product[a]["insitu"], a: per_product[a]["product"],
                   b: per_product[b]["product"]}, axis=1, join="inner").dropna()
    res = mt.triple_collocation(j["insitu"], j[a], j[b], ref=0, alpha=settings.alpha, n_boot=settings.tc_bootstrap,
                                min_boot=settings.tc_min_bootstrap, seed=zlib.crc32(st.key.encode()))
    row = {"network": st.network, "station": st.name, "sensor": st.sensor, "n": res["n"]}
    for i, who in enumerate(("insitu", a, b)):
        for k in ("snr_db", "err_std", "beta", "r_truth"):
            for suffix in ("", "_lo", "_hi"):
                row[f"{k}{suffix}_{who}"] = res[f"{k}{suffix}"][i]
    return row


def _aggregate(rows) -> pd.DataFrame:
    """Station rows plus network, land cover and overall rows (medians of station metrics)."""
    cols = ID_COLUMNS + METRIC_COLUMNS
    st = pd.DataFrame(rows)
    if st.empty:
        return pd.DataFrame(columns=cols)
    st = st[cols]
    agg = {c: "median" for c in METRIC_COLUMNS}
    agg.update(n="sum", n_stations="sum")
    # confidence intervals are per station only
    ci = [c for c in METRIC_COLUMNS if c.endswith(("_lo", "_hi")) or c == "r_p"]
    parts = [st]
    for level, by in (("network", ["network"]), ("landcover", ["landcover"]), ("overall", [])):
        if level == "landcover" and not (st["landcover"] != "").any():
            continue
        g = st.groupby(by + ["product", "season"], sort=False).agg(agg).reset_index()
        g["level"] = level
        for c in ("network", "station", "sensor", "landcover"):
            if c not in by:
                g[c] = ""
        g[ci] = np.nan
        parts.append(g[cols])
    order = {"all": 0, "DJF": 1, "MAM": 2, "JJA": 3, "SON": 4}
    out = pd.concat(parts, ignore_index=True)
    out["_lv"] = out["level"].map({"station": 0, "network": 1, "landcover": 2, "overall": 3})
    out["_se"] = out["season"].map(order)
    out = out.sort_values(["_lv", "network", "landcover", "station", "sensor", "product", "_se"], kind="stable")
    return out.drop(columns=["_lv", "_se"]).reset_index(drop=True)


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
    show = ["network", "station", "sensor", "landcover", "product", "season", "n", "bias", "rmsd", "ubrmsd", "ubrmsd_lo",
            "ubrmsd_hi", "r", "r_lo", "r_hi", "rho", "r_anom", "r_anom_paired"]
    d0, d1 = settings.layer_m
    anomaly = (f"a {settings.anomaly_window_days:g}-day moving average" if settings.anomaly == "moving_average" else
               f"a day-of-year climatology (smoothed over {settings.anomaly_window_days:g} days)")
    parts = ["# Validation against in situ stations", "",
             "Products: " + ", ".join(f"`{n}` ({p.path.name})" for n, p in products.items()), "",
             f"`{settings.variable}` against sensors in {d0:g}-{d1:g} m (sensor choice `{settings.sensors}`"
             + (f", FRM classes {', '.join(settings.frm_classes)}" if settings.frm_classes else "")
             + f"), flags {','.join(settings.good_flags)}; time matching `{settings.time_match}`"
             + (f" within {settings.window_h:g} h" if settings.time_match == "nearest" else "")
             + (f"; nearest cell with estimates within {settings.nearest_valid_km:g} km" if settings.nearest_valid_km else "")
             + f"; at least {settings.min_samples} pairs; {100 * (1 - settings.alpha):g} % confidence intervals; "
             f"r_anom: anomalies from {anomaly} of each full series before matching (QA4SM), r_anom_paired: of the "
             "matched pairs. Units m3/m3. Network, land cover and overall rows are medians over stations.", ""]
    for level, title in (("overall", "Overall"), ("network", "Per network"), ("landcover", "Per land cover class"),
                         ("station", "Per station")):
        sub = table[table["level"] == level]
        if level == "landcover" and sub.empty:
            continue
        parts += [f"## {title}", "", _md_table(sub[show]) if len(sub) else "(no station validated)", ""]
    parts += ["## Skipped stations", ""]
    parts += [_md_table(skipped) if len(skipped) else "None.", ""]
    if len(tc):
        parts += ["## Triple collocation (in situ reference)", "",
                  "SNR in dB; error standard deviations scaled into the in situ units (m3/m3) by beta; "
                  f"{100 * (1 - settings.alpha):g} % percentile bootstrap intervals ({settings.tc_bootstrap} resamples, "
                  f"at least {settings.tc_min_bootstrap} triplets).", "", _md_table(tc), ""]
    if figures:
        parts += ["## Figures", ""] + [f"![{f.stem}]({f.relative_to(out_dir).as_posix()})" for f in figures] + [""]
    Path(path).write_text("\n".join(parts))


# --- entry point for the CLI -------------------------------------------------------------------
def find_products(outputs_dir, variable="sm_surface") -> dict:
    """Product name -> path of every netCDF file under ``outputs_dir`` with ``variable`` and a
    ``product`` attribute (other files, e.g. restarts and diagnostics, are ignored); for a variable the
    products/ files do not hold (sm_rootzone), -> (path, variable) of the truth, open loop and analysis
    ensemble mean in a run's ``<name>_analysis.nc``."""
    found = {}
    if variable != "sm_surface":
        for f in sorted(Path(outputs_dir).glob("*_analysis.nc")):
            with xr.open_dataset(f) as ds:
                for run in ("truth", "openloop", "analysis"):
                    v = next((v for v in (f"{variable}_{run}", f"{variable}_{run}_mean") if v in ds), None)
                    if v is not None:
                        found[run] = (f, v)
        if found:
            return found
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


def find_spreads(outputs_dir, variable="sm_surface") -> dict:
    """``{"analysis": (path, variable)}`` of the analysis ensemble spread a run wrote (``<name>_analysis.nc``)."""
    for f in sorted(Path(outputs_dir).glob("*_analysis.nc")):
        try:
            with xr.open_dataset(f) as ds:
                if f"{variable}_analysis_spread" in ds:
                    return {"analysis": (f, f"{variable}_analysis_spread")}
        except (OSError, ValueError):
            continue
    return {}


def main(namelist_outputs_dir, insitu_path=None, out_dir=None, settings=None, *, insitu=None) -> pd.DataFrame:
    """Validate every product of a run against in situ data: the whole ``smda validate`` job.

    namelist_outputs_dir : a run's output folder, or a loaded namelist (its ``output.dir`` is
        used, and its ``validation`` section gives settings and the default in situ path).
    insitu_path (or insitu=) : ISMN folder/zip or CSV station file(s).
    out_dir : default ``<outputs>/validation``.
    settings : see :class:`ValidationSettings` (default: the namelist's validation section).

    Raises :class:`NothingValidated` (after writing the report) when no station-product pair could be validated.
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
    stations = settings.load(insitu_path, product_span(products.values()))
    out_dir = Path(out_dir) if out_dir is not None else outputs / "validation"
    diagnostics = next(iter(sorted(outputs.glob("*_obs_diagnostics.csv"))), None)
    table = validate(products, stations, out_dir=out_dir, settings=settings, spreads=find_spreads(outputs, settings.variable),
                     diagnostics=diagnostics)
    if table.empty:
        skipped = table.attrs["skipped"]
        reasons = skipped["reason"].str.replace(r"\s*\(.*", "", regex=True).value_counts()
        raise NothingValidated(
            f"nothing could be validated: 0 station-product pairs from {len(stations)} station(s) in {insitu_path} "
            f"and {len(products)} product(s) in {outputs}"
            + (f"; skipped: {', '.join(f'{n} x {r}' for r, n in reasons.items())}" if len(reasons) else "")
            + f"; see {out_dir / 'skipped_stations.csv'}")
    return table


__all__ = ["ValidationSettings", "NothingValidated", "validate", "main", "open_product", "match_times", "collocate",
           "find_products", "Station"]
