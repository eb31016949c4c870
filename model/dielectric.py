"""Soil dielectric constant at L-band: Mironov et al. (2009), Dobson et al. (1985) / Peplinski et al. (1995).

The relative permittivity is eps = eps' + j eps'' (the loss part is positive). Every model here returns the
real and imaginary parts as two floats, so the emission kernel needs no complex arithmetic.

Mironov et al. (2009), doi:10.1109/TGRS.2008.2011631 (used by SMAP L2/L4; default)
-------------------------------------------------------------------------------
C clay percent, f in Hz, eps0 = 8.854e-12 F/m, eps_inf = 4.9::

    nd = 1.634 - 0.539e-2 C + 0.2748e-4 C^2       kd = 0.03952 - 0.04038e-2 C
    mvt = 0.02863 + 0.30673e-2 C                  (maximum bound-water fraction)
    e0b = 79.8 - 85.4e-2 C + 32.7e-4 C^2          taub = 1.062e-11 + 3.450e-14 C
    sigb = 0.3112 + 0.467e-2 C                    sigu = 0.3631 + 1.217e-2 C
    e0u = 100, tauu = 8.5e-12
    Debye (x = b, u): e'x = eps_inf + (e0x - eps_inf)/(1 + (2 pi f taux)^2)
                      e"x = (e0x - eps_inf)(2 pi f taux)/(1 + (2 pi f taux)^2) + sigx/(2 pi f eps0)
    n = sqrt(sqrt(e'^2 + e"^2) + e')/sqrt(2),  k = sqrt(sqrt(e'^2 + e"^2) - e')/sqrt(2)
    mv <= mvt: nm = nd + (nb - 1) mv;                       km = kd + kb mv
    mv >  mvt: nm = nd + (nb - 1) mvt + (nu - 1)(mv - mvt); km = kd + kb mvt + ku (mv - mvt)
    eps = (nm^2 - km^2) + j 2 nm km

The refractive coefficients depend on clay and frequency only, so :func:`mironov_coefficients` is evaluated
once per cell and :func:`mironov_eps` (a few multiplications) once per member.

Dobson et al. (1985), doi:10.1109/TGRS.1985.289497, with Peplinski et al. (1995), doi:10.1109/36.387598
---------------------------------------------------------------------------------------------------
S, C sand and clay mass fractions, rho_b bulk density (g cm-3), T soil temperature (deg C), alpha = 0.65,
rho_s = 2.66 g cm-3, eps_s = (1.01 + 0.44 rho_s)^2 - 0.062, eps_inf = 4.9::

    beta' = 1.2748 - 0.519 S - 0.152 C            beta" = 1.33797 - 0.603 S - 0.166 C
    sigma_eff (Dobson)    = max(0, -1.645 + 1.939 rho_b - 2.25622 S + 1.594 C)
    sigma_eff (Peplinski) = 0.0467 + 0.2204 rho_b - 0.4111 S + 0.6614 C
    2 pi f tau_w = f_GHz (1.1109e-1 - 3.824e-3 T + 6.938e-5 T^2 - 5.096e-7 T^3)
    eps_w0 = 88.045 - 0.4147 T + 6.295e-4 T^2 + 1.075e-5 T^3
    e'fw = eps_inf + (eps_w0 - eps_inf)/(1 + (2 pi f tau_w)^2)
    e"fw = 2 pi f tau_w (eps_w0 - eps_inf)/(1 + (2 pi f tau_w)^2)
           + sigma_eff (rho_s - rho_b)/(2 pi f eps0 rho_s mv)
    e'  = [1 + (rho_b/rho_s)(eps_s^alpha - 1) + mv^beta' e'fw^alpha - mv]^(1/alpha)
    e"  = [mv^beta" e"fw^alpha]^(1/alpha)
    Peplinski real-part correction: e'_P = 1.15 e' - 0.68

mv is floored at 0.001.

Models are chosen by name from :data:`DIELECTRIC_MODELS`:

``"mironov"``                Mironov 2009 (default)
``"dobson"``                 Dobson 1985 with its own effective conductivity
``"dobson_peplinski_sigma"`` Dobson 1985 with the Peplinski effective conductivity
``"peplinski"``              Dobson 1985 with Peplinski conductivity and real-part correction
"""

import math

import numpy as np

from smda.constants import T_FREEZE
from smda.jit import inline, kernel
from smda.registry import Registry

EPS0 = 8.854e-12  # vacuum permittivity, F m-1
EPS_INF = 4.9  # high-frequency permittivity of water
RHO_SOLID = 2.66  # density of soil solids, g cm-3 (Dobson)
DOBSON_ALPHA = 0.65
MV_FLOOR_DOBSON = 0.001

