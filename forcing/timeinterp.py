"""Temporal interpolation between forcing times.

* States (t_air, q_air, p_surf, wind): linear in time between the bracketing records k, k+1::

      x(t) = (1 - w) x_k + w x_(k+1),   w = (t - t_k) / (t_(k+1) - t_k)

* Fluxes (precip, lw_down, sw_down) are interval means, held constant over their accumulation
  interval. The record's time label says which interval it covers: "end" (ERA5 accumulations and
  GLDAS-2 ``tavg``: (t_k - dt, t_k]), "start" ([t_k, t_k + dt)) or "centre" (MERRA-2 ``tavg1``:
  [t_k - dt/2, t_k + dt/2)).
* Shortwave may instead be distributed inside its interval by the cosine of the solar zenith angle
  so that the interval mean is preserved::

      SW(t) = SW_mean max(cos Z(t), 0) / <max(cos Z, 0)>_interval     (SW_mean where <.> < 1e-3)
"""

from __future__ import annotations

import numpy as np

from smda.forcing.solar import interval_cos_zenith

LABELS = ("end", "start", "centre")


def state_bracket(times: np.ndarray, time) -> tuple[int, float]:
    """(k, w) with times[k] <= time <= times[k+1] and the linear weight w of record k+1."""
    t = np.datetime64(time, "s")
    if times.size == 1:
        if t != times[0]:
            raise ValueError(f"time {t} is not the single forcing time {times[0]}")
        return 0, 0.0
    if t < times[0] or t > times[-1]:
        raise ValueError(f"time {t} outside the forcing period [{times[0]}, {times[-1]}]")
    k = int(np.searchsorted(times, t, side="right")) - 1
    k = min(k, times.size - 2)
    w = float((t - times[k]) / (times[k + 1] - times[k]))
    return k, w


def flux_interval(times: np.ndarray, time, label: str, dt_s: float):
    """(k, t_start, t_end): the record whose averaging interval contains ``time``."""
    if label not in LABELS:
        raise ValueError(f"unknown flux time label {label!r}; valid: {', '.join(LABELS)}")
    t = np.datetime64(time, "s")
    dt = np.timedelta64(int(round(dt_s)), "s")
    if label == "end":
        k = int(np.searchsorted(times, t, side="left"))  # times[k-1] < t <= times[k]
        start = times[min(k, times.size - 1)] - dt
    elif label == "start":
        k = int(np.searchsorted(times, t, side="right")) - 1  # times[k] <= t < times[k+1]
        start = times[max(k, 0)]
    else:
        k = int(np.searchsorted(times, t + dt / 2, side="right")) - 1
        start = times[max(k, 0)] - dt / 2
    if k < 0 or k >= times.size:
        raise ValueError(f"time {t} outside the flux intervals of the forcing period [{times[0]}, {times[-1]}]")
    return k, start, start + dt


def distribute_shortwave(sw_mean, t0, t1, time, lat, lon, *, min_mean_cos: float = 1e-3):
    """Shortwave at ``time`` from its interval mean over [t0, t1] by solar zenith angle; (n,) W m-2."""
    mean, now = interval_cos_zenith(t0, t1, time, lat, lon)
    sw_mean = np.asarray(sw_mean, dtype=np.float64)
    out = sw_mean.copy()
    ok = mean >= min_mean_cos
    out[ok] = sw_mean[ok] * now[ok] / mean[ok]
    return out
