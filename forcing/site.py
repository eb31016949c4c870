"""Station (site) forcing tables for point or small-domain runs.

Two layouts are read:

* the Noah-OWP-Modular text table (e.g. bondville.dat): free text, then a line starting with the
  ``<Forcing>`` tag (case-insensitive), then whitespace-separated rows
  ``yyyy mm dd hh mi  wind(m s-1) wind_dir(deg) T(K) RH(%) p(hPa) SW(W m-2) LW(W m-2) P(kg m-2 s-1)``
  in UTC; the header's unit line is checked against this layout;
* a CSV/text table with a header: ``columns`` maps names (internal names, ``dewpoint`` / ``rel_hum``
  for humidity, and ``time``, default "time") to column titles and ``units`` gives each one's units.
  Time stamps are read with ``time_format`` (strftime codes; default: ISO 8601 or pandas inference);
  stamps without a UTC offset are in ``time_zone`` (UTC, a fixed offset such as "+01:00", or an IANA
  name such as "Europe/Madrid") and are converted to UTC. Values equal to one of ``missing_values``
  are missing.

Several files are concatenated in time: sorted, and records repeated with the same values (overlapping
files) are kept once with a warning; a time repeated with different values is an error naming both files.
Every file must have the same time step.

At the forcing boundary, after unit conversion, every value is range-checked and each series checked for
unit plausibility (:mod:`smda.forcing.checks`; ``check=False`` turns both off); a station pressure whose
mean differs by more than 10 % from the hypsometric value at ``elevation_m`` is refused (sea-level pressure,
or a wrong station elevation).

Gaps (missing values, or missing records on the regular time step) up to ``max_gap_h`` are filled, longer
ones are an error naming the files, the variable and the period: states and radiation are interpolated
linearly in time (held at the nearest value at the ends of the record); precipitation gaps are set to 0
(no rain: interpolating rain would invent it, and refusing every short outage of a rain gauge would stop
most station records). Each filled variable is recorded in ``df.attrs["forcing_fill"]`` ({name: method}),
written to the outputs' ``forcing_fill`` attribute.

Units are converted to the internal set (:mod:`smda.forcing.units`); relative humidity or dewpoint become
specific humidity (Bolton 1980). Variables the site lacks are an error unless the caller lists them in
``fill``; then a documented generator fills them (:mod:`smda.forcing.fills`) and the fill is recorded:

* ``p_surf``: hypsometric equation from 101325 Pa at sea level to ``elevation_m`` (needs the elevation);
* ``q_air``: dewpoint = daily minimum temperature minus ``dewpoint_depression_k`` (FAO-56, Kimball 1997);
* ``wind``: ``fill_wind_ms``, 2 m s-1 by default (FAO-56);
* ``sw_down``: Thornton & Running (1999) clear-sky transmittance (air mass, vapour pressure) times a cloud
  transmittance from the diurnal temperature range and precipitation occurrence (needs lat, lon);
* ``lw_down``: Brutsaert (1975) clear sky, ``1.24 (e/T)^(1/7) sigma T^4`` (e in hPa).

In time, states are interpolated linearly and fluxes are held over the interval that ends at
their time stamp (``flux_label``, see :mod:`smda.forcing.timeinterp`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo
from pathlib import Path

import numpy as np
import pandas as pd

from smda.constants import SIGMA, clear_sky_emissivity, vapour_pressure
from smda.forcing import checks
from smda.forcing import fills as F
from smda.forcing import units as U
from smda.forcing.regrid import LAPSE_RATE, lapse_adjust
from smda.forcing.timeinterp import flux_interval, state_bracket

log = logging.getLogger(__name__)

_NOAHOWP_COLUMNS = ["year", "month", "day", "hour", "minute", "wind", "wind_dir", "t_air", "rel_hum", "p_surf",
                    "sw_down", "lw_down", "precip"]
_NOAHOWP_UNITS = {"wind": "m s{-1}", "t_air": "K", "rel_hum": "%", "p_surf": "hPa", "sw_down": "W m{-2}",
                  "lw_down": "W m{-2}", "precip": "kg m{-2} s{-1}"}
FILLABLE = ("sw_down", "lw_down", "q_air", "wind", "p_surf")
MAX_GAP_H = 6.0
PRESSURE_TOLERANCE = 0.10  # relative difference of the mean station pressure from the hypsometric value
_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?")


def _find_tag(path: Path):
    with open(path, errors="replace") as fh:
        header = []
        for i, line in enumerate(fh):
            if line.lstrip().lower().startswith("<forcing>"):
                return i, header
            header.append(line)
            if i > 200:
                break
    return None, []


def time_zone_info(name: str):
    """tzinfo of "UTC", a fixed offset ("+01:00", "UTC-5") or an IANA zone name."""
    if name.strip().upper() in ("UTC", "Z", "GMT"):
        return dt.timezone.utc
    m = _OFFSET.fullmatch(name.strip())
    if m:
        minutes = int(m[2]) * 60 + int(m[3] or 0)
        return dt.timezone(dt.timedelta(minutes=minutes if m[1] == "+" else -minutes))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time zone {name!r} unknown: give UTC, an offset such as +01:00, or an IANA name "
                         "such as Europe/Madrid") from None


def _utc_times(column: pd.Series, time_format: str | None, time_zone: str, where: str) -> np.ndarray:
    """UTC datetime64[s] of a column of time stamps (see module doc)."""
    text = column.astype(str).str.strip()
    try:
        try:
            t = pd.to_datetime(text, format=time_format)
        except ValueError as exc:
            if "utc=True" not in str(exc):
                raise
            t = pd.to_datetime(text, format=time_format, utc=True)  # stamps with different UTC offsets
        if t.dt.tz is None:
            t = t.dt.tz_localize(time_zone_info(time_zone))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: cannot read the time stamps ({exc}); set forcing.time_format / time_zone (a fixed "
                         "offset such as +01:00 has no daylight-saving gaps)") from None
    return t.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]")


def _read_file(path: Path, columns, units, time_format, time_zone, missing_values):
    """(UTC times, {name: raw values}, {name: (column title, units label)}) of one station table."""
    if not path.is_file():
        raise ValueError(f"station forcing file {path} does not exist")
    tag, header = _find_tag(path)
    if tag is not None and columns is None:
        unit_line = next((h for h in header if "m s{-1}" in h or "hPa" in h), "")
        pos = [unit_line.find(_NOAHOWP_UNITS[k]) for k in ("wind", "t_air", "rel_hum", "p_surf", "sw_down")]
        if min(pos) < 0 or pos != sorted(pos):
            raise ValueError(f"file {path}: header units do not match the Noah-OWP layout {_NOAHOWP_UNITS}")
        raw = pd.read_csv(path, sep=r"\s+", skiprows=tag + 1, header=None, names=_NOAHOWP_COLUMNS, comment=None,
                          dtype=float, engine="c")
        t = pd.to_datetime(dict(year=raw.year, month=raw.month, day=raw.day, hour=raw.hour, minute=raw.minute))
        times = t.to_numpy().astype("datetime64[s]")
        src = {k: (k, u) for k, u in _NOAHOWP_UNITS.items()}
    else:
        if not columns:
            raise ValueError(f"file {path}: no <Forcing> tag; give columns= and units= for a CSV table")
        units = units or {}
        raw = pd.read_csv(path, sep=None, engine="python", comment="#")
        raw.columns = [str(c).strip() for c in raw.columns]
        time_column = columns.get("time", "time")
        if time_column not in raw.columns:
            raise ValueError(f"file {path}: time column {time_column!r} not found; columns: {list(raw.columns)}")
        times = _utc_times(raw[time_column], time_format, time_zone, f"file {path}, column {time_column!r}")
        src = {}
        for name, col in columns.items():
            if name == "time":
                continue
            if name not in U.ALLOWED:
                raise ValueError(f"columns key {name!r} unknown; valid: time, {', '.join(U.ALLOWED)}")
            if col not in raw.columns:
                raise ValueError(f"file {path}: column {col!r} for {name} not found; columns: {list(raw.columns)}")
            if name not in units:
                raise ValueError(f"file {path}: no units given for column {col!r} ({name})")
            src[name] = (col, units[name])
    data = {}
    for name, (col, _) in src.items():
        vals = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=np.float64, copy=True)
        if len(missing_values):
            vals[np.isin(vals, np.asarray(missing_values, np.float64))] = np.nan
        data[name] = vals
    return times, data, src


def _step_s(times, path) -> float:
    """The time step of one file (s): the median spacing of its distinct time stamps."""
    d = np.diff(np.unique(times))
    if not d.size:
        raise ValueError(f"file {path}: needs at least two time stamps")
    return float(np.median(d) / np.timedelta64(1, "s"))


def _merge(parts, paths):
    """Concatenate files in time: (times, {name: values}, file index per record); see the module doc."""
    names = set(parts[0][1])
    for (_, data, _), p in zip(parts[1:], paths[1:], strict=True):
        if set(data) != names:
            raise ValueError(f"file {p}: variables {sorted(data)} differ from those of {paths[0]} {sorted(names)}")
    times = np.concatenate([t for t, _, _ in parts])
    src = np.concatenate([np.full(t.size, i) for i, (t, _, _) in enumerate(parts)])
    order = np.argsort(times, kind="stable")
    times, src = times[order], src[order]
    data = {n: np.concatenate([d[n] for _, d, _ in parts])[order] for n in names}
    dup = np.flatnonzero(times[1:] == times[:-1])
    if dup.size:
        for n, v in data.items():
            a, b = v[dup], v[dup + 1]
            same = np.isclose(a, b, rtol=1e-6, atol=0.0) | (np.isnan(a) & np.isnan(b))
            if not same.all():
                k = dup[np.argmin(same)]
                raise ValueError(f"files {paths[src[k]]} and {paths[src[k + 1]]}: time {times[k]} appears twice "
                                 f"with different {n} ({a[np.argmin(same)]:.6g} and {b[np.argmin(same)]:.6g})")
        keep = np.ones(times.size, bool)
        keep[dup + 1] = False
        log.warning("station forcing: %d repeated records (same values) kept once; files %s", dup.size,
                    ", ".join(sorted({str(paths[i]) for i in np.unique(src[np.r_[dup, dup + 1]])})))
        times, src = times[keep], src[keep]
        data = {n: v[keep] for n, v in data.items()}
    return times, data, src


def _regular(times, data, src, step_s, paths):
    """Put the records on the regular time axis; missing records become NaN (file index -1)."""
    step = np.timedelta64(int(round(step_s)), "s")
    off = (times - times[0]) % step
    if np.any(off != np.timedelta64(0, "s")):
        k = int(np.argmax(off != np.timedelta64(0, "s")))
        raise ValueError(f"file {paths[src[k]]}: time {times[k]} is not on the {step_s:g} s step of the record")
    idx = ((times - times[0]) // step).astype(np.int64)
    n = int(idx[-1]) + 1
    full = times[0] + np.arange(n) * step
    out = {}
    for name, v in data.items():
        w = np.full(n, np.nan)
        w[idx] = v
        out[name] = w
    s = np.full(n, -1)
    s[idx] = src
    return full, out, s


def _fill_gaps(times, data, src, paths, labels, step_s, max_gap_h):
    """Fill gaps up to ``max_gap_h`` in place with :func:`smda.forcing.fills.gap_fill` (see module doc); {name:
    method} of the filled ones."""
    record = {}
    for name, v in data.items():
        if np.isfinite(v).all():
            continue
        if not np.isfinite(v).any():
            raise ValueError(f"file {', '.join(str(p) for p in paths)}: variable {labels[name][0]!r} ({name}) has no values")
        filled, miss, too_long, first, last = (a.reshape(-1) for a in F.gap_fill(times, v, step_s, max_gap_h,
                                                                                 zero=name == "precip"))
        runs = np.unique(first[miss])
        hours = (last[runs] - runs + 1) * step_s / 3600.0
        if too_long.any():
            s = int(first[np.argmax(too_long)])
            e = int(last[s])
            near = {paths[src[k]] for k in (s - 1, e + 1) if 0 <= k < src.size and src[k] >= 0}
            raise ValueError(f"file {', '.join(str(p) for p in sorted(near))}: variable {labels[name][0]!r} ({name}) is "
                             f"missing from {times[s]} to {times[e]} ({(e - s + 1) * step_s / 3600.0:g} h, {e - s + 1} "
                             f"records), longer than forcing.max_gap_h = {max_gap_h:g} h")
        v[...] = filled
        how = "set to 0 (no rain assumed)" if name == "precip" else "interpolated linearly in time"
        record[name] = (f"{runs.size} gaps ({int(miss.sum())} records, longest {hours.max():g} h, first at "
                        f"{times[runs[0]]}) {how}")
        log.warning("station forcing %s (%s): %s", labels[name][0], name, record[name])
    return record


def read_station_table(paths, *, columns: dict | None = None, units: dict | None = None, time_format: str | None = None,
                       time_zone: str = "UTC", missing_values=(-9999.0,), fill=(), lat: float | None = None,
                       lon: float | None = None, elevation_m: float | None = None, max_gap_h: float = MAX_GAP_H,
                       check: bool = True, fill_wind_ms: float = F.FILL_WIND_MS,
                       dewpoint_depression_k: float = 0.0) -> pd.DataFrame:
    """Read one or several station forcing tables into a DataFrame indexed by UTC time (see the module doc).

    Returns columns among precip, sw_down, lw_down, t_air, q_air, p_surf, wind (float64) and
    ``attrs`` {"source": the files, "forcing_fill": {name: method}}.
    """
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not paths:
        raise ValueError("no station forcing files given")
    bad = [f for f in fill if f not in FILLABLE]
    if bad:
        raise ValueError(f"cannot fill {bad}; fillable: {', '.join(FILLABLE)}")
    parts = []
    labels = None
    for path in paths:
        times, raw, src = _read_file(path, columns, units, time_format, time_zone, missing_values)
        step_s = _step_s(times, path)
        data = {}
        for name, (col, u) in src.items():
            where = f"file {path}, variable {col!r}"
            data[name] = U.convert(raw[name], u, U.ALLOWED[name], where=where)
            if check:
                checks.check_range(name, data[name], times, where=where, label=u, interval_s=step_s)
                checks.check_series(name, data[name], times, where=where, label=u)
        parts.append((times, data, step_s))
        labels = labels or src
    steps = {p: s for p, (_, _, s) in zip(paths, parts, strict=True)}
    if len(set(steps.values())) > 1:
        raise ValueError(f"station forcing files have different time steps: {steps} (s)")
    step_s = parts[0][2]
    times, data, src = _merge(parts, paths)
    times, data, src = _regular(times, data, src, step_s, paths)
    record = _fill_gaps(times, data, src, paths, labels, step_s, float(max_gap_h))
    if check and "p_surf" in data and "t_air" in data and elevation_m is not None:
        expected = F.hypsometric_pressure(elevation_m, np.mean(data["t_air"]))
        mean = float(np.mean(data["p_surf"]))
        if abs(mean / expected - 1.0) > PRESSURE_TOLERANCE:
            raise ValueError(f"file {paths[0]}: variable {labels['p_surf'][0]!r} (p_surf) has a mean of {mean / 100:.1f} hPa, "
                             f"{100 * (mean / expected - 1):+.0f} % from the hypsometric {expected / 100:.1f} hPa at the "
                             f"station elevation {elevation_m:g} m: likely sea-level pressure instead of station pressure, "
                             "or a wrong forcing.station_elevation_m")
    _fill_variables(data, record, times, step_s, fill, lat, lon, elevation_m, fill_wind_ms, dewpoint_depression_k)
    missing = [n for n in U.NAMES if n not in data]
    if missing:
        raise ValueError(f"file {paths[0]}: lacks forcing variables {missing}; pass fill=... to generate them "
                         f"(fillable: {', '.join(FILLABLE)})")
    df = pd.DataFrame({n: data[n] for n in U.NAMES}, index=pd.DatetimeIndex(times, name="time"))
    df.attrs["source"] = ", ".join(str(p) for p in paths)
    df.attrs["forcing_fill"] = record
    return df


def _fill_variables(data, record, times, step_s, fill, lat, lon, elevation_m, fill_wind_ms, depression_k):
    """Humidity to q_air, and the generators of the variables in ``fill`` the site lacks (in place)."""
    def need(name, *inputs):
        if name in data or name not in fill:
            return False
        lacking = [i for i in inputs if i not in data]
        if lacking:
            raise ValueError(f"filling {name} needs {lacking} in the station table")
        return True

    if need("p_surf", "t_air"):
        if elevation_m is None:
            raise ValueError("filling p_surf needs the station elevation (forcing.station_elevation_m)")
        q0 = np.zeros(times.size)
        if "q_air" in data:
            q0 = data["q_air"]
        elif "dewpoint" in data or "rel_hum" in data:  # humidity with the dry-air pressure, then T_v
            p_dry = F.hypsometric_pressure(elevation_m, data["t_air"])
            q0 = (U.q_from_dewpoint(data["dewpoint"], p_dry) if "dewpoint" in data
                  else U.q_from_rh(np.clip(data["rel_hum"], 0.0, 1.0), data["t_air"], p_dry))
        data["p_surf"] = F.hypsometric_pressure(elevation_m, data["t_air"], q0)
        record["p_surf"] = (f"hypsometric equation at the station elevation {float(elevation_m):g} m: 101325 Pa "
                            "exp(-g z / (R_d T_v)), T_v the virtual temperature of the column (T_air + 3.25 K km-1 z)")
    if "q_air" not in data:
        if "dewpoint" in data and "p_surf" in data:
            data["q_air"] = U.q_from_dewpoint(data.pop("dewpoint"), data["p_surf"])
        elif "rel_hum" in data and "p_surf" in data and "t_air" in data:
            data["q_air"] = U.q_from_rh(np.clip(data.pop("rel_hum"), 0.0, 1.0), data["t_air"], data["p_surf"])
        elif need("q_air", "t_air", "p_surf"):
            if lon is None:
                raise ValueError("filling q_air needs the station longitude (local days)")
            data["q_air"] = F.humidity_fill(times, data["t_air"], data["p_surf"], lon, depression_k)
            record["q_air"] = (f"dewpoint = daily minimum air temperature - {float(depression_k):g} K (FAO-56 eq. 48, "
                               "Kimball et al. 1997), at most the air temperature")
    data.pop("rel_hum", None)
    data.pop("dewpoint", None)
    if need("wind"):
        data["wind"] = np.full(times.size, float(fill_wind_ms))
        record["wind"] = f"constant {float(fill_wind_ms):g} m s-1 (FAO-56 practice for missing wind)"
    if need("sw_down", "t_air", "precip", "q_air", "p_surf"):
        if lat is None or lon is None:
            raise ValueError("filling sw_down needs the station lat and lon")
        data["sw_down"] = F.cloudy_shortwave(times, data["t_air"], data["precip"], data["q_air"], data["p_surf"], lat, lon,
                                             step_s)
        record["sw_down"] = ("Thornton & Running (1999): clear-sky transmittance from the air mass and vapour pressure "
                             "times a cloud transmittance from the diurnal temperature range and precipitation days, "
                             "times the top-of-atmosphere irradiance of each interval")
    if need("lw_down", "t_air", "q_air", "p_surf"):
        e = vapour_pressure(data["q_air"], data["p_surf"])
        data["lw_down"] = clear_sky_emissivity(e, data["t_air"]) * SIGMA * data["t_air"] ** 4
        record["lw_down"] = "Brutsaert (1975) clear-sky emissivity"


class SiteForcing:
    """Uniform forcing over a small domain from a station table.

    Parameters
    ----------
    table : DataFrame from :func:`read_station_table`, or a path or list of paths (then ``read_kwargs`` are
        passed on)
    station_elevation_m : elevation of the station (m), for the lapse-rate correction to cells
    flux_label : time label of flux records ("end", "start", "centre")
    """

    def __init__(self, table, *, station_elevation_m: float | None = None, flux_label: str = "end", **read_kwargs):
        df = table if isinstance(table, pd.DataFrame) else read_station_table(table, **read_kwargs)
        missing = [n for n in U.NAMES if n not in df.columns]
        if missing:
            raise ValueError(f"station table lacks {missing}")
        self.table = df
        self.fill_record = dict(df.attrs.get("forcing_fill", {}))
        self.times = df.index.to_numpy().astype("datetime64[s]")
        self._vals = {n: df[n].to_numpy(np.float64) for n in U.NAMES}
        self.dt_s = float(np.median(np.diff(self.times)) / np.timedelta64(1, "s")) if self.times.size > 1 else 3600.0
        self.flux_label = flux_label
        self.station_elevation_m = station_elevation_m

    def fields(self, time, lat, lon, elevation_m=None) -> dict:
        """Forcing at ``time`` for cells (n,), internal names and units, each (n,)."""
        n = np.asarray(lat).size
        if np.asarray(lon).size != n:
            raise ValueError("lat and lon must have the same size")
        k, w = state_bracket(self.times, time)
        out = {}
        for name in U.STATES:
            v = self._vals[name]
            out[name] = np.full(n, v[k] if w == 0 else (1 - w) * v[k] + w * v[k + 1])
        kf, _, _ = flux_interval(self.times, time, self.flux_label, self.dt_s)
        for name in U.FLUXES:
            out[name] = np.full(n, self._vals[name][kf])
        if elevation_m is not None:
            if self.station_elevation_m is None:
                raise ValueError("elevation_m given but station_elevation_m is not")
            dz = np.asarray(elevation_m, float).ravel() - self.station_elevation_m
            if dz.size != n:
                raise ValueError(f"elevation_m has {dz.size} values for {n} cells")
            lapse_adjust(out["t_air"], out["p_surf"], out["q_air"], dz, LAPSE_RATE)
        return out


