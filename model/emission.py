"""L-band emission: Fresnel, H-Q-N roughness, zero-order tau-omega, effective temperature, atmosphere.

Equations (SMAP L2 ATBD, O'Neill et al. 2021; SMOS L-MEB, Wigneron et al. 2007 doi:10.1016/j.rse.2006.10.014)
-----------------------------------------------------------------------------------------------------------
Smooth-surface (Fresnel) reflectivities at incidence angle t for soil permittivity eps::

    rH* = |(cos t - sqrt(eps - sin^2 t)) / (cos t + sqrt(eps - sin^2 t))|^2
    rV* = |(eps cos t - sqrt(eps - sin^2 t)) / (eps cos t + sqrt(eps - sin^2 t))|^2

Rough surface, H-Q-N model (Wang & Choudhury 1981, doi:10.1029/JC086iC06p05277; Lawrence et al. 2013,
doi:10.1109/TGRS.2012.2223478)::

    rp = [(1 - Q) rp* + Q rq*] exp(-h cos^Np t)      SMAP: Np = 2, Q = 0 (or Q = 0.1771 h)

Vegetation (Jackson & Schmugge 1991, doi:10.1016/0034-4257(91)90057-D; Mo et al. 1982)::

    tau = b VWC,   gamma = exp(-tau / cos t)
    TBp = Teff (1 - rp) gamma + Tc (1 - omega)(1 - gamma)(1 + rp gamma)

Effective soil temperature::

    Teff = Tdeep + C (Tsurf - Tdeep)
    Choudhury et al. (1982), doi:10.1029/JC087iC02p01301:  C = 0.246
    Wigneron et al. (2001), doi:10.1016/S0034-4257(01)00240-9:  C = (w/w0)^bw0, w0 = bw0 = 0.3,
        bounded to [0.001, 1] (so Teff stays between Tdeep and Tsurf). With Wigneron and Tsurf > Tdeep,
        Teff rises with SM, so in very dry soil TB can increase with SM (dTB/dSM > 0).

Optional atmosphere (Pellarin et al. 2003, doi:10.1109/TGRS.2003.811692), Z elevation (km), Tair (K)::

    tau_atm = exp(-3.926 - 0.2211 Z - 0.00369 Tair),  Teq = exp(4.927 + 0.002195 Tair)
    g_atm = exp(-tau_atm / cos t),  TB_up = Teq (1 - g_atm),  TB_down = TB_up + 2.7 g_atm
    TB_toa = TB_up + g_atm (TBp + TB_down rp gamma^2)

Units: temperatures K, soil moisture m3 m-3, VWC kg m-2, b in m2 kg-1, angles degrees, frequency Hz,
texture mass fractions, bulk density g cm-3.

Layout
------
Ensemble arrays are (n_cells, n_members), members inner; per-cell parameters (n_cells,). The kernel loops
cell -> angle -> member: the Mironov coefficients (the costly Debye terms) are evaluated once per cell,
the roughness and atmosphere factors once per cell and angle, so each member costs only the linear
refractive mixing, one complex square root in real arithmetic and two exponentials (vegetation). The
driver evaluates all the incidence angles of an observation set (SMOS multi-angle TB) in one call of
:func:`brightness_temperature_multiangle`.

IGBP parameter tables
---------------------
:data:`IGBP_TABLES` holds h, omega and b for IGBP classes 1-16 (early SMAP ATBD table as used in
GEOS-LDAS; index 0 is NaN) and ``omega_smap_dca`` (current SMAP DCA albedo). :func:`igbp_parameters`
turns class arrays and overrides into per-cell arrays.
"""

import math
from collections.abc import Mapping

import numpy as np

from smda.constants import T_FREEZE
from smda.jit import inline, kernel
from smda.model.dielectric import (
    DIELECTRIC_MODELS,
    RHO_SOLID,
    dobson_eps,
    mironov_coefficients,
    mironov_eps,
)
from smda.registry import Registry

# name -> integer code passed to the kernels
TEFF_MODELS = Registry("effective temperature model", {"choudhury": 0, "wigneron": 1})
CHOUDHURY_C = 0.246
WIGNERON_W0 = 0.3
WIGNERON_BW0 = 0.3
COSMIC_TB = 2.7  # K
SMAP_ANGLE_DEG = 40.0
SMAP_FREQ_HZ = 1.41e9
Q_PER_H_SMAP = 0.1771

