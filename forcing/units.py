"""Checked unit conversion of forcing variables and humidity thermodynamics.

The internal forcing set (one time step, per cell) is the ``forcing`` kind of :mod:`smda.variables`,
which holds its units, CF standard names and bounds: ``NAMES`` in registry order, ``FLUXES`` the
interval means (precipitation, radiation), ``STATES`` the instantaneous values (temperature,
humidity, pressure, wind).

Units are parsed into SI factor and dimension exponents (mass, length, time, temperature) in the
spirit of xclim's boundary checks: a source variable whose units are unknown or of the wrong
dimension raises :class:`ValueError` naming the file and the variable. Accumulated quantities
(ERA5 ``tp`` in m, ``ssrd`` in J m-2) are divided by their accumulation interval; depths of liquid
water are converted to mass with rho_w = 1000 kg m-3.

Humidity, with e_s(T) and q(e, p) of Bolton (1980) from :mod:`smda.constants`::

    dewpoint Td:  e = e_s(Td);   relative humidity RH:  e = RH e_s(T)
"""

from __future__ import annotations

import re

import numpy as np

from smda.constants import RHO_WATER, T_FREEZE, saturation_vapour_pressure, specific_humidity, vapour_pressure
from smda.variables import VARIABLES, names

NAMES = names("forcing")
FLUXES = tuple(n for n in NAMES if VARIABLES[n].interval_mean)
STATES = tuple(n for n in NAMES if not VARIABLES[n].interval_mean)

# base unit -> (SI factor, (M, L, T, Theta) exponents)
_BASE = {
    "kg": (1.0, (1, 0, 0, 0)), "g": (1e-3, (1, 0, 0, 0)),
    "m": (1.0, (0, 1, 0, 0)), "mm": (1e-3, (0, 1, 0, 0)), "cm": (1e-2, (0, 1, 0, 0)),
    "km": (1e3, (0, 1, 0, 0)),
    "s": (1.0, (0, 0, 1, 0)), "sec": (1.0, (0, 0, 1, 0)), "min": (60.0, (0, 0, 1, 0)),
    "h": (3600.0, (0, 0, 1, 0)), "hr": (3600.0, (0, 0, 1, 0)), "hour": (3600.0, (0, 0, 1, 0)),
    "d": (86400.0, (0, 0, 1, 0)), "day": (86400.0, (0, 0, 1, 0)),
    "w": (1.0, (1, 2, -3, 0)), "j": (1.0, (1, 2, -2, 0)),
    "pa": (1.0, (1, -1, -2, 0)), "hpa": (100.0, (1, -1, -2, 0)), "kpa": (1000.0, (1, -1, -2, 0)),
    "mb": (100.0, (1, -1, -2, 0)), "mbar": (100.0, (1, -1, -2, 0)),
    "k": (1.0, (0, 0, 0, 1)), "kelvin": (1.0, (0, 0, 0, 1)), "degk": (1.0, (0, 0, 0, 1)),
    "%": (0.01, (0, 0, 0, 0)), "percent": (0.01, (0, 0, 0, 0)), "1": (1.0, (0, 0, 0, 0)),
    "fraction": (1.0, (0, 0, 0, 0)),
}
_CELSIUS = {"degc", "c", "celsius", "degree_celsius", "degrees_celsius", "°c"}
_ALIASES = {"degrees_kelvin": "k", "degree_kelvin": "k", "kg/kg": "kg kg-1", "g/kg": "g kg-1",
            "w/m2": "w m-2", "w/m^2": "w m-2", "m/s": "m s-1", "j/m2": "j m-2"}

DIM_FLUX_MASS = (1, -2, -1, 0)  # kg m-2 s-1
DIM_RATE_DEPTH = (0, 1, -1, 0)  # m s-1 (liquid water depth rate, or a speed)
DIM_DEPTH = (0, 1, 0, 0)  # m (accumulated water depth)
DIM_MASS_AREA = (1, -2, 0, 0)  # kg m-2 (accumulated)
DIM_POWER_AREA = (1, 0, -3, 0)  # W m-2
DIM_ENERGY_AREA = (1, 0, -2, 0)  # J m-2 (accumulated)
DIM_TEMP = (0, 0, 0, 1)
DIM_NONE = (0, 0, 0, 0)
DIM_PRESSURE = (1, -1, -2, 0)

