"""Solar geometry: declination, equation of time, cosine of the solar zenith angle.

Spencer (1971, Search 2(5), 172) Fourier series for declination delta and equation of time E (radians, gamma the
fractional-year angle 2 pi (doy - 1 + (hour - 12)/24)/365)::

    cos Z = sin(lat) sin(delta) + cos(lat) cos(delta) cos(h),  h = pi/12 (t_utc + lon/15 + E_h - 12)

with E_h the equation of time in hours.

Top-of-atmosphere irradiance ``S0 (1 + 0.033 cos(2 pi doy/365)) max(cos Z, 0)``, S0 = 1361 W m-2
(``smda.constants.SOLAR_CONSTANT``); clear-sky irradiance at the surface is 0.75 of it (a constant
transmissivity; the fill of missing station shortwave and the synthetic weather use it).
"""

from __future__ import annotations

import math

import numpy as np

from smda.constants import SOLAR_CONSTANT
from smda.jit import inline, kernel

CLEAR_SKY_TRANSMISSIVITY = 0.75  # 1


@inline
def declination_and_equation_of_time(doy, hour_utc):
    """Solar declination (rad) and equation of time (h), Spencer (1971); doy 1-366, hour_utc in [0, 24).

    Numba-compiled with ``np`` functions: scalars in kernels, scalars or arrays from Python.
    """
    g = 2.0 * np.pi / 365.0 * (doy - 1.0 + (hour_utc - 12.0) / 24.0)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot_min = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                        - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    return decl, eot_min / 60.0


@inline
def clear_sky_irradiance(doy):
    """Clear-sky shortwave irradiance (W m-2) on a surface facing the sun, day of year ``doy``.

    ``0.75 S0 (1 + 0.033 cos(2 pi doy / 365))``; times max(cos Z, 0) for a horizontal surface.
    """
    return CLEAR_SKY_TRANSMISSIVITY * SOLAR_CONSTANT * (1.0 + 0.033 * np.cos(2.0 * np.pi * doy / 365.0))


@kernel
def cos_zenith(doy, hour_utc, lat_deg, lon_deg):
    """Cosine of the solar zenith angle (may be negative at night); doy 1-366, hour_utc in [0, 24)."""
    decl, eot_h = declination_and_equation_of_time(doy, hour_utc)
    solar_time_h = hour_utc + lon_deg / 15.0 + eot_h
    ha = math.pi / 12.0 * (solar_time_h - 12.0)
    lat = math.radians(lat_deg)
    return math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(ha)


@kernel
def _mean_cos_zenith(doy, h0, h1, lat, lon, nsub, out_mean, out_now, h_now):
    for i in range(lat.shape[0]):
        s = 0.0
        for k in range(nsub):
            h = h0 + (k + 0.5) * (h1 - h0) / nsub
            c = cos_zenith(doy + math.floor(h / 24.0), h % 24.0, lat[i], lon[i])
            s += max(c, 0.0)
        out_mean[i] = s / nsub
        out_now[i] = max(cos_zenith(doy + math.floor(h_now / 24.0), h_now % 24.0, lat[i], lon[i]), 0.0)


def day_and_hour(time) -> tuple[float, float]:
    """(day of year 1-366, UTC hour as float) of a numpy datetime64."""
    t = np.datetime64(time, "s")
    year_start = t.astype("datetime64[Y]").astype("datetime64[s]")
    day_start = t.astype("datetime64[D]").astype("datetime64[s]")
    doy = float((day_start - year_start) / np.timedelta64(1, "D")) + 1.0
    hour = float((t - day_start) / np.timedelta64(1, "s")) / 3600.0
    return doy, hour


def interval_cos_zenith(t0, t1, time, lat, lon, nsub: int = 24):
    """Mean of max(cos Z, 0) over [t0, t1] and its value at ``time`` (each (n,)), at cells lat/lon (deg)."""
    doy, h0 = day_and_hour(t0)
    dh = (np.datetime64(t1, "s") - np.datetime64(t0, "s")) / np.timedelta64(1, "s") / 3600.0
    hn = (np.datetime64(time, "s") - np.datetime64(t0, "s")) / np.timedelta64(1, "s") / 3600.0
    lat = np.ascontiguousarray(lat, dtype=np.float64).ravel()
    lon = np.ascontiguousarray(lon, dtype=np.float64).ravel()
    mean = np.empty(lat.size)
    now = np.empty(lat.size)
    _mean_cos_zenith(doy, h0, h0 + dh, lat, lon, int(nsub), mean, now, h0 + hn)
    return mean, now
