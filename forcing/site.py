"""Station (site) forcing tables for point or small-domain runs.

Two layouts are read:

* the Noah-OWP-Modular text table (e.g. bondville.dat): free text, then a line starting with the
  ``<Forcing>`` tag (case-insensitive), then whitespace-separated rows
  ``yyyy mm dd hh mi  wind(m s-1) wind_dir(deg) T(K) RH(%) p(hPa) SW(W m-2) LW(W m-2) P(kg m-2 s-1)``
  in UTC; the header's unit line is checked against this layout;
* a CSV/text table with a header: ``columns`` maps names (internal names, or ``dewpoint`` /
  ``rel_hum`` for humidity) to column titles, ``units`` gives each one's units, ``time_column`` the
  UTC time stamps.

Units are converted to the internal set (:mod:`smda.forcing.units`); relative humidity or dewpoint become
specific humidity (Bolton 1980). Variables the site lacks are an error unless the caller lists them
in ``fill``; then a documented generator fills them and the fill is recorded in
``df.attrs["forcing_fill"]`` ({name: method}) for the output metadata:

* ``sw_down``: clear-sky ``0.75 S0 (1 + 0.033 cos(2 pi doy/365)) max(cos Z, 0)`` (needs lat, lon);
* ``lw_down``: Brutsaert (1975) clear sky, ``1.24 (e/T)^(1/7) sigma T^4`` (e in hPa);
* ``q_air``: constant relative humidity ``fill_rh``;
* ``wind``: constant ``fill_wind_ms``;
* ``p_surf``: standard atmosphere at ``elevation_m``, ``101325 (1 - 2.25577e-5 z)^5.25588``.

In time, states are interpolated linearly and fluxes are held over the interval that ends at
their time stamp (``flux_label``, see :mod:`smda.forcing.timeinterp`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smda.constants import P_STANDARD, SIGMA, clear_sky_emissivity, vapour_pressure
from smda.forcing import units as U
from smda.forcing.regrid import LAPSE_RATE, lapse_adjust
from smda.forcing.solar import clear_sky_irradiance, interval_cos_zenith
from smda.forcing.timeinterp import flux_interval, state_bracket

_NOAHOWP_COLUMNS = ["year", "month", "day", "hour", "minute", "wind", "wind_dir", "t_air", "rel_hum", "p_surf",
                    "sw_down", "lw_down", "precip"]
_NOAHOWP_UNITS = {"wind": "m s{-1}", "t_air": "K", "rel_hum": "%", "p_surf": "hPa", "sw_down": "W m{-2}",
                  "lw_down": "W m{-2}", "precip": "kg m{-2} s{-1}"}
FILLABLE = ("sw_down", "lw_down", "q_air", "wind", "p_surf")


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


def read_station_table(path, *, columns: dict | None = None, units: dict | None = None,
                       time_column: str = "time", fill=(), lat: float | None = None, lon: float | None = None,
                       elevation_m: float = 0.0, fill_rh: float = 0.7, fill_wind_ms: float = 3.0) -> pd.DataFrame:
    """Read a station forcing table into a DataFrame indexed by UTC time, internal names and units.

    Returns columns among precip, sw_down, lw_down, t_air, q_air, p_surf, wind (float64) and
    ``attrs`` {"source": str(path), "forcing_fill": {name: method}}.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"station forcing file {path} does not exist")
    bad = [f for f in fill if f not in FILLABLE]
    if bad:
        raise ValueError(f"cannot fill {bad}; fillable: {', '.join(FILLABLE)}")
    tag, header = _find_tag(path)
    if tag is not None and columns is None:
        unit_line = next((h for h in header if "m s{-1}" in h or "hPa" in h), "")
        pos = [unit_line.find(_NOAHOWP_UNITS[k]) for k in ("wind", "t_air", "rel_hum", "p_surf", "sw_down")]
        if min(pos) < 0 or pos != sorted(pos):
            raise ValueError(f"file {path}: header units do not match the Noah-OWP layout {_NOAHOWP_UNITS}")
        raw = pd.read_csv(path, sep=r"\s+", skiprows=tag + 1, header=None, names=_NOAHOWP_COLUMNS, comment=None,
                          dtype=float, engine="c")
        t = pd.to_datetime(dict(year=raw.year, month=raw.month, day=raw.day, hour=raw.hour, minute=raw.minute))
        src = {k: (k, u) for k, u in _NOAHOWP_UNITS.items()}
    else:
        if not columns:
            raise ValueError(f"file {path}: no <Forcing> tag; give columns= and units= for a CSV table")
        units = units or {}
        raw = pd.read_csv(path, sep=None, engine="python", comment="#")
        raw.columns = [str(c).strip() for c in raw.columns]
        if time_column not in raw.columns:
            raise ValueError(f"file {path}: time column {time_column!r} not found; columns: {list(raw.columns)}")
        t = pd.to_datetime(raw[time_column], utc=True).dt.tz_localize(None)
        src = {}
        for name, col in columns.items():
            if name not in U.ALLOWED:
                raise ValueError(f"columns key {name!r} unknown; valid: {', '.join(U.ALLOWED)}")
            if col not in raw.columns:
                raise ValueError(f"file {path}: column {col!r} for {name} not found; columns: {list(raw.columns)}")
            if name not in units:
                raise ValueError(f"file {path}: no units given for column {col!r} ({name})")
            src[name] = (col, units[name])
    data = {}
    for name, (col, u) in src.items():
        vals = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=np.float64)
        data[name] = U.convert(vals, u, U.ALLOWED[name], where=f"file {path}, variable {col!r}")
    times = t.to_numpy().astype("datetime64[s]")
    if np.any(np.diff(times) <= np.timedelta64(0, "s")):
        raise ValueError(f"file {path}: time stamps are not strictly increasing")
    record = {}
    if "p_surf" not in data and "p_surf" in fill:
        data["p_surf"] = np.full(times.size, P_STANDARD * (1 - 2.25577e-5 * elevation_m) ** 5.25588)
        record["p_surf"] = f"standard atmosphere at {elevation_m} m"
    if "q_air" not in data:
        if "dewpoint" in data and "p_surf" in data:
            data["q_air"] = U.q_from_dewpoint(data.pop("dewpoint"), data["p_surf"])
        elif "rel_hum" in data and "p_surf" in data and "t_air" in data:
            data["q_air"] = U.q_from_rh(np.clip(data.pop("rel_hum"), 0.0, 1.0), data["t_air"], data["p_surf"])
        elif "q_air" in fill and "t_air" in data and "p_surf" in data:
            data["q_air"] = U.q_from_rh(fill_rh, data["t_air"], data["p_surf"])
            record["q_air"] = f"constant relative humidity {fill_rh}"
    data.pop("rel_hum", None)
    data.pop("dewpoint", None)
    if "wind" not in data and "wind" in fill:
        data["wind"] = np.full(times.size, float(fill_wind_ms))
        record["wind"] = f"constant {fill_wind_ms} m s-1"
    if "sw_down" not in data and "sw_down" in fill:
        if lat is None or lon is None:
            raise ValueError("filling sw_down needs the station lat and lon")
        data["sw_down"] = clear_sky_shortwave(times, lat, lon)
        record["sw_down"] = "clear-sky 0.75 S0 cos(Z), hourly-mean zenith over the preceding interval"
    if "lw_down" not in data and "lw_down" in fill and "t_air" in data and "q_air" in data and "p_surf" in data:
        e = vapour_pressure(data["q_air"], data["p_surf"])
        data["lw_down"] = clear_sky_emissivity(e, data["t_air"]) * SIGMA * data["t_air"] ** 4
        record["lw_down"] = "Brutsaert (1975) clear-sky emissivity"
    missing = [n for n in U.NAMES if n not in data]
    if missing:
        raise ValueError(f"file {path}: lacks forcing variables {missing}; pass fill=... to generate them "
                         f"(fillable: {', '.join(FILLABLE)})")
    for n in U.NAMES:
        if np.any(~np.isfinite(data[n])):
            raise ValueError(f"file {path}: variable {n} has {int((~np.isfinite(data[n])).sum())} missing values")
    df = pd.DataFrame({n: data[n] for n in U.NAMES}, index=pd.DatetimeIndex(times, name="time"))
    df.attrs["source"] = str(path)
    df.attrs["forcing_fill"] = record
    return df


def clear_sky_shortwave(times, lat, lon):
    """Clear-sky shortwave (W m-2) averaged over each interval ending at ``times`` (n,)."""
    times = np.asarray(times, "datetime64[s]")
    dt = np.median(np.diff(times)) if times.size > 1 else np.timedelta64(3600, "s")
    out = np.empty(times.size)
    for i, t in enumerate(times):
        mean, _ = interval_cos_zenith(t - dt, t, t, [lat], [lon], nsub=6)
        doy = (t.astype("datetime64[D]") - t.astype("datetime64[Y]")).astype(int) + 1
        out[i] = clear_sky_irradiance(doy) * mean[0]
    return out


class SiteForcing:
    """Uniform forcing over a small domain from a station table.

    Parameters
    ----------
    table : DataFrame from :func:`read_station_table`, or a path (then ``read_kwargs`` are passed on)
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


