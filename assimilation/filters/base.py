"""The interface every filter implements: settings shared by all, input checks, the analysis entry point.

A filter is a frozen, keyword-only dataclass of its settings; :meth:`Filter.analyse` checks the
inputs, applies the background (gross-error) check and adaptive inflation, calls the filter's
``_update`` on the used observations and returns the diagnostics. A new filter subclasses
:class:`Filter`, implements ``_update`` with pure kernels, and registers in
:data:`smda.assimilation.filters.FILTERS`. Arguments and the MPI contract: see that package.
"""

from __future__ import annotations

import abc
import logging
import math
from dataclasses import dataclass

import numpy as np

from smda.assimilation.filters.diagnostics import AnalysisDiagnostics, gross_error_mask, innovation_statistics
from smda.assimilation.filters.inflation import adaptive_inflation, check_inflation

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Filter(abc.ABC):
    """Settings shared by all filters.

    inflation : multiplicative prior inflation *of the anomalies*, a >= 1: X'_b <- a X'_b, so the
        background variance is multiplied by lambda = a^2. This is the factor of Anderson and Anderson
        (1999), Sakov and Oke (2008) and DAPPER's ``infl`` (take their value as it is); a variance
        factor rho (Hunt et al. 2007; DART) converts as a = sqrt(rho), e.g. rho = 1.04 -> a = 1.0198
    adaptive_inflation : estimate the variance factor each cycle from innovations; the anomaly factor
        used is max(inflation, sqrt(estimate))
    adaptive_inflation_max : upper bound of the adaptive estimate, as an anomaly factor
    rtps, rtpp : relaxation to prior spread / perturbations, in [0, 1]
    gross_error_sigma : background check threshold in units of sqrt(sigma_HX^2 + R) (inf: off)
    period_km : period of the x coordinate for ring problems (None: plane)
    seed : random seed (perturbed observations)
    """

    inflation: float = 1.0
    adaptive_inflation: bool = False
    adaptive_inflation_max: float = math.sqrt(2.0)
    rtps: float = 0.0
    rtpp: float = 0.0
    gross_error_sigma: float = math.inf
    period_km: float | None = None
    seed: int = 0

    correlated_errors = False  # whether _update takes a non-diagonal R (obs_error_corr_km > 0)

    def __post_init__(self):
        check_inflation(self.inflation, self.rtps, self.rtpp)
        if not (math.isfinite(self.adaptive_inflation_max) and self.adaptive_inflation_max >= 1.0):
            raise ValueError(f"adaptive_inflation_max must be >= 1, got {self.adaptive_inflation_max}")
        if not self.gross_error_sigma > 0:
            raise ValueError(f"gross_error_sigma must be > 0, got {self.gross_error_sigma}")
        if self.period_km is not None and not (math.isfinite(self.period_km) and self.period_km > 0):
            raise ValueError(f"period_km must be a positive finite length or None, got {self.period_km}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")

    # -- entry point -------------------------------------------------------------------------------
    def analyse(self, X, cell_xy_m, HX, y, obs_err_var, obs_xy_m, *, obs_ids, cycle,
                lower=None, upper=None, obs_loc_radius_km=None, obs_error_corr_km=None,
                obs_group=None) -> AnalysisDiagnostics:
        """Analyse the ensemble X in place; see the module docstring for the arguments.

        ``obs_loc_radius_km`` (n_obs,): each observation's localization half-width c (km, > 0, inf: none),
        for the localized filters; None: the filter's ``loc_radius_km`` for all (ignored by the global ETKF).
        ``obs_error_corr_km`` (n_obs,) and ``obs_group`` (n_obs,) int: errors of observations of one group
        (e.g. a source) with a length L > 0 (one per group) are correlated, R_ij = sigma_i sigma_j C(p_i - p_j; L)
        (see :mod:`smda.assimilation.filters.letkf`); 0 or None: independent. Filters without
        ``correlated_errors`` support raise ValueError if any L > 0.

        Returns :class:`smda.assimilation.filters.diagnostics.AnalysisDiagnostics` (O-F statistics of the used
        observations, per-observation O-F and HX spread, used mask, the anomaly inflation factor used,
        clipped amounts).
        """
        a = _check_inputs(X, cell_xy_m, HX, y, obs_err_var, obs_xy_m, obs_ids, cycle, lower, upper)
        HX, y, r, oxy, ids, lo, hi = a
        c_m = None if obs_loc_radius_km is None else _obs_radii_m(obs_loc_radius_km, y.size)
        corr = _error_correlation(obs_error_corr_km, obs_group, y.size)
        if corr is not None and not self.correlated_errors:
            raise ValueError(f"obs_error_corr_km > 0 (correlated observation errors, namelist observations[]."
                             f"correlated_errors) is not supported by {type(self).__name__}; use letkf or etkf")
        n = X.shape[2]
        d_all = y - HX.mean(axis=1)
        var_all = HX.var(axis=1, ddof=1)
        used = gross_error_mask(d_all, var_all, r, self.gross_error_sigma)
        HXu, yu, ru, oxyu, idsu = HX[used], y[used], r[used], oxy[used], ids[used]
        lam = self.inflation ** 2  # the kernels take the variance factor lambda = a^2
        if self.adaptive_inflation:
            lam = max(lam, adaptive_inflation(d_all[used], var_all[used], ru, self.adaptive_inflation_max ** 2))
        clip = np.zeros((X.shape[1], 3))
        cxy = np.ascontiguousarray(cell_xy_m, dtype=np.float64)
        if X.shape[0] > 0:
            self._update(X, cxy[:, 0].copy(), cxy[:, 1].copy(), np.ascontiguousarray(HXu), yu, ru,
                         np.ascontiguousarray(oxyu[:, 0]), np.ascontiguousarray(oxyu[:, 1]), idsu,
                         int(cycle), lam, lo, hi, clip, None if c_m is None else c_m[used],
                         None if corr is None else (corr[0][used], corr[1][used]))
        n_used = int(used.sum())
        logger.debug("%s: %d obs used, %d rejected, anomaly inflation %.4f, N=%d", type(self).__name__,
                     n_used, used.size - n_used, math.sqrt(lam), n)
        return AnalysisDiagnostics(
            omf=innovation_statistics(y, HX, r, mask=used), inflation=math.sqrt(lam), n_obs=int(used.size),
            n_used=n_used, n_rejected=int(used.size - n_used), used=used, omf_per_obs=d_all,
            hx_spread_per_obs=np.sqrt(var_all), clipped_below=clip[:, 0].copy(),
            clipped_above=clip[:, 1].copy(), n_clipped=clip[:, 2].astype(np.int64))

    @abc.abstractmethod
    def _update(self, X, cx, cy, HX, y, r, ox, oy, ids, cycle, lam, lo, hi, clip, c_m, corr):
        """Analyse X in place with the used observations (variance inflation lam, bounds lo/hi, clip diagnostics,
        per-observation localization half-widths c_m in m or None for the filter's own, error correlation
        (1/L in 1/m, group) per observation or None for a diagonal R)."""


