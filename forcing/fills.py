"""Documented generators for station forcing variables a site lacks (elevation-aware).

* ``p_surf``: hypsometric equation from mean sea-level pressure p0 = 101325 Pa to the station elevation z::

      p = p0 exp(-g z / (R_d T_v)),   T_v = (T_air + 0.5 Gamma z) (1 + 0.608 q)

  T_v is the virtual temperature of the air column below the station: its mean temperature taken as the
  station air temperature plus half the standard lapse rate Gamma = 6.5 K km-1 times z (the usual
  reduction of station pressure to sea level, here inverted; WMO-No. 8, ch. 3). Synoptic
  changes of the sea-level pressure (a few percent) are not represented.
* ``q_air``: the dewpoint is the day's minimum temperature, ``Td = Tmin - depression`` (FAO-56, Allen
  et al. 1998, eq. 48 and Annex 6: depression 0 K at humid sites, about 2 K in arid ones; Kimball et
  al. 1997, Agric. For. Meteorol. 85, 87-98, show the aridity bias of Td = Tmin), capped by the air
  temperature (RH <= 1); then ``q = q(e_s(Td), p)`` (Bolton 1980).
* ``wind``: 2 m s-1, the FAO-56 (ch. 3) temporary value for missing wind (the global mean of
  about 2 m s-1 at 2 m over land); the value is configurable.
* ``sw_down``: Thornton & Running (1999, Agric. For. Meteorol. 93, 211-228; after Bristow & Campbell 1984):
  a clear-sky transmittance from the optical air mass and the day's vapour pressure, times a cloud
  transmittance from the diurnal temperature range and precipitation occurrence, times the
  top-of-atmosphere irradiance averaged over each record's interval (cos Z the interval mean)::

      SW  = S0 (1 + 0.033 cos(2 pi doy / 365)) <max(cos Z, 0)> Tcs Tf
      Tcs = 0.87^m - 6.1e-5 e,  m = (p / 101325) / max(<cos Z>, 0.05)      (e the day's mean, Pa)
      Tf  = (1 - 0.9 exp(-B DTR^1.5)) (0.75 on days with precipitation, else 1)
      B   = 0.031 + 0.201 exp(-0.185 <DTR>_30d)          (DTR in K; <.>_30d a centred 30-day mean)

  On the real Bondville 1998 record it gives daily means correlated at 0.91 with the measured ones,
  10 % too high on average (Bohn et al. 2013 report such overestimates in humid climates).

Days are local solar days (UTC shifted by longitude / 15 h).

Gaps (:func:`gap_fill`, used by the gridded reader): runs of missing values along time, per grid cell,
follow the station-forcing rule (:mod:`smda.forcing.site`): states and radiation linear in time between
the records either side (the nearest value held at the ends of the series), precipitation set to 0 (no
rain assumed); a run longer than ``max_gap_h`` is not filled but flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smda.constants import GRAVITY, P_STANDARD, R_DRY, vapour_pressure
from smda.forcing import units as U
from smda.forcing.regrid import LAPSE_RATE
from smda.forcing.solar import CLEAR_SKY_TRANSMISSIVITY, clear_sky_irradiance, interval_cos_zenith

FILL_WIND_MS = 2.0  # m s-1, FAO-56 ch. 3
VIRTUAL_FACTOR = 0.608  # 1, T_v = T (1 + 0.608 q): (1 - epsilon) / epsilon
TR_B = (0.031, 0.201, 0.185)  # Thornton & Running (1999) b0, b1, b2
TR_C = 1.5
TR_TAU0 = 0.87  # 1, clear-sky transmittance at nadir and sea level
TR_ALPHA = -6.1e-5  # Pa-1, water-vapour absorption of the clear-sky transmittance
MIN_COS_AIRMASS = 0.05  # the air mass at most 20 (low sun)
WET_DAY_FACTOR = 0.75
SMOOTH_DAYS = 30


def gap_fill(times, values, step_s: float, max_gap_h: float, *, zero: bool = False):
    """Fill missing values (non-finite) of ``values`` (nt, ...) along time (axis 0) on the regular axis ``times`` (nt,).

    Returns ``(filled, missing, too_long, first, last)``: the filled copy (runs longer than ``max_gap_h``,
    or columns without any value, stay missing), and per value (nt, m) whether it was missing, whether its
    run is too long, and the run's first and last record index. Vectorised over columns (no loop over cells).
    """
    v = np.array(values, np.float64).reshape(len(times), -1)
    nt = v.shape[0]
    missing = ~np.isfinite(v)
    idx = np.broadcast_to(np.arange(nt)[:, None], v.shape)
    prev = np.maximum.accumulate(np.where(missing, -1, idx), axis=0)  # last valid record at or before
    nxt = np.minimum.accumulate(np.where(missing, nt, idx)[::-1], axis=0)[::-1]  # first valid at or after
    hours = (nxt - prev - 1) * float(step_s) / 3600.0
    too_long = missing & ((hours > float(max_gap_h)) | ((prev < 0) & (nxt >= nt)))
    fill = missing & ~too_long
    if zero:
        v[fill] = 0.0
    else:
        p, q = np.clip(prev, 0, nt - 1), np.clip(nxt, 0, nt - 1)
        vp, vq = np.take_along_axis(v, p, 0), np.take_along_axis(v, q, 0)
        t = (np.asarray(times, "datetime64[s]") - np.asarray(times, "datetime64[s]")[0]).astype(np.float64)
        span = np.where(q > p, t[q] - t[p], 1.0)
        with np.errstate(invalid="ignore"):
            inner = vp + (t[:, None] - t[p]) / span * (vq - vp)
        v[fill] = np.where(prev < 0, vq, np.where(nxt >= nt, vp, inner))[fill]
    return v.reshape(np.shape(values)), missing, too_long, prev + 1, nxt - 1


def hypsometric_pressure(elevation_m: float, t_air, q_air=0.0):
    """Surface pressure (Pa) at ``elevation_m`` from p0 = 101325 Pa at sea level (see module doc); arrays (n,)."""
    t_column = np.asarray(t_air, np.float64) - 0.5 * LAPSE_RATE * float(elevation_m)
    t_v = t_column * (1.0 + VIRTUAL_FACTOR * np.asarray(q_air, np.float64))
    return P_STANDARD * np.exp(-GRAVITY * float(elevation_m) / (R_DRY * t_v))


def local_days(times, lon: float) -> np.ndarray:
    """Local solar day (days since 1970-01-01) of each time stamp at longitude ``lon`` (deg)."""
    shift = np.timedelta64(int(round(float(lon) / 15.0 * 3600.0)), "s")
    return (np.asarray(times, "datetime64[s]") + shift).astype("datetime64[D]").astype(np.int64)


def _daily(values, days, how):
    s = pd.Series(np.asarray(values, np.float64)).groupby(days)
    return s.transform(how).to_numpy()


def dewpoint_from_tmin(times, t_air, lon: float, depression_k: float = 0.0):
    """Dewpoint (K) per record: the local day's minimum air temperature minus ``depression_k``, at most t_air."""
    tmin = _daily(t_air, local_days(times, lon), "min")
    return np.minimum(tmin - float(depression_k), np.asarray(t_air, np.float64))


