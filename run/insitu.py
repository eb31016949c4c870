"""In situ soil moisture stations for validation: ISMN archives and a plain CSV format.

ISMN input (Dorigo et al. 2011, doi:10.5194/hess-15-1675-2011; 2021, doi:10.5194/hess-25-5749-2021)
is read with the ``ismn`` package (TU Wien): "header+values" and "CEOP" (ceop_sep) formats, as an
unpacked folder or a zip archive as downloaded. The package's metadata index (slow to build for a
large archive) is kept in ``cache_dir``, never next to the data (read-only archives work), and reused
by later calls: default ``$SMDA_CACHE_DIR/ismn/<archive name>-<hash>`` (``SMDA_CACHE_DIR`` defaults to
``$XDG_CACHE_HOME/smda``, else ``~/.cache/smda``); the hash covers the archive's absolute path and the
modification times of it and its top-level entries, so a replaced download gets a new index. The
package's progress output and INFO messages go to smda's DEBUG log.

Plain CSV (one or many files; a folder is searched for ``*.csv``), one row per measurement:

    station        station name (str)
    network        network name (str)
    lat, lon       station latitude and longitude, degrees north / east (WGS84)
    depth_from_m   top of the sensor's layer below the surface, m (>= 0)
    depth_to_m     bottom of the sensor's layer, m (>= depth_from_m)
    time           ISO 8601 time stamp; UTC unless it carries an offset
    soil_moisture  volumetric soil moisture, m3/m3 (0..1; NaN or empty for missing)
    flag           optional quality flag: ISMN convention, "G" good (column absent: all good)
    sensor         optional sensor name (str): several sensors at one depth (default: one per depth)
    landcover      optional land cover class (str), for land-cover strata
    frm_class      optional FRM representativeness class (str), see ``frm_classes``

Selection, for both formats: only values whose flag is in ``good_flags`` (default "G", the ISMN
"good" flag; "D.." dubious, "C.." exceeding plausible range, "M" missing, "U" unknown are dropped),
only values in [0, 1] m3/m3, only sensors whose layer lies inside ``depth_m`` (surface 0-0.05 m;
root zone e.g. 0-1 m; a cosmic-ray probe's layer is its footprint depth, e.g. 0-0.19 m) with
tolerance 1 mm, and with ``frm_classes`` only sensors of those FRM classes (ISMN metadata
``frm_class``, e.g. "representative", "very representative"; a sensor without the field is
"undeducible"). Several sensors of a station in the layer (``sensors``):

* "best": one sensor, chosen on the validation ``period``: sensors with good values in the period
  first, then the mid depth closest to the layer's (to 1 cm), then the most good values in the period
  (a sensor that ended before the period is not chosen over one that covers it);
* "each": every sensor validated as its own station (``Station.sensor`` names it);
* "mean": the mean of the sensors' good values at each time (times where any has one).

Stations with no good value are kept with an empty series, so that validation reports them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

CSV_COLUMNS = ("station", "network", "lat", "lon", "depth_from_m", "depth_to_m", "time", "soil_moisture")
DEPTH_TOL_M = 1e-3
SENSOR_MODES = ("best", "each", "mean")


@dataclass
class Station:
    """One in situ sensor: soil moisture ``sm`` (m3/m3) as a pandas Series with a UTC index.

    depth_from, depth_to: m below the surface; lat, lon: degrees. ``n_raw`` counts the values
    before quality selection; ``instrument`` and ``source`` (file) are informative; ``sensor`` names
    the sensor when a station's sensors are validated separately; ``landcover`` and ``frm_class``
    come from the ISMN metadata (CCI land cover 2010) or the CSV columns.
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
    sensor: str = ""
    landcover: str = ""
    frm_class: str = ""

    @property
    def key(self) -> str:
        return f"{self.network}/{self.name}" + (f"/{self.sensor}" if self.sensor else "")

    @property
    def label(self) -> str:
        """Sensor description: instrument and layer (m)."""
        return f"{self.instrument or 'sensor'} {self.depth_from:g}-{self.depth_to:g} m"


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