def radius_m(c_km):
    """A radius in km as metres (float)."""
    return float(c_km) * 1000.0


def _obs_radii_m(c_km, n_obs):
    """Per-observation localization half-widths (km, (n_obs,)) as a float64 array in m; ValueError naming the argument."""
    c = np.asarray(c_km, dtype=np.float64)
    if c.shape != (n_obs,):
        raise ValueError(f"obs_loc_radius_km must have shape ({n_obs},) (n_obs from HX), got {c.shape}")
    if not np.all(c > 0):
        raise ValueError("obs_loc_radius_km must be > 0 (inf for no localization) for every observation")
    return c * 1000.0


def _error_correlation(corr_km, group, n_obs):
    """(1/L in 1/m (n_obs,), group (n_obs,) int64) from the analyse arguments, or None if no L > 0; ValueError
    naming the argument for a bad shape, a negative or non-finite L, or two lengths in one group."""
    if corr_km is None:
        return None
    L = np.asarray(corr_km, dtype=np.float64)
    if L.shape != (n_obs,) or not np.all(np.isfinite(L) & (L >= 0)):
        raise ValueError(f"obs_error_corr_km must be finite and >= 0 with shape ({n_obs},) (n_obs from HX), got "
                         f"shape {L.shape}")
    if not np.any(L > 0):
        return None
    g = np.zeros(n_obs, np.int64) if group is None else np.asarray(group)
    if g.shape != (n_obs,) or not np.issubdtype(g.dtype, np.integer):
        raise ValueError(f"obs_group must be integers with shape ({n_obs},), got {g.dtype} {g.shape}")
    for v in np.unique(g[L > 0]):
        if np.unique(L[g == v]).size > 1:
            raise ValueError(f"obs_error_corr_km must be one length per obs_group; group {v} has several")
    inv = np.where(L > 0, 1.0 / np.where(L > 0, L, 1.0) / 1000.0, 0.0)
    return inv, g.astype(np.int64)


