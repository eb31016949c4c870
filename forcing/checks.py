"""Range and unit-plausibility checks at the forcing boundary (after unit conversion).

Every value of a forcing variable must lie in its plausible range: the bounds of the ``forcing`` kind of
:mod:`smda.variables` (the same the land surface model's optional ``check_forcing`` uses), plus the
auxiliary humidity inputs below. The bounds enclose the observed extremes at the surface:

* t_air 180-340 K: -89.2 degC at Vostok (1983) and 56.7 degC at Death Valley (1913), WMO archive of
  weather and climate extremes (Cerveny et al. 2007, Bull. Amer. Meteor. Soc. 88); dewpoint the same;
* p_surf 3e4-1.1e5 Pa: about 337 hPa on the summit of Everest (West 1999, J. Appl. Physiol. 86) to the
  record sea-level pressure of about 1084 hPa (Siberia/Mongolia; WMO archive);
* precip 0-0.1 kg m-2 s-1 (360 mm h-1): above the 305 mm in 42 min record (Holt, Missouri, 1947; WMO);
* sw_down 0-1500 W m-2: top-of-atmosphere irradiance at perihelion (1412 W m-2) plus brief cloud
  enhancement; lw_down 30-700 W m-2; q_air 0-0.06 kg kg-1 (a 35 degC dewpoint at sea level is 0.036);
  wind 0-80 m s-1 (record 10-min mean winds are about 70 m s-1);
* rel_hum 0-1.1 (fraction; wet sensors read up to about 10 % above saturation, e.g. 109.4 % in the
  Bondville 1998 record; values above 1 are taken as 1).

A value outside its range is an error naming the file, the variable, the value and its time, with the
likely unit mistake when one explains the whole series (a correction that brings every value into range
and passes the series checks: Pa labelled hPa, per hour labelled per second, degC labelled K, J m-2 per
record labelled W m-2, ...).
Series checks catch mistakes whose values stay in range: relative humidity labelled percent whose
maximum over the record is below 1.5 % (a fraction), a mean precipitation over 30 days or more above
the wettest place on Earth (about 11.9 m per year at Mawsynram), a mean wind speed above 25 m s-1
(km h-1 or knots labelled m s-1).
"""

from __future__ import annotations

import numpy as np

from smda.constants import T_FREEZE
from smda.variables import VARIABLES

AUX_RANGES = {"rel_hum": (0.0, 1.1, "1"), "dewpoint": (180.0, 340.0, "K")}
RANGE_TOLERANCE = 1e-6  # relative to the range width: packing noise (e.g. ERA5 tp of -1e-9) is not an error
WETTEST_MEAN_PRECIP = 4.0e-4  # kg m-2 s-1 (12.6 m per year), above the wettest station's mean
MAX_MEAN_WIND = 25.0  # m s-1, above the windiest stations' annual means (about 20 m s-1 in Adelie Land)
MIN_RECORD_DAYS_PRECIP = 30.0


def plausible_range(name: str) -> tuple[float, float, str]:
    """(lower, upper, units) of an internal forcing variable or an auxiliary humidity input."""
    if name in AUX_RANGES:
        return AUX_RANGES[name]
    v = VARIABLES[name]
    return float(v.lower), float(v.upper), v.units


def _hints(name: str, interval_s: float | None):
    """(correction of the converted values, the unit mistake it undoes) in order of likelihood."""
    if name == "p_surf":
        return [(lambda v: v / 100.0, "pressure in Pa labelled hPa (values 100x too large)"),
                (lambda v: v * 100.0, "pressure in hPa labelled Pa (values 100x too small)"),
                (lambda v: v * 10.0, "pressure in kPa labelled hPa (values 10x too small)"),
                (lambda v: v / 1000.0, "pressure in Pa labelled kPa (values 1000x too large)")]
    if name in ("t_air", "dewpoint"):
        return [(lambda v: v + T_FREEZE, "temperature in degC labelled K"),
                (lambda v: v - T_FREEZE, "temperature in K labelled degC"),
                (lambda v: (v - 32.0) / 1.8 + T_FREEZE, "temperature in degF labelled K")]
    if name == "rel_hum":
        return [(lambda v: v / 100.0, "relative humidity in percent labelled as a fraction (values 100x too large)")]
    if name == "q_air":
        return [(lambda v: v / 1000.0, "specific humidity in g kg-1 labelled kg kg-1")]
    if name == "precip":
        return [(lambda v: v / 3600.0, "precipitation per hour labelled per second (values 3600x too large)"),
                (lambda v: v / 1800.0, "precipitation per half hour labelled per second (values 1800x too large)"),
                (lambda v: v / 86400.0, "precipitation per day labelled per second (values 86400x too large)"),
                (lambda v: v / 1000.0, "precipitation in mm labelled m (values 1000x too large)")]
    if name in ("sw_down", "lw_down"):
        out = []
        for dt in dict.fromkeys(d for d in (interval_s, 3600.0, 1800.0, 10800.0, 86400.0) if d):
            out.append((lambda v, dt=dt: v / dt, f"J m-2 accumulated over {dt:g} s labelled W m-2 "
                        f"(values {dt:g}x too large)"))
        return out
    if name == "wind":
        return [(lambda v: v / 3.6, "wind speed in km h-1 labelled m s-1"),
                (lambda v: v * 0.514444, "wind speed in knots labelled m s-1")]
    return []