_NAN = np.nan
IGBP_TABLES = {
    "h": np.array([_NAN, 0.16, 0.16, 0.16, 0.16, 0.16, 0.11, 0.11, 0.125, 0.156, 0.156, 0.156, 0.108, 0.0,
                   0.13, 0.0, 0.15]),
    "omega": np.array([_NAN, 0.12, 0.12, 0.12, 0.12, 0.08, 0.05, 0.05, 0.12, 0.08, 0.05, 0.05, 0.05, 0.0,
                       0.065, 0.0, 0.0]),
    "b": np.array([_NAN, 0.10, 0.10, 0.12, 0.12, 0.12, 0.11, 0.11, 0.11, 0.11, 0.10, 0.10, 0.11, 0.0,
                   0.11, 0.0, 0.0]),
    "omega_smap_dca": np.array([_NAN, 0.07, 0.07, 0.07, 0.07, 0.07, 0.08, 0.07, 0.08, 0.10, 0.07, 0.10,
                                0.06, 0.08, 0.10, 0.00, 0.00]),
}
for _v in IGBP_TABLES.values():
    _v.setflags(write=False)
# igbp_parameters(omega_source=...) -> column of IGBP_TABLES
OMEGA_SOURCES = Registry("single-scattering albedo source", {"atbd": "omega", "smap_dca": "omega_smap_dca"})


# ----------------------------------------------------------------------------------------------------
# scalar numba building blocks
# ----------------------------------------------------------------------------------------------------
@inline
def fresnel(er, ei, cos_t):
    """Smooth reflectivities (rH, rV) for eps = er + j ei at cos(incidence) ``cos_t``.

    The square root s = p + j q of eps - sin^2 t is taken in real arithmetic (ei >= 0 so q >= 0).
    """
    a = er - (1.0 - cos_t * cos_t)
    m = math.sqrt(a * a + ei * ei)
    p = math.sqrt(0.5 * (m + a))  # > 0 because eps' > 1 >= sin^2 t
    q = 0.5 * ei / p
    c = cos_t
    # H
    hm = c - p
    hp = c + p
    rh = (hm * hm + q * q) * (1.0 / (hp * hp + q * q))
    # V
    xr_m = er * c - p
    xi_m = ei * c - q
    xr_p = er * c + p
    xi_p = ei * c + q
    rv = (xr_m * xr_m + xi_m * xi_m) * (1.0 / (xr_p * xr_p + xi_p * xi_p))
    return rh, rv


@inline
def tau_omega(teff, t_canopy, r, gamma, omega):
    """Zero-order tau-omega TB (K) for reflectivity r."""
    veg = t_canopy * (1.0 - omega) * (1.0 - gamma)
    return teff * (1.0 - r) * gamma + veg * (1.0 + r * gamma)


@inline
def effective_temperature(t_surf, t_deep, sm, teff_id):
    """Effective soil temperature (K)."""
    if teff_id == 0:
        return t_deep + CHOUDHURY_C * (t_surf - t_deep)
    c = min(max((sm / WIGNERON_W0) ** WIGNERON_BW0, 0.001), 1.0)
    return t_deep + c * (t_surf - t_deep)


@inline
def atmosphere_terms(elevation_km, t_air, cos_t):
    """Pellarin (2003) atmosphere: (g_atm, TB_up, TB_down) in (-, K, K)."""
    tau_atm = math.exp(-3.926 - 0.2211 * elevation_km - 0.00369 * t_air)
    teq = math.exp(4.927 + 0.002195 * t_air)
    g = math.exp(-tau_atm / cos_t)
    tb_up = teq * (1.0 - g)
    return g, tb_up, tb_up + COSMIC_TB * g


@inline
def _cos_pow(c, n):
    if n == 2.0:
        return c * c
    if n == 0.0:
        return 1.0
    if n == 1.0:
        return c
    return c**n