# name -> integer code passed to the kernels
DIELECTRIC_MODELS = Registry("dielectric model", {"mironov": 0, "dobson": 1, "dobson_peplinski_sigma": 2,
                                                   "peplinski": 3})


@inline
def _debye_refractive(e_static, tau, sigma, freq_hz):
    """Refractive index n and extinction k of a Debye medium with ionic conductivity."""
    wt = 2.0 * math.pi * freq_hz * tau
    den = 1.0 + wt * wt
    er = EPS_INF + (e_static - EPS_INF) / den
    ei = (e_static - EPS_INF) * wt / den + sigma / (2.0 * math.pi * freq_hz * EPS0)
    mod = math.sqrt(er * er + ei * ei)
    n = math.sqrt(0.5 * (mod + er))
    return n, 0.5 * ei / n  # k = sqrt((mod - er)/2) = ei / (2 n), one square root fewer


@kernel
def mironov_coefficients(clay_frac, freq_hz):
    """Per-cell Mironov coefficients (nd, kd, mvt, nb - 1, kb, nu - 1, ku).

    Parameters
    ----------
    clay_frac : float
        Clay mass fraction (0-1).
    freq_hz : float
        Frequency (Hz).
    """
    c = 100.0 * clay_frac
    nd = 1.634 - 0.539e-2 * c + 0.2748e-4 * c * c
    kd = 0.03952 - 0.04038e-2 * c
    mvt = 0.02863 + 0.30673e-2 * c
    e0b = 79.8 - 85.4e-2 * c + 32.7e-4 * c * c
    taub = 1.062e-11 + 3.450e-14 * c
    sigb = 0.3112 + 0.467e-2 * c
    sigu = 0.3631 + 1.217e-2 * c
    n_b, k_b = _debye_refractive(e0b, taub, sigb, freq_hz)
    n_u, k_u = _debye_refractive(100.0, 8.5e-12, sigu, freq_hz)
    return nd, kd, mvt, n_b - 1.0, k_b, n_u - 1.0, k_u


@inline
def mironov_eps(mv, nd, kd, mvt, nb1, kb, nu1, ku):
    """Mironov permittivity from per-cell coefficients.

    Returns (eps_real, eps_imag).
    """
    # branch-free form (min/max and selects), so the member loop does not mispredict around mvt
    mv_b = min(mv, mvt)
    mv_u = max(mv - mvt, 0.0)
    nm = nd + nb1 * mv_b + nu1 * mv_u
    km = kd + kb * mv_b + ku * mv_u
    return nm * nm - km * km, 2.0 * nm * km


@kernel
def dobson_eps(mv, sand_frac, clay_frac, bulk_density, t_soil_c, freq_hz, variant):
    """Dobson (1985) permittivity; ``variant`` 1 Dobson sigma, 2 Peplinski sigma, 3 Peplinski + correction.

    Parameters
    ----------
    mv : float
        Volumetric soil moisture (m3 m-3); floored at 0.001.
    sand_frac, clay_frac : float
        Sand and clay mass fractions (0-1).
    bulk_density : float
        Dry bulk density (g cm-3).
    t_soil_c : float
        Soil temperature (deg C).
    freq_hz : float
        Frequency (Hz).

    Returns
    -------
    (eps_real, eps_imag)
    """
    a = DOBSON_ALPHA
    inv_a = 1.0 / a
    rho_s = RHO_SOLID
    eps_s = (1.01 + 0.44 * rho_s) ** 2 - 0.062
    beta1 = 1.2748 - 0.519 * sand_frac - 0.152 * clay_frac
    beta2 = 1.33797 - 0.603 * sand_frac - 0.166 * clay_frac
    if variant == 1:
        sig = -1.645 + 1.939 * bulk_density - 2.25622 * sand_frac + 1.594 * clay_frac
        if sig < 0.0:
            sig = 0.0
    else:
        sig = 0.0467 + 0.2204 * bulk_density - 0.4111 * sand_frac + 0.6614 * clay_frac
    mv = max(mv, MV_FLOOR_DOBSON)
    t = t_soil_c
    wt = freq_hz * 1e-9 * (1.1109e-1 - 3.824e-3 * t + 6.938e-5 * t * t - 5.096e-7 * t * t * t)
    ew0 = 88.045 - 0.4147 * t + 6.295e-4 * t * t + 1.075e-5 * t * t * t
    den = 1.0 + wt * wt
    efw_r = EPS_INF + (ew0 - EPS_INF) / den
    cond = sig * (rho_s - bulk_density) / (2.0 * math.pi * freq_hz * EPS0 * rho_s)
    efw_i = wt * (ew0 - EPS_INF) / den + cond / mv
    # real part
    mvb1 = mv**beta1
    efr_a = efw_r**a
    x = 1.0 + (bulk_density / rho_s) * (eps_s**a - 1.0) + mvb1 * efr_a - mv
    er = x**inv_a
    # imaginary part: (mv^beta2 efw_i^a)^(1/a) = mv^(beta2/a) efw_i
    p = beta2 * inv_a
    ei = mv**p * efw_i
    if variant == 3:
        er = 1.15 * er - 0.68
    return er, ei