def humidity_fill(times, t_air, p_surf, lon: float, depression_k: float = 0.0):
    """Specific humidity (kg/kg) from the daily-minimum dewpoint (see module doc)."""
    return U.q_from_dewpoint(dewpoint_from_tmin(times, t_air, lon, depression_k), p_surf)


def toa_shortwave(times, lat: float, lon: float, dt_s: float):
    """(top-of-atmosphere irradiance on a horizontal surface (W m-2), mean max(cos Z, 0)) over each interval
    ending at ``times``, each (n,)."""
    times = np.asarray(times, "datetime64[s]")
    dt = np.timedelta64(int(round(dt_s)), "s")
    toa, cos_z = np.empty(times.size), np.empty(times.size)
    for i, t in enumerate(times):
        mean, _ = interval_cos_zenith(t - dt, t, t, [lat], [lon], nsub=6)
        doy = (t.astype("datetime64[D]") - t.astype("datetime64[Y]")).astype(int) + 1
        cos_z[i] = mean[0]
        toa[i] = clear_sky_irradiance(doy) / CLEAR_SKY_TRANSMISSIVITY * mean[0]
    return toa, cos_z


def cloud_transmittance(times, t_air, precip, lon: float):
    """Thornton & Running (1999) daily cloud transmittance Tf (0-1) per record (see module doc)."""
    days = local_days(times, lon)
    dtr = pd.Series(np.asarray(t_air, np.float64)).groupby(days).agg(lambda v: v.max() - v.min())
    wet = pd.Series(np.asarray(precip, np.float64)).groupby(days).sum() > 0.0
    mean_dtr = dtr.rolling(SMOOTH_DAYS, center=True, min_periods=1).mean()
    b0, b1, b2 = TR_B
    b = b0 + b1 * np.exp(-b2 * mean_dtr)
    tf = (1.0 - 0.9 * np.exp(-b * dtr**TR_C)) * np.where(wet, WET_DAY_FACTOR, 1.0)
    return tf.reindex(days).to_numpy()


def cloudy_shortwave(times, t_air, precip, q_air, p_surf, lat: float, lon: float, dt_s: float):
    """Shortwave (W m-2) per record from temperature range, precipitation and humidity (see module doc)."""
    toa, cos_z = toa_shortwave(times, lat, lon, dt_s)
    e_day = _daily(vapour_pressure(np.asarray(q_air, np.float64), np.asarray(p_surf, np.float64)),
                   local_days(times, lon), "mean")
    airmass = np.asarray(p_surf, np.float64) / P_STANDARD / np.maximum(cos_z, MIN_COS_AIRMASS)
    clear = np.maximum(TR_TAU0**airmass + TR_ALPHA * e_day, 0.0)
    return toa * clear * cloud_transmittance(times, t_air, precip, lon)