# ----------------------------------------------------------------------------------------------------
# vectorised kernel: cells x members x angles
# ----------------------------------------------------------------------------------------------------
@kernel
def tb_kernel(sm, t_surf, t_deep, t_can, vwc, clay, sand, bulk_density, cos_t, h, omega, b, q, n_h, n_v,
              dielectric_id, teff_id, with_atm, elevation_km, t_air, freq_hz,
              tb_h, tb_v):
    """TB for H and V over cells x members x angles (checked inputs assumed).

    Parameters
    ----------
    sm, t_surf, t_deep, t_can, vwc : (n_cells, n_members) float64 (any strides; broadcast views allowed)
        Soil moisture (m3 m-3), surface/deep soil and canopy temperature (K), VWC (kg m-2).
    clay, sand, bulk_density, h, omega, b, q, n_h, n_v, elevation_km, t_air : (n_cells,) float64
    cos_t : (n_cells, n_angles) float64, cosine of the incidence angle
    dielectric_id : int, see :data:`smda.model.dielectric.DIELECTRIC_MODELS`
    teff_id : int, see :data:`TEFF_MODELS`
    with_atm : bool
    freq_hz : float
    tb_h, tb_v : (n_cells, n_members, n_angles) float64, written in place
    """
    n_cells, n_members = sm.shape
    n_ang = cos_t.shape[1]
    nd = kd = mvt = nb1 = kb = nu1 = ku = 0.0
    clay_prev = -1.0
    for i in range(n_cells):
        # soil maps are often piecewise constant: recompute the Debye terms only when clay changes
        if dielectric_id == 0 and clay[i] != clay_prev:
            clay_prev = clay[i]
            nd, kd, mvt, nb1, kb, nu1, ku = mironov_coefficients(clay_prev, freq_hz)
        hi = h[i]
        qi = q[i]
        om = omega[i]
        bi = b[i]
        for k in range(n_ang):
            c = cos_t[i, k]
            inv_c = 1.0 / c
            rough_h = math.exp(-hi * _cos_pow(c, n_h[i])) if hi != 0.0 else 1.0
            if n_v[i] == n_h[i]:
                rough_v = rough_h
            else:
                rough_v = math.exp(-hi * _cos_pow(c, n_v[i]))
            g_atm = 1.0
            tb_up = 0.0
            tb_down = 0.0
            if with_atm:
                g_atm, tb_up, tb_down = atmosphere_terms(elevation_km[i], t_air[i], c)
            vwc_prev = -1.0
            gamma = 1.0
            for j in range(n_members):
                mv = sm[i, j]
                if dielectric_id == 0:
                    er, ei = mironov_eps(mv, nd, kd, mvt, nb1, kb, nu1, ku)
                else:
                    er, ei = dobson_eps(mv, sand[i], clay[i], bulk_density[i],
                                              t_surf[i, j] - T_FREEZE, freq_hz, dielectric_id)
                rhs, rvs = fresnel(er, ei, c)
                rh = ((1.0 - qi) * rhs + qi * rvs) * rough_h
                rv = ((1.0 - qi) * rvs + qi * rhs) * rough_v
                teff = effective_temperature(t_surf[i, j], t_deep[i, j], mv, teff_id)
                if vwc[i, j] != vwc_prev:  # VWC is usually per cell: one exp per cell and angle
                    vwc_prev = vwc[i, j]
                    gamma = math.exp(-bi * vwc_prev * inv_c)
                tbh = tau_omega(teff, t_can[i, j], rh, gamma, om)
                tbv = tau_omega(teff, t_can[i, j], rv, gamma, om)
                if with_atm:
                    refl = tb_down * gamma * gamma
                    tbh = tb_up + g_atm * (tbh + refl * rh)
                    tbv = tb_up + g_atm * (tbv + refl * rv)
                tb_h[i, j, k] = tbh
                tb_v[i, j, k] = tbv


# ----------------------------------------------------------------------------------------------------
# checked Python entry points
# ----------------------------------------------------------------------------------------------------
def _finite_in(name, a, lo, hi, lo_open=False, hi_open=False):
    if not np.all(np.isfinite(a)):
        raise ValueError(f"brightness_temperature: {name} contains NaN or infinite values")
    bad_lo = (a <= lo) if lo_open else (a < lo)
    bad_hi = (a >= hi) if hi_open else (a > hi)
    if np.any(bad_lo | bad_hi):
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        bad = a[bad_lo | bad_hi].ravel()[:3]
        raise ValueError(f"brightness_temperature: {name} must be within {lb}{lo}, {hi}{rb}, found {bad.tolist()}")


def _per_cell(name, x, n_cells):
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return np.full(n_cells, float(a))
    if a.shape != (n_cells,):
        raise ValueError(f"brightness_temperature: {name} must be a scalar or shaped ({n_cells},), got {a.shape}")
    return np.ascontiguousarray(a)


def _per_member(name, x, n_cells, n_members, squeeze):
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return np.broadcast_to(a, (n_cells, n_members))
    if a.shape == (n_cells,) and not squeeze:
        return np.broadcast_to(a[:, None], (n_cells, n_members))
    if a.shape == (n_cells, n_members) or (squeeze and a.shape == (n_cells,)):
        return a.reshape(n_cells, n_members)
    raise ValueError(
        f"brightness_temperature: {name} must be a scalar, ({n_cells},) or ({n_cells}, {n_members}), got {a.shape}"
    )