_TOKEN = re.compile(r"^([a-z%°_]+|1)(-?\d+)?$")


def parse_units(units: str):
    """Parse a unit string into (SI factor, offset, dimension exponents (M, L, T, Theta)).

    Accepts CF/UDUNITS spellings ("kg m-2 s-1", "W m**-2", "kg m{-2} s{-1}", "kg/m2/s", "m s**-1",
    "hPa", "%", "degC"). Raises ValueError for anything it does not understand.
    """
    if units is None:
        raise ValueError("no units attribute")
    s = str(units).strip().lower()
    s = _ALIASES.get(s, s)
    if s in _CELSIUS:
        return 1.0, T_FREEZE, DIM_TEMP
    if s in ("", "-", "none", "dimensionless"):
        return 1.0, 0.0, DIM_NONE
    s = s.replace("**", "").replace("^", "").replace("{", "").replace("}", "").replace("*", " ")
    s = s.replace("/", " / ")
    factor = 1.0
    dims = np.zeros(4, int)
    sign = 1
    for tok in s.split():
        if tok == "/":
            sign = -1
            continue
        m = _TOKEN.match(tok)
        if not m:
            raise ValueError(f"cannot parse unit token {tok!r} in {units!r}")
        base, exp = m.group(1), int(m.group(2) or 1)
        if base not in _BASE:
            raise ValueError(f"unknown unit {base!r} in {units!r}")
        f, d = _BASE[base]
        exp *= sign
        factor *= f**exp
        dims += exp * np.asarray(d)
    return factor, 0.0, tuple(int(v) for v in dims)


def convert(values, units: str, allowed: dict, *, where: str, interval_s: float | None = None):
    """Convert ``values`` with ``units`` to an internal unit.

    allowed: {dimension tuple: kind} with kind "plain" (SI factor/offset), "water_depth" (x rho_w),
    "accumulated" (/ interval_s) or "accumulated_depth" (x rho_w / interval_s).
    where: "file ..., variable ..." used in error messages.
    """
    try:
        factor, offset, dims = parse_units(units)
    except ValueError as err:
        raise ValueError(f"{where}: unknown units {units!r} ({err})") from None
    if dims not in allowed:
        raise ValueError(f"{where}: units {units!r} have the wrong dimension for this variable")
    kind = allowed[dims]
    out = np.asarray(values, dtype=np.float64) * factor + offset
    if kind in ("water_depth", "accumulated_depth"):
        out = out * RHO_WATER
    if kind in ("accumulated", "accumulated_depth"):
        if not interval_s or interval_s <= 0:
            raise ValueError(f"{where}: accumulated units {units!r} need a positive accumulation interval")
        out = out / interval_s
    return out


# what each internal (or auxiliary) quantity may arrive as
ALLOWED = {
    "precip": {DIM_FLUX_MASS: "plain", DIM_RATE_DEPTH: "water_depth", DIM_DEPTH: "accumulated_depth",
               DIM_MASS_AREA: "accumulated"},
    "sw_down": {DIM_POWER_AREA: "plain", DIM_ENERGY_AREA: "accumulated"},
    "lw_down": {DIM_POWER_AREA: "plain", DIM_ENERGY_AREA: "accumulated"},
    "t_air": {DIM_TEMP: "plain"},
    "dewpoint": {DIM_TEMP: "plain"},
    "q_air": {DIM_NONE: "plain"},
    "rel_hum": {DIM_NONE: "plain"},
    "p_surf": {DIM_PRESSURE: "plain"},
    "wind": {DIM_RATE_DEPTH: "plain"},
}


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def q_from_dewpoint(td_k, p_pa):
    """Specific humidity (kg/kg) from dewpoint (K) and pressure (Pa)."""
    return specific_humidity(saturation_vapour_pressure(_f64(td_k)), _f64(p_pa))


def q_from_rh(rh_fraction, t_k, p_pa):
    """Specific humidity (kg/kg) from relative humidity (0-1), temperature (K) and pressure (Pa)."""
    return specific_humidity(_f64(rh_fraction) * saturation_vapour_pressure(_f64(t_k)), _f64(p_pa))


def rh_from_q(q, t_k, p_pa):
    """Relative humidity (0-1) from specific humidity, temperature (K) and pressure (Pa)."""
    return vapour_pressure(_f64(q), _f64(p_pa)) / saturation_vapour_pressure(_f64(t_k))
