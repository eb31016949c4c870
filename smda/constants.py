"""Physical constants and the moist-air formulas shared by the model and the forcing (SI units).

Every constant carries its units and source; every formula is defined once here and is compiled by
numba (``smda.jit.inline``), so the same function serves numba kernels (scalars, inlined into the
caller) and numpy code (scalars or arrays, called from Python; written with ``np.exp`` and ``**``,
which numba compiles for both).

Humidity, after Bolton (1980, doi:10.1175/1520-0493(1980)108<1046:TCOEPT>2.0.CO;2), over liquid
water, with epsilon = R_d / R_v::

    e_s(T)  = 611.2 exp(17.67 (T - 273.15) / (T - 29.65))                 Pa, T in K
    de_s/dT = e_s 17.67 243.5 / (T - 29.65)^2                             Pa K-1
    q       = epsilon e / (p - (1 - epsilon) e),    e = q p / (epsilon + (1 - epsilon) q)

Clear-sky emissivity of the atmosphere (Brutsaert 1975, doi:10.1029/WR011i005p00742)::

    eps_clear = 1.24 (e / T)^(1/7),   e in hPa, T in K

References: CODATA 2018 (Tiesinga et al. 2021, doi:10.1103/RevModPhys.93.025010); Kopp & Lean
(2011, doi:10.1029/2010GL045777); Rogers & Yau (1989) A Short Course in Cloud Physics, 3rd ed.,
Pergamon; ISO 2533:1975 Standard Atmosphere.
"""

import numpy as np

from smda.jit import inline

# --- radiation
SIGMA = 5.670374419e-8      # W m-2 K-4, Stefan-Boltzmann constant (exact, CODATA 2018)
SOLAR_CONSTANT = 1361.0     # W m-2, total solar irradiance at 1 AU (Kopp & Lean 2011)

# --- water
T_FREEZE = 273.15           # K, 0 degC: melting point of ice at 101325 Pa, the Celsius-Kelvin offset
RHO_WATER = 1000.0          # kg m-3, density of liquid water (1 mm of water = 1 kg m-2)
LV = 2.501e6                # J kg-1, latent heat of vaporisation at 0 degC (Rogers & Yau 1989)
LS = 2.834e6                # J kg-1, latent heat of sublimation at 0 degC (Rogers & Yau 1989)

# --- air
R_DRY = 287.05              # J kg-1 K-1, gas constant of dry air, R* / M_dry (CODATA R*, M_dry 28.96 g mol-1)
EPSILON = 0.622             # 1, R_dry / R_vapour = molar mass of water / of dry air (Bolton 1980)
CP_AIR = 1004.64            # J kg-1 K-1, specific heat of dry air at constant pressure (~3.5 R, diatomic ideal gas)
P_STANDARD = 101325.0       # Pa, standard sea-level pressure (ISO 2533:1975 standard atmosphere)
GRAVITY = 9.80665           # m s-2, standard acceleration of gravity (3rd CGPM 1901)
KARMAN = 0.4                # 1, von Karman constant (the conventional value of surface-layer similarity)


@inline
def saturation_vapour_pressure(t_k):
    """Saturation vapour pressure over water (Pa) at temperature ``t_k`` (K), Bolton (1980)."""
    return 611.2 * np.exp(17.67 * (t_k - T_FREEZE) / (t_k - 29.65))


@inline
def saturation_vapour_pressure_slope(t_k, es_pa):
    """de_s/dT (Pa K-1) at ``t_k`` (K), given ``es_pa = saturation_vapour_pressure(t_k)``."""
    return es_pa * 17.67 * 243.5 / ((t_k - 29.65) * (t_k - 29.65))


@inline
def specific_humidity(e_pa, p_pa):
    """Specific humidity (kg kg-1) from vapour pressure and total pressure (Pa)."""
    return EPSILON * e_pa / (p_pa - (1.0 - EPSILON) * e_pa)


@inline
def specific_humidity_slope(e_pa, p_pa):
    """dq/de (Pa-1) of :func:`specific_humidity` at vapour pressure ``e_pa`` and pressure ``p_pa`` (Pa)."""
    den = p_pa - (1.0 - EPSILON) * e_pa
    return EPSILON * p_pa / (den * den)


@inline
def vapour_pressure(q, p_pa):
    """Vapour pressure (Pa) from specific humidity (kg kg-1) and total pressure (Pa)."""
    return q * p_pa / (EPSILON + (1.0 - EPSILON) * q)


@inline
def clear_sky_emissivity(e_pa, t_k):
    """Clear-sky atmospheric emissivity (1) from vapour pressure (Pa) and air temperature (K), Brutsaert (1975)."""
    return 1.24 * (0.01 * e_pa / t_k) ** (1.0 / 7.0)
