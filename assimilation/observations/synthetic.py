"""Synthetic observations for twin experiments: coarse TB / SM, and 1 km MODIS-like LST and NDVI.

Every random number comes from :mod:`smda.model.streams`, keyed by global indices, so the output is the
same for any domain split and across restarts:

* observation error: ``y = truth + sigma e``, ``e = normal(seed, "synthetic_obs", global pixel index
  (row * n_cols of the pixel grid + col), stream, step, draw)``, with ``draw`` derived from the kind,
  polarization and angle (:func:`variable_draw`) and ``stream`` the source's number (each source of a
  case has its own errors); sigma from SCIENCE.md section 4 (TB 4 K, SM 0.04 m3/m3). With
  ``error_corr_km`` > 0, ``e`` is instead a unit-variance Gaussian field of that correlation length at the
  pixel centre (the lattice field of the clouds below, purpose "synthetic_obs.correlated"), as the errors
  of fine retrievals (e.g. 3 km SMAP/Sentinel-1) share their ancillary data over tens of km. SM values
  are not clipped, so the error statistics are exactly as configured.
* gaps: a pixel is missing at a step when ``uniform(seed, "synthetic_obs.gap", pixel, stream, step, 0)
  < gap_fraction`` (all its variables at once, like a lost scene).
* revisit (:func:`overpasses`): a pure function of longitude and date. The day ``d`` (days since
  2000-01-01, local solar date) of a pixel in longitude band ``b = floor((lon + 180) / band_deg)``
  has an AM (PM) pass when ``(d + b * phase_step) mod cycle_days`` is in ``am_days`` (``pm_days``).
  The defaults (8-day cycle as SMAP's exact repeat, passes on 3 of 8 days, gaps of 2-3 days) give
  AM and PM overpasses every 2-3 days. The UTC time is local solar time minus lon / 15 h
  (06:00 descending and 18:00 ascending local time for SMAP).
* MODIS-like LST (:func:`synthetic_lst`): the model's skin temperature at the Terra (10:30) or Aqua
  (13:30 local solar time, :func:`modis_overpass_utc`) overpass plus N(0, noise_std_k^2) sensor
  noise; clouds are NaN. The cloud field is a spatially coherent Gaussian field: standard normals
  on a global lattice of spacing ``cloud_scale_km`` (keyed by lattice point, sensor and step),
  blended with smoothstep weights w_k and divided by sqrt(sum w_k^2) so that it stays N(0, 1) at
  every point; a cell is cloudy where the field is below Phi^-1(cloud_fraction), so the expected
  cloud fraction is exactly the configured one and clouds have a scale of tens of km.
  Terra and Aqua clouds are independent (a simplification). Where the truth rains during the step ending
  at the overpass (``precip`` > 0) the cell is under cloud as well: MODIS retrieves LST in clear sky only
  (Wan 2008); without this, 16% of the default twin's "clear" LST lay under its storms (shortwave median
  608 W m-2 against 781 W m-2 rain-free), values no satellite would deliver.
* NDVI (:func:`synthetic_ndvi`): the truth plus N(0, noise_std^2), clipped to [-1, 1]; with
  ``composite_days=16`` the noise is constant over the MOD13 16-day periods (doy 1, 17, 33, ...).

References: Entekhabi et al. (2010) SMAP mission, doi:10.1109/JPROC.2010.2043918 (6 AM / 6 PM
overpasses, 8-day repeat); Wan (2008) MODIS LST, doi:10.1016/j.rse.2006.06.026.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from smda.assimilation.observations.table import ObsTable
from smda.jit import kernel
from smda.model.grid import GRIDS, M01
from smda.model.streams import normal, purpose_id, uniform

EPOCH = np.datetime64("2000-01-01", "D")
ORBITS = ("am", "pm")
MODIS_LOCAL_HOUR = {"terra": 10.5, "aqua": 13.5}
_KINDS = {"tb": 0, "sm": 1}
_POLS = {"H": 0, "V": 1, "": 2}


@dataclass(frozen=True, kw_only=True)
class RevisitPattern:
    """Revisit of a sun-synchronous radiometer (see the module docstring)."""

    cycle_days: int = 8
    am_days: tuple = (0, 3, 5)
    pm_days: tuple = (1, 4, 6)
    am_local_hour: float = 6.0
    pm_local_hour: float = 18.0
    band_deg: float = 10.0
    phase_step: int = 3

    def __post_init__(self):
        if self.cycle_days < 1:
            raise ValueError(f"revisit cycle_days must be >= 1, got {self.cycle_days}")
        for name in ("am_days", "pm_days"):
            days = getattr(self, name)
            if any(d < 0 or d >= self.cycle_days for d in days) or len(set(days)) != len(days):
                raise ValueError(f"revisit {name} must be distinct days in [0, {self.cycle_days}), got {days}")
        for name in ("am_local_hour", "pm_local_hour"):
            if not 0 <= getattr(self, name) < 24:
                raise ValueError(f"revisit {name} must be in [0, 24) h")
        if self.band_deg <= 0:
            raise ValueError("revisit band_deg must be > 0")


@dataclass(frozen=True, kw_only=True)
class SyntheticObsConfig:
    """Coarse observation settings: errors (K, m3/m3), gap probability, footprint, source name; ``stream``
    (the source's number: independent noise and gaps for each source of a case) and ``error_corr_km`` (spatial
    correlation length of the errors, km; 0: independent from pixel to pixel)."""

    seed: int
    footprint: str = "M36"
    fov_km: float = 20.0
    tb_error_std: float = 4.0
    sm_error_std: float = 0.04
    gap_fraction: float = 0.1
    source: str = "synthetic"
    stream: int = 0
    error_corr_km: float = 0.0

    def __post_init__(self):
        if self.tb_error_std < 0 or self.sm_error_std < 0:
            raise ValueError("synthetic observation error std must be >= 0")
        if not 0 <= self.gap_fraction < 1:
            raise ValueError(f"gap_fraction must be in [0, 1), got {self.gap_fraction}")
        if self.footprint != "gauss" and self.footprint not in GRIDS:
            raise ValueError(f"footprint {self.footprint!r}; valid: gauss, {', '.join(GRIDS)}")
        if self.stream < 0 or self.error_corr_km < 0:
            raise ValueError("synthetic observation stream and error_corr_km must be >= 0")


@dataclass(frozen=True, kw_only=True)
class LSTConfig:
    """MODIS-like LST: sensor noise (K), cloud fraction (0-1) and cloud scale (km)."""

    seed: int
    noise_std_k: float = 1.0
    cloud_fraction: float = 0.3
    cloud_scale_km: float = 30.0

    def __post_init__(self):
        if self.noise_std_k < 0:
            raise ValueError("LST noise_std_k must be >= 0")
        if not 0 <= self.cloud_fraction <= 1:
            raise ValueError(f"cloud_fraction must be in [0, 1], got {self.cloud_fraction}")
        if self.cloud_scale_km < 1:
            raise ValueError("cloud_scale_km must be >= 1 km")


@dataclass(frozen=True, kw_only=True)
class NDVIConfig:
    """Synthetic NDVI: noise std (NDVI units) and composite period (days; 0 = daily)."""

    seed: int
    noise_std: float = 0.02
    composite_days: int = 16

    def __post_init__(self):
        if self.noise_std < 0 or self.composite_days < 0:
            raise ValueError("NDVI noise_std and composite_days must be >= 0")


# --------------------------------------------------------------------------------------------
# revisit
# --------------------------------------------------------------------------------------------
def _local_to_utc(date, local_hour, lon):
    """UTC datetime64[s] of a local solar time on a local date at longitude lon (deg)."""
    secs = np.round((local_hour - np.asarray(lon, float) / 15.0) * 3600.0).astype(np.int64)
    return np.datetime64(date, "D").astype("datetime64[s]") + secs.astype("timedelta64[s]")


def overpasses(lon_deg, date, orbit: str, pattern: RevisitPattern = RevisitPattern()):
    """Whether each pixel has an overpass of ``orbit`` ("am"/"pm") on local date ``date``, and when.

    lon_deg : (n,) pixel-centre longitudes (deg). Returns (covered bool (n,), time datetime64[s]
    (n,), NaT where not covered).
    """
    if orbit not in ORBITS:
        raise ValueError(f"orbit must be one of {ORBITS}, got {orbit!r}")
    lon = np.asarray(lon_deg, float)
    if np.any(~np.isfinite(lon)) or np.any(np.abs(lon) > 180):
        raise ValueError("lon_deg must be finite longitudes in [-180, 180]")
    day = (np.datetime64(date, "D") - EPOCH).astype(np.int64)
    band = np.floor((lon + 180.0) / pattern.band_deg).astype(np.int64)
    k = (day + band * pattern.phase_step) % pattern.cycle_days
    days = pattern.am_days if orbit == "am" else pattern.pm_days
    hour = pattern.am_local_hour if orbit == "am" else pattern.pm_local_hour
    covered = np.isin(k, np.asarray(days, np.int64))
    time = _local_to_utc(date, hour, lon)
    time = np.where(covered, time, np.datetime64("NaT"))
    return covered, time


# --------------------------------------------------------------------------------------------
# coarse observations
# --------------------------------------------------------------------------------------------
def variable_draw(kind: str, pol: str, angle_deg: float) -> int:
    """Stream draw index of one observed variable (kind, polarization, angle to 0.1 deg)."""
    if kind not in _KINDS or pol not in _POLS:
        raise ValueError(f"variable ({kind!r}, {pol!r}); kind in {tuple(_KINDS)}, pol in {tuple(_POLS)}")
    if not 0 <= angle_deg < 90:
        raise ValueError(f"incidence angle must be in [0, 90) deg, got {angle_deg}")
    return _KINDS[kind] * 4096 + _POLS[pol] * 1024 + int(round(angle_deg * 10))


@kernel
def _keyed(seed, pid, cells, member, steps, draw, gaussian, out):
    for i in range(cells.shape[0]):
        if gaussian:
            out[i] = normal(seed, pid, cells[i], member, steps[i], draw)
        else:
            out[i] = uniform(seed, pid, cells[i], member, steps[i], draw)


def _stream(seed, purpose, cells, steps, draw=0, member=0, gaussian=True):
    cells = np.ascontiguousarray(cells, np.int64).ravel()
    steps = np.ascontiguousarray(np.broadcast_to(np.asarray(steps, np.int64), cells.shape))
    out = np.empty(cells.shape[0])
    _keyed(int(seed), purpose_id(purpose), cells, int(member), steps, int(draw), gaussian, out)
    return out


def synthetic_coarse_obs(truth: Mapping, rows, cols, times, step, config: SyntheticObsConfig,
                         grid_name: str = "M36") -> ObsTable:
    """Noisy coarse observations of the true pixel values, with random gaps.

    truth : mapping (kind, pol, angle_deg) -> (n_pix,) true pixel values, e.g. ("tb", "H", 40.0)
        in K (footprint-aggregated truth TB) or ("sm", "", 0.0) in m3/m3; NaN = no observation.
    rows, cols : (n_pix,) pixel indices on grid ``grid_name`` (the pixels with an overpass).
    times : (n_pix,) datetime64 UTC observation times; step : model step index, scalar or (n_pix,).
    Returns an ObsTable (one row per observed pixel and variable, pixels in input order) with
    footprint ``config.footprint`` ("gauss" rows are centred on the pixel centre).
    """
    g = GRIDS.get(grid_name)
    if g is None:
        raise ValueError(f"grid_name {grid_name!r}; valid: {', '.join(GRIDS)}")
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    n = rows.shape[0]
    times = np.broadcast_to(np.asarray(times, "datetime64[s]"), (n,))
    steps = np.broadcast_to(np.asarray(step, np.int64), (n,))
    if rows.shape != (n,) or cols.shape != (n,):
        raise ValueError("rows and cols must be 1-D arrays of equal length")
    if n and (rows.min() < 0 or rows.max() >= g.n_rows or cols.min() < 0 or cols.max() >= g.n_cols):
        raise ValueError(f"pixel rows/cols outside the {grid_name} grid")
    pixel = rows * g.n_cols + cols
    gap = _stream(config.seed, "synthetic_obs.gap", pixel, steps, member=config.stream, gaussian=False) < config.gap_fraction
    x, y = g.xy(rows, cols)
    lat, lon = g.latlon(rows, cols)
    tables = []
    for key in sorted(truth, key=lambda k: variable_draw(*k)):
        kind, pol, angle = key
        draw = variable_draw(kind, pol, angle)
        val = np.asarray(truth[key], float)
        if val.shape != (n,):
            raise ValueError(f"truth[{key!r}] has shape {val.shape}, expected ({n},)")
        sigma = config.tb_error_std if kind == "tb" else config.sm_error_std
        noisy = val + sigma * _error_draws(config, pixel, x, y, steps, draw)
        keep = ~gap & np.isfinite(val)
        tables.append((np.flatnonzero(keep), ObsTable(
            time=times[keep], x=x[keep], y=y[keep], lat=lat[keep], lon=lon[keep], kind=kind, pol=pol,
            angle_deg=angle, value=noisy[keep], error_std=sigma, flags=0, footprint=config.footprint,
            row=rows[keep], col=cols[keep], fov_km=config.fov_km if config.footprint == "gauss" else 0.0,
            source=config.source, qc=0)))
    if not tables:
        return ObsTable.empty()
    table = ObsTable.concat([t for _, t in tables])
    pix = np.concatenate([i for i, _ in tables])
    return table.select(np.argsort(pix, kind="stable"))


def _error_draws(config: SyntheticObsConfig, pixel, x, y, steps, draw):
    """Standard normal observation errors: independent per pixel, or (``error_corr_km`` > 0) a unit-variance
    Gaussian field of that correlation length (:func:`_lattice_field`), keyed by position, so any rank count
    and any grid give the same error at the same place and step."""
    if config.error_corr_km <= 0:
        return _stream(config.seed, "synthetic_obs", pixel, steps, draw=draw, member=config.stream)
    out = np.empty(pixel.size)
    for k in np.unique(steps):
        sel = np.flatnonzero(steps == k)
        z = np.empty(sel.size)
        _lattice_field(int(config.seed), purpose_id("synthetic_obs.correlated"), np.ascontiguousarray(x[sel]),
                       np.ascontiguousarray(y[sel]), config.error_corr_km * 1000.0, int(config.stream), int(k),
                       int(draw), M01.x0, M01.y0, z)
        out[sel] = z
    return out


# --------------------------------------------------------------------------------------------
# 1 km predictors
# --------------------------------------------------------------------------------------------
def modis_overpass_utc(lon_deg, date, sensor: str = "terra"):
    """UTC datetime64[s] of the Terra (10:30) / Aqua (13:30 local solar time) overpass per cell."""
    if sensor not in MODIS_LOCAL_HOUR:
        raise ValueError(f"sensor must be one of {tuple(MODIS_LOCAL_HOUR)}, got {sensor!r}")
    return _local_to_utc(date, MODIS_LOCAL_HOUR[sensor], lon_deg)


@kernel
def _lattice_field(seed, pid, x, y, spacing, member, step, draw, x0, y0, out):
    """Unit-variance Gaussian field from lattice normals (spacing m) blended with smoothstep weights: the
    correlation falls from 1 at a lattice point to 0 at one spacing (clouds, correlated observation errors)."""
    n_lat = 1 << 20
    for k in range(x.shape[0]):
        u = (x[k] - x0) / spacing
        v = (y0 - y[k]) / spacing
        i = int(np.floor(u))
        j = int(np.floor(v))
        tu = u - i
        tv = v - j
        tu = tu * tu * (3.0 - 2.0 * tu)
        tv = tv * tv * (3.0 - 2.0 * tv)
        acc = 0.0
        wsum2 = 0.0
        for dj in range(2):
            wv = tv if dj else 1.0 - tv
            for di in range(2):
                wu = tu if di else 1.0 - tu
                w = wu * wv
                acc += w * normal(seed, pid, (j + dj) * n_lat + (i + di), member, step, draw)
                wsum2 += w * w
        out[k] = acc / np.sqrt(wsum2)


def _broadcast_inputs(field, x, y, global_cells):
    field = np.asarray(field, float)
    try:
        xb = np.broadcast_to(np.asarray(x, float), field.shape).ravel()
        yb = np.broadcast_to(np.asarray(y, float), field.shape).ravel()
        cb = np.broadcast_to(np.asarray(global_cells, np.int64), field.shape).ravel()
    except ValueError:
        raise ValueError(f"x, y and global_cells must broadcast to the field shape {field.shape}") from None
    return field, np.ascontiguousarray(xb), np.ascontiguousarray(yb), cb


def cloud_mask(x, y, step, config: LSTConfig, sensor: str = "terra"):
    """True where cloudy; x, y: EPSG:6933 coordinates (m) of the cells, any (broadcast) shape."""
    if sensor not in MODIS_LOCAL_HOUR:
        raise ValueError(f"sensor must be one of {tuple(MODIS_LOCAL_HOUR)}, got {sensor!r}")
    xb, yb = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    z = np.empty(xb.size)
    _lattice_field(int(config.seed), purpose_id("synthetic_lst.cloud"), np.ascontiguousarray(xb).ravel(),
                   np.ascontiguousarray(yb).ravel(), config.cloud_scale_km * 1000.0,
                   list(MODIS_LOCAL_HOUR).index(sensor), int(step), 0, M01.x0, M01.y0, z)
    if config.cloud_fraction <= 0:
        return np.zeros(xb.shape, bool)
    return (z < ndtri(config.cloud_fraction)).reshape(xb.shape)


def synthetic_lst(skin_temperature, x, y, global_cells, step, config: LSTConfig, sensor: str = "terra", precip=None):
    """MODIS-like 1 km LST (K): skin temperature + sensor noise, NaN under clouds.

    skin_temperature : (n_cells,) or (nrows, ncols), the truth at the overpass time (K).
    x, y : EPSG:6933 cell-centre coordinates (m) broadcastable to it (e.g. x[None, :], y[:, None]);
    global_cells : global 1 km indices broadcastable to it; step : time step (stream key).
    precip : optional truth precipitation of the step ending at the overpass (kg m-2 s-1), broadcastable to it:
        raining cells are cloudy too.
    """
    ts, xb, yb, cells = _broadcast_inputs(skin_temperature, x, y, global_cells)
    member = list(MODIS_LOCAL_HOUR).index(sensor) if sensor in MODIS_LOCAL_HOUR else -1
    cloudy = cloud_mask(xb, yb, step, config, sensor).reshape(ts.shape)
    if precip is not None:
        cloudy |= np.broadcast_to(np.asarray(precip, float), ts.shape) > 0.0
    noise = _stream(config.seed, "synthetic_lst.noise", cells, step, member=member).reshape(ts.shape)
    lst = ts + config.noise_std_k * noise
    lst[cloudy] = np.nan
    return lst


def synthetic_ndvi(ndvi_truth, global_cells, date, config: NDVIConfig):
    """Observed 1 km NDVI: truth + noise (constant within a composite period), clipped to [-1, 1].

    ndvi_truth : (n_cells,) or (nrows, ncols); global_cells broadcastable to it; date : datetime64.
    """
    nd = np.asarray(ndvi_truth, float)
    try:
        cells = np.broadcast_to(np.asarray(global_cells, np.int64), nd.shape).ravel()
    except ValueError:
        raise ValueError(f"global_cells must broadcast to the NDVI shape {nd.shape}") from None
    d = np.datetime64(date, "D")
    if config.composite_days > 0:
        year = d.astype("datetime64[Y]")
        doy = int((d - year.astype("datetime64[D]")).astype(np.int64))
        step = (year.astype(np.int64) + 1970) * 1000 + doy // config.composite_days
    else:
        step = int((d - EPOCH).astype(np.int64))
    noise = _stream(config.seed, "synthetic_ndvi", cells, step).reshape(nd.shape)
    return np.clip(nd + config.noise_std * noise, -1.0, 1.0)