def permittivity(mv, clay, sand=None, bulk_density=None, t_soil_k=None, *, model="mironov", freq_hz=1.4e9):
    """Complex soil permittivity for arrays (checked Python entry point; for tests and diagnostics).

    Parameters
    ----------
    mv : array_like
        Volumetric soil moisture (m3 m-3), in [0, 1).
    clay, sand : array_like, broadcastable to ``mv``
        Clay and sand mass fractions (0-1); sand only needed for Dobson variants.
    bulk_density : array_like
        Dry bulk density (g cm-3), Dobson variants only.
    t_soil_k : array_like
        Soil temperature (K), Dobson variants only.
    model : str
        One of :data:`DIELECTRIC_MODELS`.
    freq_hz : float
        Frequency (Hz); the models are calibrated for L-band (about 1-2 GHz).

    Returns
    -------
    eps : complex ndarray of the broadcast shape
    """
    mid = DIELECTRIC_MODELS[model]
    if not (0.3e9 <= freq_hz <= 18e9):
        raise ValueError(f"permittivity: freq_hz must be within 0.3e9-18e9 Hz, got {freq_hz}")
    mv = np.asarray(mv, dtype=np.float64)
    if np.any(~np.isfinite(mv)) or np.any((mv < 0) | (mv >= 1)):
        raise ValueError("permittivity: mv must be finite and within [0, 1) m3 m-3")
    clay = np.asarray(clay, dtype=np.float64)
    if np.any((clay < 0) | (clay > 1)) or np.any(~np.isfinite(clay)):
        raise ValueError("permittivity: clay must be a mass fraction within [0, 1]")
    if mid == 0:
        shape = np.broadcast_shapes(mv.shape, clay.shape)
        args = [np.broadcast_to(v, shape).ravel() for v in (mv, clay)]
        zeros = np.zeros_like(args[0])
        args += [zeros, zeros, zeros]
    else:
        if sand is None or bulk_density is None or t_soil_k is None:
            raise ValueError(f"permittivity: model {model!r} needs sand, bulk_density and t_soil_k")
        sand = np.asarray(sand, dtype=np.float64)
        bd = np.asarray(bulk_density, dtype=np.float64)
        tk = np.asarray(t_soil_k, dtype=np.float64)
        if np.any((sand < 0) | (sand > 1)) or np.any(sand + clay > 1 + 1e-9):
            raise ValueError("permittivity: sand must be within [0, 1] and sand + clay <= 1")
        if np.any((bd <= 0) | (bd >= RHO_SOLID)):
            raise ValueError(f"permittivity: bulk_density must be within (0, {RHO_SOLID}) g cm-3")
        if np.any((tk < 253.15) | (tk > 333.15)):
            raise ValueError("permittivity: t_soil_k must be within [253.15, 333.15] K")
        shape = np.broadcast_shapes(mv.shape, clay.shape, sand.shape, bd.shape, tk.shape)
        args = [np.broadcast_to(v, shape).ravel() for v in (mv, clay, sand, bd, tk)]
    eps = np.empty(args[0].shape, np.complex128)
    _permittivity_array(*args, mid, float(freq_hz), eps)
    return eps.reshape(shape)


@kernel
def _permittivity_array(mv, clay, sand, bd, tk, model_id, freq_hz, eps):
    for i in range(mv.shape[0]):
        if model_id == 0:
            nd, kd, mvt, nb1, kb, nu1, ku = mironov_coefficients(clay[i], freq_hz)
            er, ei = mironov_eps(mv[i], nd, kd, mvt, nb1, kb, nu1, ku)
        else:
            er, ei = dobson_eps(mv[i], sand[i], clay[i], bd[i], tk[i] - T_FREEZE, freq_hz, model_id)
        eps[i] = complex(er, ei)
