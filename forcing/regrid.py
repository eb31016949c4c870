"""Regridding of regular lat/lon forcing to 1 km model cells, with elevation correction.

* States (t_air, q_air, p_surf, wind, lw_down, sw_down): bilinear interpolation in (lat, lon).
* Precipitation: mass-conserving. Each model cell belongs to the forcing cell that contains its
  centre; the bilinear field is rescaled inside every forcing cell k so that the area-weighted mean
  over the model cells in k equals the forcing value P_k::

      P_i = B_i P_k / (sum_j a_j B_j / sum_j a_j)    (j in k; uniform P_k where sum a B = 0)

  hence ``sum_i a_i P_i = sum_k P_k A_k`` (A_k the model-cell area inside k) to round-off.
* Elevation (lapse-rate) correction from the forcing-grid elevation z_f (bilinear to the cells) to
  the 1 km elevation z (Cosgrove et al. 2003, doi:10.1029/2002JD003118)::

      T = T_f + Gamma (z - z_f),                         Gamma = -6.5e-3 K m-1
      p = p_f (T / T_f)^(-g / (R_d Gamma))              (hydrostatic, constant lapse rate)
      q : relative humidity held constant, q = q_sat(T, p) RH_f

Longitudes are handled modulo 360 (global grids wrap).
"""

from __future__ import annotations

import numpy as np

from smda.constants import GRAVITY, P_STANDARD, R_DRY, saturation_vapour_pressure, specific_humidity, vapour_pressure
from smda.jit import kernel

LAPSE_RATE = -6.5e-3  # K m-1

@kernel
def lapse_adjust(t, p, q, dz, gamma):
    """Elevation-correct (in place) t (K), p (Pa), q (kg/kg) for height differences dz (m); arrays (n,).

    Any of p, q may be empty (size 0) to skip it (p is then not corrected and q uses the old p).
    """
    expo = -GRAVITY / (R_DRY * gamma)
    n = t.shape[0]
    for i in range(n):
        t0 = t[i]
        t1 = t0 + gamma * dz[i]
        p0 = p[i] if p.shape[0] else P_STANDARD
        p1 = p0 * (t1 / t0) ** expo if p.shape[0] else p0
        if q.shape[0]:
            rh = vapour_pressure(q[i], p0) / saturation_vapour_pressure(t0)
            q[i] = specific_humidity(rh * saturation_vapour_pressure(t1), p1)
        if p.shape[0]:
            p[i] = p1
        t[i] = t1


class BilinearWeights:
    """Bilinear (and cell-membership) weights from a regular lat/lon grid to points.

    Parameters
    ----------
    grid_lat, grid_lon : 1-D (ny,), (nx,), degrees; monotonic (either direction), regular spacing.
    lat, lon : (n,) target points (degrees).
    where : text for error messages (e.g. the forcing file).
    """

    def __init__(self, grid_lat, grid_lon, lat, lon, *, where: str = "forcing grid"):
        glat = np.asarray(grid_lat, float)
        glon = np.asarray(grid_lon, float)
        lat = np.asarray(lat, float).ravel()
        lon = np.asarray(lon, float).ravel()
        if lat.shape != lon.shape:
            raise ValueError("lat and lon of the cells must have the same shape")
        self.n = lat.size
        self.ny, self.nx = glat.size, glon.size
        self.iy0, self.iy1, self.wy = _axis_weights(glat, lat, "latitude", where, wrap=False)
        self.ix0, self.ix1, self.wx = _axis_weights(glon, lon, "longitude", where, wrap=True)
        # forcing cell that contains each point (nearest centre on each axis)
        self.ky = np.where(self.wy < 0.5, self.iy0, self.iy1)
        self.kx = np.where(self.wx < 0.5, self.ix0, self.ix1)
        self.owner = self.ky * self.nx + self.kx

    def bilinear(self, field2d):
        """(ny, nx) -> (n,) bilinear interpolation."""
        f = np.asarray(field2d, float)
        if f.shape != (self.ny, self.nx):
            raise ValueError(f"field shape {f.shape} != forcing grid {(self.ny, self.nx)}")
        return ((1 - self.wy) * ((1 - self.wx) * f[self.iy0, self.ix0] + self.wx * f[self.iy0, self.ix1])
                + self.wy * ((1 - self.wx) * f[self.iy1, self.ix0] + self.wx * f[self.iy1, self.ix1]))

    def conservative(self, field2d, cell_area=None):
        """(ny, nx) -> (n,) mass-conserving remap (see module docstring); cell_area (n,) or None (equal)."""
        f = np.asarray(field2d, float)
        b = np.maximum(self.bilinear(f), 0.0)
        a = np.ones(self.n) if cell_area is None else np.asarray(cell_area, float).ravel()
        nk = self.ny * self.nx
        area_k = np.bincount(self.owner, weights=a, minlength=nk)
        ab_k = np.bincount(self.owner, weights=a * b, minlength=nk)
        fk = f.ravel()[self.owner]
        mean_b = ab_k[self.owner] / area_k[self.owner]
        ok = mean_b > 0
        out = fk.copy()
        out[ok] = b[ok] * (fk[ok] / mean_b[ok])
        return out


def _axis_weights(axis, pts, what, where, *, wrap):
    if axis.ndim != 1 or axis.size < 1:
        raise ValueError(f"{where}: {what} coordinate must be 1-D and non-empty")
    if axis.size == 1:
        z = np.zeros(pts.size, np.int64)
        tol = 1.0  # a single point: accept targets within one degree
        if np.any(np.abs(_wrapdiff(pts, axis[0]) if wrap else pts - axis[0]) > tol):
            raise ValueError(f"{where}: cells lie outside the single-point forcing {what} {axis[0]}")
        return z, z, np.zeros(pts.size)
    asc = axis[1] > axis[0]
    ax = axis if asc else axis[::-1]
    d = np.diff(ax)
    if np.any(d <= 0) or not np.allclose(d, d[0], rtol=1e-4):
        raise ValueError(f"{where}: {what} coordinate is not regular and monotonic")
    step = d[0]
    if wrap:
        # shift targets into [ax0, ax0 + 360)
        p = ax[0] + np.mod(pts - ax[0], 360.0)
        span_global = abs(ax.size * step - 360.0) < 1e-6 * 360
    else:
        p = pts
        span_global = False
    fpos = (p - ax[0]) / step
    i0 = np.floor(fpos).astype(np.int64)
    w = fpos - i0
    n = ax.size
    if span_global:
        i1 = (i0 + 1) % n
    else:
        edge = (fpos >= n - 1) & (fpos <= n - 1 + 0.5 + 1e-9)
        low = (fpos < 0) & (fpos >= -0.5 - 1e-9)
        if np.any((fpos < -0.5 - 1e-9) | (fpos > n - 0.5 + 1e-9)):
            raise ValueError(f"{where}: cells lie outside the forcing grid's {what} range "
                             f"[{ax[0] - step / 2}, {ax[-1] + step / 2}]")
        i0 = np.where(edge, n - 2, np.where(low, 0, i0))
        w = np.where(edge, 1.0, np.where(low, 0.0, w))
        i1 = i0 + 1
    if not asc:
        i0, i1 = n - 1 - i0, n - 1 - i1
    return i0, i1, w


def _wrapdiff(a, b):
    return (np.asarray(a) - b + 180.0) % 360.0 - 180.0