def _evaluate(sm, t_soil_surface, t_soil_deep, t_canopy, vwc, clay, sand, bulk_density, angle_deg, *, h, omega,
              b, q, n_h, n_v, dielectric, teff, atmosphere, freq_hz, porosity, multi_angle,
              out_h=None, out_v=None):
    diel_id = DIELECTRIC_MODELS[dielectric]
    teff_id = TEFF_MODELS[teff]
    sm = np.asarray(sm, dtype=np.float64)
    if sm.ndim not in (1, 2):
        raise ValueError(f"brightness_temperature: sm must be (n_cells,) or (n_cells, n_members), got {sm.shape}")
    squeeze = sm.ndim == 1
    n_cells = sm.shape[0]
    n_members = 1 if squeeze else sm.shape[1]
    sm2 = sm.reshape(n_cells, n_members)
    if not (1e9 <= freq_hz <= 2e9):
        raise ValueError(f"brightness_temperature: freq_hz must be an L-band frequency in [1e9, 2e9] Hz, got {freq_hz}")

    clay = _per_cell("clay", clay, n_cells)
    sand = _per_cell("sand", sand, n_cells)
    bd = _per_cell("bulk_density", bulk_density, n_cells)
    _finite_in("clay", clay, 0.0, 1.0)
    _finite_in("sand", sand, 0.0, 1.0)
    if np.any(clay + sand > 1.0 + 1e-9):
        raise ValueError("brightness_temperature: clay + sand must not exceed 1 (mass fractions)")
    _finite_in("bulk_density", bd, 0.0, RHO_SOLID, lo_open=True, hi_open=True)
    por = 1.0 - bd / RHO_SOLID if porosity is None else _per_cell("porosity", porosity, n_cells)
    _finite_in("porosity", por, 0.0, 1.0, lo_open=True, hi_open=True)
    if not np.all(np.isfinite(sm2)):
        raise ValueError("brightness_temperature: sm contains NaN or infinite values")
    bad = (sm2 < 0.0) | (sm2 > por[:, None] + 1e-12)
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"brightness_temperature: sm must be within [0, porosity]; cell {i} member {j} has sm = {sm2[i, j]} "
            f"with porosity {por[i]}"
        )

    ts = _per_member("t_soil_surface", t_soil_surface, n_cells, n_members, squeeze)
    td = _per_member("t_soil_deep", t_soil_deep, n_cells, n_members, squeeze)
    tc = _per_member("t_canopy", t_canopy, n_cells, n_members, squeeze)
    vw = _per_member("vwc", vwc, n_cells, n_members, squeeze)
    for name, arr in (("t_soil_surface", ts), ("t_soil_deep", td), ("t_canopy", tc)):
        _finite_in(name, arr, 150.0, 400.0)
    if diel_id != 0:
        _finite_in("t_soil_surface (Dobson/Peplinski range)", ts, 253.15, 333.15)
    _finite_in("vwc", vw, 0.0, 100.0)

    hh = _per_cell("h", h, n_cells)
    om = _per_cell("omega", omega, n_cells)
    bb = _per_cell("b", b, n_cells)
    qq = _per_cell("q", q, n_cells)
    nh = _per_cell("n_h", n_h, n_cells)
    nv = _per_cell("n_v", n_v, n_cells)
    _finite_in("h", hh, 0.0, 10.0)
    _finite_in("omega", om, 0.0, 1.0)
    _finite_in("b", bb, 0.0, 10.0)
    _finite_in("q", qq, 0.0, 1.0)
    _finite_in("n_h", nh, 0.0, 10.0)
    _finite_in("n_v", nv, -10.0, 10.0)

    ang = np.asarray(angle_deg, dtype=np.float64)
    if multi_angle:
        if ang.ndim == 1:
            ang = np.broadcast_to(ang[None, :], (n_cells, ang.shape[0]))
        elif ang.ndim != 2 or ang.shape[0] != n_cells:
            raise ValueError(
                f"brightness_temperature: angles_deg must be (n_angles,) or ({n_cells}, n_angles), got {ang.shape}"
            )
    else:
        if ang.ndim == 0:
            ang = np.full((n_cells, 1), float(ang))
        elif ang.shape == (n_cells,):
            ang = ang[:, None]
        else:
            raise ValueError(f"brightness_temperature: angle_deg must be a scalar or ({n_cells},), got {ang.shape}")
    _finite_in("angle_deg", ang, 0.0, 90.0, hi_open=True)
    cos_t = np.ascontiguousarray(np.cos(np.deg2rad(ang)))
    n_ang = cos_t.shape[1]

    if atmosphere is None:
        with_atm = False
        z_km = np.zeros(n_cells)
        t_air = np.zeros(n_cells)
    else:
        if not isinstance(atmosphere, Mapping) or set(atmosphere) != {"elevation_km", "t_air"}:
            raise ValueError("brightness_temperature: atmosphere must be None or a mapping with exactly the keys "
                             "'elevation_km' (km) and 't_air' (K)")
        with_atm = True
        z_km = _per_cell("atmosphere['elevation_km']", atmosphere["elevation_km"], n_cells)
        t_air = _per_cell("atmosphere['t_air']", atmosphere["t_air"], n_cells)
        _finite_in("atmosphere['elevation_km']", z_km, -0.5, 9.0)
        _finite_in("atmosphere['t_air']", t_air, 180.0, 340.0)

    if multi_angle:
        shape = (n_cells, n_members, n_ang) if not squeeze else (n_cells, n_ang)
    else:
        shape = sm.shape

    def _out(name, arr):
        if arr is None:
            return np.empty(shape)
        if not (isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == shape
                and arr.flags.c_contiguous and arr.flags.writeable):
            raise ValueError(f"brightness_temperature: {name} must be a writeable C-contiguous float64 array {shape}")
        return arr

    tb_h = _out("out_h", out_h)
    tb_v = _out("out_v", out_v)
    k3 = (n_cells, n_members, n_ang)
    tb_kernel(sm2, ts, td, tc, vw, clay, sand, bd, cos_t, hh, om, bb, qq, nh, nv, diel_id, teff_id, with_atm,
              z_km, t_air, float(freq_hz), tb_h.reshape(k3), tb_v.reshape(k3))
    return tb_h, tb_v