def check_radius(value, name="loc_radius_km"):
    """ValueError unless the localization radius is > 0 (inf: no localization)."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (inf for no localization), got {value}")


def _check_inputs(X, cell_xy_m, HX, y, obs_err_var, obs_xy_m, obs_ids, cycle, lower, upper):
    if not isinstance(X, np.ndarray) or X.dtype != np.float64 or X.ndim != 3 or not X.flags.c_contiguous:
        raise ValueError("X must be a C-contiguous float64 array (n_cells, n_vars, n_members)")
    if not X.flags.writeable:
        raise ValueError("X must be writeable (updated in place)")
    n_cells, n_vars, n = X.shape
    if n < 2:
        raise ValueError(f"need at least 2 ensemble members, got {n}")
    cxy = np.asarray(cell_xy_m, dtype=np.float64)
    if cxy.shape != (n_cells, 2) or not np.all(np.isfinite(cxy)):
        raise ValueError(f"cell_xy_m must be finite with shape ({n_cells}, 2), got {cxy.shape}")
    HX = np.asarray(HX, dtype=np.float64)
    if HX.ndim != 2 or HX.shape[1] != n:
        raise ValueError(f"HX must have shape (n_obs, {n}), got {HX.shape}")
    n_obs = HX.shape[0]
    y = np.asarray(y, dtype=np.float64)
    r = np.asarray(obs_err_var, dtype=np.float64)
    oxy = np.asarray(obs_xy_m, dtype=np.float64)
    ids = np.asarray(obs_ids)
    for nm, arr, shape in (("y", y, (n_obs,)), ("obs_err_var", r, (n_obs,)), ("obs_xy_m", oxy, (n_obs, 2)),
                           ("obs_ids", ids, (n_obs,))):
        if arr.shape != shape:
            raise ValueError(f"{nm} must have shape {shape} (n_obs from HX), got {arr.shape}")
    for nm, arr in (("HX", HX), ("y", y), ("obs_xy_m", oxy)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{nm} contains non-finite values")
    if not np.all((r > 0) & np.isfinite(r)):
        raise ValueError("obs_err_var must be finite and > 0")
    if not np.issubdtype(ids.dtype, np.integer) or np.any(ids < 0):
        raise ValueError("obs_ids must be non-negative integers (global observation ids)")
    if len(np.unique(ids)) != n_obs:
        raise ValueError("obs_ids must be unique")
    if int(cycle) != cycle or cycle < 0:
        raise ValueError(f"cycle must be a non-negative integer, got {cycle}")
    lo = _bounds(lower, -np.inf, n_cells, n_vars, "lower")
    hi = _bounds(upper, np.inf, n_cells, n_vars, "upper")
    if lo.shape != hi.shape:  # the kernels index both bounds with one row (per cell, or 0 for all cells)
        lo, hi = (np.ascontiguousarray(np.broadcast_to(b, (n_cells, n_vars))) for b in (lo, hi))
    if np.any(lo > hi):
        raise ValueError("lower bound exceeds upper bound")
    return HX, y, r, oxy, ids.astype(np.int64), lo, hi


def _bounds(b, default, n_cells, n_vars, name):
    if b is None:
        return np.full((1, n_vars), default)
    b = np.asarray(b, dtype=np.float64)
    if b.ndim == 0:
        b = np.full(n_vars, float(b))
    if b.shape == (n_vars,):
        return np.ascontiguousarray(b[None, :])
    if b.shape == (n_cells, n_vars):
        return np.ascontiguousarray(b)
    raise ValueError(f"{name} must be a scalar, ({n_vars},) or ({n_cells}, {n_vars}), got {b.shape}")
