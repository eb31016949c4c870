"""In situ soil moisture stations for validation: ISMN archives and a plain CSV format.

ISMN input (Dorigo et al. 2011, doi:10.5194/hess-15-1675-2011; 2021, doi:10.5194/hess-25-5749-2021)
is read with the ``ismn`` package (TU Wien): "header+values" and "CEOP" (ceop_sep) formats, as an
unpacked folder or a zip archive as downloaded. The package writes a metadata csv and a log; they
go to ``cache_dir`` (default: a temporary directory removed afterwards), never next to the data,
so read-only archives work.

Plain CSV (one or many files; a folder is searched for ``*.csv``), one row per measurement:

    station        station name (str)
    network        network name (str)
    lat, lon       station latitude and longitude, degrees north / east (WGS84)
    depth_from_m   top of the sensor's layer below the surface, m (>= 0)
    depth_to_m     bottom of the sensor's layer, m (>= depth_from_m)
    time           ISO 8601 time stamp; UTC unless it carries an offset
    soil_moisture  volumetric soil moisture, m3/m3 (0..1; NaN or empty for missing)
    flag           optional quality flag: ISMN convention, "G" good (column absent: all good)

Selection, for both formats: only values whose flag is in ``good_flags`` (default "G", the ISMN
"good" flag; "D.." dubious, "C.." exceeding plausible range, "M" missing, "U" unknown are dropped),
only values in [0, 1] m3/m3, and per station one sensor whose layer lies inside ``depth_m``
(surface 0-0.05 m; root zone e.g. 0-1 m) with tolerance 1 mm; among several the one whose mid
depth is closest to the layer's mid depth, then the one with most good values. Stations with no
good value are kept with an empty series, so that validation reports them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

CSV_COLUMNS = ("station", "network", "lat", "lon", "depth_from_m", "depth_to_m", "time", "soil_moisture")
DEPTH_TOL_M = 1e-3


@dataclass
class Station:
    """One in situ sensor: soil moisture ``sm`` (m3/m3) as a pandas Series with a UTC index.

    depth_from, depth_to: m below the surface; lat, lon: degrees. ``n_raw`` counts the values
    before quality selection; ``instrument`` and ``source`` (file) are informative.
    """

    name: str
    network: str
    lat: float
    lon: float
    depth_from: float
    depth_to: float
    sm: pd.Series = field(repr=False)
    instrument: str = ""
    n_raw: int = 0
    source: str = ""

    @property
    def key(self) -> str:
        return f"{self.network}/{self.name}"


def _check_depth(depth_m):
    try:
        d0, d1 = (float(v) for v in depth_m)
    except (TypeError, ValueError):
        raise ValueError(f"depth_m must be a pair (from, to) in m, got {depth_m!r}") from None
    if not (0 <= d0 <= d1 <= 10):
        raise ValueError(f"depth_m must satisfy 0 <= from <= to <= 10 m, got {depth_m!r}")
    return d0, d1


def _inside(a, b, d0, d1):
    return a >= d0 - DEPTH_TOL_M and b <= d1 + DEPTH_TOL_M


def _good(values: pd.Series, flags: pd.Series | None, good_flags) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    ok = v.notna() & (v >= 0) & (v <= 1)
    if flags is not None:
        ok &= flags.astype(str).str.strip().isin(set(good_flags))
    return v[ok].astype(float)


def _utc(index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def _pick(cands, d0, d1):
    """Sensor closest in mid depth to the layer's, then with most good values."""
    mid = 0.5 * (d0 + d1)
    return min(cands, key=lambda s: (round(abs(0.5 * (s.depth_from + s.depth_to) - mid), 6), -len(s.sm)))


def _is_ismn(path: Path) -> bool:
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(n.endswith(".stm") for n in z.namelist())
    return path.is_dir() and next(path.rglob("*.stm"), None) is not None


def load_stations(path, *, depth_m=(0.0, 0.05), good_flags=("G",), variable="soil_moisture",
                  cache_dir=None) -> list[Station]:
    """Stations with soil moisture in the layer ``depth_m`` (m) from ISMN data or plain CSV.

    Parameters
    ----------
    path : ISMN folder or zip archive (``*.stm`` files), a CSV file, or a folder of CSV files.
    depth_m : (from, to) in m; a sensor is used if its layer lies inside.
    good_flags : quality flags kept (ISMN: "G").
    variable : ISMN variable name.
    cache_dir : where the ``ismn`` package writes its metadata (default: temporary).

    Returns
    -------
    list of Station, sorted by network then name (series may be empty: no good value).
    """
    path = Path(path)
    d0, d1 = _check_depth(depth_m)
    if not path.exists():
        raise ValueError(f"in situ path {path} does not exist")
    if _is_ismn(path):
        stations = _load_ismn(path, d0, d1, tuple(good_flags), variable, cache_dir)
    elif path.is_file() and path.suffix.lower() == ".csv":
        stations = _load_csv([path], d0, d1, tuple(good_flags))
    elif path.is_dir() and (files := sorted(path.rglob("*.csv"))):
        files = [f for f in files if not f.name.endswith("_static_variables.csv")]
        stations = _load_csv(files, d0, d1, tuple(good_flags))
    else:
        raise ValueError(f"{path}: neither ISMN data (*.stm, folder or zip) nor CSV station files")
    for s in stations:
        if s.sm.empty:
            log.warning("station %s: no good-quality values (flags %s) out of %d", s.key,
                        ",".join(good_flags), s.n_raw)
    log.info("loaded %d stations with a sensor in %.3f-%.3f m from %s", len(stations), d0, d1, path)
    return sorted(stations, key=lambda s: (s.network, s.name))