_DOC_ARGS = """
    Parameters
    ----------
    sm : (n_cells, n_members) or (n_cells,) float64
        Surface volumetric soil moisture (m3 m-3), within [0, porosity].
    t_soil_surface, t_soil_deep, t_canopy : scalar, (n_cells,) or like ``sm``
        Surface soil, deep soil and canopy temperature (K).
    vwc : scalar, (n_cells,) or like ``sm``
        Vegetation water content (kg m-2, >= 0); see :func:`smda.model.vegetation.vwc_from_ndvi`.
    clay, sand : scalar or (n_cells,)
        Mass fractions (0-1).
    bulk_density : scalar or (n_cells,)
        Dry bulk density (g cm-3).
    h, omega, b, q : scalar or (n_cells,)
        Roughness h (-), single-scattering albedo (-), b = tau / VWC (m2 kg-1), polarisation mixing Q (-).
        :func:`igbp_parameters` builds them from IGBP classes.
    n_h, n_v : scalar or (n_cells,)
        Angular exponents of the roughness term (SMAP: 2, 2).
    dielectric : str
        One of :data:`smda.model.dielectric.DIELECTRIC_MODELS` ("mironov" default).
    teff : str
        "choudhury" or "wigneron".
    atmosphere : None or mapping {"elevation_km": (n_cells,), "t_air": (n_cells,) K}
        Adds the Pellarin (2003) atmospheric contribution.
    freq_hz : float
        Frequency (Hz), SMAP 1.41e9.
    porosity : None, scalar or (n_cells,)
        Upper bound for ``sm``; default 1 - bulk_density / 2.66.
"""


def brightness_temperature(sm, t_soil_surface, t_soil_deep, t_canopy, vwc, clay, sand, bulk_density, angle_deg,
                           *, h, omega, b, q=0.0, n_h=2.0, n_v=2.0, dielectric="mironov", teff="choudhury",
                           atmosphere=None, freq_hz=SMAP_FREQ_HZ, out_h=None, out_v=None, porosity=None):
    """Top-of-canopy (or top-of-atmosphere) brightness temperature at H and V polarisation (K).

    ``angle_deg`` is a scalar or per-cell (n_cells,) incidence angle (degrees, in [0, 90)).
    ``out_h``, ``out_v`` are optional preallocated C-contiguous float64 outputs shaped like ``sm``.

    Returns
    -------
    tb_h, tb_v : float64 arrays shaped like ``sm`` (K)
    """
    return _evaluate(sm, t_soil_surface, t_soil_deep, t_canopy, vwc, clay, sand, bulk_density, angle_deg, h=h,
                     omega=omega, b=b, q=q, n_h=n_h, n_v=n_v, dielectric=dielectric, teff=teff,
                     atmosphere=atmosphere, freq_hz=freq_hz, porosity=porosity, multi_angle=False,
                     out_h=out_h, out_v=out_v)