def likely_mistake(name: str, values, times=None, interval_s: float | None = None) -> str | None:
    """The unit mistake whose correction brings every finite value of ``values`` into range, or None."""
    lo, hi, _ = plausible_range(name)
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    tol = RANGE_TOLERANCE * (hi - lo)
    for fix, text in _hints(name, interval_s):
        w = fix(v)
        if v.size and np.all((w >= lo - tol) & (w <= hi + tol)) and _implausible(name, w, times) is None:
            return text
    return None


def check_range(name: str, values, times, *, where, label: str | None = None, interval_s: float | None = None):
    """Raise ValueError if a finite value of ``values`` (time first) lies outside the plausible range of ``name``.

    times: (nt,) datetime64 of the first axis; where: text naming the file and variable, or a callable
    ``where(k)`` giving it for record k (records of several files); label: the units as labelled.
    """
    lo, hi, unit = plausible_range(name)
    v = np.asarray(values, dtype=np.float64)
    tol = RANGE_TOLERANCE * (hi - lo)
    bad = (v < lo - tol) | (v > hi + tol)  # NaN compares False: gaps are not range errors
    if not bad.any():
        return
    flat = int(np.flatnonzero(bad.reshape(v.shape[0], -1).any(axis=1))[0]) if v.ndim > 1 else int(np.argmax(bad))
    value = float(v[flat][bad[flat]].ravel()[0]) if v.ndim > 1 else float(v[flat])
    text = where(flat) if callable(where) else where
    as_labelled = f" (labelled {label!r})" if label else ""
    hint = likely_mistake(name, v, times, interval_s)
    raise ValueError(f"{text}: {name} value {value:.6g} {unit}{as_labelled} at {np.datetime64(times[flat], 's')} is "
                     f"outside the plausible range [{lo:g}, {hi:g}] {unit} ({int(bad.sum())} values out of range)"
                     + (f"; likely {hint}" if hint else "; check the units and missing-value markers"))


def _implausible(name: str, v, times) -> str | None:
    """What is implausible about the finite values ``v`` of a whole record, or None."""
    if not v.size:
        return None
    t = np.asarray(times, "datetime64[s]") if times is not None else np.empty(0, "datetime64[s]")
    days = float((t.max() - t.min()) / np.timedelta64(1, "D")) if t.size > 1 else 0.0
    if name == "rel_hum" and v.max() <= 0.015:
        return f"relative humidity never exceeds {100 * v.max():.3g} % over the record"
    if name == "precip" and days >= MIN_RECORD_DAYS_PRECIP and v.mean() > WETTEST_MEAN_PRECIP:
        return (f"mean precipitation {v.mean() * 86400 * 365.25:.4g} mm per year over {days:.0f} days is above the "
                "wettest place on Earth")
    if name == "wind" and v.mean() > MAX_MEAN_WIND:
        return f"mean wind speed {v.mean():.3g} m s-1 is above the windiest places on Earth"
    return None


_SERIES_MISTAKE = {"rel_hum": "relative humidity as a fraction labelled percent (give units '1')",
                   "precip": "precipitation per hour labelled per second (values 3600x too large) or mm labelled m",
                   "wind": "km h-1 or knots labelled m s-1"}


def check_series(name: str, values, times, *, where: str, label: str | None = None):
    """Raise ValueError if the whole series is implausible although its values are in range (see module doc)."""
    v = np.asarray(values, dtype=np.float64)
    problem = _implausible(name, v[np.isfinite(v)], times)
    if problem:
        percent = label is not None and label.strip().lower() in ("%", "percent")
        mistake = _SERIES_MISTAKE[name] if name != "rel_hum" or percent else "a unit mistake: check the units"
        raise ValueError(f"{where}: {problem} (labelled {label!r}): likely {mistake}")
