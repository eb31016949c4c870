"""Covariance localization: the Gaspari-Cohn taper and local-observation search.

Gaspari and Cohn (1999, doi:10.1002/qj.49712555417), eq. 4.10, compactly supported fifth-order
piecewise rational function of r = d / c (d distance, c the *localization radius*):

    GC(r) = 1 - 5/3 r^2 + 5/8 r^3 + 1/2 r^4 - 1/4 r^5                          0 <= r <= 1
    GC(r) = 4 - 5 r + 5/3 r^2 + 5/8 r^3 - 1/2 r^4 + 1/12 r^5 - 2/(3 r)         1 <  r <= 2
    GC(r) = 0                                                                    r > 2

so GC = 1, 0.684896, 0.208333, 0.016493, 0 at r = 0, 0.5, 1, 1.5, 2.

Convention used throughout smda: ``loc_radius_km`` is c, the half-width; the taper reaches zero
at 2 c (the cut-off distance, beyond which observations are not used at all). GC(r = 1) = 0.208.
An infinite radius gives a taper of 1 everywhere (no localization).

The "localization radius" r of DAPPER (``loc_rad``) and of Sakov's codes is a length scale of
Gaussian-like width: the GC taper is applied with half-width c = 1.82 r (:data:`DAPPER_HALF_WIDTH`,
close to sqrt(10/3) = 1.826, for which GC(d/c) = 1 - d^2/(2 r^2) + O(d^3) matches
exp(-d^2/(2 r^2)) to second order; GC = 0.603 at d = r). So r = 4 grid points gives
c = 7.28 grid points (taper zero at 14.56), and a radius r in km gives ``loc_radius_km`` = 1.82 r.
DAPPER also drops observations whose taper is at most 1e-3 (its cut-off); ``taper_cutoff`` does the
same here (0, the default, keeps every observation with a positive taper).

Distances are Euclidean in the projected plane (EASE-Grid 2.0 metres). With ``period_m`` the x
axis is periodic (a ring of that circumference, used for Lorenz-96 test problems):
dx = min(|dx| mod P, P - |dx| mod P).

Observation positions are the footprint centres; the distance of a 1 km cell to an observation is
measured from the cell centre to the footprint centre.
"""

import numpy as np

from smda.jit import inline, kernel

DAPPER_HALF_WIDTH = 1.82  # GC half-width c per unit of DAPPER's / Sakov's localization radius r


@kernel
def gaspari_cohn(r):
    """Gaspari-Cohn taper (scalar) of the normalised distance r = d / c, r >= 0."""
    if r <= 1.0:
        r2 = r * r
        return 1.0 + r2 * (-5.0 / 3.0 + r * (5.0 / 8.0 + r * (0.5 - 0.25 * r)))
    if r < 2.0:
        return (4.0 + r * (-5.0 + r * (5.0 / 3.0 + r * (5.0 / 8.0 + r * (-0.5 + r / 12.0)))) - 2.0 / (3.0 * r))
    return 0.0


def gaspari_cohn_taper(distance, radius):
    """Vectorised Gaspari-Cohn taper GC(distance / radius) (any shape, same units for both).

    ``radius`` is c (the taper vanishes at 2 c); ``radius = inf`` gives ones.
    """
    d = np.asarray(distance, dtype=np.float64)
    if not radius > 0:
        raise ValueError(f"localization radius must be > 0, got {radius}")
    r = d / radius
    out = np.empty_like(r)
    flat, rf = out.reshape(-1), r.reshape(-1)
    for k in range(rf.size):
        flat[k] = gaspari_cohn(rf[k])
    return out


@inline
def distance2(ax, ay, bx, by, period):
    """Squared distance; x periodic with ``period`` if period > 0."""
    dx = abs(ax - bx)
    if period > 0.0:
        dx = dx % period
        if period - dx < dx:
            dx = period - dx
    dy = ay - by
    return dx * dx + dy * dy


@kernel
def local_obs(px, py, obs_x, obs_y, radius, period, cutoff, idx_out, rho_out):
    """Observations within 2 * radius of point (px, py) with a Gaspari-Cohn taper above ``cutoff``.

    Fills ``idx_out[:k]`` (int64 obs indices, ascending) and ``rho_out[:k]`` and returns k.
    ``radius`` in the units of the coordinates (inf: all observations with taper 1); ``cutoff``
    in [0, 1) (0: every observation with a positive taper).
    """
    cut2 = 4.0 * radius * radius
    k = 0
    for o in range(obs_x.shape[0]):
        d2 = distance2(px, py, obs_x[o], obs_y[o], period)
        if d2 < cut2:
            rho = gaspari_cohn(np.sqrt(d2) / radius)
            if rho > cutoff:
                idx_out[k] = o
                rho_out[k] = rho
                k += 1
    return k


@kernel
def _pair_taper(ax, ay, bx, by, radius, period, cutoff, out):
    for i in range(ax.shape[0]):
        for j in range(bx.shape[0]):
            rho = gaspari_cohn(np.sqrt(distance2(ax[i], ay[i], bx[j], by[j], period)) / radius)
            out[i, j] = rho if rho > cutoff else 0.0


def pairwise_taper(a_xy_m, b_xy_m, radius_km, period_km=None, cutoff=0.0):
    """Dense Gaspari-Cohn taper matrix (len(a), len(b)) between two sets of points (m).

    Tapers at or below ``cutoff`` are set to 0. Used for the observation-observation taper rho_oo
    of the stochastic EnKF (small: n_obs^2).
    """
    a = np.ascontiguousarray(a_xy_m, dtype=np.float64)
    b = np.ascontiguousarray(b_xy_m, dtype=np.float64)
    out = np.empty((a.shape[0], b.shape[0]))
    _pair_taper(a[:, 0].copy(), a[:, 1].copy(), b[:, 0].copy(), b[:, 1].copy(),
                float(radius_km) * 1000.0, _period_m(period_km), float(cutoff), out)
    return out


def _period_m(period_km):
    """Period in m, or 0.0 meaning not periodic."""
    return 0.0 if period_km is None else float(period_km) * 1000.0