def _utc_period(period):
    if period is None:
        return None
    t0, t1 = (pd.Timestamp(t) for t in period)
    t0, t1 = (t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC") for t in (t0, t1))
    if t1 < t0:
        raise ValueError(f"period must be (start, end) with start <= end, got {period!r}")
    return t0, t1


def _in_period(s: Station, period) -> int:
    if period is None:
        return len(s.sm)
    return int(((s.sm.index >= period[0]) & (s.sm.index <= period[1])).sum())


def _select(cands, d0, d1, period, mode) -> list[Station]:
    """The station(s) validated from the sensors ``cands`` of one station in the layer (see the module docstring)."""
    if mode == "each":
        labels = [c.label for c in cands]
        for k, c in enumerate(cands):
            c.sensor = c.label if labels.count(c.label) == 1 else f"{c.label} #{labels[:k + 1].count(c.label)}"
        return cands
    if mode == "mean" and len(cands) > 1:
        sm = pd.concat([c.sm for c in cands], axis=1).mean(axis=1).rename("soil_moisture")
        first = cands[0]
        return [Station(first.name, first.network, first.lat, first.lon, min(c.depth_from for c in cands),
                        max(c.depth_to for c in cands), sm, "+".join(sorted({c.instrument for c in cands})),
                        sum(c.n_raw for c in cands), first.source, f"mean of {len(cands)} sensors", first.landcover,
                        first.frm_class)]
    mid = 0.5 * (d0 + d1)

    def rank(s):
        n = _in_period(s, period)
        return (n == 0, round(abs(0.5 * (s.depth_from + s.depth_to) - mid), 2), -n)

    best = min(cands, key=rank)
    if len(cands) > 1:
        log.debug("station %s: sensor %s chosen among %s", best.key, best.label, ", ".join(c.label for c in cands))
    return [best]


def default_cache_dir(path) -> Path:
    """The metadata cache folder of an ISMN archive (see the module docstring)."""
    path = Path(path).resolve()
    root = Path(os.environ.get("SMDA_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "smda")
    stamp = [str(path), str(path.stat().st_mtime_ns)]
    if path.is_dir():
        stamp += sorted(f"{p.name}:{p.stat().st_mtime_ns}" for p in path.iterdir())
    digest = hashlib.sha1("|".join(stamp).encode()).hexdigest()[:12]
    return root / "ismn" / f"{path.stem}-{digest}"


def _is_ismn(path: Path) -> bool:
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(n.endswith(".stm") for n in z.namelist())
    return path.is_dir() and next(path.rglob("*.stm"), None) is not None


def load_stations(path, *, depth_m=(0.0, 0.05), good_flags=("G",), variable="soil_moisture",
                  cache_dir=None, period=None, sensors="best", frm_classes=None) -> list[Station]:
    """Stations with soil moisture in the layer ``depth_m`` (m) from ISMN data or plain CSV.

    Parameters
    ----------
    path : ISMN folder or zip archive (``*.stm`` files), a CSV file, or a folder of CSV files.
    depth_m : (from, to) in m; a sensor is used if its layer lies inside.
    good_flags : quality flags kept (ISMN: "G").
    variable : ISMN variable name.
    cache_dir : where the ``ismn`` package's metadata index is kept (default :func:`default_cache_dir`).
    period : (start, end) of the validation (UTC unless given with an offset), for the sensor choice.
    sensors : "best", "each" or "mean" (see the module docstring).
    frm_classes : FRM classes kept (None: all sensors).

    Returns
    -------
    list of Station, sorted by network, name and sensor (series may be empty: no good value).
    """
    path = Path(path)
    d0, d1 = _check_depth(depth_m)
    if sensors not in SENSOR_MODES:
        raise ValueError(f"sensors must be one of {', '.join(SENSOR_MODES)}, got {sensors!r}")
    period = _utc_period(period)
    if not path.exists():
        raise ValueError(f"in situ path {path} does not exist")
    select = dict(d0=d0, d1=d1, good_flags=tuple(good_flags), period=period, mode=sensors,
                  frm=None if frm_classes is None else set(frm_classes))
    if _is_ismn(path):
        stations = _load_ismn(path, variable=variable, cache_dir=cache_dir, **select)
    elif path.is_file() and path.suffix.lower() == ".csv":
        stations = _load_csv([path], **select)
    elif path.is_dir() and (files := sorted(path.rglob("*.csv"))):
        files = [f for f in files if not f.name.endswith("_static_variables.csv")]
        stations = _load_csv(files, **select)
    else:
        raise ValueError(f"{path}: neither ISMN data (*.stm, folder or zip) nor CSV station files")
    for s in stations:
        if s.sm.empty:
            log.warning("station %s: no good-quality values (flags %s) out of %d", s.key,
                        ",".join(good_flags), s.n_raw)
    log.info("loaded %d stations with a sensor in %.3f-%.3f m from %s", len(stations), d0, d1, path)
    return sorted(stations, key=lambda s: (s.network, s.name, s.sensor))


def _meta(sensor, name):
    """A sensor's ISMN metadata value ``name`` (str), or "" where absent."""
    try:
        v = sensor.metadata[name].val
    except (KeyError, AttributeError, IndexError):
        return ""
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


ISMN_LOGGERS = ("ismn", "ismn_meta_collector")


def _demote(record: logging.LogRecord) -> bool:
    """Logging filter: the ismn package's INFO messages become DEBUG, shown only when smda logs DEBUG."""
    if record.levelno <= logging.INFO:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return log.isEnabledFor(logging.DEBUG)
    return True


@contextlib.contextmanager
def _quiet_ismn():
    """The ismn package's own stream handler removed, its INFO messages and progress output (stdout,
    stderr) sent to smda's DEBUG log."""
    loggers = [logging.getLogger(name) for name in ISMN_LOGGERS]
    for logger in loggers:
        for h in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
            logger.removeHandler(h)
        logger.addFilter(_demote)
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(_demote)
        if chatter.getvalue().strip():
            log.debug("ismn: %s", chatter.getvalue().strip())


def _load_ismn(path, *, d0, d1, good_flags, period, mode, frm, variable, cache_dir) -> list[Station]:
    from ismn.interface import ISMN_Interface

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(path)
    cache.mkdir(parents=True, exist_ok=True)
    reuse = (cache / "python_metadata").is_dir()
    with _quiet_ismn():
        iface = ISMN_Interface(str(path), meta_path=str(cache / "python_metadata"), temp_root=str(cache / "unzipped"))
    log.info("ISMN metadata index %s %s", "reused from" if reuse else "built in", cache)
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
                    frm_class = _meta(sensor, "frm_class") or "undeducible"
                    if frm is not None and frm_class not in frm:
                        log.info("station %s/%s: sensor %s skipped, FRM class %r", net.name, st.name, sensor.name,
                                 frm_class)
                        continue
                    with _quiet_ismn():
                        data = sensor.read_data()
                    sm = _good(data[variable], data.get(f"{variable}_flag"), good_flags)
                    sm.index = _utc(sm.index)
                    sm.name = "soil_moisture"
                    lc = _meta(sensor, "lc_2010")
                    cands.append(Station(st.name, net.name, float(st.lat), float(st.lon), a, b, sm.sort_index(),
                                         str(sensor.instrument), int(len(data)),
                                         str(getattr(sensor.filehandler, "file_path", "")),
                                         landcover=f"CCI {lc}" if lc else "", frm_class=frm_class))
                if cands:
                    stations += _select(cands, d0, d1, period, mode)
                else:
                    log.info("station %s/%s: no %s sensor inside %.3f-%.3f m", net.name, st.name, variable, d0, d1)
    finally:
        iface.close_files()
    return stations


def _load_csv(files, *, d0, d1, good_flags, period, mode, frm) -> list[Station]:
    frames = []
    for f in files:
        df = pd.read_csv(f, dtype={c: str for c in ("station", "network", "flag", "landcover", "frm_class", "sensor")})
        missing = [c for c in CSV_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{f}: missing CSV column(s) {', '.join(missing)}; required: {', '.join(CSV_COLUMNS)}"
                             " (optional: flag, sensor, landcover, frm_class)")
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
    for c in ("landcover", "frm_class", "sensor"):
        df[c] = df[c].fillna("").astype(str) if c in df.columns else ""
    stations = []
    for (net, name), g in df.groupby(["network", "station"], sort=True):
        cands = []
        for (a, b, instrument), gs in g.groupby(["depth_from_m", "depth_to_m", "sensor"]):
            if not _inside(a, b, d0, d1):
                continue
            frm_class = str(gs["frm_class"].iloc[0]) or "undeducible"
            if frm is not None and frm_class not in frm:
                log.info("station %s/%s: sensor %g-%g m skipped, FRM class %r", net, name, a, b, frm_class)
                continue
            flags = gs["flag"].fillna("") if "flag" in gs.columns else None
            s = _good(gs["soil_moisture"], flags, good_flags)
            s.index = pd.DatetimeIndex(gs.loc[s.index, "time"])
            s = s.sort_index()
            s = s[~s.index.duplicated()]
            s.name = "soil_moisture"
            lat, lon = float(gs["lat"].iloc[0]), float(gs["lon"].iloc[0])
            cands.append(Station(str(name), str(net), lat, lon, float(a), float(b), s, instrument, len(gs),
                                 str(gs["source"].iloc[0]), landcover=str(gs["landcover"].iloc[0]), frm_class=frm_class))
        if cands:
            stations += _select(cands, d0, d1, period, mode)
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
                                  "soil_moisture": s.sm.to_numpy(), "flag": "G", "landcover": s.landcover}))
    path = Path(path)
    pd.concat(rows, ignore_index=True).to_csv(path, index=False, float_format="%.10g")
    return path


def station_summary(stations) -> pd.DataFrame:
    """One row per station: network, station, lat, lon, depths (m), n good values, first/last time."""
    return pd.DataFrame([
        {"network": s.network, "station": s.name, "sensor": s.sensor, "lat": s.lat, "lon": s.lon,
         "depth_from_m": s.depth_from,
         "depth_to_m": s.depth_to, "instrument": s.instrument, "n_good": len(s.sm), "n_raw": s.n_raw,
         "first": s.sm.index.min() if len(s.sm) else pd.NaT, "last": s.sm.index.max() if len(s.sm) else pd.NaT}
        for s in stations])


__all__ = ["Station", "load_stations", "write_csv", "station_summary", "default_cache_dir", "CSV_COLUMNS",
           "SENSOR_MODES"]