def _load_ismn(path, d0, d1, good_flags, variable, cache_dir) -> list[Station]:
    from ismn.interface import ISMN_Interface

    with contextlib.ExitStack() as stack:
        if cache_dir is None:
            cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="smda_ismn_"))
        cache = Path(cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        chatter = io.StringIO()
        with contextlib.redirect_stdout(chatter):   # the package prints its progress
            iface = ISMN_Interface(str(path), meta_path=str(cache / "python_metadata"),
                                   temp_root=str(cache / "unzipped"))
        log.debug("ismn: %s", chatter.getvalue().strip())
        stations = []
        try:
            for net in iface.networks.values():
                for st in net.stations.values():
                    cands = []
                    for sensor in st.sensors.values():
                        if sensor.variable != variable:
                            continue
                        a, b = float(sensor.depth.start), float(sensor.depth.end)
                        if not _inside(a, b, d0, d1):
                            continue
                        data = sensor.read_data()
                        col = variable
                        flags = data.get(f"{col}_flag")
                        sm = _good(data[col], flags, good_flags)
                        sm.index = _utc(sm.index)
                        sm.name = "soil_moisture"
                        cands.append(Station(st.name, net.name, float(st.lat), float(st.lon), a, b,
                                             sm.sort_index(), str(sensor.instrument), int(len(data)),
                                             str(getattr(sensor.filehandler, "file_path", ""))))
                    if cands:
                        stations.append(_pick(cands, d0, d1))
                    else:
                        log.info("station %s/%s: no %s sensor inside %.3f-%.3f m", net.name, st.name,
                                 variable, d0, d1)
        finally:
            iface.close_files()
    return stations


def _load_csv(files, d0, d1, good_flags) -> list[Station]:
    frames = []
    for f in files:
        df = pd.read_csv(f, dtype={"station": str, "network": str, "flag": str})
        missing = [c for c in CSV_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{f}: missing CSV column(s) {', '.join(missing)}; required: {', '.join(CSV_COLUMNS)}"
                             " (optional: flag)")
        df["source"] = str(f)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    sm = pd.to_numeric(df["soil_moisture"], errors="coerce")
    if sm.max() > 1.0:
        raise ValueError(f"CSV soil_moisture must be m3/m3 (0..1), found values up to {sm.max():g} "
                         "(percent?)")
    if (df["depth_from_m"] < 0).any() or (df["depth_to_m"] < df["depth_from_m"]).any():
        raise ValueError("CSV depths must satisfy 0 <= depth_from_m <= depth_to_m (m)")
    if ((df["lat"].abs() > 90) | (df["lon"].abs() > 180)).any():
        raise ValueError("CSV lat must be in [-90, 90] and lon in [-180, 180] degrees")
    try:
        df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as err:
        raise ValueError(f"CSV time column is not ISO 8601: {err}") from None
    stations = []
    for (net, name), g in df.groupby(["network", "station"], sort=True):
        cands = []
        for (a, b), gs in g.groupby(["depth_from_m", "depth_to_m"]):
            if not _inside(a, b, d0, d1):
                continue
            flags = gs["flag"].fillna("") if "flag" in gs.columns else None
            s = _good(gs["soil_moisture"], flags, good_flags)
            s.index = pd.DatetimeIndex(gs.loc[s.index, "time"])
            s = s.sort_index()
            s = s[~s.index.duplicated()]
            s.name = "soil_moisture"
            lat, lon = float(gs["lat"].iloc[0]), float(gs["lon"].iloc[0])
            cands.append(Station(str(name), str(net), lat, lon, float(a), float(b), s, "", len(gs),
                                 str(gs["source"].iloc[0])))
        if cands:
            stations.append(_pick(cands, d0, d1))
        else:
            log.info("station %s/%s: no sensor inside %.3f-%.3f m", net, name, d0, d1)
    return stations


def write_csv(stations, path) -> Path:
    """Write stations in the plain CSV format (all values flagged "G"); returns the path."""
    rows = []
    for s in stations:
        t = s.sm.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(pd.DataFrame({"station": s.name, "network": s.network, "lat": s.lat, "lon": s.lon,
                                  "depth_from_m": s.depth_from, "depth_to_m": s.depth_to, "time": t,
                                  "soil_moisture": s.sm.to_numpy(), "flag": "G"}))
    path = Path(path)
    pd.concat(rows, ignore_index=True).to_csv(path, index=False, float_format="%.10g")
    return path


def station_summary(stations) -> pd.DataFrame:
    """One row per station: network, station, lat, lon, depths (m), n good values, first/last time."""
    return pd.DataFrame([
        {"network": s.network, "station": s.name, "lat": s.lat, "lon": s.lon, "depth_from_m": s.depth_from,
         "depth_to_m": s.depth_to, "instrument": s.instrument, "n_good": len(s.sm), "n_raw": s.n_raw,
         "first": s.sm.index.min() if len(s.sm) else pd.NaT, "last": s.sm.index.max() if len(s.sm) else pd.NaT}
        for s in stations])


__all__ = ["Station", "load_stations", "write_csv", "station_summary", "CSV_COLUMNS"]