def brightness_temperature_multiangle(sm, t_soil_surface, t_soil_deep, t_canopy, vwc, clay, sand, bulk_density,
                                      angles_deg, *, h, omega, b, q=0.0, n_h=2.0, n_v=2.0, dielectric="mironov",
                                      teff="choudhury", atmosphere=None, freq_hz=SMAP_FREQ_HZ, porosity=None):
    """TB at several incidence angles (SMOS multi-angle).

    ``angles_deg`` is (n_angles,) (same for all cells) or (n_cells, n_angles), degrees in [0, 90).

    Returns
    -------
    tb_h, tb_v : (n_cells, n_members, n_angles) float64 (K); (n_cells, n_angles) if ``sm`` is 1-D.
    """
    return _evaluate(sm, t_soil_surface, t_soil_deep, t_canopy, vwc, clay, sand, bulk_density, angles_deg, h=h,
                     omega=omega, b=b, q=q, n_h=n_h, n_v=n_v, dielectric=dielectric, teff=teff,
                     atmosphere=atmosphere, freq_hz=freq_hz, porosity=porosity, multi_angle=True)


for _f in (brightness_temperature, brightness_temperature_multiangle):
    _f.__doc__ += _DOC_ARGS


def igbp_parameters(igbp_class, *, omega_source="atbd", overrides=None, q_from_h=False):
    """Per-cell tau-omega parameters from IGBP land-cover classes.

    Parameters
    ----------
    igbp_class : (n_cells,) int array
        IGBP class codes 1-16.
    omega_source : str
        "atbd" (early SMAP ATBD table, GEOS-LDAS) or "smap_dca" (current SMAP DCA albedo).
    overrides : mapping or None
        For each of "h", "omega", "b" (and "q"): a scalar (all cells), an (n_cells,) array (NaN keeps the
        table value), or a mapping {class code: value} replacing the table value for that class.
    q_from_h : bool
        If True, Q = 0.1771 h (SMAP); otherwise Q = 0 unless overridden.

    Returns
    -------
    dict with keys "h", "omega", "b", "q", each a (n_cells,) float64 array.
    """
    cls = np.asarray(igbp_class)
    if cls.ndim != 1 or not np.issubdtype(cls.dtype, np.integer):
        raise ValueError("igbp_parameters: igbp_class must be a 1-D integer array (n_cells,)")
    bad = (cls < 1) | (cls > 16)
    if np.any(bad):
        raise ValueError(f"igbp_parameters: IGBP class must be in 1..16, found {np.unique(cls[bad])[:10].tolist()}")
    column = OMEGA_SOURCES[omega_source]
    n = cls.shape[0]
    out = {
        "h": IGBP_TABLES["h"][cls].copy(),
        "omega": IGBP_TABLES[column][cls].copy(),
        "b": IGBP_TABLES["b"][cls].copy(),
    }
    out["q"] = Q_PER_H_SMAP * out["h"] if q_from_h else np.zeros(n)
    limits = {"h": (0.0, 10.0), "omega": (0.0, 1.0), "b": (0.0, 10.0), "q": (0.0, 1.0)}
    for key, val in (overrides or {}).items():
        if key not in limits:
            raise ValueError(f"igbp_parameters: unknown override {key!r}; valid: {sorted(limits)}")
        if isinstance(val, Mapping):
            for c, v in val.items():
                if not (isinstance(c, (int, np.integer)) and 1 <= c <= 16):
                    raise ValueError(f"igbp_parameters: overrides[{key!r}] class {c!r} must be an int in 1..16")
                out[key][cls == c] = float(v)
        else:
            a = np.asarray(val, dtype=np.float64)
            if a.ndim == 0:
                out[key][:] = float(a)
            elif a.shape == (n,):
                keep = np.isnan(a)
                out[key] = np.where(keep, out[key], a)
            else:
                raise ValueError(f"igbp_parameters: overrides[{key!r}] must be scalar, ({n},) or a class mapping")
        lo, hi = limits[key]
        if np.any((out[key] < lo) | (out[key] > hi)) or np.any(np.isnan(out[key])):
            raise ValueError(f"igbp_parameters: {key} must be within [{lo}, {hi}] after overrides")
    return out
