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

Per-observation radii: each observation o may have its own half-width c_o (e.g. ~10 km for a 3 km
soil-moisture retrieval, ~60 km for a 36 km TB). Observation-to-point tapers (LETKF, EnKF gain,
EAKF regressions) are GC(d / c_o) with the observation's own c_o, cut at 2 c_o.

The observation-observation taper of the stochastic EnKF must be symmetric and positive
semi-definite. GC(d / c) is the normalised self-convolution in R^3 of the cone h_c(x) = (1 - |x|/c)_+
(Gaspari and Cohn 1999, section 4; checked in the tests), so for radii c_i, c_j we use

    rho_ij = (h_ci * h_cj)(d_ij) / sqrt((h_ci * h_ci)(0) (h_cj * h_cj)(0))

(the construction of Gaspari, Cohn, Guo and Pawson 2006, doi:10.1256/qj.05.08). It is the inner
product of the unit-norm functions h_ci(. - x_i) / ||h_ci||, so the matrix is a Gram matrix: PSD
with unit diagonal for any radii (points in the plane are points of R^3). It equals GC(d / c)
(bitwise: the same formula is used) when c_i = c_j = c, vanishes beyond c_i + c_j (the mean of the
two cut-offs), and for c_i != c_j is computed by Gauss-Legendre quadrature that is exact for the
piecewise-polynomial integrand (:func:`cross_taper`). Neither GC(d / sqrt(c_i c_j)) nor the product
of the two tapers is PSD in general. Mixing an infinite radius with finite ones has no such
construction (an infinite cone has no finite norm) and is rejected there.
"""

import numpy as np
from numba import types
from numba.extending import overload

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


def obs_radius(radius, o):
    """Half-width of observation o: ``radius[o]`` for per-observation radii (n_obs,), else the scalar itself."""
    return radius[o] if np.ndim(radius) else radius


@overload(obs_radius, inline="always")
def _obs_radius_jit(radius, o):
    if isinstance(radius, types.Array):
        return lambda radius, o: radius[o]
    return lambda radius, o: radius


@inline
def _take_obs(px, py, obs_x, obs_y, radius, period, cutoff, o, idx_out, rho_out, k):
    """Append observation o to (idx_out, rho_out) at position k if its taper at (px, py) is above ``cutoff``;
    returns the new count."""
    d2 = distance2(px, py, obs_x[o], obs_y[o], period)
    c = obs_radius(radius, o)
    if d2 < 4.0 * c * c:
        rho = gaspari_cohn(np.sqrt(d2) / c)
        if rho > cutoff:
            idx_out[k] = o
            rho_out[k] = rho
            return k + 1
    return k


@kernel
def local_obs(px, py, obs_x, obs_y, radius, period, cutoff, idx_out, rho_out):
    """Observations o within 2 * radius[o] of point (px, py) with a Gaspari-Cohn taper above ``cutoff``.

    Fills ``idx_out[:k]`` (int64 obs indices, ascending) and ``rho_out[:k]`` and returns k.
    ``radius`` (n_obs,) each observation's half-width c_o in the units of the coordinates, or one for all
    (inf: taper 1 at any distance); ``cutoff`` in [0, 1) (0: every observation with a positive taper).
    """
    k = 0
    for o in range(obs_x.shape[0]):
        k = _take_obs(px, py, obs_x, obs_y, radius, period, cutoff, o, idx_out, rho_out, k)
    return k


@kernel
def obs_buckets(obs_x, obs_y, radius, period):
    """Spatial index of the observations for :func:`local_obs_near`: square buckets of side h >= the largest
    cut-off 2 c_o, so every observation within its cut-off of a point lies in the 3 x 3 buckets around it.

    Returns (x0, y0, h, nbx, nby, start, order): bucket (bi, bj) covers [x0 + bi h, x0 + (bi + 1) h) x
    [y0 + bj h, ...) and holds the observations ``order[start[b]:start[b + 1]]`` (ascending), b = bj nbx + bi.
    Built from the observations only, so it is the same on every MPI rank. nbx = 0 (no index: scan all) for
    no observations, an infinite radius, a periodic x axis or non-finite positions; h is doubled until there are at most
    4 n_obs + 1024 buckets.
    """
    n = obs_x.shape[0]
    none = (0.0, 0.0, 0.0, 0, 0, np.empty(0, np.int64), np.empty(0, np.int64))
    if n == 0 or period > 0.0:
        return none
    cmax = 0.0
    for o in range(n):
        c = obs_radius(radius, o)
        if not c < np.inf:
            return none
        cmax = max(cmax, c)
    x0, x1, y0, y1 = obs_x.min(), obs_x.max(), obs_y.min(), obs_y.max()
    if not (np.isfinite(x1 - x0) and np.isfinite(y1 - y0)):  # a non-finite position is never local: scan all
        return none
    h = 2.0 * cmax * (1.0 + 1e-9)  # the margin keeps the 3 x 3 rule exact under rounding of the bucket indices
    nbx, nby = int((x1 - x0) / h) + 1, int((y1 - y0) / h) + 1
    while nbx * nby > 4 * n + 1024:
        h *= 2.0
        nbx, nby = int((x1 - x0) / h) + 1, int((y1 - y0) / h) + 1
    start = np.zeros(nbx * nby + 1, np.int64)
    bucket = np.empty(n, np.int64)
    for o in range(n):
        b = int((obs_y[o] - y0) / h) * nbx + int((obs_x[o] - x0) / h)
        bucket[o] = b
        start[b + 1] += 1
    for b in range(nbx * nby):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    order = np.empty(n, np.int64)
    for o in range(n):
        order[fill[bucket[o]]] = o
        fill[bucket[o]] += 1
    return x0, y0, h, nbx, nby, start, order


@kernel
def local_obs_near(px, py, obs_x, obs_y, radius, period, cutoff, index, idx_out, rho_out):
    """:func:`local_obs` through the index of :func:`obs_buckets`: the same observations and tapers, scanning
    only the 3 x 3 buckets around the point. The indices come in bucket order (by bucket row, bucket, then
    ascending), which depends on the point and the observations only; without an index (nbx = 0) all are scanned.
    """
    x0, y0, h, nbx, nby, start, order = index
    if nbx == 0:
        return local_obs(px, py, obs_x, obs_y, radius, period, cutoff, idx_out, rho_out)
    bi = int(np.floor((px - x0) / h))
    bj = int(np.floor((py - y0) / h))
    ia = min(max(bi - 1, 0), nbx)
    ib = max(min(bi + 2, nbx), ia)
    k = 0
    for qj in range(max(bj - 1, 0), min(bj + 2, nby)):
        for t in range(start[qj * nbx + ia], start[qj * nbx + ib]):  # a row's buckets are contiguous in ``order``
            k = _take_obs(px, py, obs_x, obs_y, radius, period, cutoff, order[t], idx_out, rho_out, k)
    return k


_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)  # exact for the degree-5 pieces of the cross-convolution


@inline
def _cone_moment(s, c):
    """Antiderivative of s h_c(s) = s (1 - s / c): s^2 / 2 - s^3 / (3 c)."""
    return s * s * (0.5 - s / (3.0 * c))


@kernel
def cross_taper(d, ci, cj):
    """Symmetric PSD taper between points at distance d with half-widths ci, cj (finite, > 0).

    GC(d / ci) if ci == cj; otherwise (h_ci * h_cj)(d) / sqrt(N_ci N_cj), the normalised R^3 convolution of
    the cones h_c(x) = (1 - |x|/c)_+ (module docstring), N_c = 2 pi c^3 / 15 = ||h_c||^2. With r = |x| and
    the point at distance d, (h_ci * h_cj)(d) = (2 pi / d) int_0^ci r h_ci(r) [P(min(r + d, cj)) - P(|r - d|)] dr
    over |r - d| < cj, P the antiderivative of s h_cj(s); the integrand is a polynomial of degree <= 5 between
    the breakpoints d, cj - d, d - cj, d + cj, integrated exactly by 4-point Gauss-Legendre per piece.
    """
    if ci == cj:
        return gaspari_cohn(d / ci)
    if ci > cj:  # bitwise symmetric in (ci, cj)
        ci, cj = cj, ci
    if d >= ci + cj:
        return 0.0
    norm = 2.0 * np.pi / 15.0 * np.sqrt(ci * ci * ci * cj * cj * cj)
    m = min(ci, cj)
    if d <= 1e-9 * m:  # coincident points: 4 pi int_0^m r^2 h_ci h_cj dr (the integrand is smooth in d there)
        return 4.0 * np.pi * m * m * m * (1.0 / 3.0 - 0.25 * m * (1.0 / ci + 1.0 / cj) + 0.2 * m * m / (ci * cj)) / norm
    b = np.empty(6)
    b[0], b[1], nb = 0.0, ci, 2
    for t in (d, cj - d, d - cj, d + cj):
        if 0.0 < t < ci:
            b[nb] = t
            nb += 1
    b[:nb].sort()
    tot = 0.0
    for p in range(nb - 1):
        h, mid = 0.5 * (b[p + 1] - b[p]), 0.5 * (b[p + 1] + b[p])
        for q in range(_GL_X.shape[0]):
            r = mid + h * _GL_X[q]
            lo = abs(r - d)
            if lo < cj:
                tot += h * _GL_W[q] * r * (1.0 - r / ci) * (_cone_moment(min(r + d, cj), cj) - _cone_moment(lo, cj))
    return max(2.0 * np.pi / d * tot / norm, 0.0)


@kernel
def _pair_taper(ax, ay, ra, bx, by, rb, period, cutoff, out):
    for i in range(ax.shape[0]):
        for j in range(bx.shape[0]):
            rho = cross_taper(np.sqrt(distance2(ax[i], ay[i], bx[j], by[j], period)), ra[i], rb[j])
            out[i, j] = rho if rho > cutoff else 0.0


def pairwise_taper(a_xy_m, b_xy_m, radius_km, period_km=None, cutoff=0.0, radius_b_km=None):
    """Dense taper matrix (len(a), len(b)) between two sets of points (m).

    ``radius_km``: the half-width c (km) of every point, or one per point of a (len(a),); ``radius_b_km``
    those of b (default: ``radius_km``, which then must be a scalar or also fit b). Pairs with equal radii
    get GC(d / c), others :func:`cross_taper`, so a set against itself gives a PSD matrix (the observation-
    observation taper rho_oo of the stochastic EnKF; small: n_obs^2). Tapers at or below ``cutoff`` are set to 0.
    """
    ra = _radii_m(radius_km, np.shape(a_xy_m)[0], "radius_km")
    rb = _radii_m(radius_km if radius_b_km is None else radius_b_km, np.shape(b_xy_m)[0], "radius_b_km")
    return taper_matrix(a_xy_m, b_xy_m, ra, rb, _period_m(period_km), cutoff)


def taper_matrix(a_xy_m, b_xy_m, ra_m, rb_m, period_m, cutoff):
    """:func:`pairwise_taper` with radii (one per point) and period in m (period 0: not periodic)."""
    a = np.ascontiguousarray(a_xy_m, dtype=np.float64)
    b = np.ascontiguousarray(b_xy_m, dtype=np.float64)
    ra = np.ascontiguousarray(ra_m, dtype=np.float64)
    rb = np.ascontiguousarray(rb_m, dtype=np.float64)
    if np.isinf(ra).any() or np.isinf(rb).any():
        if not (np.isinf(ra).all() and np.isinf(rb).all()):
            raise ValueError("localization: infinite and finite radii cannot be mixed in the observation-observation "
                             "taper (no PSD taper between them); give every observation a finite radius")
    out = np.empty((a.shape[0], b.shape[0]))
    _pair_taper(a[:, 0].copy(), a[:, 1].copy(), ra, b[:, 0].copy(), b[:, 1].copy(), rb, float(period_m),
                float(cutoff), out)
    return out


def _radii_m(radius_km, n, name):
    """Radii in m, one per point (n,), from a scalar or (n,) array in km (each > 0; inf allowed)."""
    r = np.asarray(radius_km, dtype=np.float64)
    if r.ndim == 0:
        r = np.full(n, float(r))
    if r.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {r.shape}")
    if not np.all(r > 0):
        raise ValueError(f"{name}: localization radii must be > 0 (inf for none)")
    return r * 1000.0


def _period_m(period_km):
    """Period in m, or 0.0 meaning not periodic."""
    return 0.0 if period_km is None else float(period_km) * 1000.0
